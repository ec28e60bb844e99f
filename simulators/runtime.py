"""The simulation shell: clock + machine models + truth log, feeding protocol faces.

``Simulation.step()`` advances every model to the clock's "now", writes the
ground truth and returns the tags whose served value changed; faces apply those
updates to their servers. ``run()`` does that on a fixed wall-clock tick, and steps the
machines whose process values change at that instant in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any, NamedTuple, Protocol
from zoneinfo import ZoneInfo

from simulators.faults.state import FaceName, FaultState
from simulators.model.behaviour import behaviour_for, entry_times, overlapping_windows
from simulators.model.clock import Clock
from simulators.model.machine import MachineModel, SignalValue
from simulators.model.truth import TruthRecord, TruthWriter, format_ts
from simulators.model.value_schedule import ValueSchedule
from simulators.scenario.models import Machine, Scenario, expand_machines
from simulators.scenario.timeline import parse_at
from simulators.tags import TagSpec, machine_tags, value_of

log = logging.getLogger("lineside.sim")
STEP_BATCH = 10  # machines advanced between two chances for the servers to run
VALUE_SCAN_S = 0.01
"""Shortest wall time from one step to a step for process-value changes (a PLC scan)."""
VALUE_STEP_MARGIN_S = 0.001
"""A step for process-value changes runs this long after their instant, so that the
clock reads at or past it."""


class TagUpdate(NamedTuple):
    tag: TagSpec
    value: SignalValue


class Face(Protocol):
    """A protocol server exposing the simulated machines."""

    name: FaceName
    faults: FaultState

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def apply(self, updates: list[TagUpdate]) -> None:
        """Write changed values into the server (called after every step)."""
        ...

    async def drop_connections(self) -> int:
        """Close every client connection; returns how many were closed."""
        ...

    async def restart(self, *, shift_namespace: bool = False, downtime_s: float = 0.0) -> None:
        """Stop and start the server (OPC UA: new sessions; optional namespace shift)."""
        ...

    def endpoints(self) -> list[str]: ...


def default_start(scenario: Scenario, wall_now: datetime) -> datetime:
    """Scenario start if given; else today at the earliest first timeline clock time;
    else (random mode only) the wall clock."""
    if scenario.start is not None:
        return scenario.start.astimezone(UTC)
    zone = ZoneInfo(scenario.timezone)
    firsts = []
    for machine in scenario.machines:
        if machine.timeline:
            kind, seconds = parse_at(machine.timeline[0].at)
            if kind == "clock":
                firsts.append(seconds)
    if not firsts:
        return wall_now.astimezone(UTC)
    today = wall_now.astimezone(zone).date()
    wall = datetime.combine(today, time(0)) + timedelta(seconds=min(firsts))
    return wall.replace(tzinfo=zone).astimezone(UTC)


def timeline_problems(scenario: Scenario, start: datetime) -> list[str]:
    """Semantic timeline errors that need the start date (overlapping 'for' windows)."""
    zone = ZoneInfo(scenario.timezone)
    problems = []
    for machine in expand_machines(scenario):
        if machine.timeline:
            times = entry_times(machine.timeline, start.astimezone(zone).date(), zone)
            problems += [
                f"machine {machine.name}: {p}" for p in overlapping_windows(machine.timeline, times)
            ]
    return problems


def _wall_mapping(clock: Clock, start: datetime) -> dict[str, str]:
    """``wall_start``: the wall-clock instant (microseconds) the simulated ``start`` maps to,
    so that a reader can put truth times on the wall clock exactly as
    ``plc-sim run --wall-timestamps`` stamps OPC UA values:
    wall_start + (ts - start) / speed. Absent for a clock without a wall mapping."""
    to_wall = getattr(clock, "to_wall", None)
    if to_wall is None:
        return {}
    return {"wall_start": to_wall(start).astimezone(UTC).isoformat(timespec="microseconds")}


class Simulation:
    def __init__(
        self,
        scenario: Scenario,
        clock: Clock,
        start: datetime,
        truth: TruthWriter | None = None,
        seed: int | None = None,
        speed: float = 1.0,
    ) -> None:
        self.scenario = scenario
        self.clock = clock
        self.start = start
        self.seed = scenario.seed if seed is None else seed
        self.speed = speed
        self._truth = truth
        zone = ZoneInfo(scenario.timezone)
        self.machine_configs: dict[str, Machine] = {m.name: m for m in expand_machines(scenario)}
        self.machines: dict[str, MachineModel] = {
            name: MachineModel(cfg, behaviour_for(cfg, start, zone, self.seed), start, self.seed)
            for name, cfg in self.machine_configs.items()
        }
        self.tags: dict[str, list[TagSpec]] = {
            name: machine_tags(cfg) for name, cfg in self.machine_configs.items()
        }
        self._served: dict[tuple[str, str], Any] = {}
        self._served_tags = {
            name: [tag for tag in tags if not tag.is_command] for name, tags in self.tags.items()
        }
        # (model version, simulated second) last diffed per machine: nothing else changes.
        self._diffed: dict[str, tuple[int, int]] = {}
        names = list(self.machines)
        self._batches = [names[i : i + STEP_BATCH] for i in range(0, len(names), STEP_BATCH)]
        self._listeners: list[Callable[[list[TagUpdate]], None]] = []
        self.tick_count = 0
        self.value_step_count = 0  # steps between ticks, for process-value changes
        self._value_schedule = ValueSchedule(
            {
                name: self.machine_configs[name].value_offset_s
                for name, model in self.machines.items()
                if model.channels
            }
        )
        self.last_step_lag_s = 0.0
        self.max_step_lag_s = 0.0
        # Wall seconds spent in recent steps (model + faces), for /status and benchmarks.
        self.step_durations_s: deque[float] = deque(maxlen=600)
        self._write(
            [
                TruthRecord(
                    start,
                    "run_started",
                    None,
                    {
                        "scenario": scenario.scenario,
                        "seed": self.seed,
                        "speed": speed,
                        "start": format_ts(start),
                        **_wall_mapping(clock, start),
                        "timezone": scenario.timezone,
                        "machines": [_machine_facts(cfg) for cfg in self.machine_configs.values()],
                    },
                )
            ]
        )

    # -- listeners ---------------------------------------------------------------------

    def subscribe(self, listener: Callable[[list[TagUpdate]], None]) -> None:
        self._listeners.append(listener)

    def current_values(self) -> list[TagUpdate]:
        """Every tag with its value now (used by faces at start)."""
        now = self.clock.now()
        out = []
        for name, model in self.machines.items():
            signals = model.signals(now)
            out += [TagUpdate(tag, value_of(tag, signals)) for tag in self.tags[name]]
        return out

    # -- time --------------------------------------------------------------------------

    def step(self) -> list[TagUpdate]:
        """Advance all machines to now; return (and publish) the changed tags."""
        now = self.clock.now()
        updates: list[TagUpdate] = []
        for batch in self._batches:
            updates += self._step_machines(batch, now)
        self.tick_count += 1
        return updates

    async def step_yielding(self, machines: list[str] | None = None) -> None:
        """Like step(), but lets the event loop serve clients between machine batches;
        ``machines``: only these (a step for their process values, not a tick).

        Under load every process value changes at the same second boundary; doing all
        machines in one go would block the protocol servers for that long.
        """
        now = self.clock.now()
        if machines is None:
            batches = self._batches
        else:
            batches = [machines[i : i + STEP_BATCH] for i in range(0, len(machines), STEP_BATCH)]
        for batch in batches:
            self._step_machines(batch, now)
            await asyncio.sleep(0)
        if machines is None:
            self.tick_count += 1

    def _step_machines(self, names: list[str], now: datetime) -> list[TagUpdate]:
        records: list[TruthRecord] = []
        updates: list[TagUpdate] = []
        epoch_s = now.timestamp()
        for name in names:
            model = self.machines[name]
            records += model.advance_to(now)
            key = (model.version, model.value_second(epoch_s) if model.channels else 0)
            if self._diffed.get(name) == key:
                continue
            self._diffed[name] = key
            for counters in model.take_counters_before_resets():
                updates += self._changed(name, counters, only_given=True)
            updates += self._changed(name, model.signals(now))
        self._write(records)
        if updates:
            for listener in self._listeners:
                listener(updates)
        return updates

    def _changed(
        self, machine: str, signals: dict[str, SignalValue], only_given: bool = False
    ) -> list[TagUpdate]:
        """Updates of the tags whose value differs from the one served; ``only_given``:
        of the tags that read one of ``signals`` directly."""
        out = []
        for tag in self._served_tags[machine]:
            if only_given and tag.signal not in signals:
                continue
            value = value_of(tag, signals)
            key = (machine, tag.name)
            if self._served.get(key, _UNSET) != value.value:
                self._served[key] = value.value
                out.append(TagUpdate(tag, value))
        return out

    async def run(self, tick_s: float = 0.1, stop: asyncio.Event | None = None) -> None:
        """Step every ``tick_s`` wall seconds until ``stop`` is set.

        In between, the machines whose process values change are stepped at that instant
        (at most every ``VALUE_SCAN_S``), as a PLC serves a change within one scan: on the
        tick alone a change would be served up to ``tick_s`` after its time. Only while
        values change less often than ticks come (``speed * tick_s <= 1``): faster, the
        tick serves a sample of them, as it always did, rather than every one.
        """
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        due: list[str] = []
        value_steps = self.speed * tick_s <= 1
        while not stop.is_set():
            started = loop.time()
            if started >= next_tick:
                self.last_step_lag_s = max(0.0, started - next_tick)
                self.max_step_lag_s = max(self.max_step_lag_s, self.last_step_lag_s)
                await self.step_yielding()
                self.step_durations_s.append(loop.time() - started)
                next_tick += tick_s
                if next_tick < loop.time():  # fell behind: do not try to catch up in a burst
                    next_tick = loop.time()
            else:
                await self.step_yielding(due)
                self.value_step_count += 1
            wake_at, due = self._next_value_step(loop.time()) if value_steps else (math.inf, [])
            if wake_at >= next_tick:
                wake_at, due = next_tick, []
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=max(0.0, wake_at - loop.time()))

    def _next_value_step(self, loop_now: float) -> tuple[float, list[str]]:
        """Loop time of the next process-value change and the machines it changes;
        ``(inf, [])`` when the clock has no wall mapping (a manual clock)."""
        wall_seconds_until = getattr(self.clock, "wall_seconds_until", None)
        if wall_seconds_until is None or not self._value_schedule:
            return math.inf, []
        at_s, machines = self._value_schedule.next_change(self.clock.now().timestamp())
        wall_s = wall_seconds_until(datetime.fromtimestamp(at_s, UTC))
        return loop_now + max(wall_s + VALUE_STEP_MARGIN_S, VALUE_SCAN_S), machines

    @property
    def all_ended(self) -> bool:
        return all(m.ended for m in self.machines.values())

    # -- commands ----------------------------------------------------------------------

    def reset_counters(self, machine: str, cause: str = "command") -> None:
        model = self.machines[machine]
        self._write(model.reset_counters(self.clock.now(), cause))

    def record_fault(self, fault: str, **params: Any) -> None:
        self._write(
            [
                TruthRecord(
                    self.clock.now(),
                    "fault",
                    params.pop("machine", None),
                    {"fault": fault, **params},
                )
            ]
        )

    def close(self) -> None:
        self._write([TruthRecord(self.clock.now(), "run_stopped")])
        if self._truth is not None:
            self._truth.close()
            self._truth = None

    def _write(self, records: list[TruthRecord]) -> None:
        if self._truth is not None:
            self._truth.write(records)


_UNSET = object()


def _machine_facts(cfg: Machine) -> dict[str, Any]:
    return {
        "name": cfg.name,
        "location": cfg.location.model_dump(),
        "counter_width": cfg.counter_width.value,
        "state_encoding": cfg.state_encoding.value,
        "modbus_unit_id": cfg.modbus.unit_id,
        "products": {p.id: p.ideal_cycle_time_s for p in cfg.products},
    }
