"""PostgreSQL for tests: throwaway databases, a private cluster, and store test data.

* :func:`fresh_database` creates a uniquely named database on the shared server
  (127.0.0.1:5432) and drops it afterwards, so tests (and parallel pytest runs) never see
  each other's data. :func:`migrated_database` does the same with the store's schema.
* :class:`PrivateCluster` is a whole PostgreSQL cluster of its own (initdb in a temp
  dir, a free port) for tests that stop and start the server; the shared server is never
  stopped by a test.
* :class:`StreamBuilder` builds ``AcceptedBatch`` values of one equipment and agent, the
  way ``collector.ingest.validate`` hands them to the store.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from collector.records import AcceptedBatch, Equipment, EventRow
from lineside_protocol.ids import UUIDv7Generator

ADMIN_DSN = os.environ.get(
    "LINESIDE_TEST_PG_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
)
PG_BIN = Path(os.environ.get("LINESIDE_PG_BIN", "/usr/lib/postgresql/15/bin"))


# --- databases on the shared server -------------------------------------------------------


@contextmanager
def fresh_database(prefix: str = "lineside_test", *, admin_dsn: str = ADMIN_DSN) -> Iterator[str]:
    """A new empty database for the duration of the block; yields its DSN.

    The name carries the pid and random hex, so parallel runs never collide. Created from
    template0 (nobody is ever connected to it, unlike template1) and dropped WITH (FORCE)
    so a leaked connection cannot keep it alive.
    """
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}"
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    try:
        yield make_conninfo(admin_dsn, dbname=name)
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@contextmanager
def migrated_database(prefix: str = "lineside_store") -> Iterator[str]:
    """:func:`fresh_database` with the store's migrations applied."""
    from collector.store import apply_migrations

    with fresh_database(prefix) as dsn:
        with psycopg.connect(dsn, autocommit=True) as conn:
            apply_migrations(conn)
        yield dsn


def database_exists(name: str, *, admin_dsn: str = ADMIN_DSN) -> bool:
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        row = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return row is not None


# --- a private cluster --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateCluster:
    """A throwaway PostgreSQL 15 cluster on a free loopback port.

    ``start()`` runs initdb the first time; ``stop()`` shuts down (fast by default) and
    ``start()`` brings the same cluster back on the same port, so a client's DSN stays
    valid across a restart. ``cleanup()`` stops it and deletes its directory.

    As root, the server runs as the ``postgres`` OS user (PostgreSQL refuses root):
    commands go through ``runuser`` and the directory is handed to that user. Its
    directory is made in ``base_dir`` (default: the system temp dir), which that user
    must be able to traverse (pytest's ``tmp_path`` is private to root: do not use it).
    """

    def __init__(
        self,
        *,
        base_dir: Path | None = None,
        port: int | None = None,
        settings: dict[str, str] | None = None,
    ) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="lineside-pg-", dir=base_dir))
        self.data_dir = self.root / "data"
        self.log_file = self.root / "postgres.log"
        self.port = port or free_port()
        self._fixed_port = port is not None
        # durability off: it only matters for OS crashes, and a test cluster is thrown away
        self.settings = {"fsync": "off", "full_page_writes": "off", **(settings or {})}
        self._as_postgres = os.geteuid() == 0
        self._initialized = False
        self.running = False
        if self._as_postgres:
            shutil.chown(self.root, user="postgres", group="postgres")
            self.root.chmod(0o700)

    @property
    def dsn(self) -> str:
        """DSN of the ``postgres`` database as superuser ``postgres`` (trust auth)."""
        return self.dsn_for("postgres")

    def dsn_for(self, dbname: str) -> str:
        """DSN of another database of this cluster."""
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname} connect_timeout=5"

    def start(self, timeout_s: float = 60) -> None:
        """Start the server (initdb first if needed); returns when it accepts connections."""
        if self.running:
            return
        if not self._initialized:
            self._initdb()
        for attempt in range(3):
            result = self._pg_ctl(
                "start",
                "-w",
                "-t",
                str(int(timeout_s)),
                "-l",
                str(self.log_file),
                "-o",
                self._options(),
            )
            if result.returncode == 0:
                self.running = True
                return
            # another process took the port between free_port() and the bind: pick another
            if self._fixed_port or attempt == 2 or "could not bind" not in self._log_tail():
                break
            self.port = free_port()
        raise RuntimeError(
            f"PrivateCluster: pg_ctl start failed in {self.root} (port {self.port}): "
            f"{result.stdout.strip()} {result.stderr.strip()}\n--- log ---\n{self._log_tail()}"
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` (disconnect clients, clean shutdown), ``smart`` or
        ``immediate`` (like a crash: recovery runs at the next start)."""
        if not self.running:
            return
        result = self._pg_ctl("stop", "-m", mode, "-w", "-t", "60")
        if result.returncode != 0:
            raise RuntimeError(
                f"PrivateCluster: pg_ctl stop -m {mode} failed in {self.root}: "
                f"{result.stderr.strip()}\n--- log ---\n{self._log_tail()}"
            )
        self.running = False

    def cleanup(self) -> None:
        """Stop (immediately) if running and delete the cluster's directory."""
        try:
            if self.running:
                self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PrivateCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def _initdb(self) -> None:
        result = self._run(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-locale",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ]
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"PrivateCluster: initdb failed in {self.data_dir}: {result.stderr.strip()} "
                "(as root, the postgres OS user needs to traverse the parent directories)"
            )
        self._initialized = True

    def _options(self) -> str:
        settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.root),  # never the shared server's socket dir
            **self.settings,
        }
        return " ".join(
            [f"-p {self.port}", *(f"-c {key}={value}" for key, value in settings.items())]
        )

    def _pg_ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.data_dir), *args])

    def _run(self, command: list[str]) -> subprocess.CompletedProcess[str]:
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


# --- store test data ----------------------------------------------------------------------

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
_ids = UUIDv7Generator()


def new_id() -> str:
    """A fresh UUIDv7 string."""
    return _ids.new()


class StreamBuilder:
    """Events of one equipment from one agent, numbered 0, 1, 2, ... unless told otherwise."""

    def __init__(
        self,
        equipment: str = "press-1",
        agent_id: str = "agent-7",
        *,
        line: str = "line-3",
        next_seq: int = 0,
    ) -> None:
        self.equipment = Equipment("acme", "plant-1", "pressing", line, equipment)
        self.agent_id = agent_id
        self.next_seq = next_seq

    def event(
        self,
        kind: str,
        payload: dict[str, Any],
        at: datetime,
        *,
        seq: int | None = None,
        historical: bool = False,
        event_id: str | None = None,
    ) -> EventRow:
        """One event; ``seq`` defaults to the next number of the stream."""
        if seq is None:
            seq = self.next_seq
            self.next_seq += 1
        return EventRow(
            event_id or new_id(),
            kind,
            seq,
            at,
            at + timedelta(milliseconds=50),
            "order-4711",
            None,
            historical,
            payload,
        )

    def state(
        self,
        state: str,
        at: datetime,
        *,
        previous: str | None = None,
        reason_code: int | None = None,
        raw_value: Any = 1,
        **kw: Any,
    ) -> EventRow:
        payload = {
            "state": state,
            "previous_state": previous,
            "raw_value": raw_value,
            "reason_code": reason_code,
        }
        return self.event("equipment.state_changed", payload, at, **kw)

    def counted(
        self,
        good: int,
        scrap: int,
        at: datetime,
        *,
        reset: bool = False,
        interval_start: datetime | None = None,
        **kw: Any,
    ) -> EventRow:
        payload = {
            "good": good,
            "scrap": scrap,
            "total": good + scrap,
            "product_id": "bracket-a",
            "order_id": "order-4711",
            "counter_reset": reset,
            "interval_start": None if interval_start is None else wire_time(interval_start),
        }
        return self.event("production.counted", payload, at, **kw)

    def started(
        self,
        order: str | None,
        at: datetime,
        *,
        product: str | None = "bracket-a",
        ideal_cycle_time_s: float | None = 2.5,
        **kw: Any,
    ) -> EventRow:
        payload = {
            "order_id": order,
            "product_id": product,
            "ideal_cycle_time_s": ideal_cycle_time_s,
        }
        return self.event("production.started", payload, at, **kw)

    def ended(
        self,
        order: str | None,
        at: datetime,
        *,
        reason: str = "order_changed",
        product: str | None = "bracket-a",
        **kw: Any,
    ) -> EventRow:
        payload = {"order_id": order, "product_id": product, "reason": reason}
        return self.event("production.ended", payload, at, **kw)

    def sample(
        self,
        tag: str,
        value: Any,
        at: datetime,
        *,
        unit: str | None = "bar",
        quality: str = "good",
        **kw: Any,
    ) -> EventRow:
        payload = {"tag": tag, "value": value, "unit": unit, "quality": quality, "status": "Good"}
        return self.event("tag.sampled", payload, at, **kw)

    def overflow(self, first_seq: int, last_seq: int, at: datetime, **kw: Any) -> EventRow:
        payload = {
            "dropped_events": last_seq - first_seq + 1,
            "first_seq": first_seq,
            "last_seq": last_seq,
            "first_event_time": wire_time(T0),
            "last_event_time": wire_time(T0),
            "reason": "max_bytes",
        }
        return self.event("buffer.overflowed", payload, at, **kw)

    def samples(
        self, count: int, at: datetime = T0, *, step: timedelta = timedelta(seconds=1)
    ) -> list[EventRow]:
        """``count`` numeric samples of one tag, ``step`` apart."""
        return [self.sample("pressure", float(i), at + i * step) for i in range(count)]

    def batch(self, events: list[EventRow], *, batch_id: str | None = None) -> AcceptedBatch:
        """The events as one batch of this stream."""
        e = self.equipment
        topic = f"lineside/v1/{e.enterprise}/{e.site}/{e.area}/{e.line}/{e.equipment}/events"
        return AcceptedBatch(topic, batch_id or new_id(), self.agent_id, e, T0, list(events), 500)


def wire_time(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")
