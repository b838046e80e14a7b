"""The console's shell in Chromium: its page and assets, logging in and out, every view opening
without a script error, keyboard navigation, and a phone-sized screen."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import log_in
from tests.integration.conftest import RunningServer

VIEWS = ["detect", "recognition", "liveness", "forensics", "jobs", "attention", "counting", "models", "keys"]


def test_page_and_assets_are_served_with_a_strict_policy(console_server: RunningServer) -> None:
    page = httpx.get(f"{console_server.base}/console")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    script = httpx.get(f"{console_server.base}/console/assets/js/app.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    # Nothing outside the static folder, nothing of an unknown type.
    for path in [
        "/console/assets/../router.py",
        "/console/assets/%2e%2e/router.py",
        "/console/assets/js/nope.js",
    ]:
        assert httpx.get(f"{console_server.base}{path}").status_code == 404, path
    # The page references no other origin (no CDN at run time).
    assert not re.search(r"(src|href)=\"(https?:)?//", page.text)


def test_wrong_key_is_refused_then_right_key_logs_in_and_out(
    page: object, console_server: RunningServer
) -> None:
    page.goto("/console")  # type: ignore[attr-defined]
    page.get_by_label("API key", exact=True).fill("fs_not_a_real_key")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Log in with key").click()  # type: ignore[attr-defined]
    alert = page.get_by_role("alert")  # type: ignore[attr-defined]
    alert.wait_for()
    assert "Log in" in page.locator("h1").inner_text()  # type: ignore[attr-defined]
    page.get_by_label("API key", exact=True).fill(console_server.key)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Log in with key").click()  # type: ignore[attr-defined]
    page.locator("nav a[aria-current=page]").wait_for()  # type: ignore[attr-defined]
    assert page.locator("h1").inner_text() == "Detect"  # type: ignore[attr-defined]
    page.get_by_role("button", name="Log out").click()  # type: ignore[attr-defined]
    page.get_by_label("API key", exact=True).wait_for()  # type: ignore[attr-defined]


@pytest.mark.parametrize("view", VIEWS)
def test_every_view_opens_without_a_script_error(
    page: object, console_server: RunningServer, view: str
) -> None:
    log_in(page, console_server.key, view)
    current = page.locator("nav a[aria-current=page]")  # type: ignore[attr-defined]
    assert current.get_attribute("href") == f"#/{view}"
    # The heading has focus after navigation (keyboard and screen-reader users land on it).
    assert page.evaluate("document.activeElement.tagName") == "H1"  # type: ignore[attr-defined]


def test_keyboard_reaches_the_skip_link_and_the_navigation(
    page: object, console_server: RunningServer
) -> None:
    log_in(page, console_server.key)
    # A fresh load starts at the top of the document (after a navigation the view's heading has focus).
    page.reload()  # type: ignore[attr-defined]
    page.locator("h1").wait_for()  # type: ignore[attr-defined]
    page.keyboard.press("Tab")  # type: ignore[attr-defined]
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"  # type: ignore[attr-defined]
    # Tab until the Recognition link has focus, then Enter opens it.
    for _ in range(20):
        page.keyboard.press("Tab")  # type: ignore[attr-defined]
        if page.evaluate("document.activeElement.textContent") == "Recognition":  # type: ignore[attr-defined]
            break
    page.keyboard.press("Enter")  # type: ignore[attr-defined]
    page.wait_for_function("document.querySelector('h1').textContent === 'Recognition'")  # type: ignore[attr-defined]


def test_phone_screen_has_a_menu_and_no_horizontal_scroll(
    page: object, console_server: RunningServer
) -> None:
    page.set_viewport_size({"width": 375, "height": 740})  # type: ignore[attr-defined]
    log_in(page, console_server.key)
    nav = page.locator("#nav")  # type: ignore[attr-defined]
    assert not nav.is_visible()
    page.get_by_role("button", name="Menu").click()  # type: ignore[attr-defined]
    assert nav.is_visible()
    page.get_by_role("link", name="Counting").click()  # type: ignore[attr-defined]
    page.wait_for_function("document.querySelector('h1').textContent === 'Counting'")  # type: ignore[attr-defined]
    width = page.evaluate("document.documentElement.scrollWidth")  # type: ignore[attr-defined]
    assert width <= 375, f"page is {width} px wide on a 375 px screen"


def test_the_sign_up_card_creates_an_account_and_logs_it_in(
    page: object, console_server: RunningServer
) -> None:
    import uuid

    name = f"e2e_{uuid.uuid4().hex[:12]}"
    password = f"pw-{uuid.uuid4().hex}"
    page.goto("/console")  # type: ignore[attr-defined]
    # The API-key card names both ways of getting a key.
    expect(page.locator("main")).to_contain_text("the first start of facesocial serve")  # type: ignore[attr-defined]
    expect(page.locator("main")).to_contain_text("facesocial keys create")  # type: ignore[attr-defined]
    card = page.locator("section", has=page.get_by_role("heading", name="Create an account"))  # type: ignore[attr-defined]
    card.get_by_label("New username").fill(name)
    card.get_by_label("Email").fill(f"{name}@example.org")
    # A weak passphrase first: the API's code, and nothing created.
    card.get_by_label("Passphrase").fill("short")
    card.get_by_label("Passphrase").evaluate("n => n.removeAttribute('minlength')")
    card.get_by_role("button", name="Create account").click()
    expect(card.get_by_role("alert")).to_contain_text("WEAK_PASSWORD")
    card.get_by_label("Passphrase").fill(password)
    card.get_by_role("button", name="Create account").click()
    # Logged in as the new account: the first view opens, the top bar names it.
    expect(page.locator("#who-name")).to_have_text(name)  # type: ignore[attr-defined]
    expect(page.locator("nav a[aria-current=page]")).to_be_visible()  # type: ignore[attr-defined]
    login = httpx.post(
        f"{console_server.base}/api/v1/auth/login", json={"username": name, "password": password}, timeout=30
    )
    assert login.status_code == 200 and login.json()["account"]["username"] == name
    # Creating it again answers the API's conflict code on the login page.
    page.get_by_role("button", name="Log out").click()  # type: ignore[attr-defined]
    card.get_by_label("New username").fill(name)
    card.get_by_label("Email").fill(f"{name}@example.org")
    card.get_by_label("Passphrase").fill(password)
    card.get_by_role("button", name="Create account").click()
    expect(card.get_by_role("alert")).to_contain_text("ACCOUNT_EXISTS")
