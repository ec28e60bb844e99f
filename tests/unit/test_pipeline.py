"""Config -> roles -> derivers -> stamped wire events, without PLCs."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge_agent.config import load_config
from edge_agent.pipeline import CoalescingIntake, EventPipeline, MemorySink
from edge_agent.samples import ConnectionChange, Quality, Sample
from edge_agent.sequences import SequenceCounter
from edge_agent.stamp import WireEvent
from lineside_protocol import (
    EVENT_ADAPTER,
    EventBatch,
    decode_batch,
    encode_batch,
    is_uuid7,
    new_event_id,
)

CONFIG = Path(__file__).parent.parent.parent / "config" / "agent.line-3-machines.yaml"
T0 = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)


def sample(tag: str, value: object, seconds: float, quality: Quality = Quality.GOOD) -> Sample:
    at = T0 + timedelta(seconds=seconds)
    return Sample(tag, value, quality, "Good", at, at, at + timedelta(milliseconds=5))


@pytest.fixture
def pipeline() -> tuple[EventPipeline, MemorySink, SequenceCounter]:
    store = SequenceCounter()
    sink = MemorySink()
    return EventPipeline(load_config(CONFIG), store, sink), sink, store


def test_samples_become_numbered_wire_events(pipeline) -> None:
    pipe, sink, _ = pipeline
    pipe.on_items(
        [
            sample("press-1.order", "9001", 0),
            sample("press-1.product", "panel-x", 0),
            sample("press-1.state", 1, 0),
            sample("press-1.total", 100, 0),
            sample("press-1.good", 98, 0),
        ]
    )
    pipe.on_items([sample("press-1.total", 110, 30), sample("press-1.good", 107, 30)])
    pipe.on_items([sample("press-1.state", 6, 40), sample("press-1.reason", 17, 40)])
    types = [e.type for e in sink.events]
    assert types == [
        "production.started",
        "equipment.state_changed",
        "production.counted",
        "equipment.state_changed",
    ]
    assert [e.seq for e in sink.events] == [0, 1, 2, 3]
    started, _, counted, stopped = sink.events
    assert started.payload.ideal_cycle_time_s == 3.0
    assert (counted.payload.good, counted.payload.scrap, counted.payload.total) == (9, 1, 10)
    assert counted.correlation_id == "9001"
    assert stopped.payload.state == "unplanned_stop"
    assert stopped.payload.reason_code == 17
    assert str(stopped.equipment)
    assert stopped.equipment.line == "line2"
    assert all(is_uuid7(e.event_id) for e in sink.events)
    assert counted.event_time == T0 + timedelta(seconds=30)  # PLC source time


def test_sequence_numbers_continue_from_the_persisted_next_numbers() -> None:
    """The buffer seeds the counter with what it committed; numbering continues there."""
    config = load_config(CONFIG)
    first = SequenceCounter()
    EventPipeline(config, first, MemorySink()).on_items([sample("weld-1.state", 6, 0)])
    assert first.next_numbers() == {"weld-1": 1}
    sink = MemorySink()
    EventPipeline(config, SequenceCounter(first.next_numbers()), sink).on_items(
        [sample("weld-1.state", 6, 1)]
    )
    assert [e.seq for e in sink.events] == [1]


def test_connection_loss_puts_every_dependent_equipment_offline(pipeline) -> None:
    pipe, sink, _ = pipeline
    pipe.on_items(
        [sample("press-1.state", 1, 0), sample("weld-1.state", 6, 0), sample("pack-1.state", 1, 0)]
    )
    pipe.on_items([ConnectionChange("line2-opcua", False, T0 + timedelta(seconds=5), "timeout")])
    offline = [e for e in sink.of_type("equipment.state_changed") if e.payload.state == "offline"]
    assert sorted(e.equipment.equipment for e in offline) == ["press-1", "weld-1"]


def test_events_fit_the_batch_envelope(pipeline) -> None:
    pipe, sink, _ = pipeline
    pipe.on_items([sample("pack-1.state", 1, 0), sample("pack-1.speed", 20.5, 0)])
    events = [e for e in sink.events if e.equipment.equipment == "pack-1"]
    batch = EventBatch(
        batch_id=new_event_id(),
        agent_id="line2-pc1",
        equipment=events[0].equipment,
        sent_at=T0,
        events=events,
    )
    assert decode_batch(encode_batch(batch)) == batch


def test_unknown_tags_are_counted_not_fatal(pipeline) -> None:
    pipe, sink, _ = pipeline
    pipe.on_items([sample("nope.state", 1, 0)])
    assert pipe.unknown_tags == 1
    assert sink.events == []


def test_wire_dicts_are_exactly_what_the_models_produce() -> None:
    """The hot path builds plain dicts; they must equal the models' own JSON form."""
    # Times with microseconds: the wire keeps milliseconds.
    items = [
        sample("press-1.order", "9001", 0.0001),
        sample("press-1.product", "panel-x", 0.0001),
        sample("press-1.state", 1, 0.0001),
        sample("press-1.total", 100, 0.1234567),
        sample("press-1.good", 98, 0.1234567),
        sample("press-1.temperature", 41.25, 0.0001),
        sample("press-1.total", 110, 30.0004),
        sample("press-1.good", 107, 30.0004),
        sample("press-1.temperature", 45.5, 30.0004),
        sample("press-1.order", "9002", 60.0009),
        sample("press-1.state", 6, 61.5555),
        sample("press-1.reason", 17, 61.5555),
    ]
    pipe = EventPipeline(load_config(CONFIG), SequenceCounter(), MemorySink())
    wire = pipe.on_items(items)
    assert {event["type"] for event in wire} == {
        "production.started",
        "production.ended",
        "equipment.state_changed",
        "production.counted",
        "tag.sampled",
    }
    for event in wire:
        model = EVENT_ADAPTER.validate_python(event)
        # The forwarder adds "historical" when it sends; live is the model's default.
        assert json.loads(model.model_dump_json()) == {**event, "historical": False}


async def test_the_intake_streams_a_burst_in_slices_with_loop_turns_between() -> None:
    def burst(count: int) -> list[Sample]:
        return [sample("press-1.state", 1 + 5 * (k % 2), k) for k in range(count)]

    whole_sink = MemorySink()
    whole = CoalescingIntake(EventPipeline(load_config(CONFIG), SequenceCounter(), whole_sink))
    whole.emit(burst(2500))
    made = whole.flush()

    sink = MemorySink()
    calls: list[int] = []  # events the sink had at each turn of the other task
    intake = CoalescingIntake(EventPipeline(load_config(CONFIG), SequenceCounter(), sink))
    intake.emit(burst(2500))

    async def note_each_turn() -> None:
        while True:
            calls.append(len(sink.events))
            await asyncio.sleep(0)

    other = asyncio.create_task(note_each_turn())
    await asyncio.sleep(0)
    assert await intake.flush_streaming() == made == len(whole_sink.events) > 0
    other.cancel()
    # the other task ran before the first slice of 1,000 samples and between the slices
    assert len(calls) >= 3
    assert 0 == calls[0] < calls[1] < calls[2] < made
    assert [(e.type, e.seq, e.event_time) for e in sink.events] == [
        (e.type, e.seq, e.event_time) for e in whole_sink.events
    ]


async def _until(check: Callable[[], bool], timeout_s: float) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.001)
    return True


async def test_the_intake_derives_an_emit_at_once_not_after_its_interval() -> None:
    sink = MemorySink()
    # an interval far longer than the test may wait: only the wake-up can flush in time
    intake = CoalescingIntake(EventPipeline(load_config(CONFIG), SequenceCounter(), sink), 30.0)
    stop = asyncio.Event()
    runner = asyncio.create_task(intake.run(stop))
    await asyncio.sleep(0)  # run() is waiting
    intake.emit([sample("press-1.state", 1, 0)])
    assert await _until(lambda: len(sink.events) == 1, 5.0)
    intake.emit([sample("press-1.state", 6, 1)])
    assert await _until(lambda: len(sink.events) == 2, 5.0)
    stop.set()
    await asyncio.wait_for(runner, 5.0)


async def test_the_intake_coalesces_what_is_emitted_while_it_derives() -> None:
    sizes: list[int] = []
    pipeline = EventPipeline(load_config(CONFIG), SequenceCounter(), lambda e: sizes.append(len(e)))
    intake = CoalescingIntake(pipeline, 30.0)
    calls: list[int] = []
    on_items = pipeline.on_items

    def counting(items: Sequence[Sample | ConnectionChange]) -> list[WireEvent]:
        calls.append(len(items))
        if len(calls) == 1:  # three sources answer while the first flush is derived
            for k in range(3):
                intake.emit([sample("press-1.state", 1 + 5 * (k % 2), 10 + k)])
        return on_items(items)

    pipeline.on_items = counting  # type: ignore[method-assign]
    stop = asyncio.Event()
    runner = asyncio.create_task(intake.run(stop))
    await asyncio.sleep(0)
    intake.emit([sample("press-1.state", 6, 0)])
    assert await _until(lambda: len(calls) == 2, 5.0)
    stop.set()
    await asyncio.wait_for(runner, 5.0)
    assert calls == [1, 3]  # the three emits came out in one pipeline call


async def test_the_intake_flushes_what_is_left_when_stopped() -> None:
    sink = MemorySink()
    intake = CoalescingIntake(EventPipeline(load_config(CONFIG), SequenceCounter(), sink), 30.0)
    stop = asyncio.Event()
    runner = asyncio.create_task(intake.run(stop))
    await asyncio.sleep(0)
    stop.set()
    intake.emit([sample("press-1.state", 1, 0)])  # after the stop, before run() returns
    await asyncio.wait_for(runner, 5.0)
    assert len(sink.events) == 1


async def test_an_emit_from_another_thread_is_flushed_by_the_interval() -> None:
    sink = MemorySink()
    intake = CoalescingIntake(EventPipeline(load_config(CONFIG), SequenceCounter(), sink), 0.05)
    stop = asyncio.Event()
    runner = asyncio.create_task(intake.run(stop))
    await asyncio.sleep(0)
    thread = threading.Thread(target=intake.emit, args=([sample("press-1.state", 1, 0)],))
    thread.start()
    thread.join()
    assert await _until(lambda: len(sink.events) == 1, 5.0)
    stop.set()
    await asyncio.wait_for(runner, 5.0)
