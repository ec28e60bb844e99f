"""A small local HTTP endpoint for a service's /healthz, /readyz, /status and /metrics.

Shared by the edge agent and the collector. A stdlib ``ThreadingHTTPServer`` in a
daemon thread, not on the service's event loop: a scrape never delays the loop, and
/healthz still answers (503) when the loop is stuck. It was also the lightest option
measured (bench/health_rss.py, 100 devices: about 3 MB of RSS, against about 7 MB for
uvicorn with Starlette, 13 MB with FastAPI).

The answers come from an :class:`Endpoints` object, called from the server's threads:
it must only read (copy counters into fresh objects), never await, lock for long or do
I/O.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import logging
import re
import socket
import socketserver
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from pydantic import BaseModel, ConfigDict, Field, field_validator

log = logging.getLogger("lineside.health")

ROUTES = ("/healthz", "/readyz", "/status", "/metrics")
_REQUEST_TIMEOUT_S = 5.0  # an idle client must not hold a server thread
_POLL_INTERVAL_S = 0.2  # how long stop() can wait for the serving loop to notice

# host:port or [ipv6]:port; the host is a name or an IP literal.
_LISTEN = re.compile(r"^(?:\[(?P<ipv6>[^\]]+)\]|(?P<host>[^:\[\]]+)):(?P<port>\d{1,5})$")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")

Answer = tuple[int, dict[str, Any]]


class HealthEndpointError(Exception):
    """The endpoint cannot start (address in use, bad address, no permission)."""


class Endpoints(Protocol):
    """What the server asks; each answer is (HTTP status, JSON body)."""

    registry: CollectorRegistry

    def healthz(self) -> Answer: ...
    def readyz(self) -> Answer: ...
    def status_json(self) -> Answer: ...


def parse_listen(text: str) -> tuple[str, int]:
    """Split ``host:port`` or ``[ipv6]:port`` into (host, port); raise ValueError if invalid.

    The returned host has no brackets (``"::1"``). Port 0 lets the OS choose.
    """
    match = _LISTEN.match(text.strip())
    if match is None:
        raise ValueError(
            f"{text!r} is not host:port (examples: 127.0.0.1:9108, [::1]:9108, 0.0.0.0:9108)"
        )
    port = int(match.group("port"))
    if port > 65535:
        raise ValueError(f"{text!r}: port {port} is out of range (0-65535)")
    if match.group("ipv6") is not None:
        host = match.group("ipv6")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{text!r}: {host!r} is not an IPv6 address") from None
        return host, port
    host = match.group("host")
    if host.replace(".", "").isdigit():
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise ValueError(f"{text!r}: {host!r} is not an IPv4 address") from None
    elif not _HOSTNAME.match(host):
        raise ValueError(f"{text!r}: {host!r} is not a valid host name")
    return host, port


class HealthEndpointConfig(BaseModel):
    """The local HTTP endpoint: /healthz, /readyz, /status, /metrics.

    Services subclass it to give ``listen`` their own default port."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(
        True, description="Serve /healthz, /readyz, /status and /metrics over HTTP"
    )
    listen: str = Field(
        "127.0.0.1:9108",
        description="host:port to listen on ([::1]:9108 for IPv6); no authentication, so "
        "keep it on loopback unless a firewall restricts who can reach it",
    )

    @field_validator("listen")
    @classmethod
    def _valid_listen(cls, value: str) -> str:
        parse_listen(value)
        return value.strip()

    @property
    def host(self) -> str:
        """The host part of ``listen``, without IPv6 brackets."""
        return parse_listen(self.listen)[0]

    @property
    def port(self) -> int:
        """The port part of ``listen``."""
        return parse_listen(self.listen)[1]


class HealthHttpServer:
    """Serves ``endpoints`` on ``listen`` (``host:port``) from a daemon thread."""

    def __init__(
        self, listen: str, endpoints: Endpoints, *, server_name: str, setting: str
    ) -> None:
        """``setting`` names the configuration key of ``listen`` for error messages."""
        self.listen = listen
        self.endpoints = endpoints
        self._server_name = server_name
        self._setting = setting
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
        """Bind and serve; raises HealthEndpointError naming the address and the setting."""
        if self._httpd is not None:
            return
        self._httpd = self._bind()
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

    def _bind(self) -> _Server:
        host, port = parse_listen(self.listen)
        try:
            family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        except socket.gaierror as exc:
            raise HealthEndpointError(
                f"health endpoint: cannot resolve {host!r} in {self._setting} "
                f"({self.listen}): {exc.strerror}"
            ) from None
        attributes = {"address_family": family, "server_version": self._server_name}
        server_class = type("_BoundServer", (_Server,), attributes)
        try:
            httpd = server_class((host, port), _Handler)
        except OSError as exc:
            raise HealthEndpointError(self._bind_message(exc)) from None
        httpd.endpoints = self.endpoints
        return httpd

    def _bind_message(self, exc: OSError) -> str:
        if exc.errno == errno.EADDRINUSE:
            why = f"address already in use (another {self._server_name} or service on that port?)"
        elif exc.errno == errno.EADDRNOTAVAIL:
            why = "this host has no such address"
        elif exc.errno == errno.EACCES:
            why = "permission denied (ports below 1024 need privileges)"
        else:
            why = exc.strerror or repr(exc)
        return f"health endpoint: cannot listen on {self.listen}: {why}; change {self._setting}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    endpoints: Endpoints
    server_version: str

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's FQDN: a reverse DNS query that can
        # hang for seconds on a line PC without working DNS. The name is never used.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = _REQUEST_TIMEOUT_S
    sys_version = ""

    @property
    def server_version(self) -> str:  # type: ignore[override]
        return self.server.server_version

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        endpoints = self.server.endpoints
        try:
            if path == "/metrics":
                encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
                self._send(200, encoder(endpoints.registry), content_type)
                return
            if path == "/healthz":
                code, body = endpoints.healthz()
            elif path == "/readyz":
                code, body = endpoints.readyz()
            elif path == "/status":
                code, body = endpoints.status_json()
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
