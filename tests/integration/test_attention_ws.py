"""The live attention WebSocket through a real ``facesocial serve`` (uvicorn) process.

Frames are 640x480 JPEGs composed of real LFW faces (../shared/data/lfw_deepfunneled) in a 2x2
grid: a frontal Colin Powell (yaw near 0) and, for the alerts, a turned one (|yaw| > 30°, looking
away) in the same cell, so the position tracker keeps one track while the head "turns". Frame
times are driven by ``{"timestamp_ms"}`` messages, so the 3 s open / 2 s close of an alert pass
in a fraction of that. Meetings, participants, alerts and metrics are checked through the REST API.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from facesocial.api.app import create_app
from facesocial.container import Container
from tests.conftest import shared_path
from tests.integration.conftest import RunningServer, profile, running_server

websockets = pytest.importorskip("websockets", reason="websockets is a runtime dependency: pip install -e .")

pytestmark = [pytest.mark.integration, pytest.mark.model, pytest.mark.shared_data]
API = "/api/v1/attention"
LFW = ("lfw_deepfunneled", "lfw-deepfunneled")
FRONT = ("Colin_Powell", "Colin_Powell_0009.jpg")
TURNED = ("Colin_Powell", "Colin_Powell_0071.jpg")
OTHERS = [
    ("Tony_Blair", "Tony_Blair_0001.jpg"),
    ("Hugo_Chavez", "Hugo_Chavez_0001.jpg"),
    ("Jacques_Chirac", "Jacques_Chirac_0001.jpg"),
]
STEP_MS = 250
PER_MEETING = 2  # the server's max_sockets_per_meeting


def _face(name: tuple[str, str]) -> np.ndarray:
    with Image.open(shared_path(*LFW, *name)) as image:
        return np.asarray(image.convert("RGB").resize((240, 240)))


def _frame(cells: list[np.ndarray | None], quality: int = 90, background: np.ndarray | None = None) -> bytes:
    """A 640x480 JPEG: up to four 240x240 faces, one per 320x240 quadrant (grey or ``background``)."""
    canvas = np.full((480, 640, 3), 90, dtype=np.uint8) if background is None else background.copy()
    for index, cell in enumerate(cells):
        if cell is not None:
            y, x = (index // 2) * 240, (index % 2) * 320 + 40
            canvas[y : y + 240, x : x + 240] = cell
    buffer = io.BytesIO()
    Image.fromarray(canvas).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[RunningServer]:
    with running_server(
        tmp_path_factory.mktemp("attention-ws"),
        model_dir,
        FACESOCIAL_ATTENTION__MAX_SOCKETS_PER_MEETING=str(PER_MEETING),
        FACESOCIAL_RATE_LIMITS__ENABLED="false",
    ) as running:
        yield running


def _http(server: RunningServer, method: str, path: str, key: str | None = None, **kwargs: Any) -> Any:
    headers = (
        {"X-API-Key": key or server.key} if not (key or "").startswith("Bearer ") else {"Authorization": key}
    )
    response = httpx.request(method, f"{server.base}{path}", headers=headers, timeout=60, **kwargs)
    assert response.status_code < 300, response.text
    return response.json()


def _meeting(server: RunningServer, *, start: bool = True, key: str | None = None) -> str:
    meeting_id = str(
        _http(server, "POST", f"{API}/meetings", key, json={"title": "standup"})["meeting"]["meeting_id"]
    )
    if start:
        _http(server, "POST", f"{API}/meetings/{meeting_id}/start", key)
    return meeting_id


def _ws(server: RunningServer, meeting_id: str, key: str | None = None) -> str:
    return f"ws://127.0.0.1:{server.port}{API}/meetings/{meeting_id}/ws?api_key={key or server.key}"


async def _send(socket: Any, t_ms: int, data: bytes) -> None:
    await socket.send(json.dumps({"timestamp_ms": t_ms}))
    await socket.send(data)


async def _exchange(socket: Any, t_ms: int, data: bytes) -> dict[str, Any]:
    """One frame in, its answer out (lockstep: nothing is dropped)."""
    await _send(socket, t_ms, data)
    answer: dict[str, Any] = json.loads(await socket.recv())
    return answer


def _items(server: RunningServer, meeting_id: str, what: str, **params: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = _http(server, "GET", f"{API}/meetings/{meeting_id}/{what}", params=params)[
        "items"
    ]
    return items


def _eventually(check: Any, seconds: float = 10.0) -> Any:
    """``check()``'s first truthy value within ``seconds`` (the server cleans up after the close)."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def test_faces_alerts_participants_and_metrics_of_one_stream(server: RunningServer) -> None:
    meeting_id = _meeting(server)
    front, turned = _face(FRONT), _face(TURNED)
    others = [_face(name) for name in OTHERS]
    # 1 s frontal, 4 s turned (looking away opens after 3 s), 3 s frontal (closes after 2 s) while the
    # fourth face leaves after 2 s (its track ends 1 s after its last sighting).
    plan: list[tuple[int, bytes]] = []
    for i in range(33):
        t = i * STEP_MS
        head = turned if 1000 <= t < 5000 else front
        plan.append((t, _frame([head, others[0], others[1], others[2] if t < 2000 else None])))

    async def run() -> tuple[list[dict[str, Any]], dict[str, Any]]:
        answers = []
        async with websockets.connect(_ws(server, meeting_id), max_size=2**24) as socket:
            for t, data in plan:
                answers.append(await _exchange(socket, t, data))
            live = _http(server, "GET", f"{API}/meetings/{meeting_id}/live")
        return answers, live

    answers, live = asyncio.run(run())
    assert all(a["type"] == "frame" and a["dropped"] == 0 for a in answers), answers[0]
    assert [a["frame_index"] for a in answers] == list(range(len(plan)))
    assert [a["timestamp_ms"] for a in answers] == [t for t, _ in plan]
    assert len(answers[0]["faces"]) == 4
    first = {f["track_id"]: f["participant_id"] for f in answers[0]["faces"]}
    assert len(set(first.values())) == 4
    for face in answers[0]["faces"]:
        assert 0 <= face["attention_score"] <= 100 and set(face["box"]) == {"x", "y", "width", "height"}
    # The turned head: its track and participant are kept, and it is reported looking away.
    head = next(f for f in answers[0]["faces"] if f["box"]["x"] < 320 and f["box"]["y"] < 240)
    head_track, head_participant = head["track_id"], head["participant_id"]
    during = [f for a in answers[8:20] for f in a["faces"] if f["track_id"] == head_track]
    assert during and all(f["participant_id"] == head_participant for f in during)
    assert all(f["is_looking_away"] for f in during)
    # Looking away opened (after 3 s) and closed (2 s after the head came back), with one alert id.
    events = [e for a in answers for e in a["alerts"] if e["alert_type"] == "looking_away"]
    states = [e["state"] for e in events]
    assert states[0] == "opened" and states[-1] == "closed", states
    assert {e["participant_id"] for e in events} == {head_participant}
    assert len({e["alert_id"] for e in events}) == 1
    opened_at = next(a["timestamp_ms"] for a in answers for e in a["alerts"] if e is events[0])
    assert 1000 + 3000 <= opened_at <= 1000 + 3000 + 2 * STEP_MS
    # The fourth face vanished at 2 s: its participant left while the socket was still open.
    gone = next(
        f["participant_id"] for f in answers[0]["faces"] if f["box"]["x"] >= 320 and f["box"]["y"] >= 240
    )
    assert all(gone not in {f["participant_id"] for f in a["faces"]} for a in answers[12:])
    assert {p["participant_id"] for p in live["participants"]} <= set(first.values()) - {gone}
    assert live["sockets"] == 1 and live["participants"], live
    # Stored: the alert resolved, everyone left after the close, metric rows one per second at most.
    stored = _items(server, meeting_id, "alerts", type="looking_away")
    assert [a["alert_id"] for a in stored] == [events[0]["alert_id"]]
    assert stored[0]["resolved_at"] is not None and stored[0]["participant_id"] == head_participant
    # The frames' timestamps run faster than the clock here: the stored span still agrees with
    # the alert's (stream-time) duration.
    span = datetime.fromisoformat(stored[0]["resolved_at"]) - datetime.fromisoformat(stored[0]["created_at"])
    assert span.total_seconds() == pytest.approx(stored[0]["duration_seconds"], abs=0.01)
    people = _eventually(
        lambda: [p for p in _items(server, meeting_id, "participants") if not p["is_active"]]
    )
    assert len(people) == 4 and {p["participant_id"] for p in people} == set(first.values())
    assert len({p["stream_id"] for p in people}) == 1
    rows = _items(server, meeting_id, "metrics", resolution="raw", limit="10000")
    per_participant: dict[str, list[str]] = {}
    for row in rows:
        per_participant.setdefault(row["participant_id"], []).append(row["time"])
    assert set(per_participant) == set(first.values())
    for times in per_participant.values():
        assert len(times) == len(set(times))  # one row per participant per second
    assert _http(server, "GET", f"{API}/meetings/{meeting_id}/live")["sockets"] == 0


def test_two_sockets_on_one_meeting_and_the_socket_limit(server: RunningServer) -> None:
    meeting_id = _meeting(server)
    front, blair, chavez = _face(FRONT), _face(OTHERS[0]), _face(OTHERS[1])

    async def run() -> tuple[list[dict[str, Any]], list[dict[str, Any]], tuple[int, str], int]:
        url = _ws(server, meeting_id)
        async with websockets.connect(url) as one, websockets.connect(url) as two:
            a = [await _exchange(one, i * STEP_MS, _frame([front, blair])) for i in range(4)]
            b = [await _exchange(two, i * STEP_MS, _frame([None, None, chavez])) for i in range(4)]
            refused = await _refusal(url)
        # The slots are released once the server has seen both closes, which it handles after
        # the client's close returns: ask again (bounded) until that has happened.
        pong = 0
        for _ in range(50):
            async with websockets.connect(url) as again:
                with contextlib.suppress(websockets.exceptions.ConnectionClosed):
                    pong = await _pong(again)
            if pong:
                break
            await asyncio.sleep(0.1)
        return a, b, refused, pong

    a, b, refused, pong = asyncio.run(run())
    assert refused == (4429, "TOO_MANY_STREAMS")
    assert pong == 1
    assert all(len(x["faces"]) == 2 for x in a) and all(len(x["faces"]) == 1 for x in b)
    # Each socket has its own session: track ids restart, participants do not mix.
    ours = {f["participant_id"] for x in a for f in x["faces"]}
    theirs = {f["participant_id"] for x in b for f in x["faces"]}
    assert len(ours) == 2 and len(theirs) == 1 and not ours & theirs
    people = _eventually(
        lambda: [p for p in _items(server, meeting_id, "participants") if not p["is_active"]]
    )
    assert len(people) == 3 and len({p["stream_id"] for p in people}) == 2


async def _refusal(url: str, subprotocols: list[str] | None = None) -> tuple[int, str]:
    """The close code and reason of a refused socket (after its error message)."""
    async with websockets.connect(url, subprotocols=subprotocols) as socket:
        message = json.loads(await socket.recv())
        assert message["type"] == "error"
        with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
            await socket.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.reason == message["code"]
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def _pong(socket: Any) -> int:
    await socket.send(json.dumps({"type": "ping"}))
    return 1 if json.loads(await socket.recv()) == {"type": "pong"} else 0


def test_a_client_that_vanishes_mid_stream_leaves_no_open_state(server: RunningServer) -> None:
    meeting_id = _meeting(server)
    front, turned, blair = _face(FRONT), _face(TURNED), _face(OTHERS[0])

    async def run() -> list[dict[str, Any]]:
        socket = await websockets.connect(_ws(server, meeting_id))
        answers = [await _exchange(socket, 0, _frame([front, blair]))]
        answers += [await _exchange(socket, t, _frame([turned, blair])) for t in range(250, 4500, 250)]
        socket.transport.abort()  # no close handshake: the network went away
        return answers

    answers = asyncio.run(run())
    opened = [e for a in answers for e in a["alerts"] if e["state"] == "opened"]
    assert any(e["alert_type"] == "looking_away" for e in opened), [a["alerts"] for a in answers]
    assert _eventually(lambda: not _items(server, meeting_id, "participants", active="true"))
    alerts = _items(server, meeting_id, "alerts")
    assert {a["alert_id"] for a in alerts} == {e["alert_id"] for e in opened}
    assert all(a["resolved_at"] is not None for a in alerts)
    rows = _items(server, meeting_id, "metrics", resolution="raw")
    assert {r["participant_id"] for r in rows} == {f["participant_id"] for f in answers[0]["faces"]}
    assert _http(server, "GET", f"{API}/meetings/{meeting_id}/live")["sockets"] == 0


def test_a_client_that_does_not_read_gets_frames_dropped_not_queued(server: RunningServer) -> None:
    meeting_id = _meeting(server)
    faces = [_face(FRONT), _face(OTHERS[0]), _face(OTHERS[1]), _face(OTHERS[2])]
    rng = np.random.default_rng(7)
    # Noise around the faces makes ~0.5 MB frames: 50 of them queued would hold 25 MB.
    frames = []
    for i in range(50):
        noise = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
        frames.append((i * 100, _frame(faces, quality=98, background=noise)))
    sent = sum(len(data) for _, data in frames)
    assert sent > 10 * 2**20

    async def run() -> tuple[list[dict[str, Any]], int, int]:
        async with websockets.connect(_ws(server, meeting_id), max_size=2**24) as socket:
            # The same frames in lockstep first: models, buffers and threads have their memory.
            for t, data in frames:
                await _exchange(socket, t, data)
            before = _peak_rss(server.port)
            for t, data in frames:
                await _send(socket, 10_000 + t, data)  # without reading anything
            answers: list[dict[str, Any]] = []
            while sum(1 + a.get("dropped", 0) for a in answers) < len(frames):
                answers.append(json.loads(await asyncio.wait_for(socket.recv(), timeout=60)))
            return answers, before, _peak_rss(server.port)

    answers, before, after = asyncio.run(run())
    assert all(a["type"] == "frame" for a in answers)
    dropped = sum(a["dropped"] for a in answers)
    assert dropped > 0 and len(answers) + dropped == len(frames)
    assert answers[-1]["timestamp_ms"] == 10_000 + frames[-1][0]  # the newest frame is the one kept
    assert after - before < sent / 2, (before, after, sent)


def _peak_rss(port: int) -> int:
    """The peak resident memory (bytes, VmHWM) of the server process listening on ``port``."""
    for status in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            command = status.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"serve" in command and str(port).encode() in command:
            for line in (status.parent / "status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    pytest.skip("the server process is not visible in /proc here")


def test_refusals_and_control_messages(server: RunningServer) -> None:
    meeting_id = _meeting(server)
    scheduled = _meeting(server, start=False)
    ended = _meeting(server)
    _http(server, "POST", f"{API}/meetings/{ended}/end")
    other = f"{server.base}/api/v1/auth"
    account = {"username": "other_tenant", "email": "other@example.org", "password": "a long password 1"}
    assert httpx.post(f"{other}/register", json=account, timeout=30).status_code == 201
    token = httpx.post(f"{other}/login", json=account | {"email": None}, timeout=30).json()["access_token"]
    theirs = _meeting(server, key=f"Bearer {token}")
    base = f"ws://127.0.0.1:{server.port}{API}/meetings"

    async def refusals() -> dict[str, tuple[int, str]]:
        return {
            "no key": await _refusal(f"{base}/{meeting_id}/ws"),
            "bad key": await _refusal(f"{base}/{meeting_id}/ws?api_key=fs_nonsense"),
            "unknown": await _refusal(_ws(server, "00000000-0000-0000-0000-000000000000")),
            "malformed": await _refusal(_ws(server, "x" * 500)),
            "other tenant": await _refusal(_ws(server, theirs)),
            "scheduled": await _refusal(_ws(server, scheduled)),
            "ended": await _refusal(_ws(server, ended)),
        }

    codes = asyncio.run(refusals())
    assert codes["no key"] == (4401, "MISSING_API_KEY")
    assert codes["bad key"][0] == 4401
    assert codes["unknown"] == codes["malformed"] == codes["other tenant"] == (4404, "MEETING_NOT_FOUND")
    assert codes["scheduled"] == (4409, "MEETING_NOT_ACTIVE")
    assert codes["ended"] == (4409, "MEETING_ENDED")

    async def controls() -> list[dict[str, Any]]:
        headers = {"Authorization": f"Bearer {token}"}
        url = f"{base}/{theirs}/ws"
        async with websockets.connect(url, additional_headers=headers, max_size=2**24) as socket:
            replies = []
            for message in (
                "not json",
                json.dumps([1, 2]),
                json.dumps({"type": "dance"}),
                json.dumps({"timestamp_ms": "soon"}),
                json.dumps({"type": "ping"}),
            ):
                await socket.send(message)
                replies.append(json.loads(await socket.recv()))
            await socket.send(b"not an image")
            replies.append(json.loads(await socket.recv()))
            await socket.send(b"\xff" * (2 * 2**20 + 1))
            replies.append(json.loads(await socket.recv()))
            replies.append(await _exchange(socket, 5000, _frame([_face(FRONT)])))
            replies.append(await _exchange(socket, 1000, _frame([_face(FRONT)])))  # back in time
            await socket.send(json.dumps({"type": "status"}))
            replies.append(json.loads(await socket.recv()))
        return replies

    replies = asyncio.run(controls())

    async def by_subprotocol(offered: list[str]) -> tuple[str | None, dict[str, Any]]:
        # What a browser does with an account's token: new WebSocket(url, ["facesocial.bearer", token]).
        async with websockets.connect(f"{base}/{theirs}/ws", subprotocols=offered) as socket:
            await socket.send(json.dumps({"type": "status"}))
            return socket.subprotocol, json.loads(await socket.recv())

    selected, status = asyncio.run(by_subprotocol(["facesocial.bearer", token]))
    assert selected == "facesocial.bearer" and status["type"] == "status"
    assert asyncio.run(_refusal(f"{base}/{meeting_id}/ws", ["facesocial.bearer", token])) == (
        4404,
        "MEETING_NOT_FOUND",
    ), "the token's tenant is not the key's: another tenant's meeting stays unseen"
    assert asyncio.run(_refusal(f"{base}/{theirs}/ws", ["facesocial.bearer", "not.a.token"]))[0] == 4401
    assert [r["type"] for r in replies[:4]] == ["error"] * 4
    assert {r["code"] for r in replies[:4]} == {"VALIDATION_ERROR"}
    assert replies[4] == {"type": "pong"}
    assert replies[5]["type"] == "error" and replies[5]["code"] in {"NOT_AN_IMAGE", "UNSUPPORTED_MEDIA_TYPE"}
    assert replies[6]["code"] == "IMAGE_TOO_LARGE"
    assert replies[7]["type"] == "frame" and len(replies[7]["faces"]) == 1
    assert replies[8]["code"] == "VALIDATION_ERROR" and replies[8]["timestamp_ms"] == 1000
    assert replies[9]["type"] == "status" and replies[9]["frames_processed"] == 1
    assert replies[9]["frames_received"] == 3  # the oversized one was refused unread


def test_ending_the_meeting_closes_its_sockets(server: RunningServer) -> None:
    meeting_id = _meeting(server)
    front = _face(FRONT)

    async def run() -> tuple[dict[str, Any], dict[str, Any], tuple[int, str], float]:
        async with websockets.connect(_ws(server, meeting_id)) as socket:
            answer = await _exchange(socket, 0, _frame([front]))
            ended = await asyncio.to_thread(_http, server, "POST", f"{API}/meetings/{meeting_id}/end")
            began = time.monotonic()
            # Frames keep coming; within the status check's period the server says why it stops.
            message: dict[str, Any] = {}
            t = 0
            with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                while True:
                    t += STEP_MS
                    await _send(socket, t, _frame([front]))
                    reply = json.loads(await asyncio.wait_for(socket.recv(), timeout=30))
                    if reply["type"] == "error":
                        message = reply
                        await socket.recv()
        rcvd = closed.value.rcvd
        assert rcvd is not None
        return answer, message | {"ended": ended}, (rcvd.code, rcvd.reason), time.monotonic() - began

    answer, message, close, waited = asyncio.run(run())
    assert len(answer["faces"]) == 1
    assert message["code"] == "MEETING_ENDED" and close == (4409, "MEETING_ENDED")
    assert waited < 5.0 + 2.0  # STATUS_CHECK_SECONDS, plus a frame and a margin
    people = _items(server, meeting_id, "participants")
    assert len(people) == 1 and not people[0]["is_active"]


@pytest.mark.parametrize("name", ["embedded", "scaled"])
def test_live_state_and_metrics_on_both_profiles(name: str, tmp_path: Path, model_dir: Path) -> None:
    """In process (TestClient), on SQLite + memory and on PostgreSQL (partitioned metrics) + Redis:
    the live keys, GET .../live and the metric rows of one socket."""
    front, blair = _face(FRONT), _face(OTHERS[0])
    with profile(name, tmp_path, model_dir) as settings:
        container = Container(settings)
        container.prepare()
        key = container.keys.create("live").secret
        headers = {"X-API-Key": key}
        with TestClient(create_app(container)) as client:
            meeting_id = client.post(f"{API}/meetings", json={"title": "t"}, headers=headers).json()[
                "meeting"
            ]["meeting_id"]
            assert client.post(f"{API}/meetings/{meeting_id}/start", headers=headers).status_code == 200
            with client.websocket_connect(f"{API}/meetings/{meeting_id}/ws", headers=headers) as socket:
                answers = []
                for i in range(6):
                    socket.send_text(json.dumps({"timestamp_ms": i * STEP_MS}))
                    socket.send_bytes(_frame([front, blair]))
                    answers.append(socket.receive_json())
                    time.sleep(0.25)  # wall-clock seconds pass: completed seconds are flushed
                presence = container.kv.keys(f"ws_sessions:{meeting_id}:")
                live = client.get(f"{API}/meetings/{meeting_id}/live", headers=headers).json()
            assert len(presence) == 1
            ids = {f["participant_id"] for a in answers for f in a["faces"]}
            assert len(ids) == 2
            assert live["sockets"] == 1 and {p["participant_id"] for p in live["participants"]} == ids
            assert all(0 <= p["attention_score"] <= 100 for p in live["participants"])
            # After the close: no live keys, every participant left, their rows stored.
            assert container.kv.keys(f"ws_sessions:{meeting_id}:") == []
            assert container.kv.keys(f"attention:{meeting_id}:") == []
            rows = client.get(
                f"{API}/meetings/{meeting_id}/metrics", params={"resolution": "raw"}, headers=headers
            ).json()["items"]
            assert {r["participant_id"] for r in rows} == ids
            assert 2 <= len(rows) <= 2 * 3  # one row per participant per wall-clock second (~1.5 s)
            people = client.get(f"{API}/meetings/{meeting_id}/participants", headers=headers).json()["items"]
            assert not any(p["is_active"] for p in people)
        container.close()
