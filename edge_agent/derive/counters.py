"""Cumulative, wrapping PLC counters -> part increments for ``production.counted``.

Per counter tag: the increment between two readings is ``(current - previous) mod
2**width_bits``. A decrease is a reset (the increment is ``current``, the parts made
since the reset, and ``counter_reset`` is set) when the wrap-around delta would exceed
``max_increment`` (default half the range) or when the order or product changed since
the previous reading (PLCs that restart their counters with each order); otherwise it
is a wrap. An increase beyond ``max_increment`` is implausible (a preset, a wrong word
order) and only moves the baseline. Values are taken modulo the width, so a signed
reading of the same register works. The first reading after start only sets the
baseline; after ``restore`` the persisted baseline stays, so parts made while the
agent was down or the PLC unreachable are counted once, at the next reading.
Increments are never negative. Bad samples (and non-numeric values) are ignored.

An equipment reads two of good/scrap/total; the third is derived. With good and scrap
both are counted as read. With total and one of good/scrap the other is
``total - known``, computed from running sums: a reading of the known counter ahead of
its total (separate samples) leaves a deficit that the total's increment then fills,
so nothing is counted twice; the reverse order (total first) counts the part as
derived first and the over-count is absorbed by later derived parts (bounded by the
largest such skew). While the known counter reads bad, derived parts are held back
rather than guessed (and the interval they belong to stays open). In derived mode,
nothing is counted until both counters have a baseline.

Samples with the same event time (e.g. one Modbus poll, or one OPC UA publish) form
one group and give at most one ``production.counted`` (none when no part was
counted), with ``interval_start`` the time of the previous counter reading.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from edge_agent.derive._json import from_iso, iso
from edge_agent.derive.roles import CounterKind, CounterRole, EquipmentRoles
from edge_agent.samples import Quality, Sample


def counter_increment(
    role: CounterRole, previous: int, current: int, order_changed: bool = False
) -> tuple[int, bool]:
    """(parts, reset) between two raw readings of a counter (see the module docstring)."""
    delta = (current - previous) % role.modulus
    if current < previous and (order_changed or delta > role.plausible_increment):
        return current, True
    if delta > role.plausible_increment:
        return 0, False
    return delta, False


def counter_value(value: Any, role: CounterRole) -> int | None:
    """A sampled value as a raw counter reading, or None when it is not a count."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        return None
    return value % role.modulus


@dataclass(frozen=True, slots=True)
class Counted:
    """Parts counted by one group of counter samples."""

    good: int
    scrap: int
    counter_reset: bool
    interval_start: datetime | None
    event_time: datetime
    received_time: datetime


@dataclass(slots=True)
class _Baseline:
    value: int
    order_changed: bool = False  # the order changed since this reading


class CounterTracker:
    """Baselines and running sums of the counters of one equipment."""

    def __init__(self, roles: EquipmentRoles) -> None:
        self._roles: dict[str, CounterRole] = {
            tag: role for tag, role in roles.tags.items() if isinstance(role, CounterRole)
        }
        kinds = {CounterKind(str(r.kind)) for r in self._roles.values()}
        # the counter that is derived from the total, when total is read
        self._derived: CounterKind | None = None
        if CounterKind.TOTAL in kinds:
            self._derived = CounterKind.SCRAP if CounterKind.GOOD in kinds else CounterKind.GOOD
        self._baselines: dict[str, _Baseline] = {}
        self._stale: set[str] = set()  # tags whose last sample was bad
        self._last_at: datetime | None = None
        self._pending = 0  # derived parts read but not reported (negative: a deficit)

    def order_changed(self) -> None:
        """Note an order/product change: the next decrease of each counter is a reset."""
        for baseline in self._baselines.values():
            baseline.order_changed = True

    def on_group(self, samples: list[Sample]) -> Counted | None:
        """Counter samples sharing one event time -> the parts they count, if any."""
        parts = dict.fromkeys(CounterKind, 0)
        reset = False
        read: list[Sample] = []
        for sample in samples:
            role = self._roles[sample.tag]
            current = self._usable_value(sample, role)
            if current is None:
                continue
            read.append(sample)
            baseline = self._baselines.get(sample.tag)
            self._baselines[sample.tag] = _Baseline(current)
            if baseline is not None:
                increment, was_reset = counter_increment(
                    role, baseline.value, current, baseline.order_changed
                )
                parts[CounterKind(str(role.kind))] += increment
                reset = reset or was_reset
        if not read:
            return None
        at = max(s.event_time for s in read)
        good, scrap = self._split(parts)
        interval_start = self._last_at
        if self._pending <= 0:  # nothing held back: the next interval starts here
            # Never backwards: counters carry their own source timestamps, and a counter
            # that has not changed for a while (scrap) reads with an old one.
            self._last_at = at if self._last_at is None else max(self._last_at, at)
        if good + scrap == 0:
            return None
        if interval_start is not None:
            at = max(at, interval_start)
        received = max(s.received_ts for s in read)
        return Counted(good, scrap, reset, interval_start, at, received)

    def _usable_value(self, sample: Sample, role: CounterRole) -> int | None:
        value = None if sample.quality is Quality.BAD else counter_value(sample.value, role)
        if value is None:
            self._stale.add(sample.tag)
        else:
            self._stale.discard(sample.tag)
        return value

    def _split(self, parts: dict[CounterKind, int]) -> tuple[int, int]:
        if self._derived is None:
            return parts[CounterKind.GOOD], parts[CounterKind.SCRAP]
        if len(self._baselines) < len(self._roles):
            return 0, 0  # cannot split a total before both counters are known
        known = CounterKind.GOOD if self._derived is CounterKind.SCRAP else CounterKind.SCRAP
        self._pending += parts[CounterKind.TOTAL] - parts[known]
        derived = 0
        known_is_stale = any(
            CounterKind(str(r.kind)) is known and t in self._stale for t, r in self._roles.items()
        )
        if self._pending > 0 and not known_is_stale:
            derived, self._pending = self._pending, 0
        if self._derived is CounterKind.SCRAP:
            return parts[known], derived
        return derived, parts[known]

    def snapshot(self) -> dict[str, Any]:
        return {
            "baselines": {
                tag: {"value": b.value, "order_changed": b.order_changed}
                for tag, b in self._baselines.items()
            },
            "stale": sorted(self._stale),
            "last_at": iso(self._last_at),
            "pending": self._pending,
        }

    def restore(self, data: dict[str, Any]) -> None:
        """Take a snapshot; baselines of tags no longer configured are dropped."""
        self._baselines = {
            tag: _Baseline(int(b["value"]), bool(b["order_changed"]))
            for tag, b in data["baselines"].items()
            if tag in self._roles
        }
        self._stale = {t for t in data["stale"] if t in self._roles}
        self._last_at = from_iso(data["last_at"])
        self._pending = int(data["pending"])
