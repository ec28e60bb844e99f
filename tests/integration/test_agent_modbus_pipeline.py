"""A simulated shift through a real Modbus server, the agent's Modbus source and its
pipeline: the events add up to what the simulator's ground truth says happened."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from _modbus_helpers import build_sim, wait_until

from edge_agent.config import load_config
from edge_agent.config.models import PollSampling
from edge_agent.config.roles import tags_by_connection
from edge_agent.pipeline import EventPipeline, MemorySink
from edge_agent.samples import Sample
from edge_agent.sequences import SequenceCounter
from edge_agent.sources.modbus import ModbusSource
from simulators.faces.modbus import ModbusFace
from simulators.faults.state import FaultState
from simulators.scenario.loader import load_scenario

ROOT = Path(__file__).parent.parent.parent
START = datetime(2026, 11, 30, 6, 0, tzinfo=ZoneInfo("Europe/Berlin"))


async def test_pack_machine_shift_matches_ground_truth(tmp_path: Path) -> None:
    truth_path = tmp_path / "truth.jsonl"
    bundle = build_sim(load_scenario("line-3-machines"), START, truth_path)
    sim, clock = bundle.sim, bundle.clock
    face = ModbusFace(sim, port=0, faults=FaultState())
    await face.start()
    sim.subscribe(face.apply)

    config_text = (ROOT / "config" / "agent.line-3-machines.yaml").read_text()
    config_path = tmp_path / "agent.yaml"
    config_path.write_text(config_text.replace("port: 5020", f"port: {face.port}"))
    config = load_config(config_path)
    fast = PollSampling(interval_s=0.02)
    tags = [
        (tag_id, tag.model_copy(update={"sampling": fast}))
        for tag_id, tag in tags_by_connection(config)["pack-modbus"]
    ]
    sink = MemorySink()
    pipeline = EventPipeline(config, SequenceCounter(), sink)
    latest: dict[str, object] = {}

    def emit(items: list) -> None:
        for item in items:
            if isinstance(item, Sample):
                latest[item.tag] = item.value
        pipeline.on_items(items)

    source = ModbusSource(config.connection("pack-modbus"), tags)
    stop = asyncio.Event()
    task = asyncio.create_task(source.run(emit, stop))
    pack = sim.machines["pack-1"]
    try:
        end = START + timedelta(hours=8, minutes=2)
        while clock.now() < end:
            clock.advance(120)
            sim.step()
            want = (pack.counters.total, pack.counters.good, pack.signals()["state"].value)

            def caught_up(want: tuple = want) -> bool:
                seen = tuple(latest.get(f"pack-1.{t}") for t in ("total", "good", "state"))
                return seen == want

            await wait_until(caught_up, 10)
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
        await face.stop()
        sim.close()

    truth = [json.loads(line) for line in truth_path.read_text().splitlines()]
    parts = [r for r in truth if r["type"] == "part" and r["machine"] == "pack-1"]
    counted = sink.of_type("production.counted", "pack-1")
    assert sum(e.payload.good for e in counted) == sum(p["good"] for p in parts)
    assert sum(e.payload.scrap for e in counted) == sum(not p["good"] for p in parts)
    assert len(parts) > 5000

    true_states = ["idle"] + [
        r["to"] for r in truth if r["type"] == "state" and r["machine"] == "pack-1"
    ]
    seen_states = [e.payload.state for e in sink.of_type("equipment.state_changed", "pack-1")]
    assert seen_states == true_states

    orders = [e.payload.order_id for e in sink.of_type("production.started", "pack-1")]
    assert orders == ["9001"]
    assert [e.seq for e in sink.events if e.equipment.equipment == "pack-1"] == list(
        range(len([e for e in sink.events if e.equipment.equipment == "pack-1"]))
    )
