"""The Counting view in Chromium: a real video (PETS09 people walking, ../shared/data), its first
frame on a canvas (Chromium cannot decode this AVI: the server's first-frame route answers), a
line drawn by mouse drag, the run followed to 100 %, and what the page shows compared with the
API's answer for the same video — counts per line, the chart's points, the coordinates sent."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import httpx
from playwright.sync_api import expect

from tests.conftest import shared_path
from tests.e2e.conftest import ARTIFACTS, log_in
from tests.integration.conftest import RunningServer

PETS = ("people_walking", "opencv_vtest", "vtest.avi")


def multipart_field(body: bytes, name: str) -> str:
    match = re.search(rb'name="' + name.encode() + rb'"\r\n\r\n(.*?)\r\n--', body, re.S)
    assert match, f"no {name} field in the request"
    return match.group(1).decode()


def test_draw_a_line_on_the_first_frame_count_and_compare_with_the_api(
    page: object, console_server: RunningServer, new_key: Callable[..., str]
) -> None:
    video = shared_path(*PETS)
    key = new_key()
    log_in(page, key, "counting")
    page.get_by_label("Video file").set_input_files(str(video))  # type: ignore[attr-defined]
    canvas = page.locator("canvas.count-canvas")  # type: ignore[attr-defined]
    expect(canvas).to_be_visible(timeout=60_000)
    # The canvas holds the video's own pixels (480x360); the page shows it stretched.
    width = int(canvas.evaluate("c => c.width"))
    height = int(canvas.evaluate("c => c.height"))
    assert (width, height) == (480, 360)
    expect(page.get_by_role("status").filter(has_text="First frame 480×360")).to_be_visible()  # type: ignore[attr-defined]
    # The frame is really drawn (not a blank canvas).
    assert (
        canvas.evaluate(
            "c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
            " let s = 0; for (let i = 0; i < d.length; i += 4) s += d[i]; return s / (d.length / 4); }"
        )
        > 20
    )
    box = canvas.bounding_box()
    assert box is not None and abs(box["width"] - width) > 50, box  # scaled on screen: conversion matters

    # A line across the walkway, dragged with the mouse from left to right at 55 % of the height.
    start = (box["x"] + 0.04 * box["width"], box["y"] + 0.55 * box["height"])
    end = (box["x"] + 0.96 * box["width"], box["y"] + 0.55 * box["height"])
    page.mouse.move(*start)  # type: ignore[attr-defined]
    page.mouse.down()  # type: ignore[attr-defined]
    page.mouse.move(*end, steps=12)  # type: ignore[attr-defined]
    page.mouse.up()  # type: ignore[attr-defined]
    expect(canvas).to_have_attribute("data-lines", "1")

    def in_video(x: float, y: float) -> tuple[float, float]:
        return ((x - box["x"]) * width / box["width"], (y - box["y"]) * height / box["height"])

    expected_start, expected_end = in_video(*start), in_video(*end)
    # The numeric inputs (the keyboard way) show the same coordinates.
    x1 = float(page.get_by_label("Line 1 x1").input_value())  # type: ignore[attr-defined]
    y2 = float(page.get_by_label("Line 1 y2").input_value())  # type: ignore[attr-defined]
    assert abs(x1 - expected_start[0]) < 0.6 and abs(y2 - expected_end[1]) < 0.6
    page.get_by_label("Frames analysed per second").fill("2")  # type: ignore[attr-defined]

    with page.expect_request(  # type: ignore[attr-defined]
        lambda r: r.method == "POST" and r.url.endswith("/api/v1/counting/videos")
    ) as sent:
        page.get_by_role("button", name="Count people").click()  # type: ignore[attr-defined]
    # Chromium does not hand a multipart body with a file to Playwright; when it does, its
    # fields are read, else the 202 answer's echo of the parsed fields is what was sent.
    request = sent.value
    body = request.post_data_buffer
    accepted = request.response().json()
    if body:
        lines = json.loads(multipart_field(body, "lines"))
        assert multipart_field(body, "sample_fps") == "2"
        assert accepted["lines"] == lines
    else:
        lines = accepted["lines"]
    assert accepted["sample_fps"] == 2
    assert [line["name"] for line in lines] == ["line 1"]
    for got, want in ((lines[0]["start"], expected_start), (lines[0]["end"], expected_end)):
        assert abs(got[0] - want[0]) < 0.6 and abs(got[1] - want[1]) < 0.6, (got, want)
    assert 0 <= lines[0]["start"][0] < lines[0]["end"][0] <= width

    bar = page.get_by_role("progressbar", name="Counting")  # type: ignore[attr-defined]
    expect(bar).to_have_attribute("aria-valuenow", "100", timeout=240_000)
    result = page.locator(".count-result [data-status=completed]")  # type: ignore[attr-defined]
    expect(result).to_be_visible(timeout=30_000)
    video_id = result.get_attribute("data-video-id")

    headers = {"X-API-Key": key}
    answer = httpx.get(f"{console_server.base}/api/v1/counting/videos/{video_id}", headers=headers).json()
    assert answer["status"] == "completed"
    assert answer["lines_requested"] == lines
    counted = {line["name"]: line for line in answer["lines"]}["line 1"]
    assert counted["in"] + counted["out"] > 0  # people do cross the walkway
    row = page.locator(".count-result table").first.locator("tbody tr").first  # type: ignore[attr-defined]
    cells = row.locator("td").all_inner_texts()
    assert cells[:4] == [
        "line 1",
        str(counted["in"]),
        str(counted["out"]),
        str(counted["in"] - counted["out"]),
    ]

    # The chart: two series (in, out) over every second of the API's timeline.
    timeline = httpx.get(
        f"{console_server.base}/api/v1/counting/videos/{video_id}/timeline", headers=headers
    ).json()["timeline"]
    chart = page.locator("canvas.count-chart")  # type: ignore[attr-defined]
    expect(chart).to_have_attribute("data-points", str(2 * len(timeline)))
    assert len(timeline) > 0
    assert timeline[-1]["lines"]["line 1"] == {"in": counted["in"], "out": counted["out"]}
    # The events table lists as many rows as the API has events (≤ the page's 500).
    events = httpx.get(
        f"{console_server.base}/api/v1/counting/videos/{video_id}/events", headers=headers
    ).json()
    expect(page.get_by_text(f"{events['total']} event", exact=False).first).to_be_visible()
    # The preview plays from an object URL.
    preview = page.locator("video.count-preview")  # type: ignore[attr-defined]
    expect(preview).to_be_visible()
    assert (preview.get_attribute("src") or "").startswith("blob:")

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "counting_result.png"), full_page=True)  # type: ignore[attr-defined]
    # On a phone the page does not scroll sideways (tables scroll in their own box).
    page.set_viewport_size({"width": 375, "height": 800})  # type: ignore[attr-defined]
    assert page.evaluate("document.documentElement.scrollWidth") <= 375  # type: ignore[attr-defined]
    page.set_viewport_size({"width": 1280, "height": 900})  # type: ignore[attr-defined]

    # The list has it; deleting from the list erases it.
    page.once("dialog", lambda dialog: dialog.accept())  # type: ignore[attr-defined]
    page.get_by_role("button", name="Delete vtest.avi").click()  # type: ignore[attr-defined]
    expect(page.get_by_text("No video counted yet.")).to_be_visible()
    gone = httpx.get(f"{console_server.base}/api/v1/counting/videos/{video_id}", headers=headers)
    assert gone.status_code == 404
