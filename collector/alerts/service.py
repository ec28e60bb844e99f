"""The alerting of one collector process: an evaluation thread and delivery threads.

The evaluation thread observes every rule each ``evaluate_every_s``, decides breaches
and resolves (``evaluate``) against the episodes open in the database, and stores the
events it wins together with their outbox rows (``store``); then it wakes the delivery
threads, one per destination (``deliver``). Rows stored by other collector processes are
found by polling (every second).

Everything runs on threads and connections of its own: a slow database query, broker or
webhook never holds up ingest. Database errors are logged (once per distinct error) and
the work is tried again at the next turn.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import psycopg
from prometheus_client import CollectorRegistry
from psycopg_pool import ConnectionPool, PoolTimeout

from collector.service.masterdata_source import MasterDataSource
from lineside_protocol.alerts import AlertEvent
from lineside_protocol.ids import new_event_id

from ._mqtt import MqttSender
from .config import AlertsConfig
from .deliver import AlertMetrics, DeliveryWorker, Sender, WebhookSender, first_line
from .evaluate import AnyRule, Breach, breach_event, evaluate, resolve_event
from .observe import observe
from .pending import load_pending, prune_stale_pending, save_pending
from .store import (
    MQTT_DESTINATION,
    abandon_expired,
    open_episodes,
    outbox_backlog,
    prune_finished,
    store_breach,
    store_resolve,
    webhook_destination,
)

if TYPE_CHECKING:
    from collector.config import CollectorConfig

log = logging.getLogger("lineside.collector.alerts")

HOUSEKEEPING_EVERY_S = 15.0
STOP_TIMEOUT_S = 10.0


class AlertService:
    """Threshold alerts of one collector process: ``start()``, later ``stop()``."""

    def __init__(
        self,
        config: CollectorConfig,
        alerts: AlertsConfig,
        database: str | ConnectionPool,
        masterdata: MasterDataSource,
        registry: CollectorRegistry,
        *,
        client_id: str | None = None,
    ) -> None:
        """``database`` is a URL (a small pool of its own is opened: recommended, so
        alerting never competes with ingest for connections) or a pool to share.
        ``client_id`` is the MQTT client id of the alert publisher; default: the
        collector's client id with ``-alerts`` appended."""
        self.alerts = alerts
        self.metrics = AlertMetrics(registry)
        self._masterdata = masterdata
        self._rules: dict[str, AnyRule] = {rule.name: rule for rule in alerts.rules}
        if isinstance(database, ConnectionPool):
            self._pool, self._own_pool = database, False
        else:
            self._pool = ConnectionPool(
                database,
                min_size=1,
                max_size=min(6, 2 + len(alerts.webhooks)),
                open=False,
                name="lineside-alerts",
                kwargs={
                    "autocommit": True,
                    "connect_timeout": max(1, round(config.database.connect_timeout_s)),
                },
                timeout=config.database.connect_timeout_s,
                reconnect_timeout=config.database.reconnect_window_s,
                check=ConnectionPool.check_connection,
            )
            self._own_pool = True
        senders: list[Sender] = []
        self.mqtt: MqttSender | None = None
        if alerts.mqtt:
            publisher_id = client_id or f"{config.mqtt.resolved_client_id()}-alerts"
            self.mqtt = MqttSender(config.mqtt, publisher_id)
            senders.append(self.mqtt)
        senders.extend(WebhookSender(hook) for hook in alerts.webhooks)
        self.workers = [
            DeliveryWorker(
                sender, self._connection, self.metrics, redeliver_max_s=alerts.redeliver_max_s
            )
            for sender in senders
        ]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_error: str | None = None
        self._rule_errors: dict[str, str] = {}
        self.last_evaluation: datetime | None = None
        self.events_stored = 0

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Open the pool and the broker connection in the background; start the threads."""
        if self._own_pool:
            self._pool.open(wait=False)
        if self.mqtt is not None:
            self.mqtt.start()
        for worker in self.workers:
            worker.start()
        self._thread = threading.Thread(
            target=self._evaluate_main, name="lineside-alerts-evaluate", daemon=True
        )
        self._thread.start()
        log.info(
            "event=alerts_started rules=%d destinations=%s every_s=%.1f",
            len(self._rules),
            ",".join(w.sender.destination for w in self.workers) or "none",
            self.alerts.evaluate_every_s,
        )

    def stop(self) -> None:
        """Stop the threads, then disconnect. A request under way finishes first (at most
        its timeout: ``webhooks[].timeout_s``, 10 s for a PUBACK); no retries follow."""
        self._stop.set()
        for worker in self.workers:  # all at once: each may be waiting for a receiver
            worker.request_stop()
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT_S)
        for worker in self.workers:
            worker.join(STOP_TIMEOUT_S)
            worker.sender.close()
        if self._own_pool:
            self._pool.close(timeout=5)
        log.info("event=alerts_stopped events_stored=%d", self.events_stored)

    # -- evaluation ------------------------------------------------------------------------

    def _evaluate_main(self) -> None:
        every_s = self.alerts.evaluate_every_s
        next_housekeeping = 0.0
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.evaluate_once()
                if started >= next_housekeeping:
                    next_housekeeping = started + HOUSEKEEPING_EVERY_S
                    self._housekeeping()
                if self._last_error is not None:
                    log.info("event=alerts_evaluation_recovered")
                self._last_error = None
            except (psycopg.Error, PoolTimeout) as exc:
                self._failed(first_line(exc))
            except Exception as exc:  # a bug must not end alerting for good: log, go on
                log.exception("event=alerts_evaluation_bug")
                self._failed(repr(exc))
            self._stop.wait(max(0.0, every_s - (time.monotonic() - started)))

    def _failed(self, text: str) -> None:
        self.metrics.evaluation_errors.labels("").inc()
        if text != self._last_error:
            log.warning(
                "event=alerts_evaluation_failed error=%r retry_in_s=%.1f",
                text,
                self.alerts.evaluate_every_s,
            )
        self._last_error = text

    def evaluate_once(self, now: datetime | None = None) -> list[AlertEvent]:
        """One evaluation of every rule; returns the events this process stored."""
        now = (now or datetime.now(UTC)).astimezone(UTC)
        masterdata = self._masterdata.current()
        stored: list[AlertEvent] = []
        with self._connection() as conn:
            observed = observe(conn, masterdata, list(self._rules.values()), now)
            self._note_rule_errors(observed.errors)
            episodes = open_episodes(conn)
            pending = load_pending(conn)
            evaluation = evaluate(observed.observations, observed.timings, episodes, pending, now)
            save_pending(conn, pending, evaluation.pending)
            for decision in evaluation.decisions:
                if isinstance(decision, Breach):
                    rule = self._rules[decision.observation.rule]
                    event = breach_event(decision, rule, new_event_id(), new_event_id())
                    won = store_breach(conn, event, self._destinations(rule.name))
                else:
                    rule = self._rules[decision.episode.rule]
                    event = resolve_event(decision, rule, new_event_id())
                    won = store_resolve(conn, event, self._destinations(rule.name))
                if won:
                    stored.append(event)
                    self._count(event)
        self.last_evaluation = now
        if stored:
            self.events_stored += len(stored)
            for worker in self.workers:
                worker.wake()
        return stored

    def _destinations(self, rule: str) -> list[str]:
        out = [MQTT_DESTINATION] if self.alerts.mqtt else []
        out.extend(
            webhook_destination(hook.name)
            for hook in self.alerts.webhooks
            if hook.rules is None or rule in hook.rules
        )
        return out

    def _count(self, event: AlertEvent) -> None:
        breached = event.resolved_at is None
        (self.metrics.fired if breached else self.metrics.resolved).labels(event.rule).inc()
        log.info(
            "event=%s rule=%s subject=%s episode_id=%s event_id=%s value=%s",
            "alert_breached" if breached else "alert_resolved",
            event.rule,
            event.subject.id,
            event.episode_id,
            event.event_id,
            event.value,
        )

    def _note_rule_errors(self, errors: dict[str, str]) -> None:
        for rule, text in errors.items():
            self.metrics.evaluation_errors.labels(rule).inc()
            if self._rule_errors.get(rule) != text:
                log.warning("event=alert_rule_skipped rule=%s error=%r", rule, text)
        self._rule_errors = dict(errors)

    def _housekeeping(self) -> None:
        with self._connection() as conn:
            abandoned = abandon_expired(conn, self.alerts.give_up_after_s)
            pruned = prune_finished(conn, self.alerts.outbox_retention_s)
            stale = prune_stale_pending(conn)
            backlog = outbox_backlog(conn)
            episodes = open_episodes(conn)
        if stale:
            log.info("event=alert_timers_pruned count=%d reason=older_than_any_for_s", stale)
        for destination, count in abandoned.items():
            self.metrics.abandoned.labels(destination).inc(count)
            log.warning(
                "event=alert_deliveries_abandoned destination=%s count=%d after_s=%.0f",
                destination,
                count,
                self.alerts.give_up_after_s,
            )
        if pruned:
            log.info("event=alert_outbox_pruned rows=%d", pruned)
        for worker in self.workers:
            destination = worker.sender.destination
            self.metrics.backlog.labels(destination).set(backlog.get(destination, 0))
        for rule in self._rules:
            self.metrics.open.labels(rule).set(sum(1 for key in episodes if key[0] == rule))

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection]:
        with self._pool.connection() as conn:
            yield conn

    # -- status ----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Figures for /status (no secrets: webhooks by name)."""
        last = self.last_evaluation
        return {
            "rules": len(self._rules),
            "last_evaluation": None if last is None else last.isoformat(),
            "last_error": self._last_error,
            "rules_skipped": dict(self._rule_errors),
            "events_stored": self.events_stored,
            "mqtt_connected": None if self.mqtt is None else self.mqtt.connected,
            "destinations": [worker.sender.destination for worker in self.workers],
        }
