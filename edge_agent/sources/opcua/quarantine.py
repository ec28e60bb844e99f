"""Bookkeeping of quarantined tags: which, why, and when to try them again (pure)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Entry:
    status: str
    retry_at: float


class Quarantine:
    """Tags whose node is unusable; each is retried every ``retry_s`` seconds.

    A tag enters once (``add`` returns True only then, so its BAD sample is emitted
    once) and stays until ``release``; the set outlives sessions.
    """

    def __init__(self, retry_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.retry_s = retry_s
        self._clock = clock
        self._entries: dict[str, _Entry] = {}

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, key: str, status: str) -> bool:
        """Quarantine ``key``; True when it was not quarantined before."""
        if key in self._entries:
            return False
        self._entries[key] = _Entry(status, self._clock() + self.retry_s)
        return True

    def status(self, key: str) -> str | None:
        entry = self._entries.get(key)
        return entry.status if entry is not None else None

    def due(self, *, all_: bool = False) -> list[str]:
        """Tags to retry now (every one with ``all_``, e.g. on a new session)."""
        now = self._clock()
        return [k for k, e in self._entries.items() if all_ or e.retry_at <= now]

    def postpone(self, key: str) -> None:
        """A retry failed: try again ``retry_s`` from now."""
        entry = self._entries.get(key)
        if entry is not None:
            entry.retry_at = self._clock() + self.retry_s

    def release(self, key: str) -> None:
        """The node works again."""
        self._entries.pop(key, None)

    def seconds_to_next_retry(self) -> float | None:
        if not self._entries:
            return None
        now = self._clock()
        return max(0.0, min(e.retry_at for e in self._entries.values()) - now)
