"""The Forensics view in Chromium: an AI-generated-image report (per-method bars, ELA image, past
analyses), a deepfake image report with its heatmap, and a deepfake video job followed to its verdict."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import httpx
from playwright.sync_api import expect

from tests.conftest import shared_path
from tests.e2e.conftest import ARTIFACTS, log_in
from tests.integration.conftest import RunningServer

# A short real clip (10 s, one person); analysed at 1 frame a second to keep the job small.
CLIP = ("deepfake_samples", "icpr2020dfdc_notebook_samples", "lynaeydofd.mp4")
# True once the image the selector names is decoded with a width.
DECODED = "(s) => { const i = document.querySelector(s); return !!i && i.complete && i.naturalWidth > 0; }"


def _api(server: RunningServer, key: str) -> httpx.Client:
    return httpx.Client(base_url=server.base, headers={"X-API-Key": key}, timeout=120)


def test_ai_image_report_matches_the_api_and_shows_the_ela_image(
    page: object, console_server: RunningServer, new_key: Callable[..., str], astronaut_jpeg: bytes
) -> None:
    key = new_key()
    log_in(page, key, "forensics")
    card = page.locator("section", has=page.get_by_role("heading", name="AI-generated image (SkyGate)"))  # type: ignore[attr-defined]
    # The methods come from GET /api/v1/ai-detection/methods, one checkbox each.
    methods = _api(console_server, key).get("/api/v1/ai-detection/methods").json()["methods"]
    expect(card.locator(".ai-method-choice input[type=checkbox]")).to_have_count(len(methods))
    card.get_by_label("Image", exact=True).set_input_files(
        {"name": "astronaut.jpg", "mimeType": "image/jpeg", "buffer": astronaut_jpeg}
    )
    with page.expect_response("**/api/v1/ai-detection/analyze") as caught:  # type: ignore[attr-defined]
        card.get_by_role("button", name="Analyse", exact=True).click()
    answer = caught.value.json()
    assert caught.value.status == 200, answer
    result = card.locator(".ai-result")
    expect(result.locator(".verdict [data-band]")).to_have_attribute("data-band", answer["band"])
    # One bar per method of the answer, in its order, with the answer's score as text.
    bars = result.locator(".ai-methods > li")
    expect(bars).to_have_count(len(answer["methods"]))
    descriptions = {m["method_name"]: m["description"] for m in methods}
    for i, method in enumerate(answer["methods"]):
        item = bars.nth(i)
        assert item.get_attribute("data-method") == method["method"]
        expected = "n/a" if method["score"] is None else f"{method['score']:.3f}"
        expect(item.locator(".score-value")).to_have_text(expected)
        expect(item.locator(".ai-method-note")).to_contain_text(descriptions[method["method"]])
    # The stored report says the same as the page.
    stored = _api(console_server, key).get(f"/api/v1/ai-detection/results/{answer['result_id']}").json()
    assert [m["score"] for m in stored["methods"]] == [m["score"] for m in answer["methods"]]
    expect(result.locator("dl")).to_contain_text(f"{stored['confidence_score']:.4f}")
    # The ELA image (an authenticated PNG through an object URL) is decoded and shown.
    ela = result.locator("img.ai-ela")
    expect(ela).to_have_attribute("src", re.compile(r"^blob:"))
    page.wait_for_function(DECODED, arg=".ai-result img.ai-ela")  # type: ignore[attr-defined]
    assert ela.evaluate("i => i.naturalWidth") > 0
    # It is listed among the past analyses, can be reopened, and deleted.
    history = page.locator("section", has=page.get_by_role("heading", name="Past AI-image analyses"))  # type: ignore[attr-defined]
    expect(history.locator("tbody tr")).to_have_count(1)
    expect(history.locator("tbody tr")).to_contain_text("astronaut.jpg")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "forensics_ai_report.png"), full_page=True)  # type: ignore[attr-defined]
    # Reopening it from the list renders the stored report again.
    result.evaluate("node => node.replaceChildren()")
    history.get_by_role("button", name="Open astronaut.jpg").click()
    expect(result.locator(".ai-methods > li")).to_have_count(len(stored["methods"]))
    page.once("dialog", lambda dialog: dialog.accept())  # type: ignore[attr-defined]
    history.get_by_role("button", name="Delete astronaut.jpg").click()
    expect(history).to_contain_text("No analysis yet.")
    gone = _api(console_server, key).get(f"/api/v1/ai-detection/results/{answer['result_id']}")
    assert gone.status_code == 404


def test_deepfake_image_report_shows_the_verdict_scores_and_heatmap(
    page: object, console_server: RunningServer, new_key: Callable[..., str], astronaut_jpeg: bytes
) -> None:
    key = new_key()
    log_in(page, key, "forensics")
    card = page.locator("section", has=page.get_by_role("heading", name="Deepfake — image"))  # type: ignore[attr-defined]
    card.get_by_label("Image", exact=True).set_input_files(
        {"name": "astronaut.jpg", "mimeType": "image/jpeg", "buffer": astronaut_jpeg}
    )
    card.get_by_label("Detection level").select_option("advanced")
    with page.expect_response("**/api/v1/deepfake-detection/analyze") as caught:  # type: ignore[attr-defined]
        card.get_by_role("button", name="Analyse image").click()
    answer = caught.value.json()
    assert caught.value.status == 200, answer
    assert answer["detection_level"] == "advanced"
    result = card.locator(".deepfake-image-result")
    expect(result.locator(".verdict [data-band]")).to_have_attribute("data-band", answer["band"])
    expect(result.locator("dl").first).to_contain_text(f"{answer['manipulation_score']:.3f}")
    faces = result.locator(".deepfake-face")
    expect(faces).to_have_count(len(answer["faces"]))
    assert answer["faces"], "the astronaut has a face"
    first = answer["faces"][0]
    # The face's score bar, then one bar per signal with its suspicion.
    bars = faces.first.locator(".score")
    expect(bars).to_have_count(1 + len(first["signals"]))
    expect(bars.first.locator(".score-value")).to_have_text(f"{first['score']:.3f}")
    for i, (name, signal) in enumerate(first["signals"].items(), start=1):
        expect(bars.nth(i).locator(".score-label")).to_contain_text(name)
        expect(bars.nth(i).locator(".score-value")).to_have_text(f"{signal['suspicion']:.3f}")
    heatmap = result.locator("img.deepfake-heatmap")
    expect(heatmap).to_be_visible()
    page.wait_for_function(DECODED, arg="img.deepfake-heatmap")  # type: ignore[attr-defined]


def test_deepfake_video_job_reaches_100_percent_and_shows_the_verdict(
    page: object, console_server: RunningServer, new_key: Callable[..., str]
) -> None:
    clip: Path = shared_path(*CLIP)
    key = new_key()
    log_in(page, key, "forensics")
    card = page.locator("section", has=page.get_by_role("heading", name="Deepfake — video (a job)"))  # type: ignore[attr-defined]
    card.get_by_label("Video", exact=True).set_input_files(str(clip))
    card.get_by_label("Frames per second analysed (blank: server default)").fill("1")
    card.get_by_label("Priority (1–10)").fill("8")
    with page.expect_response("**/api/v1/deepfake-detection/analyze-video") as caught:  # type: ignore[attr-defined]
        card.get_by_role("button", name="Analyse video").click()
    queued = caught.value.json()
    assert caught.value.status == 202, queued
    assert queued["priority"] == 8 and queued["sample_fps"] == 1.0
    bar = card.get_by_role("progressbar", name="Video analysis")
    expect(bar).to_have_attribute("aria-valuenow", "100", timeout=120_000)
    result = card.locator(".deepfake-video-result")
    expect(result.locator(".verdict")).to_be_visible()
    analysis = (
        _api(console_server, key)
        .get(f"/api/v1/deepfake-detection/analyses/{queued['analysis_id']}", params={"frames_limit": 1000})
        .json()
    )
    assert analysis["status"] == "completed"
    assert result.get_attribute("data-analysis-id") == queued["analysis_id"]
    expect(result.locator(".verdict [data-band]")).to_have_attribute("data-band", analysis["band"])
    expect(result.locator("dl")).to_contain_text(
        f"{analysis['analyzed_frames']} of {analysis['total_frames']}"
    )
    # The per-frame chart (a described canvas) and the table: one row per analysed frame.
    chart = result.locator("canvas.frame-chart")
    expect(chart).to_have_attribute("role", "img")
    frames = analysis["frame_analyses"]["items"]
    expect(chart).to_have_attribute("aria-label", re.compile(rf"\b{len(frames)} analysed frames"))
    result.get_by_text(f"Per-frame table ({len(frames)} frames)").click()
    rows = result.locator("details table").last.locator("tbody tr")
    expect(rows).to_have_count(len(frames))
    for i, frame in enumerate(frames):
        scores = [f["score"] for f in frame["faces"]]
        expected = f"{max(scores):.3f}" if scores else "—"
        expect(rows.nth(i).locator("td").nth(3)).to_have_text(expected)


def test_deepfake_image_without_a_face_says_so_plainly(
    page: object, console_server: RunningServer, new_key: Callable[..., str]
) -> None:
    import numpy as np
    import skimage.data

    from tests.conftest import encode

    # A brick wall: a texture with no face in it.
    brick = skimage.data.brick()
    texture = encode(np.ascontiguousarray(np.stack([brick] * 3, axis=-1)), quality=92)
    key = new_key()
    log_in(page, key, "forensics")
    card = page.locator("section", has=page.get_by_role("heading", name="Deepfake — image"))  # type: ignore[attr-defined]
    card.get_by_label("Image", exact=True).set_input_files(
        {"name": "brick.jpg", "mimeType": "image/jpeg", "buffer": texture}
    )
    with page.expect_response("**/api/v1/deepfake-detection/analyze") as caught:  # type: ignore[attr-defined]
        card.get_by_role("button", name="Analyse image").click()
    answer = caught.value.json()
    assert caught.value.status == 200, answer
    assert answer["reason"] == "no_face" and answer["faces_analyzed"] == 0
    result = card.locator(".deepfake-image-result")
    expect(result.locator(".deepfake-no-face")).to_have_text("No face found — nothing to judge")
    # No verdict band, no 0.000 score bar, no empty heatmap.
    expect(result.locator("[data-band]")).to_have_count(0)
    expect(result.locator(".score")).to_have_count(0)
    expect(result.locator("img.deepfake-heatmap")).to_have_count(0)
    expect(result.locator("dl")).to_contain_text(answer["analysis_id"])
