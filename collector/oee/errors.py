"""The OEE engine's exceptions: one hierarchy, messages name the thing and the fix."""

from __future__ import annotations


class OeeError(Exception):
    """Base class of every error raised by ``collector.oee``."""


class OeeInputError(OeeError, ValueError):
    """Input data the engine cannot use (naive timestamps, negative counts...)."""


class CalendarError(OeeError, ValueError):
    """A shift calendar that cannot be evaluated (unknown timezone, bad times...)."""
