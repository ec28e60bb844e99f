"""The agent's local HTTP endpoint: /healthz, /readyz, /status and /metrics.

Served by ``lineside_common.health_http`` from a daemon thread, not on the agent's event
loop (see there). Thread safety: ``status_provider`` is called from the server's
threads, possibly while the loop is running and possibly from two requests at once. It
must only read: each part's ``status()`` copies its counters into a fresh status object
(cheap reads of ints and floats; copy dicts such as ``dropped_events_total`` with
``dict(...)`` rather than handing out the live one) and never awaits, locks for long, or
does I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from edge_agent.service.config import HealthConfig
from edge_agent.service.errors import HealthServerError
from edge_agent.service.heartbeat import LoopHeartbeat
from edge_agent.service.metrics import build_registry
from edge_agent.service.readiness import Readiness, readiness
from edge_agent.status import AgentStatus
from lineside_common.health_http import ROUTES, HealthEndpointError, HealthHttpServer

log = logging.getLogger("lineside.agent.health")

__all__ = ["ROUTES", "HealthServer"]


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
        self._http = HealthHttpServer(
            config.listen, self, server_name="lineside-agent", setting="health.listen"
        )

    @property
    def address(self) -> tuple[str, int] | None:
        """The bound (host, port) while serving (the real port when listen has port 0)."""
        return self._http.address

    @property
    def url(self) -> str | None:
        """``http://host:port`` of the running server (IPv6 hosts in brackets)."""
        return self._http.url

    def start(self) -> None:
        """Bind and serve in a daemon thread; does nothing when ``config.enabled`` is false.

        Raises HealthServerError naming the address and ``health.listen`` when the
        address cannot be bound (in use, not on this host, no permission).
        """
        if not self.config.enabled:
            log.info("event=health_disabled detail='health.enabled is false'")
            return
        try:
            self._http.start()
        except HealthEndpointError as exc:
            raise HealthServerError(str(exc)) from None

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop serving and close the socket; blocks up to ``timeout_s`` for the thread."""
        self._http.stop(timeout_s)

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
