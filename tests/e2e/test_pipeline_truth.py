"""End-to-end proof: the OEE the API reports is the OEE the machines produced.

One simulated plant (plc-sim, tests/e2e/scenario.e2e-line.yaml: a scripted hour at
--speed 60, OPC UA and Modbus) is read by two whole pipelines side by side, each
edge-agent -> its own Mosquitto -> oee-collector -> its own PostgreSQL database ->
HTTP API, every process real:

* ``clean``: nothing goes wrong;
* ``faulted``: its broker is killed for 8 simulated minutes mid-shift, and later its
  agent is SIGKILLed and started again.

The expected figures per machine and for the line come from the simulator's
ground-truth log (tests/e2e/_truth_oee.py imports nothing of Lineside's data path).
Both pipelines must match them, and each other.

Why one machine needs the agent's timing: press-1 and weld-1 are read over OPC UA,
whose SourceTimestamps say when a change happened, so their figures must equal the
truth exactly (float tolerance only; the wire keeps milliseconds). pack-1 is read over
Modbus, which has no timestamps: the agent stamps what a poll sees, up to one poll
interval late. For pack-1 the test checks that every state change of the truth was
stored, in order, no more than ``MAX_MODBUS_LAG_S`` late, then computes the expected
figures from the truth with those stored change times; its counts, quality and ideal
times still come from the truth alone. The line adds up the three.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from _pipeline import (
    MICRO_STOP_THRESHOLD_S,
    MODBUS_POLL_S,
    SPEED,
    Pipeline,
    Plant,
    migrated_database,
    wait_for_wall,
)
from _truth_oee import (
    Components,
    MachineTruth,
    Transition,
    machine_components,
    read_machines,
    shortest_stop_s,
)

from lineside_demo.services import postgres_answers
from simulators.model.truth import read_truth

DSN = os.environ.get("LINESIDE_TEST_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
OPCUA_MACHINES = ("press-1", "weld-1")
MODBUS_MACHINE = "pack-1"
MAX_MODBUS_LAG_S = MODBUS_POLL_S + 0.25  # one poll, plus the read and the derivation
CUTOFF_S = 2.0  # nothing changes from 05:55 (5 s before the shift) to 06:03
REL = 1e-9  # float tolerance of the ratios
ABS_S = 1e-6  # one microsecond, the resolution of stored times

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(400),
    pytest.mark.slow(95),
    pytest.mark.skipif(shutil.which("mosquitto") is None, reason="needs the mosquitto binary"),
    pytest.mark.skipif(not postgres_answers(DSN), reason="needs PostgreSQL on 127.0.0.1:5432"),
]


@dataclass
class Run:
    name: str
    window: tuple[datetime, datetime]
    answer: dict[str, Any]
    machines: dict[str, MachineTruth]
    stored: dict[str, list[tuple[datetime, str]]]
    notes: dict[str, Any] = field(default_factory=dict)


@contextlib.contextmanager
def _databases(*names: str) -> Iterator[dict[str, str]]:
    with contextlib.ExitStack() as stack:
        yield {
            name: stack.enter_context(migrated_database(f"lineside_e2e_{name}")) for name in names
        }


def _broker_outage(pipeline: Pipeline) -> None:
    """Kill the broker from 06:20 to 06:28 (simulated); note what the agent showed."""
    plant = pipeline.plant
    wait_for_wall(plant.wall("06:20"), [plant.children, pipeline.children])
    pipeline.broker.stop()  # SIGKILL: sessions and queued messages are gone
    seen: dict[str, Any] = {"depth_max": 0, "disconnected": False}

    def watch() -> None:
        status = pipeline.agent_status() or {}
        depth = (status.get("buffer") or {}).get("depth_events", 0)
        seen["depth_max"] = max(seen["depth_max"], depth)
        if (status.get("forwarder") or {}).get("connected") is False:
            seen["disconnected"] = True

    wait_for_wall(plant.wall("06:28"), [plant.children, pipeline.children], watch)
    pipeline.broker.start()
    pipeline.notes["outage"] = seen


def _agent_sigkill(pipeline: Pipeline) -> None:
    """SIGKILL the agent at 06:40 (simulated) and start it again at once."""
    plant = pipeline.plant
    wait_for_wall(plant.wall("06:40"), [plant.children, pipeline.children])
    assert pipeline.agent is not None
    old_pid = pipeline.agent.pid
    pipeline.notes["agent_exit"] = pipeline.kill_agent()
    pipeline.launch_agent()
    pipeline.wait_agent_ready()
    pipeline.notes["agent_pids"] = (old_pid, pipeline.agent.pid)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """One plant, two pipelines reading it; the faulted one loses its broker, then its agent."""
    names = ("clean", "faulted")
    plant = Plant(tmp_path_factory.mktemp("e2e-plant"))
    pipelines: list[Pipeline] = []
    with _databases(*names) as dsns:
        try:
            plant.launch()
            for name in names:
                pipelines.append(
                    Pipeline(name, tmp_path_factory.mktemp(f"e2e-{name}"), dsns[name], plant)
                )
                pipelines[-1].launch_agent()
            plant.wait_ready()
            for pipeline in pipelines:
                pipeline.start_collector()
                pipeline.wait_agent_ready()
            faulted = pipelines[1]
            _broker_outage(faulted)
            _agent_sigkill(faulted)
            for pipeline in pipelines:
                pipeline.wait_until_drained()
            assert plant.window is not None
            _, machines = read_machines(read_truth(plant.truth_path))
            return {
                p.name: Run(
                    name=p.name,
                    window=plant.window,
                    answer=p.oee(),
                    machines=machines,
                    stored={m: p.stored_transitions(m) for m in machines},
                    notes=p.notes,
                )
                for p in pipelines
            }
        finally:
            for pipeline in pipelines:
                pipeline.stop()
            plant.stop()


# -- what to expect ----------------------------------------------------------------------


def split_at_cutoff(run: Run, machine: str) -> tuple[list[Transition], list[Transition]]:
    """(truth, stored) state changes from CUTOFF_S before the shift on, after checking
    that the agent had stored the state the machine was really in at that point: the
    shift must not begin with "no data" or a wrong state."""
    cutoff = run.window[0] - timedelta(seconds=CUTOFF_S)
    truth = run.machines[machine]
    stored = [Transition(at, state) for at, state in run.stored[machine]]
    before = [t for t in stored if t.at <= cutoff]
    assert before, f"{run.name} {machine}: the agent stored nothing before the shift"
    in_force = [t.state for t in truth.transitions if t.at <= cutoff]
    assert before[-1].state == (in_force or [truth.initial_state])[-1], (
        f"{run.name} {machine}: stored {before[-1]} at the cutoff, truth {in_force}"
    )
    return (
        [t for t in truth.transitions if t.at > cutoff],
        [t for t in stored if t.at > cutoff],
    )


def _modbus_timed(run: Run) -> list[Transition]:
    """The truth's state changes of the Modbus machine at the times the agent stored them,
    after checking that each was stored, in order, at most MAX_MODBUS_LAG_S late."""
    truth, stored = split_at_cutoff(run, MODBUS_MACHINE)
    assert [t.state for t in stored] == [t.state for t in truth], (
        f"{run.name}: stored {MODBUS_MACHINE} states differ from the truth"
    )
    for seen, happened in zip(stored, truth, strict=True):
        lag_s = (seen.at - happened.at).total_seconds()
        assert 0 <= lag_s <= MAX_MODBUS_LAG_S, (
            f"{run.name}: {MODBUS_MACHINE} {seen.state} stored {lag_s:.3f} s after the change"
        )
    earlier = [t for t in run.machines[MODBUS_MACHINE].transitions if t not in truth]
    return earlier + stored


def expected(run: Run) -> dict[str, Components]:
    """Components per machine from the truth (pack-1 with its stored change times)."""
    out = {
        name: machine_components(run.machines[name], run.window, SPEED) for name in OPCUA_MACHINES
    }
    out[MODBUS_MACHINE] = machine_components(
        run.machines[MODBUS_MACHINE], run.window, SPEED, _modbus_timed(run)
    )
    return out


def by_machine(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["id"].rsplit("/", 1)[-1]: entry for entry in answer["by_equipment"]}


def assert_figures(label: str, got: dict[str, Any], want: Components) -> None:
    problems = []
    for key, value in want.ratios().items():
        if not math.isclose(got[key], value, rel_tol=REL):
            problems.append(f"{key}: API {got[key]!r}, truth {value!r}")
    for key, value in want.times_s().items():
        if not math.isclose(got["times_s"][key], value, abs_tol=ABS_S):
            problems.append(f"times_s.{key}: API {got['times_s'][key]!r}, truth {value!r}")
    counts = {"good": want.good, "scrap": want.scrap, "total": want.good + want.scrap}
    for key, value in counts.items():
        if got["counts"][key] != value:
            problems.append(f"counts.{key}: API {got['counts'][key]}, truth {value}")
    assert not problems, f"{label}:\n  " + "\n  ".join(problems)


# -- the proof ----------------------------------------------------------------------------


def test_scenario_fits_the_model(runs: dict[str, Run]) -> None:
    """The preconditions _truth_oee relies on hold for the scenario as it played."""
    run = runs["clean"]
    start, end = run.window
    for machine in run.machines.values():
        assert shortest_stop_s(machine) > MICRO_STOP_THRESHOLD_S, machine.name
        assert machine.parts, f"{machine.name} made nothing"
        near_edges = [p for p in machine.parts if abs((p.at - start).total_seconds()) < 1
                      or abs((p.at - end).total_seconds()) < 1]  # fmt: skip
        assert not near_edges, f"{machine.name}: parts within 1 s of the window's edges"
        assert any(p.good for p in machine.parts)
    assert any(not p.good for m in run.machines.values() for p in m.parts), "no scrap at all"


@pytest.mark.parametrize("name", ["clean", "faulted"])
def test_opcua_state_changes_are_stored_at_their_source_time(
    runs: dict[str, Run], name: str
) -> None:
    run = runs[name]
    for machine in OPCUA_MACHINES:
        truth, stored = split_at_cutoff(run, machine)
        assert stored == truth, f"{name}: {machine}"


@pytest.mark.parametrize("name", ["clean", "faulted"])
def test_api_oee_equals_the_truth_per_machine_and_for_the_line(
    runs: dict[str, Run], name: str
) -> None:
    run = runs[name]
    want = expected(run)
    got = by_machine(run.answer)
    assert set(got) == set(want)
    for machine, components in want.items():
        assert_figures(f"{name} {machine}", got[machine], components)
        assert got[machine]["flags"] == [], got[machine]["flags"]
    line = want["press-1"] + want["weld-1"] + want["pack-1"]
    assert_figures(f"{name} line", run.answer["total"], line)


def test_faults_really_happened(runs: dict[str, Run]) -> None:
    notes = runs["faulted"].notes
    outage = notes["outage"]
    assert outage["disconnected"], "the agent never reported the broker as lost"
    assert outage["depth_max"] > 0, "no event waited in the buffer during the outage"
    assert notes["agent_exit"] == -9
    old_pid, new_pid = notes["agent_pids"]
    assert old_pid != new_pid


def test_broker_outage_and_agent_sigkill_give_the_same_numbers(runs: dict[str, Run]) -> None:
    clean, faulted = by_machine(runs["clean"].answer), by_machine(runs["faulted"].answer)
    for machine in (*OPCUA_MACHINES, MODBUS_MACHINE):
        assert faulted[machine]["counts"] == clean[machine]["counts"], machine
        assert faulted[machine]["times_s"]["ideal_production"] == pytest.approx(
            clean[machine]["times_s"]["ideal_production"], rel=REL
        )
    for machine in OPCUA_MACHINES:  # source timestamps: the same figures
        for key in ("availability", "performance", "quality", "oee"):
            assert faulted[machine][key] == pytest.approx(clean[machine][key], rel=REL), (
                machine,
                key,
            )
        for key, seconds in clean[machine]["times_s"].items():
            assert faulted[machine]["times_s"][key] == pytest.approx(seconds, abs=ABS_S), (
                machine,
                key,
            )
