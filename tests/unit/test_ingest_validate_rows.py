"""collector.ingest.validate: accepted rows carry exactly the values of decode_batch's models.

Covers the fast path (agent-shaped and loosely shaped batches), what it defers to
decode_batch and how those come out, and every bound and type rule of the contract one
value at a time. Helpers and the data cases are in test_ingest_validate.py.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from test_ingest_validate import (
    PROTOCOL_CASES,
    RECEIVED_AT,
    ROOT,
    TOPIC,
    accepted,
    encode,
    every_type_batch,
    refused,
)

from collector.ingest._fast import check_batch
from collector.ingest._payloads import PAYLOAD_CHECKS
from collector.ingest.validate import validate_message
from collector.records import AcceptedBatch, Equipment
from lineside_protocol import EVENT_TYPES, EventBatch, ProtocolError, decode_batch

# ---- rows and batches -------------------------------------------------------------


def assert_rows_equal_models(result: AcceptedBatch, data: bytes) -> None:
    """Every value of the accepted batch equals what decode_batch's models give."""
    model: EventBatch = decode_batch(data)
    document = json.loads(data)
    assert result.batch_id == model.batch_id
    assert result.agent_id == model.agent_id
    assert result.equipment == Equipment(*model.equipment.levels())
    assert result.sent_at == model.sent_at
    assert len(result.events) == len(model.events)
    for row, event, raw in zip(result.events, model.events, document["events"], strict=True):
        assert row.event_id == event.event_id == event.event_id.lower()
        assert (row.type, row.seq, row.historical) == (event.type, event.seq, event.historical)
        assert (row.correlation_id, row.causation_id) == (event.correlation_id, event.causation_id)
        for mine, theirs in (
            (row.event_time, event.event_time),
            (row.received_time, event.received_time),
        ):
            assert mine == theirs
            assert mine.utcoffset() == timedelta(0)
            assert mine.microsecond % 1000 == 0
        assert type(event.payload).model_validate(row.payload) == event.payload
        assert row.payload == raw["payload"]  # the parsed dict, unknown keys kept


@pytest.mark.parametrize(
    "case", [c for c in PROTOCOL_CASES if c.name.startswith("ok-")], ids=lambda c: c.name
)
def test_rows_of_the_ok_cases_equal_the_models(case: Path) -> None:
    data = (case / "payload.json").read_bytes()
    assert_rows_equal_models(accepted(validate_message(TOPIC, data, RECEIVED_AT)), data)


def test_rows_keep_utc_milliseconds_lower_case_ids_and_default_historical() -> None:
    batch = every_type_batch()
    first = batch["events"][0]
    first["event_id"] = first["event_id"].upper()
    first["event_time"] = "2026-01-05T09:00:02.123999+01:00"
    del first["historical"]
    data = encode(batch)
    result = accepted(validate_message(TOPIC, data, RECEIVED_AT))
    row = result.events[0]
    assert row.event_id == first["event_id"].lower()
    assert row.event_time == datetime(2026, 1, 5, 8, 0, 2, 123000, tzinfo=UTC)
    assert row.historical is False
    assert result.topic == TOPIC
    assert_rows_equal_models(result, data)


# Values decode_batch accepts but the fast path leaves to it (docs in collector/ingest/_fast.py)
SLOW_BUT_ACCEPTED = {
    "space-separated-time": ("event_time", "2026-01-05 08:00:02.000Z"),
    "lower-case-z": ("received_time", "2026-01-05t08:00:02.000z"),
    "seven-fraction-digits": ("event_time", "2026-01-05T08:00:02.1239999Z"),
    "offset-without-colon": ("event_time", "2026-01-05T09:00:02+0100"),
    "unix-seconds-as-string": ("event_time", "1767600002"),
    "id-with-trailing-newline": ("event_id", "019b8d34-b43b-7019-853b-a19d0b78d8a9\n"),
    "seq-beyond-64-bits": ("seq", 2**70),
    "deeply-nested-unknown-field": ("extra", json.loads("[" * 100 + "]" * 100)),
}


@pytest.mark.parametrize("name", SLOW_BUT_ACCEPTED)
def test_what_the_fast_path_defers_is_accepted_with_the_models_values(name: str) -> None:
    field, value = SLOW_BUT_ACCEPTED[name]
    batch = every_type_batch()
    batch["events"][0][field] = value
    data = encode(batch)
    assert check_batch(orjson.loads(data)) is None  # really the slow path
    assert_rows_equal_models(accepted(validate_message(TOPIC, data, RECEIVED_AT)), data)


@pytest.mark.parametrize(
    ("event_type", "field", "value"),
    [
        ("equipment.state_changed", "raw_value", True),  # pydantic makes it 1.0
        ("production.started", "ideal_cycle_time_s", "2.5"),
        ("tag.sampled", "value", 2**64),  # orjson would read a float
        ("tag.sampled", "unit", "\ud800"),  # json.loads reads a lone surrogate, orjson not
    ],
)
def test_payload_values_the_fast_path_defers_are_accepted(
    event_type: str, field: str, value: Any
) -> None:
    batch = every_type_batch()
    next(e for e in batch["events"] if e["type"] == event_type)["payload"][field] = value
    data = encode(batch)  # ensure_ascii: the surrogate travels as an escape
    assert_rows_equal_models(accepted(validate_message(TOPIC, data, RECEIVED_AT)), data)


def test_agent_shaped_and_loosely_shaped_batches_take_the_fast_path() -> None:
    assert set(PAYLOAD_CHECKS) == set(EVENT_TYPES)
    for case in ("ok-every-event-type", "ok-optional-fields-omitted", "ok-unknown-fields-ignored"):
        data = (ROOT / "tests/cases/protocol" / case / "payload.json").read_bytes()
        assert check_batch(orjson.loads(data)) is not None, case


# Values at and across every bound and type rule of the contract: validate_message must
# give exactly decode_batch's answer for each (None means the field is removed)
BOUNDARIES: list[tuple[str, str, list[Any]]] = [
    ("", "historical", [None, 0, 1, "false", False, True]),
    ("", "seq", [0, -1, 2**63, 2**64 + 1, 1.0, "0", True]),
    ("", "correlation_id", ["", 5, [], "x" * 1000]),
    ("", "schema_version", [1, 2, 1.0, True, "1", None]),
    ("tag.sampled", "tag", ["", "x", "x" * 128, "x" * 129, "ß" * 128, 5]),
    ("tag.sampled", "value", [True, 0, -(2**63) - 1, 2**64 + 1, 1.5, 1e300, "", None, []]),
    ("tag.sampled", "quality", ["good", "Good", "", None]),
    ("tag.sampled", "status", ["", None, 0]),
    ("tag.sampled", "unit", [None, "", 0]),
    ("production.counted", "good", [0, -1, 2**64, True, 118.0, "118"]),
    ("production.counted", "total", [120, 121, 119, -120]),
    ("production.counted", "counter_reset", [None, True, 0, "false"]),
    ("production.counted", "interval_start", [None, "", "2026-01-05T08:00:02Z", 1767600002]),
    ("equipment.state_changed", "state", ["offline", "Running", "", None]),
    ("equipment.state_changed", "previous_state", [None, "offline", "Idle", 1]),
    ("equipment.state_changed", "raw_value", [True, None, 1.5, "3", 2**64 + 1, [], {}]),
    ("equipment.state_changed", "reason_code", [0, -1, None, 1.0, False]),
    ("production.started", "ideal_cycle_time_s", [0, 1e-9, -1, 2.5, 3, True, "2.5", None]),
    ("production.ended", "reason", ["agent_stopped", "stopped", None]),
    ("buffer.overflowed", "dropped_events", [0, 1, -1, True]),
    ("buffer.overflowed", "first_seq", [0, -1, None]),
    ("buffer.overflowed", "last_event_time", ["2026-01-05T09:02:31.5+01:00", None, ""]),
    ("buffer.overflowed", "reason", ["max_age", "max_rows", None]),
]


@pytest.mark.parametrize(
    ("event_type", "field", "value"),
    [(kind, field, value) for kind, field, values in BOUNDARIES for value in values],
    ids=lambda v: repr(v)[:20],
)
def test_every_bound_and_type_rule_gives_decode_batchs_answer(
    event_type: str, field: str, value: Any
) -> None:
    batch = every_type_batch()
    target = batch["events"][2]
    if event_type:
        target = next(e for e in batch["events"] if e["type"] == event_type)["payload"]
    if value is None and field not in ("historical", "unit", "previous_state", "raw_value"):
        target.pop(field)
    else:
        target[field] = value
    data = encode(batch)
    result = validate_message(TOPIC, data, RECEIVED_AT)
    try:
        decode_batch(data)
    except ProtocolError as error:
        refusal = (error.reason, error.message)
    else:
        assert_rows_equal_models(accepted(result), data)
        return
    letter = refused(result)
    assert (letter.reason, letter.detail) == refusal


def test_the_area_agents_is_reserved_even_when_batch_and_events_agree() -> None:
    batch = every_type_batch()
    for part in (batch, *batch["events"]):
        part["equipment"]["area"] = "_agents"
    letter = refused(validate_message(TOPIC, encode(batch), RECEIVED_AT))
    assert letter.reason == "invalid_batch"
    assert "_agents" in letter.detail


def test_large_batches_are_checked_like_small_ones() -> None:
    batch = every_type_batch()
    template = batch["events"][3]
    batch["events"] = [copy.deepcopy(template) for _ in range(600)]
    data = encode(batch)
    assert_rows_equal_models(accepted(validate_message(TOPIC, data, RECEIVED_AT)), data)
    batch["events"][599]["payload"]["quality"] = "Good"
    letter = refused(validate_message(TOPIC, encode(batch), RECEIVED_AT))
    assert letter.detail.startswith("events[599].payload.quality: ")
