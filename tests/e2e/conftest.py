"""The web console in a real browser: Debian's Chromium driven by Playwright, against a real
``facesocial serve`` (embedded profile, real models) on a loopback port.

* Chromium: ``$FACESOCIAL_CHROMIUM`` or ``/usr/bin/chromium`` (``.ci/run`` installs Debian's
  ``chromium``). Absent, the tests skip — except under ``CI=true``, where they fail: CI must run them.
* The fake camera plays ``face_liveness_blink_video/video.mp4`` of ../shared/data, converted to
  Y4M (the format ``--use-file-for-fake-video-capture`` reads) once; without the
  data, Chromium's own synthetic pattern is the camera (the liveness test then skips).
* The browser and the server live as long as this package's tests (package scope): the rest of
  the suite does not share a 2-core machine with an idle Chromium and a second server.
* Every test leaves a full-page screenshot in ``$FACESOCIAL_E2E_ARTIFACTS`` (default
  ``test-artifacts/e2e/``), and fails if the page logged an uncaught script error.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.conftest import SHARED_DATA
from tests.integration.conftest import RunningServer, running_server

CHROMIUM = Path(os.environ.get("FACESOCIAL_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(
    os.environ.get("FACESOCIAL_E2E_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts" / "e2e")
)
BLINK_VIDEO = SHARED_DATA / "face_liveness_blink_video" / "video.mp4"
# The flags the machine's Chromium needs headless (no sandbox in a container, no GPU, no
# phoning home), plus a fake camera that needs no permission prompt.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]

pytestmark = pytest.mark.integration


def write_y4m(video: Path, out: Path, *, width: int = 360, fps: int = 15, seconds: float = 14.0) -> Path:
    """``video`` re-encoded as raw YUV 4:2:0 in a Y4M file (what Chromium's fake capture device
    plays, looping), scaled to ``width`` (even height), at ``fps`` frames per second."""
    import cv2

    capture = cv2.VideoCapture(str(video))
    source_fps = capture.get(cv2.CAP_PROP_FPS) or fps
    frames: list[np.ndarray] = []
    index = 0
    while len(frames) < int(seconds * fps):
        ok, frame = capture.read()
        if not ok:
            break
        # Keep the frames nearest the target rate (source ≈ 24 fps).
        if int(index * fps / source_fps) >= len(frames):
            height = round(frame.shape[0] * width / frame.shape[1] / 2) * 2
            frames.append(cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA))
        index += 1
    capture.release()
    if not frames:
        raise RuntimeError(f"no frames decoded from {video}")
    height = frames[0].shape[0]
    with out.open("wb") as handle:
        handle.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            handle.write(b"FRAME\n")
            handle.write(cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())
    return out


@pytest.fixture(scope="package")
def fake_camera(tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    """The blink video as the fake camera's Y4M file, or None without ../shared/data."""
    if not BLINK_VIDEO.is_file():
        return None
    return write_y4m(BLINK_VIDEO, tmp_path_factory.mktemp("camera") / "blink.y4m")


@pytest.fixture(scope="package")
def browser(fake_camera: Path | None) -> Iterator[object]:
    """One headless Chromium for the session (Playwright drives the machine's own binary)."""
    if not CHROMIUM.is_file():
        message = f"Chromium not found at {CHROMIUM} (apt-get install chromium; .ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    flags = list(CHROMIUM_FLAGS)
    if fake_camera is not None:
        flags.append(f"--use-file-for-fake-video-capture={fake_camera}")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=flags, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="package")
def console_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("console")


@pytest.fixture(scope="package")
def console_server(console_data_dir: Path, model_dir: Path) -> Iterator[RunningServer]:
    """A real server for every console test (rate limits off: the tests are not about them).
    Its first key is an admin key of a tenant of its own."""
    with running_server(
        console_data_dir,
        model_dir,
        FACESOCIAL_RATE_LIMITS__ENABLED="false",
    ) as server:
        yield server


@pytest.fixture
def new_key(console_server: RunningServer, console_data_dir: Path) -> Callable[..., str]:
    """``new_key(role="admin")``: a new API key of a new tenant on the running console server,
    made with ``facesocial keys create`` (``role="operator"`` for the model registry's views)."""

    def make(role: str = "admin") -> str:
        answer = subprocess.run(
            [
                sys.executable,
                "-m",
                "facesocial",
                "keys",
                "create",
                "--name",
                f"e2e {uuid.uuid4()}",
                "--role",
                role,
                "--data-dir",
                str(console_data_dir),
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        return answer.stdout.strip().splitlines()[-1]

    return make


@pytest.fixture
def page(browser: object, console_server: RunningServer, request: pytest.FixtureRequest) -> Iterator[object]:
    """A fresh browser context (desktop size, camera allowed) on the console, not logged in.
    Saves a full-page screenshot at the end and fails the test on an uncaught page error."""
    context = browser.new_context(  # type: ignore[attr-defined]
        viewport={"width": 1280, "height": 900},
        base_url=console_server.base,
        permissions=["camera"],
    )
    context.set_default_timeout(30_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    try:
        tab.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    finally:
        context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


def log_in(tab: object, key: str, view: str = "detect") -> None:
    """Log in through the console's own form with an API key, then open ``#/<view>``."""
    tab.goto("/console")  # type: ignore[attr-defined]
    tab.get_by_label("API key", exact=True).fill(key)  # type: ignore[attr-defined]
    tab.get_by_role("button", name="Log in with key").click()  # type: ignore[attr-defined]
    tab.get_by_role("button", name="Log out").wait_for()  # type: ignore[attr-defined]
    tab.goto(f"/console#/{view}")  # type: ignore[attr-defined]
    tab.locator("h1").wait_for()  # type: ignore[attr-defined]


def post_photo(server: RunningServer, key: str, path: str, photo: Path, **fields: str) -> dict[str, Any]:
    """The API's own answer for ``photo`` (multipart ``image``) at ``path``, to compare the page with."""
    answer = httpx.post(
        f"{server.base}{path}",
        headers={"X-API-Key": key},
        files={"image": (photo.name, photo.read_bytes(), "image/jpeg")},
        data=fields,
        timeout=120,
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body
