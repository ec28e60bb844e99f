"""The wire contract (lineside_protocol): codecs, topics, ids, schemas, documented examples.

Regression cases kept as data: tests/cases/protocol/<case>/{payload.json,expected.txt}
(+ optional options.json with decode_batch keyword arguments). expected.txt is "ok" or
"<reason>: <message>".
"""

from __future__ import annotations

import json
import pickle
import re
import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from lineside_protocol import (
    EVENT_ADAPTER,
    EVENT_TYPES,
    EVENTS_SUBSCRIPTION,
    SCHEMA_VERSION,
    BatchAck,
    BufferOverflowed,
    BufferOverflowedPayload,
    EquipmentPath,
    EventBatch,
    ProductionCounted,
    ProductionCountedPayload,
    ProductionEnded,
    ProductionEndedPayload,
    ProductionStarted,
    ProductionStartedPayload,
    ProtocolError,
    RejectReason,
    StateChanged,
    StateChangedPayload,
    TagSampled,
    TagSampledPayload,
    agent_ack_topic,
    agent_status_topic,
    decode_ack,
    decode_batch,
    decode_event,
    encode_ack,
    encode_batch,
    event_topic,
    export_schemas,
    is_uuid7,
    new_event_id,
    parse_topic,
    shared_subscription,
    utc_now,
    uuid7_time,
)
from lineside_protocol.ids import UUIDv7Generator
from lineside_protocol.schema import main as schema_main

ROOT = Path(__file__).parent.parent.parent
CASES = sorted((ROOT / "tests" / "cases" / "protocol").iterdir())
PATH = EquipmentPath(
    enterprise="acme", site="plant-1", area="pressing", line="line-3", equipment="press-1"
)
T0 = datetime(2026, 1, 5, 8, 10, 0, 123000, tzinfo=UTC)


def common(seq: int = 0, **overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "event_id": new_event_id(),
        "agent_id": "agent-7",
        "equipment": PATH,
        "seq": seq,
        "event_time": T0,
        "received_time": T0 + timedelta(milliseconds=40),
    }
    return fields | overrides


def one_of_each() -> list[Any]:
    return [
        ProductionStarted(
            **common(0),
            correlation_id="order-4711",
            payload=ProductionStartedPayload(
                order_id="order-4711", product_id="bracket-a", ideal_cycle_time_s=2.5
            ),
        ),
        StateChanged(
            **common(1),
            payload=StateChangedPayload(
                state="unplanned_stop", previous_state="running", raw_value=3, reason_code=17
            ),
        ),
        ProductionCounted(
            **common(2),
            historical=True,
            payload=ProductionCountedPayload(
                good=118, scrap=2, total=120, product_id="Bügel-ß", interval_start=T0
            ),
        ),
        TagSampled(
            **common(3),
            payload=TagSampledPayload(
                tag="press-1.pressure", value=182.4, unit="bar", quality="good", status="Good"
            ),
        ),
        ProductionEnded(
            **common(4),
            payload=ProductionEndedPayload(order_id="order-4711", reason="agent_stopped"),
        ),
        BufferOverflowed(
            **common(5),
            payload=BufferOverflowedPayload(
                dropped_events=2,
                first_seq=0,
                last_seq=3,
                first_event_time=T0 - timedelta(days=8),
                last_event_time=T0 - timedelta(days=7),
                reason="max_age",
            ),
        ),
    ]


def batch_of(events: list[Any]) -> EventBatch:
    return EventBatch(
        batch_id=new_event_id(), agent_id="agent-7", equipment=PATH, sent_at=T0, events=events
    )


def rejection(data: bytes, **options: Any) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        decode_batch(data, **options)
    return caught.value


# ---- cases as data ----------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_protocol_case(case: Path) -> None:
    data = (case / "payload.json").read_bytes()
    options_file = case / "options.json"
    options = json.loads(options_file.read_text()) if options_file.exists() else {}
    expected = (case / "expected.txt").read_text().strip()
    if expected == "ok":
        batch = decode_batch(data, **options)
        assert decode_batch(encode_batch(batch)) == batch
        return
    error = rejection(data, **options)
    assert f"{error.reason}: {error}".startswith(expected)


def test_every_rejection_reason_of_decode_batch_has_a_case() -> None:
    covered = set()
    for case in CASES:
        expected = (case / "expected.txt").read_text().strip()
        if expected != "ok":
            covered.add(expected.split(":", 1)[0])
    not_for_batches = {RejectReason.INVALID_ACK, RejectReason.BAD_TOPIC}
    assert covered == {reason.value for reason in RejectReason} - not_for_batches
    assert any(c.name.startswith("ok-") for c in CASES)


# ---- round trips ------------------------------------------------------------------


@pytest.mark.parametrize("event", one_of_each(), ids=lambda e: e.type)
def test_every_event_type_round_trips(event: Any) -> None:
    batch = batch_of([event])
    decoded = decode_batch(encode_batch(batch))
    assert decoded == batch
    assert type(decoded.events[0]) is type(event)
    assert decode_event(event.model_dump_json().encode()) == event
    assert EVENT_ADAPTER.validate_json(event.model_dump_json()) == event


def test_all_event_types_are_covered_by_the_round_trip() -> None:
    assert {e.type for e in one_of_each()} == set(EVENT_TYPES)


def test_encoding_is_compact_utf8_with_millisecond_utc_timestamps() -> None:
    data = encode_batch(batch_of(one_of_each()))
    text = data.decode("utf-8")
    assert "Bügel-ß" in text  # not \u-escaped
    assert ", " not in text
    assert ": " not in text
    assert '"event_time":"2026-01-05T08:10:00.123Z"' in text
    assert '"received_time":"2026-01-05T08:10:00.163Z"' in text


def test_timestamps_with_offsets_become_utc_and_are_truncated_to_milliseconds() -> None:
    cet = timezone(timedelta(hours=1))
    event = StateChanged(
        **common(event_time=datetime(2026, 1, 5, 9, 10, 0, 123999, tzinfo=cet)),
        payload=StateChangedPayload(state="idle"),
    )
    assert event.event_time == T0
    assert event.event_time.tzinfo is UTC
    now = utc_now()
    assert now.tzinfo is UTC
    assert now.microsecond % 1000 == 0


@pytest.mark.parametrize("field", ["event_time", "received_time"])
def test_naive_datetimes_are_rejected(field: str) -> None:
    with pytest.raises(ValidationError, match="timezone"):
        StateChanged(**common(**{field: datetime(2026, 1, 5, 8, 10)}), payload={"state": "idle"})


def test_naive_interval_start_is_rejected() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        ProductionCountedPayload(good=1, scrap=0, total=1, interval_start=datetime(2026, 1, 5))


@pytest.mark.parametrize(("good", "scrap", "total"), [(3, 1, 3), (3, 1, 5), (0, 0, 1)])
def test_total_must_equal_good_plus_scrap(good: int, scrap: int, total: int) -> None:
    with pytest.raises(ValidationError, match=f"total {total} must equal good \\+ scrap"):
        ProductionCountedPayload(good=good, scrap=scrap, total=total)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_tag_values_are_rejected(bad: float) -> None:
    with pytest.raises(ValidationError, match="finite"):
        TagSampledPayload(tag="t", value=bad, quality="good", status="Good")


def test_unknown_fields_are_ignored_and_not_passed_on() -> None:
    document = json.loads(encode_batch(batch_of(one_of_each()[:2])))
    document["compression"] = "none"
    document["equipment"]["vendor"] = "x"
    document["events"][0]["priority"] = 3
    document["events"][1]["payload"]["reason_text"] = "jam"
    batch = decode_batch(json.dumps(document).encode())
    for name in ("compression", "vendor", "priority", "reason_text"):
        assert name not in encode_batch(batch).decode()


finite_values = (
    st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=50)
)


@given(value=finite_values)
def test_tag_values_round_trip_with_their_json_type(value: Any) -> None:
    event = TagSampled(
        **common(), payload={"tag": "t", "value": value, "quality": "good", "status": "Good"}
    )
    decoded = decode_batch(encode_batch(batch_of([event]))).events[0]
    assert decoded == event
    assert type(decoded.payload.value) is type(value)


@given(good=st.integers(0, 2**40), scrap=st.integers(0, 2**40), seq=st.integers(0, 2**63))
def test_counts_round_trip(good: int, scrap: int, seq: int) -> None:
    payload = ProductionCountedPayload(good=good, scrap=scrap, total=good + scrap)
    batch = batch_of([ProductionCounted(**common(seq), payload=payload)])
    assert decode_batch(encode_batch(batch)) == batch


def test_python_construction_checks_batch_consistency() -> None:
    other = PATH.model_copy(update={"equipment": "press-2"})
    with pytest.raises(ValidationError, match="publish one batch per equipment"):
        batch_of([StateChanged(**common(equipment=other), payload={"state": "idle"})])
    with pytest.raises(ValidationError, match="differs from the batch agent_id"):
        batch_of([StateChanged(**common(agent_id="agent-8"), payload={"state": "idle"})])


def test_decode_event_rejections() -> None:
    with pytest.raises(ProtocolError) as caught:
        decode_event({"schema_version": 1, "type": "nope"})
    assert caught.value.reason == RejectReason.UNKNOWN_EVENT_TYPE
    with pytest.raises(ProtocolError) as caught:
        decode_event(b"[1]")
    assert caught.value.reason == RejectReason.INVALID_EVENT


def test_protocol_error_keeps_its_reason_through_pickle() -> None:
    error = rejection(b"{")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.reason, str(copy)) == (RejectReason.NOT_JSON, str(error))


# ---- acks -------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "detail"), [("committed", None), ("rejected", "invalid_event")])
def test_ack_round_trip(status: Any, detail: str | None) -> None:
    ack = BatchAck(
        batch_id=new_event_id(), agent_id="agent-7", committed_at=T0, status=status, detail=detail
    )
    assert decode_ack(encode_ack(ack)) == ack


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"not json", RejectReason.NOT_JSON),
        (b'{"schema_version": 1, "status": "committed"}', RejectReason.INVALID_ACK),
        (b'{"schema_version": 3}', RejectReason.UNSUPPORTED_SCHEMA_VERSION),
        (b"\xff", RejectReason.INVALID_UTF8),
        (b'{"x": "' + b"a" * 70_000 + b'"}', RejectReason.TOO_LARGE),
    ],
)
def test_ack_rejections(data: bytes, reason: RejectReason) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode_ack(data)
    assert caught.value.reason == reason


# ---- topics -----------------------------------------------------------------------


def test_topics_are_built_as_documented() -> None:
    assert event_topic(PATH) == "lineside/v1/acme/plant-1/pressing/line-3/press-1/events"
    assert agent_status_topic("acme", "plant-1", "agent.7") == (
        "lineside/v1/acme/plant-1/_agents/agent.7/status"
    )
    assert agent_ack_topic("acme", "plant-1", "agent-7") == (
        "lineside/v1/acme/plant-1/_agents/agent-7/acks"
    )
    assert EVENTS_SUBSCRIPTION == "lineside/v1/+/+/+/+/+/events"
    assert shared_subscription("collectors", EVENTS_SUBSCRIPTION) == (
        "$share/collectors/lineside/v1/+/+/+/+/+/events"
    )


levels = st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True).filter(lambda s: s != "_agents")
agent_ids = st.from_regex(r"[A-Za-z0-9._-]{1,64}", fullmatch=True)


@given(st.tuples(levels, levels, levels, levels, levels))
def test_event_topic_round_trips(parts: tuple[str, ...]) -> None:
    names = ("enterprise", "site", "area", "line", "equipment")
    path = EquipmentPath(**dict(zip(names, parts, strict=True)))
    parsed = parse_topic(event_topic(path))
    assert (parsed.kind, parsed.path, parsed.agent_id) == ("events", path, None)
    assert (parsed.enterprise, parsed.site) == parts[:2]


@given(levels, levels, agent_ids)
def test_agent_topics_round_trip(enterprise: str, site: str, agent_id: str) -> None:
    for build, kind in ((agent_status_topic, "status"), (agent_ack_topic, "acks")):
        parsed = parse_topic(build(enterprise, site, agent_id))
        assert (parsed.kind, parsed.enterprise, parsed.site) == (kind, enterprise, site)
        assert (parsed.agent_id, parsed.path) == (agent_id, None)


@given(
    good=levels,
    bad=st.text(min_size=1, max_size=10).filter(lambda s: re.search(r"[^A-Za-z0-9_-]", s)),
)
def test_a_topic_cannot_be_built_from_a_bad_level(good: str, bad: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        agent_status_topic(good, bad, "agent-1")
    assert caught.value.reason == RejectReason.BAD_TOPIC
    with pytest.raises(ValidationError):
        EquipmentPath(enterprise=good, site=good, area=good, line=bad, equipment=good)


@pytest.mark.parametrize("bad", ["", "a/b", "+", "#", "a b", "x" * 65])
def test_bad_levels_are_rejected_everywhere(bad: str) -> None:
    with pytest.raises(ProtocolError, match="not a valid topic level"):
        agent_ack_topic("acme", bad, "agent-1")
    with pytest.raises(ProtocolError, match="agent_id"):
        agent_ack_topic("acme", "plant-1", bad)
    with pytest.raises(ProtocolError):
        shared_subscription(bad, EVENTS_SUBSCRIPTION)
    with pytest.raises(ValidationError):
        PATH.model_validate(PATH.model_dump() | {"equipment": bad})


@pytest.mark.parametrize(
    "topic",
    [
        "",
        "lineside/v2/acme/plant-1/pressing/line-3/press-1/events",
        "lineside/v1/acme/plant-1/pressing/line-3/press-1",
        "lineside/v1/acme/plant-1/pressing/line-3/press-1/events/extra",
        "lineside/v1/acme/plant-1/pressing/+/press-1/events",
        "lineside/v1/acme/plant-1/pressing//press-1/events",
        "lineside/v1/acme/plant-1/_agents/line-3/press-1/events",
        "lineside/v1/acme/plant-1/_agents/agent-7/config",
        "lineside/v1/acme/plant-1/agents/agent-7/acks",
        "lineside/v1/acme/#",
        "$share/g/lineside/v1/+/+/+/+/+/events",
    ],
)
def test_parse_topic_rejects_anything_else(topic: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_topic(topic)
    assert caught.value.reason == RejectReason.BAD_TOPIC
    assert repr(topic) in str(caught.value)


def test_area_agents_is_reserved() -> None:
    with pytest.raises(ValidationError, match="reserved"):
        EquipmentPath.model_validate(PATH.model_dump() | {"area": "_agents"})


# ---- ids --------------------------------------------------------------------------


def test_new_event_id_is_uuid_version_7_with_current_time() -> None:
    before = utc_now()
    value = new_event_id()
    parsed = uuid.UUID(value)
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122
    assert str(parsed) == value
    assert is_uuid7(value)
    assert not is_uuid7(str(uuid.uuid4()))
    assert before <= uuid7_time(value) <= utc_now() + timedelta(milliseconds=1)


def test_successive_ids_strictly_increase() -> None:
    ids = [new_event_id() for _ in range(20_000)]
    assert ids == sorted(set(ids))


def test_ids_within_one_millisecond_increase_and_keep_that_millisecond() -> None:
    frozen_ns = 1_767_600_600_123_456_789
    generator = UUIDv7Generator(clock_ns=lambda: frozen_ns)
    ids = [generator.new() for _ in range(5_000)]
    assert ids == sorted(set(ids))
    assert {uuid7_time(i) for i in ids} == {T0}
    assert all(uuid.UUID(i).version == 7 for i in ids)


def test_ids_keep_increasing_when_the_clock_steps_back() -> None:
    times = iter([5_000_000_000, 5_000_000_000, 4_000_000_000, 3_000_000_000, 6_000_000_000])
    generator = UUIDv7Generator(clock_ns=lambda: next(times))
    ids = [generator.new() for _ in range(5)]
    assert ids == sorted(set(ids))


def test_a_full_millisecond_borrows_the_next_one() -> None:
    generator = UUIDv7Generator(clock_ns=lambda: 0, random_bytes=lambda n: b"\xff" * n)
    first = generator.new()
    generator._last_tail = (1 << 74) - 1  # as if 2**73 ids were issued in this millisecond
    second = generator.new()
    assert first < second
    assert uuid7_time(second) - uuid7_time(first) == timedelta(milliseconds=1)


def _reference_uuid7(ms: int, tail: int) -> str:
    """RFC 9562 layout via the uuid module: 48-bit ms, version 7, 12 + 62 tail bits."""
    value = (ms << 80) | (7 << 76) | ((tail >> 62) << 64) | (0b10 << 62) | (tail & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))


_NEAR_CARRIES = st.sampled_from([48, 62, 64]).flatmap(
    lambda bit: st.integers(0, 700).map(lambda below: max(0, (1 << bit) * 3 - 1 - below))
)


@given(
    last_tail=st.one_of(st.integers(0, (1 << 73) - 1), _NEAR_CARRIES),
    count=st.integers(1, 1_500),
)
def test_a_run_of_ids_is_formatted_as_one_at_a_time(last_tail: int, count: int) -> None:
    # runs that cross the carries into the 13th, the variant's and rand_a's hex digits
    frozen_ms = 1_767_600_600_123
    generator = UUIDv7Generator(clock_ns=lambda: frozen_ms * 1_000_000)
    generator._last_ms, generator._last_tail = frozen_ms, last_tail
    ids = generator.new_many(count)
    assert ids == [_reference_uuid7(frozen_ms, last_tail + 1 + i) for i in range(count)]
    assert generator.new() == _reference_uuid7(frozen_ms, last_tail + 1 + count)


def test_ids_from_threads_are_unique() -> None:
    results: list[list[str]] = [[] for _ in range(4)]

    def work(out: list[str]) -> None:
        out.extend(new_event_id() for _ in range(5_000))

    threads = [threading.Thread(target=work, args=(out,)) for out in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    merged = [i for out in results for i in out]
    assert len(set(merged)) == len(merged)
    assert all(out == sorted(out) for out in results)


def test_uppercase_uuid7_is_accepted_and_normalised() -> None:
    value = new_event_id()
    event = StateChanged(**common(event_id=value.upper()), payload={"state": "idle"})
    assert event.event_id == value


# ---- JSON Schema ------------------------------------------------------------------


def refs_in(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in refs_in(value)]
    if isinstance(node, list):
        return [r for value in node for r in refs_in(value)]
    return []


def objects_in(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        own = [node] if node.get("type") == "object" else []
        return own + [o for value in node.values() for o in objects_in(value)]
    if isinstance(node, list):
        return [o for value in node for o in objects_in(value)]
    return []


def test_exported_schemas_are_well_formed() -> None:
    schemas = export_schemas()
    assert set(schemas) == {"Event", "EventBatch", "BatchAck", "AlertEvent"}
    for name, schema in schemas.items():
        json.dumps(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["title"] == name
        for ref in refs_in(schema):
            assert ref.startswith("#/$defs/"), ref
            assert ref.removeprefix("#/$defs/") in schema["$defs"], ref
        for obj in objects_in(schema):
            assert set(obj.get("required", [])) <= set(obj.get("properties", {})), obj.get("title")
    event_schema = schemas["Event"]
    assert set(event_schema["discriminator"]["mapping"]) == set(EVENT_TYPES)
    for type_name, event_class in EVENT_TYPES.items():
        definition = event_schema["$defs"][event_class.__name__]
        assert {"schema_version", "type", "event_id", "payload"} <= set(definition["required"])
        assert definition["properties"]["type"]["const"] == type_name
    batch_schema = schemas["EventBatch"]
    assert batch_schema["properties"]["events"]["maxItems"] == 10_000
    assert "schema_version" in batch_schema["required"]


def test_exported_schemas_validate_real_messages_when_jsonschema_is_installed() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schemas = export_schemas()
    for schema in schemas.values():
        jsonschema.Draft202012Validator.check_schema(schema)
    batch = json.loads(encode_batch(batch_of(one_of_each())))
    jsonschema.validate(batch, schemas["EventBatch"])


def test_schema_cli_writes_one_file_per_model(tmp_path: Path) -> None:
    assert schema_main([str(tmp_path / "out")]) == 0
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == [
        "AlertEvent.schema.json",
        "BatchAck.schema.json",
        "Event.schema.json",
        "EventBatch.schema.json",
    ]
    assert (
        json.loads((tmp_path / "out" / "Event.schema.json").read_text())
        == (export_schemas()["Event"])
    )
    assert schema_main([]) == 2


def test_schema_module_runs_with_python_dash_m(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lineside_protocol.schema", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "EventBatch.schema.json").exists()


# ---- docs/protocol.md examples ----------------------------------------------------

EXAMPLE_RE = re.compile(r"<!-- example: (\w+) -->\s*```json\n(.*?)```", re.DOTALL)


def doc_examples() -> list[tuple[str, str]]:
    return EXAMPLE_RE.findall((ROOT / "docs" / "protocol.md").read_text(encoding="utf-8"))


def test_every_documented_example_is_accepted() -> None:
    examples = doc_examples()
    kinds = [kind for kind, _ in examples]
    assert {"batch", "event", "ack"} <= set(kinds), kinds
    documented_types = set()
    for kind, text in examples:
        data = text.encode("utf-8")
        if kind == "batch":
            documented_types |= {e.type for e in decode_batch(data).events}
        elif kind == "event":
            documented_types.add(decode_event(data).type)
        elif kind == "ack":
            decode_ack(data)
        else:
            pytest.fail(f"unknown example kind {kind!r} in docs/protocol.md")
    assert documented_types == set(EVENT_TYPES)


def test_documented_reasons_and_version_match_the_code() -> None:
    text = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    for reason in RejectReason:
        assert f"`{reason.value}`" in text, reason
    assert f"`schema_version` is `{SCHEMA_VERSION}`" in text


def test_state_literals_match_the_canonical_states() -> None:
    from typing import get_args

    from lineside_protocol.states import OFFLINE, CanonicalState, CanonicalStateName, EquipmentState

    assert set(get_args(CanonicalStateName)) == {s.value for s in CanonicalState}
    assert set(get_args(EquipmentState)) == {s.value for s in CanonicalState} | {OFFLINE}
