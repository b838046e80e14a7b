"""The Models view in Chromium: the registry's slots as GET /api/v1/models lists them (operator
key), the clear message for a key that is not the operator's, a slot's versions and drift check,
and an A/B experiment created in the form and listed."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import log_in
from tests.integration.conftest import RunningServer


def api_get(server: RunningServer, key: str, path: str, **query: Any) -> Any:
    response = httpx.get(f"{server.base}{path}", headers={"X-API-Key": key}, params=query, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def cells(page: Page, caption: str) -> list[list[str]]:
    """The body cells of the table with this caption, as text."""
    table = page.locator("table", has=page.locator("caption", has_text=caption))
    expect(table).to_be_visible()
    return [
        [c.strip() for c in row.locator("td").all_inner_texts()] for row in table.locator("tbody tr").all()
    ]


def test_operator_sees_the_slots_of_the_registry(
    page: Page, console_server: RunningServer, new_key: Callable[..., str]
) -> None:
    key = new_key("operator")
    log_in(page, key, "models")
    expected = api_get(console_server, key, "/api/v1/models")["models"]
    assert expected, "the registry lists no slot"
    rows = cells(page, "Serving slots")
    assert [r[0] for r in rows] == [m["model_id"] for m in expected]
    for row, model in zip(rows, expected, strict=True):
        assert row[2] == (model["production"] or "—")
        canary = model["canary"]
        assert row[3] == (f"{canary['version']} ({canary['percent']} %)" if canary else "—")
        assert row[5] == str(len(model["versions"]))

    # A slot's versions, as GET /api/v1/models/{slot}/versions lists them.
    slot = expected[0]["model_id"]
    page.get_by_role("button", name=f"Open {slot}").click()
    versions = api_get(console_server, key, f"/api/v1/models/{slot}/versions")["versions"]
    rows = cells(page, f"Versions of {slot}")
    assert [r[0] for r in rows] == [v["version"] for v in versions]
    assert [r[1] for r in rows] == [v["stage"] for v in versions]

    # A drift check: the per-feature table is the answer's.
    page.get_by_role("button", name="Run drift check").click()
    expect(page.locator(".models-drift")).to_contain_text("Latest check")
    checks = api_get(console_server, key, f"/api/v1/models/{slot}/drift", limit=1)["checks"]
    assert checks
    shown = page.locator(".models-drift").inner_text()
    assert f"severity {checks[0]['severity']}" in shown.replace("\n", " ")
    features = [name for name in checks[0]["features"] if name != "accuracy"]
    if features:
        assert [r[0] for r in cells(page, "Drift per feature")] == features


def test_admin_key_gets_the_operator_message(page: Page, new_key: Callable[..., str]) -> None:
    log_in(page, new_key("admin"), "models")
    alert = page.locator(".models-forbidden")
    expect(alert).to_contain_text("needs an operator key")
    expect(page.get_by_text("FORBIDDEN", exact=False)).to_be_visible()
    # No half-drawn page: no slots table, no experiment form.
    assert page.locator("table").count() == 0
    assert page.get_by_role("button", name="Create experiment").count() == 0


def test_experiment_created_in_the_form_is_listed(
    page: Page, console_server: RunningServer, new_key: Callable[..., str]
) -> None:
    key = new_key("operator")
    models = api_get(console_server, key, "/api/v1/models")["models"]
    slot = next((m for m in models if len([v for v in m["versions"] if v["stage"] != "archived"]) >= 2), None)
    if slot is None:
        pytest.skip("no slot lists two versions: pull the model pack")
    log_in(page, key, "models")
    name = f"e2e experiment {uuid.uuid4().hex[:8]}"
    page.get_by_label("Experiment name").fill(name)
    page.get_by_label("Slot", exact=True).select_option(slot["model_id"])
    baseline = page.get_by_label("Baseline version").input_value()
    challenger = page.get_by_label("Challenger version").input_value()
    assert baseline != challenger
    page.get_by_label("Traffic to the challenger (%)").fill("20")
    page.get_by_label("Minimum sample size per arm").fill("50")
    page.get_by_role("button", name="Create experiment").click()
    table = page.locator("table", has=page.locator("caption", has_text="Experiments ("))
    expect(table.locator("tr", has_text=name)).to_be_visible()

    listed = api_get(console_server, key, "/api/v1/experiments", model_id=slot["model_id"])["experiments"]
    created = next(x for x in listed if x["name"] == name)
    assert (created["baseline_version"], created["challenger_version"]) == (baseline, challenger)
    assert created["traffic_split_percent"] == 20 and created["minimum_sample_size"] == 50
    assert created["status"] == "draft"
    row = [c.strip() for c in table.locator("tr", has_text=name).locator("td").all_inner_texts()]
    assert row[1:5] == [slot["model_id"], baseline, challenger, "20 % (random)"] and row[5] == "draft"

    # Its results: two arms with their versions and n, as the API computes them.
    page.get_by_role("button", name=f"Results of {name}").click()
    arms = cells(page, "Arms")
    results = api_get(console_server, key, f"/api/v1/experiments/{created['experiment_id']}/results")
    assert [(r[0], r[1], r[2]) for r in arms] == [
        (arm, body["version"], str(body["sample_size"])) for arm, body in results["arms"].items()
    ]
    expect(page.locator(".models-results")).to_contain_text(results["conclusion"]["recommendation"])
