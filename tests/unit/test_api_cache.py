"""The API's answer cache: entries valid for one fact revision, LRU and expiry in memory,
a shared Redis, and failing open (answers computed, errors counted) when Redis is away."""

from __future__ import annotations

import socket
import time
import uuid

import pytest
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from collector.api.cache import AnswerCache
from collector.api.config import CacheConfig


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_reachable() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=0.5).close()
    except OSError:
        return False
    return True


def test_an_entry_answers_only_at_its_revision() -> None:
    registry = CollectorRegistry()
    cache = AnswerCache(CacheConfig(), registry)
    assert cache.get("k", 7) is None
    cache.put("k", 7, b'{"oee":0.5}')
    assert cache.get("k", 7) == b'{"oee":0.5}'
    assert cache.get("k", 8) is None  # facts changed since: never served
    for result, count in (("miss", 1), ("hit", 1), ("stale", 1)):
        assert value(registry, "lineside_api_cache_lookups_total", result=result) == count


def test_memory_keeps_the_most_recently_used_entries_and_expires_them() -> None:
    cache = AnswerCache(CacheConfig(max_entries=2, ttl_s=0.2), CollectorRegistry())
    cache.put("a", 1, b"A")
    cache.put("b", 1, b"B")
    assert cache.get("a", 1) == b"A"  # a is now the most recent
    cache.put("c", 1, b"C")
    assert cache.get("b", 1) is None
    assert cache.get("a", 1) == b"A"
    deadline = time.monotonic() + 5
    while cache.get("c", 1) is not None:
        assert time.monotonic() < deadline, "the entry never expired"
        time.sleep(0.02)  # polling for the expiry, not synchronisation


def test_off_caches_nothing() -> None:
    cache = AnswerCache(CacheConfig(backend="off"), CollectorRegistry())
    cache.put("k", 1, b"x")
    assert not cache.enabled
    assert cache.get("k", 1) is None


def test_an_unreachable_redis_fails_open_and_is_counted() -> None:
    registry = CollectorRegistry()
    url = SecretStr(f"redis://:hunter2@127.0.0.1:{closed_port()}/0")
    cache = AnswerCache(CacheConfig(backend="redis", redis_url=url), registry)
    assert cache.may_block
    for _ in range(5):
        cache.put("k", 1, b"x")  # no exception: the answer was computed anyway
        assert cache.get("k", 1) is None
    assert value(registry, "lineside_api_cache_errors_total", operation="get") == 5
    assert value(registry, "lineside_api_cache_errors_total", operation="put") == 5
    assert value(registry, "lineside_api_cache_lookups_total", result="error") == 5


@pytest.mark.skipif(not redis_reachable(), reason="no Redis on 127.0.0.1:6379")
def test_redis_is_shared_between_caches() -> None:
    config = CacheConfig(backend="redis", redis_url=SecretStr("redis://127.0.0.1:6379/0"))
    writer = AnswerCache(config, CollectorRegistry())
    reader = AnswerCache(config, CollectorRegistry())
    key = f"test-{uuid.uuid4()}"
    writer.put(key, 3, b'{"a":1}')
    assert reader.get(key, 3) == b'{"a":1}'
    assert reader.get(key, 4) is None
