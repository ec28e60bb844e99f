"""One group commit: encode events, insert, upsert numbers and snapshots, delete, bound.

Everything here runs in the writer thread inside one transaction, so events, their
sequence numbers, the deriver snapshots submitted with them and the drop counters are
committed together or not at all. Functions take plain data and a connection.
"""

from __future__ import annotations

import logging
import sqlite3
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import chain
from typing import Any

import orjson

from edge_agent.buffer._deletes import contiguous_runs
from edge_agent.buffer._sizes import RowSizes
from edge_agent.buffer._store import UPSERT_DROPPED
from edge_agent.buffer.records import DropTally

log = logging.getLogger("lineside.agent.buffer")

INSERT_EVENT = (
    "INSERT INTO events (rowid, equipment, seq, event_id, event_time, captured_ms, size, body) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
ROWS_PER_INSERT = 64
"""Events per INSERT statement: 512 parameters, within SQLite's smallest default limit (999)."""
_INSERT_ROWS = {
    rows: INSERT_EVENT + ", (?, ?, ?, ?, ?, ?, ?, ?)" * (rows - 1)
    for rows in (ROWS_PER_INSERT >> halvings for halvings in range(ROWS_PER_INSERT.bit_length()))
}
# the next numbers of a whole commit in one statement (a JSON object, equipment -> number)
UPSERT_SEQUENCES = (
    "INSERT INTO sequences (equipment, next_seq) SELECT key, value FROM json_each(?) WHERE true "
    "ON CONFLICT(equipment) DO UPDATE SET next_seq = max(next_seq, excluded.next_seq)"
)
UPSERT_SNAPSHOT = (
    "INSERT INTO snapshots (equipment, body, saved_ms) VALUES (?, ?, ?) "
    "ON CONFLICT(equipment) DO UPDATE SET body = excluded.body, saved_ms = excluded.saved_ms"
)
# Deletes count the rows and bytes that really go first (an id acknowledged twice, or
# already dropped by a bound, is not subtracted twice), then delete: two statements that
# each run to the end in one step, rather than RETURNING one row per step (and per GIL
# hand-over). Runs of consecutive rowids go as ranges, other ids as one json_each list.
COUNT_RANGE = "SELECT count(*), coalesce(sum(size), 0) FROM events WHERE rowid BETWEEN ? AND ?"
DELETE_RANGE = "DELETE FROM events WHERE rowid BETWEEN ? AND ?"
_IN_IDS = "rowid IN (SELECT value FROM json_each(?))"
COUNT_IDS = f"SELECT count(*), coalesce(sum(size), 0) FROM events WHERE {_IN_IDS}"
DELETE_IDS = f"DELETE FROM events WHERE {_IN_IDS}"
DELETE_CHUNK = 20_000
RANGE_MIN_ROWS = 8
"""Shorter runs of consecutive rowids are deleted through the id list."""
_flat = chain.from_iterable
DROP_SCAN = "SELECT rowid, equipment, seq, event_time, size, captured_ms FROM events ORDER BY rowid"


@dataclass(slots=True)
class Encoded:
    """Events of one group commit as rows, with what the transaction must also record."""

    rows: list[tuple[Any, ...]] = field(default_factory=list)
    next_seq: dict[str, int] = field(default_factory=dict)
    bytes: int = 0
    rejected: int = 0


def encode(batches: Iterable[list[dict[str, Any]]], first_rowid: int, captured_ms: int) -> Encoded:
    """Wire event dicts -> rows ``(rowid, equipment, seq, event_id, event_time, ...)``.

    The hot loop of the buffer: one ``orjson.dumps`` and one tuple per event. A batch
    with an event that cannot be encoded is redone event by event so that only the bad
    event is left out (and logged).
    """
    out = Encoded()
    rows = out.rows
    append = rows.append
    next_seq = out.next_seq
    highest = next_seq.get
    dumps = orjson.dumps
    rowid = first_rowid
    nbytes = 0
    for events in batches:
        mark, mark_bytes = len(rows), nbytes
        try:
            for event in events:
                body = dumps(event)
                size = len(body)
                equipment = event["equipment"]["equipment"]
                seq = event["seq"]
                event_id = event["event_id"]
                event_time = event["event_time"]
                # one unbindable value would fail every retry of the whole commit
                if (
                    type(seq) is not int
                    or type(equipment) is not str
                    or type(event_id) is not str
                    or type(event_time) is not str
                ):
                    raise TypeError("equipment, event_id, event_time must be strings, seq an int")
                append(
                    (
                        rowid,
                        equipment,
                        seq,
                        event_id,
                        event_time,
                        captured_ms,
                        size,
                        body,
                    )
                )
                rowid += 1
                nbytes += size
                if seq >= highest(equipment, 0):
                    next_seq[equipment] = seq + 1
        except (KeyError, TypeError) as error:
            log.debug("buffer batch needs event-by-event encoding: %r", error)
            del rows[mark:]
            rowid = _encode_one_by_one(events, first_rowid + mark, captured_ms, out)
            nbytes = mark_bytes + sum(row[6] for row in rows[mark:])
    out.bytes = nbytes
    return out


def _encode_one_by_one(
    events: list[dict[str, Any]], rowid: int, captured_ms: int, out: Encoded
) -> int:
    for event in events:
        try:
            body = orjson.dumps(event)
            row = (
                rowid,
                event["equipment"]["equipment"],
                event["seq"],
                event["event_id"],
                event["event_time"],
            )
            equipment, seq, event_id, event_time = row[1:]
            if type(seq) is not int or not all(
                type(text) is str for text in (equipment, event_id, event_time)
            ):
                raise TypeError("equipment, event_id, event_time must be strings, seq an int")
        except (KeyError, TypeError) as error:
            out.rejected += 1
            log.error(
                "event=buffer_event_rejected error=%r event_id=%s action=not_buffered",
                str(error),
                event.get("event_id") if isinstance(event, dict) else None,
            )
            continue
        out.rows.append((*row, captured_ms, len(body), body))
        rowid += 1
        if seq >= out.next_seq.get(equipment, 0):
            out.next_seq[equipment] = seq + 1
    return rowid


def insert(conn: sqlite3.Connection, encoded: Encoded) -> None:
    """Insert the rows and advance the stored next sequence numbers (never backwards).

    A few statements per commit rather than one per row: sqlite3 releases the GIL around
    every step of a statement, and while the event loop derives a burst, the writer
    waits up to the interpreter's switch interval (5 ms) to get it back each time. A
    1,250-row commit next to a thread running Python took 21 ms to 2.2 s (medians of
    rounds of 10; worst 3.5 s) with ``executemany`` (a step per row), 19-137 ms (worst
    174 ms) with statements of 64 rows; alone 3-6 ms either way.
    """
    rows = encoded.rows
    if rows:
        start, count, size = 0, len(rows), ROWS_PER_INSERT
        while start < count:
            while size > count - start:
                size //= 2
            conn.execute(_INSERT_ROWS[size], list(_flat(rows[start : start + size])))
            start += size
        conn.execute("UPDATE meta SET value = ? WHERE key = 'next_rowid'", (rows[-1][0] + 1,))
    if encoded.next_seq:
        conn.execute(UPSERT_SEQUENCES, (orjson.dumps(encoded.next_seq),))


def save_snapshots(conn: sqlite3.Connection, snapshots: Mapping[str, Any], saved_ms: int) -> None:
    conn.executemany(
        UPSERT_SNAPSHOT,
        [(equipment, orjson.dumps(state), saved_ms) for equipment, state in snapshots.items()],
    )


def delete(conn: sqlite3.Connection, rowids: Sequence[int]) -> tuple[int, int]:
    """Delete ``rowids`` (acknowledged events); returns (rows deleted, bytes freed).

    Ids that are not in the buffer (deleted before, dropped, unknown) are ignored.
    """
    runs, singles = contiguous_runs(rowids, RANGE_MIN_ROWS)
    count = freed = 0
    for first, last in runs:
        rows, size = conn.execute(COUNT_RANGE, (first, last)).fetchone()
        if rows:
            conn.execute(DELETE_RANGE, (first, last))
            count, freed = count + rows, freed + size
    for start in range(0, len(singles), DELETE_CHUNK):
        chunk = orjson.dumps(singles[start : start + DELETE_CHUNK])
        rows, size = conn.execute(COUNT_IDS, (chunk,)).fetchone()
        if rows:
            conn.execute(DELETE_IDS, (chunk,))
            count, freed = count + rows, freed + size
    return count, freed


def delete_held(
    conn: sqlite3.Connection, rowids: Sequence[int], sizes: RowSizes
) -> tuple[int, int, Callable[[], None]]:
    """Delete ``rowids``; returns (rows deleted, bytes freed, what to call after COMMIT).

    Rows this process committed are counted from ``sizes`` (no SQL read); older rows
    through :func:`delete`. The returned callback updates ``sizes`` once committed.
    """
    ordered = sorted(rowids)
    cut = bisect_left(ordered, sizes.base)
    count, freed = delete(conn, ordered[:cut]) if cut else (0, 0)
    runs, singles = contiguous_runs(ordered[cut:], RANGE_MIN_ROWS)
    rows, size = sizes.measure(runs, singles)
    if rows:
        for first, last in runs:
            conn.execute(DELETE_RANGE, (first, last))
        for start in range(0, len(singles), DELETE_CHUNK):
            conn.execute(DELETE_IDS, (orjson.dumps(singles[start : start + DELETE_CHUNK]),))
    return count + rows, freed + size, partial(sizes.forget, runs, singles)


@dataclass(slots=True)
class Dropped:
    tally: DropTally
    events: int = 0
    bytes: int = 0
    last_rowid: int | None = None
    """The newest dropped rowid: every row up to it is gone."""


def drop_oldest_bytes(conn: sqlite3.Connection, free_bytes: int) -> Dropped:
    """Drop the oldest events until at least ``free_bytes`` are freed."""
    dropped = Dropped(DropTally("max_bytes"))
    last = _scan_oldest(conn, dropped, lambda size, _captured: dropped.bytes >= free_bytes)
    if last is not None:
        conn.execute("DELETE FROM events WHERE rowid <= ?", (last,))
    dropped.last_rowid = last
    return dropped


def drop_older_than(conn: sqlite3.Connection, cutoff_ms: int) -> Dropped:
    """Drop events captured before ``cutoff_ms``, oldest first, up to the first younger one.

    Rows are scanned in buffer order, not by ``captured_ms``: a wall clock stepping back
    can leave an old event behind a young one, and it then goes with a later check.
    """
    dropped = Dropped(DropTally("max_age"))
    last = _scan_oldest(conn, dropped, lambda _size, captured: captured >= cutoff_ms, before=True)
    if last is not None:
        conn.execute("DELETE FROM events WHERE rowid <= ?", (last,))
    dropped.last_rowid = last
    return dropped


def _scan_oldest(
    conn: sqlite3.Connection, dropped: Dropped, stop: Any, *, before: bool = False
) -> int | None:
    """Tally rows from the oldest until ``stop``; returns the last rowid to drop.

    ``before``: test ``stop`` before taking a row (age) instead of after (bytes).
    """
    last = None
    cursor = conn.execute(DROP_SCAN)
    try:
        for rowid, equipment, seq, event_time, size, captured_ms in cursor:
            if before and stop(size, captured_ms):
                break
            dropped.tally.add(equipment, seq, event_time)
            dropped.events += 1
            dropped.bytes += size
            last = rowid
            if not before and stop(size, captured_ms):
                break
    finally:
        cursor.close()  # the DELETE that follows needs the table scan finished
    return last


def record_drops(conn: sqlite3.Connection, tallies: Iterable[DropTally]) -> None:
    """Add dropped counts per equipment and reason to the file's counters."""
    conn.executemany(
        UPSERT_DROPPED,
        [
            (equipment, tally.reason, count)
            for tally in tallies
            for equipment, count in tally.counts().items()
        ],
    )


def oldest_captured_ms(conn: sqlite3.Connection) -> int | None:
    row = conn.execute("SELECT captured_ms FROM events ORDER BY rowid LIMIT 1").fetchone()
    return None if row is None else row[0]
