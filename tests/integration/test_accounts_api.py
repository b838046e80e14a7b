"""Accounts over HTTP (/api/v1/auth): register, login, tokens and keys of an account, isolation,
refusals (bad input, wrong credentials, brute force, suspended accounts), concurrency."""

from __future__ import annotations

import logging
import statistics
import threading
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
from sqlalchemy import func, select, update

from facesocial.api.app import create_app
from facesocial.container import Container
from facesocial.settings import RateLimit, Settings
from facesocial.store.tables import Account, AiOperationLog, ApiKey, UsageLog
from tests.integration.conftest import make_settings
from tests.services import scratch_postgres

pytestmark = pytest.mark.integration
AUTH = "/api/v1/auth"
GROUPS = "/api/v1/face-recognition/groups"
PASSWORD = "a long enough passphrase"


def _client(settings: Settings) -> Iterator[TestClient]:
    container = Container(settings)
    container.prepare()
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        client.container = container  # type: ignore[attr-defined]
        yield client
    container.close()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """No JWT secret configured (a fresh embedded install); limits off (they have their own tests)."""
    settings = make_settings(tmp_path_factory.mktemp("accounts"), None)
    if request.param == "sqlite":
        yield from _client(settings)
        return
    with scratch_postgres() as url:
        settings.database_url = url
        yield from _client(settings)


def container_of(client: TestClient) -> Container:
    container: Container = client.container  # type: ignore[attr-defined]
    return container


def code_of(response: httpx.Response) -> str:
    body = response.json()
    assert body["success"] is False, body
    return str(body["error"]["code"])


def unique(prefix: str = "u") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def register(client: TestClient, username: str | None = None, **extra: Any) -> dict[str, Any]:
    username = username or unique()
    body = {"username": username, "email": f"{username}@example.org", "password": PASSWORD, **extra}
    response = client.post(f"{AUTH}/register", json=body)
    assert response.status_code == 201, response.text
    account: dict[str, Any] = response.json()["account"]
    return account


def login(client: TestClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    response = client.post(f"{AUTH}/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def set_status(client: TestClient, account_id: str, status: str) -> None:
    with container_of(client).database.session() as session:
        session.execute(
            update(Account).where(Account.account_id == uuid.UUID(account_id)).values(account_status=status)
        )


# --- the whole path ---------------------------------------------------------------------------------


def test_register_login_token_key_and_quota(api: TestClient) -> None:
    name = unique("Flow")
    account = register(api, name, first_name="Ada", last_name="Lovelace")
    assert account["username"] == name and account["email"] == f"{name.lower()}@example.org"
    assert account["account_status"] == "active" and account["last_login"] is None
    assert "password" not in str(account) and "argon2" not in str(account)

    answer = api.post(f"{AUTH}/login", json={"username": name.upper(), "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    assert body["account"]["account_id"] == account["account_id"] and body["account"]["last_login"]
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["user_id"] == claims["account_id"] == account["account_id"] and claims["role"] == "user"
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    # The email signs in too, in any case.
    login(api, f"{name.upper()}@EXAMPLE.ORG")

    # The token opens the protected routes; the account is its own tenant.
    created = api.post(GROUPS, headers=bearer, json={"group_name": "mine"})
    assert created.status_code == 201, created.text
    assert [g["group_name"] for g in api.get(GROUPS, headers=bearer).json()["groups"]] == ["mine"]
    assert api.get("/api/v1/jobs", headers=bearer).status_code == 200
    assert api.get(f"{AUTH}/me", headers=bearer).json()["account"]["username"] == name

    issued = api.post(f"{AUTH}/api-keys", headers=bearer, json={"name": "ci", "request_limit": 3})
    assert issued.status_code == 201, issued.text
    secret = issued.json()["api_key"]
    key = issued.json()["key"]
    assert secret.startswith("fs_") and key["request_limit"] == 3 and key["role"] == "user"
    by_key = {"X-API-Key": secret}
    # Same tenant as the token: the key sees the group.
    assert [g["group_name"] for g in api.get(GROUPS, headers=by_key).json()["groups"]] == ["mine"]
    assert api.get(f"{AUTH}/me", headers=by_key).json()["account"]["account_id"] == account["account_id"]
    assert api.get(GROUPS, headers=by_key).status_code == 200
    refused = api.get(GROUPS, headers=by_key)
    assert refused.status_code == 429 and code_of(refused) == "API_KEY_QUOTA_EXCEEDED"

    listed = api.get(f"{AUTH}/api-keys", headers=bearer).json()
    assert listed["total"] == 1 and listed["keys"][0]["requests_made"] == 3
    assert secret not in str(listed) and "key_hash" not in str(listed)

    with container_of(api).database.session() as session:
        row = session.scalar(select(Account).where(Account.account_id == uuid.UUID(account["account_id"])))
        assert row is not None and row.password_hash.startswith("$argon2id$")
        assert PASSWORD not in row.password_hash
        key_row = session.get(ApiKey, uuid.UUID(key["id"]))
        assert key_row is not None
        assert key_row.account_id == key_row.owner_id == uuid.UUID(account["account_id"])
        # Calls are attributed: the key's id in both logs, the account in the operations log.
        assert session.scalar(select(UsageLog.id).where(UsageLog.api_key_id == key_row.id)) is not None
        names = set(session.scalars(select(AiOperationLog.api_key_id)).all())
        assert f"account:{account['account_id']}" in names

    revoked = api.delete(f"{AUTH}/api-keys/{key['id']}", headers=bearer)
    assert revoked.status_code == 200 and revoked.json()["key"]["state"] == "revoked"
    assert code_of(api.get(GROUPS, headers=by_key)) == "INVALID_API_KEY"


def test_usernames_are_unique_regardless_of_case_and_emails_too(api: TestClient) -> None:
    name = unique("Dup")
    register(api, name)
    answers = [
        api.post(
            f"{AUTH}/register",
            json={"username": name.lower(), "email": f"{unique()}@x.org", "password": PASSWORD},
        ),
        api.post(
            f"{AUTH}/register",
            json={"username": unique(), "email": f"{name.upper()}@EXAMPLE.org", "password": PASSWORD},
        ),
    ]
    for answer in answers:
        assert answer.status_code == 409 and code_of(answer) == "ACCOUNT_EXISTS"
        assert name.lower() not in answer.text.lower()  # the other account's name and email stay untold
    # One answer whichever of the two is taken.
    assert answers[0].json() == answers[1].json()


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"email": "a@b.org", "password": PASSWORD}, 422, "VALIDATION_ERROR"),
        ({"username": "abc", "password": PASSWORD}, 422, "VALIDATION_ERROR"),
        ({"username": "abc", "email": "a@b.org"}, 422, "VALIDATION_ERROR"),
        ({"username": "ab", "email": "a@b.org", "password": PASSWORD}, 422, "VALIDATION_ERROR"),
        ({"username": "a" * 51, "email": "a@b.org", "password": PASSWORD}, 422, "VALIDATION_ERROR"),
        ({"username": "bad name", "email": "a@b.org", "password": PASSWORD}, 422, "VALIDATION_ERROR"),
        ({"username": "émile", "email": "a@b.org", "password": PASSWORD}, 422, "VALIDATION_ERROR"),
        ({"username": "abcd", "email": "not-an-email", "password": PASSWORD}, 422, "VALIDATION_ERROR"),
        (
            {"username": "abcd", "email": "x@" + "y" * 100 + ".org", "password": PASSWORD},
            422,
            "VALIDATION_ERROR",
        ),
        ({"username": 12345, "email": "a@b.org", "password": PASSWORD}, 422, "VALIDATION_ERROR"),
        ({"username": "abcd", "email": "a@b.org", "password": ["x"] * 12}, 422, "VALIDATION_ERROR"),
        ({"username": "abcd", "email": "a@b.org", "password": None}, 422, "VALIDATION_ERROR"),
        ({"username": "abcd", "email": "a@b.org", "password": "x" * 5000}, 422, "VALIDATION_ERROR"),
        (
            {"username": "abcd", "email": "a@b.org", "password": PASSWORD, "role": "admin"},
            422,
            "VALIDATION_ERROR",
        ),
        (
            {"username": "abcd", "email": "a@b.org", "password": PASSWORD, "first_name": "x" * 51},
            422,
            "VALIDATION_ERROR",
        ),
        ({"username": "abcd", "email": "a@b.org", "password": "short"}, 422, "WEAK_PASSWORD"),
        ({"username": "abcdefghijk", "email": "a@b.org", "password": "ABCDEFGHIJK"}, 422, "WEAK_PASSWORD"),
        (
            {"username": "abcd", "email": "longlocal1@b.org", "password": "longlocal1@b.org"},
            422,
            "WEAK_PASSWORD",
        ),
        ([PASSWORD], 422, "VALIDATION_ERROR"),
        ("just a string", 422, "VALIDATION_ERROR"),
    ],
)
def test_bad_registrations_are_refused_with_stable_codes(
    api: TestClient, body: Any, status: int, code: str
) -> None:
    answer = api.post(f"{AUTH}/register", json=body)
    assert answer.status_code == status and code_of(answer) == code, answer.text


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"{", "application/json"),
        (b"username=a&password=b", "application/x-www-form-urlencoded"),
        (b"\xff\xfe\x00", "application/json"),
        (b"", "application/json"),
        (b'{"username": "a", "username": "b", "password": "c"}', "application/json"),
    ],
)
def test_bodies_that_are_not_json_objects_are_422(api: TestClient, content: bytes, content_type: str) -> None:
    for route in ("register", "login"):
        answer = api.post(f"{AUTH}/{route}", content=content, headers={"Content-Type": content_type})
        assert answer.status_code == 422 and code_of(answer) == "VALIDATION_ERROR", answer.text


def test_login_needs_one_identifier(api: TestClient) -> None:
    for body in ({"password": PASSWORD}, {"username": "a", "email": "a@b.org", "password": PASSWORD}):
        answer = api.post(f"{AUTH}/login", json=body)
        assert answer.status_code == 422 and code_of(answer) == "VALIDATION_ERROR"


def test_wrong_password_and_unknown_user_get_the_same_answer_in_similar_time(api: TestClient) -> None:
    name = unique()
    register(api, name)
    wrong_times, unknown_times = [], []
    bodies = set()
    for _ in range(5):
        started = time.perf_counter()
        wrong = api.post(f"{AUTH}/login", json={"username": name, "password": PASSWORD + "!"})
        wrong_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        unknown = api.post(f"{AUTH}/login", json={"username": unique(), "password": PASSWORD})
        unknown_times.append(time.perf_counter() - started)
        for answer in (wrong, unknown):
            assert answer.status_code == 401 and code_of(answer) == "INVALID_CREDENTIALS"
            bodies.add(answer.text)
    assert len(bodies) == 1
    # An unknown name is verified against a dummy hash of the same cost: without it the answer
    # would come in a few milliseconds instead of one argon2 verification (~50-100 ms).
    ratio = statistics.median(unknown_times) / statistics.median(wrong_times)
    assert 0.5 < ratio < 2.0, (wrong_times, unknown_times)


def test_suspended_account_loses_its_token_and_keys_at_once(api: TestClient) -> None:
    name = unique()
    account = register(api, name)
    bearer = login(api, name)
    secret = api.post(f"{AUTH}/api-keys", headers=bearer, json={"name": "k"}).json()["api_key"]
    assert api.get(GROUPS, headers=bearer).status_code == 200
    set_status(api, account["account_id"], "suspended")
    for headers in (bearer, {"X-API-Key": secret}):
        refused = api.get(GROUPS, headers=headers)
        assert refused.status_code == 403 and code_of(refused) == "ACCOUNT_DISABLED"
    # Told only to who knows the password; a wrong one stays INVALID_CREDENTIALS.
    right = api.post(f"{AUTH}/login", json={"username": name, "password": PASSWORD})
    assert right.status_code == 403 and code_of(right) == "ACCOUNT_DISABLED"
    wrong = api.post(f"{AUTH}/login", json={"username": name, "password": PASSWORD + "x"})
    assert wrong.status_code == 401 and code_of(wrong) == "INVALID_CREDENTIALS"
    # A suspended account's refused calls do not use up its key's quota.
    with container_of(api).database.session() as session:
        assert (
            session.scalar(
                select(ApiKey.requests_made).where(ApiKey.account_id == uuid.UUID(account["account_id"]))
            )
            == 0
        )
    set_status(api, account["account_id"], "deleted")
    gone = api.post(f"{AUTH}/login", json={"username": name, "password": PASSWORD})
    assert gone.status_code == 401 and code_of(gone) == "INVALID_CREDENTIALS"
    set_status(api, account["account_id"], "active")
    assert api.get(GROUPS, headers=bearer).status_code == 200
    assert api.get(GROUPS, headers={"X-API-Key": secret}).status_code == 200


def test_accounts_see_only_their_own_keys_and_data(api: TestClient) -> None:
    a, b = unique("a"), unique("b")
    register(api, a)
    register(api, b)
    bearer_a, bearer_b = login(api, a), login(api, b)
    key_b = api.post(f"{AUTH}/api-keys", headers=bearer_b, json={"name": "b-key"}).json()["key"]
    api.post(f"{AUTH}/api-keys", headers=bearer_a, json={"name": "a-key"})
    assert [k["name"] for k in api.get(f"{AUTH}/api-keys", headers=bearer_a).json()["keys"]] == ["a-key"]
    stolen = api.delete(f"{AUTH}/api-keys/{key_b['id']}", headers=bearer_a)
    assert stolen.status_code == 404 and code_of(stolen) == "API_KEY_NOT_FOUND"
    unknown = api.delete(f"{AUTH}/api-keys/{uuid.uuid4()}", headers=bearer_a)
    assert unknown.json() == stolen.json()
    assert api.get(f"{AUTH}/api-keys", headers=bearer_b).json()["keys"][0]["state"] == "active"
    assert api.post(GROUPS, headers=bearer_a, json={"group_name": "a-only"}).status_code == 201
    assert api.get(GROUPS, headers=bearer_b).json()["groups"] == []
    assert code_of(api.delete(f"{AUTH}/api-keys/not-a-uuid", headers=bearer_a)) == "VALIDATION_ERROR"


def test_key_management_rules(api: TestClient) -> None:
    name = unique()
    register(api, name)
    bearer = login(api, name)
    too_many = api.post(f"{AUTH}/api-keys", headers=bearer, json={"name": "k", "request_limit": 1001})
    assert too_many.status_code == 422 and code_of(too_many) == "VALIDATION_ERROR"
    for body in (
        {"name": ""},
        {"name": "k", "request_limit": 0},
        {"name": "k", "request_limit": "10"},
        {"name": "k", "expires_at": "2020-01-01T00:00:00Z"},
        {"name": "k", "expires_at": "2099-01-01T00:00:00"},
        {"name": "k", "role": "operator"},
        {"name": "x" * 101},
    ):
        answer = api.post(f"{AUTH}/api-keys", headers=bearer, json=body)
        assert answer.status_code == 422 and code_of(answer) == "VALIDATION_ERROR", (body, answer.text)
    default = api.post(
        f"{AUTH}/api-keys", headers=bearer, json={"name": "d", "expires_at": "2099-01-01T00:00:00Z"}
    )
    assert default.status_code == 201 and default.json()["key"]["request_limit"] == 1000
    # A key of the account reads but cannot mint keys (fresh quota) nor revoke them.
    by_key = {"X-API-Key": default.json()["api_key"]}
    assert api.get(f"{AUTH}/api-keys", headers=by_key).status_code == 200
    assert code_of(api.post(f"{AUTH}/api-keys", headers=by_key, json={"name": "more"})) == "FORBIDDEN"
    assert (
        code_of(api.delete(f"{AUTH}/api-keys/{default.json()['key']['id']}", headers=by_key)) == "FORBIDDEN"
    )
    # A key made on the server belongs to no account.
    server_key = {"X-API-Key": container_of(api).keys.create("ops").secret}
    assert code_of(api.get(f"{AUTH}/me", headers=server_key)) == "FORBIDDEN"
    # Without credentials the account routes say what is missing.
    assert code_of(api.get(f"{AUTH}/me")) == "MISSING_API_KEY"


def test_tokens_not_issued_here_are_refused(api: TestClient) -> None:
    name = unique()
    account = register(api, name)
    claims = {"user_id": account["account_id"], "account_id": account["account_id"], "role": "user"}
    forged = jwt.encode({**claims, "exp": int(time.time()) + 600}, "y" * 64, algorithm="HS256")
    answer = api.get(GROUPS, headers={"Authorization": f"Bearer {forged}"})
    assert answer.status_code == 401 and code_of(answer) == "INVALID_TOKEN"
    # With the installation's own secret, only login tokens exist: one without account_id is refused.
    secret = (container_of(api).settings.data_dir / "secrets" / "jwt.key").read_text().strip()
    plain = jwt.encode({"user_id": str(uuid.uuid4()), "role": "admin", "exp": int(time.time()) + 600}, secret)
    assert code_of(api.get(GROUPS, headers={"Authorization": f"Bearer {plain}"})) == "INVALID_TOKEN"
    mismatched = jwt.encode({**claims, "user_id": str(uuid.uuid4()), "exp": int(time.time()) + 600}, secret)
    assert code_of(api.get(GROUPS, headers={"Authorization": f"Bearer {mismatched}"})) == "INVALID_TOKEN"
    orphan = jwt.encode(
        {"user_id": str(uuid.uuid4()), "account_id": None, "role": "user", "exp": int(time.time()) + 600},
        secret,
    )
    assert code_of(api.get(GROUPS, headers={"Authorization": f"Bearer {orphan}"})) == "INVALID_TOKEN"
    mode = (container_of(api).settings.data_dir / "secrets" / "jwt.key").stat().st_mode & 0o777
    assert mode == 0o600


def _race(api: TestClient, usernames: list[str]) -> list[int]:
    """Register these names from one real thread each, released at the same moment."""
    barrier = threading.Barrier(len(usernames))
    answers: list[int] = []

    def attempt(username: str) -> None:
        body = {"username": username, "email": f"{unique()}@x.org", "password": PASSWORD}
        barrier.wait()
        answers.append(api.post(f"{AUTH}/register", json=body).status_code)

    threads = [threading.Thread(target=attempt, args=(username,)) for username in usernames]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_concurrent_registrations_of_one_name_make_one_account(api: TestClient) -> None:
    for _ in range(4):
        name = unique("Race")
        answers = _race(api, [name, name.lower()])
        assert sorted(answers) == [201, 409], answers
        with container_of(api).database.session() as session:
            count = session.scalar(
                select(func.count()).select_from(Account).where(Account.username_key == name.lower())
            )
        assert count == 1


def test_passwords_never_appear_in_answers_or_logs(api: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    secret_password = f"pw-{uuid.uuid4().hex}"
    name = unique()
    caplog.set_level(logging.DEBUG)
    texts = [
        api.post(
            f"{AUTH}/register", json={"username": name, "email": f"{name}@x.org", "password": secret_password}
        ).text,
        api.post(
            f"{AUTH}/register", json={"username": name, "email": f"{name}@x.org", "password": secret_password}
        ).text,
        api.post(f"{AUTH}/login", json={"username": name, "password": secret_password}).text,
        api.post(f"{AUTH}/login", json={"username": name, "password": secret_password + "x"}).text,
        api.post(f"{AUTH}/login", json={"username": name, "password": [secret_password]}).text,
        api.post(
            f"{AUTH}/register", json={"username": "x y", "email": "e@x.org", "password": secret_password}
        ).text,
    ]
    assert all(secret_password not in t for t in texts)
    assert secret_password not in caplog.text
    with container_of(api).database.session() as session:
        messages = session.scalars(select(AiOperationLog.error_message)).all()
    assert all(secret_password not in (m or "") for m in messages)


# --- limits (their own app: rate limits on) --------------------------------------------------------------


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[TestClient]:
    settings = make_settings(tmp_path, None)
    settings.rate_limits.enabled = True
    settings.rate_limits.limits["auth_failures"] = RateLimit(rate_per_second=1 / 600, burst=3)
    settings.rate_limits.limits["auth_register"] = RateLimit(rate_per_second=1 / 600, burst=3)
    yield from _client(settings)


def test_brute_force_logins_are_cut_off_per_address(limited: TestClient) -> None:
    name = unique()
    register(limited, name)
    codes = [
        code_of(limited.post(f"{AUTH}/login", json={"username": name, "password": f"guess-{i:06d}"}))
        for i in range(5)
    ]
    assert codes[:3] == ["INVALID_CREDENTIALS"] * 3 and codes[3:] == ["RATE_LIMITED"] * 2, codes
    # Blocked: even the right password, and every other route, until the block ends.
    blocked = limited.post(f"{AUTH}/login", json={"username": name, "password": PASSWORD})
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) >= 1
    assert code_of(limited.get(GROUPS, headers={"X-API-Key": "fs_whatever"})) == "RATE_LIMITED"


def test_registrations_are_limited_per_address(limited: TestClient) -> None:
    for _ in range(3):
        register(limited)
    answer = limited.post(
        f"{AUTH}/register", json={"username": unique(), "email": f"{unique()}@x.org", "password": PASSWORD}
    )
    assert answer.status_code == 429 and code_of(answer) == "RATE_LIMITED"


# --- with a configured shared JWT secret ------------------------------------------------------------------

SHARED = "shared-secret-of-at-least-32-characters"


@pytest.fixture
def shared(tmp_path: Path) -> Iterator[TestClient]:
    settings = make_settings(tmp_path, None)
    settings.auth.jwt_secret = SecretStr(SHARED)
    yield from _client(settings)


def test_shared_secret_tokens_keep_working_beside_login_tokens(shared: TestClient) -> None:
    plain = jwt.encode({"user_id": str(uuid.uuid4()), "role": "user", "exp": int(time.time()) + 600}, SHARED)
    assert shared.get(GROUPS, headers={"Authorization": f"Bearer {plain}"}).status_code == 200
    assert code_of(shared.get(GROUPS)) == "MISSING_TOKEN"
    name = unique()
    account = register(shared, name)
    bearer = login(shared, name)
    token = bearer["Authorization"].split()[1]
    jwt.decode(token, SHARED, algorithms=["HS256"])  # signed with the configured secret
    assert shared.get(GROUPS, headers=bearer).status_code == 200
    assert not (shared.container.settings.data_dir / "secrets" / "jwt.key").exists()  # type: ignore[attr-defined]
    set_status(shared, account["account_id"], "suspended")
    assert code_of(shared.get(GROUPS, headers=bearer)) == "ACCOUNT_DISABLED"


def test_closed_registration_refuses_new_accounts_and_keeps_old_ones(api: TestClient) -> None:
    """``auth.open_registration = false``: register answers 403, existing accounts still log in."""
    existing = register(api)
    settings = container_of(api).settings
    settings.auth.open_registration = False
    try:
        name = unique()
        body = {"username": name, "email": f"{name}@example.org", "password": PASSWORD}
        refused = api.post(f"{AUTH}/register", json=body)
        assert (refused.status_code, code_of(refused)) == (403, "REGISTRATION_CLOSED")
        assert api.post(f"{AUTH}/login", json={"username": name, "password": PASSWORD}).status_code == 401
        assert login(api, existing["username"])["Authorization"].startswith("Bearer ")
    finally:
        settings.auth.open_registration = True
