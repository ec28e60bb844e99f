"""Fact rows of a fresh batch, built in Python from the payloads ingest already parsed.

For batches that cannot hold a stored event (see the writer), the facts go into their
tables by COPY instead of being extracted from JSONB in SQL (``_sql.INSERT_AND_DERIVE``).
The rows here must be exactly what that statement would derive; a payload with a value
of a type the statement might treat differently (anything the wire contract's fast path
would not produce) makes :func:`encode_facts` return None, and the batch takes the SQL
way instead. Pure: no I/O, never raises for payload contents.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson

from collector.records import AcceptedBatch

from ._copy import copy_text

_NULL, _TRUE, _FALSE = "\\N", "t", "f"

PROCESS_VALUE_COLUMNS = (
    "equipment_id",
    "event_time",
    "tag",
    "value_num",
    "value_text",
    "value_bool",
    "unit",
    "quality",
    "status",
    "event_id",
)
PRODUCTION_COUNT_COLUMNS = (
    "equipment_id",
    "event_time",
    "interval_start",
    "good",
    "scrap",
    "total",
    "counter_reset",
    "product_id",
    "order_id",
    "event_id",
)
STATE_INTERVAL_COLUMNS = (
    "equipment_id",
    "start_time",
    "state",
    "previous_state",
    "raw_value",
    "reason_code",
    "seq",
    "event_id",
)
PRODUCTION_EVENT_COLUMNS = (
    "equipment_id",
    "event_time",
    "seq",
    "event_id",
    "kind",
    "order_id",
    "product_id",
    "ideal_cycle_time_s",
    "end_reason",
)


class _Odd(Exception):
    """A payload value this module does not convert (the batch takes the SQL way)."""


@dataclass
class BatchFacts:
    """The fact rows (COPY text lines) and bookkeeping of one fresh batch."""

    process_values: list[str] = field(default_factory=list)
    production_counts: list[str] = field(default_factory=list)
    state_intervals: list[str] = field(default_factory=list)
    production_events: list[str] = field(default_factory=list)
    dropped: list[tuple[int, int]] = field(default_factory=list)
    """(first_seq, last_seq) of buffer.overflowed events."""
    first_state_change: datetime | None = None
    first_production_event: datetime | None = None
    first_time: datetime | None = None
    last_time: datetime | None = None
    count_hours: dict[tuple[datetime, str | None], list] = field(default_factory=dict)
    """(hour_end, product_id) -> [good, scrap, counts, last_time] of the batch's counts
    (lineside.count_hours; the hour is (hour_end - 1 h, hour_end])."""


def _text(value: Any) -> str:
    if type(value) is not str:
        raise _Odd
    return copy_text(value)


def _cached_text(value: Any, texts: dict[str, str]) -> str:
    """``_text`` through a cache: tags, units, qualities and statuses repeat a lot."""
    if type(value) is not str:
        raise _Odd
    text = texts.get(value)
    if text is None:
        text = texts[value] = copy_text(value)
    return text


def _text_or_null(value: Any) -> str:
    return _NULL if value is None else _text(value)


def _bigint_or_null(value: Any) -> str:
    if value is None:
        return _NULL
    if type(value) is not int:
        raise _Odd
    return str(value)


def _double_or_null(value: Any) -> str:
    kind = type(value)
    if value is None:
        return _NULL
    if kind is float:
        return repr(value)
    if kind is int:
        return repr(float(value))  # OverflowError cannot happen: _copy checked the range
    raise _Odd


def _json_scalar(value: Any) -> str:
    """A str/int/float as jsonb COPY text (what payload->'x' of the stored payload is)."""
    kind = type(value)
    if kind is not str and kind is not int and kind is not float:
        raise _Odd
    text = orjson.dumps(value).decode()
    if "\\u0000" in text:
        raise _Odd  # NUL handling of the payload path: left to it
    return text.replace("\\", "\\\\") if "\\" in text else text


_HOUR = timedelta(hours=1)
_TICK = timedelta(microseconds=1)


def hour_end_of(moment: datetime) -> datetime:
    """End of the hour ``(end - 1 h, end]`` holding ``moment`` (a full hour stays)."""
    before = moment - _TICK
    return before.replace(minute=0, second=0, microsecond=0) + _HOUR


def encode_facts(
    batch: AcceptedBatch, equipment_id: int, times: list[str], texts: dict[str, str]
) -> BatchFacts | None:
    """The facts of every event of ``batch``, or None when a payload looks unusual.

    ``times`` holds each event's event_time COPY text (from ``encode_batch``); ``texts``
    is a cache of escaped strings.
    """
    facts = BatchFacts()
    pv, pc = facts.process_values.append, facts.production_counts.append
    hours = facts.count_hours
    eq = str(equipment_id)
    first_time = last_time = batch.events[0].event_time
    try:
        for event, when in zip(batch.events, times, strict=True):
            kind = event.type
            payload = event.payload
            moment = event.event_time
            if moment < first_time:
                first_time = moment
            elif moment > last_time:
                last_time = moment
            if kind == "tag.sampled":
                value = payload.get("value")
                value_type = type(value)
                num = text = boolean = _NULL
                if value_type is float:
                    num = repr(value)
                elif value_type is bool:
                    boolean = _TRUE if value else _FALSE
                elif value_type is int:
                    num = repr(float(value))
                elif value_type is str:
                    text = copy_text(value)
                elif value is not None:
                    raise _Odd
                unit = payload.get("unit")
                pv(
                    f"{eq}\t{when}\t{_cached_text(payload.get('tag'), texts)}\t{num}\t{text}\t"
                    f"{boolean}\t{_NULL if unit is None else _cached_text(unit, texts)}\t"
                    f"{_cached_text(payload.get('quality'), texts)}\t"
                    f"{_cached_text(payload.get('status'), texts)}\t{event.event_id}\n"
                )
            elif kind == "production.counted":
                reset = payload.get("counter_reset")
                if reset is not None and type(reset) is not bool:
                    raise _Odd
                good, scrap = payload.get("good"), payload.get("scrap")
                if type(good) is not int or type(scrap) is not int:
                    raise _Odd
                product = payload.get("product_id")
                hour_end = hour_end_of(moment)
                acc = hours.get((hour_end, product))
                if acc is None:
                    hours[(hour_end, product)] = [good, scrap, 1, moment]
                else:
                    acc[0] += good
                    acc[1] += scrap
                    acc[2] += 1
                    if moment > acc[3]:
                        acc[3] = moment
                pc(
                    f"{eq}\t{when}\t{_text_or_null(payload.get('interval_start'))}\t"
                    f"{_bigint_or_null(payload.get('good'))}\t"
                    f"{_bigint_or_null(payload.get('scrap'))}\t"
                    f"{_bigint_or_null(payload.get('total'))}\t{_TRUE if reset else _FALSE}\t"
                    f"{_text_or_null(payload.get('product_id'))}\t"
                    f"{_text_or_null(payload.get('order_id'))}\t{event.event_id}\n"
                )
            elif kind == "equipment.state_changed":
                raw = payload.get("raw_value")
                facts.state_intervals.append(
                    f"{eq}\t{when}\t{_text(payload.get('state'))}\t"
                    f"{_text_or_null(payload.get('previous_state'))}\t"
                    f"{_NULL if raw is None else _json_scalar(raw)}\t"
                    f"{_bigint_or_null(payload.get('reason_code'))}\t{event.seq}\t"
                    f"{event.event_id}\n"
                )
                if facts.first_state_change is None or moment < facts.first_state_change:
                    facts.first_state_change = moment
            elif kind == "production.started" or kind == "production.ended":
                facts.production_events.append(
                    f"{eq}\t{when}\t{event.seq}\t{event.event_id}\t"
                    f"{'started' if kind == 'production.started' else 'ended'}\t"
                    f"{_text_or_null(payload.get('order_id'))}\t"
                    f"{_text_or_null(payload.get('product_id'))}\t"
                    f"{_double_or_null(payload.get('ideal_cycle_time_s'))}\t"
                    f"{_text_or_null(payload.get('reason'))}\n"
                )
                if facts.first_production_event is None or moment < facts.first_production_event:
                    facts.first_production_event = moment
            elif kind == "buffer.overflowed":
                first_seq, last_seq = payload.get("first_seq"), payload.get("last_seq")
                if type(first_seq) is not int or type(last_seq) is not int:
                    raise _Odd
                facts.dropped.append((first_seq, last_seq))
    except _Odd:
        return None
    facts.first_time, facts.last_time = first_time, last_time
    return facts


def seq_runs(seqs: list[int]) -> list[tuple[int, int]]:
    """Runs of consecutive values of ``seqs`` as (first, last), ascending."""
    ordered = sorted(set(seqs))
    if ordered[-1] - ordered[0] + 1 == len(ordered):
        return [(ordered[0], ordered[-1])]
    runs = []
    start = previous = ordered[0]
    for seq in ordered[1:]:
        if seq != previous + 1:
            runs.append((start, previous))
            start = seq
        previous = seq
    runs.append((start, previous))
    return runs
