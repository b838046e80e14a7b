"""GET /api/v1/auth/usage: a tenant's API calls from audit.usage_logs — counts per day and
endpoint, 4xx/5xx, mean and p95 processing time over a window of whole UTC days, per key — and
never another tenant's calls. On SQLite (embedded) and PostgreSQL (scaled)."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from facesocial.api.app import create_app
from facesocial.container import Container
from facesocial.services.usage import ENDPOINT_LIMIT, UsageService, window
from facesocial.store.tables import AiOperationLog, UsageLog
from tests.integration.conftest import make_settings
from tests.services import scratch_postgres

pytestmark = pytest.mark.integration
USAGE = "/api/v1/auth/usage"
JOBS = "/api/v1/jobs"
LIST_JOBS = "GET /api/v1/jobs"
GET_JOB = "GET /api/v1/jobs/{job_id}"
PASSWORD = "a long enough passphrase"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = make_settings(tmp_path_factory.mktemp("usage"), None)

    def run() -> Iterator[TestClient]:
        container = Container(settings)
        container.prepare()
        with TestClient(create_app(container), raise_server_exceptions=False) as client:
            client.container = container  # type: ignore[attr-defined]
            yield client
        container.close()

    if request.param == "sqlite":
        yield from run()
        return
    with scratch_postgres() as url:
        settings.database_url = url
        yield from run()


def container_of(client: TestClient) -> Container:
    container: Container = client.container  # type: ignore[attr-defined]
    return container


def headers(secret: str) -> dict[str, str]:
    return {"X-API-Key": secret}


def usage(api: TestClient, auth: dict[str, str], **query: Any) -> dict[str, Any]:
    response = api.get(USAGE, headers=auth, params=query)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def endpoint(body: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((e for e in body["per_endpoint"] if e["endpoint"] == name), None)


def test_counts_errors_and_keys_of_the_callers_tenant_only(api: TestClient) -> None:
    keys = container_of(api).keys
    first = keys.create("tenant A, first key")
    # A second key of the same tenant, and a user-role key of it.
    second = keys.create("tenant A, second key", owner_id=first.id)
    client_app = keys.create("tenant A, client", role="user", owner_id=first.id)
    other = keys.create("tenant B")
    for _ in range(3):
        assert api.get(JOBS, headers=headers(first.secret), params={"limit": 1}).status_code == 200
    assert api.get(f"{JOBS}/{uuid.uuid4()}", headers=headers(first.secret)).status_code == 404
    assert api.get(JOBS, headers=headers(second.secret), params={"limit": 0}).status_code == 422
    assert api.get(JOBS, headers=headers(client_app.secret)).status_code == 200
    # Tenant B calls the same routes, more often: none of it may show in A's report.
    for _ in range(5):
        assert api.get(JOBS, headers=headers(other.secret)).status_code == 200
    assert api.get(f"{JOBS}/{uuid.uuid4()}", headers=headers(other.secret)).status_code == 404

    body = usage(api, headers(first.secret))
    assert body["success"] is True and body["days"] == 7
    listing = endpoint(body, LIST_JOBS)
    assert listing is not None
    assert (listing["requests"], listing["errors_4xx"], listing["errors_5xx"]) == (5, 1, 0)
    one = endpoint(body, GET_JOB)
    assert one is not None and (one["requests"], one["errors_4xx"]) == (1, 1)
    # Only these 6 calls: B's 6 calls and its keys are absent.
    assert body["totals"]["requests"] == 6
    assert body["totals"]["errors_4xx"] == 2
    assert {k["api_key_id"] for k in body["per_key"]} == {str(first.id), str(second.id), str(client_app.id)}
    per_key = {k["api_key_id"]: k["requests"] for k in body["per_key"]}
    assert per_key == {str(first.id): 4, str(second.id): 1, str(client_app.id): 1}
    # Every day of the window is listed (zeros included), today holds the calls.
    assert len(body["per_day"]) == 7
    today = datetime.now(UTC).date().isoformat()
    assert body["per_day"][-1]["date"] == today and body["per_day"][-1]["requests"] == 6
    assert sum(d["requests"] for d in body["per_day"]) == 6
    assert sum(c["requests"] for c in body["per_day_endpoint"]) == 6
    assert body["totals"]["mean_ms"] is not None and body["totals"]["p95_ms"] >= 0

    # B sees its own calls plus nothing of A's (the first report call is A's, not B's).
    mine = usage(api, headers(other.secret))
    assert mine["totals"]["requests"] == 6
    assert {k["api_key_id"] for k in mine["per_key"]} == {str(other.id)}

    # One key of the tenant; a key of another tenant answers nothing (no probing).
    only = usage(api, headers(first.secret), api_key_id=str(second.id))
    assert only["totals"]["requests"] == 1 and only["api_key_id"] == str(second.id)
    assert usage(api, headers(first.secret), api_key_id=str(other.id))["totals"]["requests"] == 0

    # A user key sees its own calls only, and may not ask for another key's.
    own = usage(api, headers(client_app.secret))
    assert own["api_key_id"] == str(client_app.id) and own["totals"]["requests"] == 1
    assert own["caller"]["role"] == "user" and own["caller"]["kind"] == "api_key"
    assert own["caller"]["key"]["id"] == str(client_app.id)
    assert own["caller"]["key"]["tenant_id"] == str(first.id) == own["caller"]["tenant_id"]
    assert "secret" not in own["caller"]["key"] and "key_hash" not in own["caller"]["key"]
    refused = api.get(USAGE, headers=headers(client_app.secret), params={"api_key_id": str(first.id)})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "FORBIDDEN"


def test_account_token_calls_count_for_the_account_tenant(api: TestClient) -> None:
    name = f"usage{uuid.uuid4().hex[:10]}"
    registered = api.post(
        "/api/v1/auth/register", json={"username": name, "email": f"{name}@example.org", "password": PASSWORD}
    )
    assert registered.status_code in (200, 201), registered.text
    login = api.post("/api/v1/auth/login", json={"username": name, "password": PASSWORD})
    token = {"Authorization": f"Bearer {login.json()['access_token']}"}
    created = api.post("/api/v1/auth/api-keys", headers=token, json={"name": "mine"})
    assert created.status_code == 201, created.text
    secret, key_id = created.json()["api_key"], created.json()["key"]["id"]
    assert api.get(JOBS, headers=token).status_code == 200
    assert api.get(JOBS, headers=headers(secret)).status_code == 200
    body = usage(api, token)
    assert body["caller"]["kind"] == "jwt" and body["caller"]["key"] is None
    assert body["caller"]["tenant_id"] == body["caller"]["account_id"]
    listing = endpoint(body, LIST_JOBS)
    assert listing is not None and listing["requests"] == 2
    # The token's calls (no key) and the key's: the key creation and GET /jobs by the token,
    # then GET /jobs by the key.
    per_key = {k["api_key_id"]: k["requests"] for k in body["per_key"]}
    assert per_key[key_id] == 1 and per_key[None] >= 2


@pytest.mark.parametrize("days", [0, 91, "x"])
def test_window_outside_1_to_90_days_is_refused(api: TestClient, days: object) -> None:
    key = container_of(api).keys.create("validation")
    response = api.get(USAGE, headers=headers(key.secret), params={"days": days})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"


def test_unauthenticated_is_refused(api: TestClient) -> None:
    assert api.get(USAGE).status_code == 401


def test_days_window_mean_and_p95_of_stored_rows(api: TestClient) -> None:
    """Rows at known times and durations: the day buckets, the window's edge, mean and p95."""
    container = container_of(api)
    tenant, stranger = uuid.uuid4(), uuid.uuid4()
    now = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
    start, _, days = window(3, now)
    assert start == datetime(2026, 6, 13, tzinfo=UTC) and len(days) == 3
    durations = [0.010, 0.020, 0.030, 0.040, 1.000]
    rows = [
        UsageLog(
            tenant_id=tenant,
            request_type="detect",
            request_path="POST /api/v1/face-detection/detect",
            request_date=now - timedelta(hours=1),
            response_code=200,
            processing_time=seconds,
        )
        for seconds in durations
    ]

    def row(owner: uuid.UUID, path: str, age: timedelta, status: int, seconds: float) -> UsageLog:
        return UsageLog(
            tenant_id=owner,
            request_type="x",
            request_path=path,
            request_date=now - age,
            response_code=status,
            processing_time=seconds,
        )

    rows += [
        # Yesterday: a 500 and a 429; three days ago: outside a 3-day window.
        row(tenant, "GET /a", timedelta(days=1), 500, 0.5),
        row(tenant, "GET /a", timedelta(days=1), 429, 0.5),
        row(tenant, "GET /old", timedelta(days=3), 200, 0.1),
        # Another tenant, same time and route.
        row(stranger, "POST /api/v1/face-detection/detect", timedelta(hours=1), 200, 9.0),
    ]
    with container.database.session() as session:
        session.add_all(rows)
    report = UsageService(container.database).report(tenant, days=3, now=now)
    assert [d["date"] for d in report["per_day"]] == ["2026-06-13", "2026-06-14", "2026-06-15"]
    assert [d["requests"] for d in report["per_day"]] == [0, 2, 5]
    assert report["per_day"][1]["errors_5xx"] == 1 and report["per_day"][1]["errors_4xx"] == 1
    detect = endpoint(report, "POST /api/v1/face-detection/detect")
    assert detect is not None and detect["requests"] == 5
    expected_ms = np.array(durations) * 1000
    assert detect["mean_ms"] == pytest.approx(float(expected_ms.mean()), abs=1e-3)
    assert detect["p95_ms"] == pytest.approx(float(np.percentile(expected_ms, 95)), abs=1e-3)
    assert endpoint(report, "GET /old") is None
    assert report["totals"]["requests"] == 7 and report["totals"]["errors_5xx"] == 1
    assert report["per_key"] == [{"api_key_id": None, **report["totals"]}]
    # A 7-day window reaches the old row.
    assert UsageService(container.database).report(tenant, days=7, now=now)["totals"]["requests"] == 8


def test_unknown_paths_are_one_unmatched_endpoint(api: TestClient) -> None:
    """Requests to distinct unknown paths (404) are reported as the one endpoint ``unmatched``
    — not one endpoint per path — while the audit log keeps each path asked for; a request
    refused before routing still names its route."""
    key = container_of(api).keys.create("random paths")
    paths = [f"/api/v1/nothing-{i}-{uuid.uuid4().hex}/x" for i in range(30)]
    for path in paths:
        assert api.get(path, headers=headers(key.secret)).status_code == 404
    assert api.get(JOBS, headers=headers(key.secret), params={"limit": 0}).status_code == 422
    body = usage(api, headers(key.secret), days=1)
    assert {e["endpoint"]: e["requests"] for e in body["per_endpoint"]} == {"unmatched": 30, LIST_JOBS: 1}
    assert endpoint(body, "unmatched")["errors_4xx"] == 30  # type: ignore[index]
    assert {e["endpoint"] for e in body["per_day_endpoint"]} == {"unmatched", LIST_JOBS}
    assert body["endpoints_total"] == 2 and body["endpoint_limit"] == 50
    with container_of(api).database.session() as session:
        logged = session.scalars(
            select(AiOperationLog.endpoint).where(AiOperationLog.api_key_id == str(key.id))
        ).all()
    assert {f"GET {path}" for path in paths} <= set(logged)


def _insert(
    container: Container, tenant: uuid.UUID, key: uuid.UUID, paths: list[str], now: datetime, spread: int
) -> None:
    rng = random.Random(7)
    rows = [
        {
            "id": uuid.uuid4(),
            "tenant_id": tenant,
            "api_key_id": key,
            "request_type": "x.unknown",
            "request_path": path,
            "request_date": now - timedelta(seconds=rng.randint(0, spread * 86400)),
            "response_code": rng.choice([200, 200, 404, 500]),
            "processing_time": round(rng.random(), 3),
        }
        for path in paths
    ]
    with container.database.session() as session:
        for i in range(0, len(rows), 10_000):
            session.execute(insert(UsageLog), rows[i : i + 10_000])


def test_answer_is_bounded_whatever_the_rows_hold(api: TestClient) -> None:
    """Rows naming 20,000 distinct endpoints (as stored before unknown paths were collapsed):
    the answer lists ENDPOINT_LIMIT endpoints, the most called first, and sums the rest as
    ``other``; the figures still add up, and the p95 of every group is numpy's."""
    container = container_of(api)
    first = container.keys.create("bounded")
    rows_key = container.keys.create("the stored rows' key", owner_id=first.id)
    now = datetime.now(UTC) - timedelta(seconds=5)
    busy = [f"GET /api/v1/ep{i % 60}" for i in range(6_000)]  # 60 endpoints of 100 rows each
    one_off = [f"GET /api/v1/zz{i}/x" for i in range(20_000)]
    _insert(container, first.id, rows_key.id, busy + one_off, now, spread=6)
    started = time.monotonic()
    response = api.get(
        USAGE, headers=headers(first.secret), params={"days": 7, "api_key_id": str(rows_key.id)}
    )
    took = time.monotonic() - started
    assert response.status_code == 200
    # It was one entry per distinct path (47 MB for 200k rows): now at most 51 per list.
    assert len(response.content) < 200_000 and took < 10, (len(response.content), took)
    report = response.json()
    assert report["totals"]["requests"] == 26_000
    assert report["endpoints_total"] == 20_060 and report["endpoint_limit"] == ENDPOINT_LIMIT
    listed = report["per_endpoint"]
    assert len(listed) == ENDPOINT_LIMIT + 1 and listed[-1]["endpoint"] == "other"
    assert all(e["endpoint"].startswith("GET /api/v1/ep") and e["requests"] == 100 for e in listed[:-1])
    assert listed[-1]["requests"] == 26_000 - 100 * ENDPOINT_LIMIT
    assert sum(e["requests"] for e in report["per_day_endpoint"]) == 26_000
    assert {e["endpoint"] for e in report["per_day_endpoint"]} <= {e["endpoint"] for e in listed}
    assert len(report["per_day_endpoint"]) <= 7 * (ENDPOINT_LIMIT + 1)
    assert sum(d["requests"] for d in report["per_day"]) == 26_000
    # Exact figures of two groups from the stored rows.
    with container.database.session() as session:
        stored = session.execute(
            select(UsageLog.request_path, UsageLog.processing_time).where(UsageLog.api_key_id == rows_key.id)
        ).all()
    times = np.array([float(t) * 1000 for _, t in stored])
    assert report["totals"]["p95_ms"] == pytest.approx(float(np.percentile(times, 95)), abs=1e-3)
    assert report["totals"]["mean_ms"] == pytest.approx(float(times.mean()), abs=1e-3)
    first = listed[0]["endpoint"]
    mine = np.array([float(t) * 1000 for path, t in stored if path == first])
    assert listed[0]["p95_ms"] == pytest.approx(float(np.percentile(mine, 95)), abs=1e-3)
    listed_names = {e["endpoint"] for e in listed[:-1]}
    rest = np.array([float(t) * 1000 for path, t in stored if path not in listed_names])
    assert listed[-1]["p95_ms"] == pytest.approx(float(np.percentile(rest, 95)), abs=1e-3)
