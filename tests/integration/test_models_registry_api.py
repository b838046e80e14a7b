"""``/api/v1/models`` over HTTP: the operator role, stable errors, the deployment flow and its
history, the CLI on the same registry, and concurrent actions on one slot on PostgreSQL.

The slots' versions are the real installed files (the converted pack when available: three face
detectors; without it, dlib's and the packaged models), synced at start-up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from facesocial.api.app import create_app
from facesocial.container import Container
from facesocial.domains.registry.deployments import Actor
from facesocial.domains.registry.serving import SLOTS
from facesocial.settings import Settings
from facesocial.store.tables_registry import DeploymentPipeline, ModelVersion
from tests.integration.conftest import make_settings
from tests.services import scratch_postgres

pytestmark = pytest.mark.integration
MODELS = "/api/v1/models"
SLOT = "face_detection"


class App:
    def __init__(self, client: TestClient, container: Container) -> None:
        self.client, self.container = client, container
        keys = container.keys
        self.operator = {"X-API-Key": keys.create("operator", role="operator").secret}
        self.admin = {"X-API-Key": keys.create("tenant admin").secret}
        self.user = {"X-API-Key": keys.create("tenant user", role="user").secret}

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, headers=kw.pop("headers", self.operator), **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.client.post(path, json=body, headers=kw.pop("headers", self.operator), **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.client.delete(path, headers=kw.pop("headers", self.operator), **kw)


def _settings(tmp_path: Path, model_dir: Path | None) -> Settings:
    settings = make_settings(tmp_path, model_dir)
    settings.reconcile.interval_seconds = 0
    return settings


@pytest.fixture
def app(tmp_path: Path, optional_model_dir: Path | None) -> Iterator[App]:
    """The registry of what is installed here: with the converted pack if there is one."""
    container = Container(_settings(tmp_path, optional_model_dir))
    container.prepare()
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        yield App(client, container)
    container.close()


def error_of(response: Any) -> tuple[int, str]:
    body = response.json()
    assert body["success"] is False, response.text
    return response.status_code, body["error"]["code"]


def versions_of(app: App, slot: str = SLOT) -> dict[str, dict[str, Any]]:
    response = app.get(f"{MODELS}/{slot}/versions")
    assert response.status_code == 200, response.text
    return {v["version"]: v for v in response.json()["versions"]}


def three_versions(app: App) -> tuple[str, str, str, str]:
    """(slot, production, another installed version, a third): face_detection when three
    detectors are installed (retinaface is an optional pull), else face_embedding (dlib,
    faceres, mobileface with the pack; this fresh database has no enrolled user, so no gallery
    stands in the way)."""
    for slot in (SLOT, "face_embedding"):
        versions = versions_of(app, slot)
        production = next(tag for tag, v in versions.items() if v["stage"] == "production")
        others = sorted(tag for tag, v in versions.items() if v["is_installed"] and tag != production)
        if len(others) >= 2:
            return slot, production, others[0], others[1]
    pytest.skip(f"needs a slot with three installed versions, found {sorted(versions)}")


def test_only_the_operator_reads_or_changes_the_registry(app: App) -> None:
    routes = [
        ("get", MODELS, None),
        ("get", f"{MODELS}/{SLOT}", None),
        ("get", f"{MODELS}/{SLOT}/versions", None),
        ("get", f"{MODELS}/{SLOT}/deployments", None),
        ("post", f"{MODELS}/{SLOT}/canary", {"version": "x@1", "percent": 5}),
        ("delete", f"{MODELS}/{SLOT}/canary", None),
        ("post", f"{MODELS}/{SLOT}/promote", None),
        ("post", f"{MODELS}/{SLOT}/rollback", {"version": "x@1", "reason": "r"}),
        ("post", f"{MODELS}/{SLOT}/deploy", {"version": "x@1"}),
        ("post", f"{MODELS}/{SLOT}/versions/x@1/stage", {"stage": "staging"}),
    ]
    before = versions_of(app)
    for headers in (app.admin, app.user):
        for method, path, body in routes:
            kwargs: dict[str, Any] = {"headers": headers}
            if body is not None:
                kwargs["json"] = body
            response = app.client.request(method.upper(), path, **kwargs)
            assert error_of(response) == (403, "FORBIDDEN"), (method, path)
    assert app.client.get(MODELS).status_code == 401
    assert versions_of(app) == before


def test_list_names_every_slot_with_its_production_version(app: App) -> None:
    response = app.get(MODELS)
    assert response.status_code == 200, response.text
    models = {m["model_id"]: m for m in response.json()["models"]}
    assert list(models) == list(SLOTS)
    detection = models[SLOT]
    production = versions_of(app)[detection["production"]]
    assert production["stage"] == "production" and production["is_installed"]
    assert production["validation_metrics"]["ap_iou50_testing"] == 1.0
    if app.container.model_cache.has(app.container.settings.models.detector):
        # The settings' detector (blazeface_full by default) was made production at the first start.
        assert detection["production"].startswith(f"{app.container.settings.models.detector}@")
        assert len(production["sha256"]) == 64 and production["file_size_mb"] > 0
    else:  # without the pack: dlib's HOG detector, built into dlib (no file of its own)
        assert detection["production"].startswith("dlib_hog@") and production["sha256"] is None
    liveness = versions_of(app, "liveness")[models["liveness"]["production"]]
    assert liveness["version"].startswith("liveness_passive@") and len(liveness["sha256"]) == 64
    assert models["liveness"]["production"].startswith("liveness_passive@")
    assert app.get(f"{MODELS}/{SLOT}").json()["model"]["production"] == detection["production"]


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    [
        ("get", f"{MODELS}/nope", None, (404, "MODEL_NOT_FOUND")),
        ("get", f"{MODELS}/nope/versions", None, (404, "MODEL_NOT_FOUND")),
        ("post", f"{MODELS}/nope/promote", None, (404, "MODEL_NOT_FOUND")),
        (
            "post",
            f"{MODELS}/{SLOT}/canary",
            {"version": "nope@1", "percent": 10},
            (404, "MODEL_VERSION_NOT_FOUND"),
        ),
        (
            "post",
            f"{MODELS}/{SLOT}/rollback",
            {"version": "nope@1", "reason": "x"},
            (404, "MODEL_VERSION_NOT_FOUND"),
        ),
        ("post", f"{MODELS}/{SLOT}/canary", {"version": "x@1", "percent": 0}, (422, "VALIDATION_ERROR")),
        ("post", f"{MODELS}/{SLOT}/canary", {"version": "x@1", "percent": 100}, (422, "VALIDATION_ERROR")),
        ("post", f"{MODELS}/{SLOT}/canary", {"version": "x@1", "percent": "NaN"}, (422, "VALIDATION_ERROR")),
        (
            "post",
            f"{MODELS}/{SLOT}/canary",
            {"version": "x@1", "percent": 5, "x": 1},
            (422, "VALIDATION_ERROR"),
        ),
        ("post", f"{MODELS}/{SLOT}/rollback", {"version": "x@1", "reason": ""}, (422, "VALIDATION_ERROR")),
        ("post", f"{MODELS}/{SLOT}/rollback", {"version": "x@1"}, (422, "VALIDATION_ERROR")),
        ("post", f"{MODELS}/{SLOT}/versions/x@1/stage", {"stage": "live"}, (422, "VALIDATION_ERROR")),
        ("delete", f"{MODELS}/{SLOT}/canary", None, (409, "NO_CANARY")),
        ("post", f"{MODELS}/{SLOT}/promote", None, (409, "NO_CANARY")),
        ("get", f"{MODELS}/{SLOT}/deployments?limit=0", None, (422, "VALIDATION_ERROR")),
    ],
)
def test_bad_requests_get_stable_codes(
    app: App, method: str, path: str, body: Any, expected: tuple[int, str]
) -> None:
    kwargs: dict[str, Any] = {"headers": app.operator}
    if body is not None:
        kwargs["json"] = body
    assert error_of(app.client.request(method.upper(), path, **kwargs)) == expected


def test_canary_promote_rollback_and_history(app: App) -> None:
    slot, production, second, third = three_versions(app)

    # A production version cannot be its own canary, nor leave production by a stage change.
    assert error_of(app.post(f"{MODELS}/{slot}/canary", {"version": production, "percent": 10})) == (
        409,
        "ILLEGAL_STAGE_TRANSITION",
    )
    assert error_of(app.post(f"{MODELS}/{slot}/versions/{production}/stage", {"stage": "archived"})) == (
        409,
        "ILLEGAL_STAGE_TRANSITION",
    )

    response = app.post(f"{MODELS}/{slot}/canary", {"version": second, "percent": 25})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["deployment"]["action"] == "canary" and body["deployment"]["rollback_version"] == production
    assert body["model"]["canary"] == {"version": second, "percent": 25.0}
    assert body["model"]["production"] == production

    promoted = app.post(f"{MODELS}/{slot}/promote").json()
    assert promoted["model"]["production"] == second and promoted["model"]["canary"] is None
    assert versions_of(app, slot)[production]["stage"] == "staging"

    # An archived version can neither be rolled back to nor canaried until it is un-archived.
    assert app.post(f"{MODELS}/{slot}/versions/{third}/stage", {"stage": "archived"}).status_code == 200
    assert error_of(app.post(f"{MODELS}/{slot}/rollback", {"version": third, "reason": "x"})) == (
        409,
        "ILLEGAL_STAGE_TRANSITION",
    )
    assert app.post(f"{MODELS}/{slot}/versions/{third}/stage", {"stage": "staging"}).status_code == 200
    assert app.post(f"{MODELS}/{slot}/canary", {"version": third, "percent": 50}).status_code == 200

    rolled = app.post(f"{MODELS}/{slot}/rollback", {"version": production, "reason": "more false positives"})
    assert rolled.status_code == 200, rolled.text
    model = rolled.json()["model"]
    assert model["production"] == production and model["canary"] is None
    assert rolled.json()["deployment"]["rollback_reason"] == "more false positives"

    history = app.get(f"{MODELS}/{slot}/deployments").json()
    actions = [(d["action"], d["version"]) for d in history["deployments"]]
    assert actions[:7] == [
        ("rollback", production),
        ("canary", third),
        ("stage", third),
        ("stage", third),
        ("promote", second),
        ("canary", second),
        ("initial", production),
    ]
    assert history["total"] == 7
    page = app.get(f"{MODELS}/{slot}/deployments?limit=2&offset=1").json()["deployments"]
    assert [(d["action"], d["version"]) for d in page] == actions[1:3]


def test_a_version_whose_file_is_missing_cannot_serve(app: App) -> None:
    with app.container.database.session() as session:
        session.add(
            ModelVersion(
                model_id=SLOT, version_number="ghost@1", deployment_status="staging", is_installed=False
            )
        )
    for path, body in (
        (f"{MODELS}/{SLOT}/canary", {"version": "ghost@1", "percent": 10}),
        (f"{MODELS}/{SLOT}/deploy", {"version": "ghost@1"}),
        (f"{MODELS}/{SLOT}/rollback", {"version": "ghost@1", "reason": "x"}),
    ):
        assert error_of(app.post(path, body)) == (409, "MODEL_VERSION_NOT_INSTALLED"), path


def test_cli_changes_what_the_api_reports(tmp_path: Path, model_dir: Path) -> None:
    """`facesocial models canary|rollback|versions` on the installation's database."""
    env = {
        "FACESOCIAL_DATA_DIR": str(tmp_path),
        "FACESOCIAL_MODELS__MODEL_DIR": str(model_dir),
        "FACESOCIAL_MODELS__AUTO_PULL": "false",
    }

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "facesocial", "models", *args],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=300,
        )

    listed = json.loads(cli("versions", SLOT).stdout)
    production = listed["production"]
    other = next(v["version"] for v in listed["versions"] if v["stage"] == "staging" and v["is_installed"])
    done = cli("deploy", SLOT, other, "--canary", "40")
    assert done.returncode == 0, done.stderr
    assert json.loads(cli("versions", SLOT).stdout)["canary"] == {"version": other, "percent": 40.0}
    refused = cli("rollback", SLOT, "nope@1", "--reason", "x")
    assert refused.returncode == 2 and "MODEL_VERSION_NOT_FOUND" in refused.stderr
    back = cli("rollback", SLOT, production, "--reason", "canary too slow")
    assert back.returncode == 0, back.stderr
    state = json.loads(cli("versions", SLOT).stdout)
    assert state["production"] == production and state["canary"] is None


def test_concurrent_actions_on_one_slot_are_serialised_on_postgres(tmp_path: Path, model_dir: Path) -> None:
    """Eight threads deploy two versions back and forth: every action lands, one production
    version remains, and the history has one row per action."""
    with scratch_postgres() as url:
        settings = _settings(tmp_path, model_dir)
        settings.database_url = url
        container = Container(settings)
        container.prepare()
        try:
            registry = container.registry
            model = registry.get_model(SLOT)
            installed = [v["version"] for v in model["versions"] if v["is_installed"]]
            if len(installed) < 2:
                pytest.skip("needs two installed face detectors")
            failures: list[BaseException] = []
            done: list[str] = []

            def work(i: int) -> None:
                version = installed[i % 2]
                try:
                    for _ in range(5):
                        try:
                            registry.deploy(SLOT, version, Actor(None, f"t{i}"))
                            done.append(version)
                        except Exception as exc:  # already production: a legal refusal
                            if getattr(exc, "code", "") != "ILLEGAL_STAGE_TRANSITION":
                                raise
                except BaseException as exc:
                    failures.append(exc)

            threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert failures == []
            with container.database.session(readonly=True) as session:
                productions = session.scalars(
                    select(ModelVersion.version_number).where(
                        ModelVersion.model_id == SLOT, ModelVersion.deployment_status == "production"
                    )
                ).all()
                deploys = session.scalar(
                    select(func.count())
                    .select_from(DeploymentPipeline)
                    .where(
                        DeploymentPipeline.model_id == SLOT, DeploymentPipeline.current_stage == "production"
                    )
                )
            assert len(productions) == 1
            assert deploys == len(done) + 1  # + the initial production of the first start
            assert registry.get_model(SLOT)["production"] == productions[0]
        finally:
            container.close()
