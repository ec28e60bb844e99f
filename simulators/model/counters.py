"""Cumulative part counters as PLCs expose them: fixed width, wrapping."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class CounterWidth(StrEnum):
    UINT16 = "uint16"
    UINT32 = "uint32"

    @property
    def modulus(self) -> int:
        return 1 << (16 if self is CounterWidth.UINT16 else 32)


@dataclass(frozen=True)
class Counters:
    """Raw counter registers (already wrapped) of one machine."""

    total: int = 0
    good: int = 0
    scrap: int = 0

    def add_part(self, good: bool, width: CounterWidth) -> Counters:
        """Count one produced part; every counter wraps at ``width``."""
        mod = width.modulus
        return Counters(
            total=(self.total + 1) % mod,
            good=(self.good + (1 if good else 0)) % mod,
            scrap=(self.scrap + (0 if good else 1)) % mod,
        )


def counter_delta(previous: int, current: int, width: CounterWidth) -> int:
    """Parts counted between two raw readings, assuming at most one wrap."""
    return (current - previous) % width.modulus
