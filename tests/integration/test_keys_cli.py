"""`facesocial keys create | list | revoke | expire`, and what a running server makes of them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from facesocial.api.app import create_app
from facesocial.cli import app
from facesocial.container import Container
from facesocial.settings import Settings
from facesocial.store.tables import ApiKey
from tests.integration.conftest import make_settings

pytestmark = pytest.mark.integration
runner = CliRunner()
GROUPS = "/api/v1/face-recognition/groups"


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # No model pack needed: these commands and routes never run a model.
    monkeypatch.setenv("FACESOCIAL_MODELS__MODEL_DIR", str(tmp_path / "no-models"))
    return tmp_path / "data"


def keys(data_dir: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["keys", *args, "--data-dir", str(data_dir)])
    return result.exit_code, result.output


def create(data_dir: Path, name: str, *args: str) -> str:
    code, output = keys(data_dir, "create", "--name", name, *args)
    assert code == 0, output
    return output.strip()


def listed(data_dir: Path) -> dict[str, dict[str, object]]:
    code, output = keys(data_dir, "list", "--json")
    assert code == 0, output
    return {str(row["name"]): row for row in json.loads(output)}


def test_create_and_list_never_show_secrets(data_dir: Path) -> None:
    first = create(data_dir, "first", "--role", "user", "--request-limit", "100", "--expires-in", "30d")
    shared = create(data_dir, "shared", "--owner", first[:10])
    tenant = uuid.uuid4()
    outside = create(data_dir, "outside", "--owner", str(tenant))
    rows = listed(data_dir)
    assert set(rows) == {"first", "shared", "outside"}
    row = rows["first"]
    assert row["prefix"] == first[:10] and row["role"] == "user" and row["state"] == "active"
    assert row["requests_made"] == 0 and row["request_limit"] == 100 and row["active"] is True
    expires = datetime.fromisoformat(str(row["expires_at"]))
    assert timedelta(days=29, hours=23) < expires - datetime.now(UTC) <= timedelta(days=30)
    # --owner with a key's prefix shares that key's tenant; with a UUID, that tenant.
    assert rows["shared"]["tenant_id"] == row["tenant_id"] == row["id"]
    assert rows["shared"]["shared_owner"] is True and row["shared_owner"] is False
    assert rows["outside"]["tenant_id"] == str(tenant)
    code, table = keys(data_dir, "list")
    assert code == 0, table
    text = json.dumps(rows) + table
    for secret in (first, shared, outside):
        assert secret not in text and secret[10:20] not in text
    assert "key_hash" not in text and "first" in table and "0/100" in table


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["revoke", "fs_nothere"], "No API key"),
        (["revoke", "0000"], "No API key"),
        (["revoke", "x"], "is not a key id"),
        (["expire", "fs_nothere", "--now"], "No API key"),
        (["create", "--name", "n", "--owner", "not-a-key"], "neither a tenant UUID"),
    ],
    ids=["unknown-prefix", "unknown-id", "malformed", "expire-unknown", "bad-owner"],
)
def test_unknown_keys_exit_2(data_dir: Path, args: list[str], problem: str) -> None:
    create(data_dir, "present")
    code, output = keys(data_dir, *args)
    assert code == 2 and problem in output, output


@pytest.mark.parametrize(
    "args",
    [["--in", "3x"], ["--at", "2030-01-01T00:00:00"], ["--now", "--in", "1d"], []],
    ids=["bad-duration", "naive-time", "two-choices", "no-choice"],
)
def test_expire_refuses_unclear_times(data_dir: Path, args: list[str]) -> None:
    secret = create(data_dir, "k")
    code, output = keys(data_dir, "expire", secret[:10], *args)
    assert code == 2, output
    assert listed(data_dir)["k"]["expires_at"] is None


def test_ambiguous_reference_exits_2_and_changes_nothing(data_dir: Path) -> None:
    create(data_dir, "bootstrap")  # creates the database
    container = Container(Settings(data_dir=data_dir))
    with container.database.session() as session:
        for n, name in enumerate(("twin a", "twin b")):
            key_id = uuid.UUID(f"abcd{n}000-0000-4000-8000-000000000000")
            session.add(ApiKey(id=key_id, key_prefix=f"fs_twin{n}xx", key_hash=f"{n}" * 64, key_name=name))
    container.close()
    code, output = keys(data_dir, "revoke", "abcd")
    assert code == 2 and "matches 2 API keys" in output, output
    assert all(row["active"] for row in listed(data_dir).values())
    code, output = keys(data_dir, "revoke", "abcd1")  # more characters: unique
    assert code == 0, output
    assert listed(data_dir)["twin b"]["state"] == "revoked" and listed(data_dir)["twin a"]["active"]


@pytest.fixture
def server(data_dir: Path, tmp_path: Path) -> Iterator[TestClient]:
    """A running app on the same data folder as the CLI (the key rows are shared)."""
    settings = make_settings(data_dir, tmp_path / "no-models")
    container = Container(settings)
    container.prepare()
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        yield client
    container.close()


def test_revoke_and_expire_take_effect_on_a_running_server(data_dir: Path, server: TestClient) -> None:
    names = ("revoked", "expired", "later", "dated")
    revoked, expired, later, dated = (create(data_dir, name) for name in names)
    for secret in (revoked, expired, later, dated):
        assert server.get(GROUPS, headers={"X-API-Key": secret}).status_code == 200

    assert keys(data_dir, "revoke", revoked[:10])[0] == 0
    key_id = str(listed(data_dir)["expired"]["id"])
    assert keys(data_dir, "expire", key_id[:8], "--now")[0] == 0
    assert keys(data_dir, "expire", later, "--in", "1h")[0] == 0  # the whole secret works as a reference
    assert keys(data_dir, "expire", dated[:10], "--at", "2001-02-03T04:05:06+02:00")[0] == 0

    def error(secret: str) -> tuple[int, str]:
        response = server.get(GROUPS, headers={"X-API-Key": secret})
        return response.status_code, response.json().get("error", {}).get("code", "")

    assert error(revoked) == (401, "INVALID_API_KEY")
    assert error(expired) == (401, "API_KEY_EXPIRED")
    assert error(dated) == (401, "API_KEY_EXPIRED")
    assert server.get(GROUPS, headers={"X-API-Key": later}).status_code == 200
    rows = listed(data_dir)
    assert [rows[n]["state"] for n in ("revoked", "expired", "later", "dated")] == [
        "revoked",
        "expired",
        "active",
        "expired",
    ]
    assert rows["dated"]["expires_at"] == "2001-02-03T02:05:06+00:00"
    assert rows["later"]["requests_made"] == 2 and rows["later"]["last_used_at"] is not None


def test_roles_created_listed_and_enforced(data_dir: Path, server: TestClient) -> None:
    """`--role operator` is the only way to a key with index upkeep; the default is a tenant admin."""
    operator = create(data_dir, "ops", "--role", "operator")
    admin = create(data_dir, "tenant")
    user = create(data_dir, "app", "--role", "user")
    rows = listed(data_dir)
    assert {name: rows[name]["role"] for name in ("ops", "tenant", "app")} == {
        "ops": "operator",
        "tenant": "admin",
        "app": "user",
    }
    verify = "/api/v1/admin/index/verify"
    assert server.post(verify, json={}, headers={"X-API-Key": operator}).status_code == 200
    for secret in (admin, user):
        refused = server.post(verify, json={}, headers={"X-API-Key": secret})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "FORBIDDEN"
    # Each is its own tenant: the operator's group is invisible to the tenant admin and back.
    made = server.post(GROUPS, json={"group_name": "ops only"}, headers={"X-API-Key": operator})
    assert made.status_code == 201, made.text
    assert server.get(GROUPS, headers={"X-API-Key": admin}).json()["total"] == 0
    server.post(GROUPS, json={"group_name": "tenant only"}, headers={"X-API-Key": admin})
    seen = server.get(GROUPS, headers={"X-API-Key": operator}).json()["groups"]
    assert [g["group_name"] for g in seen] == ["ops only"]

    code, output = keys(data_dir, "create", "--name", "root", "--role", "superuser")
    assert code == 2 and "role must be one of operator, admin, user" in output, output
    assert "root" not in listed(data_dir)
