"""`edge-agent status` against a real running health server (typer CliRunner)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from _service_helpers import sample_status, start_server
from typer.testing import CliRunner

from edge_agent.service import HealthServer
from edge_agent.service.status_cli import app
from edge_agent.status import AgentStatus

pytestmark = pytest.mark.integration

runner = CliRunner()


@pytest.fixture
def agent_status() -> AgentStatus:
    return sample_status()


@pytest.fixture
def server(agent_status: AgentStatus) -> Iterator[HealthServer]:
    server = start_server(lambda: agent_status)
    yield server
    server.stop()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env={"COLUMNS": "200", "NO_COLOR": "1"})
    return result.exit_code, result.stdout, result.stderr


def test_ready_agent_prints_tables_and_exits_0(server: HealthServer) -> None:
    assert server.url is not None
    code, out, _ = run("--url", server.url)
    assert code == 0, out
    assert "agent line2-pc1  version 0.1.0  config c0ffee12" in out
    for text in ("press-1", "unit-1", "modbus", "4.0", "oven", "opcua", "up"):
        assert text in out
    assert "/var/lib/lineside/agent/buffer.sqlite" in out
    assert "4.0 MiB of 64.0 MiB (6%)" in out
    assert "press-1 7" in out  # dropped per equipment (zeros left out)
    assert "broker.plant:8883" in out
    assert "4900 events" in out
    assert out.rstrip().endswith("ready")


def test_not_ready_agent_lists_reasons_and_exits_1(
    server: HealthServer, agent_status: AgentStatus
) -> None:
    agent_status.devices[1].connected = False
    agent_status.devices[1].breaker = "open"
    agent_status.devices[1].last_error = "BadSessionIdInvalid [retrying]"
    assert server.url is not None
    code, out, _ = run("--url", server.url + "/")
    assert code == 1, out
    assert "down" in out
    assert "not ready" in out
    assert "device oven/opcua disconnected: BadSessionIdInvalid [retrying]" in out


def test_json_prints_the_raw_status(server: HealthServer, agent_status: AgentStatus) -> None:
    assert server.url is not None
    code, out, _ = run("--url", server.url, "--json")
    assert code == 0
    assert json.loads(out) == agent_status.to_json()


def test_json_still_exits_1_when_not_ready(server: HealthServer, agent_status: AgentStatus) -> None:
    agent_status.forwarder.connected = False  # type: ignore[union-attr]
    agent_status.buffer.accepting = False  # type: ignore[union-attr]
    assert server.url is not None
    code, out, _ = run("--url", server.url, "--json")
    assert code == 1
    assert json.loads(out)["buffer"]["accepting"] is False


def test_no_agent_answering_exits_2_with_a_hint() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago and is closed now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code, out, err = run("--url", f"http://127.0.0.1:{port}", "--timeout", "2")
    assert code == 2
    assert out == ""
    assert f"no agent answering on 127.0.0.1:{port}: is edge-agent running? " in err
    assert "systemctl status edge-agent" in err


def test_something_else_on_the_port_exits_2() -> None:
    class NotAnAgent(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<html>router login</html>")

        def log_message(self, *args: object) -> None:
            pass

    httpd = HTTPServer(("127.0.0.1", 0), NotAnAgent)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        code, _, err = run("--url", f"http://127.0.0.1:{httpd.server_address[1]}")
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert code == 2
    assert "/status answered HTTP 200 without agent JSON" in err


def test_a_failing_status_provider_is_shown_and_not_ready() -> None:
    def broken() -> AgentStatus:
        raise RuntimeError("buffer closed")

    server = start_server(broken)
    try:
        assert server.url is not None
        code, out, _ = run("--url", server.url)
    finally:
        server.stop()
    assert code == 1
    assert "status: status unavailable: buffer closed" in out
