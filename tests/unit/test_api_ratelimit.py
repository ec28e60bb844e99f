"""Rate limits: config checks, the moving window, Retry-After, fail-open, a real Redis."""

from __future__ import annotations

import logging
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from collector.api.auth_config import RateLimitConfig
from collector.api.ratelimit import RateLimiter, retry_after_s

REDIS_URL = "redis://127.0.0.1:6379/0"


def _limiter(registry: CollectorRegistry | None = None, **fields: Any) -> RateLimiter:
    return RateLimiter(
        RateLimitConfig.model_validate(fields), registry=registry or CollectorRegistry()
    )


def _errors(registry: CollectorRegistry, kind: str) -> float:
    value = registry.get_sample_value("lineside_api_ratelimit_errors_total", {"kind": kind})
    return value or 0.0


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- configuration ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"per_token": "100/sec0nd"}, "per_token\n  Value error, '100/sec0nd' is not a rate limit"),
        ({"per_client": ""}, "per_client\n  Value error, '' is not a rate limit"),
        ({"storage_url": "memcached://h:11211"}, "scheme 'memcached' is not supported"),
        ({"storage_url": "async+redis://h"}, "scheme 'async+redis' is not supported"),
        ({"storage_url": "nonsense"}, "scheme '' is not supported"),
        ({"storage_timeout_s": 0}, "storage_timeout_s"),
    ],
)
def test_bad_rate_limit_config_is_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        RateLimitConfig.model_validate(fields)
    assert message in str(caught.value)


def test_defaults_and_redis_urls_are_accepted_and_the_password_stays_hidden() -> None:
    assert RateLimitConfig().storage_url.get_secret_value() == "memory://"
    config = RateLimitConfig(storage_url="redis://:pa55word@redis:6379/1")  # type: ignore[arg-type]
    assert "pa55word" not in repr(config)
    assert RateLimitConfig.model_json_schema()["properties"]["storage_url"]["default"] == (
        "memory://"
    )
    with pytest.raises(ValidationError) as caught:
        RateLimitConfig.model_validate({"storage_url": "memcached://:pa55word@h:1"})
    assert "pa55word" not in str(caught.value)


@pytest.mark.parametrize(
    ("wait_s", "header"), [(0.0, 1), (0.001, 1), (0.999, 1), (1.0, 1), (1.2, 2), (59.01, 60)]
)
def test_retry_after_is_rounded_up_to_at_least_one_second(wait_s: float, header: int) -> None:
    assert retry_after_s(wait_s) == header


# -- the window -------------------------------------------------------------------------


def test_the_request_after_the_limit_is_refused_with_a_wait() -> None:
    limiter = _limiter(per_token="3/minute")
    assert [limiter.check("token", "jti:a") for _ in range(3)] == [None, None, None]
    wait = limiter.check("token", "jti:a")
    assert wait is not None
    assert 55 < wait <= 60
    assert limiter.check("token", "jti:b") is None  # keys are counted apart
    assert limiter.check("client", "jti:a") is None  # and kinds too


def test_every_limit_of_a_list_applies() -> None:
    limiter = _limiter(per_client="100/second;2/hour")
    assert limiter.check("client", "10.0.0.1") is None
    assert limiter.check("client", "10.0.0.1") is None
    wait = limiter.check("client", "10.0.0.1")
    assert wait is not None
    assert wait > 3000  # the hour limit refused, not the second


def test_the_window_moves_on() -> None:
    limiter = _limiter(per_token="2/second")
    assert limiter.check("token", "k") is None
    assert limiter.check("token", "k") is None
    wait = limiter.check("token", "k")
    assert wait is not None
    assert 0 < wait <= 1
    deadline = time.monotonic() + 5
    while limiter.check("token", "k") is not None:
        assert time.monotonic() < deadline, "the window never moved on"
        time.sleep(0.02)


def test_several_limiters_share_one_registry_without_duplicate_errors() -> None:
    registry = CollectorRegistry()
    _limiter(registry)
    _limiter(registry)
    RateLimiter(RateLimitConfig())  # the global registry, twice
    RateLimiter(RateLimitConfig())


# -- failing storage: fail open ---------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_dead_redis_fails_open_counts_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = CollectorRegistry()
    clock = _Clock()
    url = f"redis://:hunter2-password@127.0.0.1:{_closed_port()}/0"
    config = RateLimitConfig(per_token="1/minute", storage_url=url)  # type: ignore[arg-type]
    limiter = RateLimiter(config, registry=registry, clock=clock)
    assert "hunter2" not in repr(limiter)
    with caplog.at_level(logging.WARNING, logger="collector.api.ratelimit"):
        assert [limiter.check("token", "k") for _ in range(3)] == [None, None, None]
        assert limiter.check("client", "10.0.0.1") is None
        assert _errors(registry, "token") == 3
        assert _errors(registry, "client") == 1
        assert len(caplog.records) == 1
        first = caplog.records[0].getMessage()
        assert "error=ConnectionError" in first
        assert f"storage=redis://127.0.0.1:{url.rsplit(':', 1)[1]}" in first

        clock.now += 61  # past the pause and the warning interval: the storage is tried again
        assert limiter.check("token", "k") is None
        assert len(caplog.records) == 2
        second = caplog.records[1].getMessage()
        assert "error=ConnectionError" in second
        assert "suppressed_since_last=3" in second
    assert "hunter2" not in caplog.text


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never answers (a hung Redis)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield server.getsockname()[1]


def test_a_hung_redis_costs_only_the_timeout(silent_server: int) -> None:
    registry = CollectorRegistry()
    limiter = _limiter(
        registry, storage_url=f"redis://127.0.0.1:{silent_server}/0", storage_timeout_s=0.2
    )
    started = time.monotonic()
    assert limiter.check("token", "k") is None
    assert time.monotonic() - started < 2
    assert _errors(registry, "token") == 1
    started = time.monotonic()
    assert limiter.check("token", "k") is None  # paused: not even a connection attempt
    assert time.monotonic() - started < 0.1


# -- a real Redis -----------------------------------------------------------------------


def _redis_or_skip() -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping()
    except redis.RedisError:
        pytest.skip("no Redis at 127.0.0.1:6379")


def test_workers_sharing_redis_share_the_counts() -> None:
    _redis_or_skip()
    config = RateLimitConfig(per_token="2/minute", storage_url=REDIS_URL)  # type: ignore[arg-type]
    namespace = f"lineside-test-{uuid.uuid4().hex}"  # unique: keys of other runs never count
    registry = CollectorRegistry()
    worker_a = RateLimiter(config, registry=registry, namespace=namespace)
    worker_b = RateLimiter(config, registry=registry, namespace=namespace)
    assert worker_a.check("token", "jti:x") is None
    assert worker_b.check("token", "jti:x") is None
    wait = worker_a.check("token", "jti:x")
    assert wait is not None
    assert 0 < wait <= 60
    assert worker_b.check("token", "jti:x") is not None
    assert _errors(registry, "token") == 0
