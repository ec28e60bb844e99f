"""The collector's HTTP API for tests: a real uvicorn server in a thread, tokens, shift data.

* :func:`running_api` builds the app with ``create_app`` for a migrated database, a master
  data file and an HS256 secret (its own prometheus registry, so servers never share
  metrics), serves it with ``BackgroundApiServer`` on a free loopback port and stops it.
  The :class:`ApiServer` it yields mints tokens and makes HTTP clients.
* :func:`machine`, :func:`local` and :func:`store_shift` put a scripted shift of one
  machine into the store (``StreamBuilder`` + ``collector.store.write``), with times
  written as local wall-clock times.
"""

from __future__ import annotations

import time as _clock
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import httpx
import psycopg
from _pg_helpers import StreamBuilder, free_port
from prometheus_client import CollectorRegistry

from collector.api.app import create_app
from collector.api.auth import Role, create_token
from collector.api.auth_config import AuthConfig
from collector.api.server import BackgroundApiServer
from collector.config import CollectorConfig
from collector.records import Equipment, EventRow
from collector.store import write

#: 48 bytes; tests assert it never shows up in logs or output.
SECRET = "api-integration-secret-4f1c9e07b2d84a6f93c5e18d"
ENTERPRISE = "acme"
#: The product of StreamBuilder's counts.
PRODUCT = "bracket-a"
BERLIN = ZoneInfo("Europe/Berlin")

T = TypeVar("T")


@dataclass
class ApiServer:
    """A running API: its base URL, configuration and metrics registry."""

    base_url: str
    config: CollectorConfig
    registry: CollectorRegistry

    @property
    def auth(self) -> AuthConfig:
        assert self.config.api.auth is not None
        return self.config.api.auth

    def token(
        self,
        role: Role = Role.VIEWER,
        sites: Sequence[str] = ("s1",),
        *,
        ttl_s: float = 600,
        subject: str = "integration-test",
        auth: AuthConfig | None = None,
        now: datetime | None = None,
    ) -> str:
        """A token signed with this server's secret (or with ``auth``'s, to forge one)."""
        return create_token(
            auth or self.auth, subject=subject, role=role, sites=list(sites), ttl_s=ttl_s, now=now
        )

    def client(self, token: str | None = None) -> httpx.Client:
        """An HTTP client of this server, with a bearer token when given."""
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=10.0)


def api_config(
    masterdata_file: Path | None, listen: str, *, secret: str = SECRET, **api: Any
) -> CollectorConfig:
    """A collector configuration serving the API on ``listen`` with HS256 tokens."""
    section: dict[str, Any] = {"listen": listen, "auth": {"hs256_secret": secret}}
    section.update(api)
    document: dict[str, Any] = {"api": section}
    if masterdata_file is not None:
        document["masterdata_file"] = str(masterdata_file)
    return CollectorConfig.model_validate(document)


@contextmanager
def running_api(database_url: str, masterdata_file: Path | None, **api: Any) -> Iterator[ApiServer]:
    """The API on a free loopback port until the block ends (``api``: more ``api:`` keys,
    e.g. ``rate_limit={"per_token": "5/minute"}``)."""
    port = free_port()
    config = api_config(masterdata_file, f"127.0.0.1:{port}", **api)
    registry = CollectorRegistry()
    app = create_app(config, database_url, registry=registry)
    server = BackgroundApiServer(app, config.api.listen)
    server.start()
    try:
        yield ApiServer(f"http://127.0.0.1:{port}", config, registry)
    finally:
        server.stop()


def poll(check: Callable[[], T | None], timeout_s: float, what: str) -> T:
    """Call ``check`` until it returns something other than None; fail after ``timeout_s``."""
    deadline = _clock.monotonic() + timeout_s
    while True:
        value = check()
        if value is not None:
            return value
        if _clock.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        _clock.sleep(0.05)


# --- shift data ----------------------------------------------------------------------------


def machine(path: str, agent_id: str = "agent-api") -> StreamBuilder:
    """A stream builder for the equipment ``site/area/line/equipment`` of ENTERPRISE."""
    site, area, line, equipment = path.split("/")
    builder = StreamBuilder(equipment, agent_id, line=line)
    builder.equipment = Equipment(ENTERPRISE, site, area, line, equipment)
    return builder


def local(day: date, wall: str, zone: ZoneInfo = BERLIN) -> datetime:
    """``wall`` ("HH:MM" or "HH:MM:SS") on ``day`` in ``zone``; "24:00" is the next day."""
    if wall == "24:00":
        return datetime.combine(day + timedelta(days=1), time(), zone)
    return datetime.combine(day, time.fromisoformat(wall), zone)


def store(conn: psycopg.Connection, builder: StreamBuilder, events: Sequence[EventRow]) -> None:
    """Write ``events`` of ``builder``'s equipment as one batch (committed on return)."""
    write(conn, [builder.batch(list(events))], [])


def store_shift(
    conn: psycopg.Connection,
    builder: StreamBuilder,
    day: date,
    *,
    states: Sequence[tuple[str, str] | tuple[str, str, int | None]],
    counts: Sequence[tuple[str, int, int]] = (),
    samples: Sequence[tuple[str, str, float]] = (),
    run_start: str | None = None,
    zone: ZoneInfo = BERLIN,
) -> None:
    """Store a shift of one machine, times as local ``"HH:MM"`` on ``day``.

    ``states``: (time, state[, reason code]); ``counts``: (time, good, scrap) of
    PRODUCT; ``samples``: (time, tag, value). ``run_start``: a production run of
    PRODUCT without an ideal cycle time of its own starts then (so the master data's
    applies). Events go in time order, numbered in that order.
    """
    timed: list[tuple[datetime, int, Callable[[], EventRow]]] = []

    def add(wall: str, make: Callable[[datetime], EventRow]) -> None:
        at = local(day, wall, zone)
        timed.append((at, len(timed), lambda: make(at)))

    if run_start is not None:
        add(
            run_start,
            lambda at: builder.started("order-1", at, product=PRODUCT, ideal_cycle_time_s=None),
        )
    for wall, state, *reason in states:
        code = reason[0] if reason else None
        add(wall, lambda at, s=state, c=code: builder.state(s, at, reason_code=c))
    for wall, good, scrap in counts:
        add(wall, lambda at, g=good, s=scrap: builder.counted(g, s, at))
    for wall, tag, value in samples:
        add(wall, lambda at, t=tag, v=value: builder.sample(t, v, at))
    # sequence numbers follow time, as a real agent's do
    events = [make() for _at, _i, make in sorted(timed, key=lambda x: (x[0], x[1]))]
    store(conn, builder, events)
