"""Key-value and rate-limit ports, with in-memory and Redis adapters behind each.

Key names follow design document 000 §6: ``face_cache:{user_id}`` (1 h), ``session:{id}``
(30 min), ``rate_limit:{service}:{key}``. The in-memory adapters serve the embedded profile
(one process); Redis makes caches and limits hold across several server processes.

When Redis stops answering, the scaled profile keeps serving: :class:`ResilientKeyValue` and
:class:`ResilientRateLimiter` switch to this process's memory (see :class:`RedisCircuit` for the
rules and why the face cache is handled differently from sessions and limits).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, TypeVar

log = logging.getLogger(__name__)

FACE_CACHE_TTL = 3600
SESSION_TTL = 1800
FACE_CACHE_PREFIX = "face_cache:"

# Derived caches: entries that a write elsewhere can make wrong (see RedisCircuit).
VOLATILE_PREFIXES = (FACE_CACHE_PREFIX,)

# Redis answers a cache or GCRA call in well under a millisecond; a second without an answer is an
# outage, and the circuit breaker makes sure only one request every RETRY_SECONDS pays it.
REDIS_SOCKET_TIMEOUT = 1.0
REDIS_RETRY_SECONDS = 5.0

T = TypeVar("T")


def face_cache_key(user_id: str) -> str:
    return f"{FACE_CACHE_PREFIX}{user_id}"


def session_key(session_id: str) -> str:
    return f"session:{session_id}"


def rate_limit_key(service: str, caller: str) -> str:
    return f"rate_limit:{service}:{caller}"


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    retry_after_seconds: float  # 0 when allowed


@dataclass(frozen=True, slots=True)
class StoreHealth:
    """What readiness reports for the cache: ``ok``, or ``degraded`` with the fallback in use."""

    status: Literal["ok", "degraded"]
    backend: str  # "memory" or "redis"
    fallback: str | None = None  # what serves while degraded
    since: datetime | None = None  # UTC start of the outage
    reason: str | None = None  # exception class and first line of the last failure

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": self.status, "backend": self.backend}
        if self.status == "degraded":
            body["fallback"] = self.fallback
            body["since"] = self.since.isoformat() if self.since else None
            body["reason"] = self.reason
        return body


class KeyValue(Protocol):
    def get(self, key: str) -> bytes | None: ...

    def set(self, key: str, value: bytes, ttl_seconds: int) -> None: ...

    def delete(self, *keys: str) -> int: ...

    def keys(self, pattern_prefix: str) -> list[str]: ...

    def ping(self) -> bool: ...

    def health(self) -> StoreHealth: ...


class RateLimiter(Protocol):
    def hit(self, key: str, rate_per_second: float, burst: int) -> Decision: ...


# --- in-memory --------------------------------------------------------------------------------------


class MemoryKeyValue:
    def __init__(self) -> None:
        self._data: dict[str, tuple[bytes, float]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            item = self._data.get(key)
            if item is None or item[1] <= time.monotonic():
                self._data.pop(key, None)
                return None
            return item[0]

    def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        with self._lock:
            self._data[key] = (value, time.monotonic() + ttl_seconds)

    def delete(self, *keys: str) -> int:
        with self._lock:
            return sum(1 for key in keys if self._data.pop(key, None) is not None)

    def keys(self, pattern_prefix: str) -> list[str]:
        now = time.monotonic()
        with self._lock:
            return [
                k for k, (_, expiry) in self._data.items() if k.startswith(pattern_prefix) and expiry > now
            ]

    def ping(self) -> bool:
        return True

    def health(self) -> StoreHealth:
        return StoreHealth("ok", "memory")


class MemoryRateLimiter:
    """GCRA (a token bucket without a refill timer): ``burst`` at once, then ``rate`` per second."""

    def __init__(self) -> None:
        self._tat: dict[str, float] = {}  # theoretical arrival time per key
        self._lock = threading.Lock()

    def hit(self, key: str, rate_per_second: float, burst: int) -> Decision:
        interval = 1.0 / rate_per_second
        now = time.monotonic()
        with self._lock:
            tat = max(self._tat.get(key, now), now)
            allow_at = tat + interval - burst * interval
            if now < allow_at:
                return Decision(False, allow_at - now)
            self._tat[key] = tat + interval
            if len(self._tat) > 10_000:  # forget buckets that are full again (long-lived process)
                self._tat = {k: v for k, v in self._tat.items() if v > now}
            return Decision(True, 0.0)


# --- Redis ----------------------------------------------------------------------------------------------

# The same GCRA, atomically in Redis, on Redis's clock so that every process agrees.
_GCRA = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allow_at = tat + interval - burst * interval
if now < allow_at then
  return {0, allow_at - now}
end
redis.call('SET', KEYS[1], tat + interval, 'PX', math.ceil(burst * interval) + 1000)
return {1, 0}
"""


def _glob_escape(text: str) -> str:
    """Make a literal prefix safe inside a Redis MATCH pattern."""
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


class RedisKeyValue:
    def __init__(self, client: Any) -> None:
        self._redis = client

    def get(self, key: str) -> bytes | None:
        value = self._redis.get(key)
        return None if value is None else bytes(value)

    def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        self._redis.set(key, value, ex=ttl_seconds)

    def delete(self, *keys: str) -> int:
        return int(self._redis.delete(*keys)) if keys else 0

    def keys(self, pattern_prefix: str) -> list[str]:
        return [
            k.decode() if isinstance(k, bytes) else str(k)
            for k in self._redis.scan_iter(match=f"{_glob_escape(pattern_prefix)}*", count=1000)
        ]

    def delete_prefix(self, prefix: str, batch: int = 500) -> int:
        """Remove every key starting with ``prefix``: SCAN (never KEYS) and UNLINK in batches.

        Neither blocks Redis on a large keyspace; keys written during the scan may survive.
        """
        removed = 0
        pending: list[Any] = []
        for key in self._redis.scan_iter(match=f"{_glob_escape(prefix)}*", count=1000):
            pending.append(key)
            if len(pending) >= batch:
                removed += int(self._redis.unlink(*pending))
                pending.clear()
        if pending:
            removed += int(self._redis.unlink(*pending))
        return removed

    def ping(self) -> bool:
        try:
            return bool(self._redis.ping())
        except Exception:  # any connection problem means "not ready"
            return False

    def health(self) -> StoreHealth:
        return StoreHealth("ok", "redis")


class RedisRateLimiter:
    def __init__(self, client: Any) -> None:
        self._script = client.register_script(_GCRA)

    def hit(self, key: str, rate_per_second: float, burst: int) -> Decision:
        interval_ms = 1000.0 / rate_per_second
        allowed, wait_ms = self._script(keys=[key], args=[interval_ms, burst])
        return Decision(bool(int(allowed)), max(0.0, float(wait_ms)) / 1000.0)


def redis_client(url: str, timeout_seconds: float = REDIS_SOCKET_TIMEOUT) -> Any:
    """A client that gives up quickly: one immediate reconnect on a broken connection, no backoff.

    The single retry re-dials a pooled connection that died with a Redis restart. Timeouts are not
    retried, and more retries would only multiply the wait during an outage: the circuit breaker
    (:class:`RedisCircuit`) decides when to try again.
    """
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis.from_url(
        url,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        retry=Retry(NoBackoff(), 1, supported_errors=(redis.exceptions.ConnectionError,)),
    )


def _outage_errors() -> tuple[type[BaseException], ...]:
    """Failures that mean "Redis is not serving", as opposed to a bug in how we call it."""
    from redis import exceptions as rex

    return (
        rex.ConnectionError,  # refused, reset, auth, loading after a restart, pool exhausted
        rex.TimeoutError,
        rex.ReadOnlyError,  # a failed-over primary that became a replica
        rex.ClusterDownError,
        rex.TryAgainError,
        rex.OutOfMemoryError,  # maxmemory reached with noeviction: writes refused
        OSError,  # socket errors that escape the client's own wrapping
    )


def _describe(exc: BaseException) -> str:
    """Class and first line of an error: enough to diagnose, nothing from a URL's credentials."""
    first = (str(exc).strip().splitlines() or [""])[0][:200]
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


class RedisCircuit:
    """Whether to talk to Redis right now: a small circuit breaker shared by the cache and limits.

    * Closed (``ok``): every call goes to Redis.
    * A call fails with an outage error (:func:`_outage_errors`): the circuit opens (one WARNING
      per outage). For ``retry_seconds`` nobody calls Redis, so requests do not each wait for the
      socket timeout; the wrappers serve from this process's memory.
    * After that, one request (or a readiness probe) probes: PING, then delete every volatile
      key (``face_cache:*``, SCAN + UNLINK in batches). Only when both succeed does the circuit
      close again (one INFO); otherwise it stays open for another ``retry_seconds``.

    Why purge: the face cache holds copies of SQL rows. A write during the outage (an erasure, a new
    face) could not delete the copy in Redis, in this process or in any other one, so every copy in
    Redis may be stale. Purging before the first Redis read makes the next read come from SQL.
    Purging everything (not just the keys this process failed to drop) covers the other
    processes' writes, which this process cannot know about.
    """

    def __init__(
        self,
        client: Any,
        *,
        retry_seconds: float = REDIS_RETRY_SECONDS,
        volatile_prefixes: tuple[str, ...] = VOLATILE_PREFIXES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.retry_seconds = retry_seconds
        self.volatile_prefixes = volatile_prefixes
        self.errors = _outage_errors()
        self._keys = RedisKeyValue(client)
        self._clock = clock
        self._lock = threading.Lock()
        self._down_since: datetime | None = None  # None: closed
        self._retry_at = 0.0
        self._probing = False
        self._reason: str | None = None
        self._dropped = 0  # volatile deletes skipped during this outage (for the log)

    @property
    def is_down(self) -> bool:
        return self._down_since is not None

    def available(self) -> bool:
        """True when the caller should use Redis now; may run the recovery probe inline."""
        with self._lock:
            if self._down_since is None:
                return True
            if self._probing or self._clock() < self._retry_at:
                return False
            self._probing = True
        return self._recover()

    def failed(self, exc: BaseException) -> None:
        """Open the circuit after an outage error (idempotent while it is open)."""
        with self._lock:
            self._retry_at = self._clock() + self.retry_seconds
            self._reason = _describe(exc)
            if self._down_since is not None:
                return
            self._down_since = datetime.now(UTC)
            self._dropped = 0
        log.warning(
            "Redis is not answering (%s): serving from this process's memory until it does "
            "(face cache reads miss, sessions are local, rate limits are per process); next try in %.0f s",
            self._reason,
            self.retry_seconds,
        )

    def note_dropped(self) -> None:
        with self._lock:
            self._dropped += 1

    def check(self) -> StoreHealth:
        """Readiness: PING when closed, try to recover when the wait is over, then report."""
        if self._down_since is None:
            try:
                self.client.ping()
            except self.errors as exc:
                self.failed(exc)
        else:
            self.available()
        return self.health()

    def health(self) -> StoreHealth:
        with self._lock:
            if self._down_since is None:
                return StoreHealth("ok", "redis")
            return StoreHealth(
                "degraded",
                "redis",
                fallback="in-process memory (per-process rate limits and sessions; face cache off)",
                since=self._down_since,
                reason=self._reason,
            )

    def close(self) -> None:
        self.client.close()

    def _recover(self) -> bool:
        started = self._clock()
        try:
            self.client.ping()
            purged = sum(self._keys.delete_prefix(prefix) for prefix in self.volatile_prefixes)
        except Exception as exc:  # any failure (not only outage errors) keeps the circuit open
            with self._lock:
                self._probing = False
                self._retry_at = self._clock() + self.retry_seconds
                self._reason = _describe(exc)
            log.debug("Redis still not answering: %s", self._reason)
            return False
        with self._lock:
            since, dropped = self._down_since, self._dropped
            self._down_since, self._probing, self._reason = None, False, None
        outage = (datetime.now(UTC) - since).total_seconds() if since else 0.0
        log.info(
            "Redis answers again after %.1f s: purged %d face cache entries (%d drops were skipped "
            "during the outage) in %.2f s; back on Redis",
            outage,
            purged,
            dropped,
            self._clock() - started,
        )
        return True


def _volatile(key: str, prefixes: tuple[str, ...]) -> bool:
    return key.startswith(prefixes)


class ResilientKeyValue:
    """Redis while it answers, this process's memory while it does not (see :class:`RedisCircuit`).

    During an outage, volatile keys (``face_cache:*``) are not kept at all: reads miss, writes are
    dropped. A local copy would go stale as soon as another process changes that user, and the
    Redis copies are purged on recovery anyway. Other keys (sessions) live in local memory during
    the outage and are not copied back: a multi-step flow that spans the recovery starts over.
    """

    def __init__(self, primary: RedisKeyValue, fallback: KeyValue, circuit: RedisCircuit) -> None:
        self._primary = primary
        self._fallback = fallback
        self._circuit = circuit

    def _call(self, use_redis: Callable[[], T], use_memory: Callable[[], T]) -> T:
        if not self._circuit.available():
            return use_memory()
        try:
            return use_redis()
        except self._circuit.errors as exc:
            self._circuit.failed(exc)
            return use_memory()

    def get(self, key: str) -> bytes | None:
        if _volatile(key, self._circuit.volatile_prefixes):
            return self._call(lambda: self._primary.get(key), lambda: None)
        return self._call(lambda: self._primary.get(key), lambda: self._fallback.get(key))

    def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        if _volatile(key, self._circuit.volatile_prefixes):
            self._call(lambda: self._primary.set(key, value, ttl_seconds), lambda: None)
            return
        self._call(
            lambda: self._primary.set(key, value, ttl_seconds),
            lambda: self._fallback.set(key, value, ttl_seconds),
        )

    def delete(self, *keys: str) -> int:
        def in_memory() -> int:
            if any(_volatile(k, self._circuit.volatile_prefixes) for k in keys):
                self._circuit.note_dropped()
            return self._fallback.delete(*keys)

        return self._call(lambda: self._primary.delete(*keys), in_memory)

    def keys(self, pattern_prefix: str) -> list[str]:
        return self._call(
            lambda: self._primary.keys(pattern_prefix), lambda: self._fallback.keys(pattern_prefix)
        )

    def ping(self) -> bool:
        return self.health().status == "ok"

    def health(self) -> StoreHealth:
        return self._circuit.check()


class ResilientRateLimiter:
    """Redis's shared GCRA while it answers; a per-process GCRA during an outage.

    Per process means that N server processes together admit up to N times the limit until Redis
    is back: the limits still hold per process, and no request fails because Redis did.
    """

    def __init__(self, primary: RateLimiter, fallback: RateLimiter, circuit: RedisCircuit) -> None:
        self._primary = primary
        self._fallback = fallback
        self._circuit = circuit

    def hit(self, key: str, rate_per_second: float, burst: int) -> Decision:
        if self._circuit.available():
            try:
                return self._primary.hit(key, rate_per_second, burst)
            except self._circuit.errors as exc:
                self._circuit.failed(exc)
        return self._fallback.hit(key, rate_per_second, burst)
