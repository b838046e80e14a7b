"""The liveness WebSocket through a real ``facesocial serve`` (uvicorn) process, over a real socket.

The in-process TestClient speaks WebSocket without uvicorn; a server missing its WebSocket
library answers every upgrade 404 instead, which only a real process shows. A real selfie
video's frames are streamed in real time and the session must complete; a bad token's
handshake is refused.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from pathlib import Path

import av
import httpx
import pytest
from PIL import Image

from tests.conftest import shared_path
from tests.integration.conftest import running_server

websockets = pytest.importorskip("websockets", reason="websockets is a runtime dependency: pip install -e .")

pytestmark = [pytest.mark.integration, pytest.mark.model, pytest.mark.shared_data]
SESSIONS = "/api/v1/antispoofing/liveness/sessions"


def _blink_jpegs(seconds: float, fps: float = 10.0) -> list[tuple[float, bytes]]:
    out: list[tuple[float, bytes]] = []
    next_ms = 0.0
    with av.open(str(shared_path("face_liveness_blink_video", "video.mp4"))) as container:
        for frame in container.decode(video=0):
            t = float(frame.time or 0.0) * 1000.0
            if t > seconds * 1000.0:
                break
            if t >= next_ms:
                buffer = io.BytesIO()
                Image.fromarray(frame.to_ndarray(format="rgb24")).save(buffer, format="JPEG", quality=90)
                out.append((t, buffer.getvalue()))
                next_ms = t + 1000.0 / fps
    return out


async def _stream(url: str, frames: list[tuple[float, bytes]]) -> list[dict[str, object]]:
    messages: list[dict[str, object]] = []
    async with websockets.connect(url, max_size=2**24) as socket:
        messages.append(json.loads(await socket.recv()))
        started = time.monotonic()
        for t_ms, data in frames:
            delay = started + t_ms / 1000.0 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)  # a camera delivers frames in real time
            await socket.send(json.dumps({"timestamp_ms": t_ms}))
            await socket.send(data)
            reply = json.loads(await socket.recv())
            messages.append(reply)
            if reply["type"] != "progress":
                break
    return messages


async def _refused(url: str) -> int:
    try:
        async with websockets.connect(url) as socket:
            await socket.recv()
    except websockets.exceptions.InvalidStatus as exc:
        return int(exc.response.status_code)
    return 0


def test_a_real_server_streams_a_liveness_session_over_a_websocket(tmp_path: Path, model_dir: Path) -> None:
    frames = _blink_jpegs(2.6)
    with running_server(tmp_path / "data", model_dir) as server:
        port, key = server.port, server.key
        created = httpx.post(
            f"http://127.0.0.1:{port}{SESSIONS}",
            json={"challenges": ["blink"]},
            headers={"X-API-Key": key},
            timeout=30,
        )
        assert created.status_code == 201, created.text
        token = created.json()["session_token"]
        messages = asyncio.run(_stream(f"ws://127.0.0.1:{port}{SESSIONS}/{token}/ws", frames))
        assert messages[0]["type"] == "instruction"
        assert messages[-1]["type"] == "result" and messages[-1]["session_status"] == "completed", messages[
            -1
        ]
        assert asyncio.run(_refused(f"ws://127.0.0.1:{port}{SESSIONS}/{'x' * 43}/ws")) == 403
