"""The key-value port behaves the same in memory and on the real Redis of this machine."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from facesocial.services.sessions import SessionStore
from facesocial.store.kv import (
    KeyValue,
    MemoryKeyValue,
    MemoryRateLimiter,
    RateLimiter,
    RedisCircuit,
    RedisKeyValue,
    RedisRateLimiter,
    ResilientKeyValue,
    ResilientRateLimiter,
    StoreHealth,
    face_cache_key,
    redis_client,
    session_key,
)
from tests.integration.outages import RedisProcess
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


# --- Redis outages: the resilient wrappers ----------------------------------------------------------


class CountingClient:
    """The real client, counting the commands that reach it (the circuit must spare them)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr) or name in ("close", "register_script"):
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return attr(*args, **kwargs)

        return counted


def test_resilient_contract_on_a_live_redis(tmp_path: Path) -> None:
    """While Redis answers, the wrappers behave exactly like the Redis adapters."""
    with RedisProcess(tmp_path / "redis") as server:
        circuit = RedisCircuit(redis_client(server.url))
        kv = ResilientKeyValue(RedisKeyValue(circuit.client), MemoryKeyValue(), circuit)
        limiter = ResilientRateLimiter(RedisRateLimiter(circuit.client), MemoryRateLimiter(), circuit)
        test_values_expire_and_delete((kv, limiter))
        test_sessions_round_trip((kv, limiter))
        test_gcra_burst_then_rate((kv, limiter))
        assert kv.health() == StoreHealth("ok", "redis")
        circuit.close()


def test_outage_falls_back_then_purges_the_face_cache_on_recovery(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="facesocial.store.kv")
    server = RedisProcess(tmp_path / "redis")
    server.start()
    try:
        counting = CountingClient(redis_client(server.url))
        circuit = RedisCircuit(counting, retry_seconds=0.5)
        kv = ResilientKeyValue(RedisKeyValue(counting), MemoryKeyValue(), circuit)
        limiter = ResilientRateLimiter(RedisRateLimiter(counting), MemoryRateLimiter(), circuit)
        kv.set(face_cache_key("u1"), b"two faces", 600)
        kv.set(face_cache_key("u2"), b"one face", 600)
        kv.set(session_key("s1"), b"step 1", 600)

        server.kill()
        # A write during the outage: the entry in Redis can no longer be dropped.
        kv.delete(face_cache_key("u1"))
        health = kv.health()
        assert health.status == "degraded" and health.reason and health.reason.startswith("ConnectionError")
        assert health.since is not None and health.fallback
        # Reads of the face cache miss, writes go nowhere; sessions and limits live in memory.
        calls = counting.calls
        assert kv.get(face_cache_key("u2")) is None
        kv.set(face_cache_key("u3"), b"x", 600)
        assert kv.get(face_cache_key("u3")) is None
        kv.set(session_key("s2"), b"local", 600)
        assert kv.get(session_key("s2")) == b"local"
        decisions = [limiter.hit("rate_limit:test:k", rate_per_second=1, burst=3) for _ in range(5)]
        assert [d.allowed for d in decisions] == [True, True, True, False, False]
        assert counting.calls == calls, "the open circuit must not call Redis"

        server.start()  # AOF: the stale face_cache:u1 comes back with it
        direct = redis.Redis.from_url(server.url)
        assert direct.get(face_cache_key("u1")) == b"two faces"
        time.sleep(0.6)  # the circuit's wait is over: the next call probes
        assert kv.get(face_cache_key("u1")) is None  # purged before the first Redis read
        assert direct.get(face_cache_key("u2")) is None
        assert direct.get(session_key("s1")) == b"step 1"  # only volatile keys are purged
        assert kv.get(session_key("s1")) == b"step 1"  # back on Redis
        assert kv.health().status == "ok"
        assert limiter.hit("rate_limit:test:k", rate_per_second=1, burst=3).allowed  # Redis's own bucket
        direct.close()
        circuit.close()
    finally:
        server.kill()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    infos = [r for r in caplog.records if r.levelno == logging.INFO and "answers again" in r.message]
    assert len(warnings) == 1 and "per process" in warnings[0].message  # once per outage
    assert len(infos) == 1 and "purged 2 face cache entries" in infos[0].message


def test_failed_probe_keeps_the_circuit_open(tmp_path: Path) -> None:
    with RedisProcess(tmp_path / "redis") as server:
        counting = CountingClient(redis_client(server.url))
        circuit = RedisCircuit(counting, retry_seconds=0.3)
        kv = ResilientKeyValue(RedisKeyValue(counting), MemoryKeyValue(), circuit)
        server.kill()
        assert kv.get(session_key("a")) is None  # trips
        calls = counting.calls
        for _ in range(50):
            kv.get(session_key("a"))
        assert counting.calls == calls
        time.sleep(0.35)
        kv.get(session_key("a"))  # one probe (PING, with one reconnect attempt), refused
        assert counting.calls == calls + 1 and circuit.is_down
        for _ in range(50):
            kv.get(session_key("a"))
        assert counting.calls == calls + 1  # the next wait started with the failed probe
        circuit.close()


@pytest.mark.parametrize("raw", [b"not json", b'[{"face_id": "x"}]', b'[{"face_id": 1, "collection": "c"}]'])
def test_unreadable_face_cache_entry_is_a_miss(stores: tuple[KeyValue, RateLimiter], raw: bytes) -> None:
    from facesocial.services.face_cache import FaceCache

    kv, _ = stores
    user = uuid.uuid4()
    kv.set(face_cache_key(str(user)), raw, 60)
    assert FaceCache(kv).get(user) is None
    assert kv.get(face_cache_key(str(user))) is None  # dropped: the next read refills from SQL
