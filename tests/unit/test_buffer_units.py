"""The buffer's pure parts: row encoding, drop tallies, config, the overflow draft."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import typer
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from edge_agent.buffer import BufferConfig, DroppedRange, overflow_draft
from edge_agent.buffer._commit import encode
from edge_agent.buffer.cli import parse_duration_s
from edge_agent.buffer.records import DropTally
from edge_agent.config.models import Location
from edge_agent.derive import EventType
from edge_agent.sequences import SequenceCounter
from edge_agent.stamp import Stamper
from lineside_protocol import EVENT_ADAPTER, BufferOverflowed

NOW = datetime(2026, 3, 9, 6, 0, 0, 250000, tzinfo=UTC)


def event(equipment: str, seq: int, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": f"id-{equipment}-{seq}",
        "equipment": {"line": "line-3", "equipment": equipment},
        "seq": seq,
        "event_time": f"2026-03-02T06:00:{seq % 60:02d}.000Z",
        "payload": {"value": seq * 1.5, "text": "Bügel-ß"},
        **extra,
    }


# ---- encode -----------------------------------------------------------------------------


def test_rows_carry_the_columns_and_the_exact_compact_body() -> None:
    events = [event("press-1", 4), event("weld-1", 0)]
    encoded = encode([events], first_rowid=11, captured_ms=1234)
    assert [row[:6] for row in encoded.rows] == [
        (11, "press-1", 4, "id-press-1-4", "2026-03-02T06:00:04.000Z", 1234),
        (12, "weld-1", 0, "id-weld-1-0", "2026-03-02T06:00:00.000Z", 1234),
    ]
    for row, sent in zip(encoded.rows, events, strict=True):
        assert row[7] == orjson.dumps(sent)
        assert row[6] == len(row[7])
        assert b'": ' not in row[7]
        assert b", " not in row[7]
        assert "Bügel-ß".encode() in row[7]  # UTF-8, not \u-escaped
    assert encoded.bytes == sum(row[6] for row in encoded.rows)
    assert encoded.next_seq == {"press-1": 5, "weld-1": 1}


def test_a_bad_event_is_left_out_alone_and_rowids_stay_contiguous() -> None:
    batch = [event("press-1", 0), {"seq": 1}, event("press-1", 2, payload={"x": object()})]
    batch.append(event("press-1", 3))
    encoded = encode([[event("weld-1", 0)], batch, [event("weld-1", 1)]], 1, 0)
    assert [(row[0], row[1], row[2]) for row in encoded.rows] == [
        (1, "weld-1", 0),
        (2, "press-1", 0),
        (3, "press-1", 3),
        (4, "weld-1", 1),
    ]
    assert encoded.rejected == 2
    assert encoded.next_seq == {"weld-1": 2, "press-1": 4}


@pytest.mark.parametrize(
    "bad",
    [
        {"equipment": {"equipment": {"nested": "dict"}}},
        {"seq": True},
        {"seq": "7"},
        {"event_time": 1767600000},
        {"event_id": None},
    ],
    ids=["equipment-dict", "seq-bool", "seq-text", "time-number", "id-null"],
)
def test_values_sqlite_could_not_store_reject_only_their_event(bad: dict[str, Any]) -> None:
    encoded = encode([[event("weld-1", 0), event("press-1", 1) | bad, event("weld-1", 1)]], 1, 0)
    assert [(row[1], row[2]) for row in encoded.rows] == [("weld-1", 0), ("weld-1", 1)]
    assert encoded.rejected == 1
    assert encoded.next_seq == {"weld-1": 2}


@given(
    st.lists(
        st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 10**12)), max_size=20),
        max_size=8,
    ),
    st.integers(1, 10**9),
)
def test_encode_numbers_rows_in_order_and_remembers_the_highest_seq(
    batches: list[list[tuple[str, int]]], first_rowid: int
) -> None:
    events = [[event(equipment, seq) for equipment, seq in batch] for batch in batches]
    encoded = encode(events, first_rowid, 0)
    flat = [pair for batch in batches for pair in batch]
    assert [row[0] for row in encoded.rows] == list(range(first_rowid, first_rowid + len(flat)))
    assert [(row[1], row[2]) for row in encoded.rows] == flat
    expected: dict[str, int] = {}
    for equipment, seq in flat:
        expected[equipment] = max(expected.get(equipment, 0), seq + 1)
    assert encoded.next_seq == expected
    assert all(orjson.loads(row[7])["seq"] == row[2] for row in encoded.rows)


# ---- drop tallies -----------------------------------------------------------------------


def test_a_tally_makes_one_range_per_equipment_from_the_first_and_last_dropped() -> None:
    tally = DropTally("max_age")
    assert not tally
    for equipment, seq, at in [("a", 3, "t3"), ("b", 9, "t9"), ("a", 5, "t5"), ("a", 4, "t4")]:
        tally.add(equipment, seq, at)
    assert tally.counts() == {"a": 3, "b": 1}
    assert tally.ranges() == [
        DroppedRange("a", 3, 3, 4, "t3", "t4", "max_age"),
        DroppedRange("b", 1, 9, 9, "t9", "t9", "max_age"),
    ]


# ---- config -----------------------------------------------------------------------------


def test_config_defaults_match_the_documented_ones() -> None:
    config = BufferConfig()
    assert config.path is None
    assert config.durability == "full"
    assert config.commit_interval_ms == 10
    assert config.commit_max_events == 500
    assert config.max_bytes == 1024**3
    assert config.max_age_s == 7 * 24 * 3600
    assert config.resolved_path(Path("/data/buffer.db")) == Path("/data/buffer.db")
    assert BufferConfig(path=Path("/x.db")).resolved_path(Path("/data/b.db")) == Path("/x.db")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_bytes", 1024 * 1024 - 1),
        ("commit_interval_ms", 0),
        ("commit_interval_ms", 1001),
        ("max_age_s", 0),
        ("durability", "paranoid"),
        ("max_bytez", 5),
    ],
)
def test_config_refuses_out_of_range_and_unknown_fields(field: str, value: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        BufferConfig.model_validate({field: value})
    assert caught.value.errors()[0]["loc"] == (field,)


def test_config_accepts_the_smallest_bound_and_documents_every_field() -> None:
    assert BufferConfig(max_bytes=1024 * 1024).max_bytes == 1024 * 1024
    schema = BufferConfig.model_json_schema()
    assert schema["additionalProperties"] is False
    assert all(spec.get("description") for spec in schema["properties"].values())


# ---- overflow draft ---------------------------------------------------------------------


def test_the_overflow_draft_stamps_into_a_valid_buffer_overflowed_event() -> None:
    dropped = DroppedRange(
        "press-1", 120, 40, 170, "2026-03-02T06:00:00.000Z", "2026-03-02T06:10:00.500Z", "max_bytes"
    )
    draft = overflow_draft(dropped, NOW)
    assert draft.type == EventType.BUFFER_OVERFLOWED
    assert draft.event_time == draft.received_time == NOW
    location = Location(enterprise="acme", site="plant-1", area="pressing", line="line-3")
    stamper = Stamper("agent-7", location, SequenceCounter({"press-1": 171}))
    [wire] = stamper.stamp("press-1", [draft])
    model = EVENT_ADAPTER.validate_python(wire)
    assert isinstance(model, BufferOverflowed)
    assert model.seq == 171
    assert model.event_time == datetime(2026, 3, 9, 6, 0, 0, 250000, tzinfo=UTC)
    assert wire["payload"] == {
        "dropped_events": 120,
        "first_seq": 40,
        "last_seq": 170,
        "first_event_time": "2026-03-02T06:00:00.000Z",
        "last_event_time": "2026-03-02T06:10:00.500Z",
        "reason": "max_bytes",
    }


# ---- durations (CLI) --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("15m", 900), ("2h", 7200), ("1.5d", 129600)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration_s(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "5w", "-3h", "h"])
def test_bad_durations_say_what_is_expected(text: str) -> None:
    with pytest.raises(typer.BadParameter, match=re.escape("use e.g. 90s, 15m, 2h or 7d")):
        parse_duration_s(text)
