"""The console's Detect view in Chromium, on the real astronaut photo and the real models: the boxes
drawn on the canvas are the API's own boxes for the same photo (asked again here with httpx), the
68-point and 468-point options draw those points, attributes show an age, and a file that is not
an image shows the API's error code while the page keeps working."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import Locator, Page, expect

from tests.conftest import encode
from tests.e2e.conftest import log_in, post_photo
from tests.integration.conftest import RunningServer

DETECT = "/api/v1/face-detection/detect"


@pytest.fixture
def astronaut_file(tmp_path: Path, astronaut_rgb: np.ndarray) -> Path:
    path = tmp_path / "astronaut.jpg"
    path.write_bytes(encode(astronaut_rgb, quality=92))
    return path


@pytest.fixture
def three_faces_file(tmp_path: Path, astronaut_rgb: np.ndarray) -> Path:
    """Three faces side by side (the astronaut's face region tiled), so counts are not all 1."""
    path = tmp_path / "three.jpg"
    region = astronaut_rgb[0:300, 100:340]
    path.write_bytes(encode(np.concatenate([region] * 3, axis=1), quality=92))
    return path


def detect_in_page(page: Page, photo: Path, *, landmarks: str = "5", attributes: bool = False) -> Locator:
    page.get_by_label("Image", exact=True).set_input_files(str(photo))
    page.get_by_label("Landmarks").select_option(landmarks)
    if attributes:
        page.get_by_label("Return attributes (age, gender, emotion)").check()
    page.get_by_role("button", name="Detect faces").click()
    canvas = page.locator("canvas.face-canvas")
    expect(canvas).to_be_visible(timeout=120_000)
    return canvas


def drawn(canvas: Locator, name: str) -> list[Any]:
    value: list[Any] = json.loads(canvas.get_attribute(f"data-{name}") or "null")
    return value


@pytest.mark.parametrize(("photo_name", "faces"), [("astronaut_file", 1), ("three_faces_file", 3)])
def test_drawn_boxes_are_the_apis_boxes(
    page: Page,
    console_server: RunningServer,
    new_key: Callable[..., str],
    request: pytest.FixtureRequest,
    photo_name: str,
    faces: int,
) -> None:
    photo: Path = request.getfixturevalue(photo_name)
    key = new_key()
    truth = post_photo(console_server, key, DETECT, photo, landmarks="5")
    assert truth["faces_detected"] == faces
    log_in(page, key, "detect")
    canvas = detect_in_page(page, photo)

    count = truth["faces_detected"]
    label = f"{count} face{'s' if count != 1 else ''} detected"
    expect(canvas).to_have_attribute("role", "img")
    expect(canvas).to_have_attribute("aria-label", label)
    assert int(canvas.get_attribute("data-faces") or -1) == count
    boxes = drawn(canvas, "boxes")
    expected = [[f["bbox"][k] for k in ("x", "y", "width", "height")] for f in truth["faces"]]
    assert len(boxes) == len(expected)
    for got, want in zip(boxes, expected, strict=True):
        assert np.allclose(got, want, atol=1.0), (got, want)
    assert drawn(canvas, "landmarks5") == [len(f["landmarks"]) for f in truth["faces"]] == [5] * count
    # The table says it too: one row per face, numbered, with the API's box and confidence.
    rows = page.locator("table").first.locator("tbody tr")
    expect(rows).to_have_count(count)
    first = truth["faces"][0]
    box = first["bbox"]
    expect(rows.first).to_contain_text(f"{box['x']}, {box['y']}, {box['width']} × {box['height']}")
    expect(rows.first).to_contain_text(f"{first['confidence']:.3f}")
    # Which model made what: the answer's `model` names.
    expect(page.locator(".detect-results")).to_contain_text(truth["model"]["detector"]["name"])
    # The canvas really has the photo on it (not blank), and the box colour on the box's edge.
    painted = page.evaluate(
        """([x, y]) => { const c = document.querySelector('canvas.face-canvas');
        return Array.from(c.getContext('2d').getImageData(x, y, 1, 1).data); }""",
        [box["x"] + box["width"] // 2, box["y"]],
    )
    assert painted[:3] == [0, 229, 255], painted  # the first face's colour, #00e5ff


def test_68_and_468_landmarks_and_attributes_render(
    page: Page, console_server: RunningServer, new_key: Callable[..., str], astronaut_file: Path
) -> None:
    key = new_key()
    log_in(page, key, "detect")
    canvas = detect_in_page(page, astronaut_file, landmarks="68")
    assert drawn(canvas, "landmarks68") == [68]
    assert drawn(canvas, "mesh") == [0]
    expect(page.get_by_text("68 points (68-point scheme)")).to_be_visible()

    canvas = detect_in_page(page, astronaut_file, landmarks="468", attributes=True)
    expect(canvas).to_have_attribute("data-mesh", "[468]")
    assert drawn(canvas, "landmarks68") == [0]
    truth = post_photo(console_server, key, DETECT, astronaut_file, landmarks="468", return_attributes="true")
    face = truth["faces"][0]
    row = page.locator("table").first.locator("tbody tr").first
    # Pose from the mesh, and the attributes: the API's own numbers.
    expect(row).to_contain_text(f"yaw {face['mesh']['yaw']:.1f}°")
    age = face["attributes"]["estimated_age"]
    expect(row.locator(".attr-age")).to_contain_text(f"Age {age:.0f}")
    assert 15 <= age <= 70
    expect(page.locator(".detect-results")).to_contain_text(truth["model"]["mesh"]["name"])


def test_drop_zone_is_a_keyboard_button_and_demographics_runs(
    page: Page, new_key: Callable[..., str], astronaut_file: Path
) -> None:
    # A listener from the start turns on the browser's file-chooser interception before any key
    # press (registering it only around the press races with the press).
    page.on("filechooser", lambda chooser: None)
    log_in(page, new_key(), "detect")
    zone = page.locator("button.dropzone")
    expect(zone).to_be_visible()
    # The zone is a button: the keyboard reaches it (Tab from the file input) and Enter opens
    # the file chooser.
    page.get_by_label("Image", exact=True).focus()
    page.keyboard.press("Tab")
    expect(zone).to_be_focused()
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Enter")
    chooser.value.set_files(str(astronaut_file))
    expect(zone).to_contain_text("astronaut.jpg")
    # Dropping a file on the zone chooses it (a DataTransfer built in the page).
    data = astronaut_file.read_bytes()
    page.evaluate(
        """(bytes) => { const t = new DataTransfer();
        t.items.add(new File([new Uint8Array(bytes)], 'dropped.jpg', {type: 'image/jpeg'}));
        const drop = new DragEvent('drop', {dataTransfer: t, bubbles: true, cancelable: true});
        document.querySelector('button.dropzone').dispatchEvent(drop); }""",
        list(data),
    )
    expect(zone).to_contain_text("dropped.jpg")
    page.get_by_label("Also run the Demographics analysis").check()
    page.get_by_role("button", name="Detect faces").click()
    expect(page.locator("canvas.face-canvas")).to_have_attribute("data-faces", "1", timeout=120_000)
    expect(page.get_by_role("heading", name="Demographics analysis")).to_be_visible()
    demo = page.get_by_role("table", name=re.compile("^Demographics"))
    expect(demo.locator("tbody tr")).to_have_count(1)
    expect(demo).to_contain_text(re.compile(r"\d+ \(\d+–\d+\)"))


def test_not_an_image_shows_the_api_code_and_the_page_keeps_working(
    page: Page, new_key: Callable[..., str], tmp_path: Path, astronaut_file: Path
) -> None:
    log_in(page, new_key(), "detect")
    text = tmp_path / "notes.txt"
    text.write_text("not a photo")
    page.get_by_label("Image", exact=True).set_input_files(str(text))
    page.get_by_role("button", name="Detect faces").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("NOT_AN_IMAGE")
    expect(page.get_by_role("button", name="Detect faces")).to_be_enabled()
    expect(page.locator("canvas.face-canvas")).to_have_count(0)
    canvas = detect_in_page(page, astronaut_file)
    expect(canvas).to_have_attribute("data-faces", "1")
    expect(page.get_by_role("alert")).to_have_count(0)


def test_phone_width_has_no_horizontal_scroll(
    page: Page, new_key: Callable[..., str], three_faces_file: Path
) -> None:
    page.set_viewport_size({"width": 375, "height": 800})
    log_in(page, new_key(), "detect")
    canvas = detect_in_page(page, three_faces_file, landmarks="468", attributes=True)
    expect(canvas).to_have_attribute("data-mesh", "[468,468,468]")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    # The canvas is scaled down to the screen, not cut.
    assert canvas.bounding_box()["width"] <= 375  # type: ignore[index]
