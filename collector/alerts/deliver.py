"""Delivery of alert events from the outbox: MQTT (QoS 1) and webhooks (HTTP POST).

One :class:`DeliveryWorker` thread per destination claims that destination's due
outbox rows and sends them one by one, so a slow or dead receiver only delays itself.

* MQTT: ``_mqtt.MqttSender``, QoS 1, delivered when the broker's PUBACK says success.
* Webhooks: httpx POST of the event's JSON. Within one delivery attempt, tenacity
  retries connection errors, timeouts, 5xx and 429 with jittered exponential waits; a
  pybreaker breaker per webhook counts failed attempts, and while it is open the
  webhook's rows are left alone until its reset time.

A failed row is tried again later with doubling waits (``alerts.redeliver_max_s``);
nothing is dropped before ``alerts.give_up_after_s``.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol

import httpx
import psycopg
import pybreaker
from prometheus_client import CollectorRegistry, Counter, Gauge
from psycopg_pool import PoolTimeout
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_when_event_set,
    wait_exponential,
    wait_random,
)

from .config import Webhook
from .store import OutboxItem, claim_due, mark_delivered, mark_failed, webhook_destination

log = logging.getLogger("lineside.collector.alerts")

FIRST_RETRY_S = 2.0
LEASE_MARGIN_S = 30.0


class DeliveryError(Exception):
    """A destination did not take an event; the message is safe to log and store."""


class _Retryable(DeliveryError):
    """Worth another try within the same delivery attempt."""


class AlertMetrics:
    """Prometheus metrics of alerting, in ``registry`` (the collector's own)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.fired = Counter(
            "lineside_collector_alerts_fired",
            "Alert episodes opened (breach events stored by this process), by rule",
            ["rule"],
            registry=registry,
        )
        self.resolved = Counter(
            "lineside_collector_alerts_resolved",
            "Alert episodes closed (resolve events stored by this process), by rule",
            ["rule"],
            registry=registry,
        )
        self.open = Gauge(
            "lineside_collector_alerts_open",
            "Alert episodes open now (all processes), by rule",
            ["rule"],
            registry=registry,
        )
        self.deliveries = Counter(
            "lineside_collector_alert_deliveries",
            "Alert event delivery attempts by this process, by destination and outcome",
            ["destination", "outcome"],
            registry=registry,
        )
        self.backlog = Gauge(
            "lineside_collector_alert_outbox_backlog",
            "Alert events not delivered yet (all processes), by destination",
            ["destination"],
            registry=registry,
        )
        self.abandoned = Counter(
            "lineside_collector_alert_deliveries_abandoned",
            "Alert events given up after alerts.give_up_after_s, by destination",
            ["destination"],
            registry=registry,
        )
        self.evaluation_errors = Counter(
            "lineside_collector_alert_evaluation_errors",
            "Evaluations that failed (database) or rules whose observation failed",
            ["rule"],
            registry=registry,
        )


class Sender(Protocol):
    """Sends one event to one destination, or raises DeliveryError."""

    destination: str
    max_send_s: float
    """Longest one send() may take (sizes the outbox lease)."""

    def ready(self) -> bool: ...

    def send(self, item: OutboxItem) -> None: ...

    def interrupt(self) -> None: ...

    def close(self) -> None: ...


class WebhookSender:
    """POSTs alert events to one webhook, with retries and a circuit breaker."""

    def __init__(self, hook: Webhook, transport: httpx.BaseTransport | None = None) -> None:
        self.hook = hook
        self.destination = webhook_destination(hook.name)
        waits = sum(min(2.0, 0.2 * 2**i) + 0.5 for i in range(hook.retries))
        self.max_send_s = hook.timeout_s * (hook.retries + 1) + waits
        self.opened_at: float | None = None
        self.breaker = pybreaker.CircuitBreaker(
            fail_max=hook.breaker_fail_max,
            reset_timeout=hook.breaker_reset_s,
            exclude=[lambda exc: not isinstance(exc, DeliveryError)],
            throw_new_error_on_trip=False,
            listeners=[_BreakerLog(self)],
            name=self.destination,
        )
        # httpx logs every request's full URL at INFO, and a webhook URL can be a secret
        logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger("httpx").level))
        self._stop = threading.Event()
        headers = {name: value.get_secret_value() for name, value in hook.headers.items()}
        headers.setdefault("Content-Type", "application/json")
        headers.setdefault("User-Agent", "lineside-collector")
        self._client = httpx.Client(
            timeout=hook.timeout_s, headers=headers, transport=transport, follow_redirects=False
        )

    def ready(self) -> bool:
        """False while the breaker is open and its reset time has not passed."""
        if self.breaker.current_state != pybreaker.STATE_OPEN or self.opened_at is None:
            return True
        return time.monotonic() - self.opened_at >= self.hook.breaker_reset_s

    def send(self, item: OutboxItem) -> None:
        try:
            self.breaker.call(self._post_with_retries, item)
        except pybreaker.CircuitBreakerError:
            raise DeliveryError(
                f"webhook {self.hook.name}: breaker open after repeated failures"
            ) from None

    def interrupt(self) -> None:
        """No further tries or waits (a request under way still runs to its timeout)."""
        self._stop.set()

    def close(self) -> None:
        self._client.close()

    def _post_with_retries(self, item: OutboxItem) -> None:
        retrying = Retrying(
            stop=stop_after_attempt(self.hook.retries + 1) | stop_when_event_set(self._stop),
            sleep=self._stop.wait,
            # jittered exponential: 0.2 s, 0.4 s, ... at most 2 s, each + up to 0.5 s
            wait=wait_exponential(multiplier=0.2, max=2.0) + wait_random(0, 0.5),
            retry=retry_if_exception_type(_Retryable),
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                self._post(item)

    def _post(self, item: OutboxItem) -> None:
        name = self.hook.name
        try:
            answer = self._client.post(
                self.hook.url.get_secret_value(),
                content=item.body,
                headers={"X-Lineside-Event-Id": item.event.event_id},
            )
        except httpx.TimeoutException:
            raise _Retryable(f"webhook {name}: no answer within {self.hook.timeout_s} s") from None
        except httpx.HTTPError as exc:
            # the exception text may quote the URL: only its type is kept
            raise _Retryable(f"webhook {name}: {type(exc).__name__}") from None
        status = answer.status_code
        if 200 <= status < 300:
            return
        if status >= 500 or status == 429:
            raise _Retryable(f"webhook {name}: HTTP {status}")
        raise DeliveryError(f"webhook {name}: HTTP {status} (check its url and headers)")


class _BreakerLog(pybreaker.CircuitBreakerListener):
    def __init__(self, sender: WebhookSender) -> None:
        self._sender = sender

    def state_change(
        self,
        cb: pybreaker.CircuitBreaker,
        old_state: pybreaker.CircuitBreakerState | None,
        new_state: pybreaker.CircuitBreakerState,
    ) -> None:
        if new_state.name == pybreaker.STATE_OPEN:
            self._sender.opened_at = time.monotonic()
        log.warning(
            "event=alerts_webhook_breaker webhook=%s state=%s",
            self._sender.hook.name,
            new_state.name,
        )


Connect = Callable[[], AbstractContextManager[psycopg.Connection]]


class DeliveryWorker:
    """The thread that empties one destination's part of the outbox."""

    def __init__(
        self,
        sender: Sender,
        connect: Connect,
        metrics: AlertMetrics,
        *,
        redeliver_max_s: float,
        poll_s: float = 1.0,
        batch: int = 10,
    ) -> None:
        self.sender = sender
        self._connect = connect
        self._metrics = metrics
        self._redeliver_max_s = redeliver_max_s
        self._poll_s = poll_s
        self._batch = batch
        self._lease_s = batch * sender.max_send_s + LEASE_MARGIN_S
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._last_db_error: str | None = None
        self.thread = threading.Thread(
            target=self._main, name=f"lineside-alerts-{sender.destination}", daemon=True
        )

    def start(self) -> None:
        self.thread.start()

    def wake(self) -> None:
        """Look for due rows now (new events were stored)."""
        self._wake.set()

    def request_stop(self) -> None:
        """Stop after the send under way (no further retries)."""
        self._stop.set()
        self.sender.interrupt()
        self._wake.set()

    def join(self, timeout_s: float) -> None:
        if self.thread.is_alive():
            self.thread.join(timeout_s)

    def _main(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._poll_s)
            self._wake.clear()
            if self._stop.is_set() or not self.sender.ready():
                continue
            try:
                if self.deliver_due() >= self._batch:
                    self._wake.set()  # more may be due: go on at once
            except (psycopg.Error, PoolTimeout) as exc:
                text = first_line(exc)
                if text != self._last_db_error:
                    log.warning(
                        "event=alerts_outbox_unavailable destination=%s error=%r",
                        self.sender.destination,
                        text,
                    )
                self._last_db_error = text
            except Exception:  # a bug must not end deliveries for good: log, go on
                log.exception("event=alerts_delivery_bug destination=%s", self.sender.destination)
                self._stop.wait(self._poll_s)

    def deliver_due(self) -> int:
        """Claim and send the due rows (one batch); returns how many were claimed."""
        destination = self.sender.destination
        with self._connect() as conn:
            items = claim_due(conn, destination, self._batch, self._lease_s)
        self._last_db_error = None
        for index, item in enumerate(items):
            if self._stop.is_set() or not self.sender.ready():
                with self._connect() as conn:
                    for rest in items[index:]:
                        mark_failed(conn, rest.id, "not sent: destination paused", 1.0)
                break
            try:
                self.sender.send(item)
            except DeliveryError as exc:
                retry_in_s = self.retry_delay_s(item.attempts)
                self._metrics.deliveries.labels(destination, "failed").inc()
                log.warning(
                    "event=alert_delivery_failed destination=%s event_id=%s attempt=%d "
                    "retry_in_s=%.1f error=%r",
                    destination,
                    item.event.event_id,
                    item.attempts,
                    retry_in_s,
                    str(exc),
                )
                with self._connect() as conn:
                    mark_failed(conn, item.id, str(exc), retry_in_s)
                continue
            self._metrics.deliveries.labels(destination, "ok").inc()
            log.info(
                "event=alert_delivered destination=%s event_id=%s type=%s attempt=%d",
                destination,
                item.event.event_id,
                item.event.type,
                item.attempts,
            )
            with self._connect() as conn:
                mark_delivered(conn, item.id)
        return len(items)

    def retry_delay_s(self, attempts: int) -> float:
        """Doubling from FIRST_RETRY_S, at most ``redeliver_max_s``, +-20 % jitter."""
        base = min(self._redeliver_max_s, FIRST_RETRY_S * 2 ** max(0, attempts - 1))
        return base * random.uniform(0.8, 1.2)


def first_line(error: BaseException) -> str:
    """The first line of an error's text (psycopg errors span several), for logs."""
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__
