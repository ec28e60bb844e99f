"""Events -> COPY text rows for the staging table (pure; the writer's Python hot path).

Text COPY from pre-formatted ``str`` lines is the cheapest way to get rows into
PostgreSQL from Python: no per-value Python objects are built by the driver. Times go
as timestamptz text built from epoch milliseconds: the "YYYY-MM-DD HH:MM:SS" part is
cached per second (``isoformat()`` costs ~1.7 us per call here), so a time costs an int
division and an f-string.

Also checks the few values PostgreSQL cannot store although the wire contract allows
them (integers beyond 64 bits, numbers beyond double precision): such a batch raises
:class:`UnstorableBatchError` before anything is sent.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from collector.records import AcceptedBatch

from .errors import UnstorableBatchError

# The columns of audit.events a COPY line carries, in order. The staging table has the
# same columns, so one encoded line serves a COPY into either (see writer: fresh batches
# go straight into audit.events).
EVENT_COLUMNS = (
    "event_id",
    "event_time",
    "equipment_id",
    "agent_id",
    "type",
    "seq",
    "received_time",
    "correlation_id",
    "causation_id",
    "historical",
    "payload",
    "batch_id",
)
STAGING_COLUMNS = EVENT_COLUMNS

MAX_BIGINT = 2**63 - 1
MAX_DOUBLE = 1.7976931348623157e308
DAY_MS = 86_400_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DAY = date(1970, 1, 1)
_MS = timedelta(milliseconds=1)

# text COPY escapes; NUL cannot be stored in PostgreSQL text at all, so it becomes U+FFFD
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\x00": "\ufffd"})
_NEEDS_ESCAPE = ("\\", "\t", "\n", "\r", "\x00")
_NULL, _TRUE, _FALSE = "\\N", "t", "f"

_BIGINT_FIELDS: dict[str, tuple[str, ...]] = {
    "production.counted": ("good", "scrap", "total"),
    "equipment.state_changed": ("reason_code",),
    "buffer.overflowed": ("dropped_events", "first_seq", "last_seq"),
}
_DOUBLE_FIELDS: dict[str, tuple[str, ...]] = {
    "tag.sampled": ("value",),
    "production.started": ("ideal_cycle_time_s",),
}


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since 1970-01-01 UTC (exact for aware datetimes)."""
    return (moment - _EPOCH) // _MS


_MILLIS = tuple(f".{milli:03d}+00" for milli in range(1000))


def _second_text(second: int, seconds: dict[int, str]) -> str:
    moment = _EPOCH + timedelta(seconds=second)
    prefix = seconds[second] = (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d} "
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )
    return prefix


def time_text(ms: int, seconds: dict[int, str]) -> str:
    """Epoch milliseconds as timestamptz COPY text (UTC); ``seconds`` caches per second."""
    second = ms // 1000
    return (seconds.get(second) or _second_text(second, seconds)) + _MILLIS[ms - second * 1000]


def day_of_ms(ms: int) -> date:
    """The UTC day of an epoch-milliseconds time."""
    return _EPOCH_DAY + timedelta(days=ms // DAY_MS)


def copy_text(value: str | None) -> str:
    """A text field for COPY (NULL as ``\\N``, special characters escaped)."""
    if value is None:
        return "\\N"
    for char in _NEEDS_ESCAPE:
        if char in value:
            return value.translate(_ESCAPES)
    return value


def payload_json(payload: dict[str, Any]) -> str:
    """The payload as JSON for a jsonb COPY field.

    jsonb refuses the escape ``\\u0000``, so NUL characters in strings become U+FFFD.
    """
    try:
        text = orjson.dumps(payload).decode()
    except TypeError:  # orjson stops at 64-bit integers; JSON (and jsonb) does not
        text = _dumps_slow(payload)
    if "\\u0000" in text:
        text = _dumps_slow(_without_nul(payload))
    if "\\" in text:
        text = text.replace("\\", "\\\\")  # COPY text format: a backslash escapes
    return text


def _dumps_slow(payload: dict[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=_json_default)


def _json_default(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"payload value of type {type(value).__name__} is not JSON")


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    return value


def encode_batch(
    batch_no: int,
    batch: AcceptedBatch,
    equipment_id: int,
    lines: list[str],
    days: set[int],
    seconds: dict[int, str] | None = None,
    times: list[str] | None = None,
) -> tuple[int, int]:
    """Append one COPY line (:data:`EVENT_COLUMNS`) per event of ``batch`` to ``lines``;
    add event days to ``days``.

    ``batch_no`` is the batch's index in the write (named by errors). ``days`` receives
    epoch day numbers (``ms // DAY_MS``); ``seconds`` is a cache for :func:`time_text`;
    ``times``, when given, receives each event's event_time text (for its fact row).
    Returns the lowest and highest seq of the batch. Raises
    :class:`UnstorableBatchError` for values PostgreSQL cannot hold.
    """
    if seconds is None:
        seconds = {}
    middle = f"\t{equipment_id}\t{copy_text(batch.agent_id)}\t"
    tail = f"\t{batch.batch_id}\n"
    append = lines.append
    add_day = days.add
    add_time = times.append if times is not None else None
    cached = seconds.get
    lowest = highest = batch.events[0].seq
    for event in batch.events:
        event_ms = (event.event_time - _EPOCH) // _MS
        received_ms = (event.received_time - _EPOCH) // _MS
        add_day(event_ms // DAY_MS)
        second = event_ms // 1000
        event_text = (cached(second) or _second_text(second, seconds)) + _MILLIS[
            event_ms - second * 1000
        ]
        second = received_ms // 1000
        received_text = (cached(second) or _second_text(second, seconds)) + _MILLIS[
            received_ms - second * 1000
        ]
        if add_time is not None:
            add_time(event_text)
        kind = event.type
        seq = event.seq
        if seq < lowest:
            lowest = seq
        elif seq > highest:
            highest = seq
        payload = event.payload
        # the common float-valued sample needs no range check beyond its seq
        if kind != "tag.sampled" or seq > MAX_BIGINT or type(payload.get("value")) is int:
            _check_ranges(batch_no, batch.batch_id, kind, seq, payload)
        correlation = event.correlation_id
        causation = event.causation_id
        append(
            f"{event.event_id}\t{event_text}{middle}{kind}\t{seq}\t{received_text}\t"
            f"{_NULL if correlation is None else copy_text(correlation)}\t"
            f"{_NULL if causation is None else copy_text(causation)}\t"
            f"{_TRUE if event.historical else _FALSE}\t{payload_json(payload)}{tail}"
        )
    return lowest, highest


def _check_ranges(
    batch_index: int, batch_id: str, kind: str, seq: int, payload: dict[str, Any]
) -> None:
    if seq > MAX_BIGINT:
        raise UnstorableBatchError(
            batch_index, batch_id, f"seq {seq} is above {MAX_BIGINT}, the largest storable seq"
        )
    for field in _BIGINT_FIELDS.get(kind, ()):
        value = payload.get(field)
        if isinstance(value, int) and not -MAX_BIGINT <= value <= MAX_BIGINT:
            raise UnstorableBatchError(
                batch_index,
                batch_id,
                f"{kind} payload.{field} = {value} does not fit a 64-bit integer",
            )
    for field in _DOUBLE_FIELDS.get(kind, ()):
        value = payload.get(field)
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_DOUBLE:
            raise UnstorableBatchError(
                batch_index,
                batch_id,
                f"{kind} payload.{field} = {value} is beyond double precision",
            )
