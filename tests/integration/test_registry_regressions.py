"""Regression tests of the registry's honesty (attacker B's findings, issue 13).

* an embedding version whose gallery misses enrolled users cannot start serving until
  ``migrate_gallery`` filled it (409 GALLERY_NOT_MIGRATED; ``force`` is recorded);
* a slot lists as installed exactly the versions its service can run, and a route to each of
  them is served by it;
* every item of a batch routed to an experiment arm writes the caller's assignment;
* a canary percent must be a JSON number (``true`` is not 1).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from facesocial.api.app import create_app
from facesocial.container import Container
from facesocial.domains.counting.tasks import detector_versions
from facesocial.domains.deepfake.service import serving_tag
from facesocial.services.index_maintenance import migrate_gallery
from facesocial.store.tables_registry import ModelVersion
from tests.integration.conftest import profile

pytestmark = pytest.mark.integration
MODELS = "/api/v1/models"
EXPERIMENTS = "/api/v1/experiments"
RECOGNITION = "/api/v1/face-recognition"


@dataclass
class App:
    client: TestClient
    container: Container
    operator: dict[str, str]

    def post(self, path: str, body: Any = None) -> Any:
        return self.client.post(path, json=body, headers=self.operator)

    def key(self, owner_id: uuid.UUID | None = None) -> dict[str, str]:
        return {"X-API-Key": self.container.keys.create(f"k {uuid.uuid4()}", owner_id=owner_id).secret}


@pytest.fixture
def app(request: pytest.FixtureRequest, tmp_path: Path, model_dir: Path) -> Iterator[App]:
    """The embedded profile (SQLite), or ``scaled`` (PostgreSQL, Redis, Milvus) by indirect
    parametrisation."""
    with profile(getattr(request, "param", "embedded"), tmp_path, model_dir) as settings:
        settings.reconcile.interval_seconds = 0
        settings.privacy.keep_face_chips = True  # migrate_gallery re-embeds kept chips
        container = Container(settings)
        container.prepare()
        try:
            with TestClient(create_app(container), raise_server_exceptions=False) as client:
                operator = {"X-API-Key": container.keys.create("operator", role="operator").secret}
                yield App(client, container, operator)
        finally:
            container.close()


def _jpeg(data: bytes) -> dict[str, Any]:
    return {"image": ("a.jpg", data, "image/jpeg")}


def _error(response: Any) -> tuple[int, str]:
    body = response.json()
    assert body["success"] is False, response.text
    return response.status_code, body["error"]["code"]


def _register(app: App, headers: dict[str, str], jpeg: bytes) -> uuid.UUID:
    user = uuid.uuid4()
    response = app.client.post(
        f"{RECOGNITION}/register",
        files=_jpeg(jpeg),
        data={"user_id": str(user), "consent": "true"},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    return user


def _embedding_tags(app: App) -> dict[str, str]:
    return {name: e.model.tag for name, e in app.container.pipeline.embedders.items()}


@pytest.mark.parametrize("app", ["embedded", "scaled"], indirect=True)
def test_an_embedding_canary_waits_for_the_gallery_migration(
    app: App, astronaut_jpeg: bytes, astronaut_variant_jpeg: bytes
) -> None:
    tags = _embedding_tags(app)
    if "faceres" not in tags or "mobileface" not in tags:
        pytest.skip("faceres and mobileface are not installed")
    production = tags[app.container.pipeline.default_embedder]
    canary, other = tags["faceres"], tags["mobileface"]
    owner = app.container.keys.create("owner")
    user = _register(app, {"X-API-Key": owner.secret}, astronaut_jpeg)
    # A second tenant's user: counted, never named.
    stranger_key = app.key()
    stranger = _register(app, stranger_key, astronaut_jpeg)

    refused = app.post(f"{MODELS}/face_embedding/canary", {"version": canary, "percent": 99})
    assert _error(refused) == (409, "GALLERY_NOT_MIGRATED")
    details = refused.json()["error"]["details"]
    assert details == {
        "version": canary,
        "missing_users": 2,
        "command": "facesocial index migrate --to faceres",
    }
    tenants = []
    for headers in ({"X-API-Key": owner.secret}, stranger_key):
        principal = app.container.keys.authenticate(headers["X-API-Key"])
        assert principal is not None
        tenants.append(str(principal.tenant_id))
    for secret in (str(user), str(stranger), *tenants):
        assert secret not in refused.text
    # Deploy, a stage change to production and a rollback are refused the same way.
    assert _error(app.post(f"{MODELS}/face_embedding/deploy", {"version": canary})) == (
        409,
        "GALLERY_NOT_MIGRATED",
    )
    staged = app.post(f"{MODELS}/face_embedding/versions/{canary}/stage", {"stage": "production"})
    assert _error(staged) == (409, "GALLERY_NOT_MIGRATED")
    rolled = app.post(f"{MODELS}/face_embedding/rollback", {"version": canary, "reason": "test"})
    assert _error(rolled) == (409, "GALLERY_NOT_MIGRATED")
    assert app.client.get(f"{MODELS}/face_embedding", headers=app.operator).json()["model"]["production"] == (
        production
    )

    c = app.container
    report = migrate_gallery(c.database, c.index, c.pipeline, c.chip_vault, "faceres", c.face_writer)
    assert (report.re_embedded, report.users_to_re_enrol) == (2, [])

    started = app.post(f"{MODELS}/face_embedding/canary", {"version": canary, "percent": 99})
    assert started.status_code == 200, started.text
    assert "force" not in started.json()["deployment"]["config"]
    versions = []
    for _ in range(6):
        caller = app.key(owner_id=owner.id)
        verify = app.client.post(
            f"{RECOGNITION}/verify",
            files=_jpeg(astronaut_variant_jpeg),
            data={"user_id": str(user)},
            headers=caller,
        )
        assert verify.status_code == 200 and verify.json()["match"] is True, verify.text
        identify = app.client.post(
            f"{RECOGNITION}/identify", files=_jpeg(astronaut_variant_jpeg), headers=caller
        )
        assert identify.status_code == 200, identify.text
        found = identify.json()
        assert found["identified"] and found["candidates"][0]["user_id"] == str(user), found
        versions.append(found["serving"]["face_embedding"]["version"])
        assert verify.json()["serving"]["face_embedding"]["version"] == versions[-1]
    # 99 % canary: six callers all off it has probability 1e-12.
    assert canary in versions, versions

    # mobileface's gallery is still empty: forced, and the row says so.
    assert _error(app.post(f"{MODELS}/face_embedding/canary", {"version": other, "percent": 5})) == (
        409,
        "GALLERY_NOT_MIGRATED",
    )
    forced = app.post(f"{MODELS}/face_embedding/canary", {"version": other, "percent": 5, "force": True})
    assert forced.status_code == 200, forced.text
    config = forced.json()["deployment"]["config"]
    assert (config["force"], config["missing_users"]) == (True, 2), config
    # promote checks the canary's gallery again
    assert _error(app.post(f"{MODELS}/face_embedding/promote")) == (409, "GALLERY_NOT_MIGRATED")
    promoted = app.post(f"{MODELS}/face_embedding/promote", {"force": True})
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["model"]["production"] == other


def test_cli_force_serves_an_unmigrated_embedding_version(
    app: App, model_dir: Path, astronaut_jpeg: bytes
) -> None:
    """`facesocial models canary|deploy` refuse as the API does; `--force` accepts and records."""
    tags = _embedding_tags(app)
    if "faceres" not in tags:
        pytest.skip("faceres is not installed")
    _register(app, app.key(), astronaut_jpeg)
    env = {
        **os.environ,
        "FACESOCIAL_DATA_DIR": str(app.container.settings.data_dir),
        "FACESOCIAL_MODELS__MODEL_DIR": str(model_dir),
        "FACESOCIAL_MODELS__AUTO_PULL": "false",
    }

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "facesocial", "models", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)

    refused = cli("canary", "face_embedding", tags["faceres"], "10")
    assert refused.returncode == 2 and "(GALLERY_NOT_MIGRATED)" in refused.stderr, refused.stderr
    assert "facesocial index migrate --to faceres" in refused.stderr
    forced = cli("deploy", "face_embedding", tags["faceres"], "--canary", "10", "--force")
    assert forced.returncode == 0, forced.stderr
    config = json.loads(forced.stdout)["config"]
    assert (config["force"], config["missing_users"]) == (True, 1), config


def test_a_canary_percent_must_be_a_number(app: App) -> None:
    model = app.client.get(f"{MODELS}/face_detection", headers=app.operator).json()["model"]
    other = next(v["version"] for v in model["versions"] if v["version"] != model["production"])
    for percent in (True, "5"):
        response = app.post(f"{MODELS}/face_detection/canary", {"version": other, "percent": percent})
        assert _error(response) == (422, "VALIDATION_ERROR"), percent
    assert app.post(f"{MODELS}/face_detection/canary", {"version": other, "percent": 5}).status_code == 200


def _runnable(container: Container) -> dict[str, set[str]]:
    """What each service can run when the registry routes to it (their own resolve() calls)."""
    analyzer = container.ai_analyzer
    attributes = container.pipeline.attributes
    return {
        "face_detection": set(container.detector_variants.installed),
        "face_embedding": {e.model.tag for e in container.pipeline.embedders.values()},
        "demographics": {attributes.models["age_gender"].tag} if attributes is not None else set(),
        "liveness": {container.passive_liveness.model.tag},
        "deepfake": {serving_tag(container.deepfake_detector)},
        "ai_image": {analyzer.model.version if analyzer.model is not None else analyzer.version},
        "person_detection": set(detector_versions(container.model_cache)),
    }


def test_every_installed_version_is_one_its_service_runs(app: App, astronaut_jpeg: bytes) -> None:
    models = app.client.get(MODELS, headers=app.operator).json()["models"]
    listed = {m["model_id"]: {v["version"] for v in m["versions"] if v["is_installed"]} for m in models}
    assert listed == _runnable(app.container)

    # A routed version is the one that answers (slots whose services take a photo and route it).
    for slot, path, field in [
        ("face_detection", "/api/v1/face-detection/detect", "image"),
        ("demographics", "/api/v1/demographics/analyze", "image"),
    ]:
        for version in sorted(listed[slot]):
            if (
                app.client.get(f"{MODELS}/{slot}", headers=app.operator).json()["model"]["production"]
                != version
            ):
                assert app.post(f"{MODELS}/{slot}/deploy", {"version": version}).status_code == 200
            response = app.client.post(
                path, files={field: ("a.jpg", astronaut_jpeg, "image/jpeg")}, headers=app.key()
            )
            assert response.status_code == 200, response.text
            serving = response.json()["serving"]
            # /face-detection/detect answers its one slot's decision, the others one per slot.
            assert (serving if "slot" in serving else serving[slot])["version"] == version
    for version in sorted(listed["face_embedding"]):  # empty gallery: nothing to migrate
        if (
            app.client.get(f"{MODELS}/face_embedding", headers=app.operator).json()["model"]["production"]
            != version
        ):
            assert app.post(f"{MODELS}/face_embedding/deploy", {"version": version}).status_code == 200
        response = app.client.post(f"{RECOGNITION}/identify", files=_jpeg(astronaut_jpeg), headers=app.key())
        assert response.status_code == 200, response.text
        assert response.json()["serving"]["face_embedding"]["version"] == version


def test_a_demographics_version_no_service_runs_is_not_installed(app: App) -> None:
    """A database synced when gear was listed for demographics: the next sync marks it not
    installed, so a deploy is refused instead of being served by faceres."""
    with app.container.database.session() as session:
        session.add(
            ModelVersion(
                model_id="demographics",
                version_number="gear@3.0.4",
                deployment_status="staging",
                is_installed=True,
            )
        )
    app.container.prepare()
    with app.container.database.session(readonly=True) as session:
        row = session.scalar(select(ModelVersion).where(ModelVersion.version_number == "gear@3.0.4"))
        assert row is not None and row.is_installed is False
    response = app.post(f"{MODELS}/demographics/deploy", {"version": "gear@3.0.4"})
    assert _error(response) == (409, "MODEL_VERSION_NOT_INSTALLED")
    assert _error(app.post(f"{MODELS}/demographics/canary", {"version": "gear@3.0.4", "percent": 5})) == (
        409,
        "MODEL_VERSION_NOT_INSTALLED",
    )


@pytest.mark.parametrize("app", ["embedded", "scaled"], indirect=True)
def test_batch_items_routed_to_an_experiment_record_their_subject(app: App, astronaut_jpeg: bytes) -> None:
    """Each batch item has its own inference id; each item's record writes the subject's
    assignment (the first one inserts, the others find it)."""
    model = app.client.get(f"{MODELS}/face_detection", headers=app.operator).json()["model"]
    baseline = model["production"]
    challenger = sorted(
        v["version"] for v in model["versions"] if v["is_installed"] and v["version"] != baseline
    )[0]
    created = app.post(
        EXPERIMENTS,
        {"name": "batch", "model_id": "face_detection", "baseline_version": baseline,
         "challenger_version": challenger, "traffic_split_percent": 50, "traffic_split_method": "user"},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    exp_id = created.json()["experiment"]["experiment_id"]
    assert app.post(f"{EXPERIMENTS}/{exp_id}/start").status_code == 200
    files = [("images", (f"{i}.jpg", astronaut_jpeg, "image/jpeg")) for i in range(2)]
    response = app.client.post("/api/v1/demographics/batch", files=files, headers=app.key())
    assert response.status_code == 200, response.text
    items = response.json()["results"]
    arms = {item["serving"]["face_detection"]["arm"] for item in items}
    assert len(arms) == 1 and None not in arms, items[0]["serving"]
    assert len({item["serving"]["face_detection"]["inference_id"] for item in items}) == 2
    (arm,) = arms
    results = app.client.get(f"{EXPERIMENTS}/{exp_id}/results", headers=app.operator).json()
    assert results["arms"][arm]["sample_size"] == 2
    assert results["arms"][arm]["subjects"] == 1, results["arms"][arm]
    assert not app.container.model_router._pending, "the pending assignment was left behind"
