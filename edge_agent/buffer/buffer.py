"""``EventBuffer``: the agent's durable store-and-forward buffer (SQLite, WAL).

An event counts as captured once it is committed here. The pipeline ``submit``s wire
events (plain dicts) on the event loop; one writer thread encodes them with orjson and
commits them in groups, together with the per-equipment next sequence numbers and the
deriver snapshots submitted with them. The forwarder reads committed events
(``read_after``; the latest commits also from memory, ``read_recent``), is woken by
commit listeners, and ``delete``s what the collector confirmed.

Loss window per ``durability`` (what a failure can cost):

``full`` (default, ``synchronous=FULL``)
    Every group commit is fsync'd before it counts. A process crash or a power cut
    loses only events not yet committed: at most ``commit_interval_ms`` (default 10 ms)
    of events plus the commit in progress. Those were never captured nor sent, so their
    sequence numbers are safely reused after the restart.
``normal`` (``synchronous=NORMAL``)
    Commits reach the operating system but are fsync'd only at WAL checkpoints. A
    process crash (kill -9) loses the same as ``full``; a power cut or kernel crash can
    also lose the commits since the last checkpoint, typically the last few seconds
    (bounded by the kernel's write-back, about 30 s). Those events may already have been
    sent, so their sequence numbers can be handed out again after such a restart.
``off`` (``synchronous=OFF``)
    Never fsync'd. Survives a process crash like ``normal``; a power cut can lose
    everything since the kernel last wrote back and can corrupt the file, which is then
    quarantined at start (the whole buffer is lost to the agent).

Bounds: over ``max_bytes`` (encoded event bytes; the file is about 25 % larger) the
oldest events are dropped down to 95 % of it; events committed more than ``max_age_s``
ago are dropped (checked every commit and every second). Drops are counted per
equipment in the file and reported through ``on_dropped``; capture never blocks.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any

from edge_agent.buffer import _store
from edge_agent.buffer._commit import oldest_captured_ms
from edge_agent.buffer._recent import RecentEvents
from edge_agent.buffer._writer import BufferState, Entry, Outcome, Writer
from edge_agent.buffer.config import BufferConfig
from edge_agent.buffer.errors import EventBufferError
from edge_agent.buffer.records import BufferedEvent, DroppedRange
from edge_agent.status import BufferStatus

log = logging.getLogger("lineside.agent.buffer")

READ_AFTER = (
    "SELECT rowid, equipment, seq, captured_ms, body FROM events WHERE rowid > ? "
    "ORDER BY rowid LIMIT ?"
)
# the rows already have BufferedEvent's fields in order: skip _make's Python frame
_as_event = partial(tuple.__new__, BufferedEvent)
CLOSE_TIMEOUT_S = 30.0
MAX_UNDELIVERED_RANGES = 10_000


class EventBuffer:
    """A SQLite store-and-forward buffer; create it with :meth:`open`."""

    on_dropped: Callable[[list[DroppedRange]], None] | None
    """Called from the writer thread with the ranges each drop removed. Drops that happen
    before it is set (the age check at start) are delivered once it is set."""

    def __init__(
        self,
        path: Path,
        config: BufferConfig,
        opened: _store.Opened,
        lock: _store.FileLock,
    ) -> None:
        """Use :meth:`open`: it checks the file, quarantines it if needed and locks it."""
        conn = opened.conn
        self.path = path
        self.config = config
        self.on_dropped = None
        self._lock = lock
        self._quarantined = 0 if opened.quarantined is None else 1
        self._sequences = _store.read_sequences(conn)
        self._snapshots = _store.read_snapshots(conn)
        count, total_bytes, highest = conn.execute(
            "SELECT count(*), coalesce(sum(size), 0), coalesce(max(rowid), 0) FROM events"
        ).fetchone()
        stored_next = conn.execute("SELECT value FROM meta WHERE key = 'next_rowid'").fetchone()
        state = BufferState(
            next_rowid=max(stored_next[0], highest + 1),
            events=count,
            bytes=total_bytes,
            oldest_captured_ms=oldest_captured_ms(conn),
            dropped_totals=_store.read_dropped_totals(conn),
        )
        self._reader = _store.connect(path, read_only=True)
        self._read_lock = threading.Lock()
        self._listeners: list[Callable[[int], None]] = []
        self._recent = RecentEvents()
        self._undelivered: list[DroppedRange] = []
        self._closed = False
        self._writer = Writer(conn, config, state, self._on_outcome)

    @classmethod
    def open(cls, config: BufferConfig, default_path: Path) -> EventBuffer:
        """Lock, check and open the buffer file, then start the writer thread.

        ``default_path`` (``<agent data_dir>/buffer.db``) is used when ``config.path`` is
        unset. A corrupt file is quarantined and replaced by a fresh one; errors that a
        new file would not fix (permissions, another agent holding the lock, a file that
        is not a Lineside buffer) raise :class:`BufferOpenError`.
        """
        path = config.resolved_path(default_path)
        lock = _store.FileLock(path)
        lock.acquire("edge-agent")
        try:
            opened = _store.open_store(path, config.durability)
            try:
                buffer = cls(path, config, opened, lock)
            except BaseException:
                opened.conn.close()
                raise
        except BaseException:
            lock.release()
            raise
        state = buffer._writer.state
        log.info(
            "event=buffer_opened path=%s durability=%s events=%d bytes=%d max_bytes=%d",
            path,
            config.durability,
            state.events,
            state.bytes,
            config.max_bytes,
        )
        buffer._writer.start()
        return buffer

    # -- start-up state -------------------------------------------------------------------

    def next_sequences(self) -> dict[str, int]:
        """Per equipment, the number after the highest committed ``seq`` (as read at open)."""
        return dict(self._sequences)

    def load_snapshots(self) -> dict[str, dict[str, Any]]:
        """The deriver snapshots committed last, per equipment (as read at open)."""
        return dict(self._snapshots)

    # -- capture (event loop thread) ------------------------------------------------------

    def submit(
        self, events: list[dict[str, Any]], snapshots: dict[str, dict[str, Any]] | None = None
    ) -> None:
        """Queue wire events (and deriver snapshots) for the next group commit.

        Non-blocking. ``snapshots`` are committed in the same transaction as ``events``,
        never before them. The buffer keeps the event dicts: do not change them after.
        """
        if not events and not snapshots:
            return
        try:
            self._writer.enqueue(Entry(list(events) if events else None, snapshots))
        except RuntimeError as error:
            raise EventBufferError(f"buffer {self.path}: {error}; submit before close()") from None

    def delete(self, rowids: Sequence[int]) -> None:
        """Queue the deletion of delivered events; applied within about half a second.

        The writer holds deletes briefly so that the rows of many confirmed batches go
        together, as ranges (see ``_deletes``); :meth:`flush`, :meth:`close` and the
        bounds apply them at once. A delete lost in a crash only means those events are
        sent again (duplicates are harmless: the collector stores each event id once).
        """
        if rowids:
            self._writer.enqueue(Entry(rowids=list(rowids)))

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Block until everything submitted or deleted before the call is committed.

        False when that did not happen within ``timeout_s`` (for example while the disk
        fails). Entries the writer had to drop from memory count as done.
        """
        return self._writer.flush(timeout_s)

    # -- forwarding (any thread) ----------------------------------------------------------

    def add_commit_listener(self, listener: Callable[[int], None]) -> None:
        """Call ``listener(highest committed rowid)`` from the writer thread after each commit
        that added events. Keep it short: it delays the next commit."""
        self._listeners.append(listener)

    def read_after(self, rowid: int, limit: int) -> list[BufferedEvent]:
        """Up to ``limit`` committed events with a rowid above ``rowid``, oldest first."""
        with self._read_lock:
            rows = self._reader.execute(READ_AFTER, (rowid, limit)).fetchall()
        return list(map(_as_event, rows))

    def read_recent(self, rowid: int, limit: int) -> list[BufferedEvent] | None:
        """Like :meth:`read_after`, from the latest commits kept in memory (never blocks
        on I/O); None when they do not go on from ``rowid``: use :meth:`read_after`.

        For one reader that moves forward (the forwarder's live events): events up to
        ``rowid`` are forgotten.
        """
        return self._recent.after(rowid, limit)

    def first_rowid(self) -> int:
        """The oldest committed rowid, 0 when the buffer is empty."""
        return self._read_scalar("SELECT coalesce(min(rowid), 0) FROM events")

    def last_rowid(self) -> int:
        """The newest committed rowid, 0 when the buffer is empty."""
        return self._read_scalar("SELECT coalesce(max(rowid), 0) FROM events")

    def _read_scalar(self, sql: str) -> int:
        with self._read_lock:
            return int(self._reader.execute(sql).fetchone()[0])

    # -- status and shutdown --------------------------------------------------------------

    def status(self) -> BufferStatus:
        """Totals kept in memory by the writer: no table scan (deletes show once applied)."""
        state = self._writer.state
        oldest = state.oldest_captured_ms
        return BufferStatus(
            path=str(self.path),
            durability=self.config.durability,
            accepting=state.accepting and not self._closed,
            depth_events=state.events,
            bytes=state.bytes,
            max_bytes=self.config.max_bytes,
            oldest_age_s=None if oldest is None else max(0.0, time.time() - oldest / 1000),
            captured_events_total=state.captured_total,
            dropped_events_total=dict(state.dropped_totals),
            commits_total=state.commits_total,
            last_commit_s=state.last_commit_s,
            quarantined_files_total=self._quarantined,
        )

    def close(self) -> None:
        """Commit what is queued, stop the writer and close the file (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if not self._writer.stop(CLOSE_TIMEOUT_S):
            log.error(
                "event=buffer_close_timeout path=%s timeout_s=%s action=left_writer_running",
                self.path,
                CLOSE_TIMEOUT_S,
            )
            return
        with self._read_lock:
            self._reader.close()
        self._writer.conn.close()
        self._lock.release()
        log.info("event=buffer_closed path=%s", self.path)

    def __enter__(self) -> EventBuffer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- writer thread --------------------------------------------------------------------

    def _on_outcome(self, outcome: Outcome) -> None:
        if outcome.rows:
            self._recent.committed(outcome.rows)
        if outcome.dropped:
            self._recent.clear()  # memory must not offer what a bound took from the file
        if outcome.highest_rowid is not None:
            for listener in self._listeners:
                try:
                    listener(outcome.highest_rowid)
                except Exception:
                    log.exception("event=buffer_commit_listener_failed")
        pending = self._undelivered + outcome.dropped
        if not pending:
            return
        callback = self.on_dropped
        if callback is None:
            self._undelivered = pending[-MAX_UNDELIVERED_RANGES:]
            return
        self._undelivered = []
        callback(pending)
