"""Real PostgreSQL and Redis on this machine for the scaled-profile tests (skip if absent)."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

PG_ADMIN_URL = os.environ.get("FACESOCIAL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("FACESOCIAL_TEST_REDIS", "redis://127.0.0.1:6379/9")


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def require_postgres() -> None:
    if not _answers("127.0.0.1", 5432):
        pytest.skip("PostgreSQL does not answer on 127.0.0.1:5432 (.ci/run starts it)")


def require_redis() -> None:
    if not _answers("127.0.0.1", 6379):
        pytest.skip("Redis does not answer on 127.0.0.1:6379 (.ci/run starts it)")


def require_milvus_lite() -> None:
    pytest.importorskip("milvus_lite", reason="milvus-lite is not installed (pip install '.[milvus]')")


@contextmanager
def scratch_postgres() -> Iterator[str]:
    """A new, empty database; dropped afterwards. Yields a plain postgresql:// URL."""
    import psycopg

    require_postgres()
    name = f"fs_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
            )
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')


@contextmanager
def scratch_redis() -> Iterator[str]:
    """Redis database 9, emptied before and after (tests own that database)."""
    import redis

    require_redis()
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    try:
        yield REDIS_URL
    finally:
        client.flushdb()
        client.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(port: int, timeout_seconds: float = 120) -> None:
    """Poll a `facesocial serve` process on loopback until /health answers."""
    import time

    import httpx

    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.3)
    raise AssertionError(f"server on port {port} did not start")
