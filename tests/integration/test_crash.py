"""SIGKILL during a burst of registrations, then a restart: every confirmed face is found again.

A real `facesocial serve` process on each profile (SQLite + local index; PostgreSQL + Redis +
milvus-lite), real client threads, and a kill of the whole process group (milvus-lite runs its
server as a child process: a container kill takes both). After the restart, readiness waits for
the reconciler, every registration that was answered 200 is identifiable, and the index agrees
with SQL exactly: no face row without its vector, no vector without its row.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.services import free_port, require_milvus_lite, scratch_postgres, scratch_redis, wait_healthy

pytestmark = pytest.mark.integration
BASE = "/api/v1/face-recognition"


@contextmanager
def _profile_env(name: str, tmp_path: Path, model_dir: Path | None) -> Iterator[dict[str, str]]:
    env = {
        **os.environ,
        "FACESOCIAL_DATA_DIR": str(tmp_path / "data"),
        "FACESOCIAL_MODELS__MODEL_DIR": str(model_dir or tmp_path / "no-models"),
        "FACESOCIAL_MODELS__AUTO_PULL": "false",
        "FACESOCIAL_RATE_LIMITS__ENABLED": "false",
    }
    if name == "embedded":
        yield env
        return
    require_milvus_lite()
    with scratch_postgres() as database_url, scratch_redis() as redis_url:
        yield {
            **env,
            "FACESOCIAL_DATABASE_URL": database_url,
            "FACESOCIAL_REDIS_URL": redis_url,
            "FACESOCIAL_MILVUS_URI": str(tmp_path / "data" / "milvus.db"),
        }


def _start(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "facesocial", "serve", "--port", str(port)]
    # A session of its own: the kill takes the server and its children (milvus-lite) at once.
    server = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    wait_healthy(port)
    return server


def _kill(server: subprocess.Popen[bytes]) -> None:
    with suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGKILL)
    server.wait(30)


def _wait_ready(base: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = httpx.get(f"{base}/health/ready", timeout=10)
        body = response.json()
        if response.status_code == 200:
            return body
        time.sleep(0.5)
    raise AssertionError(f"never ready: {body}")


@pytest.mark.parametrize("profile", ["embedded", "scaled"])
def test_sigkill_during_a_registration_burst_loses_no_confirmed_face(
    profile: str, tmp_path: Path, optional_model_dir: Path | None, astronaut_jpeg: bytes
) -> None:
    with _profile_env(profile, tmp_path, optional_model_dir) as env:
        created = subprocess.run(
            [sys.executable, "-m", "facesocial", "keys", "create", "--name", "crash", "--role", "operator"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        key = created.stdout.strip()
        headers = {"X-API-Key": key}
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = _start(env, port)
        confirmed: dict[str, str] = {}  # user_id -> face_id, answered 200
        lock = threading.Lock()
        stop = threading.Event()

        def burst() -> None:
            with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
                while not stop.is_set():
                    person = str(uuid.uuid4())
                    try:
                        response = client.post(
                            f"{BASE}/register",
                            data={"user_id": person, "consent": "true"},
                            files={"image": ("a.jpg", astronaut_jpeg, "image/jpeg")},
                        )
                    except httpx.HTTPError:
                        return  # the server is gone
                    if response.status_code == 200:
                        with lock:
                            confirmed[person] = response.json()["face_id"]

        threads = [threading.Thread(target=burst) for _ in range(4)]
        try:
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + 120
            while len(confirmed) < 12 and time.monotonic() < deadline:
                time.sleep(0.05)
            _kill(server)  # mid-burst: requests are in flight in every thread
        finally:
            stop.set()
            for thread in threads:
                thread.join(60)
            _kill(server)
        assert len(confirmed) >= 12

        server = _start(env, port)
        try:
            ready = _wait_ready(base)
            assert ready["status"] == "ready"
            with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
                # Registrations cut off before their 200 were never confirmed: a repair with no
                # grace period rolls them back now, since no request of this new process is
                # in flight. Then the two stores must agree exactly.
                repaired = client.post(
                    "/api/v1/admin/index/verify", json={"repair": True, "grace_seconds": 0}
                )
                assert repaired.status_code == 200, repaired.text
                assert repaired.json()["report"]["consistent"] is True
                # The figures for the record (pytest -s): what the crash left and what was done.
                print(
                    f"\n[{profile}] confirmed={len(confirmed)} start-up pass="
                    f"{ready['checks'].get('index_consistency')} repair with no grace="
                    f"{repaired.json()['report']['repaired']}"
                )
                check = client.post("/api/v1/admin/index/verify", json={"repair": False, "grace_seconds": 0})
                report = check.json()["report"]
                assert report["consistent"] is True and report["discrepancies_found"] == 0, report
                for collection in report["collections"]:
                    assert collection["active_rows"] == collection["vectors"]
                    assert collection["missing_vectors"] == collection["orphan_vectors"] == 0

                found = client.post(
                    f"{BASE}/identify",
                    data={"top_k": "100"},
                    files={"image": ("a.jpg", astronaut_jpeg, "image/jpeg")},
                ).json()
                identified = {c["user_id"]: c["face_id"] for c in found["candidates"]}
                missing = {u: f for u, f in confirmed.items() if identified.get(u) != f}
                assert not missing, f"{len(missing)} of {len(confirmed)} confirmed faces not identifiable"
                for person, face in list(confirmed.items())[:5]:
                    profile_body = client.get(f"{BASE}/users/{person}").json()
                    assert [(f["face_id"], f["status"]) for f in profile_body["faces"]] == [(face, "active")]
        finally:
            _kill(server)


def test_a_torn_journal_after_a_crash_is_cut_back_and_the_lost_vector_restored(
    tmp_path: Path, optional_model_dir: Path | None, astronaut_jpeg: bytes, astronaut_variant_jpeg: bytes
) -> None:
    """The embedded index's journal ends in half a record (the disk lost the tail of the last
    write): the restart keeps every whole record, cuts the rest, and the reconciler writes the
    vector of the confirmed face whose record was cut again from SQL."""
    with _profile_env("embedded", tmp_path, optional_model_dir) as env:
        key = subprocess.run(
            [sys.executable, "-m", "facesocial", "keys", "create", "--name", "torn", "--role", "operator"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = _start(env, port)
        confirmed: dict[str, str] = {}
        try:
            with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=60) as client:
                for photo in (astronaut_variant_jpeg, astronaut_jpeg):
                    person = str(uuid.uuid4())
                    response = client.post(
                        f"{BASE}/register",
                        data={"user_id": person, "consent": "true"},
                        files={"image": ("a.jpg", photo, "image/jpeg")},
                    )
                    assert response.status_code == 200, response.text
                    confirmed[person] = response.json()["face_id"]
        finally:
            _kill(server)
        journal = tmp_path / "data" / "vectors" / "face_embeddings_128d_dlib_resnet_v1" / "journal.bin"
        whole = journal.read_bytes()
        journal.write_bytes(whole[: len(whole) - 300] + b"\x00garbage")  # the last record torn

        server = _start(env, port)
        try:
            ready = _wait_ready(base)
            assert ready["checks"]["index_consistency"]["repaired"]["vectors_restored"] == 1
            with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=60) as client:
                found = client.post(
                    f"{BASE}/identify",
                    data={"top_k": "10"},
                    files={"image": ("a.jpg", astronaut_jpeg, "image/jpeg")},
                ).json()
                assert {c["user_id"]: c["face_id"] for c in found["candidates"]} == confirmed
                report = client.post("/api/v1/admin/index/verify", json={"grace_seconds": 0}).json()
                assert report["report"]["discrepancies_found"] == 0, report
        finally:
            _kill(server)
