"""The ``api`` section of the collector configuration: listen address, auth, limits, cache."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from collector.api.auth_config import AuthConfig, RateLimitConfig


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class CacheConfig(_Section):
    """Cache of OEE answers. An answer is served from the cache only while the facts
    behind it are unchanged (checked on every request), so it is never stale."""

    backend: Literal["memory", "redis", "off"] = Field(
        "memory",
        description="memory: per API process; redis: shared by every API process "
        "(redis_url); off: always compute",
    )
    redis_url: SecretStr | None = Field(
        None, description="redis://host:6379/0 when backend is redis. Never logged"
    )
    max_entries: int = Field(10_000, ge=1, description="Most answers kept (memory backend)")
    ttl_s: float = Field(
        3600.0, gt=0, description="How long an answer is kept at most (it is checked anyway)"
    )

    @model_validator(mode="after")
    def _redis_needs_url(self) -> CacheConfig:
        if self.backend == "redis" and self.redis_url is None:
            raise ValueError("cache.backend is redis but cache.redis_url is not set")
        return self


class ApiConfig(_Section):
    """The HTTP API (``oee-collector serve``, or inside ``run`` with ``serve_with_ingest``)."""

    listen: str = Field(
        "127.0.0.1:8080",
        description="host:port of the API; put a TLS-terminating reverse proxy in front of it "
        "when it is reached from other hosts",
    )
    serve_with_ingest: bool = Field(
        False,
        description="Also serve the API inside `oee-collector run` (one process for both); "
        "false: run `oee-collector serve` separately",
    )
    workers: int = Field(
        1, ge=1, le=64, description="API worker processes of `oee-collector serve`"
    )
    pool_size: int = Field(
        4, ge=1, le=64, description="Database connections per API process (read-only queries)"
    )
    docs: bool = Field(
        True, description="Serve the OpenAPI UI at /docs and the spec at /openapi.json"
    )
    auth: AuthConfig | None = Field(
        None, description="Token verification (required to serve the API)"
    )
    rate_limit: RateLimitConfig = Field(
        default_factory=RateLimitConfig, description="Requests per token and per client address"
    )
    cache: CacheConfig = Field(default_factory=CacheConfig, description="OEE answer cache")
