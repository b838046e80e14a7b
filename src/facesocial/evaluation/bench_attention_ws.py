"""``facesocial bench attention-ws``: end-to-end round trip of a live attention frame over the WebSocket.

A real server (a ``facesocial serve`` child started here, or ``--server``/``--api-key``), a
meeting created and started over REST, one socket on it. For 1, 2, 3 and 4 faces, frames
composed like ``bench attention``'s (LFW photos in a 2×2 grid of a 640×480 canvas, JPEG q85,
moved 1 px each frame) are sent in lockstep: ``{"timestamp_ms"}`` + the JPEG, then wait for the
answer. The round trip (send → answer parsed) is what a client sees: network on loopback,
decode, detection, mesh, scoring, alerts, participant rows on first sight, metric buffering.
The first frames of each face count create participants (one database write each), so they are
reported apart (``first_frame_ms``) from the steady state.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

from facesocial.evaluation.bench_api import ApiTarget, local_server
from facesocial.evaluation.bench_attention import CANVAS, FACE_SIDE, compose, jpeg, percentiles

STEP_MS = 200  # stream time between frames (5 frames/s, as bench attention)


def _stats(samples: list[float]) -> dict[str, float]:
    return {**percentiles(samples), "max": round(max(samples), 1)}


def run_bench_attention_ws(
    lfw: Path,
    frames_per_count: int = 60,
    people: int = 12,
    server: str | None = None,
    api_key: str | None = None,
) -> dict[str, Any]:
    """p50/p95/max round-trip ms per frame for 1-4 faces (module docstring).

    ``lfw``: the ``lfw-deepfunneled`` folder. Raises FileNotFoundError when it has fewer than 4
    people, RuntimeError when the local server does not start.
    """
    folders = sorted(p for p in lfw.iterdir() if p.is_dir())
    step = max(1, len(folders) // people)
    photos = [
        np.asarray(Image.open(sorted(f.glob("*.jpg"))[0]).convert("RGB")) for f in folders[::step][:people]
    ]
    if len(photos) < 4:
        raise FileNotFoundError(f"fewer than 4 people in {lfw}")
    if server is not None and api_key is not None:
        return _run(ApiTarget(server.rstrip("/"), api_key), photos, frames_per_count)
    began = time.perf_counter()
    with local_server() as target:
        report = _run(target, photos, frames_per_count)
        report["server_start_seconds"] = round(time.perf_counter() - began, 1)
        return report


def _run(target: ApiTarget, photos: list[np.ndarray], frames_per_count: int) -> dict[str, Any]:
    headers = {"X-API-Key": target.api_key}
    with httpx.Client(base_url=target.base_url, headers=headers, timeout=60) as client:
        created = client.post("/api/v1/attention/meetings", json={"title": "bench attention-ws"})
        created.raise_for_status()
        meeting_id = created.json()["meeting"]["meeting_id"]
        client.post(f"/api/v1/attention/meetings/{meeting_id}/start").raise_for_status()
        ws_base = target.base_url.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
        url = f"{ws_base}/api/v1/attention/meetings/{meeting_id}/ws"
        try:
            by_count = asyncio.run(_stream(url, target.api_key, photos, frames_per_count))
        finally:
            client.post(f"/api/v1/attention/meetings/{meeting_id}/end")
    return {
        "frame": f"{CANVAS[0]}x{CANVAS[1]} JPEG q85, LFW faces scaled to {FACE_SIDE} px, lockstep",
        "server": target.base_url,
        "by_face_count": by_count,
    }


async def _stream(url: str, api_key: str, photos: list[np.ndarray], frames: int) -> dict[str, Any]:
    import websockets

    out: dict[str, Any] = {}
    t_ms = 0
    async with websockets.connect(url, additional_headers={"X-API-Key": api_key}, max_size=2**24) as socket:
        for i in range(3):  # warm-up: models, threads
            await _round_trip(socket, t_ms, jpeg(compose(photos[:4], i)))
            t_ms += STEP_MS
        for count in (1, 2, 3, 4):
            times: list[float] = []
            found: list[int] = []
            first_ms = 0.0
            t_ms += 5000  # the previous faces' tracks end: new participants join on the first frame
            for i in range(frames):
                group = [photos[(count + k) % len(photos)] for k in range(count)]
                data = jpeg(compose(group, i % 10))
                elapsed, answer = await _round_trip(socket, t_ms, data)
                t_ms += STEP_MS
                if i == 0:
                    first_ms = elapsed
                    continue
                times.append(elapsed)
                found.append(len(answer.get("faces", [])))
            out[str(count)] = {
                "frames": frames,
                "faces_found_median": statistics.median(found),
                "first_frame_ms": round(first_ms, 1),
                "round_trip_ms": _stats(times),
                "frames_per_second_lockstep": round(1000.0 / statistics.mean(times), 1),
            }
    return out


async def _round_trip(socket: Any, t_ms: int, data: bytes) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    await socket.send(json.dumps({"timestamp_ms": t_ms}))
    await socket.send(data)
    answer: dict[str, Any] = json.loads(await socket.recv())
    if answer.get("type") != "frame":
        raise RuntimeError(f"the server answered {answer}")
    return (time.perf_counter() - started) * 1000.0, answer
