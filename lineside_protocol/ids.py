"""UUIDv7 identifiers (RFC 9562) for events and batches.

Python 3.11 has no ``uuid.uuid7``, so ids are built here: 48 bits of Unix time in
milliseconds, the version and variant bits, and 74 bits that are random for the first id
of a millisecond and incremented for every further id in the same millisecond (RFC 9562
section 6.2, method 2). Ids from one process therefore sort in creation order, which
keeps database index inserts append-only and makes "newer" a string comparison.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, WithJsonSchema

_TAIL_BITS = 74  # 12 bits rand_a + 62 bits rand_b
_TAIL_MAX = (1 << _TAIL_BITS) - 1
_TIME_MAX_MS = (1 << 48) - 1
_UUID7_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-7[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$"
)
_ANY_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


class UUIDv7Generator:
    """Produces UUIDv7 strings that strictly increase within this generator.

    If the clock steps backwards (NTP) the generator keeps using the last millisecond it
    issued and counts on from there, so ids stay ordered; the timestamp in the id may then
    run a few milliseconds ahead of the wall clock until it catches up.
    """

    def __init__(
        self,
        clock_ns: Callable[[], int] = time.time_ns,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self._clock_ns = clock_ns
        self._random_bytes = random_bytes
        self._lock = threading.Lock()
        self._last_ms = -1
        self._last_tail = 0

    def reset(self) -> None:
        """Forget the last id (used after fork so parent and child never share a sequence)."""
        with self._lock:
            self._last_ms = -1
            self._last_tail = 0

    def _fresh_tail(self) -> int:
        # top bit cleared: leaves at least 2**73 increments of room before a carry
        return int.from_bytes(self._random_bytes(10), "big") & (_TAIL_MAX >> 1)

    def new(self) -> str:
        """Return the next id in canonical lowercase form."""
        return self.new_many(1)[0]

    def new_many(self, count: int) -> list[str]:
        """Return the next ``count`` ids, in increasing order (one lock, one clock read)."""
        if count <= 0:
            return []
        with self._lock:
            now_ms = self._clock_ns() // 1_000_000
            # one clock read: only the first id can start a new millisecond
            if now_ms > self._last_ms:
                ms, first = now_ms, self._fresh_tail()
            else:
                ms, first = self._last_ms, self._last_tail + 1
            if ms > _TIME_MAX_MS:
                raise OverflowError("UUIDv7 timestamp overflow (year 10889)")
            if first + count - 1 > _TAIL_MAX:  # practically unreachable: one id at a time
                return self._new_borrowing(count, now_ms)
            self._last_ms, self._last_tail = ms, first + count - 1
        return _format_run(ms, first, count)

    def _new_borrowing(self, count: int, now_ms: int) -> list[str]:
        """``new_many`` when the tails run out within the millisecond: borrow the next."""
        ids: list[str] = []
        ms, tail = self._last_ms, self._last_tail
        for _ in range(count):
            if now_ms > ms:
                ms, tail = now_ms, self._fresh_tail()
            else:
                tail += 1
                if tail > _TAIL_MAX:
                    ms, tail = ms + 1, self._fresh_tail()
            if ms > _TIME_MAX_MS:
                raise OverflowError("UUIDv7 timestamp overflow (year 10889)")
            ids.append(_format(ms, tail))
        self._last_ms, self._last_tail = ms, tail
        return ids


def _format(ms: int, tail: int) -> str:
    rand_a = tail >> 62
    rand_b = tail & ((1 << 62) - 1)
    value = (ms << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


_LOW_BITS = 48  # the last 12 hex digits of an id: the low 48 bits of its tail


def _format_run(ms: int, first_tail: int, count: int) -> list[str]:
    """The ids of tails ``first_tail`` .. ``first_tail + count - 1`` in millisecond ``ms``.

    Consecutive tails differ only in their last 12 hex digits until those wrap, so the
    first 24 characters are formatted once per run: a fifth of the cost per id of
    ``_format`` when the agent numbers thousands of events at once.
    """
    ids: list[str] = []
    tail, end = first_tail, first_tail + count
    while tail < end:
        low = tail & ((1 << _LOW_BITS) - 1)
        run = min(end - tail, (1 << _LOW_BITS) - low)
        head = _format(ms, tail)[:24]
        ids += [f"{head}{n:012x}" for n in range(low, low + run)]
        tail += run
    return ids


_default_generator = UUIDv7Generator()
os.register_at_fork(after_in_child=_default_generator.reset)


def new_event_id() -> str:
    """Return a new UUIDv7 string; ids from one process strictly increase."""
    return _default_generator.new()


def new_event_ids(count: int) -> list[str]:
    """Return ``count`` new UUIDv7 strings, increasing, in one call (cheaper per id)."""
    return _default_generator.new_many(count)


def is_uuid7(value: str) -> bool:
    """True when ``value`` is a hyphenated UUID string of version 7 (RFC 9562 variant)."""
    return bool(_UUID7_RE.match(value))


def uuid7_time(value: str) -> datetime:
    """Return the creation time (millisecond precision, UTC) embedded in a UUIDv7 string."""
    if not is_uuid7(value):
        raise ValueError(f"{value!r} is not a UUIDv7 string")
    ms = int(value.replace("-", "")[:12], 16)
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _check_uuid7(value: str) -> str:
    if _UUID7_RE.match(value):
        return value.lower()
    if _ANY_UUID_RE.match(value):
        raise ValueError(
            f"{value!r} is a version {value[14]} UUID; a UUIDv7 is required "
            "(RFC 9562, time-ordered; see docs/protocol.md)"
        )
    raise ValueError(
        f"{value!r} is not a UUID string; expected the hyphenated form "
        "'xxxxxxxx-xxxx-7xxx-yxxx-xxxxxxxxxxxx'"
    )


_UUID7_JSON_SCHEMA: dict[str, Any] = {
    "type": "string",
    "pattern": _UUID7_RE.pattern,
    "description": "UUIDv7 (RFC 9562), hyphenated; receivers store it lowercase",
}

Uuid7Str = Annotated[str, AfterValidator(_check_uuid7), WithJsonSchema(_UUID7_JSON_SCHEMA)]
"""A pydantic field type: a UUIDv7 string, normalised to lowercase."""
