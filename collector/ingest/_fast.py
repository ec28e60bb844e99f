"""The validator's fast path: plain checks over the dicts orjson made (no pydantic).

:func:`check_batch` returns the batch when it is certain that
``lineside_protocol.decode_batch`` accepts the same document, and None whenever it is
not: the caller then asks ``decode_batch``, which refuses with the exact reason and
message, or accepts (and the rows are built from its models). So this module may be
stricter than ``decode_batch`` (a miss only costs time) but must never be more lenient.
The payload of each event type is checked in ``_payloads``.

Deliberately left to ``decode_batch`` (None here), besides everything invalid:
timestamps other than ``YYYY-MM-DDTHH:MM:SS[.f{1,6}](Z|+hh:mm)`` (pydantic also takes
``' '``, ``'z'``, 7+ fraction digits, ``+hhmm``, Unix seconds as strings), ids and
names with a trailing newline, booleans and strings where pydantic converts them to
numbers (``raw_value``, ``ideal_cycle_time_s``), floats of 2**63 or more (orjson's
reading of too-large integers), and unknown fields nested deeper than 32 levels.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from collector.records import Equipment, EventRow
from lineside_protocol import MAX_BATCH_EVENTS, SCHEMA_VERSION

from ._payloads import PAYLOAD_CHECKS
from ._shapes import (
    agent_id_shape,
    all_lowercase_uuid7,
    cached_timestamp,
    extras_plain,
    level_shape,
    loose_fields,
    parse_timestamp,
    timestamp,
    uuid7_shape,
)


class CheckedBatch(NamedTuple):
    """The parts of an accepted batch the validator needs (from either path)."""

    batch_id: str
    agent_id: str
    equipment: Equipment
    sent_at: datetime
    rows: list[EventRow]


_BATCH_KEYS = frozenset(
    ("schema_version", "batch_id", "agent_id", "equipment", "sent_at", "events")
)
_LEVEL_NAMES = ("enterprise", "site", "area", "line", "equipment")
_EQUIPMENT_KEYS = frozenset(_LEVEL_NAMES)

_new_tuple = tuple.__new__  # EventRow(...) and EventRow._make run Python code per row


def check_batch(document: Any) -> CheckedBatch | None:
    """The batch if ``decode_batch`` certainly accepts ``document``, else None."""
    try:
        return _check_batch(document)
    except Exception:
        # an unhashable value looked up in a set, and the like: not sure, so let
        # decode_batch decide
        return None


def _check_batch(document: Any) -> CheckedBatch | None:
    if type(document) is not dict:
        return None
    get = document.get
    version = get("schema_version")
    batch_id = get("batch_id")
    agent_id = get("agent_id")
    if (
        type(version) is not int
        or version != SCHEMA_VERSION
        or type(batch_id) is not str
        or not uuid7_shape(batch_id)
        or type(agent_id) is not str
        or not agent_id_shape(agent_id)
    ):
        return None
    equipment = _equipment(get("equipment"))
    sent_at = timestamp(get("sent_at"))
    events = get("events")
    if (
        equipment is None
        or sent_at is None
        or type(events) is not list
        or not 1 <= len(events) <= MAX_BATCH_EVENTS
        or (len(document) != len(_BATCH_KEYS) and not extras_plain(document, _BATCH_KEYS))
    ):
        return None
    rows = _event_rows(events, agent_id, dict(zip(_LEVEL_NAMES, equipment, strict=True)))
    if rows is None:
        return None
    return CheckedBatch(batch_id.lower(), agent_id, equipment, sent_at, rows)


def _equipment(value: Any) -> Equipment | None:
    if type(value) is not dict:
        return None
    levels = tuple(value.get(name) for name in _LEVEL_NAMES)
    for level in levels:
        if type(level) is not str or not level_shape(level):
            return None
    if levels[2] == "_agents":
        return None
    if len(value) != len(_EQUIPMENT_KEYS) and not extras_plain(value, _EQUIPMENT_KEYS):
        return None
    return Equipment(*levels)


def _same_equipment(value: Any, expected: dict[str, str]) -> bool:
    """An event's equipment equals the batch's, with unknown fields (plain) besides."""
    return (
        type(value) is dict
        and all(value.get(name) == level for name, level in expected.items())
        and extras_plain(value, _EQUIPMENT_KEYS)
    )


_EVENT_NAMES = (
    "schema_version",
    "event_id",
    "type",
    "agent_id",
    "equipment",
    "seq",
    "event_time",
    "received_time",
    "correlation_id",
    "causation_id",
    "historical",
    "payload",
)
_EVENT_DEFAULTS = (None,) * 10 + (False, None)  # absent historical means false
_EVENT_KEYS = frozenset(_EVENT_NAMES)
_EVENT_KEY_COUNT = len(_EVENT_NAMES)


def _event_rows(
    events: list[Any], agent_id: str, expected: dict[str, str]
) -> list[EventRow] | None:
    """The rows of all events, or None at the first event that is not certainly valid."""
    rows: list[EventRow] = []
    append = rows.append
    ids: list[str] = []
    add_id = ids.append
    checks = PAYLOAD_CHECKS
    for event in events:
        # Subscripts, twice as fast as .get(): a Lineside agent sends every key and no
        # other, so the exact count proves there is nothing unknown to look at.
        try:
            version = event["schema_version"]
            event_id = event["event_id"]
            kind = event["type"]
            agent = event["agent_id"]
            equipment = event["equipment"]
            seq = event["seq"]
            event_time = event["event_time"]
            received_time = event["received_time"]
            correlation_id = event["correlation_id"]
            causation_id = event["causation_id"]
            historical = event["historical"]
            payload = event["payload"]
            complete = type(event) is dict and len(event) == _EVENT_KEY_COUNT
        except (KeyError, TypeError):
            complete = False
        if not complete:
            fields = loose_fields(event, _EVENT_NAMES, _EVENT_DEFAULTS, _EVENT_KEYS)
            if fields is None:
                return None
            (
                version,
                event_id,
                kind,
                agent,
                equipment,
                seq,
                event_time,
                received_time,
                correlation_id,
                causation_id,
                historical,
                payload,
            ) = fields
        event_time = cached_timestamp(event_time) or parse_timestamp(event_time)
        received_time = cached_timestamp(received_time) or parse_timestamp(received_time)
        if (
            type(version) is not int
            or version != SCHEMA_VERSION
            or type(event_id) is not str
            or agent != agent_id
            or (equipment != expected and not _same_equipment(equipment, expected))
            or type(seq) is not int
            or seq < 0
            or event_time is None
            or received_time is None
            or (correlation_id is not None and type(correlation_id) is not str)
            or (causation_id is not None and type(causation_id) is not str)
            or type(historical) is not bool  # null is refused, as pydantic does
            or type(payload) is not dict
            or not checks[kind](payload)  # KeyError for an unknown type: not sure
        ):
            return None
        add_id(event_id)
        append(
            _new_tuple(
                EventRow,
                (
                    event_id,
                    kind,
                    seq,
                    event_time,
                    received_time,
                    correlation_id,
                    causation_id,
                    historical,
                    payload,
                ),
            )
        )
    if all_lowercase_uuid7(ids):
        return rows
    # upper case (or not UUIDv7 at all): one by one, stored in lower case
    if not all(uuid7_shape(event_id) for event_id in ids):
        return None
    return [row._replace(event_id=row.event_id.lower()) for row in rows]
