"""spool_video_upload inside a real FastAPI app (the API's error rendering and body limit),
driven through httpx's ASGI transport, which streams the request body chunk by chunk."""

from __future__ import annotations

import hashlib
import json
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from facesocial.evaluation.bench_video import BOUNDARY as BENCH_BOUNDARY
from facesocial.evaluation.bench_video import UPLOAD_PATH, multipart_body, upload_app
from facesocial.settings import IntakeSettings, VideoLimits

MIB = 1024 * 1024
INTAKE = IntakeSettings()
BOUNDARY = "test-boundary-7f3a"


def post(app: Any, **kwargs: Any) -> httpx.Response:
    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post(UPLOAD_PATH, **kwargs)

    return anyio.run(send)


def error(response: httpx.Response) -> tuple[int, str]:
    body = response.json()
    assert body["success"] is False
    return response.status_code, body["error"]["code"]


def part(name: str, value: bytes, filename: str | None = None, content_type: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
    head = f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n"
    if content_type:
        head += f"Content-Type: {content_type}\r\n"
    return head.encode() + b"\r\n" + value + b"\r\n"


def form(*parts: bytes, close: bool = True) -> bytes:
    return b"".join(parts) + (f"--{BOUNDARY}--\r\n".encode() if close else b"")


MULTIPART = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    return tmp_path / "spool"  # created by the first upload


def app_for(spool: Path, max_bytes: int = 8 * MIB) -> Any:
    return upload_app(spool, VideoLimits(max_video_bytes=max_bytes), INTAKE, keep=True)


def leftovers(spool: Path) -> list[Path]:
    return sorted(spool.iterdir()) if spool.exists() else []


def test_a_30mb_upload_streams_to_disk_with_little_memory(tmp_path: Path, spool: Path) -> None:
    source = tmp_path / "source.bin"
    digest = hashlib.sha256()
    with source.open("wb") as handle:
        for number in range(30):
            block = hashlib.shake_256(number.to_bytes(4, "big")).digest(MIB)
            digest.update(block)
            handle.write(block)
    app = app_for(spool, max_bytes=64 * MIB)
    tracemalloc.start()
    try:
        with source.open("rb") as handle:
            response = post(
                app,
                files={"video": ("clip.mp4", handle, "video/mp4")},
                data={"sample_fps": "2", "callback_url": "", "note": "héllo"},
            )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 200, response.text
    answer = response.json()
    # The client side (httpx reading the file in 64 KiB pieces) is in the same process: the
    # whole peak, both sides together, is a small fraction of the 30 MiB that went through.
    assert peak < 6 * MIB, f"peak traced memory {peak / MIB:.1f} MiB"
    stored = Path(answer["path"])
    assert stored.parent == spool and stored.stat().st_size == 30 * MIB == answer["size"]
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == digest.hexdigest() == answer["sha256"]
    assert (answer["filename"], answer["content_type"]) == ("clip.mp4", "video/mp4")
    assert answer["fields"] == {"sample_fps": "2", "note": "héllo"}  # the empty field is absent


def test_a_generated_body_without_content_length(spool: Path) -> None:
    _, body, digest = multipart_body(3 * MIB + 17, block=100_000)

    async def chunks() -> AsyncIterator[bytes]:
        for piece in body:
            yield piece

    headers = {"Content-Type": f"multipart/form-data; boundary={BENCH_BOUNDARY}"}
    response = post(app_for(spool), content=chunks(), headers=headers)
    assert response.status_code == 200, response.text
    assert (response.json()["sha256"], response.json()["size"]) == (digest, 3 * MIB + 17)


class CountingBody:
    """A request body in 64 KiB chunks that counts how many the server pulled."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self.data), 65536):
            self.sent += 1
            yield self.data[start : start + 65536]


@pytest.mark.parametrize("declare_length", [True, False])
def test_oversize_file_is_refused_at_once_and_removed(spool: Path, declare_length: bool) -> None:
    limit = 1 * MIB
    data = form(part("video", b"\0" * (4 * MIB), "big.mp4", "video/mp4"))
    body = CountingBody(data)
    headers = dict(MULTIPART)
    if declare_length:
        headers["Content-Length"] = str(len(data))
    response = post(app_for(spool, max_bytes=limit), content=body, headers=headers)
    assert error(response) == (413, "VIDEO_TOO_LARGE")
    assert response.json()["error"]["details"] == {"limit_bytes": limit}
    assert leftovers(spool) == []
    if declare_length:
        assert body.sent == 0  # refused from the Content-Length alone
    else:
        assert body.sent <= limit // 65536 + 2  # stopped as soon as the file passed the limit


def test_file_over_the_limit_within_the_body_budget(spool: Path) -> None:
    # Content-Length fits the route's budget (limit + field allowance), the file does not.
    limit = 1 * MIB
    data = form(part("video", b"\1" * (limit + 1), "x.mp4"))
    assert len(data) < limit + INTAKE.field_allowance_bytes
    response = post(app_for(spool, max_bytes=limit), content=data, headers=MULTIPART)
    assert error(response) == (413, "VIDEO_TOO_LARGE")
    assert leftovers(spool) == []


def test_a_file_exactly_at_the_limit_passes(spool: Path) -> None:
    data = form(part("video", b"\2" * MIB, "x.mp4"))
    response = post(app_for(spool, max_bytes=MIB), content=data, headers=MULTIPART)
    assert response.status_code == 200 and response.json()["size"] == MIB


def test_client_disconnect_leaves_no_file(spool: Path) -> None:
    """The ASGI app called directly: the client sends two chunks of the file, then goes away."""
    app = app_for(spool)
    head = form(part("video", b"\3" * 100_000, "x.mp4"), close=False)
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": head[:50_000], "more_body": True},
        {"type": "http.request", "body": head[50_000:], "more_body": True},
        {"type": "http.disconnect"},
    ]
    seen_file: list[bool] = []
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if len(messages) == 1:  # before the disconnect: the partial file exists on disk
            seen_file.append(bool(leftovers(spool)))
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": UPLOAD_PATH,
        "raw_path": UPLOAD_PATH.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", MULTIPART["Content-Type"].encode()), (b"host", b"test")],
        "client": ("127.0.0.1", 5000),
        "server": ("test", 80),
    }
    anyio.run(app, scope, receive, send)
    assert seen_file == [True]
    assert leftovers(spool) == []
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = json.loads(b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"))
    assert (start["status"], body["error"]["code"]) == (400, "CLIENT_DISCONNECTED")


@pytest.mark.parametrize(
    ("body", "headers", "expected"),
    [
        (form(part("sample_fps", b"2")), MULTIPART, (422, "VALIDATION_ERROR")),  # no file part
        (form(part("video", b"", "empty.mp4")), MULTIPART, (400, "EMPTY_VIDEO")),
        (form(part("video", b"abc", "x.mp4"), close=False), MULTIPART, (422, "VALIDATION_ERROR")),  # no end
        (b"this is not multipart at all", MULTIPART, (422, "VALIDATION_ERROR")),
        (
            form(part("video", b"abc", "x.mp4")),
            {"Content-Type": "multipart/form-data"},
            (422, "VALIDATION_ERROR"),
        ),
        (
            form(part("video", b"abc", "a.mp4"), part("video", b"def", "b.mp4")),
            MULTIPART,
            (422, "VALIDATION_ERROR"),
        ),  # two videos
        (
            form(part("video", b"abc", "a.mp4"), part("thumbnail", b"d", "t.jpg")),
            MULTIPART,
            (422, "VALIDATION_ERROR"),
        ),
        (
            form(part("video", b"abc", "a.mp4"), part("note", b"x" * (INTAKE.field_allowance_bytes + 1))),
            MULTIPART,
            (422, "VALIDATION_ERROR"),
        ),
        (
            form(
                part("video", b"abc", "a.mp4"),
                *[part(f"f{i}", b"1") for i in range(INTAKE.max_form_fields + 1)],
            ),
            MULTIPART,
            (422, "VALIDATION_ERROR"),
        ),
        (
            form(part("video", b"abc", "a.mp4"), part("note", b"a"), part("note", b"b")),
            MULTIPART,
            (422, "VALIDATION_ERROR"),
        ),
        (
            form(part("video", b"abc", "a.mp4"), part("note", b"\xff\xfe")),
            MULTIPART,
            (422, "VALIDATION_ERROR"),
        ),
        (
            form(part("video", b"abc", "x.mp4")),
            {"Content-Type": "multipart/form-data; boundary=" + "b" * 300},
            (422, "VALIDATION_ERROR"),
        ),
        (b'{"video": "AAAA"}', {"Content-Type": "application/json"}, (415, "UNSUPPORTED_MEDIA_TYPE")),
        (b"video=abc", {"Content-Type": "application/x-www-form-urlencoded"}, (422, "VALIDATION_ERROR")),
        (b"", {"Content-Type": "video/mp4"}, (400, "EMPTY_VIDEO")),
    ],
    ids=[
        "no-file",
        "empty-file",
        "no-closing-boundary",
        "garbage",
        "no-boundary",
        "two-videos",
        "other-file-part",
        "field-too-long",
        "too-many-fields",
        "field-twice",
        "field-not-utf8",
        "boundary-too-long",
        "json",
        "urlencoded",
        "raw-empty",
    ],
)
def test_refusals_leave_no_file(
    request: pytest.FixtureRequest,
    spool: Path,
    body: bytes,
    headers: dict[str, str],
    expected: tuple[int, str],
) -> None:
    response = post(app_for(spool), content=body, headers=headers)
    assert error(response) == expected, response.text
    assert REASONS[request.node.callspec.id] in response.json()["error"]["message"]
    assert leftovers(spool) == []


# What each refusal's message says (so that each case meets the check it is about).
REASONS = {
    "no-file": "video: Field required",
    "empty-file": "empty",
    "no-closing-boundary": "ends before its closing boundary",
    "garbage": "malformed",
    "no-boundary": "no boundary",
    "two-videos": "video: sent twice",
    "other-file-part": "thumbnail: unexpected file part",
    "field-too-long": "note: longer than 65536 bytes",
    "too-many-fields": "more than 32 text fields",
    "field-twice": "note: sent twice",
    "field-not-utf8": "not UTF-8",
    "boundary-too-long": "Boundary length 300",
    "json": "got application/json",
    "urlencoded": "video: Field required",
    "raw-empty": "empty",
}


def test_missing_file_names_the_field(spool: Path) -> None:
    response = post(app_for(spool), content=form(part("sample_fps", b"2")), headers=MULTIPART)
    assert response.json()["error"]["details"][0]["field"] == "video"


def test_raw_body_with_query_fields(spool: Path) -> None:
    data = hashlib.shake_256(b"raw").digest(200_000)
    response = post(
        app_for(spool),
        content=data,
        params={"sample_fps": "5"},
        headers={"Content-Type": "video/quicktime", "Content-Disposition": 'attachment; filename="clip.mov"'},
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["sha256"] == hashlib.sha256(data).hexdigest() and answer["size"] == len(data)
    assert (answer["filename"], answer["content_type"], answer["fields"]) == (
        "clip.mov",
        "video/quicktime",
        {"sample_fps": "5"},
    )
    assert Path(answer["path"]).read_bytes() == data


def test_what_follows_the_closing_boundary_is_not_read(spool: Path) -> None:
    data = form(part("video", b"\4" * 1000, "x.mp4")) + b"\0" * (4 * MIB)  # a 4 MiB epilogue
    body = CountingBody(data)
    response = post(app_for(spool), content=body, headers=MULTIPART)
    assert response.status_code == 200 and response.json()["size"] == 1000
    assert body.sent <= INTAKE.field_allowance_bytes // 65536 + 3
