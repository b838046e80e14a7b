"""JWT errors, tenant isolation, rate limits (one process and two sharing Redis), metrics, readiness."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from facesocial.api.app import create_app
from facesocial.container import Container
from facesocial.settings import RateLimit
from tests.integration.conftest import make_settings
from tests.integration.outages import MilvusProcess
from tests.services import free_port, scratch_postgres, scratch_redis, wait_healthy

pytestmark = pytest.mark.integration
SECRET = "test-secret-of-at-least-32-characters!"
BASE = "/api/v1/face-recognition"


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory, optional_model_dir: Path | None) -> Iterator[Any]:
    settings = make_settings(tmp_path_factory.mktemp("secured"), optional_model_dir)
    settings.auth.jwt_secret = SecretStr(SECRET)
    container = Container(settings)
    container.prepare()
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        client.container = container  # type: ignore[attr-defined]
        yield client


def token(claims: dict[str, Any], secret: str = SECRET) -> str:
    return jwt.encode({"exp": int(time.time()) + 600, **claims}, secret, algorithm="HS256")


def code_of(response: httpx.Response) -> str:
    body = response.json()
    assert body["success"] is False
    return str(body["error"]["code"])


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "MISSING_TOKEN"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "INVALID_TOKEN_FORMAT"),
        ({"Authorization": "Bearer"}, "INVALID_TOKEN_FORMAT"),
        ({"Authorization": "Bearer not.a.jwt"}, "INVALID_TOKEN"),
        (
            {"Authorization": f"Bearer {token({'user_id': str(uuid.uuid4()), 'role': 'user'}, 'x' * 40)}"},
            "INVALID_TOKEN",
        ),
        (
            {"Authorization": f"Bearer {token({'user_id': str(uuid.uuid4()), 'role': 'user', 'exp': 1})}"},
            "INVALID_TOKEN",
        ),
        (
            {"Authorization": f"Bearer {token({'user_id': str(uuid.uuid4()), 'role': 'root'})}"},
            "INVALID_TOKEN",
        ),
        ({"Authorization": f"Bearer {token({'role': 'user'})}"}, "INVALID_TOKEN"),
        # The operator role (index upkeep over every tenant) comes only from an API key.
        (
            {"Authorization": f"Bearer {token({'user_id': str(uuid.uuid4()), 'role': 'operator'})}"},
            "INVALID_TOKEN",
        ),
    ],
    ids=[
        "missing",
        "basic",
        "empty-bearer",
        "garbage",
        "wrong-secret",
        "expired",
        "bad-role",
        "no-user",
        "operator-role",
    ],
)
def test_jwt_error_codes(secured: TestClient, headers: dict[str, str], code: str) -> None:
    response = secured.get(f"{BASE}/groups", headers=headers)
    assert response.status_code == 401
    assert code_of(response) == code


def test_valid_token_and_api_key_both_work(secured: TestClient) -> None:
    bearer = {"Authorization": f"Bearer {token({'user_id': str(uuid.uuid4()), 'role': 'user'})}"}
    assert secured.get(f"{BASE}/groups", headers=bearer).status_code == 200
    key = secured.container.keys.create("k").secret  # type: ignore[attr-defined]
    assert secured.get(f"{BASE}/groups", headers={"X-API-Key": key}).status_code == 200


def test_tenants_see_only_their_own_data(secured: TestClient, astronaut_jpeg: bytes) -> None:
    tenant_a = {"Authorization": f"Bearer {token({'user_id': str(uuid.uuid4()), 'role': 'user'})}"}
    tenant_b = {"Authorization": f"Bearer {token({'user_id': str(uuid.uuid4()), 'role': 'user'})}"}
    admin = {"Authorization": f"Bearer {token({'user_id': str(uuid.uuid4()), 'role': 'admin'})}"}
    person = uuid.uuid4()
    files = {"image": ("a.jpg", astronaut_jpeg, "image/jpeg")}
    enrolled = secured.post(
        f"{BASE}/register", headers=tenant_a, files=files, data={"user_id": str(person), "consent": "true"}
    )
    assert enrolled.status_code == 200, enrolled.text
    group = secured.post(f"{BASE}/groups", headers=tenant_a, json={"group_name": "a-team"}).json()["group"]

    # Tenant B: A's user, faces and groups do not exist for it.
    assert code_of(secured.get(f"{BASE}/users/{person}", headers=tenant_b)) == "USER_NOT_FOUND"
    assert (
        code_of(secured.post(f"{BASE}/verify", headers=tenant_b, files=files, data={"user_id": str(person)}))
        == "USER_NOT_FOUND"
    )
    seen_by_b = secured.post(f"{BASE}/identify", headers=tenant_b, files=files).json()
    assert seen_by_b["unknown"] is True and seen_by_b["gallery_size"] == 0
    assert group["group_id"] not in {
        g["group_id"] for g in secured.get(f"{BASE}/groups", headers=tenant_b).json()["groups"]
    }
    assert code_of(secured.get(f"{BASE}/groups/{group['group_id']}", headers=tenant_b)) == "GROUP_NOT_FOUND"
    assert code_of(secured.delete(f"{BASE}/users/{person}", headers=tenant_b)) == "USER_NOT_FOUND"
    # An admin of another tenant is another tenant too: data-plane calls never cross tenants.
    assert code_of(secured.get(f"{BASE}/users/{person}", headers=admin)) == "USER_NOT_FOUND"

    # User ids are the tenant's own names: B may use the same id without conflict or a hint of A.
    own = secured.post(
        f"{BASE}/register", headers=tenant_b, files=files, data={"user_id": str(person), "consent": "true"}
    )
    assert own.status_code == 200, own.text
    face_a, face_b = enrolled.json()["face_id"], own.json()["face_id"]
    assert face_a != face_b
    for headers, face in ((tenant_a, face_a), (tenant_b, face_b)):
        found = secured.post(f"{BASE}/identify", headers=headers, files=files, data={"top_k": "10"}).json()
        assert [(c["user_id"], c["face_id"]) for c in found["candidates"]] == [(str(person), face)]
        profile = secured.get(f"{BASE}/users/{person}", headers=headers).json()
        assert [f["face_id"] for f in profile["faces"]] == [face]

    # Erasing A's user leaves B's namesake whole.
    assert secured.delete(f"{BASE}/users/{person}", headers=tenant_a).json()["erased"] is True
    assert code_of(secured.get(f"{BASE}/users/{person}", headers=tenant_a)) == "USER_NOT_FOUND"
    verified = secured.post(f"{BASE}/verify", headers=tenant_b, files=files, data={"user_id": str(person)})
    assert verified.json()["match"] is True


def test_tenant_admin_keys_never_see_another_tenants_faces(
    secured: TestClient, astronaut_jpeg: bytes
) -> None:
    """`keys create` makes a tenant admin: nothing it can call names another tenant's faces."""
    container = secured.container  # type: ignore[attr-defined]
    first = {"X-API-Key": container.keys.create("tenant a").secret}  # admin of its own tenant
    second = {"X-API-Key": container.keys.create("tenant b").secret}
    operator = {"X-API-Key": container.keys.create("operator", role="operator").secret}
    person = uuid.uuid4()
    files = {"image": ("a.jpg", astronaut_jpeg, "image/jpeg")}
    enrolled = secured.post(
        f"{BASE}/register", headers=first, files=files, data={"user_id": str(person), "consent": "true"}
    )
    assert enrolled.status_code == 200, enrolled.text
    face = enrolled.json()["face_id"]
    group = secured.post(f"{BASE}/groups", headers=first, json={"group_name": "a"}).json()["group"]
    assert secured.post(
        f"{BASE}/groups/{group['group_id']}/members", headers=first, json={"user_ids": [str(person)]}
    ).is_success
    # A discrepancy that names the face: its vector lost, as after a crash.
    collection = container.recognition.collection
    container.index.delete(collection, [face])

    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/api/v1/admin/index/verify", {"json": {"show": 100_000}}),
        ("POST", "/api/v1/admin/index/verify", {"json": {"repair": True, "grace_seconds": 0}}),
        ("POST", "/api/v1/admin/index/rebuild", {}),
        ("POST", f"{BASE}/identify", {"files": files, "data": {"top_k": "100"}}),
        ("GET", f"{BASE}/users/{person}", {}),
        ("GET", f"{BASE}/groups", {}),
        ("GET", f"{BASE}/groups/{group['group_id']}", {}),
    ]
    answers = [secured.request(method, path, headers=second, **kw) for method, path, kw in calls]
    for (_method, path, _kw), answer in zip(calls, answers, strict=True):
        assert face not in answer.text, path
        # The user id only where B sent it itself (the 404 names the id it asked for).
        assert str(person) not in answer.text or str(person) in path, path
    assert [a.status_code for a in answers] == [403, 403, 403, 200, 404, 200, 404]
    assert "--role operator" in answers[0].json()["error"]["message"]
    assert answers[3].json()["gallery_size"] == 0
    assert face not in set(container.index.ids(collection))  # B's refused repair changed nothing

    # The operator's index upkeep spans every tenant: it finds and restores the lost vector ...
    report = secured.post("/api/v1/admin/index/verify", headers=operator, json={}).json()["report"]
    mine = next(c for c in report["collections"] if c["collection"] == collection)
    assert face in mine["missing_vector_ids"]
    repaired = secured.post("/api/v1/admin/index/verify", headers=operator, json={"repair": True})
    assert repaired.json()["report"]["consistent"] is True
    assert face in set(container.index.ids(collection))
    # ... while its own data-plane calls see only its own tenant, like any other key.
    assert code_of(secured.get(f"{BASE}/users/{person}", headers=operator)) == "USER_NOT_FOUND"
    assert secured.post(f"{BASE}/identify", headers=operator, files=files).json()["gallery_size"] == 0
    found = secured.post(f"{BASE}/identify", headers=first, files=files).json()["candidates"]
    assert [c["face_id"] for c in found] == [face]


def test_rate_limit_answers_429_with_retry_after(tmp_path: Path, optional_model_dir: Path | None) -> None:
    settings = make_settings(tmp_path, optional_model_dir)
    settings.rate_limits.enabled = True
    settings.rate_limits.limits["face_recognition"] = RateLimit(rate_per_second=0.2, burst=3)
    container = Container(settings)
    container.prepare()
    key = container.keys.create("limited").secret
    other = container.keys.create("other").secret
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        statuses = [client.get(f"{BASE}/groups", headers={"X-API-Key": key}).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        limited = client.get(f"{BASE}/groups", headers={"X-API-Key": key})
        assert code_of(limited) == "RATE_LIMITED"
        assert 1 <= int(limited.headers["Retry-After"]) <= 5
        # Limits are per caller: another key is unaffected.
        assert client.get(f"{BASE}/groups", headers={"X-API-Key": other}).status_code == 200


def test_rate_limit_holds_across_two_processes_sharing_redis(
    tmp_path: Path, optional_model_dir: Path | None
) -> None:
    # Two processes share state only on the scaled profile: the embedded one's SQLite file and
    # local index belong to one process (a second is refused: INDEX_IN_USE).
    milvus = MilvusProcess(tmp_path / "milvus")
    with scratch_postgres() as database_url, scratch_redis() as redis_url:
        env = {
            **os.environ,
            "FACESOCIAL_DATA_DIR": str(tmp_path / "data"),
            "FACESOCIAL_DATABASE_URL": database_url,
            "FACESOCIAL_REDIS_URL": redis_url,
            "FACESOCIAL_MILVUS_URI": milvus.uri,
            "FACESOCIAL_MODELS__MODEL_DIR": str(optional_model_dir or tmp_path / "no-models"),
            "FACESOCIAL_MODELS__AUTO_PULL": "false",
            "FACESOCIAL_RATE_LIMITS__LIMITS": '{"face_recognition": {"rate_per_second": 0.1, "burst": 4}}',
        }
        milvus.start()
        settings = make_settings(tmp_path / "data", optional_model_dir)
        settings.database_url = database_url
        container = Container(settings)
        container.prepare()
        key = container.keys.create("shared").secret
        container.close()
        ports = [free_port(), free_port()]
        servers = [
            subprocess.Popen(
                [sys.executable, "-m", "facesocial", "serve", "--port", str(port)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for port in ports
        ]
        try:
            for port in ports:
                wait_healthy(port)
            statuses = [
                httpx.get(
                    f"http://127.0.0.1:{ports[i % 2]}{BASE}/groups", headers={"X-API-Key": key}, timeout=30
                ).status_code
                for i in range(6)
            ]
            # A burst of 4 in all, whichever process serves the request.
            assert statuses == [200, 200, 200, 200, 429, 429]
        finally:
            for server in servers:
                server.terminate()
                server.wait(timeout=30)
            milvus.kill()


def test_metrics_and_readiness(secured: TestClient, astronaut_jpeg: bytes) -> None:
    key = secured.container.keys.create("m").secret  # type: ignore[attr-defined]
    detected = secured.post(
        "/api/v1/face-detection/detect",
        headers={"X-API-Key": key},
        files={"image": ("a.jpg", astronaut_jpeg, "image/jpeg")},
    )
    assert detected.status_code == 200
    text = secured.get("/metrics").text
    assert 'http_requests_total{endpoint="/api/v1/face-detection/detect",method="POST",status="200"}' in text
    assert "http_request_duration_seconds_bucket" in text
    detector = secured.container.pipeline.detector.model.name  # type: ignore[attr-defined]
    assert f'ai_model_inference_duration_seconds_count{{model_name="{detector}"}}' in text
    ready = secured.get("/health/ready")
    assert ready.status_code == 200 and ready.json()["checks"]["database"]["status"] == "ok"


def test_readiness_reports_a_dead_cache(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, None)
    settings.redis_url = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    container = Container(settings)
    container.prepare()
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        response = client.get("/health/ready")
    # Redis is optional: local memory serves meanwhile, so the server stays ready but degraded.
    assert response.status_code == 200 and response.json()["status"] == "degraded"
    cache = response.json()["checks"]["cache"]
    assert cache["status"] == "degraded" and cache["reason"].startswith("ConnectionError")
