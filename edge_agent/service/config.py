"""Configuration of the agent's local health endpoint (the ``health:`` section)."""

from __future__ import annotations

from lineside_common.health_http import HealthEndpointConfig, parse_listen

__all__ = ["HealthConfig", "parse_listen"]


class HealthConfig(HealthEndpointConfig):
    """The local HTTP endpoint: /healthz, /readyz, /status, /metrics."""
