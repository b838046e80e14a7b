"""The Attention view in Chromium: a meeting created, started and streamed live from the fake
camera (the blink video: one frontal face) over the meeting's WebSocket, the live scores the page
shows compared with GET .../live, the meeting ended, its chart (points = GET .../metrics rows) and
summary; a recorded video analysed to 100 % with its chart."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import httpx
import pytest
from playwright.sync_api import expect

from tests.conftest import shared_path
from tests.e2e.conftest import ARTIFACTS, BLINK_VIDEO, log_in
from tests.integration.conftest import RunningServer

API = "/api/v1/attention"


def test_a_live_meeting_streams_the_camera_and_shows_scores_chart_and_summary(
    page: object, console_server: RunningServer, new_key: Callable[..., str], fake_camera: object
) -> None:
    if fake_camera is None:
        pytest.skip("the blink video (../shared/data) is the fake camera's face")
    key = new_key()
    headers = {"X-API-Key": key}
    base = console_server.base
    log_in(page, key, "attention")
    page.get_by_label("Title").fill("E2E stand-up")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Create meeting").click()  # type: ignore[attr-defined]
    page.wait_for_url("**/console#/attention?meeting=*")  # type: ignore[attr-defined]
    meeting_id = page.url.split("meeting=")[1]  # type: ignore[attr-defined]
    expect(page.locator(".meeting-title")).to_have_text("E2E stand-up")  # type: ignore[attr-defined]
    listed = httpx.get(f"{base}{API}/meetings", headers=headers).json()
    assert [m["meeting_id"] for m in listed["items"]] == [meeting_id]

    page.get_by_role("button", name="Start meeting").click()  # type: ignore[attr-defined]
    expect(page.locator("[data-status=active]")).to_be_visible()  # type: ignore[attr-defined]
    page.get_by_role("button", name="Start camera").click()  # type: ignore[attr-defined]
    # The socket's answers, then the live scores of the participant the face became.
    expect(page.locator(".last-frame h3")).to_have_text("Last frame: 1 face", timeout=90_000)  # type: ignore[attr-defined]
    row = page.locator("table.live-table tbody tr").first  # type: ignore[attr-defined]
    expect(row).to_be_visible(timeout=30_000)
    time.sleep(3)  # a few seconds of stream: several metric rows

    # What the page shows equals GET .../live for the same update (the page polls it each second).
    matched = False
    for _ in range(40):
        live = httpx.get(f"{base}{API}/meetings/{meeting_id}/live", headers=headers).json()
        assert live["sockets"] == 1
        assert len(live["participants"]) == 1
        latest = live["participants"][0]
        shown = page.locator(f"table.live-table tr[data-participant-id='{latest['participant_id']}']")  # type: ignore[attr-defined]
        if shown.get_attribute("data-updated-at") == latest["updated_at"]:
            cells = shown.locator("td").all_inner_texts()
            assert abs(float(cells[1]) - latest["attention_score"]) <= 0.005
            assert abs(float(cells[2]) - latest["gaze_score"]) <= 0.005
            assert abs(float(cells[3]) - latest["head_pose_score"]) <= 0.005
            assert abs(float(cells[4]) - latest["eye_openness_score"]) <= 0.005
            assert cells[5] == ("yes" if latest["is_looking_away"] else "no")
            matched = True
            break
        time.sleep(0.25)
    assert matched, "the page never showed the scores GET .../live answered"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "attention_live.png"), full_page=True)  # type: ignore[attr-defined]
    assert 0 <= latest["attention_score"] <= 100

    page.get_by_role("button", name="Stop camera").click()  # type: ignore[attr-defined]
    expect(page.locator(".live-status")).to_contain_text("Camera off")  # type: ignore[attr-defined]
    page.get_by_role("button", name="End meeting").click()  # type: ignore[attr-defined]
    expect(page.locator("[data-status=ended]")).to_be_visible()  # type: ignore[attr-defined]

    # The chart: one point per metric row the API has (per second), one line for the one face.
    metrics = httpx.get(
        f"{base}{API}/meetings/{meeting_id}/metrics",
        params={"resolution": "raw", "limit": 10000},
        headers=headers,
    ).json()
    assert metrics["count"] >= 2
    chart = page.locator("canvas.attention-chart")  # type: ignore[attr-defined]
    expect(chart).to_have_attribute("data-points", str(metrics["count"]))
    expect(chart).to_have_attribute("data-series", "1")
    assert "1 line" in (chart.get_attribute("aria-label") or "")
    # Drawn, not blank: some pixels differ from the background.
    assert (
        chart.evaluate(
            "c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
            " const seen = new Set();"
            " for (let i = 0; i < d.length; i += 40) seen.add(d[i] + ',' + d[i+1] + ',' + d[i+2]);"
            " return seen.size; }"
        )
        > 5
    )
    # The per-minute view uses the API's roll-up.
    page.get_by_label("Resolution").select_option("minute")  # type: ignore[attr-defined]
    minute = httpx.get(
        f"{base}{API}/meetings/{meeting_id}/metrics", params={"resolution": "minute"}, headers=headers
    ).json()
    expect(page.locator("canvas.attention-chart")).to_have_attribute(  # type: ignore[attr-defined]
        "data-count", str(minute["count"])
    )

    summary = httpx.get(f"{base}{API}/meetings/{meeting_id}/summary", headers=headers).json()["summary"]
    assert summary["source"] == "stored" and summary["participant_count"] >= 1
    average = page.locator("[data-source=stored] .summary-avg")  # type: ignore[attr-defined]
    expect(average).to_be_visible()
    assert abs(float(average.inner_text()) - summary["avg_attention_score"]) <= 0.05 + 1e-9
    # On a phone the page does not scroll sideways (tables scroll in their own box).
    page.set_viewport_size({"width": 375, "height": 800})  # type: ignore[attr-defined]
    assert page.evaluate("document.documentElement.scrollWidth") <= 375  # type: ignore[attr-defined]
    # The participants table lists the face that joined and left.
    expect(page.get_by_role("table", name="Participants in joining order").locator("tbody tr")).to_have_count(  # type: ignore[attr-defined]
        summary["participant_count"]
    )


def test_a_recorded_video_is_analysed_to_100_percent_and_charted(
    page: object, console_server: RunningServer, new_key: Callable[..., str]
) -> None:
    video = shared_path("face_liveness_blink_video", "video.mp4")
    assert video == BLINK_VIDEO
    key = new_key()
    headers = {"X-API-Key": key}
    base = console_server.base
    log_in(page, key, "attention")
    page.get_by_label("Recording (video file)").set_input_files(str(video))  # type: ignore[attr-defined]
    page.get_by_label("Frames analysed per second").fill("2")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Analyse recording").click()  # type: ignore[attr-defined]
    bar = page.get_by_role("progressbar", name="Recording analysis")  # type: ignore[attr-defined]
    expect(bar).to_have_attribute("aria-valuenow", "100", timeout=240_000)
    done = page.locator(".recording-result [data-status=completed]")  # type: ignore[attr-defined]
    expect(done).to_be_visible(timeout=30_000)
    recording_id = done.get_attribute("data-recording-id")

    answer = httpx.get(f"{base}{API}/videos/{recording_id}", headers=headers).json()
    assert answer["status"] == "completed"
    timeline = httpx.get(
        f"{base}{API}/videos/{recording_id}/timeline", params={"limit": 1000}, headers=headers
    ).json()
    faces = sum(len(frame["faces"]) for frame in timeline["frames"])
    assert faces > 0
    chart = page.locator("canvas.recording-chart")  # type: ignore[attr-defined]
    expect(chart).to_have_attribute("data-points", str(faces))
    expect(chart).to_have_attribute("data-frames", str(timeline["total"]))
    mean = answer["results"]["overall"]["mean_attention"]
    shown = float(page.locator(".recording-mean").inner_text())  # type: ignore[attr-defined]
    assert abs(shown - mean) <= 0.05 + 1e-9, (shown, mean)  # one decimal, within rounding
    # The server's PNG chart, fetched with the key into an object URL, is decoded by the browser.
    image = page.locator("img.recording-chart-png")  # type: ignore[attr-defined]
    expect(image).to_be_visible()
    page.wait_for_function("() => document.querySelector('img.recording-chart-png').naturalWidth === 1200")  # type: ignore[attr-defined]

    page.screenshot(path=str(ARTIFACTS / "attention_recording.png"), full_page=True)  # type: ignore[attr-defined]

    # Listed, then deleted from the list.
    page.once("dialog", lambda dialog: dialog.accept())  # type: ignore[attr-defined]
    page.get_by_role("button", name=f"Delete {answer['filename']}").click()  # type: ignore[attr-defined]
    expect(page.get_by_text("No recording yet.")).to_be_visible()
    assert httpx.get(f"{base}{API}/videos/{recording_id}", headers=headers).status_code == 404


def test_an_account_login_streams_live_with_its_token_as_subprotocol(
    page: object, console_server: RunningServer
) -> None:
    """A browser cannot put a bearer token on a WebSocket header: the console offers it as the
    subprotocol after ``facesocial.bearer``, and the account's meeting streams like a key's."""
    name = f"e2e{uuid.uuid4().hex[:10]}"
    password = f"pw-{uuid.uuid4().hex}"
    registered = httpx.post(
        f"{console_server.base}/api/v1/auth/register",
        json={"username": name, "email": f"{name}@example.org", "password": password},
    )
    assert registered.status_code == 201, registered.text
    page.goto("/console")  # type: ignore[attr-defined]
    page.get_by_label("Username or email").fill(name)  # type: ignore[attr-defined]
    page.get_by_label("Password").fill(password)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Log in", exact=True).click()  # type: ignore[attr-defined]
    page.get_by_role("button", name="Log out").wait_for()  # type: ignore[attr-defined]
    page.goto("/console#/attention")  # type: ignore[attr-defined]
    page.get_by_label("Title").fill("Token meeting")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Create meeting").click()  # type: ignore[attr-defined]
    page.get_by_role("button", name="Start meeting").click()  # type: ignore[attr-defined]
    page.get_by_role("button", name="Start camera").click()  # type: ignore[attr-defined]
    expect(page.locator(".last-frame h3")).to_have_text("Last frame: 1 face", timeout=90_000)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Stop camera").click()  # type: ignore[attr-defined]
