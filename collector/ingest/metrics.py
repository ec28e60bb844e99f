"""Prometheus metrics of one collector process (own registry, served on /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_COMMIT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class IngestMetrics:
    """Counters and gauges of ingest; the ingest thread and the maintenance thread write."""

    def __init__(self) -> None:
        registry = self.registry = CollectorRegistry(auto_describe=True)
        self.messages = Counter(
            "lineside_collector_messages",
            "MQTT messages handled, by outcome (accepted batch or dead letter)",
            ["outcome"],
            registry=registry,
        )
        self.events = Counter(
            "lineside_collector_events",
            "Events of accepted batches, by outcome (inserted, or duplicate of a stored one)",
            ["outcome"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "lineside_collector_dead_letters",
            "Refused messages stored as dead letters, by reason",
            ["reason"],
            registry=registry,
        )
        self.acks = Counter(
            "lineside_collector_acks_published",
            "Batch confirmations published to agents, by status",
            ["status"],
            registry=registry,
        )
        self.ack_failures = Counter(
            "lineside_collector_ack_publish_failures",
            "Confirmations that could not be published (the agent sends the batch again)",
            registry=registry,
        )
        self.commit_seconds = Histogram(
            "lineside_collector_commit_seconds",
            "Time to write and commit one transaction of messages",
            buckets=_COMMIT_BUCKETS,
            registry=registry,
        )
        self.commit_events = Histogram(
            "lineside_collector_commit_events",
            "Events per committed transaction",
            buckets=(1, 10, 100, 500, 1000, 2500, 5000, 10000, 50000),
            registry=registry,
        )
        self.db_errors = Counter(
            "lineside_collector_db_errors",
            "Failed database writes (retried with backoff)",
            registry=registry,
        )
        self.db_up = Gauge(
            "lineside_collector_db_up",
            "1 when the last database write succeeded",
            registry=registry,
        )
        self.breaker_open = Gauge(
            "lineside_collector_db_breaker_open",
            "1 while the database circuit breaker is open",
            registry=registry,
        )
        self.mqtt_connected = Gauge(
            "lineside_collector_mqtt_connected",
            "1 while subscribed to the broker",
            registry=registry,
        )
        self.inbox_messages = Gauge(
            "lineside_collector_inbox_messages",
            "Messages received and not committed yet",
            registry=registry,
        )
        self.lag_seconds = Gauge(
            "lineside_collector_lag_seconds",
            "Age of the oldest message received and not committed yet (0 when none)",
            registry=registry,
        )
        self.open_gaps = Gauge(
            "lineside_collector_sequence_gaps_open",
            "Sequence gaps (missing events per agent and equipment) not closed yet",
            registry=registry,
        )
        self.pool = Gauge(
            "lineside_collector_db_pool",
            "Database pool figures (psycopg_pool get_stats)",
            ["figure"],
            registry=registry,
        )
