"""The fast path of ``write()``: COPY fresh batches straight into their tables.

A batch is fresh when all its seqs are above the highest stored for its stream (decided
under the equipment lock): none of its events can be stored already, so its events go
into ``audit.events`` and its facts into their tables by COPY, with the values the
collector parsed, instead of through the staging table and SQL that reads JSONB. Should
one still collide, the unique violation makes the writer start over the safe way.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

import psycopg

from collector.records import AcceptedBatch

from . import _sql
from ._facts import BatchFacts, seq_runs
from .gaps import SeqRange
from .sequence_gaps import Stream


class FreshBatch(NamedTuple):
    """One batch as the writer encoded it (its COPY text and seq bounds)."""

    batch_no: int
    stream: Stream
    lowest_seq: int
    highest_seq: int
    batch: AcceptedBatch
    copy_text: str
    """COPY text of its events (audit.events columns: staging or audit.events)."""
    times: list[str]
    """event_time COPY text of each event (for its fact row)."""


def copy_fresh(
    cur: psycopg.Cursor,
    direct: list[tuple[FreshBatch, BatchFacts]],
    arrived: dict[Stream, list[SeqRange]],
    dropped: dict[Stream, list[SeqRange]],
) -> int:
    """COPY fresh batches' events and facts into their tables; returns the event count.

    Every event of a fresh batch is new (or the COPY fails with a unique violation and
    the writer starts over the safe way), so all of them count as arrived.
    """
    with cur.copy(_sql.COPY_EVENTS) as copy:
        copy.write("".join(info.copy_text for info, _ in direct))
    for statement, lines_of in _FACT_COPIES:
        text = "".join(line for _, facts in direct for line in lines_of(facts))
        if text:
            with cur.copy(statement) as copy:
                copy.write(text)
    _upsert_count_hours(cur, direct)
    streams: dict[Stream, tuple[int, datetime, datetime]] = {}
    events = 0
    for info, facts in direct:
        events += len(info.batch.events)
        arrived[info.stream] += [
            SeqRange(lo, hi) for lo, hi in seq_runs([event.seq for event in info.batch.events])
        ]
        if facts.dropped:
            dropped[info.stream] += [SeqRange(lo, hi) for lo, hi in facts.dropped]
        assert facts.first_time is not None
        assert facts.last_time is not None
        seen = streams.get(info.stream)
        streams[info.stream] = (
            (info.highest_seq, facts.first_time, facts.last_time)
            if seen is None
            else (
                max(seen[0], info.highest_seq),
                min(seen[1], facts.first_time),
                max(seen[2], facts.last_time),
            )
        )
    cur.execute(
        _sql.UPDATE_STREAMS,
        (
            [agent_id for agent_id, _ in streams],
            [equipment_id for _, equipment_id in streams],
            [hi for hi, _, _ in streams.values()],
            [first for _, first, _ in streams.values()],
            [last for _, _, last in streams.values()],
        ),
    )
    return events


def _upsert_count_hours(cur: psycopg.Cursor, direct: list[tuple[FreshBatch, BatchFacts]]) -> None:
    # one row per key: ON CONFLICT cannot update the same row twice in one statement
    merged: dict[tuple[int, datetime, str | None], list] = {}
    for info, facts in direct:
        for (hour_end, product), (good, scrap, counts, last) in facts.count_hours.items():
            key = (info.stream[1], hour_end, product)
            acc = merged.get(key)
            if acc is None:
                merged[key] = [good, scrap, counts, last]
            else:
                acc[0] += good
                acc[1] += scrap
                acc[2] += counts
                acc[3] = max(acc[3], last)
    if merged:
        keys, values = list(merged), list(merged.values())
        cur.execute(
            _sql.UPSERT_COUNT_HOURS,
            (
                [k[0] for k in keys],
                [k[1] for k in keys],
                [k[2] for k in keys],
                [v[0] for v in values],
                [v[1] for v in values],
                [v[2] for v in values],
                [v[3] for v in values],
            ),
        )


_FACT_COPIES = (
    (_sql.COPY_PROCESS_VALUES, lambda facts: facts.process_values),
    (_sql.COPY_PRODUCTION_COUNTS, lambda facts: facts.production_counts),
    (_sql.COPY_STATE_INTERVALS, lambda facts: facts.state_intervals),
    (_sql.COPY_PRODUCTION_EVENTS, lambda facts: facts.production_events),
)
