"""A real ``facesocial serve`` under concurrent model load keeps answering health checks.

Inference runs in worker threads behind an admission gate (vision/decode_gate.py,
``limits.max_concurrent_images``): at most that many images are processed at once, the rest
queue, and /health and /metrics are answered on the event loop meanwhile. Here 8 clients send
identify requests (detection + embedding of a group photo) to a server admitting one image at
a time; while some of them are provably queued (the gate's own gauge says so), /health answers,
and the gauge never shows more images in flight than the bound.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import httpx
import pytest

from tests.conftest import shared_path
from tests.integration.conftest import running_server

pytestmark = [pytest.mark.integration, pytest.mark.model, pytest.mark.shared_data]

CLIENTS = 8


def _gauge(metrics: str, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", metrics, re.MULTILINE)
    assert match, f"{name} is not exported"
    return float(match.group(1))


def test_health_answers_while_requests_queue_for_model_time(tmp_path: Path, model_dir: Path) -> None:
    photo = shared_path("dlib_faces_detection", "2008_002079.jpg").read_bytes()
    statuses: list[int] = []
    done = threading.Event()
    lock = threading.Lock()
    with running_server(
        tmp_path / "data",
        model_dir,
        FACESOCIAL_RATE_LIMITS__ENABLED="false",
        FACESOCIAL_LIMITS__MAX_CONCURRENT_IMAGES="1",
        FACESOCIAL_LIMITS__DECODE_WAIT_SECONDS="300",
    ) as server:

        def client() -> None:
            with httpx.Client(timeout=300) as http:
                reply = http.post(
                    f"{server.base}/api/v1/face-recognition/identify",
                    headers={"X-API-Key": server.key},
                    files={"image": ("group.jpg", photo, "image/jpeg")},
                    data={"face_index": "0"},
                )
            with lock:
                statuses.append(reply.status_code)
                if len(statuses) == CLIENTS:
                    done.set()

        threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
        for thread in threads:
            thread.start()
        healthy_while_queued = 0
        peak_in_flight = 0.0
        with httpx.Client(timeout=30) as http:
            while not done.is_set():
                metrics = http.get(f"{server.base}/metrics").text
                peak_in_flight = max(peak_in_flight, _gauge(metrics, "facesocial_images_in_flight"))
                if _gauge(metrics, "facesocial_images_waiting") >= 1:
                    health = http.get(f"{server.base}/health")
                    assert health.status_code == 200 and health.json()["status"] == "ok"
                    healthy_while_queued += 1
                done.wait(0.05)
        for thread in threads:
            thread.join(60)
    assert statuses == [200] * CLIENTS, statuses
    # Requests really queued for model time, and /health answered meanwhile.
    assert healthy_while_queued >= 1
    assert peak_in_flight == 1.0
