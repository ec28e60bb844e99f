"""The buffer's one writer thread: a FIFO of submissions, group commits, bounds.

``enqueue`` (event loop thread) appends to a deque under a lock and wakes the writer
only when the queue was empty or a group is full, so submitting costs about a
microsecond. The writer waits until the oldest queued entry is ``commit_interval_ms``
old or ``commit_max_events`` are queued (or a flush is asked for), then commits every
whole entry up to that many events in one transaction (see ``_commit``).

Deletes of delivered events are held for up to ``_deletes.DELETE_DELAY_S`` and then
applied in chunks, as ranges of consecutive rowids (see ``_deletes``); ``flush``,
``stop`` and the bounds apply all of them at once.

A commit that fails (disk full, I/O error) is retried with backoff; meanwhile the
queue holds at most ``MAX_QUEUED_EVENTS`` and drops its oldest entries beyond that, so
a dead disk costs events, not the agent.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter
from typing import Any

from edge_agent.buffer import _commit
from edge_agent.buffer._deletes import HeldDeletes
from edge_agent.buffer._sizes import RowSizes
from edge_agent.buffer.config import BufferConfig
from edge_agent.buffer.records import DroppedRange, DropTally

log = logging.getLogger("lineside.agent.buffer")

MAX_QUEUED_EVENTS = 200_000
"""In-memory bound while commits fail or cannot keep up (~100-200 MB of event dicts)."""
HOUSEKEEPING_S = 1.0
"""How often an idle writer checks the age bound and delivers pending drop reports."""
LOW_WATERMARK = 0.95
"""Over ``max_bytes``, drop down to this fraction so drops come in chunks, not per commit."""
RETRY_S = (0.1, 0.5, 1.0, 2.0, 5.0)


@dataclass(slots=True)
class BufferState:
    """In-memory mirror of the file's totals; written by the writer, read by ``status``."""

    next_rowid: int
    events: int
    bytes: int
    oldest_captured_ms: int | None
    dropped_totals: dict[str, int]
    """Replaced, never mutated, so readers on other threads can take it as is."""
    captured_total: int = 0
    rejected_total: int = 0
    commits_total: int = 0
    last_commit_s: float | None = None
    accepting: bool = True


@dataclass(slots=True)
class Entry:
    events: list[dict[str, Any]] | None = None
    snapshots: dict[str, Any] | None = None
    rowids: Sequence[int] | None = None


@dataclass(slots=True)
class Outcome:
    highest_rowid: int | None = None
    dropped: list[DroppedRange] = field(default_factory=list)
    rows: list[tuple[Any, ...]] = field(default_factory=list)  # the events committed


class Writer:
    """Owns the write connection; every SQL write of a running buffer happens here."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        config: BufferConfig,
        state: BufferState,
        report: Callable[[Outcome], None],
    ) -> None:
        self.conn = conn
        self.state = state
        self._report = report
        self._interval_s = config.commit_interval_ms / 1000
        self._max_events = config.commit_max_events
        self._max_bytes = config.max_bytes
        self._max_age_ms = int(config.max_age_s * 1000)
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)
        self._done = threading.Condition(self._lock)
        self._queue: deque[Entry] = deque()
        self._queued_events = 0
        self._first_queued_at = 0.0
        self._tickets = 0  # entries ever enqueued
        self._finished = 0  # entries committed (or given up on), always a prefix
        self._settled = 0  # prefix of _finished whose deletes are applied, not just held
        self._flush_to = 0
        self._stopping = False
        self._next_housekeeping = 0.0
        # left over from entries dropped in memory, applied by the next commit
        self._carry_snapshots: dict[str, Any] = {}
        self._carry_rowids: list[int] = []
        self._carry_tallies: list[DropTally] = []
        self._held = HeldDeletes()  # writer thread only
        self._sizes = RowSizes(state.next_rowid)  # of the rows this writer commits
        self._queue_drops: list[DroppedRange] = []  # to report once the lock is released
        self._failures = 0
        self._thread = threading.Thread(target=self._run, name="buffer-writer", daemon=True)

    # -- called from other threads --------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def enqueue(self, entry: Entry) -> None:
        """Queue ``entry`` for the next group commit (never blocks on I/O)."""
        with self._lock:
            if self._stopping:
                raise RuntimeError("the buffer is closed")
            was_empty = not self._queue
            self._queue.append(entry)
            self._tickets += 1
            if entry.events:
                self._queued_events += len(entry.events)
            if was_empty:
                self._first_queued_at = time.monotonic()
                self._wakeup.notify()
            elif self._queued_events >= self._max_events:
                self._wakeup.notify()

    def flush(self, timeout_s: float) -> bool:
        """Wait until every entry queued before the call is committed (held deletes
        applied too); False on timeout."""
        with self._lock:
            target = self._tickets
            if self._settled >= target:
                return True
            self._flush_to = max(self._flush_to, target)
            self._wakeup.notify()
            return self._done.wait_for(lambda: self._settled >= target, timeout_s)

    def stop(self, timeout_s: float) -> bool:
        """Commit what is queued, then end the thread; False if it did not end in time."""
        with self._lock:
            self._stopping = True
            self._wakeup.notify()
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    # -- the writer thread ------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._lock:
                entries = self._wait_for_work()
                dropped, self._queue_drops = self._queue_drops, []
                settle = self._stopping or self._flush_to > self._settled
            if dropped:  # callbacks run outside the lock: they may submit
                self._safe_report(Outcome(dropped=dropped))
            if entries is None:
                return
            self._process(entries, settle)

    def _wait_for_work(self) -> list[Entry] | None:
        """Entries to commit now (``[]``: housekeeping only); None when stopped and drained."""
        while True:
            now = time.monotonic()
            held = self._held
            if self._queue:
                due = self._first_queued_at + self._interval_s
                if (
                    self._stopping
                    or now >= due
                    or self._queued_events >= self._max_events
                    or self._flush_to > self._settled
                    or held.is_due(now)
                ):
                    return self._take()
                timeout = due - now
            elif held and (self._stopping or self._flush_to > self._settled or held.is_due(now)):
                return []  # apply the held deletes
            elif self._stopping:
                return None
            elif now >= self._next_housekeeping:
                self._next_housekeeping = now + HOUSEKEEPING_S
                return []
            else:
                timeout = self._next_housekeeping - now
            held_due = held.due_at()
            if held_due is not None:
                timeout = min(timeout, held_due - now)
            self._wakeup.wait(max(0.0, timeout))

    def _take(self) -> list[Entry]:
        if self._queued_events > MAX_QUEUED_EVENTS:
            self._drop_queued()
        entries: list[Entry] = []
        count = 0
        while self._queue and (not entries or count < self._max_events):
            entry = self._queue.popleft()
            entries.append(entry)
            if entry.events:
                count += len(entry.events)
        self._queued_events -= count
        # what stays queued is already due: _first_queued_at keeps its (old) value
        return entries

    def _drop_queued(self) -> None:
        """Drop the oldest queued entries down to the bound (a failing or slow disk)."""
        tally = DropTally("max_bytes")
        given_up = 0
        while self._queue and self._queued_events > MAX_QUEUED_EVENTS:
            entry = self._queue.popleft()
            given_up += 1
            if entry.snapshots:
                self._carry_snapshots.update(entry.snapshots)
            if entry.rowids:
                self._carry_rowids.extend(entry.rowids)
            for event in entry.events or ():
                with contextlib.suppress(KeyError, TypeError):
                    tally.add(event["equipment"]["equipment"], event["seq"], event["event_time"])
            self._queued_events -= len(entry.events or ())
        self._advance(given_up)
        if tally:
            self._carry_tallies.append(tally)
            counts = tally.counts()
            self._add_dropped(counts)
            log.error(
                "event=buffer_queue_overflow dropped_events=%d equipment=%d bound=%d "
                "reason=commits_failing_or_too_slow",
                sum(counts.values()),
                len(counts),
                MAX_QUEUED_EVENTS,
            )
            self._queue_drops += tally.ranges()

    def _advance(self, entries: int) -> None:
        """``entries`` more are done (call with the lock held)."""
        self._finished += entries
        if not self._held:
            self._settled = self._finished
        self._done.notify_all()

    def _process(self, entries: list[Entry], settle: bool) -> None:
        started = time.perf_counter()
        try:
            outcome = self._commit(entries, settle)
        except Exception as error:  # a dead writer would stop capture silently: retry
            self._failed(entries, error)
            return
        if entries:
            self.state.last_commit_s = time.perf_counter() - started
        self.state.accepting = True
        if self._failures:
            log.warning("event=buffer_commits_resumed failed_attempts=%d", self._failures)
            self._failures = 0
        with self._lock:
            self._advance(len(entries))
        self._safe_report(outcome)

    def _failed(self, entries: list[Entry], error: Exception) -> None:
        self.state.accepting = False
        self._failures += 1
        if self._failures == 1 or self._failures % 60 == 0:
            log.error(
                "event=buffer_commit_failed error=%r attempts=%d queued_events=%d action=retrying",
                str(error),
                self._failures,
                self._queued_events + sum(len(e.events or ()) for e in entries),
                exc_info=not isinstance(error, sqlite3.Error),  # a bug: show where
            )
        with self._lock:
            if self._stopping:
                lost = sum(len(e.events or ()) for e in entries) + self._queued_events
                log.error("event=buffer_events_lost_at_close events=%d error=%r", lost, str(error))
                # the held deletes are lost too: those events are sent again after a restart
                self._held.clear()
                given_up = len(entries) + len(self._queue)
                self._queue.clear()
                self._queued_events = 0
                self._advance(given_up)
                return
            self._queue.extendleft(reversed(entries))
            self._queued_events += sum(len(e.events or ()) for e in entries)
            # wait out the backoff; submissions may notify, stop() ends it early
            deadline = time.monotonic() + RETRY_S[min(self._failures, len(RETRY_S)) - 1]
            while not self._stopping and (remaining := deadline - time.monotonic()) > 0:
                self._wakeup.wait(remaining)

    def _commit(self, entries: list[Entry], settle: bool) -> Outcome:
        """One transaction; ``settle``: apply the held deletes whether due or not."""
        state = self.state
        captured_ms = int(time.time() * 1000)
        cutoff_ms = captured_ms - self._max_age_ms
        now = time.monotonic()
        encoded = _commit.encode(
            (e.events for e in entries if e.events), state.next_rowid, captured_ms
        )
        held = self._held
        savepoint = held.savepoint()
        held.hold(chain(self._carry_rowids, *(e.rowids for e in entries if e.rowids)), now)
        carried = bool(self._carry_snapshots or self._carry_tallies)
        age_due = state.oldest_captured_ms is not None and state.oldest_captured_ms < cutoff_ms
        over = state.bytes + encoded.bytes > self._max_bytes
        # the bounds must not count (or drop) events that were already delivered
        rowids = held.take(now, everything=settle or age_due or over) if held else []
        writing = carried or any(e.events or e.snapshots for e in entries)
        if not (writing or rowids or age_due or over):
            self._carry_rowids = []  # held now
            return Outcome()
        snapshots = dict(self._carry_snapshots)
        for entry in entries:
            if entry.snapshots:
                snapshots.update(entry.snapshots)
        conn = self.conn
        events, nbytes, oldest = state.events, state.bytes, state.oldest_captured_ms
        forget: Callable[[], None] = _nothing
        drops: list[_commit.Dropped] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            _commit.insert(conn, encoded)
            if snapshots:
                _commit.save_snapshots(conn, snapshots, captured_ms)
            events += len(encoded.rows)
            nbytes += encoded.bytes
            if oldest is None and encoded.rows:
                oldest = captured_ms
            if rowids:
                deleted, freed, forget = _commit.delete_held(conn, rowids, self._sizes)
                events, nbytes = events - deleted, nbytes - freed
                oldest = _commit.oldest_captured_ms(conn)
            if nbytes > self._max_bytes:
                low = int(self._max_bytes * LOW_WATERMARK)
                drops.append(_commit.drop_oldest_bytes(conn, nbytes - low))
                oldest = _commit.oldest_captured_ms(conn)
            if oldest is not None and oldest < cutoff_ms:
                drops.append(_commit.drop_older_than(conn, cutoff_ms))
                oldest = _commit.oldest_captured_ms(conn)
            for dropped in drops:
                events, nbytes = events - dropped.events, nbytes - dropped.bytes
            tallies = [d.tally for d in drops if d.tally] + self._carry_tallies
            if tallies:
                _commit.record_drops(conn, tallies)
            conn.execute("COMMIT")
        except BaseException:
            held.restore(savepoint)  # the entries are queued again, with their rowids
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        self._carry_snapshots, self._carry_rowids, self._carry_tallies = {}, [], []
        sizes = self._sizes  # in the order of the transaction: inserts, deletes, drops
        if encoded.rows:
            sizes.added(encoded.rows[0][0], map(itemgetter(6), encoded.rows))
        forget()
        for dropped in drops:
            sizes.forget_through(dropped.last_rowid)
        if encoded.rows:
            state.next_rowid = encoded.rows[-1][0] + 1
        state.events, state.bytes, state.oldest_captured_ms = events, nbytes, oldest
        state.captured_total += len(encoded.rows)
        state.rejected_total += encoded.rejected
        state.commits_total += 1
        outcome = Outcome(encoded.rows[-1][0] if encoded.rows else None, rows=encoded.rows)
        for dropped in drops:
            if dropped.tally:
                self._add_dropped(dropped.tally.counts())
                outcome.dropped += dropped.tally.ranges()
                log.warning(
                    "event=buffer_dropped reason=%s events=%d bytes=%d equipment=%d",
                    dropped.tally.reason,
                    dropped.events,
                    dropped.bytes,
                    len(dropped.tally.counts()),
                )
        return outcome

    def _add_dropped(self, counts: dict[str, int]) -> None:
        totals = dict(self.state.dropped_totals)
        for equipment, count in counts.items():
            totals[equipment] = totals.get(equipment, 0) + count
        self.state.dropped_totals = totals

    def _safe_report(self, outcome: Outcome) -> None:
        try:
            self._report(outcome)
        except Exception:  # a listener's bug must not stop the writer
            log.exception("event=buffer_listener_failed")


def _nothing() -> None:
    pass
