"""The edge agent's store-and-forward buffer: SQLite (WAL), one writer thread.

``EventBuffer.open(config, default_path)`` checks and opens the file; the pipeline
``submit``s wire events, the forwarder ``read_after``s and ``delete``s them. See
``buffer.py`` for the durability settings and their loss windows, and
docs/configuration.md (Store-and-forward buffer) for the operator's view.
"""

from __future__ import annotations

from edge_agent.buffer.buffer import EventBuffer
from edge_agent.buffer.config import BufferConfig
from edge_agent.buffer.errors import BufferLockedError, BufferOpenError, EventBufferError
from edge_agent.buffer.overflow import overflow_draft
from edge_agent.buffer.records import BufferedEvent, DroppedRange, DropReason

__all__ = [
    "BufferConfig",
    "BufferLockedError",
    "BufferOpenError",
    "BufferedEvent",
    "DropReason",
    "DroppedRange",
    "EventBuffer",
    "EventBufferError",
    "overflow_draft",
]
