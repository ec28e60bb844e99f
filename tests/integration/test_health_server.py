"""The health endpoint over real HTTP on loopback: every route, errors, a stuck loop."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from _service_helpers import (
    fresh_heartbeat,
    sample_status,
    start_server,
    wait_until,
    wait_until_sync,
)
from prometheus_client.parser import text_string_to_metric_families

from edge_agent.service import HealthConfig, HealthServer, HealthServerError, LoopHeartbeat
from edge_agent.status import AgentStatus, DeviceStatus

pytestmark = pytest.mark.integration


class Provider:
    """A status provider the test can change between requests."""

    def __init__(self, status: AgentStatus) -> None:
        self.status = status
        self.error: Exception | None = None
        self.calls = 0

    def __call__(self) -> AgentStatus:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return self.status


@pytest.fixture
def provider() -> Provider:
    return Provider(sample_status())


@pytest.fixture
def server(provider: Provider) -> Iterator[HealthServer]:
    server = start_server(provider)
    yield server
    server.stop()


def get(server: HealthServer, path: str, **kwargs: object) -> httpx.Response:
    assert server.url is not None
    return httpx.get(server.url + path, timeout=5, **kwargs)  # type: ignore[arg-type]


def test_healthz_is_200_while_the_loop_ticks(server: HealthServer) -> None:
    response = get(server, "/healthz")
    assert response.status_code == 200
    assert response.json()["alive"] is True
    assert response.headers["content-type"] == "application/json"


def test_readyz_is_200_when_devices_and_broker_are_up(server: HealthServer) -> None:
    response = get(server, "/readyz")
    assert response.status_code == 200
    assert response.json() == {"ready": True, "reasons": []}


def test_readyz_is_503_with_reasons(server: HealthServer, provider: Provider) -> None:
    provider.status.devices[0].connected = False
    provider.status.devices[0].last_error = "timeout"
    response = get(server, "/readyz")
    assert response.status_code == 503
    assert response.json() == {
        "ready": False,
        "reasons": ["device press-1/unit-1 disconnected: timeout"],
    }


def test_status_is_the_agent_status_as_json(server: HealthServer, provider: Provider) -> None:
    response = get(server, "/status?pretty=1")
    assert response.status_code == 200
    assert response.json() == provider.status.to_json()
    assert response.json()["buffer"]["dropped_events_total"] == {"press-1": 7, "oven": 0}


def test_unknown_route_is_404_listing_the_routes(server: HealthServer) -> None:
    response = get(server, "/nope")
    assert response.status_code == 404
    assert response.json()["routes"] == ["/healthz", "/readyz", "/status", "/metrics"]


def test_a_failing_status_provider_gives_503_not_a_crash(
    server: HealthServer, provider: Provider
) -> None:
    provider.error = RuntimeError("buffer closed")
    status = get(server, "/status")
    assert status.status_code == 503
    assert status.json() == {"error": "status unavailable: buffer closed"}
    ready = get(server, "/readyz")
    assert ready.status_code == 503
    assert ready.json()["reasons"] == ["status unavailable: buffer closed"]
    metrics = {m.name: m for m in text_string_to_metric_families(get(server, "/metrics").text)}
    assert metrics["lineside_agent_status_available"].samples[0].value == 0
    assert "lineside_agent_device_connected" not in metrics
    assert get(server, "/healthz").status_code == 200  # the process itself is fine


def test_metrics_reflect_the_status_at_scrape_time(
    server: HealthServer, provider: Provider
) -> None:
    response = get(server, "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }
    press = (("connection", "press-1"), ("device", "unit-1"), ("protocol", "modbus"))
    assert samples[("lineside_agent_device_connected", press)] == 1
    assert samples[("lineside_agent_device_read_errors_total", press)] == 3
    assert samples[("lineside_agent_events_dropped_total", (("equipment", "press-1"),))] == 7
    assert samples[("lineside_agent_buffer_depth_events", ())] == 42
    assert samples[("lineside_agent_events_confirmed_total", ())] == 4900
    assert samples[("process_resident_memory_bytes", ())] > 1_000_000
    assert samples[("process_open_fds", ())] > 0

    provider.status.devices[0].connected = False
    provider.status.devices[0].breaker = "open"
    text = get(server, "/metrics").text
    assert (
        'lineside_agent_device_connected{connection="press-1",device="unit-1",'
        'protocol="modbus"} 0.0' in text
    )
    assert (
        'lineside_agent_device_breaker_state{connection="press-1",device="unit-1",'
        'protocol="modbus",state="open"} 1.0' in text
    )


def test_metrics_speak_openmetrics_when_asked(server: HealthServer) -> None:
    response = get(server, "/metrics", headers={"Accept": "application/openmetrics-text"})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")


def test_a_port_in_use_names_the_address_and_the_config_key(provider: Provider) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = HealthServer(HealthConfig(listen=f"127.0.0.1:{port}"), provider, fresh_heartbeat())
        with pytest.raises(HealthServerError) as caught:
            server.start()
    message = str(caught.value)
    assert f"cannot listen on 127.0.0.1:{port}: address already in use" in message
    assert "health.listen" in message
    assert server.address is None


def test_a_second_agent_on_the_same_port_is_refused(server: HealthServer) -> None:
    assert server.address is not None
    listen = f"127.0.0.1:{server.address[1]}"
    second = HealthServer(HealthConfig(listen=listen), sample_status, fresh_heartbeat())
    with pytest.raises(HealthServerError, match="already in use"):
        second.start()
    assert get(server, "/healthz").status_code == 200  # the first one is unharmed


def test_an_address_not_on_this_host_is_explained(provider: Provider) -> None:
    server = HealthServer(HealthConfig(listen="192.0.2.1:9108"), provider, fresh_heartbeat())
    with pytest.raises(HealthServerError, match=r"192\.0\.2\.1:9108: this host has no such"):
        server.start()


def test_disabled_endpoint_does_not_listen(provider: Provider) -> None:
    server = HealthServer(
        HealthConfig(enabled=False, listen="127.0.0.1:0"), provider, fresh_heartbeat()
    )
    server.start()
    assert server.address is None
    server.stop()


def test_stop_closes_the_port(provider: Provider) -> None:
    server = start_server(provider)
    url = server.url
    assert url is not None
    assert httpx.get(url + "/healthz", timeout=5).status_code == 200
    server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/healthz", timeout=5)


def test_ipv6_loopback(provider: Provider) -> None:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    server = start_server(provider, listen="[::1]:0")
    try:
        assert server.url is not None
        assert server.url.startswith("http://[::1]:")
        assert get(server, "/readyz").status_code == 200
    finally:
        server.stop()


async def test_healthz_turns_503_while_the_event_loop_is_stuck(provider: Provider) -> None:
    heartbeat = LoopHeartbeat(interval_s=0.02, stale_after_s=0.3)
    heartbeat.start()
    server = start_server(provider, heartbeat)
    try:
        await wait_until(lambda: get(server, "/healthz").status_code == 200, 5, "alive")
        # Polling with a blocking client blocks this loop: the heartbeat stops ticking.
        stuck = wait_until_sync(
            lambda: (r := get(server, "/healthz")).status_code == 503 and r, 5, "stuck"
        )
        assert stuck.json()["alive"] is False
        assert stuck.json()["reason"].startswith("event loop stuck: no heartbeat for")
        ready = get(server, "/readyz")
        assert ready.status_code == 503
        assert ready.json()["reasons"][0].startswith("event loop stuck")
        # Once the loop runs again, so does the heartbeat.
        await asyncio.sleep(0.1)
        await wait_until(lambda: get(server, "/healthz").status_code == 200, 5, "alive again")
    finally:
        await heartbeat.stop()
        server.stop()


def test_healthz_is_503_before_the_heartbeat_starts(provider: Provider) -> None:
    server = start_server(provider, LoopHeartbeat())
    try:
        response = get(server, "/healthz")
        assert response.status_code == 503
        assert response.json()["reason"] == "event loop heartbeat not started"
    finally:
        server.stop()


def test_many_devices_and_concurrent_scrapes(provider: Provider) -> None:
    provider.status.devices = [
        DeviceStatus(f"conn-{i // 10}", f"unit-{i % 10}", "modbus", True, values_total=i)
        for i in range(500)
    ]
    server = start_server(provider)
    try:
        assert server.url is not None
        with (
            httpx.Client(base_url=server.url, timeout=10) as client,
            ThreadPoolExecutor(max_workers=6) as pool,
        ):
            bodies = list(pool.map(lambda _: client.get("/metrics").text, range(12)))
        assert all(body.count("lineside_agent_device_values_total{") == 500 for body in bodies)
        assert provider.calls == 12
    finally:
        server.stop()
