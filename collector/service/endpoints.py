"""Answers of the collector's /healthz, /readyz and /status (served by lineside_common)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry

if TYPE_CHECKING:
    from collector.service.app import CollectorService

STUCK_AFTER_S = 30.0
"""/healthz fails when the ingest thread has not turned its loop for this long."""


@dataclass
class CollectorEndpoints:
    """Reads the running service's state; called from the HTTP server's threads."""

    service: CollectorService
    registry: CollectorRegistry = field(init=False)

    def __post_init__(self) -> None:
        self.registry = self.service.metrics.registry

    def healthz(self) -> tuple[int, dict[str, Any]]:
        """200 while the ingest thread is alive and turning, else 503 with the reason."""
        problem = self._ingest_problem()
        body: dict[str, Any] = {"alive": problem is None}
        if problem is not None:
            body["reason"] = problem
        return (200 if problem is None else 503), body

    def readyz(self) -> tuple[int, dict[str, Any]]:
        """200 when subscribed to the broker and the database takes writes."""
        reasons = []
        problem = self._ingest_problem()
        if problem is not None:
            reasons.append(problem)
        service = self.service
        if not service.subscriber.connected:
            reasons.append(f"not subscribed to the broker: {service.subscriber.last_error or ''}")
        worker = service.worker
        if not service.migrated:
            reasons.append("database schema not migrated yet (database unreachable?)")
        elif worker.last_db_error is not None:
            reasons.append(f"database: {worker.last_db_error}")
        return (200 if not reasons else 503), {"ready": not reasons, "reasons": reasons}

    def status_json(self) -> tuple[int, dict[str, Any]]:
        """The service's figures as JSON (for people and scripts)."""
        return 200, self.service.status()

    def _ingest_problem(self) -> str | None:
        thread = self.service.ingest_thread
        if thread is None or not thread.is_alive():
            return "ingest thread not running"
        idle = time.monotonic() - self.service.worker.last_tick
        if idle > STUCK_AFTER_S:
            return f"ingest thread stuck for {idle:.0f} s"
        return None
