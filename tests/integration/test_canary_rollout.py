"""Black-box: a canary rollout and a rollback change which face detector answers.

A live app (SQLite, then PostgreSQL) with the real model pack and the registry's router.
Sixteen API keys detect the same photo; with a 50 % canary of another detector both versions
answer, each key always the same one (the split hashes the caller), and the response's
``serving``, the detector that really ran (``model.detector``), the audit row and the recorded
inference all name it. Promotion moves everyone; a rollback — through the API, then through the
CLI in another process, which this server follows within ``registry.refresh_seconds`` — brings
the old version back.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from facesocial.api.app import create_app
from facesocial.container import Container
from facesocial.store.tables import AiOperationLog
from facesocial.store.tables_registry import ModelInferenceResult
from tests.integration.conftest import make_settings
from tests.services import scratch_postgres

pytestmark = pytest.mark.integration
DETECT = "/api/v1/face-detection/detect"
MODELS = "/api/v1/models"
SLOT = "face_detection"
CALLERS = 16


class Live:
    def __init__(self, client: TestClient, container: Container) -> None:
        self.client, self.container = client, container
        self.operator = {"X-API-Key": container.keys.create("operator", role="operator").secret}
        self.callers = [{"X-API-Key": container.keys.create(f"caller {i}").secret} for i in range(CALLERS)]


@pytest.fixture(params=["sqlite", "postgresql"])
def live(request: pytest.FixtureRequest, tmp_path: Path, model_dir: Path) -> Iterator[Live]:
    with ExitStack() as stack:
        settings = make_settings(tmp_path, model_dir)
        settings.reconcile.interval_seconds = 0
        settings.registry.refresh_seconds = 1.0
        if request.param == "postgresql":
            settings.database_url = stack.enter_context(scratch_postgres())
        container = Container(settings)
        container.prepare()
        with TestClient(create_app(container), raise_server_exceptions=False) as client:
            yield Live(client, container)
        container.close()


def detect(live: Live, headers: dict[str, str], jpeg: bytes) -> dict[str, Any]:
    response = live.client.post(DETECT, files={"image": ("a.jpg", jpeg, "image/jpeg")}, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    serving = body["serving"]
    detector = body["model"]["detector"]
    # The version named is the detector that ran, and it found the astronaut's face.
    assert f"{detector['name']}@{detector['version']}" == serving["version"]
    assert body["faces_detected"] == 1
    with live.container.database.session(readonly=True) as session:
        audit = session.scalars(
            select(AiOperationLog)
            .where(AiOperationLog.operation_type == "detect")
            .order_by(AiOperationLog.created_at)
        ).all()[-1]
        record = session.scalar(
            select(ModelInferenceResult).where(ModelInferenceResult.inference_id == serving["inference_id"])
        )
    assert audit.model_version == serving["version"]
    assert record is not None and (record.model_version, record.route) == (
        serving["version"],
        serving["route"],
    )
    return serving


def change(live: Live, method: str, path: str, body: Any = None) -> dict[str, Any]:
    response = live.client.request(method, f"{MODELS}/{SLOT}{path}", json=body, headers=live.operator)
    assert response.status_code == 200, response.text
    model: dict[str, Any] = response.json()["model"]
    return model


def test_canary_rollout_promotion_and_rollback_change_the_answering_version(
    live: Live, astronaut_jpeg: bytes, model_dir: Path, tmp_path: Path
) -> None:
    model = change(live, "GET", "")
    production = model["production"]
    candidates = [v["version"] for v in model["versions"] if v["is_installed"] and v["version"] != production]
    # dlib's HOG detector is always installed; prefer the pack's RetinaFace when it is there.
    canary = next((v for v in candidates if v.startswith("retinaface")), next(v for v in candidates))

    before = {detect(live, caller, astronaut_jpeg)["version"] for caller in live.callers[:4]}
    assert before == {production}

    change(live, "POST", "/canary", {"version": canary, "percent": 50})
    first = [detect(live, caller, astronaut_jpeg) for caller in live.callers]
    seen = {s["version"] for s in first}
    # 16 callers on a 50 % split: all on one side has probability 2 * 2^-16.
    assert seen == {production, canary}
    assert {s["route"] for s in first if s["version"] == canary} == {"canary"}
    assert {s["route"] for s in first if s["version"] == production} == {"production"}
    again = [detect(live, caller, astronaut_jpeg)["version"] for caller in live.callers]
    assert again == [s["version"] for s in first]  # each caller keeps its version

    change(live, "POST", "/promote")
    assert {detect(live, caller, astronaut_jpeg)["version"] for caller in live.callers[:4]} == {canary}

    model = change(live, "POST", "/rollback", {"version": production, "reason": "black-box test"})
    assert model["production"] == production
    served = detect(live, live.callers[0], astronaut_jpeg)
    assert (served["version"], served["route"]) == (production, "production")

    # Another process (the CLI) deploys the canary version; this server follows within
    # refresh_seconds (1 s here) without being told.
    env = {
        **os.environ,
        "FACESOCIAL_DATA_DIR": str(live.container.settings.data_dir),
        "FACESOCIAL_DATABASE_URL": live.container.settings.database_url,
        "FACESOCIAL_MODELS__MODEL_DIR": str(model_dir),
        "FACESOCIAL_MODELS__AUTO_PULL": "false",
    }
    cli = subprocess.run(
        [sys.executable, "-m", "facesocial", "models", "deploy", SLOT, canary],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert cli.returncode == 0, cli.stderr
    deadline = time.monotonic() + 10
    while detect(live, live.callers[0], astronaut_jpeg)["version"] != canary:
        assert time.monotonic() < deadline, "the server did not follow the CLI's deploy"
        time.sleep(0.3)
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "facesocial",
            "models",
            "rollback",
            SLOT,
            production,
            "--reason",
            "cli rollback",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert cli.returncode == 0, cli.stderr
    deadline = time.monotonic() + 10
    while detect(live, live.callers[0], astronaut_jpeg)["version"] != production:
        assert time.monotonic() < deadline, "the server did not follow the CLI's rollback"
        time.sleep(0.3)
    history = live.client.get(f"{MODELS}/{SLOT}/deployments", headers=live.operator).json()["deployments"]
    assert [d["action"] for d in history[:5]] == ["rollback", "deploy", "rollback", "promote", "canary"]
    assert history[0]["rollback_reason"] == "cli rollback"
