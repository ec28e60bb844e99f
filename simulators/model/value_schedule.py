"""When process values change next: the instants a runtime must step at (pure).

Each machine's process values change once per simulated second, ``value_offset_s``
after the whole second (``MachineModel.value_second``). A PLC serves such a change
within one scan (~10-20 ms); a simulator stepping only on a fixed tick would serve it
up to one tick late. :class:`ValueSchedule` tells the runtime the next of these instants
and which machines change then, so it can step those machines at that instant.
"""

from __future__ import annotations

import math
from collections.abc import Mapping


class ValueSchedule:
    """Machines grouped by their offset in the second; the next change of any group."""

    def __init__(self, offsets: Mapping[str, float]) -> None:
        groups: dict[float, list[str]] = {}
        for machine, offset_s in offsets.items():
            groups.setdefault(offset_s % 1.0, []).append(machine)
        self._groups = sorted(groups.items())

    def __bool__(self) -> bool:
        return bool(self._groups)

    def next_change(self, epoch_s: float) -> tuple[float, list[str]]:
        """The first change instant strictly after ``epoch_s`` (simulated epoch seconds) and
        the machines whose values change then; ``(inf, [])`` without machines."""
        best = math.inf
        due: list[str] = []
        for offset_s, machines in self._groups:
            at = math.floor(epoch_s - offset_s) + 1 + offset_s
            if at <= epoch_s:  # float rounding at the boundary itself
                at += 1
            if at < best:
                best, due = at, list(machines)
            elif at == best:
                due += machines
        return best, due
