"""A live socket streaming into a meeting that is deleted or ended, through a real ``facesocial serve``.

Found by an attack pass: the socket learns of the change only at its next status check (every
5 s) and kept flushing metric rows meanwhile — rows of a deleted meeting that no route could reach
and nothing removed, and rows after an ended meeting's end that its summary did not count. Now a
flush checks the meeting first (and erases what it wrote if the meeting vanished meanwhile), and
an ended meeting's metrics stop at its end.
"""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from facesocial.container import Container
from facesocial.domains.attention.service import EARLIEST, LATEST
from tests.conftest import shared_path
from tests.integration.conftest import RunningServer, make_settings, running_server

websockets = pytest.importorskip("websockets", reason="websockets is a runtime dependency: pip install -e .")

pytestmark = [pytest.mark.integration, pytest.mark.model, pytest.mark.shared_data]
API = "/api/v1/attention"
FACE = ("lfw_deepfunneled", "lfw-deepfunneled", "Colin_Powell", "Colin_Powell_0009.jpg")


def _frame() -> bytes:
    """A 640x480 JPEG with one frontal LFW face in the top-left quadrant."""
    with Image.open(shared_path(*FACE)) as image:
        face = np.asarray(image.convert("RGB").resize((240, 240)))
    canvas = np.full((480, 640, 3), 90, dtype=np.uint8)
    canvas[0:240, 40:280] = face
    buffer = io.BytesIO()
    Image.fromarray(canvas).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("attack-attention-ws")


@pytest.fixture(scope="module")
def server(data_dir: Path, model_dir: Path) -> Iterator[RunningServer]:
    with running_server(data_dir, model_dir, FACESOCIAL_RATE_LIMITS__ENABLED="false") as running:
        yield running


async def _stream_through_delete(server: RunningServer, meeting_id: str, frame: bytes) -> tuple[int, int]:
    """Stream frames, delete the meeting after a few, keep streaming until the server closes the
    socket; (frames answered after the delete, the close code)."""
    url = f"ws://127.0.0.1:{server.port}{API}/meetings/{meeting_id}/ws?api_key={server.key}"
    answered_after = 0
    async with websockets.connect(url, max_size=None) as socket:
        stamp = 0
        for _ in range(5):
            await socket.send(json.dumps({"timestamp_ms": stamp}))
            await socket.send(frame)
            assert json.loads(await socket.recv())["type"] == "frame"
            stamp += 100
        async with httpx.AsyncClient(base_url=server.base, headers={"X-API-Key": server.key}) as client:
            deleted = await client.delete(f"{API}/meetings/{meeting_id}")
        assert deleted.status_code == 200, deleted.text
        try:
            for _ in range(200):
                await socket.send(json.dumps({"timestamp_ms": stamp}))
                await socket.send(frame)
                answer = json.loads(await asyncio.wait_for(socket.recv(), 15))
                if answer["type"] == "frame":
                    answered_after += 1
                stamp += 100
                await asyncio.sleep(0.1)
        except websockets.ConnectionClosed:
            pass
        return answered_after, socket.close_code or 0


def test_deleting_a_streamed_meeting_leaves_no_metric_rows(server: RunningServer, data_dir: Path) -> None:
    headers = {"X-API-Key": server.key}
    created = httpx.post(f"{server.base}{API}/meetings", headers=headers, json={"title": "doomed"})
    meeting_id = str(created.json()["meeting"]["meeting_id"])
    assert httpx.post(f"{server.base}{API}/meetings/{meeting_id}/start", headers=headers).status_code == 200

    answered_after, code = asyncio.run(_stream_through_delete(server, meeting_id, _frame()))
    assert code == 4404  # the socket is told, eventually

    container = Container(make_settings(data_dir, None))
    try:
        left = container.attention_metrics.raw(uuid.UUID(meeting_id), None, EARLIEST, LATEST, 10000)
    finally:
        container.close()
    assert left == [], (
        f"{len(left)} metric rows of the deleted meeting remain "
        f"({answered_after} frames were analysed after the delete)"
    )


async def _stream_through_end(server: RunningServer, meeting_id: str, frame: bytes) -> int:
    """Stream frames, end the meeting after a few (reading every answer), keep streaming until the
    server closes the socket; the close code."""
    url = f"ws://127.0.0.1:{server.port}{API}/meetings/{meeting_id}/ws?api_key={server.key}"
    async with websockets.connect(url, max_size=None) as socket:
        stamp = 0
        for _ in range(5):
            await socket.send(json.dumps({"timestamp_ms": stamp}))
            await socket.send(frame)
            assert json.loads(await socket.recv())["type"] == "frame"
            stamp += 100
        async with httpx.AsyncClient(base_url=server.base, headers={"X-API-Key": server.key}) as client:
            ended = await client.post(f"{API}/meetings/{meeting_id}/end")
        assert ended.status_code == 200, ended.text
        try:
            for _ in range(200):
                await socket.send(json.dumps({"timestamp_ms": stamp}))
                await socket.send(frame)
                await asyncio.wait_for(socket.recv(), 15)
                stamp += 100
                await asyncio.sleep(0.1)
        except websockets.ConnectionClosed:
            pass
        return socket.close_code or 0


def test_no_metrics_after_the_end_of_a_streamed_meeting(server: RunningServer) -> None:
    """service.end: "the live analysis stops writing once the status is ended" — the stored
    summary is computed from the metrics at the end, so rows dated after ``end_time`` make the
    metrics route disagree with the summary forever."""
    headers = {"X-API-Key": server.key}
    created = httpx.post(f"{server.base}{API}/meetings", headers=headers, json={"title": "ending"})
    meeting_id = str(created.json()["meeting"]["meeting_id"])
    assert httpx.post(f"{server.base}{API}/meetings/{meeting_id}/start", headers=headers).status_code == 200

    code = asyncio.run(_stream_through_end(server, meeting_id, _frame()))
    assert code == 4409

    meeting = httpx.get(f"{server.base}{API}/meetings/{meeting_id}", headers=headers).json()["meeting"]
    after = httpx.get(
        f"{server.base}{API}/meetings/{meeting_id}/metrics",
        headers=headers,
        params={"resolution": "raw", "start": meeting["end_time"], "limit": 10000},
    )
    assert after.status_code == 200, after.text
    assert after.json()["count"] == 0, f"{after.json()['count']} metric rows dated after end_time"
