"""``oee-collector run``: one collector process, wired together.

Threads: paho's network thread (messages into the inbox), the ingest thread
(validate -> commit -> confirm -> PUBACK), a maintenance thread (partitions, gap and
pool gauges), the health endpoint's server thread, and the main thread, which waits
for SIGTERM/SIGINT and pings the systemd watchdog while the ingest thread is alive.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from collector.config import CollectorConfig
from collector.ingest.metrics import IngestMetrics
from collector.ingest.subscriber import Inbox, Subscriber
from collector.ingest.worker import IngestWorker
from collector.service.endpoints import STUCK_AFTER_S, CollectorEndpoints
from collector.service.masterdata_source import MasterDataSource
from collector.store import (
    StoreError,
    apply_migrations,
    count_open_gaps,
    drop_partitions_older_than,
    ensure_partitions,
)
from lineside_common.gctune import settle_long_lived_objects
from lineside_common.health_http import HealthHttpServer
from lineside_common.systemd_notify import SystemdNotifier

if TYPE_CHECKING:
    from collector.alerts.service import AlertService
    from collector.api.server import BackgroundApiServer

log = logging.getLogger("lineside.collector")

GAUGE_INTERVAL_S = 15.0
MAINTENANCE_TICK_S = 5.0
STOP_DRAIN_TIMEOUT_S = 10.0


class CollectorService:
    """Everything one ``oee-collector run`` process does."""

    def __init__(
        self, config: CollectorConfig, database_url: str, *, client_id: str | None = None
    ) -> None:
        self.config = config
        self.metrics = IngestMetrics()
        self.inbox = Inbox()
        self.subscriber = Subscriber(
            config.mqtt, self.inbox, client_id=client_id, on_link_change=self._link_changed
        )
        self.pool = ConnectionPool(
            database_url,
            min_size=1,
            max_size=config.database.pool_size,
            open=False,
            name="lineside-collector",
            kwargs={
                "autocommit": True,  # the writer owns its transactions
                "connect_timeout": max(1, round(config.database.connect_timeout_s)),
            },
            timeout=config.database.connect_timeout_s,
            # psycopg_pool doubles its reconnect delay without a ceiling until this
            # timeout: a short window restarts the series, so the pool never sleeps for
            # minutes after the database is back
            reconnect_timeout=config.database.reconnect_window_s,
            check=ConnectionPool.check_connection,
        )
        self.worker = IngestWorker(config, self.pool, self.subscriber, self.inbox, self.metrics)
        self.stop_event = threading.Event()
        self.migrated = False
        self.ingest_thread: threading.Thread | None = None
        self._maintenance_thread: threading.Thread | None = None
        self._next_gauges = 0.0
        self.health = (
            HealthHttpServer(
                config.health.listen,
                CollectorEndpoints(self),
                server_name="lineside-collector",
                setting="health.listen",
            )
            if config.health.enabled
            else None
        )
        self.notifier = SystemdNotifier()
        self.started_at = datetime.now(UTC)
        # one master data source for the API, the alert rules and the OEE hours
        self.masterdata = MasterDataSource(config.masterdata_file, registry=self.metrics.registry)
        self.api_server: BackgroundApiServer | None = None
        if config.api.serve_with_ingest:
            from collector.api.app import create_app  # deferred: only with the API
            from collector.api.server import BackgroundApiServer

            app = create_app(
                config, database_url, registry=self.metrics.registry, masterdata=self.masterdata
            )
            self.api_server = BackgroundApiServer(app, config.api.listen)
        self.alerts: AlertService | None = None
        if config.alerts.enabled:
            from collector.alerts.service import AlertService

            self.alerts = AlertService(
                config,
                config.alerts,
                database_url,
                self.masterdata,
                self.metrics.registry,
                client_id=f"{self.subscriber.client_id}-alerts",
            )

    # -- lifecycle -------------------------------------------------------------------------

    def run(self, *, install_signal_handlers: bool = True) -> int:
        """Run until SIGTERM/SIGINT (or ``stop()``); returns the exit code (0: clean)."""
        if install_signal_handlers:
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda *_: self.stop_event.set())
        if self.health is not None:
            self.health.start()  # HealthEndpointError: the caller reports it
        if self.api_server is not None:
            self.api_server.start()  # RuntimeError (port taken): the caller reports it
        self.pool.open(wait=False)
        self.ingest_thread = threading.Thread(
            target=self._ingest_main, name="lineside-ingest", daemon=True
        )
        self.ingest_thread.start()
        self._maintenance_thread = threading.Thread(
            target=self._maintenance_main, name="lineside-maintenance", daemon=True
        )
        self._maintenance_thread.start()
        self.notifier.ready("starting: connecting to the database and the broker")
        try:
            self._watch()
        finally:
            self._shutdown()
        return 0

    def stop(self) -> None:
        """Ask the service to stop (thread-safe)."""
        self.stop_event.set()

    def _watch(self) -> None:
        interval = self.notifier.watchdog_interval_s or 1.0
        while not self.stop_event.wait(min(interval, 1.0)):
            thread = self.ingest_thread
            alive = thread is not None and thread.is_alive()
            if alive and time.monotonic() - self.worker.last_tick < STUCK_AFTER_S:
                self.notifier.watchdog_ping()
            elif not alive:
                log.error("event=ingest_thread_died action=exit")
                self.stop_event.set()

    def _shutdown(self) -> None:
        self.notifier.stopping("stopping")
        log.info("event=collector_stopping")
        self.stop_event.set()
        for thread in (self.ingest_thread, self._maintenance_thread):
            if thread is not None:
                thread.join(STOP_DRAIN_TIMEOUT_S + 5)
        self.subscriber.stop()
        if self.api_server is not None:
            self.api_server.stop()
        if self.alerts is not None:
            self.alerts.stop()
        self.pool.close(timeout=5)
        if self.health is not None:
            self.health.stop()
        self.notifier.close()
        log.info("event=collector_stopped events_committed=%d", self.worker.committed_events)

    # -- threads ---------------------------------------------------------------------------

    def _ingest_main(self) -> None:
        if not self._migrate_until_done():
            return
        if self.alerts is not None:
            self.alerts.start()
        # a batch of 500 events is ~10,000 short-lived objects: collect young objects
        # less often, and never walk what startup built (as the agent does)
        settle_long_lived_objects()
        self.subscriber.start()
        self.notifier.status("running")
        self.worker.run(self.stop_event)

    def _migrate_until_done(self) -> bool:
        """Migrate (if configured) and create partitions, retrying while the database is
        unreachable; False when stopped first."""
        delay = self.config.ingest.retry_min_s
        while not self.stop_event.is_set():
            self.worker.last_tick = time.monotonic()
            try:
                with self.pool.connection() as conn:
                    if self.config.database.migrate_on_start:
                        applied = apply_migrations(conn)
                        if applied:
                            log.info("event=migrations_applied names=%s", ",".join(applied))
                    ensure_partitions(conn, ahead_days=self.config.partitions.ahead_days)
                self.migrated = True
                return True
            except (psycopg.Error, PoolTimeout, StoreError) as error:
                self.worker.last_db_error = str(error).strip().splitlines()[0][:300]
                unreachable = isinstance(error, psycopg.OperationalError | PoolTimeout)
                log.log(
                    logging.WARNING if unreachable else logging.ERROR,
                    "event=database_not_ready error=%r retry_in_s=%.1f hint=%r",
                    self.worker.last_db_error,
                    delay,
                    "is PostgreSQL up and the URL right?"
                    if unreachable
                    else "run oee-collector migrate (or set database.migrate_on_start: true)",
                )
                self.stop_event.wait(delay)
                delay = min(delay * 2, self.config.ingest.retry_max_s)
        return False

    def _maintenance_main(self) -> None:
        next_partitions = time.monotonic() + self.config.partitions.maintenance_interval_s
        next_hours = time.monotonic()
        while not self.stop_event.wait(MAINTENANCE_TICK_S):
            if not self.migrated:
                continue
            try:
                now = time.monotonic()
                if now >= self._next_gauges:
                    self._next_gauges = now + GAUGE_INTERVAL_S
                    self._refresh_gauges()
                if now >= next_partitions:
                    next_partitions = now + self.config.partitions.maintenance_interval_s
                    self._maintain_partitions()
                if self.config.oee_hours.enabled and now >= next_hours:
                    next_hours = now + self.config.oee_hours.interval_s
                    self._compute_oee_hours()
            except (psycopg.Error, PoolTimeout) as error:
                log.warning("event=maintenance_failed error=%r", str(error).splitlines()[0])

    def _compute_oee_hours(self) -> None:
        from collector.queries.materialize import materialize_stale_days

        settings = self.config.oee_hours
        started = time.monotonic()
        with self.pool.connection() as conn:
            conn.execute("SET jit = off")  # many short queries (see collector.api.app)
            try:
                stored = materialize_stale_days(
                    conn,
                    self.masterdata.current(),
                    days_back=settings.days_back,
                    limit=settings.days_per_pass,
                )
            finally:
                conn.execute("RESET jit")
        if stored:
            log.info(
                "event=oee_hours_computed days=%d seconds=%.1f",
                stored,
                time.monotonic() - started,
            )

    def _refresh_gauges(self) -> None:
        stats = self.pool.get_stats()
        for figure in ("pool_size", "pool_available", "requests_waiting"):
            self.metrics.pool.labels(figure).set(stats.get(figure, 0))
        with self.pool.connection() as conn:
            self.metrics.open_gaps.set(count_open_gaps(conn).gaps)

    def _maintain_partitions(self) -> None:
        partitions = self.config.partitions
        with self.pool.connection() as conn:
            ensure_partitions(conn, ahead_days=partitions.ahead_days)
            if partitions.retention_days is not None:
                dropped = drop_partitions_older_than(conn, partitions.retention_days)
                if dropped:
                    log.info("event=partitions_dropped count=%d", len(dropped))

    def _link_changed(self, up: bool, detail: str) -> None:
        self.metrics.mqtt_connected.set(1 if up else 0)

    # -- status ----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Figures for /status (no secrets)."""
        worker, subscriber = self.worker, self.subscriber
        oldest = self.inbox.oldest_received_at()
        return {
            "started_at": self.started_at.isoformat(),
            "mqtt": {
                "broker": self.config.mqtt.broker,
                "client_id": subscriber.client_id,
                "subscription": subscriber.subscription,
                "connected": subscriber.connected,
                "last_error": subscriber.last_error,
                "messages_received": subscriber.received_total,
            },
            "database": {
                "migrated": self.migrated,
                "ok": worker.db_ok,
                "last_error": worker.last_db_error,
                "breaker": worker.breaker.current_state,
            },
            "ingest": {
                "events_committed": worker.committed_events,
                "inbox_messages": len(self.inbox),
                "lag_s": None if oldest is None else round(max(0.0, time.time() - oldest), 3),
            },
            "alerts": None if self.alerts is None else self.alerts.status(),
        }
