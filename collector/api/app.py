"""The FastAPI application of the collector's HTTP API.

``create_app`` builds one per process from the collector configuration: a read-only
connection pool, the master data (reloaded on change), the answer cache and the
token verifier and rate limiter. Health endpoints and metrics are open; everything
under /api/v1 needs a bearer token (roles and sites per route).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout

from collector import api as _api_package
from collector.api import routes_alerts, routes_equipment, routes_oee, routes_ops
from collector.api.auth import TokenVerifier
from collector.api.cache import AnswerCache
from collector.api.context import ApiContext
from collector.api.ratelimit import RateLimiter
from collector.api.security import ApiSecurity
from collector.config import CollectorConfig
from collector.service.masterdata_source import MasterDataSource

log = logging.getLogger(__name__)


# How long a request waits for a database connection before it is answered 503 (the
# pool's default, 30 s, kept requests and their threads hanging while the database was down)
_POOL_WAIT_S = 5.0


def _configure_connection(conn: psycopg.Connection) -> None:
    # OEE reads are many short queries over partitions: JIT compilation (on by default
    # above a cost the partition estimates easily reach) cost ~100 ms per query here
    conn.execute("SET jit = off")


class ApiConfigError(ValueError):
    """The configuration cannot serve the API (named field and fix)."""


def create_app(
    config: CollectorConfig,
    database_url: str,
    *,
    registry: CollectorRegistry = REGISTRY,
    masterdata: MasterDataSource | None = None,
) -> FastAPI:
    """The API application; the pool opens on startup and closes on shutdown."""
    api = config.api
    if api.auth is None:
        raise ApiConfigError(
            "api.auth is not set: the API needs token verification (see docs/api.md)"
        )
    connect_timeout = max(1, round(config.database.connect_timeout_s))
    pool = ConnectionPool(
        database_url,
        min_size=1,
        max_size=api.pool_size,
        kwargs={"autocommit": True, "connect_timeout": connect_timeout},
        open=False,
        name="api",
        configure=_configure_connection,
        timeout=_POOL_WAIT_S,
    )
    async_pool = AsyncConnectionPool(
        database_url,
        min_size=1,
        max_size=2,
        kwargs={"autocommit": True, "connect_timeout": connect_timeout},
        open=False,
        name="api-async",
        timeout=_POOL_WAIT_S,
    )
    limiter = RateLimiter(api.rate_limit, registry=registry) if api.rate_limit.enabled else None
    ctx = ApiContext(
        pool=pool,
        async_pool=async_pool,
        masterdata=masterdata or MasterDataSource(config.masterdata_file, registry=registry),
        cache=AnswerCache(api.cache, registry=registry),
        security=ApiSecurity(TokenVerifier(api.auth), limiter),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        pool.open(wait=False)
        await async_pool.open(wait=False)
        try:
            yield
        finally:
            await async_pool.close()
            pool.close()

    app = FastAPI(
        title="Lineside OEE API",
        version="1",
        description=(_api_package.__doc__ or "")
        + " Authenticate with `Authorization: Bearer <token>` "
        "(`oee-collector token create`).",
        docs_url="/docs" if api.docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if api.docs else None,
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    for module in (routes_oee, routes_equipment, routes_ops, routes_alerts):
        app.include_router(module.build_router(ctx))

    @app.get("/healthz", tags=["health"], summary="Alive (no authentication)")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], summary="Ready: the database answers")
    def readyz() -> Response:
        try:
            with pool.connection(timeout=2.0) as conn:
                conn.execute("SELECT 1")
        except (psycopg.Error, PoolTimeout) as exc:
            return JSONResponse(
                {"status": "unavailable", "reason": f"database: {type(exc).__name__}"}, 503
            )
        return JSONResponse({"status": "ok"})

    @app.get("/metrics", tags=["health"], summary="Prometheus metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.exception_handler(PoolTimeout)
    @app.exception_handler(psycopg.OperationalError)
    async def database_down(_request: Request, exc: Exception) -> JSONResponse:
        log.warning("event=api_database_unavailable error=%s", type(exc).__name__)
        return JSONResponse(
            {"detail": "the database is not reachable; try again shortly"},
            status_code=503,
            headers={"Retry-After": "5"},
        )

    return app
