"""Buffered events -> batch messages, without decoding or re-encoding the events (pure).

A batch message is the :class:`lineside_protocol.EventBatch` JSON, assembled from bytes:
a header built once per equipment and batch, then the stored event bodies joined with
commas, each with ``"historical":true|false`` spliced in after its opening brace.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import orjson

from lineside_protocol import (
    SCHEMA_VERSION,
    EquipmentPath,
    ProtocolError,
    event_topic,
)

_PREFIX = {True: b'{"historical":true,', False: b'{"historical":false,'}
_SEPARATOR = {flag: b"," + prefix for flag, prefix in _PREFIX.items()}
_BATCH_ID_CHARS = 36  # hyphenated UUID
_SENT_AT_CHARS = 24  # 2026-01-05T08:10:00.123Z
_CLOSE = b"]}"


class LocationLike(Protocol):
    """The agent's ISA-95 location (``edge_agent.config.models.Location``)."""

    @property
    def enterprise(self) -> str: ...
    @property
    def site(self) -> str: ...
    @property
    def area(self) -> str: ...
    @property
    def line(self) -> str: ...


@dataclass(frozen=True, slots=True, eq=False)
class Target:
    """One equipment's topic and the bytes of its batch header."""

    path: EquipmentPath
    topic: str
    head: bytes
    """Header up to the batch id: ``{"schema_version":1,"batch_id":"``."""
    middle: bytes
    """From after the batch id to the sent_at value: ``","agent_id":...,"sent_at":"``."""
    marker: bytes
    """``"equipment":{...}`` as the stored bodies spell this path (the fast check)."""
    header_bytes: int = field(default=0)
    """Length of the whole header including ``"events":[``."""


def event_cost(body: bytes, historical: bool) -> int:
    """Bytes one stored event adds to a batch message (with its comma)."""
    return len(body) + len(_SEPARATOR[historical]) - 1


def encode_batch_payload(
    target: Target, batch_id: str, sent_at: str, bodies: Sequence[bytes], historical: bool
) -> bytes:
    """The batch message: header, then the bodies with ``historical`` spliced in.

    ``bodies`` are compact JSON objects (each starts with ``{`` and has at least one
    key, as the buffer stores wire events); the result passes ``decode_batch``.
    """
    header = b"".join(
        (
            target.head,
            batch_id.encode("ascii"),
            target.middle,
            sent_at.encode("ascii"),
            b'","events":[',
            _PREFIX[historical],
        )
    )
    if not bodies:
        return header + _CLOSE
    # one join writes the whole message: the header goes with the first event and the
    # closing brackets with the last (a batch is ~250 KB: every extra copy shows)
    parts = [body[1:] for body in bodies]
    parts[0] = header + parts[0]
    parts[-1] += _CLOSE
    return _SEPARATOR[historical].join(parts)


class Targets:
    """Finds the batch target of each stored event; caches one :class:`Target` per path.

    Events normally carry the agent's configured location, checked with a substring
    test. An event stored under another location (the location changed while events
    were buffered) is parsed once to find its own path, so it is never sent in a batch
    whose equipment differs from its own (the collector would reject the batch).
    """

    def __init__(self, agent_id: str, location: LocationLike) -> None:
        self._agent_id = agent_id
        self._location = location
        self.by_name: dict[str, Target | None] = {}
        """Equipment name -> target of the configured location (None: not a topic level)."""
        self._by_levels: dict[tuple[str, ...], Target] = {}

    def for_event(self, equipment: str, body: bytes) -> Target | None:
        """The event's target, or None when its path cannot name a topic."""
        if equipment in self.by_name:
            target = self.by_name[equipment]
        else:
            target = self._from_levels(
                (
                    self._location.enterprise,
                    self._location.site,
                    self._location.area,
                    self._location.line,
                    equipment,
                )
            )
            self.by_name[equipment] = target
        if target is not None and target.marker in body:
            return target
        return self._from_body(body)

    def _from_body(self, body: bytes) -> Target | None:
        try:
            path = orjson.loads(body)["equipment"]
            levels = tuple(path[name] for name in _LEVEL_NAMES)
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return None
        return self._from_levels(levels)

    def _from_levels(self, levels: tuple[str, ...]) -> Target | None:
        found = self._by_levels.get(levels)
        if found is not None:
            return found
        try:
            path = EquipmentPath(**dict(zip(_LEVEL_NAMES, levels, strict=True)))
            topic = event_topic(path)
        except (ProtocolError, ValueError):
            return None
        path_json = orjson.dumps(path.model_dump())
        head = b'{"schema_version":%d,"batch_id":"' % SCHEMA_VERSION
        middle = b'","agent_id":%s,"equipment":%s,"sent_at":"' % (
            orjson.dumps(self._agent_id),
            path_json,
        )
        header_bytes = (
            len(head) + _BATCH_ID_CHARS + len(middle) + _SENT_AT_CHARS + len(b'","events":[')
        )
        target = Target(
            path=path,
            topic=topic,
            head=head,
            middle=middle,
            marker=b'"equipment":' + path_json,
            header_bytes=header_bytes + len(_CLOSE),
        )
        self._by_levels[levels] = target
        return target


_LEVEL_NAMES = ("enterprise", "site", "area", "line", "equipment")
