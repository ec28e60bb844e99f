"""collector.ingest._shapes: the fast path's id and timestamp checks are never more lenient
than lineside_protocol (pydantic) and give the same values."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from collector.ingest._shapes import (
    all_lowercase_uuid7,
    forget_timestamps,
    parse_timestamp,
    plain,
    timestamp,
)
from lineside_protocol.events import Timestamp

TIMESTAMP = TypeAdapter(Timestamp)
UUID7 = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-7[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}"
)


def two_digits(low: int, high: int) -> st.SearchStrategy[str]:
    return st.integers(low, high).map(lambda n: f"{n:02d}")


# Replacements for one part of a valid timestamp, each breaking (or bending) one rule
BENT_PARTS = {
    "year": ["0000", "10000", "+2026", "226", "２０２６"],
    "month": ["00", "13", "1", "99"],
    "day": ["00", "32", "31", "30", "29"],
    "hour": ["24", "25", "99", "1"],
    "minute": ["60", "99"],
    "second": ["60", "61", "5"],
    "date_mark": ["/", ""],
    "separator": ["t", " ", "_", "", "TT"],
    "fraction": ["", ".", ",123", ".1234567", ".123456789", ".12a", ".１"],
    "zone": [
        *("z", "", " Z", "UTC", "+24:00", "-24:00", "+23:60", "+0100", "+01", "+1:00"),
        *("+01:00:00", "Z\n", "+23:59", "-23:59", "-00:00", "+01:60"),
    ],
}
VALID_PARTS = {
    "year": "2024",
    "date_mark": "-",
    "month": "02",
    "day": "28",
    "separator": "T",
    "hour": "23",
    "minute": "59",
    "second": "59",
    "fraction": ".999",
    "zone": "Z",
}
TIMESTAMP_FORM = "{year}{date_mark}{month}-{day}{separator}{hour}:{minute}:{second}{fraction}{zone}"


@st.composite
def near_rfc3339(draw: st.DrawFn) -> str:
    """A valid RFC 3339 timestamp with up to two parts bent: near-misses of every rule."""
    moment = draw(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)))
    digits = draw(st.integers(0, 6))
    zone = draw(st.sampled_from(["Z", "Z", "+01:00", "-05:30", "+00:00"]))
    parts = {
        "year": f"{moment.year:04d}",
        "date_mark": "-",
        "month": f"{moment.month:02d}",
        "day": f"{moment.day:02d}",
        "separator": "T",
        "hour": f"{moment.hour:02d}",
        "minute": f"{moment.minute:02d}",
        "second": f"{moment.second:02d}",
        "fraction": ("." + f"{moment.microsecond:06d}"[:digits]) if digits else "",
        "zone": zone,
    }
    for _ in range(draw(st.integers(0, 2))):
        name = draw(st.sampled_from(sorted(BENT_PARTS)))
        parts[name] = draw(st.sampled_from(BENT_PARTS[name]))
    return (
        "{year}{date_mark}{month}-{day}{separator}{hour}:{minute}:{second}{fraction}{zone}".format(
            **parts
        )
    )


timestamp_texts = st.one_of(
    near_rfc3339(), near_rfc3339(), st.text(max_size=40), st.integers(0, 2**40).map(str)
)

in_range_datetimes = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)


def pydantic_value(text: str) -> datetime | None:
    try:
        return TIMESTAMP.validate_python(text)
    except (ValidationError, OverflowError):
        return None


@settings(max_examples=1500)
@given(timestamp_texts)
def test_a_timestamp_the_fast_path_reads_is_one_pydantic_reads_the_same(text: str) -> None:
    forget_timestamps()
    mine = parse_timestamp(text)
    if mine is not None:
        assert pydantic_value(text) == mine
        assert mine.tzinfo is UTC
        assert timestamp(text) == mine  # cached: the same answer


@pytest.mark.parametrize(
    "text",
    [
        TIMESTAMP_FORM.format(**(VALID_PARTS | {name: value}))
        for name, values in sorted(BENT_PARTS.items())
        for value in values
    ],
)
def test_each_bent_rule_alone_is_never_read_more_leniently_than_by_pydantic(text: str) -> None:
    forget_timestamps()
    mine = parse_timestamp(text)
    if mine is not None:
        assert pydantic_value(text) == mine


@given(
    in_range_datetimes,
    st.sampled_from([0, 1, 3, 6]),
    st.integers(-23 * 60 - 59, 23 * 60 + 59),
)
def test_rfc3339_timestamps_with_up_to_6_digits_take_the_fast_path(
    moment: datetime, digits: int, offset_minutes: int
) -> None:
    local = moment.astimezone(timezone(timedelta(minutes=offset_minutes)))
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    if digits:
        text += "." + f"{local.microsecond:06d}"[:digits]
    zone = local.strftime("%z")
    text += "Z" if offset_minutes == 0 and digits % 2 else f"{zone[:3]}:{zone[3:]}"
    mine = parse_timestamp(text)
    assert mine is not None, text
    assert mine == pydantic_value(text)
    assert mine.microsecond % 1000 == 0


def uuid7_text(bits: int, upper: bool) -> str:
    value = (bits & ~(0xF << 76) & ~(0x3 << 62)) | (0x7 << 76) | (0b10 << 62)
    text = f"{value:032x}"
    text = f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
    return text.upper() if upper else text


ids = st.builds(uuid7_text, st.integers(0, 2**128 - 1), st.just(False))


@st.composite
def broken_ids(draw: st.DrawFn) -> str:
    """A UUIDv7 with one character replaced, dropped or doubled."""
    text = draw(ids)
    at = draw(st.one_of(st.sampled_from([8, 13, 14, 18, 19, 23, 35, 36]), st.integers(0, 36)))
    replacement = draw(st.sampled_from([*"0a7fAF8g- \n", "", "00"]))
    return text[:at] + replacement + text[at + 1 :]


@settings(max_examples=1000)
@given(st.lists(ids, max_size=4), st.one_of(ids, ids.map(str.upper), broken_ids()), st.data())
def test_the_bulk_id_check_equals_a_regular_expression_per_id(
    valid: list[str], other: str, data: st.DataObject
) -> None:
    values = [*valid]
    values.insert(data.draw(st.integers(0, len(values))), other)
    expected = all(UUID7.fullmatch(v) and v == v.lower() for v in values)
    assert all_lowercase_uuid7(values) == expected


def test_the_bulk_id_check_needs_every_id_to_have_36_characters() -> None:
    good = uuid7_text(12345, upper=False)
    assert all_lowercase_uuid7([good, good])
    # same total length, hyphens where the stride expects them: still refused
    assert not all_lowercase_uuid7([good[:-1], good[:8] + "-" + good[8:]])
    with pytest.raises(TypeError):
        all_lowercase_uuid7([good, 5])  # type: ignore[list-item]


def test_unknown_values_are_plain_when_shallow_and_free_of_integer_like_floats() -> None:
    assert plain({"a": [1, "x", None, True, 1.5, {"b": -(2.0**62)}]})
    assert not plain([2.0**63])
    assert not plain(-(2.0**63))
    nested: list = []
    for _ in range(40):
        nested = [nested]
    assert not plain(nested)
