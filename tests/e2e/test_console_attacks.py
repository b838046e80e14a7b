"""What an attacker tried against the console, kept as regression tests: hostile names stay
text, a meeting id from a link stays one path segment, long names wrap, credentials live only
in the tab's sessionStorage and the CSP blocks injected script."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.e2e.conftest import log_in
from tests.integration.conftest import RunningServer

PAYLOADS = ["<img src=x onerror=alert(1)>", '"><svg onload=alert(2)>', "javascript:alert(3)"]
MEETINGS = "/api/v1/attention/meetings"


def _meeting(server: RunningServer, key: str, title: str) -> str:
    """A meeting titled ``title`` with a participant of that name."""
    headers = {"X-API-Key": key}
    made = httpx.post(
        f"{server.base}{MEETINGS}", headers=headers, json={"title": title, "description": title}, timeout=60
    )
    meeting_id = str(made.json()["meeting"]["meeting_id"])
    httpx.post(
        f"{server.base}{MEETINGS}/{meeting_id}/participants",
        headers=headers,
        json={"display_name": title[:200]},
        timeout=60,
    )
    return meeting_id


def test_hostile_names_never_run_as_script(
    page: Any, console_server: RunningServer, new_key: Callable[..., str]
) -> None:
    key = new_key()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    meetings = [_meeting(console_server, key, payload) for payload in PAYLOADS]
    for i, payload in enumerate(PAYLOADS):
        httpx.post(
            f"{console_server.base}/api/v1/face-recognition/groups",
            headers={"X-API-Key": key},
            json={"group_name": f"{payload}{i}", "description": payload},
            timeout=60,
        )
    log_in(page, key, "attention")
    for view in ["#/attention", "#/recognition", "#/keys", "#/jobs"] + [
        f"#/attention?meeting={m}" for m in meetings
    ]:
        page.goto(f"/console{view}")
        page.locator("h1").wait_for()
        time.sleep(1.0)  # the view's calls answer and render
        injected = page.evaluate("() => document.querySelectorAll('img[onerror], svg[onload]').length")
        assert injected == 0, view
    assert dialogs == []


def test_a_long_meeting_title_wraps(
    page: Any, console_server: RunningServer, new_key: Callable[..., str]
) -> None:
    key = new_key()
    meeting_id = _meeting(console_server, key, "A" * 200)
    log_in(page, key, f"attention?meeting={meeting_id}")
    page.get_by_role("heading", name="A" * 200).wait_for()
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the page scrolls {overflow} px sideways"


def test_a_meeting_id_from_a_link_stays_under_meetings(
    page: Any, console_server: RunningServer, new_key: Callable[..., str]
) -> None:
    """A link /console#/attention?meeting=../../auth/api-keys once made the console call
    GET /api/v1/auth/api-keys with the victim's credentials."""
    key = new_key()
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url) if "/api/" in request.url else None)
    log_in(page, key, "attention?meeting=../../auth/api-keys")
    page.get_by_role("alert").wait_for()  # the meeting is not found
    assert [url for url in seen if "/auth/api-keys" in url] == []
    assert any("/attention/meetings/..%2F..%2Fauth%2Fapi-keys" in url for url in seen), seen


def test_credentials_only_in_session_storage_and_gone_after_logout(
    page: Any, console_server: RunningServer, new_key: Callable[..., str]
) -> None:
    key = new_key()
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    log_in(page, key, "keys")
    page.wait_for_load_state("networkidle")
    assert page.evaluate("() => localStorage.length") == 0
    assert page.context.cookies() == []
    assert not [url for url in urls if key in url]
    page.get_by_role("button", name="Log out").click()
    assert page.evaluate("() => sessionStorage.length") == 0
    # The CSP blocks an injected inline script and an inline event handler.
    ran = page.evaluate(
        """() => {
          window.__x = 0;
          const s = document.createElement('script');
          s.textContent = 'window.__x=1';
          document.body.append(s);
          const d = document.createElement('div');
          d.innerHTML = '<img src=x onerror="window.__x=2">';
          document.body.append(d);
          return new Promise((r) => setTimeout(() => r(window.__x), 500));
        }"""
    )
    assert ran == 0


def test_focus_stays_on_the_submit_button_after_a_keyboard_submit(
    page: Any, console_server: RunningServer, astronaut_jpeg: bytes, tmp_path: Any
) -> None:
    """Disabling the focused button while the call runs dropped focus to <body>."""
    photo = tmp_path / "astronaut.jpg"
    photo.write_bytes(astronaut_jpeg)
    log_in(page, console_server.key, "detect")
    page.locator("input[type=file]").first.set_input_files(str(photo))
    button = page.get_by_role("button", name="Detect faces")
    button.focus()
    page.keyboard.press("Enter")
    page.locator("canvas[data-faces]").wait_for()
    page.wait_for_function("document.activeElement && document.activeElement.textContent === 'Detect faces'")
