"""Key-value and rate-limit ports, with in-memory and Redis adapters behind each.

Key names follow design document 000 §6: ``face_cache:{user_id}`` (1 h), ``session:{id}``
(30 min), ``rate_limit:{service}:{key}``. The in-memory adapters serve the embedded profile
(one process); Redis makes caches and limits hold across several server processes.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

FACE_CACHE_TTL = 3600
SESSION_TTL = 1800


def face_cache_key(user_id: str) -> str:
    return f"face_cache:{user_id}"


def session_key(session_id: str) -> str:
    return f"session:{session_id}"


def rate_limit_key(service: str, caller: str) -> str:
    return f"rate_limit:{service}:{caller}"


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    retry_after_seconds: float  # 0 when allowed


class KeyValue(Protocol):
    def get(self, key: str) -> bytes | None: ...

    def set(self, key: str, value: bytes, ttl_seconds: int) -> None: ...

    def delete(self, *keys: str) -> int: ...

    def keys(self, pattern_prefix: str) -> list[str]: ...

    def ping(self) -> bool: ...


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
            for k in self._redis.scan_iter(f"{pattern_prefix}*")
        ]

    def ping(self) -> bool:
        try:
            return bool(self._redis.ping())
        except Exception:  # any connection problem means "not ready"
            return False


class RedisRateLimiter:
    def __init__(self, client: Any) -> None:
        self._script = client.register_script(_GCRA)

    def hit(self, key: str, rate_per_second: float, burst: int) -> Decision:
        interval_ms = 1000.0 / rate_per_second
        allowed, wait_ms = self._script(keys=[key], args=[interval_ms, burst])
        return Decision(bool(int(allowed)), max(0.0, float(wait_ms)) / 1000.0)


def redis_client(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
