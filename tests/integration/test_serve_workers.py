"""`facesocial serve --workers N`: refused where processes cannot share state, working where they can."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from facesocial.cli import app
from tests.integration.outages import MilvusProcess, RedisProcess
from tests.services import free_port, scratch_postgres, wait_healthy

pytestmark = pytest.mark.integration
runner = CliRunner()
REC = "/api/v1/face-recognition"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({}, ["SQLite", "FACESOCIAL_DATABASE_URL", "FACESOCIAL_REDIS_URL", "FACESOCIAL_MILVUS_URI"]),
        (
            {
                "FACESOCIAL_DATABASE_URL": "postgresql://u@db/x",
                "FACESOCIAL_REDIS_URL": "redis://r:6379/0",
                "FACESOCIAL_MILVUS_URI": "/data/vectors.db",
            },
            ["milvus-lite file", "FACESOCIAL_MILVUS_URI=http://"],
        ),
        (
            {"FACESOCIAL_DATABASE_URL": "postgresql://u@db/x", "FACESOCIAL_MILVUS_URI": "http://m:19530"},
            ["FACESOCIAL_REDIS_URL", "rate limits"],
        ),
    ],
    ids=["embedded", "milvus-lite", "no-redis"],
)
def test_workers_refused_without_shared_stores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], named: list[str]
) -> None:
    for name in ("FACESOCIAL_DATABASE_URL", "FACESOCIAL_REDIS_URL", "FACESOCIAL_MILVUS_URI"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = runner.invoke(app, ["serve", "--workers", "2", "--data-dir", str(tmp_path / "data")])
    assert result.exit_code == 2, result.output
    assert "--workers 2 needs every store shared" in result.output
    for word in named:
        assert word in result.output
    assert not (tmp_path / "data").exists()  # refused before touching anything


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_two_workers_share_postgres_redis_and_milvus(
    tmp_path: Path, optional_model_dir: Path | None, astronaut_jpeg: bytes, astronaut_variant_jpeg: bytes
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with (
        scratch_postgres() as database_url,
        RedisProcess(tmp_path / "redis") as store,
        MilvusProcess(tmp_path / "milvus") as milvus,
    ):
        env = {
            **os.environ,
            "FACESOCIAL_DATA_DIR": str(tmp_path / "data"),
            "FACESOCIAL_DATABASE_URL": database_url,
            "FACESOCIAL_REDIS_URL": store.url,
            "FACESOCIAL_MILVUS_URI": milvus.uri,
            "FACESOCIAL_MODELS__MODEL_DIR": str(optional_model_dir or tmp_path / "no-models"),
            "FACESOCIAL_MODELS__AUTO_PULL": "false",
            "FACESOCIAL_RATE_LIMITS__ENABLED": "false",
            "OMP_NUM_THREADS": "1",
        }
        command = [sys.executable, "-m", "facesocial", "serve", "--port", str(port), "--workers", "2"]
        server = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
        pids: set[int] = set()
        try:
            assert server.stderr is not None
            key, lines = "", []
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not key:
                line = server.stderr.readline()
                lines.append(line)
                if line.strip().startswith("fs_"):
                    key = line.strip()
            assert key, "".join(lines)
            # Keep reading the log so that a full pipe never blocks the server.
            threading.Thread(target=lines.extend, args=(server.stderr,), daemon=True).start()
            wait_healthy(port)
            # New connections spread over the workers: both must answer, each with its own pid.
            deadline = time.monotonic() + 120
            while len(pids) < 2 and time.monotonic() < deadline:
                response = httpx.get(f"{base}/health", timeout=10, headers={"Connection": "close"})
                pids.add(int(response.json()["pid"]))
            assert len(pids) == 2 and server.pid not in pids, pids

            headers = {"X-API-Key": key, "Connection": "close"}
            detect = httpx.post(
                f"{base}/api/v1/face-detection/detect",
                headers=headers,
                files={"image": ("a.jpg", astronaut_jpeg, "image/jpeg")},
                timeout=60,
            )
            assert detect.status_code == 200 and len(detect.json()["faces"]) == 1, detect.text

            # One worker registers; every worker finds the face (PostgreSQL + Milvus) ...
            user = uuid.uuid4()
            registered = httpx.post(
                f"{base}{REC}/register",
                headers=headers,
                data={"user_id": str(user), "consent": "true"},
                files={"image": ("a.jpg", astronaut_jpeg, "image/jpeg")},
                timeout=60,
            )
            assert registered.status_code == 200, registered.text
            for _ in range(6):
                verify = httpx.post(
                    f"{base}{REC}/verify",
                    headers=headers,
                    data={"user_id": str(user)},
                    files={"image": ("b.jpg", astronaut_variant_jpeg, "image/jpeg")},
                    timeout=60,
                )
                assert verify.status_code == 200 and verify.json()["match"], verify.text
            # ... and after an erasure on one worker, no worker serves the user from a cache (Redis).
            assert httpx.delete(f"{base}{REC}/users/{user}", headers=headers, timeout=60).status_code == 200
            for _ in range(6):
                gone = httpx.post(
                    f"{base}{REC}/verify",
                    headers=headers,
                    data={"user_id": str(user)},
                    files={"image": ("b.jpg", astronaut_variant_jpeg, "image/jpeg")},
                    timeout=60,
                )
                assert gone.status_code == 404, gone.text
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
        deadline = time.monotonic() + 30
        while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_alive(pid) for pid in pids), "a worker outlived SIGTERM"
        assert server.returncode == 0
        log = "".join(lines)
        assert log.count("First start") == 1 and log.count("worker processes") == 1  # once, in the parent
