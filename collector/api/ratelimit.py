"""Request rate limits per token and per client address, on top of the ``limits`` library.

Strategy: moving window. It is exact (no burst of twice the limit across a window
boundary, as a fixed window allows) and its Retry-After is the moment the oldest counted
request leaves the window, so refused clients come back spread out instead of all at the
next window start. It keeps one timestamp per counted request, which is small at API rates.

The limiter fails open: when the storage (Redis) fails, requests are allowed, counted in
``lineside_api_ratelimit_errors_total`` and logged at most once a minute; after a failure
the storage is left alone for a few seconds, so a dead Redis does not cost every request a
timeout. (A plain timestamp, not pybreaker: pybreaker holds its lock during the call and
would serialise every request behind one Redis round trip.)
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import Literal
from urllib.parse import urlsplit

import limits
from limits.errors import StorageError
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from prometheus_client import REGISTRY, CollectorRegistry, Counter

from collector.api.auth_config import RateLimitConfig

log = logging.getLogger(__name__)

LimitKind = Literal["token", "client"]
_REDIS_SCHEMES = ("redis", "rediss", "redis+unix", "valkey", "valkeys", "valkey+unix")
_WARN_EVERY_S = 60.0

# one counter per registry: several limiters (tests, reloads) share it instead of failing
# with "Duplicated timeseries"
_counters: weakref.WeakKeyDictionary[CollectorRegistry, Counter] = weakref.WeakKeyDictionary()
_counters_lock = threading.Lock()


def _errors_counter(registry: CollectorRegistry) -> Counter:
    with _counters_lock:
        counter = _counters.get(registry)
        if counter is None:
            counter = Counter(
                "lineside_api_ratelimit_errors",
                "Requests let through without a rate limit check because the rate-limit "
                "storage failed (fail open)",
                ["kind"],
                registry=registry,
            )
            _counters[registry] = counter
        return counter


class RateLimiter:
    """Counts requests per (kind, key) and says how long to wait once a limit is reached."""

    def __init__(
        self,
        config: RateLimitConfig,
        *,
        registry: CollectorRegistry | None = None,
        namespace: str = "lineside-api",
        pause_after_error_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        url = config.storage_url.get_secret_value()
        options: dict[str, float | str | bool] = {}
        if urlsplit(url).scheme in _REDIS_SCHEMES:
            # a blackholed Redis must cost a fraction of a second, not the OS TCP timeout
            options = {
                "socket_timeout": config.storage_timeout_s,
                "socket_connect_timeout": config.storage_timeout_s,
            }
        # wrap_exceptions: every backend failure arrives as limits.errors.StorageError
        self._storage = storage_from_string(url, wrap_exceptions=True, **options)
        self._strategy = MovingWindowRateLimiter(self._storage)
        self._limits: dict[str, list[limits.RateLimitItem]] = {
            "token": limits.parse_many(config.per_token),
            "client": limits.parse_many(config.per_client),
        }
        self._namespace = namespace
        self._storage_name = _without_credentials(url)
        self._pause_after_error_s = pause_after_error_s
        self._paused_until = float("-inf")
        self._errors = _errors_counter(REGISTRY if registry is None else registry)
        self._clock = clock
        self._log_lock = threading.Lock()
        self._next_warning = float("-inf")
        self._suppressed = 0

    def __repr__(self) -> str:
        return f"RateLimiter(storage={self._storage_name})"

    @property
    def may_block(self) -> bool:
        """True when counting can wait on the network (a storage other than memory)."""
        return not self._storage_name.startswith("memory://")

    def check(self, kind: LimitKind, key: str) -> float | None:
        """Count one request of ``key``; None if allowed, else the seconds until it would be.

        ``kind`` is "token" or "client" and picks the configured limits. Every limit is
        counted until one refuses, so a client that keeps knocking while refused stays
        refused.
        """
        items = self._limits[kind]
        if self._clock() < self._paused_until:
            self._failed_open(kind, None)
            return None
        try:
            return self._hit_all(items, kind, key)
        except (StorageError, OSError) as exc:
            self._paused_until = self._clock() + self._pause_after_error_s
            self._failed_open(kind, exc)
            return None

    def _hit_all(self, items: list[limits.RateLimitItem], kind: str, key: str) -> float | None:
        for item in items:
            if not self._strategy.hit(item, self._namespace, kind, key):
                stats = self._strategy.get_window_stats(item, self._namespace, kind, key)
                # limits counts in wall-clock time (time.time), so compare with that
                return max(0.0, stats.reset_time - time.time())
        return None

    def _failed_open(self, kind: str, exc: BaseException | None) -> None:
        self._errors.labels(kind).inc()
        with self._log_lock:
            now = self._clock()
            if now < self._next_warning:
                self._suppressed += 1
                return
            suppressed, self._suppressed = self._suppressed, 0
            self._next_warning = now + _WARN_EVERY_S
        cause = exc.storage_error if isinstance(exc, StorageError) else exc
        error = "paused_after_error" if cause is None else type(cause).__name__
        # the type only: a storage error's text may quote a URL with its password
        log.warning(
            "event=api_ratelimit_storage_error storage=%s error=%s action=allow_unchecked "
            "suppressed_since_last=%d",
            self._storage_name,
            error,
            suppressed,
        )


def retry_after_s(wait_s: float) -> int:
    """Whole seconds for a Retry-After header: rounded up, at least 1."""
    return max(1, int(-(-wait_s // 1)))


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"
