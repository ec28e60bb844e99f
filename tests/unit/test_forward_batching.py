"""Stored event bodies -> batch messages (edge_agent.forward.batching and lanes), no broker."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.buffer import BufferedEvent
from edge_agent.forward.batching import Targets, encode_batch_payload, event_cost
from edge_agent.forward.lanes import Lane, SealedBatch
from lineside_protocol import MAX_BATCH_BYTES, decode_batch, new_event_id

AGENT = "agent-7"
LOCATION = SimpleNamespace(enterprise="acme", site="plant-1", area="pressing", line="line-3")
BATCH_ID = "019b8d34-b43b-77db-8011-776e8db7cd33"
SENT_AT = "2026-01-05T08:10:00.123Z"


def wire_event(equipment: str, seq: int, note: str = "", location: Any = LOCATION) -> dict:
    """A valid tag.sampled wire event without ``historical`` (as the buffer stores it)."""
    return {
        "schema_version": 1,
        "event_id": new_event_id(),
        "type": "tag.sampled",
        "agent_id": AGENT,
        "equipment": {
            "enterprise": location.enterprise,
            "site": location.site,
            "area": location.area,
            "line": location.line,
            "equipment": equipment,
        },
        "seq": seq,
        "event_time": "2026-01-05T08:00:02.000Z",
        "received_time": "2026-01-05T08:00:02.050Z",
        "correlation_id": None,
        "causation_id": None,
        "payload": {"tag": "pressure", "value": note or 1.5, "quality": "good", "status": "Good"},
    }


def stored(rowid: int, event: dict) -> BufferedEvent:
    body = orjson.dumps(event)
    return BufferedEvent(rowid, event["equipment"]["equipment"], event["seq"], 0, body)


def payload_of(batch: SealedBatch) -> bytes:
    return encode_batch_payload(batch.target, BATCH_ID, SENT_AT, batch.bodies, batch.historical)


def lane(historical: bool = False, max_events: int = 500, max_bytes: int = 256 * 1024) -> Lane:
    return Lane(historical, max_events, max_bytes, Targets(AGENT, LOCATION))


@pytest.mark.parametrize("historical", [True, False])
def test_concatenated_batch_passes_decode_batch(historical: bool) -> None:
    events = [wire_event("press-1", seq) for seq in range(3)]
    sealed = lane(historical)
    sealed.add([stored(n + 1, event) for n, event in enumerate(events)], now=0.0)
    sealed.seal_all()
    batch = sealed.take_ready()
    payload = payload_of(batch)
    decoded = decode_batch(payload)
    assert decoded.batch_id == BATCH_ID
    assert decoded.agent_id == AGENT
    assert str(decoded.equipment) == "acme/plant-1/pressing/line-3/press-1"
    assert [event.historical for event in decoded.events] == [historical] * 3
    assert [str(event.event_id) for event in decoded.events] == [e["event_id"] for e in events]
    # the bodies are spliced, not re-encoded: each event is its stored bytes plus the flag
    sent = orjson.loads(payload)["events"]
    assert sent == [{"historical": historical, **event} for event in events]
    assert batch.target.topic == "lineside/v1/acme/plant-1/pressing/line-3/press-1/events"


def test_batches_split_at_max_events_and_max_bytes() -> None:
    events = [stored(n + 1, wire_event("press-1", n, "x" * 300)) for n in range(40)]
    by_count = lane(max_events=15)
    by_count.add(events, now=0.0)
    by_count.seal_all()
    assert [len(batch.rowids) for batch in by_count.ready] == [15, 15, 10]
    max_bytes = 4096
    by_size = lane(max_events=500, max_bytes=max_bytes)
    by_size.add(events, now=0.0)
    by_size.seal_all()
    batches = list(by_size.ready)
    assert len(batches) > 1
    for batch in batches:
        payload = payload_of(batch)
        assert len(payload) <= max_bytes
        assert len(decode_batch(payload).events) == len(batch.rowids)
    assert [rowid for batch in batches for rowid in batch.rowids] == list(range(1, 41))


def test_a_batch_is_one_equipment_and_keeps_its_order() -> None:
    events = [stored(n + 1, wire_event(f"press-{n % 3}", n // 3)) for n in range(30)]
    grouped = lane()
    grouped.add(events, now=0.0)
    grouped.seal_all()
    assert len(grouped.ready) == 3
    for batch in grouped.ready:
        decoded = decode_batch(payload_of(batch))
        assert len({str(event.equipment) for event in decoded.events}) == 1
        assert [event.seq for event in decoded.events] == list(range(10))


def test_events_of_an_old_location_get_their_own_batch() -> None:
    moved = SimpleNamespace(enterprise="acme", site="plant-2", area="welding", line="line-1")
    events = [
        stored(1, wire_event("press-1", 0)),
        stored(2, wire_event("press-1", 1, location=moved)),  # buffered before a re-config
        stored(3, wire_event("press-1", 2)),
    ]
    grouped = lane()
    grouped.add(events, now=0.0)
    grouped.seal_all()
    topics = {batch.target.topic: batch.rowids for batch in grouped.ready}
    assert topics == {
        "lineside/v1/acme/plant-1/pressing/line-3/press-1/events": [1, 3],
        "lineside/v1/acme/plant-2/welding/line-1/press-1/events": [2],
    }
    for batch in grouped.ready:
        decode_batch(payload_of(batch))  # no mixed_equipment


def test_unsendable_events_are_returned() -> None:
    huge = stored(1, wire_event("press-1", 0, "y" * MAX_BATCH_BYTES))
    bad_path = stored(2, wire_event("press 1", 0))  # a space: not a topic level
    fine = stored(3, wire_event("press-1", 1))
    grouped = lane()
    assert grouped.add([huge, bad_path, fine], now=0.0) == [huge, bad_path]
    grouped.seal_all()
    assert [batch.rowids for batch in grouped.ready] == [[3]]


def test_an_event_above_max_bytes_but_below_1_mib_goes_alone() -> None:
    big = stored(2, wire_event("press-1", 1, "z" * 10_000))
    events = [stored(1, wire_event("press-1", 0)), big, stored(3, wire_event("press-1", 2))]
    grouped = lane(max_bytes=4096)
    grouped.add(events, now=0.0)
    grouped.seal_all()
    assert [batch.rowids for batch in grouped.ready] == [[1], [2], [3]]
    decode_batch(payload_of(grouped.ready[1]))


def test_linger_seals_only_batches_opened_before_the_cutoff() -> None:
    grouped = lane()
    grouped.add([stored(1, wire_event("press-1", 0))], now=10.0)
    grouped.add([stored(2, wire_event("press-2", 0))], now=10.2)
    assert grouped.oldest_open_at() == 10.0
    grouped.seal_opened_before(10.1)
    assert [batch.rowids for batch in grouped.ready] == [[1]]
    assert grouped.pending_events == 2
    assert grouped.oldest_open_at() == 10.2


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["press-1", "press-2", "oven-7"]), st.integers(0, 3000)),
        min_size=1,
        max_size=60,
    ),
    st.integers(1, 25),
    st.integers(4096, 40_000),
    st.booleans(),
)
def test_any_split_decodes_within_limits_and_keeps_order(
    spec: list[tuple[str, int]], max_events: int, max_bytes: int, historical: bool
) -> None:
    events = [
        stored(n + 1, wire_event(equipment, n, "v" * size))
        for n, (equipment, size) in enumerate(spec)
    ]
    grouped = lane(historical, max_events, max_bytes)
    assert grouped.add(events, now=0.0) == []
    grouped.seal_all()
    seen: dict[str, list[int]] = {}
    for batch in grouped.ready:
        payload = payload_of(batch)
        decoded = decode_batch(payload)
        assert len(batch.rowids) <= max_events
        assert len(payload) <= max_bytes or len(batch.rowids) == 1
        assert all(event.historical is historical for event in decoded.events)
        seen.setdefault(decoded.equipment.equipment, []).extend(batch.rowids)
    for equipment in {equipment for equipment, _size in spec}:
        expected = [event.rowid for event in events if event.equipment == equipment]
        assert seen[equipment] == expected


def test_event_cost_counts_the_flag_and_the_comma() -> None:
    body = orjson.dumps(wire_event("press-1", 0))
    events = [stored(n + 1, orjson.loads(body) | {"seq": n}) for n in range(5)]
    grouped = lane(True)
    grouped.add(events, now=0.0)
    grouped.seal_all()
    batch = grouped.take_ready()
    payload = payload_of(batch)
    estimate = batch.target.header_bytes + sum(event_cost(b, True) for b in batch.bodies)
    assert estimate - 1 == len(payload)  # the first event has no comma


def test_events_whose_path_sits_at_other_offsets_still_share_a_batch() -> None:
    """The path check learns where the path sits in a body; other layouts still match."""
    short = wire_event("press-1", 0)
    longer = wire_event("press-1", 1) | {"type": "counter.incremented.by.a.long.name"}
    nested = {"note": {"equipment": "elsewhere"}} | wire_event("press-1", 2)  # key before
    events = [stored(1, short), stored(2, longer), stored(3, short | {"seq": 3})]
    grouped = lane()
    assert grouped.add(events, now=0.0) == []
    assert grouped.add([stored(4, nested), stored(5, longer | {"seq": 4})], now=0.0) == []
    grouped.seal_all()
    assert [batch.rowids for batch in grouped.ready] == [[1, 2, 3, 4, 5]]
    sent = orjson.loads(payload_of(grouped.ready[0]))["events"]  # (types made up: no decode)
    assert [event["seq"] for event in sent] == [0, 1, 3, 2, 4]


def test_the_oldest_open_batch_is_found_even_if_now_went_backwards() -> None:
    grouped = lane()
    grouped.add([stored(1, wire_event("press-1", 0))], now=10.0)
    grouped.add([stored(2, wire_event("press-2", 0))], now=9.0)  # a caller's clock stepped
    assert grouped.oldest_open_at() == 10.0
    grouped.seal_opened_before(9.5)
    assert not grouped.ready  # both count as opened at 10.0
    grouped.seal_opened_before(10.0)
    assert [batch.rowids for batch in grouped.ready] == [[1], [2]]
    assert grouped.oldest_open_at() is None
