"""``POST /api/v1/counting/first-frame``: the first frame of an upload as JPEG (the console draws
counting lines on it when the browser cannot decode the video), with the video routes' checks.

Embedded profile only: the route stores nothing and touches no store but the spool folder.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from facesocial.api.app import create_app
from facesocial.container import Container
from facesocial.video.synthetic import read_pattern, write_video
from tests.integration.conftest import profile

pytestmark = pytest.mark.integration

ROUTE = "/api/v1/counting/first-frame"


@dataclass(frozen=True)
class App:
    client: TestClient
    container: Container
    key: str


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    data_dir = tmp_path_factory.mktemp("first-frame")
    with profile("embedded", data_dir, None) as settings:
        container = Container(settings)
        container.prepare()
        key = container.keys.create("tests").secret
        with TestClient(create_app(container), raise_server_exceptions=False) as client:
            yield App(client, container, key)
        container.close()


def post(app: App, payload: bytes, *, key: str | None = "", **data: str) -> httpx.Response:
    headers = {} if key is None else {"X-API-Key": key or app.key}
    files = {"video": ("v.avi", payload, "video/x-msvideo")}
    return app.client.post(ROUTE, files=files, data=data, headers=headers)


def spool_left(container: Container) -> list[Path]:
    incoming = container.settings.resolved_spool_dir() / "incoming"
    return [p for p in incoming.rglob("*") if p.is_file()] if incoming.exists() else []


def test_the_first_frame_comes_back_as_a_jpeg_of_the_video_size(app: App, tmp_path: Path) -> None:
    video = write_video(
        tmp_path / "clip.avi", seconds=1.0, fps=10, width=160, height=96, container_format="avi"
    )
    r = post(app, video.read_bytes())
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/jpeg"
    assert (r.headers["x-video-width"], r.headers["x-video-height"]) == ("160", "96")
    image = Image.open(io.BytesIO(r.content))
    assert image.format == "JPEG" and image.size == (160, 96)
    rgb = np.asarray(image.convert("RGB"))
    assert read_pattern(rgb) == 0  # frame 0's pattern, not a later frame's
    assert spool_left(app.container) == []


def test_a_rotated_video_gives_the_upright_frame(app: App, tmp_path: Path) -> None:
    video = write_video(
        tmp_path / "phone.mp4", seconds=0.5, fps=10, width=160, height=96, display_rotation_ccw=-90
    )
    r = post(app, video.read_bytes())
    assert r.status_code == 200, r.text
    assert Image.open(io.BytesIO(r.content)).size == (96, 160)
    assert (r.headers["x-video-width"], r.headers["x-video-height"]) == ("96", "160")


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        (b"", 400, "EMPTY_VIDEO"),
        (b"no video here" * 100, 415, "UNSUPPORTED_VIDEO"),
    ],
)
def test_a_bad_file_is_refused_with_its_code_and_nothing_is_left(
    app: App, payload: bytes, status: int, code: str
) -> None:
    r = post(app, payload)
    body = r.json()
    assert (r.status_code, body["error"]["code"]) == (status, code), body
    assert spool_left(app.container) == []


def test_unknown_fields_no_file_and_no_credentials_are_refused(app: App, tmp_path: Path) -> None:
    video = write_video(tmp_path / "clip.avi", seconds=0.5, fps=10, container_format="avi")
    r = post(app, video.read_bytes(), lines="[]")
    assert (r.status_code, r.json()["error"]["code"]) == (422, "VALIDATION_ERROR")
    other = {"other": ("a.txt", b"abc", "text/plain")}
    r = app.client.post(ROUTE, data={"x": "1"}, files=other, headers={"X-API-Key": app.key})
    assert r.status_code == 422, r.text
    assert post(app, video.read_bytes(), key=None).status_code == 401


def test_the_route_is_documented_with_its_error_codes(app: App) -> None:
    operation = app.client.get("/openapi.json").json()["paths"][ROUTE]["post"]
    assert "image/jpeg" in operation["responses"]["200"]["content"]
    codes = {code for answer in operation["responses"].values() for code in answer.get("x-error-codes", [])}
    assert {"EMPTY_VIDEO", "UNSUPPORTED_VIDEO", "VIDEO_TOO_LARGE", "VIDEO_TRUNCATED"} <= codes
