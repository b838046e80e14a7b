"""The key-value port behaves the same in memory and on the real Redis of this machine."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from facesocial.services.sessions import SessionStore
from facesocial.store.kv import (
    KeyValue,
    MemoryKeyValue,
    MemoryRateLimiter,
    RateLimiter,
    RedisKeyValue,
    RedisRateLimiter,
    redis_client,
)
from tests.services import scratch_redis

pytestmark = pytest.mark.integration


@pytest.fixture(params=["memory", "redis"])
def stores(request: pytest.FixtureRequest) -> Iterator[tuple[KeyValue, RateLimiter]]:
    if request.param == "memory":
        yield MemoryKeyValue(), MemoryRateLimiter()
        return
    with scratch_redis() as url:
        client = redis_client(url)
        yield RedisKeyValue(client), RedisRateLimiter(client)
        client.close()


def test_values_expire_and_delete(stores: tuple[KeyValue, RateLimiter]) -> None:
    kv, _ = stores
    kv.set("face_cache:a", b"1", ttl_seconds=1)
    kv.set("face_cache:b", b"2", ttl_seconds=60)
    assert kv.get("face_cache:a") == b"1"
    assert sorted(kv.keys("face_cache:")) == ["face_cache:a", "face_cache:b"]
    time.sleep(1.2)
    assert kv.get("face_cache:a") is None
    assert kv.delete("face_cache:b", "face_cache:missing") == 1
    assert kv.ping()


def test_sessions_round_trip(stores: tuple[KeyValue, RateLimiter]) -> None:
    sessions = SessionStore(stores[0], ttl_seconds=60)
    sessions.put("s1", {"user_id": "u", "attempts": 1})
    assert sessions.get("s1") == {"user_id": "u", "attempts": 1}
    assert sessions.end("s1") and sessions.get("s1") is None


def test_gcra_burst_then_rate(stores: tuple[KeyValue, RateLimiter]) -> None:
    _, limiter = stores
    decisions = [limiter.hit("rate_limit:test:k", rate_per_second=5, burst=3) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert 0 < decisions[-1].retry_after_seconds <= 0.25
    time.sleep(0.25)
    assert limiter.hit("rate_limit:test:k", rate_per_second=5, burst=3).allowed
    assert limiter.hit("rate_limit:test:other", rate_per_second=5, burst=3).allowed
