"""Exceptions of the buffer package: one hierarchy, messages name the file and the fix."""

from __future__ import annotations


class EventBufferError(Exception):
    """Base of every error the store-and-forward buffer raises."""


class BufferOpenError(EventBufferError):
    """The buffer file cannot be opened or created (not a corrupt file: that is quarantined)."""


class BufferLockedError(BufferOpenError):
    """Another process (an agent, or ``edge-agent buffer purge``) holds the buffer's lock."""
