"""validate_message against decode_batch on generated batches (hypothesis).

The oracle is decode_batch plus the collector's two rules written the slow, obvious way
over its models. Generated batches are valid ones with every optional-field and
timestamp variant, then mutated: a field dropped or given another value (wrong types,
out-of-range numbers, bad ids, other versions, mixed equipment...), raw JSON literals
(NaN, 1e400, 5000-digit integers, deep nesting), and bytes (invalid UTF-8, BOM, cuts).
They must agree on accept/refuse, on reason and text for what decode_batch refuses, and
accepted rows must carry the models' values. validate_message never raises. Each field's
bounds are also pinned one by one by the table in test_ingest_validate.py.
"""

from __future__ import annotations

import copy
import json
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from collector.ingest.validate import validate_message
from collector.records import AcceptedBatch, DeadLetter, Equipment
from lineside_protocol import (
    EVENT_TYPES,
    MAX_BATCH_BYTES,
    ProtocolError,
    RejectReason,
    decode_batch,
    parse_topic,
)

RECEIVED_AT = datetime(2030, 1, 1, tzinfo=UTC)
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LEVELS = ("enterprise", "site", "area", "line", "equipment")
PATHS = [
    ("acme", "plant-1", "pressing", "line-3", "press-1"),
    ("acme", "plant-1", "pressing", "line-3", "press-2"),
    ("Umbrella_Corp", "p9", "_agentsx", "L", "m-00"),
]
AGENTS = ["agent-7", "edge.pc_1", "A"]
RAW = {  # sentinel strings, replaced by raw JSON text after encoding
    "__NaN__": "NaN",
    "__-Infinity__": "-Infinity",
    "__1e400__": "1e400",
    "__int5000__": "9" * 5000,
    "__deep1100__": "[" * 1100 + "]" * 1100,
}
ODD_VALUES = [
    *(None, True, False, 0, -1, 1, 2, 1.0, 0.5, -0.0, 1e300, 2**63, 2**64 + 1, -(2**63) - 1),
    *("", "x", "Good", "running", "offline", "max_age", "order_changed", "1767600002"),
    *("2026-01-05T08:00:02Z", "2026-01-05T08:00:02", "2026-01-05 08:00:02.000Z"),
    *("9999-12-31T23:59:59-01:00", "1970-01-01T00:00:00Z", "2099-01-01T00:00:00.000Z"),
    *("3b241101-e2bb-4255-8caf-4136c566a962", "019B8D34-B43B-7019-853B-A19D0B78D8A8"),
    *("019b8d34-b43b-7019-853b-a19d0b78d8a8\n", "agent-7\n", "press-1\n", "_agents", "a b"),
    *("x" * 129, "\ud800", "\u0000", "tag.sampled", "machine.exploded"),
    *([], {}, [1], {"a": 1}, json.loads("[" * 40 + "]" * 40), *RAW),
]


CONFUSERS = [None, True, 0, -1, 1.5, "", [], 2**64 + 1, "x" * 129]
EVENT_FIELDS = ["seq", "correlation_id", "causation_id", "historical", "payload"]
EVENT_FIELDS += ["event_time", "received_time", "event_id", "schema_version", "agent_id"]
PAYLOAD_FIELDS = {
    "tag.sampled": ["tag", "value", "unit", "quality", "status"],
    "production.counted": [
        *("good", "scrap", "total", "product_id", "order_id", "counter_reset", "interval_start")
    ],
    "equipment.state_changed": ["state", "previous_state", "raw_value", "reason_code"],
    "production.started": ["order_id", "product_id", "ideal_cycle_time_s"],
    "production.ended": ["order_id", "product_id", "reason"],
    "buffer.overflowed": [
        *("dropped_events", "first_seq", "last_seq", "first_event_time", "last_event_time"),
        "reason",
    ],
}


def uuid7_text(bits: int) -> str:
    value = (bits & ~(0xF << 76) & ~(0x3 << 62)) | (0x7 << 76) | (0b10 << 62)
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


ids = st.builds(uuid7_text, st.integers(0, 2**128 - 1))
texts = st.one_of(st.sampled_from(["order-4711", "bracket-a", "Bügel-ß", ""]), st.text(max_size=8))


@st.composite
def timestamps(draw: st.DrawFn) -> str:
    wide = draw(st.integers(0, 19)) == 0  # now and then outside the collector's bounds
    moment = draw(
        st.datetimes(
            min_value=datetime(1995 if wide else 2001, 1, 1),
            max_value=datetime(2031 if wide else 2029, 1, 1),
            timezones=st.just(UTC),
        )
    )
    # mostly forms the fast path reads (so that mutations meet it), now and then others
    form = draw(st.sampled_from([0] * 24 + [1, 2, 3, 7] * 4 + [4, 5, 6]))
    if form == 0:
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if form == 1:
        return moment.isoformat(timespec="microseconds")
    if form == 2:
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if form == 3:
        return moment.astimezone(timezone(timedelta(hours=-7))).isoformat(timespec="seconds")
    if form == 4:
        return (
            moment.isoformat(timespec="milliseconds").replace("+00:00", "+05:30").replace("T", "t")
        )
    if form == 5:
        return moment.strftime("%Y-%m-%d %H:%M:%S.%f1Z")
    if form == 6:
        return str(int(moment.timestamp()))
    return moment.isoformat().replace("+00:00", "-00:00")


def optional(
    draw: st.DrawFn, payload: dict[str, Any], name: str, values: st.SearchStrategy
) -> None:
    choice = draw(st.integers(0, 3))
    if choice == 0:
        return  # absent
    payload[name] = None if choice == 1 else draw(values)


@st.composite
def payloads(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    states = st.sampled_from(["running", "idle", "starved", "blocked", "offline", "changeover"])
    numbers = st.one_of(
        st.integers(-5, 10**6),
        st.floats(-1e6, 1e6),
        st.floats(allow_nan=False, allow_infinity=False),  # 1e300 and the like: slow path
    )
    counts = st.integers(0, 10**6)
    p: dict[str, Any] = {}
    if kind == "tag.sampled":
        p = {
            "tag": draw(st.text(min_size=1, max_size=20)),
            "value": draw(st.one_of(numbers, st.booleans(), texts)),
        }
        p |= {"quality": draw(st.sampled_from(["good", "uncertain", "bad"])), "status": draw(texts)}
        optional(draw, p, "unit", texts)
    elif kind == "production.counted":
        good, scrap = draw(counts), draw(counts)
        p = {"good": good, "scrap": scrap, "total": good + scrap}
        for name in ("product_id", "order_id"):
            optional(draw, p, name, texts)
        optional(draw, p, "interval_start", timestamps())
        if draw(st.booleans()):
            p["counter_reset"] = draw(st.booleans())
    elif kind == "equipment.state_changed":
        p = {"state": draw(states)}
        optional(draw, p, "previous_state", states)
        optional(draw, p, "raw_value", st.one_of(numbers, texts))
        optional(draw, p, "reason_code", counts)
    elif kind == "production.started":
        for name in ("order_id", "product_id"):
            optional(draw, p, name, texts)
        optional(draw, p, "ideal_cycle_time_s", st.floats(0.001, 1e4) | st.integers(1, 100))
    elif kind == "production.ended":
        p = {"reason": draw(st.sampled_from(["order_changed", "product_changed", "agent_stopped"]))}
        for name in ("order_id", "product_id"):
            optional(draw, p, name, texts)
    else:
        p = {
            "dropped_events": draw(st.integers(1, 10**6)),
            "first_seq": draw(counts),
            "last_seq": draw(counts),
        }
        p |= {"first_event_time": draw(timestamps()), "last_event_time": draw(timestamps())}
        p["reason"] = draw(st.sampled_from(["max_bytes", "max_age"]))
    if draw(st.integers(0, 5)) == 0:
        p["future_field"] = draw(st.one_of(texts, counts, st.lists(counts, max_size=2)))
    return p


@st.composite
def batches(draw: st.DrawFn) -> dict[str, Any]:
    path = dict(zip(LEVELS, draw(st.sampled_from(PATHS)), strict=True))
    agent = draw(st.sampled_from(AGENTS))
    events = []
    for seq in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(sorted(EVENT_TYPES)))
        event: dict[str, Any] = {
            "schema_version": 1,
            "event_id": draw(ids.map(str.upper) if draw(st.integers(0, 9)) == 0 else ids),
            "type": kind,
            "agent_id": agent,
            "equipment": dict(path),
            "seq": seq,
            "event_time": draw(timestamps()),
            "received_time": draw(timestamps()),
            "payload": draw(payloads(kind)),
        }
        for name in ("correlation_id", "causation_id"):
            optional(draw, event, name, texts)
        if draw(st.booleans()):
            event["historical"] = draw(st.booleans())
        if draw(st.integers(0, 9)) == 0:
            event["trace"] = {"span": draw(texts)}
        events.append(event)
    return {
        "schema_version": 1,
        "batch_id": draw(ids),
        "agent_id": agent,
        "equipment": path,
        "sent_at": draw(timestamps()),
        "events": events,
    }


def slots(value: Any) -> list[tuple[Any, Any]]:
    """Every (container, key) in a JSON document, outermost first."""
    found: list[tuple[Any, Any]] = []
    keys = (
        value.keys()
        if isinstance(value, dict)
        else range(len(value))
        if isinstance(value, list)
        else ()
    )
    for key in keys:
        found.append((value, key))
        found += slots(value[key])
    return found


def odd(draw: st.DrawFn, values: list[Any]) -> Any:
    """One of ``values``, copied: later mutations must not change the list itself."""
    return copy.deepcopy(draw(st.sampled_from(values)))


def retarget(draw: st.DrawFn, batch: dict[str, Any]) -> None:
    """One of the mistakes decode_batch has a rule (and a reason) for."""
    event = draw(st.sampled_from(batch["events"]))
    versions = st.sampled_from([2, 0, -1, "1", True, 1.0, None, 2**70])
    mistake = draw(st.sampled_from([0, 1, 2, 3, 4, 5, 6, 7, *[8, 9] * 6]))
    if mistake == 0:
        batch["schema_version"] = draw(versions)
    elif mistake == 1:
        event["schema_version"] = draw(versions)
    elif mistake == 2:
        event["agent_id"] = draw(st.sampled_from([*AGENTS, "agent 7", None]))
    elif mistake == 3:
        other = draw(st.sampled_from(PATHS))
        event["equipment"] = dict(zip(LEVELS, other, strict=True))
    elif mistake == 4:
        event["type"] = draw(st.sampled_from([*EVENT_TYPES, "machine.exploded", "", None, 1]))
    elif mistake == 5:
        batch["events"] = odd(draw, [[], {}, None, [1], [[]]])
    elif mistake == 6:
        event["payload"].update(total=draw(st.integers(-1, 3)), good=1, scrap=1)
    elif mistake == 7:
        event.pop(draw(st.sampled_from(sorted(event))))
    else:  # any known field, present or not, gets a value of a confusable type
        target = event if mistake == 8 else event["payload"]
        names = EVENT_FIELDS if mistake == 8 else PAYLOAD_FIELDS[event["type"]]
        target[draw(st.sampled_from(names))] = odd(draw, CONFUSERS)


@st.composite
def messages(draw: st.DrawFn) -> tuple[str, bytes]:
    batch = draw(batches())
    topic = "lineside/v1/{enterprise}/{site}/{area}/{line}/{equipment}/events".format(
        **batch["equipment"]
    )
    if draw(st.booleans()):
        retarget(draw, batch)
    for _ in range(draw(st.sampled_from([0, 0, 1, 2]))):
        container, key = draw(st.sampled_from(slots(batch)))
        if isinstance(container, dict) and draw(st.integers(0, 3)) == 0:
            del container[key]
        else:
            container[key] = odd(draw, ODD_VALUES)
    text = json.dumps(batch, ensure_ascii=draw(st.booleans()))
    for sentinel, raw in RAW.items():
        text = text.replace(f'"{sentinel}"', raw)
    data = text.encode("utf-8", "surrogatepass")
    cut = draw(st.integers(0, 9))
    if cut == 0:
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(max_size=2)) + data[at + draw(st.integers(0, 2)) :]
    elif cut == 1:
        data = b"\xef\xbb\xbf" + data
    if draw(st.integers(0, 19)) == 0:
        topic = draw(
            st.sampled_from(
                ["lineside/v1/acme/plant-1/_agents/agent-7/acks", "", "x/y", topic + "/"]
            )
        )
    return topic, data


def oracle(
    topic: str, data: bytes, max_future_s: float, max_bytes: int = MAX_BATCH_BYTES
) -> tuple[str, Any, Any]:
    """decode_batch's verdict, then the collector's rules written plainly over its models."""
    try:
        model = decode_batch(data, max_bytes=max_bytes)
    except ProtocolError as error:
        return "refused", error.reason.value, error.message
    except Exception as error:  # decode_batch can fail outright on a few inputs
        return "crashed", error, None
    try:
        path = parse_topic(topic).path
    except ProtocolError:
        path = None
    if path is None or path.levels() != model.equipment.levels():
        return "collector", RejectReason.BAD_TOPIC.value, repr(topic)
    latest = RECEIVED_AT + timedelta(seconds=max_future_s) if math.isfinite(max_future_s) else None
    for index, event in enumerate(model.events):
        for field in ("event_time", "received_time"):
            value = getattr(event, field)
            if value < EARLIEST or (latest is not None and value > latest):
                return "collector", RejectReason.INVALID_EVENT.value, f"events[{index}].{field}: "
    return "accepted", model, json.loads(data)


def assert_agrees(
    topic: str, data: bytes, max_future_s: float, max_bytes: int = MAX_BATCH_BYTES
) -> None:
    result = validate_message(
        topic, data, RECEIVED_AT, max_future_s=max_future_s, max_bytes=max_bytes
    )
    verdict, first, second = oracle(topic, data, max_future_s, max_bytes)
    if verdict != "accepted":
        assert isinstance(result, DeadLetter), verdict
        assert (result.topic, result.payload, result.received_at) == (topic, data, RECEIVED_AT)
        assert result.reason in {reason.value for reason in RejectReason}
        if verdict == "refused":
            assert (result.reason, result.detail) == (first, second)
        elif verdict == "collector":
            assert result.reason == first
            assert second in result.detail
        return
    assert isinstance(result, AcceptedBatch), f"{result.reason}: {result.detail}"
    model, document = first, second
    assert (result.batch_id, result.agent_id, result.sent_at) == (
        model.batch_id,
        model.agent_id,
        model.sent_at,
    )
    assert result.equipment == Equipment(*model.equipment.levels())
    assert result.payload_bytes == len(data)
    assert len(result.events) == len(model.events)
    for row, event, raw in zip(result.events, model.events, document["events"], strict=True):
        assert row.event_id == event.event_id
        assert (row.type, row.seq, row.historical) == (event.type, event.seq, event.historical)
        assert (row.correlation_id, row.causation_id) == (event.correlation_id, event.causation_id)
        assert (row.event_time, row.received_time) == (event.event_time, event.received_time)
        assert row.event_time.utcoffset() == row.received_time.utcoffset() == timedelta(0)
        assert type(event.payload).model_validate(row.payload) == event.payload
        assert row.payload == raw["payload"]


@pytest.mark.slow(12)
@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    messages(), st.sampled_from([600.0, math.inf]), st.sampled_from([MAX_BATCH_BYTES] * 9 + [900])
)
def test_validate_message_agrees_with_decode_batch(
    message: tuple[str, bytes], max_future_s: float, max_bytes: int
) -> None:
    topic, data = message
    assert_agrees(topic, data, max_future_s, max_bytes)


@pytest.mark.slow(12)
@settings(max_examples=1000, deadline=None)
@given(batches(), st.data())
def test_one_wrong_value_in_an_otherwise_valid_batch(
    batch: dict[str, Any], data: st.DataObject
) -> None:
    """Aimed at the fast path's strictness: one known field, one confusable value."""
    event = data.draw(st.sampled_from(batch["events"]))
    on_payload = data.draw(st.booleans())
    target = event["payload"] if on_payload else event
    names = PAYLOAD_FIELDS[event["type"]] if on_payload else EVENT_FIELDS
    target[data.draw(st.sampled_from(names))] = odd(data.draw, CONFUSERS)
    topic = "lineside/v1/{enterprise}/{site}/{area}/{line}/{equipment}/events".format(
        **batch["equipment"]
    )
    assert_agrees(topic, json.dumps(batch).encode(), math.inf)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80), st.binary(max_size=300))
@example("lineside/v1/a/b/c/d/e/events", b"")
@example("lineside/v1/a/b/c/d/e/events", b"[" * 1100 + b"]" * 1100)
def test_never_raises_on_any_bytes_and_topic(topic: str, data: bytes) -> None:
    assert_agrees(topic, data, 600.0)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_agrees_on_arbitrary_json(value: Any) -> None:
    assert_agrees("lineside/v1/a/b/c/d/e/events", json.dumps(value).encode(), 600.0)
