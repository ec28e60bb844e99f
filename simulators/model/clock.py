"""Injectable simulation time.

The model never reads a clock itself: the runtime asks a :class:`Clock` for the
simulated "now" and advances the model to it. Tests use :class:`ManualClock`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Current simulated time, timezone-aware UTC."""
        ...


class AcceleratedClock:
    """Simulated time that runs ``speed`` times faster than the wall clock."""

    def __init__(
        self,
        start: datetime,
        speed: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self._start = start.astimezone(UTC)
        self._speed = speed
        self._monotonic = monotonic
        self._mono0 = monotonic()
        self._wall0 = datetime.now(UTC)

    def to_wall(self, sim_time: datetime) -> datetime:
        """The wall-clock instant at which this clock shows ``sim_time``."""
        return self._wall0 + (sim_time - self._start) / self._speed

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> datetime:
        elapsed = (self._monotonic() - self._mono0) * self._speed
        return self._start + timedelta(seconds=elapsed)

    def wall_seconds_until(self, sim_time: datetime) -> float:
        """Wall-clock seconds until ``sim_time`` is reached (negative if past)."""
        return (sim_time - self.now()).total_seconds() / self._speed


class ManualClock:
    """A clock that only moves when told to (tests, benchmarks)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> datetime:
        self._now += timedelta(seconds=seconds)
        return self._now

    def set(self, when: datetime) -> None:
        self._now = when.astimezone(UTC)
