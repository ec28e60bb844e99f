"""``edge-agent run`` end to end: simulator -> agent -> Mosquitto -> a confirming consumer.

The consumer stands in for the collector (it acknowledges each batch after "committing"
it), so these tests prove the agent's side of the contract: every captured event
arrives, sequence numbers have no gaps, counts equal the simulator's ground truth,
even when the agent is killed with SIGKILL again and again.
"""

from __future__ import annotations

import contextlib
import json
import random
import signal
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from _agent_process import AgentProcess, line3_agent_config, write_config
from _confirming_consumer import ConfirmingConsumer
from _mosquitto import Mosquitto
from _sim_process import SimProcess, wait_for

from lineside_protocol import EVENT_ADAPTER

pytestmark = pytest.mark.integration

EQUIPMENT = ("press-1", "weld-1", "pack-1")


def events_of(consumer: ConfirmingConsumer) -> list[dict[str, Any]]:
    with consumer.received.lock:
        return list(consumer.received.events.values())


def seqs_by_equipment(events: list[dict[str, Any]]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for event in events:
        out.setdefault(event["equipment"]["equipment"], []).append(event["seq"])
    return {name: sorted(seqs) for name, seqs in out.items()}


def assert_no_gaps(events: list[dict[str, Any]]) -> None:
    """Every equipment's numbers run 0..N once each: nothing lost, no number reused."""
    for name, seqs in seqs_by_equipment(events).items():
        assert seqs == list(range(len(seqs))), f"{name}: gaps or repeats in {seqs[:50]}..."


@pytest.fixture
def broker(tmp_path: Path):
    with Mosquitto(tmp_path / "mosquitto") as mosquitto:
        yield mosquitto


@pytest.mark.slow(15)
def test_run_forwards_every_equipment_and_stops_cleanly(tmp_path: Path, broker: Mosquitto) -> None:
    sim = SimProcess(tmp_path / "sim")
    config = write_config(tmp_path / "agent.yaml", line3_agent_config(tmp_path, sim, broker.port))
    agent = AgentProcess(config, tmp_path / "agent.log")
    try:
        with ConfirmingConsumer(broker.port) as consumer:
            agent.start()
            wait_for(agent.ready, 30, "readiness (PLCs and broker connected)")

            def every_equipment_counted() -> bool:
                counted = {
                    e["equipment"]["equipment"]
                    for e in events_of(consumer)
                    if e["type"] == "production.counted"
                }
                return counted == set(EQUIPMENT)

            wait_for(every_equipment_counted, 60, "counts from every machine")
            status = agent.status()
            assert {d["connection"] for d in status["devices"]} == {"line2-opcua", "pack-modbus"}
            assert all(d["connected"] for d in status["devices"])
            assert status["forwarder"]["connected"] is True

            def round_trips_known() -> bool:
                devices = agent.status()["devices"]
                return all(d["last_round_trip_s"] is not None for d in devices)

            wait_for(round_trips_known, 20, "a round trip to every PLC (OPC UA: the watchdog)")
            wait_for(
                lambda: agent.status()["forwarder"]["confirmed_events_total"] > 0,
                30,
                "collector confirmations reaching the agent",
            )
            assert agent.stop() == 0
        log = agent.log_text()
        assert "event=agent_stopped" in log
        assert "Traceback" not in log
        events = events_of(consumer)
        for event in events:  # every event as received passes the wire contract
            EVENT_ADAPTER.validate_python(event)
        assert_no_gaps(events)
    finally:
        if agent.proc is not None and agent.proc.poll() is None:
            agent.kill()
        sim.stop()


def test_sighup_rejects_a_bad_config_and_applies_a_good_one(
    tmp_path: Path, broker: Mosquitto
) -> None:
    sim = SimProcess(tmp_path / "sim")
    document = line3_agent_config(tmp_path, sim, broker.port)
    config = write_config(tmp_path / "agent.yaml", document)
    agent = AgentProcess(config, tmp_path / "agent.log")
    try:
        with ConfirmingConsumer(broker.port) as consumer:
            agent.start()
            wait_for(agent.ready, 30, "readiness")
            first_hash = agent.status()["config_hash"]

            config.write_text(config.read_text().replace("role: state", "role: stat", 1))
            agent.signal(signal.SIGHUP)
            wait_for(lambda: "event=reload_rejected" in agent.log_text(), 30, "the rejection")
            assert "tags[0].role" in agent.log_text()  # the report names the field
            assert agent.status()["config_hash"] == first_hash  # the old config runs on
            before = len(events_of(consumer))
            wait_for(lambda: len(events_of(consumer)) > before, 30, "events after the rejection")

            document["equipment"] = document["equipment"][:2]  # drop pack-1
            write_config(config, document)
            agent.signal(signal.SIGHUP)
            wait_for(lambda: agent.status()["config_hash"] != first_hash, 30, "the reload")
            assert "event=config_reloaded" in agent.log_text()
            wait_for(agent.ready, 30, "readiness after the reload")
            mark = time.time()
            wait_for(
                lambda: any(
                    arrival > mark for arrival in list(consumer.received.arrival_s.values())
                ),
                30,
                "events after the reload",
            )
            assert agent.stop() == 0
        assert_no_gaps(events_of(consumer))  # numbering continues across the reload
    finally:
        if agent.proc is not None and agent.proc.poll() is None:
            agent.kill()
        sim.stop()


@pytest.mark.timeout(300)
@pytest.mark.slow(65)
def test_sigkill_five_times_loses_no_event_and_no_count(tmp_path: Path, broker: Mosquitto) -> None:
    """A shift at 600x with the agent killed five times: counts equal the ground truth.

    The simulator starts two simulated hours (12 s) before the first part, so the agent
    has read every counter's baseline before production begins; parts made while it is
    dead are counted at its next reading after the restart.
    """
    sim = SimProcess(tmp_path / "sim", "--speed", "600", "--start", "2026-11-30T04:00:00+01:00")
    config = write_config(tmp_path / "agent.yaml", line3_agent_config(tmp_path, sim, broker.port))
    agent = AgentProcess(config, tmp_path / "agent.log")
    rng = random.Random(5)
    try:
        with ConfirmingConsumer(broker.port) as consumer:
            agent.start()
            for _ in range(5):
                time.sleep(rng.uniform(2.0, 5.0))  # let it run: the kill moment is random
                agent.kill()
                agent.start()
            # The scenario ends at 14:00 simulated (60 s at 600x from 04:00).
            wait_for(lambda: all(m["ended"] for m in sim.status()["machines"]), 120, "the end")
            final = {m["name"]: m for m in sim.status()["machines"]}
            expected = {
                name: Counter(good=final[name]["good"], scrap=final[name]["scrap"])
                for name in EQUIPMENT
            }
            with contextlib.suppress(AssertionError):  # compared below, with the difference
                wait_for(lambda: counted(events_of(consumer)) == expected, 60, "final counts")
            events = events_of(consumer)
            with (tmp_path / "received.jsonl").open("w") as dump:  # for a post-mortem
                dump.writelines(json.dumps(e) + "\n" for e in sorted(events, key=by_time))
            assert_no_gaps(events)
            assert counted(events) == expected
            assert agent.stop() == 0
        events = events_of(consumer)
        assert_no_gaps(events)
        assert "Traceback" not in agent.log_text()
    finally:
        if agent.proc is not None and agent.proc.poll() is None:
            agent.kill()
        sim.stop()
    truth = truth_counts(sim)  # complete now that the simulator has stopped
    assert counted(events) == truth
    assert all(truth[name]["good"] > 1000 for name in EQUIPMENT)
    # OPC UA carries the PLC's timestamps: no part is counted before it was made, the
    # intervals do not overlap, and where every part moves one counter (press-1 reads
    # total and good) each interval holds exactly the parts made in it.
    records = sim.truth_records()
    for name in ("press-1", "weld-1"):
        made_at = sorted(
            parse_time(r["ts"]) for r in records if r["type"] == "part" and r["machine"] == name
        )
        so_far, previous_end = 0, None
        for event in sorted(events, key=lambda e: e["seq"]):
            if event["type"] != "production.counted" or event["equipment"]["equipment"] != name:
                continue
            start = parse_time(event["payload"]["interval_start"])
            end = parse_time(event["event_time"])
            assert previous_end is None or start >= previous_end, (name, event["seq"])
            so_far += event["payload"]["total"]
            assert so_far <= sum(1 for ts in made_at if ts <= end), (name, event["seq"])
            if name == "press-1":
                made = sum(1 for ts in made_at if start < ts <= end)
                assert event["payload"]["total"] == made, (name, event["seq"])
            previous_end = end


def truth_counts(sim: SimProcess) -> dict[str, Counter[str]]:
    out: dict[str, Counter[str]] = {name: Counter() for name in EQUIPMENT}
    for record in sim.truth_records():
        if record["type"] == "part":
            out[record["machine"]]["good" if record["good"] else "scrap"] += 1
    return out


def counted(events: list[dict[str, Any]]) -> dict[str, Counter[str]]:
    out: dict[str, Counter[str]] = {name: Counter() for name in EQUIPMENT}
    for event in events:
        if event["type"] == "production.counted":
            payload = event["payload"]
            out[event["equipment"]["equipment"]].update(
                {"good": payload["good"], "scrap": payload["scrap"]}
            )
    return out


def by_time(event: dict[str, Any]) -> tuple[str, str, int]:
    return (event["equipment"]["equipment"], event["received_time"], event["seq"])


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.timeout(300)
@pytest.mark.slow(90)
def test_broker_outage_with_a_plc_hang_and_a_corrupt_buffer_lose_nothing(
    tmp_path: Path, broker: Mosquitto
) -> None:
    """The agent starts on a damaged buffer file (moved aside), then the broker dies for
    20 s while a PLC hangs for 5 s: everything captured arrives, replayed events are
    marked historical, and the counts equal the ground truth."""
    sim = SimProcess(tmp_path / "sim", "--speed", "600", "--start", "2026-11-30T04:00:00+01:00")
    document = line3_agent_config(tmp_path, sim, broker.port)
    config = write_config(tmp_path / "agent.yaml", document)
    damaged = tmp_path / "agent" / "buffer.db"
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(b"this is not a database" * 1000)
    agent = AgentProcess(config, tmp_path / "agent.log")
    try:
        with ConfirmingConsumer(broker.port) as consumer:
            agent.start()
            wait_for(agent.ready, 30, "readiness")
            assert agent.status()["buffer"]["quarantined_files_total"] == 1
            assert list(damaged.parent.glob("buffer.db.corrupt-*"))
            wait_for(lambda: len(events_of(consumer)) > 50, 60, "events before the outage")

            broker.stop()
            wait_for(lambda: not agent.status()["forwarder"]["connected"], 30, "link down")
            depth = agent.status()["buffer"]["depth_events"]
            hang = sim.fault("hang", "5s")
            assert hang.returncode == 0, hang.stderr
            wait_for(
                lambda: agent.status()["buffer"]["depth_events"] > depth + 20,
                30,
                "events buffered during the outage",
            )
            time.sleep(15)  # the outage itself: 20 s in all
            broker.start()
            # reconnect attempts back off up to 30 s (jittered): under load the outage
            # lasts longer and the next attempt can be that far away
            wait_for(lambda: agent.status()["forwarder"]["connected"], 60, "reconnected")

            wait_for(lambda: all(m["ended"] for m in sim.status()["machines"]), 120, "the end")
            final = {m["name"]: m for m in sim.status()["machines"]}
            expected = {
                name: Counter(good=final[name]["good"], scrap=final[name]["scrap"])
                for name in EQUIPMENT
            }
            with contextlib.suppress(AssertionError):  # compared below, with the difference
                wait_for(lambda: counted(events_of(consumer)) == expected, 60, "final counts")
            events = events_of(consumer)
            assert_no_gaps(events)
            assert counted(events) == expected
            assert sum(1 for e in events if e["historical"]) > 20
            assert agent.stop() == 0
        assert "Traceback" not in agent.log_text()
    finally:
        if agent.proc is not None and agent.proc.poll() is None:
            agent.kill()
        sim.stop()
    assert counted(events) == truth_counts(sim)
