"""Crash safety of SkyGate's jobs: `kill -9` of a real `facesocial serve` in the middle of a burst of
analyses (every analysis a job: sync_max_pixels=1000), restart, let the jobs end, then look; and
the spool sweep's rules on their own (jobs/spool.py).

Reproduces a defect found by the attack session of commit 4a06edd.
"""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from facesocial.container import Container
from facesocial.jobs.builtin import ProbeRequest, submit_probe
from tests.conftest import shared_path
from tests.integration.conftest import make_settings
from tests.services import free_port, wait_healthy

pytestmark = [pytest.mark.integration, pytest.mark.model]
BASE = "/api/v1/ai-detection"


def _serve(data_dir: Path, model_dir: Path, port: int, **extra: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "FACESOCIAL_DATA_DIR": str(data_dir),
        "FACESOCIAL_MODELS__MODEL_DIR": str(model_dir),
        "FACESOCIAL_MODELS__AUTO_PULL": "false",
        "FACESOCIAL_RATE_LIMITS__ENABLED": "false",
        "FACESOCIAL_AI_DETECTION__SYNC_MAX_PIXELS": "1000",
        # A job whose worker died comes back after its lease: short, so the test ends soon.
        "FACESOCIAL_JOBS__LEASE_SECONDS": "5",
        "FACESOCIAL_JOBS__SWEEP_SECONDS": "1",
        **extra,
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "facesocial", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_healthy(port)
    return server


def _burst_then_kill(base: str, key: str, images: list[bytes], server: subprocess.Popen[bytes]) -> list[str]:
    """4 threads analyse without pause; the server is killed (-9) while they do."""
    accepted: list[str] = []
    stop = threading.Event()

    def upload(index: int) -> None:
        with httpx.Client(base_url=base, timeout=30) as client:
            n = index
            while not stop.is_set():
                try:
                    answer = client.post(
                        f"{BASE}/analyze",
                        files={"image": ("c.jpg", images[n % len(images)], "image/jpeg")},
                        headers={"X-API-Key": key},
                    )
                except httpx.HTTPError:
                    return
                if answer.status_code == 202:
                    accepted.append(answer.json()["result_id"])
                n += 1

    threads = [threading.Thread(target=upload, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(2.0)
    server.send_signal(signal.SIGKILL)
    server.wait(10)
    stop.set()
    for thread in threads:
        thread.join()
    return accepted


def _ended(base: str, key: str, result_ids: list[str], timeout: float = 240.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    bodies: dict[str, Any] = {}
    with httpx.Client(base_url=base, timeout=30) as client:
        while time.monotonic() < deadline:
            bodies = {
                rid: client.get(f"{BASE}/results/{rid}", headers={"X-API-Key": key}).json()
                for rid in result_ids
            }
            if all(b.get("status") in ("completed", "failed", "cancelled") for b in bodies.values()):
                return bodies
            time.sleep(1.0)
    running = [rid for rid, body in bodies.items() if body.get("status") not in ("completed", "failed")]
    raise AssertionError(f"jobs did not end: {running}")


def test_kill_during_a_burst_leaves_results_whole_and_no_spooled_image_behind(
    tmp_path: Path, model_dir: Path
) -> None:
    """Found: every accepted analysis completed with its images (that part holds), but uploads cut
    by the kill leave their image in the spool folder: ``jobs/job_<id>/image`` of a job row that
    was never committed, and ``jobs/incoming/<hex>/image``. The restart's sweep keeps them (it
    only removes entries untouched for an hour) and nothing else looks before the daily
    retention, so user images stay on disk with no job and no upload row
    (docs/ai-detection.md: "a job's image stays in the spool folder only while its job runs").
    Expected: once the restarted server's jobs have ended, no spooled image is left."""
    images = [
        p.read_bytes()
        for p in sorted(shared_path("ai_generated_images", "faces_ffhq_vs_stylegan2", "real").glob("*.jpg"))[
            :20
        ]
    ]
    settings = make_settings(tmp_path, model_dir)
    container = Container(settings)
    container.prepare()
    key = container.keys.create("crash").secret
    container.close()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    accepted: list[str] = []
    for _round in range(2):  # two kills keep the run near a minute on two cores
        server = _serve(tmp_path, model_dir, port)
        accepted += _burst_then_kill(base, key, images, server)
    # The restart sweeps with short graces (defaults: 5 minutes for job folders, an hour for
    # incoming/): the leftovers of the kills are older than that by now, and no upload runs.
    server = _serve(
        tmp_path,
        model_dir,
        port,
        FACESOCIAL_JOBS__ORPHAN_GRACE_SECONDS="1",
        FACESOCIAL_JOBS__INCOMING_GRACE_SECONDS="1",
    )
    try:
        assert accepted, "no analysis was accepted before the kills"
        bodies = _ended(base, key, accepted)
        with httpx.Client(base_url=base, timeout=30) as client:
            for rid, body in bodies.items():
                if body["status"] != "completed":
                    assert body["status"] == "failed" and body.get("error"), body
                    continue
                for name in ("ela.png", "heatmap.png", "thumbnail.jpg"):
                    image = client.get(f"{BASE}/results/{rid}/{name}", headers={"X-API-Key": key})
                    assert image.status_code == 200, (rid, name, image.text)
        # Every job has ended; the sweep (every second) removes what no job owns within seconds.
        deadline = time.monotonic() + 20.0
        spooled = _spooled(tmp_path)
        while spooled and time.monotonic() < deadline:
            time.sleep(0.5)
            spooled = _spooled(tmp_path)
        assert spooled == [], (
            f"{len(accepted)} accepted; spooled images left after every job ended: {spooled}"
        )
    finally:
        server.terminate()
        server.wait(30)


def _spooled(data_dir: Path) -> list[str]:
    return sorted(
        p for p in glob.glob(str(data_dir / "jobs" / "**" / "*"), recursive=True) if Path(p).is_file()
    )


def test_the_spool_sweep_keeps_running_jobs_and_young_entries_and_removes_orphans(
    tmp_path: Path,
) -> None:
    """jobs/spool.py: a job folder without a pending or processing job goes after the short
    grace, one of a pending job stays; incoming/ entries wait for the long grace."""
    settings = make_settings(tmp_path, None)
    settings.jobs.orphan_grace_seconds = 60.0
    settings.jobs.incoming_grace_seconds = 600.0
    container = Container(settings)
    container.prepare()
    try:
        spool = settings.resolved_spool_dir()
        pending = spool / submit_probe(
            container.database, container.job_store, container.jobs, spool, ProbeRequest(1, 0.01, None)
        )
        orphan = spool / f"job_{uuid.uuid4().hex}"  # never committed
        young_orphan = spool / f"job_{uuid.uuid4().hex}"
        stale_incoming = spool / "incoming" / "stale"
        young_incoming = spool / "incoming" / "young"
        for folder in (orphan, young_orphan, stale_incoming, young_incoming):
            folder.mkdir(parents=True)
            (folder / "image").write_bytes(b"x")
        now = time.time()
        for path in (pending, *pending.iterdir(), orphan, orphan / "image"):
            os.utime(path, (now - 120, now - 120))  # past the orphan grace
        for path in (young_incoming, young_incoming / "image"):
            os.utime(path, (now - 120, now - 120))  # past the orphan grace, not the incoming one
        for path in (stale_incoming, stale_incoming / "image"):
            os.utime(path, (now - 900, now - 900))
        assert container.sweep_spool() == 2
        assert not orphan.exists() and not stale_incoming.exists()
        assert pending.is_dir() and young_orphan.is_dir() and young_incoming.is_dir()
        # Once the job has ended its folder is an orphan too (its on_end could not remove it).
        assert container.job_runner.run_next()
        pending.mkdir(exist_ok=True)
        os.utime(pending, (now - 120, now - 120))
        assert container.sweep_spool() == 1 and not pending.exists()
    finally:
        container.close()
