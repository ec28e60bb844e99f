"""What the forwarder needs from the store-and-forward buffer (``edge_agent.buffer``).

Typed as protocols so the forwarder's logic can be tested with a small in-memory double;
the agent passes its ``edge_agent.buffer.EventBuffer``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol


class BufferedEventLike(Protocol):
    """One committed event (``edge_agent.buffer.BufferedEvent``)."""

    @property
    def rowid(self) -> int:
        """Position in the buffer; ascending in capture order, never reused."""
        ...

    @property
    def equipment(self) -> str:
        """The equipment level of the event's path."""
        ...

    @property
    def seq(self) -> int: ...

    @property
    def captured_ms(self) -> int:
        """Unix time in milliseconds of the commit that captured the event."""
        ...

    @property
    def body(self) -> bytes:
        """Compact JSON of the wire event without ``historical``; starts with ``b"{"``."""
        ...


class EventSource(Protocol):
    """The buffer as the forwarder uses it: read in order, delete what was confirmed."""

    def add_commit_listener(self, listener: Callable[[int], None]) -> None:
        """Call ``listener(highest_rowid)`` from the writer thread after each commit."""
        ...

    def read_after(self, rowid: int, limit: int) -> Sequence[BufferedEventLike]:
        """Committed events with a rowid above ``rowid``, ascending (thread-safe)."""
        ...

    def read_recent(self, rowid: int, limit: int) -> Sequence[BufferedEventLike] | None:
        """Like ``read_after`` from memory (never blocks); None: use ``read_after``."""
        ...

    def first_rowid(self) -> int:
        """Lowest rowid in the buffer; 0 when it is empty."""
        ...

    def last_rowid(self) -> int:
        """Highest committed rowid; 0 when empty."""
        ...

    def delete(self, rowids: Sequence[int]) -> None:
        """Forget these events (non-blocking; applied in the writer's next commit)."""
        ...
