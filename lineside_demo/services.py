"""The broker and the database: the configured ones when they answer, else embedded ones.

MQTT: the collector needs MQTT 5 shared subscriptions. amqtt (0.12, the asyncio broker
on PyPI) refuses MQTT 5 connections ("Unsupported protocol version"), so the only
embedded broker is the ``mosquitto`` binary (apt-get install mosquitto).
PostgreSQL: the ``pgserver`` package (the ``demo`` extra) runs a real PostgreSQL from a
pip install, with its data under the demo's folder, reached over a Unix socket.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from lineside_demo.processes import Child, Children, DemoError

DEMO_DATABASE = "lineside_demo"
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_MQTT = "127.0.0.1:1883"


@dataclass
class Services:
    """Where the broker and database are, and what was started for them."""

    mqtt_host: str
    mqtt_port: int
    mqtt_origin: str  # "configured" or "embedded mosquitto"
    database_url: str
    database_origin: str  # "configured" or "embedded pgserver"
    _pgserver: Any = field(default=None, repr=False)

    def stop(self) -> None:
        """Stop the embedded PostgreSQL, if one was started (the broker is a Child)."""
        if self._pgserver is not None:
            self._pgserver.cleanup()
            self._pgserver = None


def parse_host_port(text: str) -> tuple[str, int]:
    """``host:port`` -> (host, port); DemoError naming the flag when it is malformed."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise DemoError(f"--mqtt {text!r}: use host:port, e.g. 127.0.0.1:1883")
    return host, int(port)


def tcp_answers(host: str, port: int, timeout_s: float = 1.0) -> bool:
    """True when something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def free_port() -> int:
    """A TCP port nobody listens on right now (127.0.0.1)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def preferred_or_free(port: int) -> int:
    """``port`` when it is free on 127.0.0.1, else any free port."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return free_port()
    return port


def postgres_answers(dsn: str) -> bool:
    """True when PostgreSQL accepts a connection with ``dsn`` (2 s timeout)."""
    try:
        with psycopg.connect(dsn, connect_timeout=2):
            return True
    except psycopg.Error:
        return False


def ensure_demo_database(server_dsn: str) -> str:
    """Create the ``lineside_demo`` database once on that server; its connection string."""
    with psycopg.connect(server_dsn, autocommit=True, connect_timeout=5) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (DEMO_DATABASE,)
        ).fetchone()
        if exists is None:
            create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DEMO_DATABASE))
            # a second demo starting at the same time may win the race: fine
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(create)
    return make_conninfo(server_dsn, dbname=DEMO_DATABASE)


def start_mosquitto(folder: Path, children: Children) -> tuple[str, int]:
    """A private Mosquitto on a free port under ``folder``; (host, port)."""
    binary = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if binary is None:
        raise DemoError(
            "no MQTT broker answers and the mosquitto binary is not installed: run "
            "'sudo apt-get install mosquitto', or point --mqtt at an MQTT 5 broker "
            "(amqtt cannot stand in: it has no MQTT 5, which the collector's shared "
            "subscriptions need)"
        )
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = folder / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        "max_queued_messages 100000\nuser root\n"
    )
    broker = children.start(Child("mosquitto", [binary, "-c", str(conf)], folder / "log", 15))
    broker.wait_ready(lambda: tcp_answers("127.0.0.1", port, 0.2), 15, f"port {port}")
    return "127.0.0.1", port


def start_pgserver(folder: Path) -> tuple[str, Any]:
    """An embedded PostgreSQL with its data in ``folder``; (connection string, handle)."""
    try:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            import pgserver
    except ImportError:
        raise DemoError(
            "no PostgreSQL answers and the embedded one is not installed: run "
            "\".venv/bin/pip install -e '.[demo]'\" (./lineside demo does), or give "
            "--dsn / LINESIDE_DATABASE_URL"
        ) from None
    folder.mkdir(parents=True, exist_ok=True)
    try:
        server = pgserver.get_server(folder, cleanup_mode="stop")
    except Exception as exc:  # pgserver raises plain exceptions from initdb/pg_ctl
        raise DemoError(f"embedded PostgreSQL in {folder} did not start: {exc}") from None
    uri = server.get_uri()
    if not postgres_answers(uri):
        server.cleanup()
        raise DemoError(f"embedded PostgreSQL in {folder} started but does not answer ({uri})")
    return uri, server


def find_or_start(
    dsn: str, mqtt: str, folder: Path, children: Children, log: Any = print
) -> Services:
    """Probe the configured broker and database; start embedded ones for what is missing."""
    mqtt_host, mqtt_port = parse_host_port(mqtt)
    if tcp_answers(mqtt_host, mqtt_port):
        mqtt_origin = "configured"
    else:
        log(f"no MQTT broker at {mqtt}: starting mosquitto under {folder / 'mosquitto'}")
        mqtt_host, mqtt_port = start_mosquitto(folder / "mosquitto", children)
        mqtt_origin = "embedded mosquitto"
    handle = None
    if postgres_answers(dsn):
        database_origin = "configured"
        server_dsn = dsn
    else:
        where = conninfo_to_dict(dsn).get("host", "?")
        log(f"no PostgreSQL at {where}: starting an embedded one under {folder / 'pgdata'}")
        server_dsn, handle = start_pgserver(folder / "pgdata")
        database_origin = "embedded pgserver"
    try:
        database_url = ensure_demo_database(server_dsn)
    except psycopg.Error as exc:
        if handle is not None:
            handle.cleanup()
        raise DemoError(f"cannot create database {DEMO_DATABASE!r}: {exc}") from None
    return Services(mqtt_host, mqtt_port, mqtt_origin, database_url, database_origin, handle)
