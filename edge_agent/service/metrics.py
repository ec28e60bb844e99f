"""Prometheus metrics built from an :class:`AgentStatus` at scrape time.

The agent keeps its counters as plain numbers in its parts; nothing is registered or
incremented in prometheus_client on the hot path. At each scrape the collector asks
the status provider once and turns the snapshot into metric families.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector, CollectorRegistry

from edge_agent.status import AgentStatus, BreakerState, BufferStatus, ForwarderStatus

log = logging.getLogger("lineside.agent.health")

PREFIX = "lineside_agent"
BREAKER_STATES: tuple[BreakerState, ...] = ("closed", "open", "half-open")
DEVICE_LABELS = ["connection", "device", "protocol"]


class AgentStatusCollector(Collector):
    """Builds the ``lineside_agent_*`` families from ``status_provider()`` per scrape.

    ``status_provider`` is called from the scraping thread (see HealthServer). When it
    raises, only ``lineside_agent_status_available 0`` is exported and the error logged.
    """

    def __init__(self, status_provider: Callable[[], AgentStatus]) -> None:
        self._status_provider = status_provider

    def collect(self) -> Iterator[Metric]:
        """Yield the metric families of one status snapshot."""
        available = GaugeMetricFamily(
            f"{PREFIX}_status_available", "1 when the agent's status could be read at scrape"
        )
        try:
            status = self._status_provider()
        except Exception as exc:
            log.warning("event=status_unavailable route=/metrics error=%r", exc)
            available.add_metric([], 0)
            yield available
            return
        available.add_metric([], 1)
        yield available
        yield from agent_families(status)


def agent_families(status: AgentStatus) -> Iterator[Metric]:
    """All ``lineside_agent_*`` families of one status (pure)."""
    info = InfoMetricFamily(PREFIX, "The running agent: id, version, config hash")
    info.add_metric(
        ["agent_id", "version", "config_hash"],
        {"agent_id": status.agent_id, "version": status.version, "config_hash": status.config_hash},
    )
    yield info
    started = _epoch_s(status.started_at)
    if started is not None:
        yield GaugeMetricFamily(
            f"{PREFIX}_start_time_seconds", "Agent start, Unix time", value=started
        )
    yield from _device_families(status)
    if status.buffer is not None:
        yield from _buffer_families(status.buffer)
    if status.forwarder is not None:
        yield from _forwarder_families(status.forwarder)


def _device_families(status: AgentStatus) -> Iterator[Metric]:
    connected = GaugeMetricFamily(
        f"{PREFIX}_device_connected", "1 when the PLC link is up", labels=DEVICE_LABELS
    )
    breaker = GaugeMetricFamily(
        f"{PREFIX}_device_breaker_state",
        "Circuit breaker of the PLC link: 1 for the current state (state set)",
        labels=[*DEVICE_LABELS, "state"],
    )
    rtt = GaugeMetricFamily(
        f"{PREFIX}_device_round_trip_seconds",
        "Duration of the last request to the PLC",
        labels=DEVICE_LABELS,
    )
    errors = CounterMetricFamily(
        f"{PREFIX}_device_read_errors", "Failed reads since start", labels=DEVICE_LABELS
    )
    values = CounterMetricFamily(
        f"{PREFIX}_device_values", "Values read or received since start", labels=DEVICE_LABELS
    )
    for device in status.devices:
        labels = [device.connection, device.device, device.protocol]
        connected.add_metric(labels, 1 if device.connected else 0)
        for state in BREAKER_STATES:
            breaker.add_metric([*labels, state], 1 if device.breaker == state else 0)
        if device.last_round_trip_s is not None:
            rtt.add_metric(labels, device.last_round_trip_s)
        errors.add_metric(labels, device.read_errors_total)
        values.add_metric(labels, device.values_total)
    yield from (connected, breaker, rtt, errors, values)


def _buffer_families(buffer: BufferStatus) -> Iterator[Metric]:
    yield _gauge("buffer_accepting", "1 when the buffer can commit events", int(buffer.accepting))
    yield _gauge("buffer_depth_events", "Events in the buffer", buffer.depth_events)
    yield _gauge("buffer_bytes", "Size of the buffer file", buffer.bytes)
    yield _gauge("buffer_max_bytes", "Size bound of the buffer", buffer.max_bytes)
    if buffer.oldest_age_s is not None:
        yield _gauge(
            "buffer_oldest_age_seconds", "Age of the oldest buffered event", buffer.oldest_age_s
        )
    if buffer.last_commit_s is not None:
        yield _gauge(
            "buffer_last_commit_seconds", "Duration of the last group commit", buffer.last_commit_s
        )
    yield _counter("buffer_commits", "Group commits since start", buffer.commits_total)
    yield _counter(
        "buffer_quarantined_files",
        "Corrupt buffer files moved aside",
        buffer.quarantined_files_total,
    )
    yield _counter(
        "events_captured",
        "Events committed to the buffer since start",
        buffer.captured_events_total,
    )
    dropped = CounterMetricFamily(
        f"{PREFIX}_events_dropped",
        "Events dropped by the buffer's size or age bound, per equipment",
        labels=["equipment"],
    )
    for equipment, count in sorted(buffer.dropped_events_total.items()):
        dropped.add_metric([equipment], count)
    yield dropped


def _forwarder_families(forwarder: ForwarderStatus) -> Iterator[Metric]:
    info = InfoMetricFamily(f"{PREFIX}_forwarder", "The MQTT forwarder: broker and ack mode")
    info.add_metric(
        ["broker", "ack_mode"], {"broker": forwarder.broker, "ack_mode": forwarder.ack_mode}
    )
    yield info
    yield _gauge("forwarder_connected", "1 when connected to the broker", int(forwarder.connected))
    breaker = GaugeMetricFamily(
        f"{PREFIX}_forwarder_breaker_state",
        "Circuit breaker of the broker link: 1 for the current state (state set)",
        labels=["state"],
    )
    for state in BREAKER_STATES:
        breaker.add_metric([state], 1 if forwarder.breaker == state else 0)
    yield breaker
    yield _gauge(
        "forwarder_inflight_batches", "Batches awaiting confirmation", forwarder.inflight_batches
    )
    yield _gauge(
        "forwarder_backlog_events",
        "Events from before the current broker session still to be replayed",
        forwarder.backlog_events,
    )
    if forwarder.last_confirmation_age_s is not None:
        yield _gauge(
            "forwarder_last_confirmation_age_seconds",
            "Time since the last confirmation",
            forwarder.last_confirmation_age_s,
        )
    yield _counter("batches_published", "Batches published", forwarder.published_batches_total)
    yield _counter("events_published", "Events published", forwarder.published_events_total)
    yield _counter(
        "events_confirmed",
        "Events deleted from the buffer after confirmation",
        forwarder.confirmed_events_total,
    )
    yield _counter("batches_resent", "Batches published again", forwarder.resent_batches_total)
    yield _counter("batches_rejected", "Batches rejected", forwarder.rejected_batches_total)


def build_registry(status_provider: Callable[[], AgentStatus]) -> CollectorRegistry:
    """A registry with the agent's collector and the process, platform and GC collectors.

    A private registry (not prometheus_client's global one), so that several servers
    in one process (tests) do not collide.
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AgentStatusCollector(status_provider))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", documentation, value=value)


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(f"{PREFIX}_{name}", documentation, value=value)


def _epoch_s(iso: str) -> float | None:
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return None
    if moment.tzinfo is None:  # started_at is UTC by contract
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
