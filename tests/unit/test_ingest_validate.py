"""collector.ingest.validate: the data cases, the collector's own rules, dead letters.

Data cases: tests/cases/protocol/<case>/ (the wire contract; the same reason and text as
decode_batch) and tests/cases/ingest/<case>/ (the collector's topic and time rules:
payload.json, message.json with topic, received_at and max_future_s, expected.txt with
"ok" or "<reason>: <detail>"). Elsewhere: rows against the models and every field bound
(test_ingest_validate_rows.py), the differential property tests against decode_batch
(test_ingest_validate_differential.py) and the shape helpers (test_ingest_validate_shapes.py).
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from collector.ingest.validate import validate_message
from collector.records import AcceptedBatch, AckTarget, DeadLetter
from lineside_protocol import RejectReason

ROOT = Path(__file__).parent.parent.parent
PROTOCOL_CASES = sorted((ROOT / "tests" / "cases" / "protocol").iterdir())
INGEST_CASES = sorted((ROOT / "tests" / "cases" / "ingest").iterdir())
TOPIC = "lineside/v1/acme/plant-1/pressing/line-3/press-1/events"
RECEIVED_AT = datetime(2026, 1, 5, 8, 10, 0, 400000, tzinfo=UTC)
CASE_BATCH_ID = "019b8d34-b43b-7019-853b-a19d0b78d8a8"
NO_ACK_REASONS = {"too_large", "invalid_utf8", "not_json"}


def every_type_batch() -> dict[str, Any]:
    return json.loads((ROOT / "tests/cases/protocol/ok-every-event-type/payload.json").read_text())


def encode(document: Any) -> bytes:
    return json.dumps(document).encode()


def accepted(result: AcceptedBatch | DeadLetter) -> AcceptedBatch:
    assert isinstance(result, AcceptedBatch), f"{result.reason}: {result.detail}"
    return result


def refused(result: AcceptedBatch | DeadLetter) -> DeadLetter:
    assert isinstance(result, DeadLetter), "accepted"
    return result


# ---- data cases ---------------------------------------------------------------------


@pytest.mark.parametrize("case", PROTOCOL_CASES, ids=[c.name for c in PROTOCOL_CASES])
def test_protocol_case(case: Path) -> None:
    data = (case / "payload.json").read_bytes()
    options_file = case / "options.json"
    options = json.loads(options_file.read_text()) if options_file.exists() else {}
    expected = (case / "expected.txt").read_text().strip()
    result = validate_message(TOPIC, data, RECEIVED_AT, **options)
    if expected == "ok":
        assert accepted(result).payload_bytes == len(data)
        return
    letter = refused(result)
    assert f"{letter.reason}: {letter.detail}".startswith(expected)
    assert (letter.topic, letter.payload, letter.received_at) == (TOPIC, data, RECEIVED_AT)
    if letter.reason in NO_ACK_REASONS or case.name == "top-level-array":
        assert letter.ack is None
    else:
        assert letter.ack == AckTarget("acme", "plant-1", "agent-7", CASE_BATCH_ID)


@pytest.mark.parametrize("case", INGEST_CASES, ids=[c.name for c in INGEST_CASES])
def test_ingest_case(case: Path) -> None:
    data = (case / "payload.json").read_bytes()
    message = json.loads((case / "message.json").read_text())
    expected = (case / "expected.txt").read_text().strip()
    result = validate_message(
        message["topic"],
        data,
        datetime.fromisoformat(message["received_at"]),
        max_future_s=message["max_future_s"],
    )
    if expected == "ok":
        accepted(result)
        return
    letter = refused(result)
    assert f"{letter.reason}: {letter.detail}" == expected
    batch = json.loads(data)
    assert letter.ack == AckTarget("acme", "plant-1", batch["agent_id"], batch["batch_id"])


def test_ingest_cases_cover_both_collector_rules_and_their_bounds() -> None:
    reasons = {(c / "expected.txt").read_text().strip().split(":", 1)[0] for c in INGEST_CASES}
    assert {"ok", "bad_topic", "invalid_event"} <= reasons
    names = {c.name for c in INGEST_CASES}
    assert "ok-times-exactly-at-the-bounds" in names


# ---- the collector's own rules -------------------------------------------------------


def with_event_time(value: str, field: str = "event_time", index: int = 1) -> bytes:
    batch = every_type_batch()
    batch["events"][index][field] = value
    return encode(batch)


@pytest.mark.parametrize(
    ("value", "field", "max_future_s", "problem"),
    [
        ("2000-01-01T00:00:00Z", "event_time", 600.0, None),
        ("2000-01-01T01:00:00+01:00", "received_time", 600.0, None),  # 00:00Z exactly
        ("1999-12-31T23:59:59.999Z", "event_time", 600.0, "before"),
        ("2000-01-01T00:59:59.999+01:00", "received_time", 600.0, "before"),
        ("2026-01-05T08:20:00.400Z", "event_time", 600.0, None),  # received_at + 600 s
        ("2026-01-05T08:20:00.401Z", "event_time", 600.0, "after"),
        ("2026-01-05T08:20:00.401Z", "received_time", 600.0, "after"),
        ("2026-01-05T08:10:00.400Z", "event_time", 0.0, None),
        ("2026-01-05T08:10:00.401Z", "event_time", 0.0, "after"),
        ("9999-12-31T23:59:59Z", "event_time", math.inf, None),
        ("2036-01-05T08:00:00Z", "received_time", 600.0, "after"),
    ],
)
def test_event_times_must_lie_between_2000_and_max_future_s_after_receipt(
    value: str, field: str, max_future_s: float, problem: str | None
) -> None:
    result = validate_message(
        TOPIC, with_event_time(value, field), RECEIVED_AT, max_future_s=max_future_s
    )
    if problem is None:
        accepted(result)
        return
    letter = refused(result)
    assert letter.reason == RejectReason.INVALID_EVENT
    assert letter.detail.startswith(f"events[1].{field}: ")
    bound = "2000-01-01T00:00:00.000Z" if problem == "before" else "latest accepted"
    assert bound in letter.detail
    assert letter.ack == AckTarget("acme", "plant-1", "agent-7", CASE_BATCH_ID)


def test_sent_at_and_payload_times_are_not_bounded() -> None:
    batch = every_type_batch()
    batch["sent_at"] = "1970-01-01T00:00:00Z"
    counted = next(e for e in batch["events"] if e["type"] == "production.counted")
    counted["payload"]["interval_start"] = "2099-01-01T00:00:00Z"
    accepted(validate_message(TOPIC, encode(batch), RECEIVED_AT))


def test_the_first_offending_time_in_event_order_is_named() -> None:
    batch = every_type_batch()
    batch["events"][4]["event_time"] = "1980-01-01T00:00:00Z"
    batch["events"][2]["received_time"] = "2099-01-01T00:00:00Z"
    letter = refused(validate_message(TOPIC, encode(batch), RECEIVED_AT))
    assert letter.detail.startswith("events[2].received_time: 2099-01-01T00:00:00.000Z is more")


def test_a_naive_received_at_is_utc_and_passed_through() -> None:
    naive = RECEIVED_AT.replace(tzinfo=None)
    accepted(validate_message(TOPIC, with_event_time("2026-01-05T08:20:00.400Z"), naive))
    letter = refused(validate_message(TOPIC, with_event_time("2026-01-05T08:20:00.401Z"), naive))
    assert letter.received_at == RECEIVED_AT


@pytest.mark.parametrize("max_future_s", [-1.0, math.nan])
def test_a_nonsensical_max_future_s_is_a_configuration_error(max_future_s: float) -> None:
    with pytest.raises(ValueError, match="max_future_s"):
        validate_message(TOPIC, encode(every_type_batch()), RECEIVED_AT, max_future_s=max_future_s)


@pytest.mark.parametrize(
    ("topic", "names"),
    [
        ("lineside/v1/acme/plant-1/pressing/line-3/press-2/events", "names equipment"),
        ("lineside/v1/acme/plant-1/pressing/line-3/Press-1/events", "names equipment"),
        ("lineside/v1/acme/plant-1/pressing/line-3/press-1/events/x", "is neither"),
        ("lineside/v1/acme/plant-1/_agents/agent-7/acks", "agent acks topic"),
        ("lineside/v2/acme/plant-1/pressing/line-3/press-1/events", "does not start"),
        ("", "does not start"),
        ("lineside/v1/acme/plant-1/pressing/line+3/press-1/events", "not a valid topic level"),
    ],
)
def test_the_topic_must_be_the_events_topic_of_the_batch_equipment(topic: str, names: str) -> None:
    letter = refused(validate_message(topic, encode(every_type_batch()), RECEIVED_AT))
    assert letter.reason == RejectReason.BAD_TOPIC
    assert repr(topic) in letter.detail
    assert names in letter.detail
    assert "acme/plant-1/pressing/line-3/press-1" in letter.detail  # the batch's equipment
    assert letter.ack == AckTarget("acme", "plant-1", "agent-7", CASE_BATCH_ID)


def test_remembered_topics_are_still_compared_with_each_batch() -> None:
    other = every_type_batch()
    for part in (other, *other["events"]):
        part["equipment"]["equipment"] = "press-2"
    for _ in range(2):
        accepted(validate_message(TOPIC, encode(every_type_batch()), RECEIVED_AT))
        assert refused(validate_message(TOPIC, encode(other), RECEIVED_AT)).reason == "bad_topic"


# ---- dead letters and their acks -----------------------------------------------------


def test_dead_letters_keep_topic_payload_and_receipt_time() -> None:
    data = b"\xff" + encode(every_type_batch())
    letter = refused(validate_message("a/b", data, RECEIVED_AT))
    assert (letter.topic, letter.payload, letter.received_at) == ("a/b", data, RECEIVED_AT)
    assert (letter.reason, letter.ack) == ("invalid_utf8", None)


def mutated(change: Any) -> bytes:
    batch = every_type_batch()
    change(batch)
    return encode(batch)


@pytest.mark.parametrize(
    ("data", "topic", "ack"),
    [
        (mutated(lambda b: b["events"][0].update(seq=-1)), TOPIC, ("acme", "plant-1")),
        (
            mutated(lambda b: b.update(batch_id=b["batch_id"].upper(), events=[])),
            TOPIC,
            ("acme", "plant-1"),
        ),
        (
            mutated(lambda b: b["equipment"].update(site="plant 1")),
            "lineside/v1/umbrella/works-2/a/b/c/events",
            ("umbrella", "works-2"),  # the batch's site is no level: from the topic
        ),
        (mutated(lambda b: b.pop("equipment")), "not/a/topic", None),
        (mutated(lambda b: b.update(batch_id="3b241101-e2bb-4255-8caf-4136c566a962")), TOPIC, None),
        (mutated(lambda b: b.update(agent_id="agent 7")), TOPIC, None),
        (
            b'{"schema_version": 1, "batch_id": "019b8d34-b43b-7019-853b-a19d0b78d8a8", '
            b'"agent_id": "agent-7", "x": NaN}',
            TOPIC,
            ("acme", "plant-1"),
        ),
    ],
)
def test_a_refused_batch_is_acked_when_it_names_a_valid_batch_and_agent(
    data: bytes, topic: str, ack: tuple[str, str] | None
) -> None:
    letter = refused(validate_message(topic, data, RECEIVED_AT))
    if ack is None:
        assert letter.ack is None
    else:
        assert letter.ack == AckTarget(*ack, "agent-7", CASE_BATCH_ID)


def test_inputs_that_make_decode_batch_itself_fail_become_dead_letters() -> None:
    # decode_batch raises ValueError / OverflowError here instead of ProtocolError
    huge_integer = mutated(lambda b: b.update(extra=0)).replace(
        b'"extra": 0', b'"extra": ' + b"7" * 5000
    )
    overflow = with_event_time("9999-12-31T23:59:59-01:00", index=0)
    for data, reason in ((huge_integer, "non_finite_number"), (overflow, "invalid_batch")):
        letter = refused(validate_message(TOPIC, data, RECEIVED_AT))
        assert letter.reason == reason
        assert letter.ack == AckTarget("acme", "plant-1", "agent-7", CASE_BATCH_ID)
