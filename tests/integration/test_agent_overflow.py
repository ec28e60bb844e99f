"""A full buffer reaches the collector as ``buffer.overflowed`` events (runner wiring).

The buffer's own tests prove what it drops; this proves what the running agent does
with a drop: one ``buffer.overflowed`` event per equipment, stamped in that equipment's
sequence and committed to the buffer like any other event.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
from ruamel.yaml import YAML

from edge_agent.buffer import BufferConfig, EventBuffer
from edge_agent.config.models import AgentConfig
from edge_agent.runner import Generation
from edge_agent.sequences import SequenceCounter
from lineside_protocol import EVENT_ADAPTER

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "agent.line-3-machines.yaml"


def padded_event(generation: Generation, seq: int) -> dict:
    """A valid tag.sampled event of press-1 with a large text value (fills bytes fast)."""
    return {
        "schema_version": 1,
        "event_id": f"01939a4e-0000-7000-8000-{seq:012x}",
        "type": "tag.sampled",
        "agent_id": generation.config.agent.id,
        "equipment": generation.pipeline._stamper.path("press-1"),
        "seq": seq,
        "event_time": "2026-11-30T05:00:00.000Z",
        "received_time": "2026-11-30T05:00:00.000Z",
        "correlation_id": None,
        "causation_id": None,
        "payload": {
            "tag": "press-1.temperature",
            "value": "x" * 2000,
            "unit": None,
            "quality": "good",
            "status": "Good",
        },
    }


async def test_dropped_events_become_a_stamped_buffer_overflowed_event(tmp_path: Path) -> None:
    document = YAML(typ="safe").load(EXAMPLE.read_text())
    document["agent"]["data_dir"] = str(tmp_path / "agent")
    document.pop("mqtt", None)
    document["health"] = {"enabled": False}
    config = AgentConfig.model_validate(document)
    buffer = EventBuffer.open(
        BufferConfig(max_bytes=1_048_576, commit_interval_ms=5), tmp_path / "buffer.db"
    )
    try:
        generation = Generation(config, buffer, SequenceCounter(), "hash", "test")
        loop = asyncio.get_running_loop()  # wired as AgentService._start does
        buffer.on_dropped = lambda ranges: loop.call_soon_threadsafe(generation.on_dropped, ranges)
        # 1,000 events of ~2.3 kB: more than the 1 MiB bound, so the oldest are dropped
        generation.sequences.allocate("press-1", 1000)
        buffer.submit([padded_event(generation, seq) for seq in range(1000)])

        def overflowed() -> list[dict]:
            rows = buffer.read_after(0, 100_000)
            events = [orjson.loads(row.body) for row in rows]
            return [e for e in events if e["type"] == "buffer.overflowed"]

        deadline = loop.time() + 10
        while not overflowed():
            assert loop.time() < deadline, "no buffer.overflowed event within 10 s"
            await asyncio.sleep(0.05)
        (event,) = overflowed()
        model = EVENT_ADAPTER.validate_python(event)
        assert model.equipment.equipment == "press-1"
        assert event["seq"] == 1000  # the next number in press-1's own sequence
        payload = event["payload"]
        assert payload["reason"] == "max_bytes"
        assert payload["first_seq"] == 0
        assert payload["last_seq"] == payload["dropped_events"] - 1
        kept = [orjson.loads(r.body)["seq"] for r in buffer.read_after(0, 100_000)]
        assert min(kept) == payload["last_seq"] + 1  # the oldest went, the rest stayed
        assert buffer.status().dropped_events_total == {"press-1": payload["dropped_events"]}
    finally:
        buffer.close()
