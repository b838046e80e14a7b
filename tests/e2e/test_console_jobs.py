"""The Jobs view in Chromium: a deepfake video job of a new tenant, followed by the view's own
refresh to 100 % / completed, matching GET /api/v1/jobs; a job cancelled from the view."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
from playwright.sync_api import expect

from tests.conftest import shared_path
from tests.e2e.conftest import log_in
from tests.integration.conftest import RunningServer

CLIP = ("deepfake_samples", "icpr2020dfdc_notebook_samples", "lynaeydofd.mp4")


def _queue_video(server: RunningServer, key: str, clip: Path, **fields: str) -> dict[str, object]:
    with clip.open("rb") as handle:
        answer = httpx.post(
            f"{server.base}/api/v1/deepfake-detection/analyze-video",
            headers={"X-API-Key": key},
            files={"video": (clip.name, handle, "video/mp4")},
            data=fields,
            timeout=120,
        )
    assert answer.status_code == 202, answer.text
    return answer.json()  # type: ignore[no-any-return]


def _job(server: RunningServer, key: str, job_id: object) -> dict[str, object]:
    answer = httpx.get(f"{server.base}/api/v1/jobs/{job_id}", headers={"X-API-Key": key}, timeout=30)
    return answer.json()["job"]  # type: ignore[no-any-return]


def test_a_video_job_is_listed_and_refreshes_to_completed(
    page: object, console_server: RunningServer, new_key: Callable[..., str]
) -> None:
    clip = shared_path(*CLIP)
    key = new_key()
    queued = _queue_video(console_server, key, clip, sample_fps="2", priority="3")
    job_id = queued["job_id"]
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "/api/v1/jobs" in r.url else None)  # type: ignore[attr-defined]
    log_in(page, key, "jobs")
    row = page.locator(f"tr[data-job-id='{job_id}']")  # type: ignore[attr-defined]
    expect(row).to_be_visible()
    first_status = row.get_attribute("data-status")
    expect(row.locator("td").nth(1)).to_have_text("deepfake.video")
    expect(row.locator("td").nth(3)).to_have_text("3")
    # No click: the view refreshes itself while the job is active.
    expect(row).to_have_attribute("data-status", "completed", timeout=120_000)
    expect(row.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
    job = httpx.get(
        f"{console_server.base}/api/v1/jobs/{job_id}", headers={"X-API-Key": key}, timeout=30
    ).json()["job"]
    assert job["status"] == "completed" and job["progress_percentage"] == 100
    # The result links to the analysis in the Forensics view; no Cancel once ended.
    link = row.get_by_role("link")
    expect(link).to_have_attribute("href", f"#/forensics?analysis={job['result']['analysis_id']}")
    expect(row.get_by_role("button", name=f"Cancel job {job_id}")).to_have_count(0)
    # Only this tenant's job is listed.
    expect(page.locator("tbody tr")).to_have_count(1)  # type: ignore[attr-defined]
    if first_status in ("pending", "processing"):
        assert len(requests) >= 2, "the view did not refresh on its own"
    # Nothing active: the refresh stops.
    expect(page.locator(".jobs-refresh")).to_contain_text("not refreshing")  # type: ignore[attr-defined]
    seen = len(requests)
    page.wait_for_timeout(2500)  # type: ignore[attr-defined]
    assert len(requests) == seen
    # Opening the result shows the finished analysis in the Forensics view.
    link.click()
    result = page.locator(".deepfake-video-result")  # type: ignore[attr-defined]
    expect(result.locator(".verdict [data-band]")).to_have_attribute("data-band", job["result"]["band"])


def test_a_pending_job_can_be_cancelled_from_the_view(
    page: object, console_server: RunningServer, new_key: Callable[..., str]
) -> None:
    clip = shared_path(*CLIP)
    key = new_key()
    # Two jobs of this tenant; the later, least urgent one is the one cancelled (it may have
    # started already: a processing job is cancellable too).
    first = _queue_video(console_server, key, clip, sample_fps="4", priority="9")
    try:
        _cancel_from_the_view(page, console_server, key, clip)
    finally:
        # Free the machine for the next tests.
        httpx.delete(
            f"{console_server.base}/api/v1/jobs/{first['job_id']}", headers={"X-API-Key": key}, timeout=30
        )


def _cancel_from_the_view(page: object, console_server: RunningServer, key: str, clip: Path) -> None:
    queued = _queue_video(console_server, key, clip, sample_fps="4", priority="1")
    job_id = queued["job_id"]
    log_in(page, key, "jobs")
    row = page.locator(f"tr[data-job-id='{job_id}']")  # type: ignore[attr-defined]
    expect(row).to_be_visible()
    if row.get_attribute("data-status") not in ("pending", "processing"):
        # The machine was faster than the test: nothing left to cancel.
        return
    with page.expect_response(lambda r: r.request.method == "DELETE") as caught:  # type: ignore[attr-defined]
        row.get_by_role("button", name=f"Cancel job {job_id}").click()
    if caught.value.status == 409:
        # It ended between the listing and the click: the view says so with the stable code.
        expect(page.get_by_role("alert")).to_contain_text("JOB_NOT_CANCELLABLE")  # type: ignore[attr-defined]
        return
    assert caught.value.status == 200
    expect(row).to_have_attribute("data-status", "cancelled")
    job = httpx.get(
        f"{console_server.base}/api/v1/jobs/{job_id}", headers={"X-API-Key": key}, timeout=30
    ).json()["job"]
    assert job["status"] == "cancelled"
    expect(row.locator("td").nth(2)).to_have_text("cancelled")


def test_jobs_on_a_phone_are_cards_with_cancel_in_view(
    page: object, console_server: RunningServer, new_key: Callable[..., str]
) -> None:
    clip = shared_path(*CLIP)
    key = new_key()
    # Two jobs: the first keeps the worker busy, so the second is still active when the page opens.
    first = _queue_video(console_server, key, clip, sample_fps="4", priority="9")
    second = _queue_video(console_server, key, clip, sample_fps="4", priority="1")
    try:
        page.set_viewport_size({"width": 375, "height": 800})  # type: ignore[attr-defined]
        log_in(page, key, "jobs")
        cards = page.locator("li.job-card")  # type: ignore[attr-defined]
        expect(cards).to_have_count(2)
        expect(page.locator("table")).to_have_count(0)  # type: ignore[attr-defined]
        card = page.locator(f"li.job-card[data-job-id='{second['job_id']}']")  # type: ignore[attr-defined]
        listed = _job(console_server, key, second["job_id"])
        # The short id, the whole id one click away, what the job is about, its progress.
        short = str(second["job_id"])[: str(second["job_id"]).index("_") + 9]
        expect(card.locator("summary code.job-id")).to_have_text(f"{short}…")
        expect(card.locator("summary")).to_have_attribute("title", str(second["job_id"]))
        expect(card.locator("h3")).to_contain_text("Deepfake analysis of a video")
        expect(card.get_by_role("progressbar")).to_be_visible()
        # Nothing on the page is wider than the screen.
        wide = page.evaluate(  # type: ignore[attr-defined]
            "() => [...document.querySelectorAll('main *')].filter(n => {"
            " const b = n.getBoundingClientRect(); return b.width > 0 && b.right > innerWidth + 1; }).length"
        )
        assert wide == 0
        assert page.evaluate("document.documentElement.scrollWidth") <= 375  # type: ignore[attr-defined]
        status = card.get_attribute("data-status")
        if status in ("pending", "processing"):
            cancel = card.get_by_role("button", name=f"Cancel job {second['job_id']}")
            expect(cancel).to_be_visible()
            box = cancel.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375
            with page.expect_response(lambda r: r.request.method == "DELETE") as caught:  # type: ignore[attr-defined]
                cancel.click()
            if caught.value.status == 200:
                expect(card).to_have_attribute("data-status", "cancelled")
                assert _job(console_server, key, second["job_id"])["status"] == "cancelled"
        else:
            assert listed["status"] not in ("pending", "processing")
    finally:
        for job in (first, second):
            httpx.delete(
                f"{console_server.base}/api/v1/jobs/{job['job_id']}", headers={"X-API-Key": key}, timeout=30
            )


def test_the_jobs_table_fits_a_desktop_page(
    page: object, console_server: RunningServer, new_key: Callable[..., str]
) -> None:
    clip = shared_path(*CLIP)
    key = new_key()
    queued = _queue_video(console_server, key, clip, sample_fps="4", priority="9")
    try:
        log_in(page, key, "jobs")
        row = page.locator(f"tr[data-job-id='{queued['job_id']}']")  # type: ignore[attr-defined]
        expect(row).to_be_visible()
        table = page.locator("table.jobs-table")  # type: ignore[attr-defined]
        width = table.evaluate("t => t.getBoundingClientRect().width")
        assert width <= 1134, f"the jobs table is {width} px wide"
        # The Actions column is on screen, and the id cell is one short line, not 3 characters a line.
        header = page.get_by_role("columnheader", name="Actions")  # type: ignore[attr-defined]
        box = header.bounding_box()
        assert box is not None and box["x"] + box["width"] <= 1280
        summary = row.locator("summary code.job-id")
        assert summary.evaluate("n => n.getClientRects().length") == 1
        # The full id is one click away.
        row.locator("summary").click()
        expect(row.locator("code.job-id-full")).to_have_text(str(queued["job_id"]))
    finally:
        httpx.delete(
            f"{console_server.base}/api/v1/jobs/{queued['job_id']}", headers={"X-API-Key": key}, timeout=30
        )
