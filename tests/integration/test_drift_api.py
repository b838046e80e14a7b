"""Drift and performance of model versions over HTTP (``/api/v1/models/{slot}/drift``,
``/performance``) and through the hourly upkeep.

Two streams: inference rows written as the router writes them (``routing.inference_row``), with
confidences and image qualities drawn from a baseline distribution and then from a shifted one;
and real face-detection requests on clean and then degraded photos (needs the model pack).
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from facesocial.api.app import create_app
from facesocial.container import Container
from facesocial.domains.registry.routing import inference_row
from facesocial.domains.registry.serving import InferenceRecord, Serving
from facesocial.jobs import periodic
from facesocial.store.types import utcnow
from tests.integration.conftest import make_settings

pytestmark = pytest.mark.integration
SLOT = "face_detection"
DRIFT = f"/api/v1/models/{SLOT}/drift"
DETECT = "/api/v1/face-detection/detect"


class App:
    def __init__(self, client: TestClient, container: Container) -> None:
        self.client, self.container = client, container
        self.operator = {"X-API-Key": container.keys.create("operator", role="operator").secret}
        self.admin = {"X-API-Key": container.keys.create("tenant admin").secret}

    def production(self) -> str:
        response = self.client.get(f"/api/v1/models/{SLOT}", headers=self.operator)
        assert response.status_code == 200, response.text
        body = response.json()
        tag: str = (body.get("model") or body)["production"]
        return tag


@contextmanager
def _app(tmp_path: Path, model_dir: Path | None) -> Iterator[App]:
    settings = make_settings(tmp_path, model_dir)
    settings.reconcile.interval_seconds = 0
    settings.registry.refresh_seconds = 0.0
    container = Container(settings)
    container.prepare()
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        yield App(client, container)
    container.close()


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    with _app(tmp_path, None) as made:
        yield made


def add_rows(
    app: App,
    version: str,
    at: datetime,
    confidences: np.ndarray,
    qualities: np.ndarray,
    latency_ms: float = 30.0,
) -> None:
    """One inference row per value pair, as the router records a detection (one face each)."""
    rows = []
    for i, (confidence, quality) in enumerate(zip(confidences, qualities, strict=True)):
        record = InferenceRecord(
            serving=Serving(SLOT, version, "production"),
            service="face_detection",
            tenant_id=uuid.uuid4(),
            processing_time_ms=int(latency_ms + i % 7),
            result={"faces_detected": 1},
            confidences=(float(np.clip(confidence, 0, 1)),),
            features={"faces": 1.0, "width": 640.0, "quality": float(np.clip(quality, 0, 1))},
        )
        row = inference_row(record)
        row.input_timestamp = at + timedelta(seconds=i)
        rows.append(row)
    with app.container.database.session() as session:
        session.add_all(rows)


def window(start: datetime, end: datetime) -> dict[str, str]:
    return {"start": start.isoformat(), "end": end.isoformat()}


def error_of(response: Any) -> tuple[int, str]:
    body = response.json()
    assert body["success"] is False, response.text
    return response.status_code, body["error"]["code"]


def test_a_shifted_stream_alerts_and_an_unshifted_one_does_not(app: App) -> None:
    rng = np.random.default_rng(21)
    version = app.production()
    now = utcnow()
    base_start, steady_start, shifted_start = (
        now - timedelta(days=3),
        now - timedelta(days=2),
        now - timedelta(hours=1),
    )
    add_rows(app, version, base_start, rng.beta(8, 2, 1500), rng.normal(0.70, 0.10, 1500))
    add_rows(app, version, steady_start, rng.beta(8, 2, 600), rng.normal(0.70, 0.10, 600))
    # A darker camera: less certain detections, lower image quality.
    add_rows(app, version, shifted_start, rng.beta(4, 4, 600), rng.normal(0.45, 0.12, 600))
    baseline = window(base_start, base_start + timedelta(hours=1))

    steady = app.client.post(
        f"{DRIFT}/check",
        json={
            "version": version,
            "baseline": baseline,
            "current": window(steady_start, steady_start + timedelta(hours=1)),
        },
        headers=app.operator,
    )
    assert steady.status_code == 201, steady.text
    check = steady.json()["drift"]
    assert check["severity"] in ("none", "low") and check["alerted"] is False
    assert check["features"]["confidence"]["n_baseline"] == 1500
    assert check["features"]["confidence"]["n_current"] == 600
    assert check["features"]["confidence"]["psi"] < 0.1

    shifted = app.client.post(
        f"{DRIFT}/check",
        json={"version": version, "baseline": baseline, "current": window(shifted_start, now)},
        headers=app.operator,
    )
    assert shifted.status_code == 201, shifted.text
    check = shifted.json()["drift"]
    assert check["severity"] in ("high", "critical") and check["alerted"] is True
    assert check["features"]["confidence"]["psi"] > 0.25
    assert check["features"]["quality"]["psi"] > 0.25
    assert check["features"]["confidence"]["ks_p_value"] < 0.01
    assert check["model_drift_score"] > 0.3 and check["data_drift_score"] > 0.3
    assert check["alert_threshold"] == pytest.approx(0.25)

    history = app.client.get(DRIFT, headers=app.operator)
    assert history.status_code == 200, history.text
    checks = history.json()["checks"]
    assert [c["alerted"] for c in checks] == [True, False]  # newest first

    # The hourly upkeep checks the last day against the week before it: the shift alerts there too.
    summary = periodic.run_logged("facesocial.registry.monitoring", app.container)
    assert summary is not None
    assert summary["alerts"] == [{"model_id": SLOT, "version": version, "severity": check["severity"]}]
    assert len(app.client.get(DRIFT, headers=app.operator).json()["checks"]) == 3


def test_performance_roll_up_counts_the_window(app: App) -> None:
    rng = np.random.default_rng(22)
    version = app.production()
    now = utcnow()
    add_rows(app, version, now - timedelta(minutes=30), rng.beta(8, 2, 200), rng.normal(0.7, 0.1, 200), 40.0)
    add_rows(app, version, now - timedelta(days=2), rng.beta(8, 2, 50), rng.normal(0.7, 0.1, 50), 40.0)
    response = app.client.get(
        f"/api/v1/models/{SLOT}/performance", params={"window_hours": 1}, headers=app.operator
    )
    assert response.status_code == 200, response.text
    body = response.json()
    (computed,) = body["computed"]
    assert computed["model_version"] == version and computed["sample_size"] == 200
    # processing_time_ms = 40 + i % 7: mean 42.97 → 43 ms, p95 46 ms.
    assert computed["latency_mean_ms"] == 43 and computed["latency_p95_ms"] == 46
    assert computed["throughput_per_second"] == pytest.approx(200 / 3600, abs=0.01)
    assert computed["detection_rate"] == 1.0 and computed["accuracy"] is None
    assert body["metrics"][0]["sample_size"] == 200


def test_monitoring_routes_are_the_operators_and_refuse_bad_input(app: App) -> None:
    now = utcnow()
    for method, path in (
        ("post", f"{DRIFT}/check"),
        ("get", DRIFT),
        ("get", f"/api/v1/models/{SLOT}/performance"),
    ):
        response = getattr(app.client, method)(path, headers=app.admin)
        assert error_of(response) == (403, "FORBIDDEN")
    unknown = app.client.post("/api/v1/models/no_such_slot/drift/check", json={}, headers=app.operator)
    assert error_of(unknown) == (404, "MODEL_NOT_FOUND")
    backwards = app.client.post(
        f"{DRIFT}/check", json={"current": window(now, now - timedelta(hours=1))}, headers=app.operator
    )
    assert error_of(backwards) == (422, "VALIDATION_ERROR")
    naive = app.client.post(
        f"{DRIFT}/check",
        json={"current": {"start": "2026-01-01T00:00:00", "end": "2026-01-02T00:00:00"}},
        headers=app.operator,
    )
    assert error_of(naive) == (422, "VALIDATION_ERROR")
    # No inferences at all: a stored check that rates nothing, not an error.
    empty = app.client.post(f"{DRIFT}/check", json={}, headers=app.operator)
    assert empty.status_code == 201, empty.text
    assert empty.json()["drift"]["severity"] == "none" and empty.json()["drift"]["alerted"] is False


@pytest.mark.parametrize(
    "body",
    [
        # Only `current` in year 1: the default baseline (7 days before it) is before year 1.
        {"current": {"start": "0001-01-02T00:00:00Z", "end": "0001-01-03T00:00:00Z"}},
        # Aware datetimes whose UTC instant is past 9999-12-31 or before 0001-01-01.
        {"current": {"start": "9999-12-31T00:00:00-12:00", "end": "9999-12-31T23:00:00-12:00"}},
        {"baseline": {"start": "0001-01-01T00:00:00+14:00", "end": "0001-01-02T00:00:00+00:00"}},
        # Inside datetime's range but outside the monitored span 1970..9000 UTC.
        {"current": {"start": "1969-12-31T00:00:00Z", "end": "1970-01-02T00:00:00Z"}},
        {"current": {"start": "9000-01-01T00:00:00Z", "end": "9000-01-01T00:00:01+00:00"}},
        # A current window at the span's start: its default baseline reaches before 1970.
        {"current": {"start": "1970-01-02T00:00:00Z", "end": "1970-01-03T00:00:00Z"}},
    ],
)
def test_drift_windows_outside_the_monitored_span_are_422(app: App, body: dict[str, Any]) -> None:
    response = app.client.post(f"{DRIFT}/check", json=body, headers=app.operator)
    assert error_of(response) == (422, "VALIDATION_ERROR")
    assert "1970-01-01" in response.json()["error"]["message"]


def test_drift_windows_at_the_span_edges_are_accepted(app: App) -> None:
    body = {
        "baseline": {"start": "1970-01-01T00:00:00Z", "end": "1970-01-02T00:00:00+00:00"},
        "current": {"start": "8999-12-31T00:00:00Z", "end": "8999-12-31T20:00:00-04:00"},
    }
    response = app.client.post(f"{DRIFT}/check", json=body, headers=app.operator)
    assert response.status_code == 201, response.text
    drift = response.json()["drift"]
    assert drift["severity"] == "none"
    assert drift["current"]["end"].startswith("9000-01-01T00:00:00")  # stored in UTC


def test_drift_check_of_an_unknown_version_is_404(app: App) -> None:
    """A typo in `version` must not read as "no drift": 404 MODEL_VERSION_NOT_FOUND, nothing stored."""
    response = app.client.post(f"{DRIFT}/check", json={"version": "nope@1"}, headers=app.operator)
    assert error_of(response) == (404, "MODEL_VERSION_NOT_FOUND")
    assert response.json()["error"]["details"] == {"field": "version", "version": "nope@1"}
    assert app.client.get(DRIFT, headers=app.operator).json()["checks"] == []
    known = app.client.post(f"{DRIFT}/check", json={"version": app.production()}, headers=app.operator)
    assert known.status_code == 201, known.text


# --- real detections on a degraded camera -------------------------------------------------------


def degraded(rgb: np.ndarray, rng: np.random.Generator) -> bytes:
    """A dark, noisy, blurred frame of the same scene: what a failing camera sends."""
    dark = rgb.astype(np.float32) * 0.35 + rng.normal(0, 18, rgb.shape)
    image = Image.fromarray(np.clip(dark, 0, 255).astype(np.uint8)).resize((256, 256)).resize((512, 512))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=35)
    return out.getvalue()


def clean(rgb: np.ndarray, rng: np.random.Generator) -> bytes:
    """The scene with small natural variation (exposure, sensor noise)."""
    lit = rgb.astype(np.float32) * rng.uniform(0.95, 1.05) + rng.normal(0, 2, rgb.shape)
    out = io.BytesIO()
    Image.fromarray(np.clip(lit, 0, 255).astype(np.uint8)).save(out, format="JPEG", quality=90)
    return out.getvalue()


def test_real_detections_on_a_degraded_camera_drift(
    tmp_path: Path, model_dir: Path, astronaut_rgb: np.ndarray
) -> None:
    rng = np.random.default_rng(23)
    with _app(tmp_path, model_dir) as app:
        key = {"X-API-Key": app.container.keys.create("camera").secret}

        def send(frames: int, make: Any) -> None:
            for _ in range(frames):
                files = {"image": ("f.jpg", make(astronaut_rgb, rng), "image/jpeg")}
                response = app.client.post(DETECT, files=files, headers=key)
                assert response.status_code == 200, response.text

        start = utcnow()
        send(40, clean)
        first = utcnow()
        send(40, clean)
        middle = utcnow()
        send(40, degraded)
        end = utcnow() + timedelta(seconds=1)
        same = app.client.post(
            f"{DRIFT}/check",
            json={"baseline": window(start, first), "current": window(first, middle), "min_samples": 30},
            headers=app.operator,
        )
        assert same.status_code == 201, same.text
        # The same camera twice: no alert. (PSI alone of 40 against 40 near-identical values can
        # exceed 0.25 by chance; the KS test says there is no evidence of a change.)
        assert same.json()["drift"]["alerted"] is False
        assert same.json()["drift"]["severity"] in ("none", "low")
        response = app.client.post(
            f"{DRIFT}/check",
            json={"baseline": window(start, first), "current": window(middle, end), "min_samples": 30},
            headers=app.operator,
        )
        assert response.status_code == 201, response.text
        check = response.json()["drift"]
        quality = check["features"]["quality"]
        # A degraded frame may lose its face (no detection, no quality): most still have one.
        assert quality["n_baseline"] == 40 and 30 <= quality["n_current"] <= 40
        assert quality["current_mean"] < quality["baseline_mean"]
        assert check["alerted"] is True and check["severity"] in ("high", "critical")
        assert check["features"]["width"]["psi"] == pytest.approx(0.0)  # same size: no covariate change there


def test_a_check_without_a_version_watches_production_not_a_canary_beside_it(app: App) -> None:
    """A canary's different scores next to a steady production version are a model change, not
    drift of the data: a check without ``version`` compares the production version alone."""
    rng = np.random.default_rng(5)
    production = app.production()
    now = utcnow()
    base_start, current_start = now - timedelta(days=2), now - timedelta(hours=1)
    add_rows(app, production, base_start, rng.beta(8, 2, 800), rng.normal(0.70, 0.10, 800))
    add_rows(app, production, current_start, rng.beta(8, 2, 400), rng.normal(0.70, 0.10, 400))
    add_rows(app, "canary-model@1", current_start, rng.beta(3, 5, 400), rng.normal(0.40, 0.10, 400))
    body = {
        "baseline": window(base_start, base_start + timedelta(hours=1)),
        "current": window(current_start, now),
    }
    response = app.client.post(f"{DRIFT}/check", json=body, headers=app.operator)
    assert response.status_code == 201, response.text
    check = response.json()["drift"]
    assert check["model_version"] == production
    assert check["features"]["confidence"]["n_current"] == 400
    assert check["alerted"] is False
