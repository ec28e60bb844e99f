"""Sequence gaps of one (agent, equipment) stream: pure logic, no I/O.

An agent numbers the events of each equipment 0, 1, 2, ... (``seq``). The store keeps
the highest seq seen and the open gaps (missing seq ranges, inclusive). One write brings

* ``arrived``: the seqs of the events that were new in this write, as ranges;
* ``dropped``: the ``first_seq..last_seq`` ranges of its ``buffer.overflowed`` events.

:func:`plan_gaps` turns the stored state plus one write into row changes:

* seqs beyond the highest seen that skip ahead open new gaps (on first contact the lowest
  seq seen is the baseline: what the agent sent before we knew it is not a gap);
* a late event inside an open gap shrinks it or splits it in two (the parts keep the
  gap's ``detected_at``); a gap with nothing missing any more is closed ``arrived``;
* a ``buffer.overflowed`` range closes what it covers of the open gaps with
  ``dropped_by_agent`` (the covered part becomes a closed row of its own when part of
  the gap is still missing).

Within one write, arrivals are applied before drops: an overflow event carries a seq
above the range it explains, so its gap is always known by the time it is applied.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

ARRIVED = "arrived"
DROPPED_BY_AGENT = "dropped_by_agent"


class SeqRange(NamedTuple):
    """Seqs ``first`` to ``last``, both included."""

    first: int
    last: int


class OpenGap(NamedTuple):
    """A stored open gap."""

    gap_id: int
    first: int
    last: int
    detected_at: datetime | None = None


class GapUpdate(NamedTuple):
    """A stored gap gets a new range and is closed when ``closed_by`` is set."""

    gap_id: int
    first: int
    last: int
    closed_by: str | None


class GapInsert(NamedTuple):
    """A new gap row; ``detected_at`` None means now, otherwise inherited from a split gap."""

    first: int
    last: int
    closed_by: str | None
    detected_at: datetime | None


@dataclass(frozen=True)
class GapPlan:
    """What one write changes for one (agent, equipment) stream."""

    max_seq: int | None
    updates: tuple[GapUpdate, ...] = ()
    inserts: tuple[GapInsert, ...] = ()
    opened: int = 0
    """New gaps found (seqs skipped ahead); splits of known gaps are not counted."""
    closed: int = 0
    """Gap rows closed by this write (a fully arrived gap, or each part an overflow explains)."""


def merge_ranges(ranges: Iterable[SeqRange]) -> list[SeqRange]:
    """Sorted, disjoint, non-adjacent ranges covering the same seqs."""
    merged: list[SeqRange] = []
    for first, last in sorted(ranges):
        if last < first:
            continue
        if merged and first <= merged[-1].last + 1:
            if last > merged[-1].last:
                merged[-1] = SeqRange(merged[-1].first, last)
        else:
            merged.append(SeqRange(first, last))
    return merged


def subtract(span: SeqRange, holes: Sequence[SeqRange]) -> list[SeqRange]:
    """``span`` minus the merged ranges ``holes`` (sorted by ``first``)."""
    pieces = []
    cursor = span.first
    # start at the last hole beginning at or before span.first: it may reach into span
    start = max(bisect.bisect_right(holes, (span.first, span.last + 1)) - 1, 0)
    for first, last in holes[start:]:
        if first > span.last:
            break
        if last < cursor:
            continue
        if first > cursor:
            pieces.append(SeqRange(cursor, first - 1))
        cursor = last + 1
    if cursor <= span.last:
        pieces.append(SeqRange(cursor, span.last))
    return pieces


def intersect(span: SeqRange, ranges: Sequence[SeqRange]) -> list[SeqRange]:
    """The parts of ``span`` inside the merged ``ranges``."""
    return [
        SeqRange(max(first, span.first), min(last, span.last))
        for first, last in ranges
        if first <= span.last and last >= span.first
    ]


def is_plain_continuation(max_seq: int | None, arrived: Sequence[SeqRange]) -> bool:
    """True for the common live case: one run of seqs right after the highest seen.

    Then nothing about gaps changes (the caller still records the new highest seq) and
    the stored open gaps need not even be read.
    """
    return len(arrived) == 1 and (max_seq is None or arrived[0].first == max_seq + 1)


def plan_gaps(
    max_seq: int | None,
    open_gaps: Sequence[OpenGap],
    arrived: Iterable[SeqRange],
    dropped: Iterable[SeqRange] = (),
) -> GapPlan:
    """The gap changes of one write to one stream (see the module docstring)."""
    arrivals = merge_ranges(arrived)
    drops = merge_ranges(dropped)
    if not arrivals and not drops:
        return GapPlan(max_seq)
    new_max = max_seq
    if arrivals and (new_max is None or arrivals[-1].last > new_max):
        new_max = arrivals[-1].last
    baseline = max_seq if max_seq is not None else arrivals[0].first - 1 if arrivals else None

    updates: list[GapUpdate] = []
    inserts: list[GapInsert] = []
    closed = 0
    for gap in open_gaps:
        span = SeqRange(gap.first, gap.last)
        missing = subtract(span, arrivals)
        still_open = [part for piece in missing for part in subtract(piece, drops)]
        explained = [part for piece in missing for part in intersect(piece, drops)]
        if still_open == [span]:
            continue  # untouched
        if still_open:
            head = still_open[0]
            updates.append(GapUpdate(gap.gap_id, head.first, head.last, None))
            inserts += [GapInsert(p.first, p.last, None, gap.detected_at) for p in still_open[1:]]
            inserts += [
                GapInsert(p.first, p.last, DROPPED_BY_AGENT, gap.detected_at) for p in explained
            ]
        elif explained:
            head = explained[0]
            updates.append(GapUpdate(gap.gap_id, head.first, head.last, DROPPED_BY_AGENT))
            rest = explained[1:]
            inserts += [GapInsert(p.first, p.last, DROPPED_BY_AGENT, gap.detected_at) for p in rest]
        else:
            updates.append(GapUpdate(gap.gap_id, gap.first, gap.last, ARRIVED))
            closed += 1
        closed += len(explained)

    new_gaps = _skipped(baseline, arrivals)
    for span in new_gaps:
        inserts += [GapInsert(p.first, p.last, None, None) for p in subtract(span, drops)]
        explained = intersect(span, drops)
        inserts += [GapInsert(p.first, p.last, DROPPED_BY_AGENT, None) for p in explained]
        closed += len(explained)
    return GapPlan(new_max, tuple(updates), tuple(inserts), len(new_gaps), closed)


def _skipped(baseline: int | None, arrivals: Sequence[SeqRange]) -> list[SeqRange]:
    """Seq ranges above ``baseline`` that the arrivals jump over."""
    if baseline is None:
        return []
    skipped = []
    cursor = baseline  # highest seq known so far
    for first, last in arrivals:
        if last <= cursor:
            continue  # late arrivals: handled against the stored gaps
        if first > cursor + 1:
            skipped.append(SeqRange(cursor + 1, first - 1))
        cursor = last
    return skipped
