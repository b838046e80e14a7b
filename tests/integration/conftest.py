"""A real app on a temporary data folder, real models, driven over HTTP (TestClient)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from facesocial.api.app import create_app
from facesocial.container import Container
from facesocial.settings import Settings
from facesocial.store.tables import (
    AiOperationLog,
    DetectionRequest,
    FaceData,
    FaceGroupMember,
    RecognitionSession,
    User,
)
from tests.services import free_port, require_milvus_lite, scratch_postgres, scratch_redis, wait_healthy


@dataclass
class Api:
    client: TestClient
    container: Container
    key: str
    profile: str

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"X-API-Key": key or self.key}

    def post(
        self,
        path: str,
        *,
        files: dict | None = None,
        data: dict | None = None,
        json: dict | None = None,
        key: str | None = None,
    ) -> object:
        return self.client.post(path, files=files, data=data, json=json, headers=self.headers(key))

    def counts(self) -> dict[str, int]:
        """What is stored: rows per table and vectors in the index."""
        tables = {
            "users": User,
            "faces": FaceData,
            "members": FaceGroupMember,
            "sessions": RecognitionSession,
            "detections": DetectionRequest,
            "audit": AiOperationLog,
        }
        with self.container.database.session() as session:
            out = {
                name: int(session.scalar(select(func.count()).select_from(t)) or 0)
                for name, t in tables.items()
            }
        out["vectors"] = self.container.index.count(self.container.recognition.collection)
        return out


def make_settings(data_dir: Path, model_dir: Path | None) -> Settings:
    """The default configuration (BlazeFace when the pack is available, else dlib HOG)."""
    settings = Settings(data_dir=data_dir)
    # Limits have their own tests; here they would only make timing matter.
    settings.rate_limits.enabled = False
    settings.models.model_dir = model_dir or data_dir / "no-models"
    return settings


@dataclass(frozen=True, slots=True)
class RunningServer:
    port: int
    key: str

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def running_server(
    data_dir: Path, model_dir: Path, *, profile_name: str = "embedded", **env: str
) -> Iterator[RunningServer]:
    """A real ``facesocial serve`` (uvicorn child process) on a free loopback port, with one API
    key; ``profile_name`` as in ``profile`` (``scaled``: a scratch PostgreSQL database, Redis DB 9
    and a milvus-lite file in ``data_dir``); ``env`` adds FACESOCIAL_* settings by name."""
    with profile(profile_name, data_dir, model_dir) as settings:
        container = Container(settings)
        container.prepare()
        key = container.keys.create("test").secret
        container.close()
        port = free_port()
        environment = {
            **os.environ,
            "FACESOCIAL_DATA_DIR": str(settings.data_dir),
            "FACESOCIAL_MODELS__MODEL_DIR": str(model_dir),
            "FACESOCIAL_MODELS__AUTO_PULL": "false",
            **env,
        }
        if profile_name == "scaled":
            environment["FACESOCIAL_DATABASE_URL"] = str(settings.database_url)
            environment["FACESOCIAL_REDIS_URL"] = str(settings.redis_url)
            environment["FACESOCIAL_MILVUS_URI"] = str(settings.milvus_uri)
        server = subprocess.Popen(
            [sys.executable, "-m", "facesocial", "serve", "--port", str(port)],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_healthy(port)
            yield RunningServer(port, key)
        finally:
            server.terminate()
            server.wait(timeout=30)


@contextmanager
def profile(name: str, data_dir: Path, model_dir: Path | None) -> Iterator[Settings]:
    """``embedded``: SQLite + local index + memory. ``scaled``: PostgreSQL + Redis + Milvus."""
    settings = make_settings(data_dir, model_dir)
    if name == "embedded":
        yield settings
        return
    require_milvus_lite()
    with scratch_postgres() as database_url, scratch_redis() as redis_url:
        settings.database_url = database_url
        settings.redis_url = redis_url
        settings.milvus_uri = str(data_dir / "milvus.db")
        yield settings


@pytest.fixture(scope="package", params=["embedded", "scaled"])
def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, optional_model_dir: Path | None
) -> Iterator[Api]:
    """The black-box suite runs once per profile, over HTTP, on real stores and models."""
    with profile(request.param, tmp_path_factory.mktemp("facesocial"), optional_model_dir) as settings:
        container = Container(settings)
        container.prepare()
        key = container.keys.create("tests").secret
        with TestClient(create_app(container), raise_server_exceptions=False) as client:
            yield Api(client, container, key, request.param)
        container.close()


@pytest.fixture
def tenant(api: Api) -> Api:
    """The suite's app through an admin key of a tenant of its own, for tests whose galleries
    must hold only what they enrolled (the ``api`` fixture is shared by the whole package)."""
    return replace(api, key=api.container.keys.create(f"tenant {uuid.uuid4()}").secret)


def worker_env(settings: Settings) -> dict[str, str]:
    """The environment of a ``facesocial worker`` subprocess serving ``settings``'s stores."""
    import os

    env = dict(os.environ)
    env.update(
        {
            "FACESOCIAL_DATA_DIR": str(settings.data_dir),
            "FACESOCIAL_DATABASE_URL": settings.database_url,
            "FACESOCIAL_REDIS_URL": settings.redis_url,
            # milvus-lite serves one process per file; a Milvus server would be shared.
            "FACESOCIAL_MILVUS_URI": str(settings.data_dir / "milvus-worker.db"),
            "FACESOCIAL_JOBS__BROKER_URL": settings.jobs.broker_url,
            "FACESOCIAL_JOBS__CELERY_QUEUE": settings.jobs.celery_queue,
            "FACESOCIAL_MODELS__MODEL_DIR": str(settings.models.model_dir),
            "FACESOCIAL_MODELS__AUTO_PULL": "false",
        }
    )
    return env


@dataclass
class JobsApp:
    """An app of one profile whose jobs really run: in-process threads (embedded), or a real
    ``facesocial worker`` subprocess on a Redis broker (scaled)."""

    client: TestClient
    container: Container
    key: str
    other_key: str  # an API key of another tenant


@contextmanager
def jobs_app(
    name: str, data_dir: Path, model_dir: Path, *, broker_db: int, max_video_seconds: float
) -> Iterator[JobsApp]:
    """``profile(name)`` with a worker for the scaled profile's jobs (Redis DB ``broker_db``,
    flushed before and after; the worker is killed at the end)."""
    import os
    import signal
    import subprocess
    import sys

    import redis

    with profile(name, data_dir, model_dir) as settings:
        settings.video.max_duration_seconds = max_video_seconds
        worker = None
        if name == "scaled":
            broker = settings.redis_url.rsplit("/", 1)[0] + f"/{broker_db}"
            redis.Redis.from_url(broker).flushdb()
            settings.jobs.broker_url = broker
            settings.jobs.celery_queue = f"test_{uuid.uuid4().hex[:8]}"
        container = Container(settings)
        container.prepare()
        key = container.keys.create("tests").secret
        other = container.keys.create("another tenant").secret
        if name == "scaled":
            worker = subprocess.Popen(
                [sys.executable, "-m", "facesocial", "worker", "--concurrency", "1"],
                env=worker_env(settings),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        try:
            with TestClient(create_app(container), raise_server_exceptions=False) as client:
                yield JobsApp(client, container, key, other)
        finally:
            if worker is not None:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(10)
                redis.Redis.from_url(settings.jobs.broker_url).flushdb()
            container.close()
