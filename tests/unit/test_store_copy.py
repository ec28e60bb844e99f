"""Pure parts of the store: COPY encoding, value range checks, migration files, names."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.records import AcceptedBatch, Equipment, EventRow
from collector.store import UnstorableBatchError, load_migrations, partition_name
from collector.store._copy import (
    EVENT_COLUMNS,
    copy_text,
    day_of_ms,
    encode_batch,
    epoch_ms,
    payload_json,
    time_text,
)
from collector.store._facts import seq_runs
from collector.store.migrate import Migration

T0 = datetime(2026, 1, 5, 8, 0, 0, 123000, tzinfo=UTC)
EQUIPMENT = Equipment("acme", "plant-1", "pressing", "line-3", "press-1")
EVENT_ID = "019b8d2b-93d0-761a-b273-ff34fce19d6b"
BATCH_ID = "019b8d34-b43b-77db-8011-776e8db7cd33"


def unescape_copy(field: str) -> str | None:
    """What PostgreSQL's text COPY makes of a field (the subset of escapes we emit)."""
    if field == "\\N":
        return None
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\":
            out.append({"t": "\t", "n": "\n", "r": "\r", "\\": "\\"}[field[i + 1]])
            i += 2
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


@given(st.text())
def test_copy_text_round_trips_except_nul(value: str) -> None:
    field = copy_text(value)
    assert not {"\t", "\n", "\r"} & set(field)
    assert unescape_copy(field) == value.replace("\x00", "\ufffd")


def test_copy_text_null() -> None:
    assert copy_text(None) == "\\N"


@given(
    st.dictionaries(
        st.text(max_size=5),
        st.one_of(
            st.text(),
            st.integers(),
            st.floats(allow_nan=False, allow_infinity=False),
            st.booleans(),
            st.none(),
        ),
        max_size=4,
    )
)
def test_payload_json_decodes_to_the_payload_without_nul(payload: dict) -> None:
    text = unescape_copy(payload_json(payload))
    assert text is not None
    assert "\\u0000" not in text  # jsonb refuses that escape

    def no_nul(value: object) -> object:
        return value.replace("\x00", "\ufffd") if isinstance(value, str) else value

    clean = {no_nul(key): no_nul(value) for key, value in payload.items()}
    assert json.loads(text) == clean  # json, not orjson: integers beyond 64 bits too


def test_epoch_ms_and_day() -> None:
    assert epoch_ms(datetime(1970, 1, 1, tzinfo=UTC)) == 0
    assert epoch_ms(T0) == 1767600000123
    assert day_of_ms(epoch_ms(T0)) == date(2026, 1, 5)
    assert day_of_ms(epoch_ms(datetime(2026, 1, 5, 23, 59, 59, 999000, tzinfo=UTC))) == date(
        2026, 1, 5
    )
    assert day_of_ms(epoch_ms(datetime(1969, 12, 31, 23, 0, tzinfo=UTC))) == date(1969, 12, 31)


@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)))
def test_time_text_is_the_utc_time_to_the_millisecond(moment: datetime) -> None:
    moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000, tzinfo=UTC)
    text = time_text(epoch_ms(moment), {})
    assert datetime.fromisoformat(text) == moment


@given(st.lists(st.integers(0, 60), min_size=1))
def test_seq_runs_cover_exactly_the_seqs(seqs: list[int]) -> None:
    runs = seq_runs(seqs)
    assert [s for lo, hi in runs for s in range(lo, hi + 1)] == sorted(set(seqs))
    assert all(b[0] > a[1] + 1 for a, b in pairwise(runs))


def event(kind: str, payload: dict, seq: int = 5, **fields: object) -> EventRow:
    values = {
        "event_id": EVENT_ID,
        "type": kind,
        "seq": seq,
        "event_time": T0,
        "received_time": T0 + timedelta(milliseconds=50),
        "correlation_id": "order\t1",
        "causation_id": None,
        "historical": True,
        "payload": payload,
    }
    values.update(fields)
    return EventRow(**values)  # type: ignore[arg-type]


def batch(*events: EventRow) -> AcceptedBatch:
    return AcceptedBatch("t", BATCH_ID, "agent-7", EQUIPMENT, T0, list(events), 100)


def test_encode_batch_writes_one_line_per_event_in_event_column_order() -> None:
    lines: list[str] = []
    days: set[int] = set()
    sample = {"tag": "p", "value": 1.5, "unit": "bar", "quality": "good", "status": "Good"}
    lowest_highest = encode_batch(
        3,
        batch(event("tag.sampled", sample, seq=9), event("tag.sampled", sample, seq=4)),
        17,
        lines,
        days,
    )
    assert lowest_highest == (4, 9)
    assert days == {epoch_ms(T0) // 86_400_000}
    fields = lines[0].rstrip("\n").split("\t")
    assert dict(zip(EVENT_COLUMNS, fields, strict=True)) == {
        "event_id": EVENT_ID,
        "event_time": "2026-01-05 08:00:00.123+00",
        "equipment_id": "17",
        "agent_id": "agent-7",
        "type": "tag.sampled",
        "seq": "9",
        "received_time": "2026-01-05 08:00:00.173+00",
        "correlation_id": "order\\t1",
        "causation_id": "\\N",
        "historical": "t",
        "payload": orjson.dumps(sample).decode(),
        "batch_id": BATCH_ID,
    }


@pytest.mark.parametrize(
    ("kind", "payload", "seq", "names"),
    [
        ("production.counted", {"good": 2**63, "scrap": 0, "total": 2**63}, 1, "payload.good"),
        (
            "equipment.state_changed",
            {"state": "idle", "reason_code": 2**64},
            1,
            "payload.reason_code",
        ),
        ("buffer.overflowed", {"first_seq": 0, "last_seq": 2**70}, 1, "payload.last_seq"),
        (
            "tag.sampled",
            {"tag": "t", "value": 10**400, "quality": "good", "status": "x"},
            1,
            "payload.value",
        ),
        ("tag.sampled", {"tag": "t", "value": 1.0, "quality": "good", "status": "x"}, 2**63, "seq"),
    ],
)
def test_values_postgresql_cannot_hold_name_the_batch_and_field(
    kind: str, payload: dict, seq: int, names: str
) -> None:
    with pytest.raises(UnstorableBatchError) as caught:
        encode_batch(2, batch(event(kind, payload, seq=seq)), 1, [], set())
    assert caught.value.batch_index == 2
    assert caught.value.batch_id == BATCH_ID
    assert names in str(caught.value)
    assert BATCH_ID in str(caught.value)


def test_large_but_storable_values_pass() -> None:
    lines: list[str] = []
    encode_batch(
        0,
        batch(
            event("tag.sampled", {"tag": "t", "value": 10**300, "quality": "good", "status": "x"}),
            event("tag.sampled", {"tag": "t", "value": True, "quality": "good", "status": "x"}),
            event("production.counted", {"good": 2**63 - 1, "scrap": 0, "total": 2**63 - 1}),
        ),
        1,
        lines,
        set(),
    )
    assert len(lines) == 3


def test_shipped_migrations_are_numbered_in_order_with_stable_checksums() -> None:
    migrations = load_migrations()
    names = [m.name for m in migrations]
    assert names == sorted(names)
    assert names[0].startswith("0001_")
    assert len({name[:4] for name in names}) == len(names)
    assert all(m.checksum == Migration.from_text(m.name, m.sql).checksum for m in migrations)


def test_checksum_ignores_crlf_line_endings() -> None:
    unix = Migration.from_text("0001_x.sql", "CREATE TABLE a ();\nSELECT 1;\n")
    windows = Migration.from_text("0001_x.sql", "CREATE TABLE a ();\r\nSELECT 1;\r\n")
    assert unix.checksum == windows.checksum
    assert unix.checksum != Migration.from_text("0001_x.sql", "CREATE TABLE b ();\n").checksum


def test_partition_names() -> None:
    assert partition_name("audit.events", date(2026, 1, 5)) == "audit.events_p20260105"
