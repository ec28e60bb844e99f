"""Metric families built from a status, parsed back as a scraper would."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from edge_agent.service.metrics import AgentStatusCollector, build_registry
from edge_agent.status import AgentStatus, BufferStatus, DeviceStatus, ForwarderStatus

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(status: AgentStatus) -> Samples:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AgentStatusCollector(lambda: status))
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def agent(**changes: object) -> AgentStatus:
    status = AgentStatus(
        agent_id="line2-pc1",
        version="0.1.0",
        config_hash="c0ffee12",
        started_at="2026-03-02T06:00:00+00:00",
        devices=[
            DeviceStatus("press-1", "unit-1", "modbus", True, "closed", 0.004, 3, 1200),
            DeviceStatus("oven", "opcua", "opcua", False, "half-open", None, 9, 77, "timeout"),
        ],
        buffer=BufferStatus(
            path="/b.sqlite",
            durability="full",
            accepting=True,
            depth_events=42,
            bytes=4096,
            max_bytes=65536,
            oldest_age_s=12.5,
            captured_events_total=5000,
            dropped_events_total={"press-1": 7, "oven": 2},
            commits_total=321,
            last_commit_s=0.002,
            quarantined_files_total=1,
        ),
        forwarder=ForwarderStatus(
            broker="broker.plant:8883",
            connected=False,
            breaker="open",
            ack_mode="collector",
            published_batches_total=50,
            published_events_total=4958,
            confirmed_events_total=4900,
            resent_batches_total=2,
            rejected_batches_total=1,
            inflight_batches=3,
            backlog_events=10,
            last_confirmation_age_s=None,
        ),
    )
    for name, value in changes.items():
        setattr(status, name, value)
    return status


PRESS = (("connection", "press-1"), ("device", "unit-1"), ("protocol", "modbus"))
OVEN = (("connection", "oven"), ("device", "opcua"), ("protocol", "opcua"))


def test_agent_info_and_start_time() -> None:
    samples = scrape(agent())
    info = (("agent_id", "line2-pc1"), ("config_hash", "c0ffee12"), ("version", "0.1.0"))
    assert samples[("lineside_agent_info", info)] == 1
    started = datetime(2026, 3, 2, 6, tzinfo=UTC).timestamp()
    assert samples[("lineside_agent_start_time_seconds", ())] == started
    assert samples[("lineside_agent_status_available", ())] == 1


def test_device_families() -> None:
    samples = scrape(agent())
    assert samples[("lineside_agent_device_connected", PRESS)] == 1
    assert samples[("lineside_agent_device_connected", OVEN)] == 0
    assert samples[("lineside_agent_device_round_trip_seconds", PRESS)] == 0.004
    assert ("lineside_agent_device_round_trip_seconds", OVEN) not in samples  # never measured
    assert samples[("lineside_agent_device_read_errors_total", OVEN)] == 9
    assert samples[("lineside_agent_device_values_total", PRESS)] == 1200


def test_breakers_are_a_state_set() -> None:
    samples = scrape(agent())
    oven = {
        state: samples[("lineside_agent_device_breaker_state", (*OVEN, ("state", state)))]
        for state in ("closed", "open", "half-open")
    }
    assert oven == {"closed": 0, "open": 0, "half-open": 1}
    forwarder = {
        state: samples[("lineside_agent_forwarder_breaker_state", (("state", state),))]
        for state in ("closed", "open", "half-open")
    }
    assert forwarder == {"closed": 0, "open": 1, "half-open": 0}


def test_buffer_families() -> None:
    samples = scrape(agent())
    expected = {
        "lineside_agent_buffer_accepting": 1,
        "lineside_agent_buffer_depth_events": 42,
        "lineside_agent_buffer_bytes": 4096,
        "lineside_agent_buffer_max_bytes": 65536,
        "lineside_agent_buffer_oldest_age_seconds": 12.5,
        "lineside_agent_buffer_last_commit_seconds": 0.002,
        "lineside_agent_buffer_commits_total": 321,
        "lineside_agent_buffer_quarantined_files_total": 1,
        "lineside_agent_events_captured_total": 5000,
    }
    assert {name: samples[(name, ())] for name in expected} == expected
    assert samples[("lineside_agent_events_dropped_total", (("equipment", "press-1"),))] == 7
    assert samples[("lineside_agent_events_dropped_total", (("equipment", "oven"),))] == 2


def test_forwarder_families() -> None:
    samples = scrape(agent())
    expected = {
        "lineside_agent_forwarder_connected": 0,
        "lineside_agent_forwarder_inflight_batches": 3,
        "lineside_agent_forwarder_backlog_events": 10,
        "lineside_agent_batches_published_total": 50,
        "lineside_agent_events_published_total": 4958,
        "lineside_agent_events_confirmed_total": 4900,
        "lineside_agent_batches_resent_total": 2,
        "lineside_agent_batches_rejected_total": 1,
    }
    assert {name: samples[(name, ())] for name in expected} == expected
    info = (("ack_mode", "collector"), ("broker", "broker.plant:8883"))
    assert samples[("lineside_agent_forwarder_info", info)] == 1
    assert ("lineside_agent_forwarder_last_confirmation_age_seconds", ()) not in samples


def test_parts_not_started_export_no_families_of_theirs() -> None:
    samples = scrape(agent(buffer=None, forwarder=None, devices=[]))
    names = {name for name, _ in samples}
    assert not any(
        n.startswith(("lineside_agent_buffer", "lineside_agent_forwarder")) for n in names
    )
    assert "lineside_agent_events_captured_total" not in names
    assert ("lineside_agent_status_available", ()) in samples


def test_a_naive_start_time_is_read_as_utc_and_garbage_is_skipped() -> None:
    naive = scrape(agent(started_at="2026-03-02T06:00:00"))
    assert (
        naive[("lineside_agent_start_time_seconds", ())]
        == datetime(2026, 3, 2, 6, tzinfo=UTC).timestamp()
    )
    assert ("lineside_agent_start_time_seconds", ()) not in scrape(agent(started_at="soon"))


def test_a_failing_provider_exports_status_unavailable() -> None:
    def broken() -> AgentStatus:
        raise RuntimeError("boom")

    registry = CollectorRegistry(auto_describe=False)
    registry.register(AgentStatusCollector(broken))
    text = generate_latest(registry).decode()
    assert "lineside_agent_status_available 0.0" in text
    assert "lineside_agent_info" not in text


def test_the_registry_adds_process_metrics_and_does_not_call_the_provider_early() -> None:
    calls: list[int] = []

    def provider() -> AgentStatus:
        calls.append(1)
        return agent()

    registry = build_registry(provider)
    assert calls == []  # registering must not scrape
    text = generate_latest(registry).decode()
    assert calls == [1]
    for name in ("process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds"):
        assert f"\n{name} " in text
    assert "python_info{" in text
