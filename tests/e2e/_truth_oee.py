"""Expected OEE computed from the simulator's ground-truth log, independently of Lineside.

Nothing here imports the agent, the collector or the OEE engine: the figures follow
ISO 22400-2 as docs/oee.md states it, for the narrow case the end-to-end scenario is
built for (one planned window without calendar breaks, no micro-stops, no states of
the performance-loss class), so that a mistake anywhere on the real data path shows up
as a difference.

Times are integer microseconds on the wall clock: ``plc-sim run --wall-timestamps``
serves a change at simulated time ``ts`` with the SourceTimestamp
``wall_start + (ts - start) / speed`` (the same arithmetic as here), and the wire
contract carries it to the millisecond. Ratios are computed from exact fractions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

RUNNING = "running"
PLANNED = frozenset({"planned_stop"})
SETUP = frozenset({"changeover"})
STOPS = frozenset({"idle", "starved", "blocked", "unplanned_stop"})  # micro-stop candidates
KNOWN = frozenset({RUNNING}) | PLANNED | SETUP | STOPS
_US = timedelta(microseconds=1)


@dataclass(frozen=True)
class Transition:
    """The machine entered ``state`` at ``at`` (wall clock)."""

    at: datetime
    state: str


@dataclass(frozen=True)
class Part:
    at: datetime
    good: bool
    ideal_cycle_time_s: float  # simulated seconds, as the simulator's order record says


@dataclass
class MachineTruth:
    name: str
    initial_state: str
    transitions: list[Transition] = field(default_factory=list)
    parts: list[Part] = field(default_factory=list)


@dataclass(frozen=True)
class WallMapping:
    start: datetime
    wall_start: datetime
    speed: float

    def wall(self, sim_time: datetime) -> datetime:
        return self.wall_start + (sim_time - self.start) / self.speed

    def on_wire(self, sim_time: datetime) -> datetime:
        """The wall time as an event carries it: the wire keeps milliseconds (truncated;
        docs/protocol.md)."""
        at = self.wall(sim_time)
        return at.replace(microsecond=at.microsecond // 1000 * 1000)


def read_machines(records: list[dict[str, Any]]) -> tuple[WallMapping, dict[str, MachineTruth]]:
    """Each machine's state transitions and parts, on the wall clock."""
    started = next(r for r in records if r["type"] == "run_started")
    mapping = WallMapping(
        start=datetime.fromisoformat(started["start"]),
        wall_start=datetime.fromisoformat(started["wall_start"]),
        speed=float(started["speed"]),
    )
    machines = {
        m["name"]: MachineTruth(m["name"], initial_state="idle") for m in started["machines"]
    }
    ideal_by_machine: dict[str, float] = {}
    for record in records:
        machine = machines.get(record.get("machine", ""))
        if machine is None:
            continue
        if record["type"] == "state":
            machine.transitions.append(Transition(mapping.on_wire(record["ts"]), record["to"]))
        elif record["type"] == "order":
            ideal_by_machine[machine.name] = float(record["ideal_cycle_time_s"])
        elif record["type"] == "part":
            at = mapping.on_wire(record["ts"])
            machine.parts.append(Part(at, bool(record["good"]), ideal_by_machine[machine.name]))
    return mapping, machines


@dataclass(frozen=True)
class Components:
    """Additive parts of an OEE answer (times in microseconds)."""

    planned_us: int = 0
    planned_stop_us: int = 0
    running_us: int = 0
    downtime_us: int = 0
    setup_us: int = 0
    ideal_s: Fraction = Fraction(0)
    good: int = 0
    scrap: int = 0

    def __add__(self, other: Components) -> Components:
        return Components(
            self.planned_us + other.planned_us,
            self.planned_stop_us + other.planned_stop_us,
            self.running_us + other.running_us,
            self.downtime_us + other.downtime_us,
            self.setup_us + other.setup_us,
            self.ideal_s + other.ideal_s,
            self.good + other.good,
            self.scrap + other.scrap,
        )

    @property
    def planned_busy_us(self) -> int:
        return self.planned_us - self.planned_stop_us

    def ratios(self) -> dict[str, float]:
        availability = Fraction(self.running_us, self.planned_busy_us)
        performance = self.ideal_s / Fraction(self.running_us, 1_000_000)
        quality = Fraction(self.good, self.good + self.scrap)
        return {
            "availability": float(availability),
            "performance": float(performance),
            "quality": float(quality),
            "oee": float(availability * performance * quality),
        }

    def times_s(self) -> dict[str, float]:
        return {
            "planned_time": self.planned_us / 1e6,
            "planned_downtime_states": self.planned_stop_us / 1e6,
            "planned_busy_time": self.planned_busy_us / 1e6,
            "actual_production_time": self.running_us / 1e6,
            "running": self.running_us / 1e6,
            "downtime": self.downtime_us / 1e6,
            "setup": self.setup_us / 1e6,
            "ideal_production": float(self.ideal_s),
            "micro_stops": 0.0,
            "no_data": 0.0,
            "offline": 0.0,
        }


def _us(delta: timedelta) -> int:
    return delta // _US


def intervals(machine: MachineTruth, transitions: list[Transition] | None = None):  # type: ignore[no-untyped-def]
    """(state, start, end) of the machine's whole timeline; the last one is open (None)."""
    steps = transitions if transitions is not None else machine.transitions
    state, since = machine.initial_state, None
    out: list[tuple[str, datetime | None, datetime | None]] = []
    for step in steps:
        out.append((state, since, step.at))
        state, since = step.state, step.at
    out.append((state, since, None))
    return out


def shortest_stop_s(machine: MachineTruth) -> float:
    """The shortest episode of back-to-back stop states that has a start and an end."""
    shortest = float("inf")
    episode_start: datetime | None = None
    for state, start, _end in intervals(machine):
        if state in STOPS:
            episode_start = episode_start or start
            continue
        if episode_start is not None and start is not None:
            shortest = min(shortest, (start - episode_start).total_seconds())
        episode_start = None
    return shortest


def machine_components(
    machine: MachineTruth,
    window: tuple[datetime, datetime],
    speed: float,
    transitions: list[Transition] | None = None,
) -> Components:
    """The machine's components over ``window`` = [start, end), all of it planned.

    ``transitions`` replaces the machine's own state-change times (same states, same
    order) where they can only be known as the agent saw them (Modbus has no timestamps).
    """
    start, end = window
    running = planned_stop = downtime = setup = 0
    for state, since, until in intervals(machine, transitions):
        if state not in KNOWN:
            raise AssertionError(f"{machine.name}: state {state!r} is outside this model")
        lo = max(since or start, start)
        hi = min(until or end, end)
        if hi <= lo:
            continue
        span = _us(hi - lo)
        if state == RUNNING:
            running += span
        elif state in PLANNED:
            planned_stop += span
        else:
            downtime += span
            if state in SETUP:
                setup += span
    counted = [p for p in machine.parts if start < p.at <= end]
    ideal = sum((Fraction(p.ideal_cycle_time_s / speed) for p in counted), Fraction(0))
    good = sum(1 for p in counted if p.good)
    return Components(
        planned_us=_us(end - start),
        planned_stop_us=planned_stop,
        running_us=running,
        downtime_us=downtime,
        setup_us=setup,
        ideal_s=ideal,
        good=good,
        scrap=len(counted) - good,
    )
