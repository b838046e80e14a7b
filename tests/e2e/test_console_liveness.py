"""The Liveness view in Chromium: a passive check of a real photo, and an active session whose
frames come from the fake camera (the blink video) over the session's WebSocket."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import BLINK_VIDEO, log_in
from tests.integration.conftest import RunningServer


def test_passive_check_of_a_real_photo_shows_the_apis_answer(
    page: object, console_server: RunningServer, new_key: Callable[..., str], astronaut_jpeg: bytes
) -> None:
    key = new_key()
    log_in(page, key, "liveness")
    page.get_by_label("Photo with a face").set_input_files(  # type: ignore[attr-defined]
        {"name": "astronaut.jpg", "mimeType": "image/jpeg", "buffer": astronaut_jpeg}
    )
    with page.expect_response("**/api/v1/antispoofing/check") as caught:  # type: ignore[attr-defined]
        page.get_by_role("button", name="Check", exact=True).click()  # type: ignore[attr-defined]
    answer = caught.value.json()
    assert caught.value.status == 200
    verdict = page.locator(".passive-result .verdict")  # type: ignore[attr-defined]
    expect(verdict).to_be_visible()
    assert verdict.get_attribute("data-is-live") == str(answer["is_live"]).lower()
    expect(verdict).to_contain_text("Live" if answer["is_live"] else "Spoof")
    expect(verdict).to_contain_text(f"{answer['confidence_score']:.4f}")
    # One bar per score of the answer, with its value as text.
    scores = answer["analysis_details"]["scores"]
    bars = page.locator(".passive-scores .score")  # type: ignore[attr-defined]
    expect(bars).to_have_count(len(scores))
    for i, (name, value) in enumerate(scores.items()):
        expect(bars.nth(i).locator(".score-label")).to_have_text(name)
        expect(bars.nth(i).locator(".score-value")).to_have_text(f"{value:.3f}")
    expect(page.locator(".passive-result dl")).to_contain_text(answer["risk_level"])  # type: ignore[attr-defined]
    # The same photo checked again by the API directly gives the same verdict (deterministic model).
    again = httpx.post(
        f"{console_server.base}/api/v1/antispoofing/check",
        headers={"X-API-Key": key},
        files={"image": ("a.jpg", astronaut_jpeg, "image/jpeg")},
        timeout=60,
    ).json()
    assert again["is_live"] == answer["is_live"]
    assert again["confidence_score"] == pytest.approx(answer["confidence_score"], abs=1e-4)


def test_a_blink_session_with_the_fake_camera_completes(
    page: object, console_server: RunningServer, new_key: Callable[..., str], fake_camera: object
) -> None:
    if fake_camera is None:
        pytest.skip(f"the blink video is not present: {BLINK_VIDEO}")
    key = new_key()
    log_in(page, key, "liveness")
    page.get_by_label("Blink", exact=True).check()  # type: ignore[attr-defined]
    with page.expect_response("**/api/v1/antispoofing/liveness/sessions") as caught:  # type: ignore[attr-defined]
        page.get_by_role("button", name="Start", exact=True).click()  # type: ignore[attr-defined]
    created = caught.value.json()
    assert caught.value.status == 201, created
    assert created["challenges"] == ["blink"]
    token = created["session_token"]
    # The live preview plays the camera, and the server's instruction is shown.
    expect(page.locator("video.liveness-video")).to_be_visible()  # type: ignore[attr-defined]
    expect(page.locator(".challenge-list li")).to_have_count(1)  # type: ignore[attr-defined]
    outcome = page.locator(".liveness-outcome")  # type: ignore[attr-defined]
    expect(outcome).to_have_attribute("data-status", "completed", timeout=40_000)
    state = httpx.get(
        f"{console_server.base}/api/v1/antispoofing/liveness/sessions/{token}",
        headers={"X-API-Key": key},
        timeout=30,
    ).json()
    assert state["session_status"] == "completed", state
    assert outcome.get_attribute("data-token") == token
    # What the page shows equals the session's stored state.
    expect(outcome.locator(".session-status")).to_have_text(state["session_status"])
    expect(outcome.locator("dl")).to_contain_text(
        f"{len(state['challenges_completed'])} of {len(state['challenges'])}"
    )
    expect(outcome.locator("dl")).to_contain_text(str(state["frames_processed"]))
    rows = outcome.locator("tbody tr")
    expect(rows).to_have_count(len(state["challenge_results"]))
    for i, result in enumerate(state["challenge_results"]):
        expect(rows.nth(i).locator("td").nth(1)).to_have_text(result["status"])
    bar = page.get_by_role("progressbar", name="Challenges completed")  # type: ignore[attr-defined]
    expect(bar).to_have_attribute("aria-valuenow", "100")
    expect(page.locator(".challenge-list li")).to_have_attribute("data-status", "passed")  # type: ignore[attr-defined]
    expect(page.locator(".liveness-instruction")).to_contain_text("liveness confirmed")  # type: ignore[attr-defined]
    # The camera is stopped and the preview hidden at the end.
    expect(page.locator("video.liveness-video")).to_be_hidden()  # type: ignore[attr-defined]
    # Times in whole milliseconds, the status said once, the token shown with "Use for enrolment".
    for i, result in enumerate(state["challenge_results"]):
        if result.get("completed_ms") is not None:
            expect(rows.nth(i).locator("td").nth(3)).to_have_text(str(round(result["completed_ms"])))
    expect(outcome.locator(".verdict")).to_have_text("✓ completed")
    expect(outcome.locator("code.liveness-token")).to_have_text(token)
    outcome.get_by_role("button", name="Use for enrolment").click()
    enrol = page.get_by_role("tabpanel", name="Enrol")  # type: ignore[attr-defined]
    expect(enrol.get_by_label("Liveness session token")).to_have_value(token)
    assert token not in page.url  # type: ignore[attr-defined]


def test_a_refused_camera_gets_a_clear_message_and_no_session(
    page: object, console_server: RunningServer, new_key: Callable[..., str]
) -> None:
    # The browser refuses the camera (as when the user says no): getUserMedia rejects.
    page.add_init_script(  # type: ignore[attr-defined]
        "navigator.mediaDevices.getUserMedia = () =>"
        " Promise.reject(new DOMException('denied', 'NotAllowedError'));"
    )
    key = new_key()
    log_in(page, key, "liveness")
    sessions: list[str] = []
    page.on("request", lambda r: sessions.append(r.url) if "liveness/sessions" in r.url else None)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Start", exact=True).click()  # type: ignore[attr-defined]
    alert = page.get_by_role("alert")  # type: ignore[attr-defined]
    expect(alert).to_contain_text("CAMERA_REFUSED")
    expect(alert).to_contain_text("Camera access was refused")
    expect(page.get_by_role("button", name="Start", exact=True)).to_be_enabled()  # type: ignore[attr-defined]
    assert sessions == []
