"""Real outages of the scaled profile's stores while a real server serves real requests.

Redis killed for ~15 s under load: no 5xx, limits still enforced, readiness ``degraded``, and the
face cache clean afterwards. PostgreSQL cut (a TCP proxy in between) and Milvus frozen (SIGSTOP):
503 SERVICE_UNAVAILABLE with Retry-After, readiness names the store, nothing lost afterwards.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis
from sqlalchemy import exc as sa_exc

from facesocial.api.app import create_app
from facesocial.api.errors import store_unavailable
from facesocial.api.routers.health import redact_url
from facesocial.container import Container
from facesocial.settings import RateLimit, Settings
from tests.integration.conftest import make_settings
from tests.integration.outages import MilvusProcess, RedisProcess, ServerThread, TcpProxy
from tests.services import require_milvus_lite, scratch_postgres

pytestmark = pytest.mark.integration

REC = "/api/v1/face-recognition"
DETECT = "/api/v1/face-detection/detect"


def _image(data: bytes, field: str = "image") -> dict[str, tuple[str, bytes, str]]:
    return {field: ("face.jpg", data, "image/jpeg")}


@contextmanager
def running(settings: Settings) -> Iterator[tuple[ServerThread, Container, str]]:
    """A migrated container, an admin key, and a real server around them."""
    container = Container(settings)
    container.prepare()
    key = container.keys.create("degradation tests").secret
    _ = container.pipeline  # models loaded before traffic, as `serve` does
    try:
        with ServerThread(create_app(container)) as server:
            yield server, container, key
    finally:
        container.close()


def _scaled_settings(tmp_path: Path, model_dir: Path | None, database_url: str, redis_url: str) -> Settings:
    require_milvus_lite()
    settings = make_settings(tmp_path / "data", model_dir)
    settings.database_url = database_url
    settings.redis_url = redis_url
    settings.milvus_uri = str(tmp_path / "data" / "milvus.db")
    return settings


def _assert_503(response: httpx.Response, store: str) -> None:
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == "SERVICE_UNAVAILABLE"
    assert store in error["message"].lower()
    assert int(response.headers["Retry-After"]) > 0


# --- Redis --------------------------------------------------------------------------------------------


class Traffic:
    """Threads that keep detecting, verifying and identifying until stopped; every status recorded."""

    def __init__(self, base: str, keys: list[str], user: uuid.UUID, photo: bytes) -> None:
        self.base, self.keys, self.user, self.photo = base, keys, user, photo
        self.statuses: list[tuple[str, int, str | None]] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._loop, args=(kind, key), daemon=True)
            for kind, key in zip(("detect", "verify", "identify"), keys, strict=True)
        ]

    def _request(self, client: httpx.Client, kind: str, key: str) -> httpx.Response:
        headers = {"X-API-Key": key}
        if kind == "detect":
            return client.post(DETECT, headers=headers, files=_image(self.photo))
        if kind == "verify":
            data = {"user_id": str(self.user)}
            return client.post(f"{REC}/verify", headers=headers, data=data, files=_image(self.photo))
        return client.post(f"{REC}/identify", headers=headers, files=_image(self.photo))

    def _loop(self, kind: str, key: str) -> None:
        with httpx.Client(base_url=self.base, timeout=60) as client:
            while not self._stop.is_set():
                response = self._request(client, kind, key)
                code = response.json().get("error", {}).get("code") if response.status_code >= 400 else None
                with self._lock:
                    self.statuses.append((kind, response.status_code, code))
                self._stop.wait(0.1)

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)


def test_redis_outage_keeps_serving_and_leaves_no_stale_cache(
    tmp_path: Path,
    optional_model_dir: Path | None,
    astronaut_jpeg: bytes,
    astronaut_variant_jpeg: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="facesocial.store.kv")
    with RedisProcess(tmp_path / "redis") as store, scratch_postgres() as database_url:
        settings = _scaled_settings(tmp_path, optional_model_dir, database_url, store.url)
        settings.rate_limits.enabled = True
        settings.rate_limits.limits["face_recognition"] = RateLimit(rate_per_second=0.2, burst=10)
        with running(settings) as (server, container, admin):
            client = httpx.Client(base_url=server.base, timeout=60, headers={"X-API-Key": admin})
            direct = redis.Redis.from_url(store.url)

            def cache_entries() -> dict[bytes, int]:
                return {k: len(json.loads(direct.get(k) or b"[]")) for k in direct.scan_iter("face_cache:*")}

            def register(user: uuid.UUID, photo: bytes) -> None:
                response = client.post(
                    f"{REC}/register", data={"user_id": str(user), "consent": "true"}, files=_image(photo)
                )
                assert response.status_code == 200, response.text

            def faces_compared(user: uuid.UUID) -> int:
                response = client.post(
                    f"{REC}/verify", data={"user_id": str(user)}, files=_image(astronaut_jpeg)
                )
                assert response.status_code == 200, response.text
                return int(response.json()["faces_compared"])

            # Before: two users whose galleries are in Redis's face cache.
            grows, erased, steady = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
            for user in (grows, erased, steady):
                register(user, astronaut_jpeg)
            assert faces_compared(grows) == 1
            grows_key = next(iter(cache_entries()))
            assert faces_compared(erased) == 1
            erased_key = next(k for k in cache_entries() if k != grows_key)
            assert cache_entries() == {grows_key: 1, erased_key: 1}

            # Keys of the same tenant as the admin key (the steady user is enrolled there).
            tenant = container.keys.tenant_of(admin)
            thread_keys = [container.keys.create(f"traffic {i}", owner_id=tenant).secret for i in range(3)]
            outage_started = time.monotonic()
            with Traffic(server.base, thread_keys, steady, astronaut_jpeg) as traffic:
                store.kill()
                time.sleep(1.0)

                ready = client.get("/health/ready")
                assert ready.status_code == 200, ready.text
                assert ready.json()["status"] == "degraded"
                cache = ready.json()["checks"]["cache"]
                assert cache["status"] == "degraded" and cache["since"] and cache["reason"]
                assert ready.json()["checks"]["database"]["status"] == "ok"

                # Limits hold during the outage (per process, in memory): burst 10, then 429.
                burst_key = container.keys.create("burst").secret
                answers = [client.get(f"{REC}/groups", headers={"X-API-Key": burst_key}) for _ in range(20)]
                statuses = [a.status_code for a in answers]
                assert statuses[:10] == [200] * 10 and statuses.count(429) >= 8, statuses
                limited = next(a for a in answers if a.status_code == 429)
                assert (
                    limited.json()["error"]["code"] == "RATE_LIMITED"
                    and int(limited.headers["Retry-After"]) >= 1
                )

                # Writes during the outage: Redis still holds the copies they make stale.
                register(grows, astronaut_variant_jpeg)
                assert faces_compared(grows) == 2  # a miss: read from SQL
                assert client.delete(f"{REC}/users/{erased}").status_code == 200

                time.sleep(max(0.0, 15.0 - (time.monotonic() - outage_started)))
            served = Counter((kind, status) for kind, status, _ in traffic.statuses)
            assert all(status < 500 for _, status, _ in traffic.statuses), served
            for kind in ("detect", "verify", "identify"):
                assert served[(kind, 200)] >= 3, served  # kept serving all along

            # Redis returns with its data (AOF): the stale copies are there ...
            store.start()
            assert cache_entries() == {grows_key: 1, erased_key: 1}
            # ... until the server's first probe purges them, before any Redis read.
            deadline = time.monotonic() + 30
            while client.get("/health/ready").json()["checks"]["cache"]["status"] != "ok":
                assert time.monotonic() < deadline, "the server did not return to Redis"
                time.sleep(0.5)
            assert cache_entries() == {}
            assert faces_compared(grows) == 2  # a stale entry would say 1
            assert cache_entries() == {grows_key: 2}
            erased_again = client.post(
                f"{REC}/verify", data={"user_id": str(erased)}, files=_image(astronaut_jpeg)
            )
            assert (
                erased_again.status_code == 404 and erased_again.json()["error"]["code"] == "USER_NOT_FOUND"
            )
            assert client.get("/health/ready").json()["status"] == "ready"
            client.close()
            direct.close()
    messages = [r.getMessage() for r in caplog.records if r.name == "facesocial.store.kv"]
    assert sum("not answering" in m for m in messages) == 1, messages  # one WARNING per outage
    assert sum("answers again" in m for m in messages) == 1, messages


# --- PostgreSQL ---------------------------------------------------------------------------------------


def test_database_outage_answers_503_and_loses_nothing(
    tmp_path: Path, optional_model_dir: Path | None, astronaut_jpeg: bytes, astronaut_variant_jpeg: bytes
) -> None:
    with scratch_postgres() as direct_url, TcpProxy(5432) as proxy, RedisProcess(tmp_path / "redis") as store:
        database_url = direct_url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{proxy.port}/")
        settings = _scaled_settings(tmp_path, optional_model_dir, database_url, store.url)
        with running(settings) as (server, _container, admin):
            client = httpx.Client(base_url=server.base, timeout=60, headers={"X-API-Key": admin})
            before_user = uuid.uuid4()
            registered = client.post(
                f"{REC}/register",
                data={"user_id": str(before_user), "consent": "true"},
                files=_image(astronaut_jpeg),
            )
            assert registered.status_code == 200, registered.text

            proxy.cut()
            _assert_503(client.get(f"{REC}/groups"), "database")
            _assert_503(client.post(DETECT, files=_image(astronaut_jpeg)), "database")
            _assert_503(
                client.post(
                    f"{REC}/register",
                    data={"user_id": str(uuid.uuid4()), "consent": "true"},
                    files=_image(astronaut_variant_jpeg),
                ),
                "database",
            )
            ready = client.get("/health/ready")
            assert ready.status_code == 503 and ready.json()["status"] == "not_ready"
            checks = ready.json()["checks"]
            assert (
                checks["database"]["status"] == "error" and "OperationalError" in checks["database"]["reason"]
            )
            assert checks["cache"]["status"] == "ok" and checks["vector_index"]["status"] == "ok"

            proxy.restore()
            assert client.get("/health/ready").status_code == 200
            found = client.post(f"{REC}/identify", files=_image(astronaut_variant_jpeg))
            assert found.status_code == 200, found.text
            assert found.json()["candidates"][0]["user_id"] == str(before_user)
            after_user = uuid.uuid4()
            again = client.post(
                f"{REC}/register",
                data={"user_id": str(after_user), "consent": "true"},
                files=_image(astronaut_jpeg),
            )
            assert again.status_code == 200, again.text
            for user in (before_user, after_user):
                assert client.get(f"{REC}/users/{user}").status_code == 200
            client.close()


# --- Milvus -------------------------------------------------------------------------------------------


def test_vector_index_outage_answers_503(
    tmp_path: Path, optional_model_dir: Path | None, astronaut_jpeg: bytes, astronaut_variant_jpeg: bytes
) -> None:
    from facesocial.store.milvus_index import MilvusVectorIndex

    with (
        scratch_postgres() as database_url,
        RedisProcess(tmp_path / "redis") as store,
        MilvusProcess(tmp_path / "milvus") as milvus,
    ):
        settings = _scaled_settings(tmp_path, optional_model_dir, database_url, store.url)
        settings.milvus_uri = milvus.uri
        container = Container(settings)
        # The adapter's default 30 s deadline would hold each request that long: a short one.
        container.__dict__["index"] = MilvusVectorIndex(milvus.uri, timeout=2.0)
        container.prepare()
        key = container.keys.create("milvus tests").secret
        _ = container.pipeline
        try:
            with ServerThread(create_app(container)) as server:
                client = httpx.Client(base_url=server.base, timeout=60, headers={"X-API-Key": key})
                user = uuid.uuid4()
                registered = client.post(
                    f"{REC}/register",
                    data={"user_id": str(user), "consent": "true"},
                    files=_image(astronaut_jpeg),
                )
                assert registered.status_code == 200, registered.text

                milvus.freeze()
                try:
                    identify = client.post(f"{REC}/identify", files=_image(astronaut_variant_jpeg))
                    _assert_503(identify, "vector index")
                    assert client.post(DETECT, files=_image(astronaut_jpeg)).status_code == 200  # no index
                    ready = client.get("/health/ready")
                    assert ready.status_code == 503, ready.text
                    checks = ready.json()["checks"]
                    assert checks["vector_index"]["status"] == "error" and checks["vector_index"]["reason"]
                    assert checks["database"]["status"] == "ok"
                finally:
                    milvus.thaw()

                found = client.post(f"{REC}/identify", files=_image(astronaut_variant_jpeg))
                assert found.status_code == 200, found.text
                assert found.json()["candidates"][0]["user_id"] == str(user)
                assert client.get("/health/ready").status_code == 200
                client.close()
        finally:
            container.close()


# --- classification ---------------------------------------------------------------------------------


DOWN = "not answering"


def _sa(cls: type[Exception], orig: Exception, **kwargs: Any) -> Exception:
    return cls("SELECT 1", {}, orig, **kwargs)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: _sa(sa_exc.OperationalError, psycopg.OperationalError("connection refused")), DOWN),
        (lambda: _sa(sa_exc.OperationalError, sqlite3.OperationalError("database is locked")), "locked"),
        (lambda: _sa(sa_exc.InterfaceError, psycopg.InterfaceError("the connection is closed")), DOWN),
        (lambda: sa_exc.TimeoutError("QueuePool limit of size 5 overflow 10 reached"), DOWN),
        (
            lambda: _sa(sa_exc.ProgrammingError, psycopg.ProgrammingError("x"), connection_invalidated=True),
            DOWN,
        ),
        (lambda: psycopg.OperationalError("server closed the connection unexpectedly"), DOWN),
        (lambda: _sa(sa_exc.IntegrityError, psycopg.IntegrityError("duplicate key")), None),
        (lambda: _sa(sa_exc.ProgrammingError, psycopg.ProgrammingError("syntax error")), None),
        (lambda: psycopg.errors.UniqueViolation("duplicate key"), None),
        (lambda: ValueError("not a store"), None),
    ],
    ids=[
        "refused", "sqlite-locked", "closed", "pool-timeout", "invalidated", "raw-psycopg",
        "integrity", "programming", "raw-integrity", "other",
    ],
)  # fmt: skip
def test_only_connection_level_failures_become_503(make: Any, message: str | None) -> None:
    translated = store_unavailable(make())
    if message is None:
        assert translated is None
        return
    assert translated is not None and translated.status == 503 and translated.code == "SERVICE_UNAVAILABLE"
    assert message in translated.message and translated.details["retry_after"] > 0


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("postgresql://app:s3cret@db:5432/x", "postgresql://app:***@db:5432/x"),
        ("redis://:pw@cache:6379/0 refused", "redis://:***@cache:6379/0 refused"),
        ("http://milvus:19530", "http://milvus:19530"),
    ],
)
def test_readiness_reasons_hide_passwords(text: str, shown: str) -> None:
    assert redact_url(text) == shown
