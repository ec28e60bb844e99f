"""The buffer file: schema, connections, start-up integrity check and quarantine.

A corrupt file must never stop the agent from capturing: it is moved aside (with its
``-wal`` and ``-shm``) to ``<name>.corrupt-<UTC timestamp>`` and a fresh file is started.
What can be read from the small tables of the corrupt file (sequence numbers, deriver
snapshots, drop counters) is carried over, so numbers the collector has already seen
are not handed out again.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson

from edge_agent.buffer.errors import BufferLockedError, BufferOpenError

log = logging.getLogger("lineside.agent.buffer")

APPLICATION_ID = 0x4C534246  # "LSBF": tells our files from someone else's SQLite file
SCHEMA_VERSION = 1
PAGE_SIZE = 16384
"""Measured against 4096 with ~500-byte events: cheaper commits (fewer WAL frames),
faster deletes of acknowledged batches, and a ~10 % smaller file."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    rowid INTEGER PRIMARY KEY,   -- buffer order; assigned by the writer, never reused
    equipment TEXT NOT NULL,
    seq INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    event_time TEXT NOT NULL,
    captured_ms INTEGER NOT NULL,
    size INTEGER NOT NULL,
    body BLOB NOT NULL           -- last, so scans of the other columns skip overflow pages
);
CREATE TABLE IF NOT EXISTS sequences (equipment TEXT PRIMARY KEY, next_seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS snapshots (
    equipment TEXT PRIMARY KEY, body BLOB NOT NULL, saved_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS dropped (
    equipment TEXT NOT NULL, reason TEXT NOT NULL, events INTEGER NOT NULL,
    PRIMARY KEY (equipment, reason)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (key, value) VALUES ('next_rowid', 1);
"""

WAL_LIMIT_BYTES = 16 * 1024 * 1024
SYNCHRONOUS = {"full": "FULL", "normal": "NORMAL", "off": "OFF"}
CORRUPT_ERRORS = {"SQLITE_CORRUPT", "SQLITE_NOTADB"}


class CorruptBufferError(Exception):
    """The file failed the integrity check (internal: it triggers the quarantine)."""


@dataclass(slots=True)
class Salvage:
    """What could be read from a corrupt file's small tables."""

    sequences: dict[str, int] = field(default_factory=dict)
    snapshots: dict[str, bytes] = field(default_factory=dict)
    dropped: dict[tuple[str, str], int] = field(default_factory=dict)


@dataclass(slots=True)
class Opened:
    conn: sqlite3.Connection
    quarantined: Path | None
    """Where a corrupt file was moved (its -wal and -shm next to it), None if it was healthy."""


def is_corruption(error: BaseException) -> bool:
    """True for errors that mean "this is not a readable database", not "cannot open"."""
    if isinstance(error, CorruptBufferError):
        return True
    if not isinstance(error, sqlite3.DatabaseError):
        return False
    name = getattr(error, "sqlite_errorname", "")
    # OperationalError covers permissions, locks, a full disk: moving the file won't help
    return name in CORRUPT_ERRORS or type(error) is sqlite3.DatabaseError


def connect(path: Path, *, durability: str = "full", read_only: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode (we issue BEGIN/COMMIT), usable from any thread."""
    conn = sqlite3.connect(
        str(path), isolation_level=None, check_same_thread=False, cached_statements=256
    )
    try:
        conn.execute("PRAGMA busy_timeout=5000")
        if read_only:
            conn.execute("PRAGMA query_only=1")
        else:
            conn.execute(f"PRAGMA synchronous={SYNCHRONOUS[durability]}")
            # checkpoint every ~16 MiB of WAL (1000 pages of 16 KiB), 4x SQLite's default:
            # fewer checkpoint fsyncs on the hot path, and the WAL stays small on disk
            conn.execute("PRAGMA wal_autocheckpoint=1000")
            conn.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
        conn.execute("PRAGMA cache_size=-16000")
    except BaseException:
        conn.close()
        raise
    return conn


def open_store(path: Path, durability: str) -> Opened:
    """Open (or create) the buffer at ``path``; quarantine it first if it is corrupt."""
    try:
        return Opened(_open_checked(path, durability), None)
    except Exception as error:
        if not is_corruption(error):
            raise
        salvage = salvage_small_tables(path)
        moved = quarantine(path)
        log.error(
            "event=buffer_quarantined path=%s moved_to=%s error=%r salvaged_sequences=%d "
            "salvaged_snapshots=%d action=started_fresh_buffer",
            path,
            moved[0] if moved else None,
            str(error),
            len(salvage.sequences),
            len(salvage.snapshots),
        )
    try:
        conn = _open_checked(path, durability)
    except Exception as error:
        raise BufferOpenError(
            f"buffer {path}: a fresh buffer could not be created after moving a corrupt file "
            f"aside ({error}); check the disk and the permissions of {path.parent}"
        ) from error
    _restore(conn, salvage)
    return Opened(conn, moved[0] if moved else None)


def _open_checked(path: Path, durability: str) -> sqlite3.Connection:
    # check through a read-only connection first: closing a read-write one checkpoints
    # the WAL into the main file and deletes it, which would rewrite a damaged file
    checked = path.exists() and _check_read_only(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = connect(path, durability=durability)
    except sqlite3.OperationalError as error:
        raise BufferOpenError(
            f"buffer {path}: cannot open ({error}); check that the directory exists and the "
            "agent's user may write to it"
        ) from error
    try:
        if not checked:
            _check(conn, path)
        conn.execute(f"PRAGMA page_size={PAGE_SIZE}")  # takes effect on a new file only
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal":
            raise BufferOpenError(
                f"buffer {path}: SQLite refused WAL mode (got {mode!r}); put the buffer on a "
                "local file system"
            )
        conn.executescript(SCHEMA)
        conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    except BaseException:
        conn.close()
        raise
    return conn


def _check_read_only(path: Path) -> bool:
    """Identity and integrity through a read-only connection; False if it cannot open one.

    Raises for a corrupt or foreign file. When a read-only connection cannot be had (for
    example no ``-shm`` and a read-only directory) the caller checks read-write instead.
    """
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    except sqlite3.OperationalError:
        return False
    with contextlib.closing(conn):
        try:
            _check(conn, path)
        except sqlite3.OperationalError as error:
            if is_corruption(error):
                raise
            return False
    return True


def _check(conn: sqlite3.Connection, path: Path) -> None:
    _check_identity(conn, path)
    problems = [row[0] for row in conn.execute("PRAGMA quick_check(5)")]
    if problems != ["ok"]:
        raise CorruptBufferError(f"quick_check: {'; '.join(problems)}")


def _check_identity(conn: sqlite3.Connection, path: Path) -> None:
    application_id = conn.execute("PRAGMA application_id").fetchone()[0]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    tables = conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0]
    if application_id == 0 and tables == 0:
        return  # a new, empty file
    if application_id != APPLICATION_ID:
        raise BufferOpenError(
            f"buffer {path}: this SQLite file is not a Lineside buffer (application_id "
            f"{application_id:#x}); point buffer.path at another file"
        )
    if version > SCHEMA_VERSION:
        raise BufferOpenError(
            f"buffer {path}: written by a newer agent (buffer schema {version}, this agent "
            f"knows {SCHEMA_VERSION}); upgrade the agent or move the file away"
        )


def quarantine(path: Path) -> list[Path]:
    """Move ``path`` and its ``-wal``/``-shm`` to ``<name>.corrupt-<UTC timestamp>``."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    counter = 1
    while target.exists():
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{counter}")
        counter += 1
    moved = []
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{path}{suffix}")
        if source.exists():
            destination = Path(f"{target}{suffix}")
            os.replace(source, destination)
            moved.append(destination)
    return moved


def salvage_small_tables(path: Path) -> Salvage:
    """Best effort: read sequences, snapshots and drop counters from a damaged file."""
    salvage = Salvage()
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    except sqlite3.Error:
        return salvage
    queries: list[tuple[str, Any]] = [
        ("SELECT equipment, next_seq FROM sequences", salvage.sequences),
        ("SELECT equipment, body FROM snapshots", salvage.snapshots),
    ]
    with contextlib.closing(conn):
        for sql, into in queries:
            with contextlib.suppress(sqlite3.Error):
                into.update(conn.execute(sql).fetchall())
        with contextlib.suppress(sqlite3.Error):
            for equipment, reason, count in conn.execute(
                "SELECT equipment, reason, events FROM dropped"
            ):
                salvage.dropped[(equipment, reason)] = count
        with contextlib.suppress(sqlite3.Error):
            # the events table may still name numbers the sequences table had not seen
            for equipment, highest in conn.execute(
                "SELECT equipment, max(seq) FROM events GROUP BY equipment"
            ):
                salvage.sequences[equipment] = max(salvage.sequences.get(equipment, 0), highest + 1)
    return salvage


def _restore(conn: sqlite3.Connection, salvage: Salvage) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany(UPSERT_SEQUENCE, salvage.sequences.items())
        conn.executemany(
            "INSERT OR REPLACE INTO snapshots (equipment, body, saved_ms) VALUES (?, ?, 0)",
            salvage.snapshots.items(),
        )
        conn.executemany(
            UPSERT_DROPPED, [(eq, reason, n) for (eq, reason), n in salvage.dropped.items()]
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


UPSERT_SEQUENCE = (
    "INSERT INTO sequences (equipment, next_seq) VALUES (?, ?) "
    "ON CONFLICT(equipment) DO UPDATE SET next_seq = max(next_seq, excluded.next_seq)"
)
UPSERT_DROPPED = (
    "INSERT INTO dropped (equipment, reason, events) VALUES (?, ?, ?) "
    "ON CONFLICT(equipment, reason) DO UPDATE SET events = events + excluded.events"
)


def read_sequences(conn: sqlite3.Connection) -> dict[str, int]:
    return dict(conn.execute("SELECT equipment, next_seq FROM sequences").fetchall())


def read_snapshots(conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    return {
        equipment: orjson.loads(body)
        for equipment, body in conn.execute("SELECT equipment, body FROM snapshots")
    }


def read_dropped_totals(conn: sqlite3.Connection) -> dict[str, int]:
    """Events dropped by the bounds per equipment since the file was created."""
    return dict(
        conn.execute("SELECT equipment, sum(events) FROM dropped GROUP BY equipment").fetchall()
    )


class FileLock:
    """An exclusive ``flock`` on ``<buffer>.lock``: one writer process per buffer file.

    A separate file, because closing any descriptor of the database file itself would
    drop SQLite's own POSIX locks.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(f"{path}.lock")
        self._file: IO[bytes] | None = None

    def acquire(self, holder: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+b")  # noqa: SIM115 (held open until release)
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            other = handle.read(200).decode("utf-8", "replace").strip() or "another process"
            handle.close()
            raise BufferLockedError(
                f"buffer {self.path.with_suffix('')}: in use by {other}; stop it first (one "
                "agent per buffer file)"
            ) from None
        handle.truncate(0)
        handle.write(f"{holder} pid {os.getpid()}\n".encode())
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.truncate(0)
            self._file.close()  # closing the descriptor releases the flock
            self._file = None
