"""The agent's local HTTP endpoint: /healthz, /readyz, /status and /metrics.

Runs a stdlib ``ThreadingHTTPServer`` in a daemon thread, not on the agent's event
loop: a scrape never delays the loop, and /healthz still answers (503) when the loop
is stuck. It was also the lightest option measured (bench/health_rss.py, 100 devices:
about 3 MB of RSS, against about 7 MB for uvicorn with Starlette, 13 MB with FastAPI).

Thread safety: ``status_provider`` is called from the server's threads, possibly
while the loop is running and possibly from two requests at once. It must only read:
each part's ``status()`` copies its counters into a fresh status object (cheap reads of
ints and floats; copy dicts such as ``dropped_events_total`` with ``dict(...)`` rather
than handing out the live one) and never awaits, locks for long, or does I/O.
"""

from __future__ import annotations

import errno
import json
import logging
import socket
import socketserver
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client.exposition import choose_encoder

from edge_agent.service.config import HealthConfig
from edge_agent.service.errors import HealthServerError
from edge_agent.service.heartbeat import LoopHeartbeat
from edge_agent.service.metrics import build_registry
from edge_agent.service.readiness import Readiness, readiness
from edge_agent.status import AgentStatus

log = logging.getLogger("lineside.agent.health")

ROUTES = ("/healthz", "/readyz", "/status", "/metrics")
_REQUEST_TIMEOUT_S = 5.0  # an idle client must not hold a server thread
_POLL_INTERVAL_S = 0.2  # how long stop() can wait for the serving loop to notice


class HealthServer:
    """Serves the agent's health, readiness, status and metrics on ``config.listen``.

    Wiring::

        heartbeat = LoopHeartbeat()
        heartbeat.start()                      # on the agent's loop
        server = HealthServer(config.health, agent.status, heartbeat)
        server.start()                         # raises HealthServerError if it cannot bind
        ...
        await asyncio.to_thread(server.stop)   # stop() joins the server thread
    """

    def __init__(
        self,
        config: HealthConfig,
        status_provider: Callable[[], AgentStatus],
        heartbeat: LoopHeartbeat,
    ) -> None:
        self.config = config
        self.status_provider = status_provider
        self.heartbeat = heartbeat
        self.registry = build_registry(status_provider)
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int] | None:
        """The bound (host, port) while serving (the real port when listen has port 0)."""
        if self._httpd is None:
            return None
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str | None:
        """``http://host:port`` of the running server (IPv6 hosts in brackets)."""
        if self.address is None:
            return None
        host, port = self.address
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def start(self) -> None:
        """Bind and serve in a daemon thread; does nothing when ``config.enabled`` is false.

        Raises HealthServerError naming the address and ``health.listen`` when the
        address cannot be bound (in use, not on this host, no permission).
        """
        if not self.config.enabled:
            log.info("event=health_disabled detail='health.enabled is false'")
            return
        if self._httpd is not None:
            return
        self._httpd = _bind(self.config, self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": _POLL_INTERVAL_S},
            name="lineside-health",
            daemon=True,
        )
        self._thread.start()
        log.info("event=health_listening url=%s", self.url)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop serving and close the socket; blocks up to ``timeout_s`` for the thread."""
        httpd, thread = self._httpd, self._thread
        self._httpd, self._thread = None, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if thread is not None:
            thread.join(timeout_s)
        log.info("event=health_stopped")

    def __enter__(self) -> HealthServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- responses (called from server threads) ------------------------------------------

    def healthz(self) -> tuple[int, dict[str, Any]]:
        """200 while the event loop ticks, 503 (with the reason) when it does not."""
        problem = self._loop_problem()
        age = self.heartbeat.age_s()
        body: dict[str, Any] = {
            "alive": problem is None,
            "loop_heartbeat_age_s": None if age is None else round(age, 3),
        }
        if problem is not None:
            body["reason"] = problem
        return (200 if problem is None else 503), body

    def readyz(self) -> tuple[int, dict[str, Any]]:
        """200 when ready (see readiness()), else 503 with the reasons."""
        problem = self._loop_problem()
        try:
            verdict = readiness(self.status_provider())
        except Exception as exc:
            log.warning("event=status_unavailable route=/readyz error=%r", exc)
            verdict = Readiness(False, [f"status unavailable: {exc}"])
        if problem is not None:
            verdict = Readiness(False, [problem, *verdict.reasons])
        return (200 if verdict.ready else 503), verdict.to_json()

    def status_json(self) -> tuple[int, dict[str, Any]]:
        """200 with AgentStatus.to_json(), 503 when the provider fails."""
        try:
            return 200, self.status_provider().to_json()
        except Exception as exc:
            log.warning("event=status_unavailable route=/status error=%r", exc)
            return 503, {"error": f"status unavailable: {exc}"}

    def _loop_problem(self) -> str | None:
        age = self.heartbeat.age_s()
        if age is None:
            return "event loop heartbeat not started"
        if age > self.heartbeat.stale_after_s:
            return (
                f"event loop stuck: no heartbeat for {age:.1f} s "
                f"(limit {self.heartbeat.stale_after_s:g} s)"
            )
        return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    health: HealthServer

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's FQDN: a reverse DNS query that can
        # hang for seconds on a line PC without working DNS. The name is never used.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = _REQUEST_TIMEOUT_S
    server_version = "lineside-agent"
    sys_version = ""

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        health = self.server.health
        try:
            if path == "/metrics":
                encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
                self._send(200, encoder(health.registry), content_type)
                return
            if path == "/healthz":
                code, body = health.healthz()
            elif path == "/readyz":
                code, body = health.readyz()
            elif path == "/status":
                code, body = health.status_json()
            else:
                code, body = 404, {"error": f"no route {path}", "routes": list(ROUTES)}
        except Exception as exc:
            log.exception("event=health_request_failed path=%s", path)
            code, body = 500, {"error": f"internal error: {exc!r}"}
        self._send(code, json.dumps(body).encode(), "application/json")

    def _send(self, code: int, payload: bytes, content_type: str) -> None:
        self.send_response(code, HTTPStatus(code).phrase)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("event=health_request client=%s detail=%r", self.client_address[0], format % args)


def _bind(config: HealthConfig, health: HealthServer) -> _Server:
    host, port = config.host, config.port
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as exc:
        raise HealthServerError(
            f"health endpoint: cannot resolve {host!r} in health.listen "
            f"({config.listen}): {exc.strerror}"
        ) from None
    server_class = type("_BoundServer", (_Server,), {"address_family": family})
    try:
        httpd = server_class((host, port), _Handler)
    except OSError as exc:
        raise HealthServerError(_bind_message(config.listen, exc)) from None
    httpd.health = health
    return httpd


def _bind_message(listen: str, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        why = "address already in use (another edge-agent or service on that port?)"
    elif exc.errno == errno.EADDRNOTAVAIL:
        why = "this host has no such address"
    elif exc.errno == errno.EACCES:
        why = "permission denied (ports below 1024 need privileges)"
    else:
        why = exc.strerror or repr(exc)
    return f"health endpoint: cannot listen on {listen}: {why}; change health.listen"
