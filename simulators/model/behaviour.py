"""What a machine does next: a scripted timeline or random stops and orders.

A behaviour only schedules *changes* (state, order, counter reset, end); parts are
produced by the machine model while it runs. Both behaviours are deterministic:
the scripted one is a precomputed list, the random one draws from its own seeded
generator strictly in event order, so results never depend on how often the
model is advanced.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from simulators.model.states import MachineState
from simulators.scenario.models import Machine, RandomBehaviour
from simulators.scenario.timeline import TimelineEntry, parse_at


def round_ms(ts: datetime) -> datetime:
    """Event times carry whole milliseconds (what the log and OPC UA keep)."""
    return ts.replace(microsecond=(ts.microsecond // 1000) * 1000)


@dataclass(frozen=True)
class Change:
    at: datetime
    state: MachineState | None = None
    reason: int = 0
    product: str | None = None
    order: str | None = None
    reset_counters: bool = False
    end: bool = False


class Behaviour(Protocol):
    def peek(self) -> Change | None:
        """The next scheduled change, without consuming it."""
        ...

    def pop(self) -> Change:
        """Consume the change returned by peek()."""
        ...

    def entered(self, state: MachineState, at: datetime) -> None:
        """Told after the machine entered ``state`` at ``at`` (random mode schedules)."""
        ...


class ScriptedBehaviour:
    def __init__(self, changes: list[Change]) -> None:
        self._changes = sorted(changes, key=lambda c: c.at)  # stable: keeps script order
        self._index = 0

    def peek(self) -> Change | None:
        return self._changes[self._index] if self._index < len(self._changes) else None

    def pop(self) -> Change:
        change = self._changes[self._index]
        self._index += 1
        return change

    def entered(self, state: MachineState, at: datetime) -> None:
        return None


def entry_times(entries: list[TimelineEntry], anchor: date, zone: ZoneInfo) -> list[datetime]:
    """Absolute (UTC-aware) times of timeline entries anchored on ``anchor``'s date.

    Clock times are wall times in ``zone`` (DST-aware); a clock time earlier than
    the previous one is on the next day; ``+offset`` counts from the first entry.
    """
    out: list[datetime] = []
    day = 0
    previous_clock: float | None = None
    for entry in entries:
        kind, seconds = parse_at(entry.at)
        if kind == "offset":
            base = out[0] if out else datetime.combine(anchor, time(0), zone).astimezone(UTC)
            out.append(base + timedelta(seconds=seconds))
            continue
        if previous_clock is not None and seconds < previous_clock:
            day += 1
        previous_clock = seconds
        wall = datetime.combine(anchor + timedelta(days=day), time(0)) + timedelta(seconds=seconds)
        out.append(wall.replace(tzinfo=zone).astimezone(UTC))
    return out


def scripted_changes(entries: list[TimelineEntry], times: list[datetime]) -> list[Change]:
    """Expand entries into changes; ``for`` windows get a change back to the base state."""
    changes: list[Change] = []
    base_state: MachineState | None = None
    base_reason = 0
    for entry, at in zip(entries, times, strict=True):
        state = entry.effective_state
        reason = entry.effective_reason
        if entry.action == "reset_counters":
            changes.append(Change(at=at, reset_counters=True))
            continue
        changes.append(
            Change(
                at=at,
                state=state,
                reason=reason,
                product=entry.product,
                order=entry.order,
                end=entry.action == "end",
            )
        )
        if entry.for_s is not None:
            back_state = MachineState.RUNNING if entry.action == "changeover" else base_state
            if back_state is not None:
                back_reason = 0 if entry.action == "changeover" else base_reason
                changes.append(
                    Change(
                        at=at + timedelta(seconds=entry.for_s), state=back_state, reason=back_reason
                    )
                )
                base_state, base_reason = back_state, back_reason
        else:
            base_state, base_reason = state, reason
    return changes


def overlapping_windows(entries: list[TimelineEntry], times: list[datetime]) -> list[str]:
    """Human messages for ``for`` windows that run into the next entry."""
    problems = []
    for i, entry in enumerate(entries[:-1]):
        if entry.for_s is None:
            continue
        ends = times[i] + timedelta(seconds=entry.for_s)
        if ends > times[i + 1]:
            problems.append(
                f"entry {i} at {entry.at} lasts {entry.for_s:g}s and runs into the next entry "
                f"at {entries[i + 1].at}"
            )
    for i in range(1, len(times)):
        if times[i] < times[i - 1]:
            problems.append(f"entry {i} at {entries[i].at} is before the previous entry")
    return problems


class RandomStopsAndOrders:
    """Competing exponential stops while running, exponential durations, periodic orders."""

    def __init__(
        self,
        config: RandomBehaviour,
        products: list[str],
        rng: random.Random,
        machine: str,
        start: datetime,
    ) -> None:
        self._config = config
        self._products = products
        self._rng = rng
        self._machine = machine
        self._pending: Change | None = None
        self._order_seq = 0
        self._product_index = 0
        self._next_order_at: datetime | None = None
        self._start = start
        if config.orders is not None:
            self._next_order_at = self._after(start, config.orders.mean_interval)
        # First change: start running the first order at the start time.
        self._pending = self._new_order_change(start, MachineState.RUNNING, 0)

    def _after(self, at: datetime, mean_s: float) -> datetime:
        return round_ms(at + timedelta(seconds=max(1.0, self._rng.expovariate(1.0 / mean_s))))

    def _new_order_change(self, at: datetime, state: MachineState, reason: int) -> Change:
        self._order_seq += 1
        product = self._products[self._product_index % len(self._products)]
        self._product_index += 1
        return Change(
            at=at,
            state=state,
            reason=reason,
            product=product,
            order=f"{self._machine}-{self._order_seq:04d}",
        )

    def peek(self) -> Change | None:
        return self._pending

    def pop(self) -> Change:
        assert self._pending is not None
        change, self._pending = self._pending, None
        return change

    def entered(self, state: MachineState, at: datetime) -> None:
        if state is MachineState.RUNNING:
            self._schedule_from_running(at)
        else:
            duration = next((s.mean_duration for s in self._config.stops if s.state is state), None)
            if state is MachineState.CHANGEOVER and self._config.orders is not None:
                back_at = round_ms(at + timedelta(seconds=self._config.orders.changeover))
                self._next_order_at = self._after(back_at, self._config.orders.mean_interval)
            elif duration is not None:
                back_at = self._after(at, duration)
            else:
                back_at = round_ms(at + timedelta(seconds=60))
            self._pending = Change(at=back_at, state=MachineState.RUNNING, reason=0)

    def _schedule_from_running(self, at: datetime) -> None:
        best: Change | None = None
        for stop in self._config.stops:
            when = self._after(at, stop.mean_interval)
            if best is None or when < best.at:
                reason = self._rng.choice(stop.reasons)
                best = Change(at=when, state=stop.state, reason=reason)
        if self._next_order_at is not None and (best is None or self._next_order_at <= best.at):
            orders = self._config.orders
            assert orders is not None
            when = max(self._next_order_at, at)
            if orders.changeover > 0:
                best = self._new_order_change(
                    when, MachineState.CHANGEOVER, orders.changeover_reason
                )
            else:
                best = self._new_order_change(when, MachineState.RUNNING, 0)
                self._next_order_at = self._after(when, orders.mean_interval)
        self._pending = best


def behaviour_for(machine: Machine, start: datetime, zone: ZoneInfo, seed: int) -> Behaviour:
    if machine.timeline is not None:
        times = entry_times(machine.timeline, start.astimezone(zone).date(), zone)
        return ScriptedBehaviour(scripted_changes(machine.timeline, times))
    assert machine.random is not None
    rng = random.Random(f"{seed}:{machine.name}:behaviour")
    return RandomStopsAndOrders(
        machine.random, [p.id for p in machine.products], rng, machine.name, round_ms(start)
    )
