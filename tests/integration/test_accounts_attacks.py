"""Attacks on accounts over real HTTP (a `facesocial serve` child process, real threads).

Each test reproduces a defect found by the attack session of commit 4a06edd (the PostgreSQL
ones drive the app in process, on a scratch database).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from facesocial.api.app import create_app
from facesocial.container import Container
from tests.integration.conftest import RunningServer, make_settings, running_server
from tests.services import scratch_postgres

pytestmark = pytest.mark.integration
AUTH = "/api/v1/auth"
PASSWORD = "a long enough passphrase"
MAX_KEYS = 20  # auth.max_keys_per_account's default (docs/api.md, Accounts)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[RunningServer]:
    with running_server(
        tmp_path_factory.mktemp("attack-accounts"), model_dir, FACESOCIAL_RATE_LIMITS__ENABLED="false"
    ) as running:
        yield running


def _token(base: str) -> dict[str, str]:
    name = f"k{uuid.uuid4().hex[:10]}"
    with httpx.Client(base_url=base, timeout=60) as client:
        body = {"username": name, "email": f"{name}@example.org", "password": PASSWORD}
        assert client.post(f"{AUTH}/register", json=body).status_code == 201
        answer = client.post(f"{AUTH}/login", json={"username": name, "password": PASSWORD})
        assert answer.status_code == 200, answer.text
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def test_concurrent_key_creation_cannot_exceed_max_keys_per_account(server: RunningServer) -> None:
    """30 creations released at once: at most 20 keys may be active (the rest 409 TOO_MANY_API_KEYS).

    Found: the count is read in one transaction and the key inserted in another
    (services/accounts.py create_key), so concurrent requests all pass the check: 29 of 30 made
    a key, 29 active keys for an account limited to 20.
    """
    headers = _token(server.base)
    attempts = 30
    barrier = threading.Barrier(attempts)
    answers: list[int] = []

    def create(index: int) -> None:
        with httpx.Client(base_url=server.base, timeout=120) as client:
            barrier.wait()
            answers.append(
                client.post(f"{AUTH}/api-keys", json={"name": f"k{index}"}, headers=headers).status_code
            )

    threads = [threading.Thread(target=create, args=(i,)) for i in range(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counts = Counter(answers)
    with httpx.Client(base_url=server.base, timeout=60) as client:
        listed = client.get(f"{AUTH}/api-keys", headers=headers).json()
    active = sum(1 for key in listed["keys"] if key["state"] == "active")
    assert counts[201] <= MAX_KEYS and counts[409] == attempts - counts[201], counts
    assert active <= MAX_KEYS, f"{active} active keys, the limit is {MAX_KEYS}"


# --- control characters ----------------------------------------------------------------------------

# docs/api.md: "blank, control or invisible characters in free text" are a VALIDATION_ERROR (422).
_HOSTILE = {
    "nul": "\x00",
    "right-to-left override": "\u202e",
    "zero-width space": "\u200b",
    "escape": "\x1b",  # Cc
    "word joiner": "\u2060",  # Cf, outside api/forms.py's list: refused by the service
    "soft hyphen": "\u00ad",  # Cf
}


def _register_body(**fields: str) -> dict[str, str]:
    name = f"c{uuid.uuid4().hex[:10]}"
    return {"username": name, "email": f"{name}@example.org", "password": PASSWORD, **fields}


@pytest.mark.parametrize("char", list(_HOSTILE.values()), ids=list(_HOSTILE))
@pytest.mark.parametrize("field", ["email", "first_name", "last_name"])
def test_control_and_invisible_characters_in_registration_are_refused(
    server: RunningServer, field: str, char: str
) -> None:
    """Found: SQLite stores them (201 with e.g. ``"email": "a\\u0000b@..."``, a first name
    with a right-to-left override); PostgreSQL answers 500 for the NUL (see below)."""
    body = _register_body()
    body[field] = f"a{char}b@example.org" if field == "email" else f"Al{char}ice"
    with httpx.Client(base_url=server.base, timeout=60) as client:
        answer = client.post(f"{AUTH}/register", json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == "VALIDATION_ERROR"


@pytest.mark.parametrize("char", list(_HOSTILE.values()), ids=list(_HOSTILE))
def test_control_and_invisible_characters_in_key_names_are_refused(server: RunningServer, char: str) -> None:
    headers = _token(server.base)
    with httpx.Client(base_url=server.base, timeout=60) as client:
        answer = client.post(f"{AUTH}/api-keys", json={"name": f"k{char}1"}, headers=headers)
    assert answer.status_code == 422, answer.text


@pytest.fixture(scope="module")
def postgres_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with scratch_postgres() as url:
        settings = make_settings(tmp_path_factory.mktemp("attack-pg"), None)
        settings.database_url = url
        container = Container(settings)
        container.prepare()
        with TestClient(create_app(container), raise_server_exceptions=False) as client:
            yield client
        container.close()


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("login", {"username": "al\x00ice", "password": PASSWORD}),
        ("login", {"username": "al\x00ice@example.org", "password": PASSWORD}),
        ("login", {"email": "al\x00ice@example.org", "password": PASSWORD}),
        ("register", _register_body(email="a\x00b@example.org")),
        ("register", _register_body(first_name="Al\x00")),
        ("register", _register_body(last_name="Al\x00")),
    ],
    ids=[
        "login-username",
        "login-username-email",
        "login-email",
        "register-email",
        "first-name",
        "last-name",
    ],
)
def test_nul_characters_are_not_a_500_on_postgresql(
    postgres_api: TestClient, path: str, body: dict[str, str]
) -> None:
    """Found: psycopg's DataError "PostgreSQL text fields cannot contain NUL (0x00) bytes"
    escapes as 500 INTERNAL_ERROR (unauthenticated routes: anyone can raise it)."""
    answer = postgres_api.post(f"{AUTH}/{path}", json=body)
    assert answer.status_code in (401, 422), answer.text


def test_nul_in_a_key_name_is_not_a_500_on_postgresql(postgres_api: TestClient) -> None:
    body = _register_body()
    assert postgres_api.post(f"{AUTH}/register", json=body).status_code == 201
    token = postgres_api.post(f"{AUTH}/login", json={"username": body["username"], "password": PASSWORD})
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    answer = postgres_api.post(f"{AUTH}/api-keys", json={"name": "k\x00"}, headers=headers)
    assert answer.status_code == 422, answer.text


@pytest.mark.parametrize("char", list(_HOSTILE.values()), ids=list(_HOSTILE))
def test_hidden_characters_in_a_login_name_are_wrong_credentials(server: RunningServer, char: str) -> None:
    """The same 401 body as an unknown name, never a 422 that tells the name apart."""
    with httpx.Client(base_url=server.base, timeout=60) as client:
        hostile = client.post(f"{AUTH}/login", json={"username": f"al{char}ice", "password": PASSWORD})
        unknown = client.post(
            f"{AUTH}/login", json={"username": f"n{uuid.uuid4().hex[:10]}", "password": PASSWORD}
        )
    assert hostile.status_code == unknown.status_code == 401, hostile.text
    assert hostile.json() == unknown.json()


def test_names_keep_joiners_and_blank_names_stay_absent(server: RunningServer) -> None:
    """What the character rule must not refuse: a Persian name spelt with the zero-width
    non-joiner, and an empty name field (not given, as before)."""
    body = _register_body(first_name="\u0645\u06cc\u200c\u0631\u0648\u062f", last_name="  ")
    with httpx.Client(base_url=server.base, timeout=60) as client:
        answer = client.post(f"{AUTH}/register", json=body)
    assert answer.status_code == 201, answer.text
    account = answer.json()["account"]
    assert (account["first_name"], account["last_name"]) == (body["first_name"], None)


def test_a_lone_surrogate_password_is_refused_not_a_500(server: RunningServer) -> None:
    """JSON may spell a lone surrogate (``\\ud800``); argon2 cannot encode it as UTF-8."""
    password = "long enough \ud800 pass"
    body = _register_body(password=password)
    login = {"username": body["username"], "password": password}
    headers = {"Content-Type": "application/json"}
    with httpx.Client(base_url=server.base, timeout=60) as client:
        # json.dumps escapes the surrogate (ensure_ascii): the bytes sent are valid UTF-8.
        registered = client.post(f"{AUTH}/register", content=json.dumps(body), headers=headers)
        signed_in = client.post(f"{AUTH}/login", content=json.dumps(login), headers=headers)
    # pydantic refuses it as a string (string_unicode) before any service sees it.
    for answer in (registered, signed_in):
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["code"] == "VALIDATION_ERROR"


def test_concurrent_key_creation_cannot_exceed_max_keys_per_account_on_postgresql(
    postgres_api: TestClient,
) -> None:
    """The same race on PostgreSQL (the account's row is locked FOR UPDATE), with real threads."""
    body = _register_body()
    assert postgres_api.post(f"{AUTH}/register", json=body).status_code == 201
    token = postgres_api.post(f"{AUTH}/login", json={"username": body["username"], "password": PASSWORD})
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    attempts = 30
    barrier = threading.Barrier(attempts)
    answers: list[int] = []

    def create(index: int) -> None:
        barrier.wait()
        answers.append(
            postgres_api.post(f"{AUTH}/api-keys", json={"name": f"k{index}"}, headers=headers).status_code
        )

    threads = [threading.Thread(target=create, args=(i,)) for i in range(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counts = Counter(answers)
    listed = postgres_api.get(f"{AUTH}/api-keys", headers=headers).json()
    active = sum(1 for key in listed["keys"] if key["state"] == "active")
    assert counts == Counter({201: MAX_KEYS, 409: attempts - MAX_KEYS}), counts
    assert active == MAX_KEYS


def test_a_value_postgresql_refuses_is_a_422_wherever_it_slips_through() -> None:
    """The general guard (api/errors.py refused_value): a real DataError, NUL in text."""
    import psycopg
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import DataError

    from facesocial.api.errors import refused_value, store_unavailable

    with scratch_postgres() as url:
        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        try:
            with engine.connect() as connection, pytest.raises(DataError) as raised:
                connection.execute(text("SELECT CAST(:value AS text)"), {"value": "a\x00b"})
        finally:
            engine.dispose()
    assert isinstance(raised.value.orig, psycopg.DataError)
    assert store_unavailable(raised.value) is None
    for exc in (raised.value, raised.value.orig):
        translated = refused_value(exc)
        assert translated is not None and (translated.code, translated.status) == ("VALIDATION_ERROR", 422)
    assert refused_value(ValueError("not a store error")) is None
