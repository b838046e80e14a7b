"""The index upkeep routes (/api/v1/admin/index/...): the operator role, bounded bodies, a rate limit.

No model runs here: the routes compare and rebuild whatever the stores hold (empty ones).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from facesocial.api.app import create_app
from facesocial.container import Container
from facesocial.settings import RateLimit, Settings
from tests.integration.conftest import make_settings

pytestmark = pytest.mark.integration
VERIFY = "/api/v1/admin/index/verify"
REBUILD = "/api/v1/admin/index/rebuild"


class Keys:
    def __init__(self, container: Container) -> None:
        self.operator = {"X-API-Key": container.keys.create("operator", role="operator").secret}
        self.admin = {"X-API-Key": container.keys.create("tenant admin").secret}  # the default role
        self.user = {"X-API-Key": container.keys.create("tenant user", role="user").secret}


def _app(tmp_path: Path, tune: Any = None) -> Iterator[tuple[TestClient, Keys]]:
    settings: Settings = make_settings(tmp_path, tmp_path / "no-models")
    settings.reconcile.interval_seconds = 0
    if tune is not None:
        tune(settings)
    container = Container(settings)
    container.prepare()
    keys = Keys(container)
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        yield client, keys
    container.close()


@pytest.fixture
def admin_app(tmp_path: Path) -> Iterator[tuple[TestClient, Keys]]:
    yield from _app(tmp_path)


def error_of(response: Any) -> tuple[int, str, str]:
    body = response.json()
    assert body["success"] is False, response.text
    return response.status_code, body["error"]["code"], body["error"]["message"]


def test_only_the_operator_may_run_index_upkeep(admin_app: tuple[TestClient, Keys]) -> None:
    client, keys = admin_app
    for headers in (keys.admin, keys.user):
        for path, body in ((VERIFY, {"repair": True}), (REBUILD, None)):
            status, code, message = error_of(client.post(path, json=body, headers=headers))
            assert (status, code) == (403, "FORBIDDEN"), path
            # The refusal says how to get a key that may.
            assert "facesocial keys create --role operator" in message
    verified = client.post(VERIFY, json={"repair": True}, headers=keys.operator)
    assert verified.status_code == 200 and verified.json()["report"]["consistent"] is True
    rebuilt = client.post(REBUILD, headers=keys.operator)
    assert rebuilt.status_code == 200 and rebuilt.json()["collections"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"grace_seconds": 1e12}', "grace_seconds"),
        ('{"grace_seconds": 99999999999}', "grace_seconds"),
        ('{"grace_seconds": 1e300}', "grace_seconds"),
        ('{"grace_seconds": 1e309}', "grace_seconds"),  # Python's JSON reads it as infinity
        ('{"grace_seconds": Infinity}', "grace_seconds"),
        ('{"grace_seconds": NaN}', "grace_seconds"),
        ('{"grace_seconds": 2592001}', "grace_seconds"),
        ('{"grace_seconds": -1}', "grace_seconds"),
        ('{"extra": 1}', "extra"),
        ('{"repair": "yes"}', "repair"),
        ('{"repair": true, "repair": false}', "repair"),
    ],
    ids=[
        "1e12",
        "1e11-int",
        "1e300",
        "1e309",
        "infinity",
        "nan",
        "30d+1",
        "negative",
        "extra",
        "yes",
        "twice",
    ],
)
def test_verify_body_is_bounded(admin_app: tuple[TestClient, Keys], body: str, field: str) -> None:
    client, keys = admin_app
    response = client.post(
        VERIFY, content=body, headers={**keys.operator, "Content-Type": "application/json"}
    )
    status, code, _message = error_of(response)
    assert (status, code) == (422, "VALIDATION_ERROR")
    assert [d["field"] for d in response.json()["error"]["details"]] == [field]


def test_verify_takes_the_largest_grace_period(admin_app: tuple[TestClient, Keys]) -> None:
    client, keys = admin_app
    for grace in (0, 2592000):  # 0 and 30 days, the bounds
        response = client.post(VERIFY, json={"grace_seconds": grace, "repair": True}, headers=keys.operator)
        assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'{"repair": true', "The body is not valid JSON: Expecting ',' delimiter at character 15"),
        (b'{"show": 1' + b"0" * 5000 + b"}", "The body is not valid JSON: a number has too many digits"),
        (b'{"show": ' + b"[" * 5000 + b"]" * 5000 + b"}", "nested too deeply"),
        (b"\xff\xfe\x00", "The body is not valid JSON: not UTF-8"),
    ],
    ids=["truncated", "huge-int", "deep", "not-utf8"],
)
def test_malformed_json_is_the_same_validation_error(
    admin_app: tuple[TestClient, Keys], body: bytes, problem: str
) -> None:
    client, keys = admin_app
    response = client.post(
        VERIFY, content=body, headers={**keys.operator, "Content-Type": "application/json"}
    )
    assert error_of(response)[:2] == (422, "VALIDATION_ERROR")
    [detail] = response.json()["error"]["details"]
    assert detail["field"] == "body" and problem in detail["problem"]


def test_index_routes_are_rate_limited_per_key(tmp_path: Path) -> None:
    def limited(settings: Settings) -> None:
        settings.rate_limits.enabled = True
        settings.rate_limits.limits = {"admin": RateLimit(rate_per_second=0.01, burst=3)}

    for client, keys in _app(tmp_path, limited):
        statuses = [client.post(VERIFY, json={}, headers=keys.operator).status_code for _ in range(3)]
        refused = client.post(REBUILD, headers=keys.operator)  # one budget for both routes
        assert statuses == [200, 200, 200]
        assert error_of(refused)[:2] == (429, "RATE_LIMITED")
        assert int(refused.headers["Retry-After"]) >= 1
        # The role is checked first: a tenant admin always gets its 403, never a 429.
        refusals = [error_of(client.post(VERIFY, json={}, headers=keys.admin))[:2] for _ in range(5)]
        assert refusals == [(403, "FORBIDDEN")] * 5


def test_index_routes_have_a_default_limit() -> None:
    limit = Settings().rate_limits.limits["admin"]
    assert limit.burst == 10 and limit.rate_per_second * 60 == pytest.approx(10)
