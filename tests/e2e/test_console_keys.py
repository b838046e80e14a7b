"""The API keys & usage view in Chromium: an account registered over HTTP logs in with the
console's account form, creates a key (the secret shown once), revokes it (the API then refuses
it), and reads its tenant's usage, which must equal GET /api/v1/auth/usage; an API-key login sees
its own key's record and why key management needs the account login."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from tests.e2e.conftest import log_in
from tests.integration.conftest import RunningServer

PASSWORD = "a long enough passphrase"
USAGE_ROUTE = "GET /api/v1/auth/usage"


def rows_of(page: Page, caption: str) -> list[list[str]]:
    table = page.locator("table", has=page.locator("caption", has_text=caption))
    expect(table).to_be_visible()
    return [
        [c.strip() for c in row.locator("td").all_inner_texts()] for row in table.locator("tbody tr").all()
    ]


def register(server: RunningServer) -> tuple[str, dict[str, str]]:
    name = f"e2e{uuid.uuid4().hex[:10]}"
    answer = httpx.post(
        f"{server.base}/api/v1/auth/register",
        json={"username": name, "email": f"{name}@example.org", "password": PASSWORD},
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    login = httpx.post(
        f"{server.base}/api/v1/auth/login", json={"username": name, "password": PASSWORD}, timeout=30
    )
    assert login.status_code == 200, login.text
    return name, {"Authorization": f"Bearer {login.json()['access_token']}"}


def test_account_creates_shows_once_and_revokes_a_key_then_reads_its_usage(
    page: Page, console_server: RunningServer
) -> None:
    name, token = register(console_server)
    page.goto("/console")
    page.get_by_label("Username or email").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    page.get_by_role("button", name="Log out").wait_for()
    page.goto("/console#/keys")
    expect(page.locator("h1")).to_have_text("API keys & usage")
    expect(page.get_by_text("This account has no API keys yet.")).to_be_visible()

    # Create: the secret is shown once, with a copy button.
    page.get_by_label("Key name").fill("ci key")
    page.get_by_label("Request limit").fill("25")
    page.get_by_role("button", name="Create key").click()
    secret_node = page.locator(".keys-secret")
    expect(secret_node).to_be_visible()
    secret = secret_node.inner_text().strip()
    assert secret.startswith("fs_") and len(secret) > 20
    expect(page.get_by_role("button", name="Copy key")).to_be_visible()
    listed = httpx.get(f"{console_server.base}/api/v1/auth/api-keys", headers=token).json()["keys"]
    assert [k["name"] for k in listed] == ["ci key"] and listed[0]["request_limit"] == 25
    assert secret.startswith(listed[0]["prefix"])
    rows = rows_of(page, "The account's API keys")
    assert rows[0][:5] == ["ci key", listed[0]["prefix"], "user", "active", "0 / 25"]
    # The key works, and counts as the account's tenant's call.
    used = httpx.get(f"{console_server.base}/api/v1/jobs", headers={"X-API-Key": secret}, timeout=30)
    assert used.status_code == 200
    page.get_by_role("button", name="I have saved it — hide").click()
    expect(secret_node).to_have_count(0)
    assert secret not in page.content()  # shown once: nowhere in the page any more

    # Revoke, confirmed: the row says revoked, and the API refuses the key.
    page.get_by_role("button", name="Revoke ci key").click()
    page.get_by_role("button", name="Yes, revoke ci key").click()
    expect(
        page.locator("table", has=page.locator("caption", has_text="The account's API keys"))
    ).to_contain_text("revoked")
    assert rows_of(page, "The account's API keys")[0][3] == "revoked"
    refused = httpx.get(f"{console_server.base}/api/v1/jobs", headers={"X-API-Key": secret}, timeout=30)
    assert refused.status_code == 401
    assert (
        httpx.get(f"{console_server.base}/api/v1/auth/api-keys", headers=token).json()["keys"][0]["state"]
        == "revoked"
    )

    # More calls by the token, then the usage table: the same counts as the endpoint.
    for _ in range(3):
        assert (
            httpx.get(f"{console_server.base}/api/v1/jobs", headers=token, params={"limit": 2}).status_code
            == 200
        )
    page.get_by_role("button", name="Show usage").click()
    expect(page.locator("table", has=page.locator("caption", has_text="Per endpoint"))).to_contain_text(
        "GET /api/v1/jobs"
    )
    shown = {r[0]: r[1:4] for r in rows_of(page, "Per endpoint")}
    report: dict[str, Any] = httpx.get(
        f"{console_server.base}/api/v1/auth/usage", headers=token, params={"days": 7}
    ).json()
    expected = {
        e["endpoint"]: [str(e["requests"]), str(e["errors_4xx"]), str(e["errors_5xx"])]
        for e in report["per_endpoint"]
    }
    # The usage calls themselves are written after each answer: compare every other route.
    shown.pop(USAGE_ROUTE, None)
    expected.pop(USAGE_ROUTE, None)
    assert shown == expected
    assert expected["GET /api/v1/jobs"] == ["4", "0", "0"]  # 1 by the key, 3 by the token
    assert expected["POST /api/v1/auth/api-keys"][0] == "1"
    assert expected["DELETE /api/v1/auth/api-keys/{key_id}"][0] == "1"
    # The chart lists every day of the window with its count as text.
    bars = page.locator(".usage-bars li")
    expect(bars).to_have_count(7)
    today = report["per_day"][-1]
    assert bars.nth(6).inner_text().split("\n")[0].strip() == today["date"]


def test_key_login_sees_its_own_record_and_why_keys_need_the_account(
    page: Page, console_server: RunningServer, new_key: Callable[..., str]
) -> None:
    key = new_key("admin")
    log_in(page, key, "keys")
    expect(page.get_by_text("This key belongs to no account")).to_be_visible()
    expect(page.get_by_text("needs the account's login")).to_be_visible()
    assert page.get_by_role("button", name="Create key").count() == 0
    who = page.locator("dl.facts").first
    expect(who).to_contain_text(key[:10])
    expect(who).to_contain_text("admin")
    report = httpx.get(
        f"{console_server.base}/api/v1/auth/usage", headers={"X-API-Key": key}, params={"days": 7}
    ).json()
    assert report["caller"]["key"]["prefix"] == key[:10]
    expect(who).to_contain_text(report["caller"]["tenant_id"])
