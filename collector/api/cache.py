"""Cache of API answers (rendered JSON), validated by the facts' revision.

An entry keeps the fact revision it was computed at (``collector.queries.revisions``);
a lookup passes the current revision and gets the entry only when they match, so a late
event, a replayed backlog or a master-data edit (part of the key) is never answered
from before. The cache fails open: when Redis is down or slow, answers are computed
(a breaker stops asking Redis for a while) and ``lineside_api_cache_errors_total``
counts what went wrong.
"""

from __future__ import annotations

import logging
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol, TypeVar

import pybreaker
from prometheus_client import REGISTRY, CollectorRegistry, Counter

from collector.api.config import CacheConfig

log = logging.getLogger(__name__)

_REVISION = struct.Struct(">q")
T = TypeVar("T")
_REDIS_PREFIX = "lineside:api:"


class _Backend(Protocol):
    def get(self, key: str) -> bytes | None: ...
    def put(self, key: str, value: bytes, ttl_s: float) -> None: ...


class _MemoryBackend:
    """LRU dict with expiry, for one API process."""

    def __init__(self, max_entries: int) -> None:
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] < time.monotonic():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def put(self, key: str, value: bytes, ttl_s: float) -> None:
        with self._lock:
            self._entries[key] = (time.monotonic() + ttl_s, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)


class _RedisBackend:
    """Shared by every API process; short timeouts so a sick Redis costs little."""

    def __init__(self, url: str) -> None:
        import redis  # only needed with this backend

        self._client = redis.Redis.from_url(
            url, socket_timeout=0.05, socket_connect_timeout=0.1, health_check_interval=30
        )

    def get(self, key: str) -> bytes | None:
        value = self._client.get(_REDIS_PREFIX + key)
        return None if value is None else bytes(value)  # type: ignore[arg-type]

    def put(self, key: str, value: bytes, ttl_s: float) -> None:
        self._client.set(_REDIS_PREFIX + key, value, px=max(1, int(ttl_s * 1000)))


class AnswerCache:
    """Rendered answers by key, each valid for one fact revision."""

    def __init__(self, config: CacheConfig, registry: CollectorRegistry = REGISTRY) -> None:
        self._ttl_s = config.ttl_s
        self._backend: _Backend | None
        if config.backend == "memory":
            self._backend = _MemoryBackend(config.max_entries)
        elif config.backend == "redis":
            assert config.redis_url is not None
            self._backend = _RedisBackend(config.redis_url.get_secret_value())
        else:
            self._backend = None
        # Redis only: pybreaker holds one lock for the whole call, so wrapping the memory
        # backend would serialise every lookup of the process for nothing
        self._breaker = (
            pybreaker.CircuitBreaker(fail_max=3, reset_timeout=10)
            if isinstance(self._backend, _RedisBackend)
            else None
        )
        self.lookups = Counter(
            "lineside_api_cache_lookups",
            "OEE cache lookups by result (hit, miss, stale: facts changed since, error)",
            ["result"],
            registry=registry,
        )
        self.errors = Counter(
            "lineside_api_cache_errors",
            "Cache operations that failed (the answer was computed instead: fail open)",
            ["operation"],
            registry=registry,
        )

    @property
    def enabled(self) -> bool:
        return self._backend is not None

    @property
    def may_block(self) -> bool:
        """True when a lookup waits on the network (Redis): call it off the event loop."""
        return isinstance(self._backend, _RedisBackend)

    def get(self, key: str, revision: int) -> bytes | None:
        """The answer stored for ``key`` at ``revision``; None otherwise (or on errors)."""
        if self._backend is None:
            return None
        try:
            value = self._call(self._backend.get, key)
        except Exception as exc:  # fail open: any backend trouble means "compute it"
            self._failed("get", exc)
            self.lookups.labels("error").inc()
            return None
        if value is None:
            self.lookups.labels("miss").inc()
            return None
        if _REVISION.unpack_from(value)[0] != revision:
            self.lookups.labels("stale").inc()
            return None
        self.lookups.labels("hit").inc()
        return value[_REVISION.size :]

    def put(self, key: str, revision: int, body: bytes) -> None:
        """Keep ``body`` as the answer for ``key`` at ``revision`` (errors are counted)."""
        if self._backend is None:
            return
        try:
            self._call(self._backend.put, key, _REVISION.pack(revision) + body, self._ttl_s)
        except Exception as exc:
            self._failed("put", exc)

    def _call(self, method: Callable[..., T], *args: object) -> T:
        return method(*args) if self._breaker is None else self._breaker.call(method, *args)

    def _failed(self, operation: str, exc: Exception) -> None:
        self.errors.labels(operation).inc()
        if not isinstance(exc, pybreaker.CircuitBreakerError):
            log.warning(
                "event=api_cache_error operation=%s error=%s action=compute_answer",
                operation,
                type(exc).__name__,
            )
