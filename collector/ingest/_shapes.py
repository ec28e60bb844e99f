"""Cheap shape checks shared by the validator's fast path: ids, levels, timestamps.

Every check here is at least as strict as ``lineside_protocol`` (pydantic) for the same
value, never more lenient: a value that fails here is handed to ``decode_batch``, which
decides. The patterns use ``fullmatch`` on purpose: ``lineside_protocol`` uses
``^...$``, whose ``$`` also matches before a trailing newline, so ``"agent-7\\n"`` passes
there; such rarities go the slow way and come out exactly as ``decode_batch`` says.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

uuid7_shape = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-7[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}"
).fullmatch
"""Matches a hyphenated UUIDv7 (either case), as ``lineside_protocol.ids``."""


def all_lowercase_uuid7(ids: list[str]) -> bool:
    """True when every string in ``ids`` is a lower-case hyphenated UUIDv7.

    One pass over the joined ids with C-level string operations instead of a regular
    expression per id (~35 ns instead of ~280 ns per id). False means "check one by one"
    (upper case is valid too); a non-string raises TypeError.
    """
    count = len(ids)
    joined = "".join(ids)
    return (
        len(joined) == 36 * count
        and max(map(len, ids), default=0) <= 36  # with the total: every id has 36
        and joined.isascii()
        # nothing but lower-case hex digits and four hyphens per id...
        and joined.encode().translate(None, _LOWER_HEX) == b"-" * (4 * count)
        # ...at 8, 13, 18 and 23; version 7; variant 10xx
        and joined[8::36] == joined[13::36] == joined[18::36] == joined[23::36] == "-" * count
        and joined[14::36] == "7" * count
        and not joined[19::36].strip("89ab")
    )


_LOWER_HEX = b"0123456789abcdef"

agent_id_shape = re.compile(r"[A-Za-z0-9._-]{1,64}").fullmatch
level_shape = re.compile(r"[A-Za-z0-9_-]{1,64}").fullmatch

# The timestamp form the fast path parses itself: RFC 3339 with 'T', '.', 'Z' or +hh:mm,
# at most 6 fraction digits. pydantic also takes ' ', 'z', 7+ digits, +hhmm, Unix seconds
# as strings and more; those take the slow path. [0-9], not \d, which matches any
# script's digits. A timestamp is cut in two, each part checked and cached on its own:
# "2026-01-05T08:00:02" (one per second of data) and ".123Z" (a thousand for ms and Z).
_SECOND = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}").fullmatch
_REST = re.compile(r"(?:\.([0-9]{1,6}))?(?:Z|([+-])([01][0-9]|2[0-3]):([0-5][0-9]))").fullmatch
_SECOND_CHARS = len("2026-01-05T08:00:02")

_TIMES: dict[str, datetime] = {}
"""Timestamp text -> UTC datetime at ms. The samples of one PLC read share their times,
so a batch repeats many strings; a hit costs one dict lookup."""
_SECONDS: dict[str, datetime] = {}
"""'2026-01-05T08:00:02' -> that second, read as UTC."""
_RESTS: dict[str, timedelta] = {}
"""'.123Z' or '.5+01:00' -> what to add to the second: the ms (finer digits dropped,
as lineside_protocol does) minus the UTC offset."""
_CACHE_MAX = 16_384

cached_timestamp = _TIMES.get
"""The parsed value of a timestamp string seen before, else None (raises TypeError for
unhashable values: callers treat any exception as "not sure")."""


def parse_timestamp(value: Any) -> datetime | None:
    """A wire timestamp as a UTC datetime truncated to ms, or None when not sure it is one."""
    if type(value) is not str:
        return None
    second_text = value[:_SECOND_CHARS]
    rest_text = value[_SECOND_CHARS:]
    second = _SECONDS.get(second_text) or _parse_second(second_text)
    rest = _RESTS.get(rest_text)
    if rest is None:  # not "or": timedelta(0) is false
        rest = _parse_rest(rest_text)
    if second is None or rest is None:
        return None
    try:
        parsed = second + rest
    except OverflowError:  # outside years 1-9999 in UTC: pydantic fails on it too
        return None
    if len(_TIMES) >= _CACHE_MAX:
        _TIMES.clear()
    _TIMES[value] = parsed
    return parsed


def _parse_second(text: str) -> datetime | None:
    if _SECOND(text) is None:
        return None
    try:
        second = datetime.fromisoformat(text + "Z")
    except ValueError:  # 2026-02-30, 24:00:00, 08:00:60 and the like
        return None
    if len(_SECONDS) >= _CACHE_MAX:
        _SECONDS.clear()
    _SECONDS[text] = second
    return second


def _parse_rest(text: str) -> timedelta | None:
    match = _REST(text)
    if match is None:
        return None
    fraction, sign, hours, minutes = match.groups()
    microseconds = int(fraction.ljust(6, "0")) if fraction else 0
    rest = timedelta(microseconds=microseconds - microseconds % 1000)
    if sign == "+":
        rest -= timedelta(hours=int(hours), minutes=int(minutes))
    elif sign == "-":
        rest += timedelta(hours=int(hours), minutes=int(minutes))
    if len(_RESTS) >= _CACHE_MAX:
        _RESTS.clear()
    _RESTS[text] = rest
    return rest


def forget_timestamps() -> None:
    """Empty the timestamp caches (for benchmarks and tests that must start cold)."""
    _TIMES.clear()
    _SECONDS.clear()
    _RESTS.clear()


def timestamp(value: Any) -> datetime | None:
    """Cached :func:`parse_timestamp` (``None`` for values it would refuse)."""
    if type(value) is not str:
        return None
    return _TIMES.get(value) or parse_timestamp(value)


# Unknown fields are ignored by decode_batch, but it reads them with json.loads, which
# differs from orjson in two ways that matter: it gives up on deep nesting (~1000 levels,
# depending on the stack) and keeps integers beyond 64 bits as int where orjson makes a
# float. Unknown values must therefore be shallow and free of such floats to stay fast.
_EXTRA_DEPTH_MAX = 32
_INT_AS_FLOAT = 2.0**63  # orjson turns integer literals outside int64/uint64 into floats


def plain_float(value: float) -> bool:
    """True for a float that json.loads would also read as this float (finite, < 2**63)."""
    return -_INT_AS_FLOAT < value < _INT_AS_FLOAT


def plain(value: Any, depth: int = 0) -> bool:
    """True when ``value`` (from orjson) is what json.loads would give, and shallow."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return True
    if kind is float:
        return plain_float(value)
    if depth >= _EXTRA_DEPTH_MAX:
        return False
    if kind is list:
        return all(plain(item, depth + 1) for item in value)
    if kind is dict:
        return all(plain(item, depth + 1) for item in value.values())
    return False


def extras_plain(document: dict[str, Any], known: frozenset[str]) -> bool:
    """True when every field of ``document`` not in ``known`` is :func:`plain`."""
    return all(plain(value, 1) for key, value in document.items() if key not in known)


def loose_fields(
    document: Any, names: tuple[str, ...], defaults: tuple[Any, ...], known: frozenset[str]
) -> tuple[Any, ...] | None:
    """The values of ``names`` (defaults for absent ones), or None when ``document`` is
    no dict or has an unknown field that is not plain. A missing required field gets a
    default that fails its check."""
    if type(document) is not dict or not (
        known.issuperset(document) or extras_plain(document, known)
    ):
        return None
    return tuple(map(document.get, names, defaults))
