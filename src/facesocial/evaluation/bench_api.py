"""``facesocial bench api``: requests/s and latency of detect, register and identify under load.

N clients (closed loop: each sends its next request when the previous answer arrives) share one
``httpx.AsyncClient`` for ``duration`` seconds per endpoint and client count, while a prober
asks ``GET /health`` every ``HEALTH_INTERVAL_S``: the API must keep answering health checks
under load. Every status code is counted (429 and 503 included, never retried or hidden), and
latency percentiles are over the 2xx answers. Phases run in the order detect → register →
identify, so identify searches the gallery register built.

Without a server URL, a ``facesocial serve`` child process is started on a free loopback port
with a temporary data folder (the embedded profile: SQLite, local index, in-memory cache —
shared-store settings of the environment are dropped) and rate limits off; its first-start
operator key is read from its log, and the process is stopped afterwards. The load generator
runs on the same machine as that server and takes CPU from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

from facesocial.evaluation.child_server import free_port, wait_until_answering

ENDPOINTS: dict[str, str] = {
    "detect": "/api/v1/face-detection/detect",
    "register": "/api/v1/face-recognition/register",
    "identify": "/api/v1/face-recognition/identify",
}
HEALTH_INTERVAL_S = 0.2
REQUEST_TIMEOUT_S = 120.0
# Environment that would make the bench's own server share state with a real installation.
_SHARED_STORES = (
    "FACESOCIAL_DATABASE_URL",
    "FACESOCIAL_REDIS_URL",
    "FACESOCIAL_MILVUS_URI",
    "FACESOCIAL_INDEX_DIR",
)


@dataclass(frozen=True, slots=True)
class ApiTarget:
    base_url: str  # e.g. http://127.0.0.1:8000
    api_key: str
    started_here: bool = False


@dataclass(frozen=True, slots=True)
class BenchImage:
    name: str
    data: bytes
    mime: str


@contextlib.contextmanager
def local_server(startup_timeout_s: float = 300.0) -> Iterator[ApiTarget]:
    """A ``facesocial serve`` child on a free loopback port in a temporary data folder.

    Yields its URL and first-start operator key; stops it (SIGINT, then SIGKILL after 30 s) and
    removes the folder afterwards. Raises ``RuntimeError`` when it does not start in time.
    """
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="facesocial-bench-api-") as folder:
        env = {name: value for name, value in os.environ.items() if name not in _SHARED_STORES}
        env.update(FACESOCIAL_DATA_DIR=folder, FACESOCIAL_RATE_LIMITS__ENABLED="false")
        command = [sys.executable, "-m", "facesocial", "serve", "--host", "127.0.0.1", "--port", str(port)]
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        lines: queue.Queue[str] = queue.Queue()
        log: list[str] = []

        def read_log() -> None:  # keeps the pipe drained for the server's whole life
            assert process.stderr is not None
            for line in process.stderr:
                lines.put(line)

        threading.Thread(target=read_log, daemon=True).start()
        try:
            key = ""
            deadline = time.monotonic() + startup_timeout_s
            while not key and time.monotonic() < deadline and process.poll() is None:
                try:
                    line = lines.get(timeout=0.5)
                except queue.Empty:
                    continue
                log.append(line)
                if line.strip().startswith("fs_"):
                    key = line.strip()
            if not key:
                raise RuntimeError("facesocial serve printed no operator key:\n" + "".join(log[-20:]))
            base_url = f"http://127.0.0.1:{port}"
            wait_until_answering(f"{base_url}/health", process, startup_timeout_s)
            yield ApiTarget(base_url, key, started_here=True)
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def default_images() -> list[BenchImage]:
    """scikit-image's astronaut (512x512 JPEG q92, one face): the image of ``facesocial bench``."""
    import skimage.data
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(skimage.data.astronaut())).save(buffer, format="JPEG", quality=92)  # type: ignore[no-untyped-call]
    return [BenchImage("astronaut.jpg", buffer.getvalue(), "image/jpeg")]


def load_images(paths: Sequence[Any]) -> list[BenchImage]:
    """Image files (paths) as request payloads; the MIME type follows the suffix."""
    mimes = {".png": "image/png", ".webp": "image/webp", ".bmp": "image/bmp"}
    return [BenchImage(p.name, p.read_bytes(), mimes.get(p.suffix.lower(), "image/jpeg")) for p in paths]


@dataclass
class _Phase:
    """What one endpoint x client-count run observed."""

    latencies_ms: list[float] = field(default_factory=list)  # 2xx answers only
    statuses: Counter[str] = field(default_factory=Counter)
    transport_errors: Counter[str] = field(default_factory=Counter)
    health_ms: list[float] = field(default_factory=list)
    health_failures: Counter[str] = field(default_factory=Counter)


def _percentiles(samples: Sequence[float]) -> dict[str, float | int | None]:
    if not samples:
        return {"n": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    values = np.asarray(samples, dtype=np.float64)
    return {
        "n": int(values.size),
        "p50_ms": round(float(np.percentile(values, 50)), 1),
        "p95_ms": round(float(np.percentile(values, 95)), 1),
        "p99_ms": round(float(np.percentile(values, 99)), 1),
        "max_ms": round(float(values.max()), 1),
    }


def _form(endpoint: str) -> dict[str, str]:
    if endpoint == "register":
        # A new person per request; face_index 0 (the largest face) so that group photos in the
        # image set register instead of answering MULTIPLE_FACES.
        return {"user_id": str(uuid.uuid4()), "consent": "true", "face_index": "0"}
    return {}


async def _client_loop(
    client: httpx.AsyncClient,
    endpoint: str,
    images: Sequence[BenchImage],
    start: int,
    step: int,
    stop_at: float,
    phase: _Phase,
) -> None:
    turn = start
    while time.monotonic() < stop_at:
        image = images[turn % len(images)]
        turn += step
        started = time.perf_counter()
        try:
            response = await client.post(
                ENDPOINTS[endpoint],
                files={"image": (image.name, image.data, image.mime)},
                data=_form(endpoint),
            )
        except httpx.HTTPError as exc:
            phase.transport_errors[type(exc).__name__] += 1
            continue
        elapsed = (time.perf_counter() - started) * 1000.0
        phase.statuses[str(response.status_code)] += 1
        if response.is_success:
            phase.latencies_ms.append(elapsed)


async def _health_loop(client: httpx.AsyncClient, stop: asyncio.Event, phase: _Phase) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        try:
            response = await client.get("/health")
            if response.status_code == 200:
                phase.health_ms.append((time.perf_counter() - started) * 1000.0)
            else:
                phase.health_failures[str(response.status_code)] += 1
        except httpx.HTTPError as exc:
            phase.health_failures[type(exc).__name__] += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), HEALTH_INTERVAL_S)


async def _run_phase(
    target: ApiTarget, endpoint: str, clients: int, duration_s: float, images: Sequence[BenchImage]
) -> dict[str, Any]:
    phase = _Phase()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"X-API-Key": target.api_key}
    async with (
        httpx.AsyncClient(
            base_url=target.base_url, headers=headers, limits=limits, timeout=REQUEST_TIMEOUT_S
        ) as client,
        httpx.AsyncClient(base_url=target.base_url, timeout=REQUEST_TIMEOUT_S) as prober,
    ):
        stop = asyncio.Event()
        health = asyncio.create_task(_health_loop(prober, stop, phase))
        started = time.monotonic()
        stop_at = started + duration_s
        await asyncio.gather(
            *(_client_loop(client, endpoint, images, i, clients, stop_at, phase) for i in range(clients))
        )
        elapsed = time.monotonic() - started
        stop.set()
        await health
    answered = sum(phase.statuses.values())
    ok = len(phase.latencies_ms)
    return {
        "endpoint": endpoint,
        "clients": clients,
        "elapsed_s": round(elapsed, 2),
        "requests": answered + sum(phase.transport_errors.values()),
        "ok": ok,
        "ok_per_s": round(ok / elapsed, 2) if elapsed > 0 else 0.0,
        "answered_per_s": round(answered / elapsed, 2) if elapsed > 0 else 0.0,
        "latency_ok": _percentiles(phase.latencies_ms),
        "status_codes": dict(sorted(phase.statuses.items())),
        "transport_errors": dict(phase.transport_errors),
        "health": {**_percentiles(phase.health_ms), "failures": dict(phase.health_failures)},
    }


async def _run_all(
    target: ApiTarget, clients: Sequence[int], duration_s: float, images: Sequence[BenchImage]
) -> list[dict[str, Any]]:
    results = []
    for endpoint in ENDPOINTS:
        for count in clients:
            results.append(await _run_phase(target, endpoint, count, duration_s, images))
    return results


def run_bench_api(
    *,
    server: str | None = None,
    api_key: str | None = None,
    clients: Sequence[int] = (1, 4, 16),
    duration_s: float = 10.0,
    images: Sequence[BenchImage] | None = None,
) -> dict[str, Any]:
    """``facesocial bench api``: one result per (endpoint, client count), in run order.

    ``server`` + ``api_key``: an existing server (its rate limits apply: 429s are counted);
    neither: a server of its own (:func:`local_server`). Raises ``ValueError`` when only one of
    the two is given or a client count is below 1.
    """
    if (server is None) != (api_key is None):
        raise ValueError("--server and --api-key go together")
    if not clients or min(clients) < 1:
        raise ValueError("client counts must be >= 1")
    chosen = list(images) if images else default_images()
    with contextlib.ExitStack() as stack:
        if server is None or api_key is None:
            target = stack.enter_context(local_server())
        else:
            target = ApiTarget(server.rstrip("/"), api_key)
        started = time.perf_counter()
        phases = asyncio.run(_run_all(target, clients, duration_s, chosen))
        total_s = time.perf_counter() - started
    return {
        "server": "started here (embedded profile, temporary data folder)"
        if target.started_here
        else target.base_url,
        "rate_limits": "off (server started here)"
        if target.started_here
        else "the server's own (429s counted)",
        "images": [image.name for image in chosen],
        "duration_s_per_phase": duration_s,
        "health_interval_s": HEALTH_INTERVAL_S,
        "cpu_count": os.cpu_count(),
        "total_s": round(total_s, 1),
        "phases": phases,
    }
