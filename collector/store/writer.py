"""write(): accepted batches and dead letters into PostgreSQL, in one transaction.

The function owns the transaction: when it returns, everything is committed (so the
ingest layer may ack); when it raises, nothing of this call is (so it may retry or nack).
Round trips per call in the steady state: BEGIN, the per-equipment advisory locks, the
highest stored seq of each (agent, equipment) stream, then:

* "fresh" batches (all seqs above the stream's stored highest, decided under the locks,
  so no other writer can store them meanwhile): one COPY straight into audit.events, one
  COPY per fact table with rows built in Python from the parsed payloads
  (:mod:`._facts`; built for every batch before BEGIN, so the locks are not held while
  Python encodes), one statement for sequence state and first/last seen;
* the rest (resends, backlog, and fresh batches with payload values ``_facts`` leaves
  to SQL): one COPY into the connection's staging table and one statement that inserts
  the events (ON CONFLICT DO NOTHING, or a plain INSERT for fresh ones) and every fact
  derived from the new ones;

then COMMIT. Sequence gaps, state intervals and production runs cost one more statement
each, only when the write brings a gap, a late event or a state or production change.
Should a fresh batch hit a stored event after all (an agent reusing seqs or ids), the
unique violation rolls the transaction back and it is done again with every batch going
through staging and ON CONFLICT.

Before the transaction (each in a short transaction of its own, so their effects can be
cached once committed and never hold locks while the write runs): unknown equipment is
registered, and partitions are created for event days not known to exist.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import psycopg
from psycopg import IsolationLevel, sql

from collector.records import AcceptedBatch, DeadLetter, Equipment

from . import _sql
from ._copy import day_of_ms, encode_batch
from ._facts import BatchFacts, encode_facts
from ._fresh import FreshBatch as _Batch
from ._fresh import copy_fresh
from ._session import Session, session_for
from ._tx import LOCK_CLASS_EQUIPMENT, own_transaction, require_idle
from .errors import ConnectionStateError, StoreError
from .gaps import GapPlan, SeqRange, is_plain_continuation, merge_ranges, plan_gaps
from .partitions import ensure_partitions_for_days
from .sequence_gaps import Stream, apply_gap_plans, read_open_gaps

log = logging.getLogger(__name__)

DEFAULT_PAYLOAD_CAP_BYTES = 65536
# A late state change can make a stop that began up to the micro-stop threshold earlier a
# micro-stop: the day that long before a write's earliest event is marked as changed too
# (see migrations/0005_fact_revisions.sql; the threshold is limited to this).
_MICRO_STOP_MARGIN = timedelta(hours=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DAY = _EPOCH.date()


def _day_number(moment: datetime) -> int:
    """Epoch day number (UTC) of ``moment``."""
    return (moment - _EPOCH).days


_DETAIL_CAP_CHARS = 8192


@dataclass(frozen=True)
class WriteResult:
    """What one :func:`write` stored."""

    events_inserted: int = 0
    duplicates_skipped: int = 0
    """Events whose event_id (with its event_time) was already stored."""
    dead_letters_stored: int = 0
    gaps_opened: int = 0
    gaps_closed: int = 0


def write(
    conn: psycopg.Connection,
    batches: Sequence[AcceptedBatch],
    dead_letters: Sequence[DeadLetter],
    *,
    payload_cap_bytes: int = DEFAULT_PAYLOAD_CAP_BYTES,
) -> WriteResult:
    """Store ``batches`` (events and derived facts) and ``dead_letters``; commit.

    ``conn`` must be idle (autocommit=True recommended) and READ COMMITTED (the default);
    use a connection from one thread at a time (the writer caches equipment ids, known
    partition days and its staging table per connection). Events already stored are
    skipped and add no facts. Dead letter payloads are cut to
    ``payload_cap_bytes`` (their original size is kept). Raises
    :class:`~collector.store.errors.UnstorableBatchError` naming a batch PostgreSQL cannot
    hold (no event, fact or dead letter written), and psycopg errors for database failures
    (nothing of the transaction written).
    """
    require_idle(conn, "write()")
    if conn.isolation_level not in (None, IsolationLevel.READ_COMMITTED):
        raise ConnectionStateError(
            f"write(): the connection uses isolation level {conn.isolation_level.name}; "
            "the writer relies on READ COMMITTED (fresh snapshots after taking its locks): "
            "set conn.isolation_level = None or READ_COMMITTED"
        )
    if payload_cap_bytes < 0:
        raise StoreError(f"write(): payload_cap_bytes={payload_cap_bytes}; use 0 or more")
    if not batches and not dead_letters:
        return WriteResult()
    session = session_for(conn)
    try:
        return _write(conn, session, batches, dead_letters, payload_cap_bytes)
    except (psycopg.errors.UndefinedTable, psycopg.errors.CheckViolation) as exc:
        if not _stale_cache(exc):
            raise
        # a partition dropped by retention, or the temp table gone (DISCARD ALL):
        # the transaction rolled back, so forget the cache and do it all once more
        log.warning("event=store_cache_stale error=%s action=retry", exc.diag.message_primary)
        session.forget()
        return _write(conn, session, batches, dead_letters, payload_cap_bytes)


def _stale_cache(exc: psycopg.Error) -> bool:
    message = exc.diag.message_primary or ""
    if isinstance(exc, psycopg.errors.CheckViolation):
        return message.startswith("no partition of relation")
    return "lineside_staging" in message


class _Encoded(NamedTuple):
    events: int
    batches: list[_Batch]
    equipment_ids: list[int]
    """Distinct and sorted: the order the per-equipment locks are taken in."""
    repeated_events: int
    """Events of batches that came twice in this call (same batch_id), not staged twice."""
    touched: list[tuple[int, int]]
    """Sorted (equipment id, epoch day) pairs whose fact revision this write raises."""
    facts: dict[int, BatchFacts | None]
    """Fact rows of each batch (by batch_no), used if it proves fresh under the locks;
    built before the transaction so that the locks are held only for database work."""


def _write(
    conn: psycopg.Connection,
    session: Session,
    batches: Sequence[AcceptedBatch],
    dead_letters: Sequence[DeadLetter],
    payload_cap_bytes: int,
) -> WriteResult:
    encoded = _encode(conn, session, batches) if any(b.events for b in batches) else None
    try:
        with own_transaction(conn, "write()"):
            result = _write_events(conn, encoded, fast=True) if encoded else WriteResult()
            stored = _insert_dead_letters(conn, dead_letters, payload_cap_bytes)
    except psycopg.errors.UniqueViolation as exc:
        # a "fresh" batch held an event that is stored already (see _sql.INSERT_AND_DERIVE)
        log.info(
            "event=store_fast_path_conflict constraint=%s action=retry_with_on_conflict",
            exc.diag.constraint_name,
        )
        with own_transaction(conn, "write()"):
            result = _write_events(conn, encoded, fast=False) if encoded else WriteResult()
            stored = _insert_dead_letters(conn, dead_letters, payload_cap_bytes)
    return WriteResult(
        events_inserted=result.events_inserted,
        duplicates_skipped=result.duplicates_skipped,
        dead_letters_stored=stored,
        gaps_opened=result.gaps_opened,
        gaps_closed=result.gaps_closed,
    )


def _encode(
    conn: psycopg.Connection, session: Session, batches: Sequence[AcceptedBatch]
) -> _Encoded:
    """COPY lines for the batches, with equipment, partitions and staging made ready."""
    ids = _equipment_ids(conn, session, batches)
    events = 0
    seconds: dict[int, str] = {}
    days: set[int] = set()
    infos: list[_Batch] = []
    touched: set[tuple[int, int]] = set()
    seen_batch_ids: set[str] = set()
    repeated = 0
    for batch_no, batch in enumerate(batches):
        if not batch.events:
            continue  # the contract has at least one event per batch; nothing to store anyway
        if batch.batch_id in seen_batch_ids:
            repeated += len(batch.events)  # the same batch twice in one group: store once
            continue
        seen_batch_ids.add(batch.batch_id)
        equipment_id = ids[batch.equipment]
        lines: list[str] = []
        times: list[str] = []
        batch_days: set[int] = set()
        lowest, highest = encode_batch(
            batch_no, batch, equipment_id, lines, batch_days, seconds, times
        )
        days |= batch_days
        touched.update((equipment_id, day) for day in batch_days)
        earliest = min(event.event_time for event in batch.events)
        touched.add((equipment_id, _day_number(earliest - _MICRO_STOP_MARGIN)))
        events += len(lines)
        stream = (batch.agent_id, equipment_id)
        infos.append(_Batch(batch_no, stream, lowest, highest, batch, "".join(lines), times))
    texts: dict[str, str] = {}  # escaped payload strings, shared by the batches
    facts = {
        info.batch_no: encode_facts(info.batch, info.stream[1], info.times, texts) for info in infos
    }
    _ensure_days(conn, session, days)
    _ensure_staging(conn, session)
    return _Encoded(events, infos, sorted(set(ids.values())), repeated, sorted(touched), facts)


def _fresh_batches(batches: list[_Batch], stored_max: dict[Stream, int]) -> set[int]:
    """Batches whose seqs are all above anything stored or staged before them."""
    highest = dict(stored_max)
    fresh = set()
    for info in sorted(batches, key=lambda b: (b.stream, b.lowest_seq)):
        before = highest.get(info.stream)
        if before is None or info.lowest_seq > before:
            fresh.add(info.batch_no)
        if before is None or info.highest_seq > before:
            highest[info.stream] = info.highest_seq
    return fresh


def _write_events(conn: psycopg.Connection, encoded: _Encoded, *, fast: bool) -> WriteResult:
    # no parameters: two statements in one simple-protocol round trip
    lock = sql.SQL(_sql.LOCK_EQUIPMENT).format(
        lock_class=sql.Literal(LOCK_CLASS_EQUIPMENT), ids=sql.Literal(encoded.equipment_ids)
    )
    conn.execute(lock)
    streams = sorted({info.stream for info in encoded.batches})
    # read after the locks: no other writer can move these until we commit
    stored_max: dict[Stream, int] = {
        (agent_id, equipment_id): max_seq
        for agent_id, equipment_id, max_seq in conn.execute(
            _sql.READ_SEQUENCE_STATE, ([s[0] for s in streams], [s[1] for s in streams])
        )
    }
    fresh = _fresh_batches(encoded.batches, stored_max) if fast else set()
    direct: list[tuple[_Batch, BatchFacts]] = []
    staged: list[_Batch] = []
    for info in encoded.batches:
        facts = encoded.facts[info.batch_no] if info.batch_no in fresh else None
        if facts is None:
            staged.append(info)
        else:
            direct.append((info, facts))
    inserted = 0
    arrived: dict[Stream, list[SeqRange]] = defaultdict(list)
    dropped: dict[Stream, list[SeqRange]] = defaultdict(list)
    state_changes: dict[int, datetime] = {}
    production_changes: dict[int, datetime] = {}
    with conn.cursor() as cur:
        if direct:
            inserted += copy_fresh(cur, direct, arrived, dropped)
            for info, facts in direct:
                _earliest(state_changes, info.stream[1], facts.first_state_change)
                _earliest(production_changes, info.stream[1], facts.first_production_event)
        if staged:
            with cur.copy(_sql.COPY_STAGING) as copy:
                copy.write("".join(info.copy_text for info in staged))
            fresh_ids = [info.batch.batch_id for info in staged if info.batch_no in fresh]
            rows = cur.execute(_sql.INSERT_AND_DERIVE, {"fresh": fresh_ids}).fetchall()
        else:
            rows = []
    for kind, agent_id, equipment_id, lo, hi, first_time, count in rows:
        if kind == "arrived":
            arrived[(agent_id, equipment_id)].append(SeqRange(lo, hi))
            inserted += count
        elif kind == "dropped":
            dropped[(agent_id, equipment_id)].append(SeqRange(lo, hi))
        elif kind == "state":
            _earliest(state_changes, equipment_id, first_time)
        else:
            _earliest(production_changes, equipment_id, first_time)
    plans = _gap_plans(conn, arrived, stored_max, dropped)
    apply_gap_plans(conn, plans)
    if state_changes:
        conn.execute(_sql.RECOMPUTE_STATE_INTERVALS, _columns(state_changes))
    if production_changes:
        conn.execute(_sql.RECOMPUTE_PRODUCTION_RUNS, _columns(production_changes))
    touched = _touched_days(encoded.touched, state_changes, production_changes)
    conn.execute(
        _sql.BUMP_FACT_REVISIONS,
        (
            [equipment_id for equipment_id, _ in touched],
            [_EPOCH_DAY + timedelta(days=day) for _, day in touched],
        ),
    )
    return WriteResult(
        events_inserted=inserted,
        duplicates_skipped=encoded.events - inserted + encoded.repeated_events,
        gaps_opened=sum(plan.opened for plan in plans.values()),
        gaps_closed=sum(plan.closed for plan in plans.values()),
    )


def _touched_days(
    touched: list[tuple[int, int]],
    state_changes: dict[int, datetime],
    production_changes: dict[int, datetime],
) -> list[tuple[int, int]]:
    """The (equipment, day) pairs whose facts this write may have changed: the days of
    its events, and for a state or production change every day from it until today (it
    decides the state, or the cycle time, in force until the next stored change, which
    may be days later)."""
    if not state_changes and not production_changes:
        return touched
    today = _day_number(datetime.now(UTC))
    out = set(touched)
    for changes in (state_changes, production_changes):
        for equipment_id, first in changes.items():
            out.update((equipment_id, day) for day in range(_day_number(first), today + 1))
    return sorted(out)


def _gap_plans(
    conn: psycopg.Connection,
    arrived: dict[Stream, list[SeqRange]],
    stored_max: dict[Stream, int],
    dropped: dict[Stream, list[SeqRange]],
) -> dict[Stream, GapPlan]:
    """Plans for the streams whose gaps change; the live case reads nothing more."""
    involved = []
    for stream, ranges in arrived.items():
        merged = merge_ranges(ranges)
        arrived[stream] = merged
        if stream in dropped or not is_plain_continuation(stored_max.get(stream), merged):
            involved.append(stream)
    involved += [stream for stream in dropped if stream not in arrived]
    if not involved:
        return {}
    open_gaps = read_open_gaps(conn, involved)
    return {
        stream: plan_gaps(
            stored_max.get(stream),
            open_gaps[stream],
            arrived.get(stream, ()),
            dropped.get(stream, ()),
        )
        for stream in involved
    }


def _earliest(changes: dict[int, datetime], equipment_id: int, moment: datetime | None) -> None:
    """Keep one (the earliest) change time per equipment: the recomputations want one row."""
    if moment is not None and (equipment_id not in changes or moment < changes[equipment_id]):
        changes[equipment_id] = moment


def _columns(changes: dict[int, datetime]) -> tuple[list[int], list[datetime]]:
    return list(changes), list(changes.values())


def _equipment_ids(
    conn: psycopg.Connection, session: Session, batches: Sequence[AcceptedBatch]
) -> dict[Equipment, int]:
    known = session.equipment_ids
    missing: dict[Equipment, tuple[datetime, datetime]] = {}
    for batch in batches:
        if batch.equipment in known or not batch.events:
            continue
        times = [event.event_time for event in batch.events]
        first, last = min(times), max(times)
        if batch.equipment in missing:
            seen = missing[batch.equipment]
            first, last = min(first, seen[0]), max(last, seen[1])
        missing[batch.equipment] = (first, last)
    if missing:
        _register_equipment(conn, session, missing)
    return {batch.equipment: known[batch.equipment] for batch in batches if batch.events}


def _register_equipment(
    conn: psycopg.Connection, session: Session, missing: dict[Equipment, tuple[datetime, datetime]]
) -> None:
    paths = list(missing)
    levels = [[path[level] for path in paths] for level in range(5)]
    with own_transaction(conn, "write()"):
        conn.execute(
            _sql.UPSERT_EQUIPMENT,
            (*levels, [missing[p][0] for p in paths], [missing[p][1] for p in paths]),
        )
        # a new statement, a new snapshot: also sees rows a concurrent writer committed
        rows = conn.execute(_sql.SELECT_EQUIPMENT, levels).fetchall()
    for equipment_id, *path in rows:
        session.equipment_ids[Equipment(*path)] = equipment_id


def _ensure_days(conn: psycopg.Connection, session: Session, days: set[int]) -> None:
    missing = days - session.partition_days
    if missing:
        ensure_partitions_for_days(conn, [day_of_ms(day * 86_400_000) for day in missing])
        session.partition_days |= missing


def _ensure_staging(conn: psycopg.Connection, session: Session) -> None:
    if not session.staging_ready:
        with own_transaction(conn, "write()"):
            conn.execute(_sql.CREATE_STAGING)
        session.staging_ready = True


def _insert_dead_letters(
    conn: psycopg.Connection, dead_letters: Sequence[DeadLetter], payload_cap_bytes: int
) -> int:
    if not dead_letters:
        return 0
    with conn.cursor() as cur:
        cur.executemany(
            _sql.INSERT_DEAD_LETTER,
            [
                (
                    letter.received_at,
                    _clean(letter.topic),
                    _clean(letter.reason),
                    _clean(letter.detail)[:_DETAIL_CAP_CHARS],
                    None if letter.ack is None else _clean(letter.ack.agent_id),
                    None if letter.ack is None else _clean(letter.ack.batch_id),
                    bytes(letter.payload[:payload_cap_bytes]),
                    len(letter.payload),
                )
                for letter in dead_letters
            ],
        )
    return len(dead_letters)


def _clean(text: str) -> str:
    """Text PostgreSQL accepts: no NUL, no lone surrogates (a dead letter is any garbage)."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    return text.encode("utf-8", "replace").decode("utf-8")
