"""Configuration of the agent's local health endpoint (the ``health:`` section)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lineside_common.health_http import parse_listen

__all__ = ["HealthConfig", "parse_listen"]


class HealthConfig(BaseModel):
    """The local HTTP endpoint: /healthz, /readyz, /status, /metrics."""

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
