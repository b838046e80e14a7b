"""SkyGate (AI-generated image detection) over HTTP on both profiles.

embedded: SQLite + in-process job threads. scaled: PostgreSQL (JSONB) + Redis, the jobs run by a
real ``facesocial worker`` subprocess (Celery on Redis). Real images of
../shared/data/ai_generated_images (FFHQ photos 512x471, StyleGAN2 faces, Stable Diffusion 2.1
faces 768x768) and the real methods; bad uploads made here.
"""

from __future__ import annotations

import base64
import io
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select, text, update

from facesocial.container import Container
from facesocial.forensics.ai_image import report
from facesocial.store.tables import (
    AiDetectionResult,
    AiMethodResult,
    AiReportImage,
    AiUpload,
    DetectionMetadata,
    Job,
)
from facesocial.store.types import utcnow
from tests.conftest import shared_path
from tests.integration.conftest import jobs_app

pytestmark = [pytest.mark.integration, pytest.mark.model]

REDIS_BROKER_DB = 13
BASE = "/api/v1/ai-detection"
# FFHQ photos (512x471 = 241k px) are analysed at once, SD 2.1 faces (768x768 = 590k px) as jobs.
SYNC_MAX_PIXELS = 400_000
_ROWS = (AiUpload, AiDetectionResult, AiMethodResult, DetectionMetadata, AiReportImage)


@dataclass
class Sky:
    client: TestClient
    container: Container
    key: str
    other_key: str
    operator_key: str
    profile: str

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"X-API-Key": key or self.key}

    def analyze(self, data: bytes, name: str = "image.jpg", key: str | None = None, **fields: str) -> Any:
        return self.client.post(
            f"{BASE}/analyze",
            files={"image": (name, data, "image/jpeg")},
            data=fields,
            headers=self.headers(key),
        )

    def get(self, path: str, key: str | None = None) -> Any:
        return self.client.get(path, headers=self.headers(key))

    def rows(self, upload_id: str | None = None) -> dict[str, int]:
        """Rows per SkyGate table (of one upload when given)."""
        pk = uuid.UUID(upload_id) if upload_id else None
        where = {
            AiUpload: AiUpload.upload_id == pk,
            AiDetectionResult: AiDetectionResult.upload_id == pk,
            AiMethodResult: AiMethodResult.result_id == pk,
            DetectionMetadata: DetectionMetadata.result_id == pk,
            AiReportImage: AiReportImage.upload_id == pk,
        }
        with self.container.database.session(readonly=True) as session:
            out = {}
            for table in _ROWS:
                query = select(func.count()).select_from(table)
                if pk is not None:
                    query = query.where(where[table])
                out[table.__tablename__] = int(session.scalar(query) or 0)
            return out


@pytest.fixture(scope="module", params=["embedded", "scaled"])
def sky(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, model_dir: Path
) -> Iterator[Sky]:
    with jobs_app(
        request.param,
        tmp_path_factory.mktemp("skygate"),
        model_dir,
        broker_db=REDIS_BROKER_DB,
        max_video_seconds=30.0,
    ) as app:
        # Read by the service on every request (the worker only runs jobs: it needs no threshold).
        app.container.settings.ai_detection.sync_max_pixels = SYNC_MAX_PIXELS
        operator = app.container.keys.create("operator", role="operator").secret
        yield Sky(app.client, app.container, app.key, app.other_key, operator, request.param)


def _images(folder: str, *parts: str, count: int = 1) -> list[bytes]:
    found = sorted(shared_path("ai_generated_images", folder, *parts).glob("*.jpg"))[:count]
    assert len(found) == count, f"fewer than {count} images in {folder}"
    return [p.read_bytes() for p in found]


def _photo(index: int = 0) -> bytes:
    return _images("faces_ffhq_vs_stylegan2", "real", count=index + 1)[index]


def _stylegan() -> bytes:
    return _images("faces_ffhq_vs_stylegan2", "stylegan2")[0]


def _sd21() -> bytes:
    return _images("faces_stable_diffusion_2_1", "sd21")[0]


def _decoded(response: Any, fmt: str) -> Image.Image:
    assert response.status_code == 200, response.text
    image = Image.open(io.BytesIO(response.content))
    image.load()
    assert image.format == fmt
    return image


def _wait(sky: Sky, result_id: str, timeout: float = 300.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = sky.get(f"{BASE}/results/{result_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["status"] in ("completed", "failed", "cancelled"):
            return body
        assert 0.0 <= body["progress_percentage"] <= 100.0
        time.sleep(0.3)
    raise AssertionError(f"result {result_id} did not complete")


# --- analyse now -------------------------------------------------------------------------------------


def test_a_photo_gets_the_whole_report_and_get_returns_the_same(sky: Sky) -> None:
    data = _photo()
    with Image.open(io.BytesIO(data)) as original:
        width, height = original.size
    response = sky.analyze(data, "ffhq.jpg")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["band"] in ("real", "uncertain", "ai_generated")
    assert body["is_ai_generated"] == (body["band"] == "ai_generated")
    assert 0.0 <= body["confidence_score"] <= 1.0
    assert body["status"] == "completed" and body["result_id"] == body["upload_id"]
    available = set(sky.container.ai_analyzer.available())
    assert {m["method"] for m in body["methods"]} == available
    order = [m["method"] for m in body["methods"]]
    assert order == [name for name in report.METHODS if name in order]
    for method in body["methods"]:
        assert method["score"] is None or 0.0 <= method["score"] <= 1.0
        assert method["version"] and method["processing_time_ms"] >= 0
    factors = body["contributing_factors"]
    assert factors, "some method had an opinion on a real photograph"
    assert {f["factor"] for f in factors} <= available
    if body["decided_by"] == "weighted_mean":
        assert sum(f["contribution"] for f in factors) == pytest.approx(body["confidence_score"], abs=2e-3)
    assert body["metadata"]["exif_data"] is not None
    assert body["file_info"]["dimensions"] == {"width": width, "height": height}
    assert body["model_versions"] and body["algorithm_version"]
    assert body["original_file_name"] == "ffhq.jpg" and body["file_type"] == "JPEG"
    assert body["mime_type"] == "image/jpeg" and body["file_size"] == len(data)
    assert body["processing_time_ms"] > 0
    for anomaly in body["visual_anomalies"]["detected_anomalies"]:
        box = anomaly["bounding_box"]
        assert box["x"] >= 0 and box["x"] + box["width"] <= width
        assert box["y"] >= 0 and box["y"] + box["height"] <= height
    # GET answers the very same report.
    stored = sky.get(body["result_url"])
    assert stored.status_code == 200
    assert stored.json() == body
    # The report's images are viewable, with the image's aspect.
    thumbnail = _decoded(sky.get(body["thumbnail_url"]), "JPEG")
    assert max(thumbnail.size) == 256
    assert thumbnail.width / thumbnail.height == pytest.approx(width / height, rel=0.02)
    if body["ela_url"] is not None:
        ela = _decoded(sky.get(body["ela_url"]), "PNG")
        assert ela.width / ela.height == pytest.approx(width / height, rel=0.02)
        assert sky.get(body["ela_url"]).headers["content-type"] == "image/png"
    heatmap_url = body["visual_anomalies"]["heatmap_url"]
    assert heatmap_url is not None
    heatmap = _decoded(sky.get(heatmap_url), "PNG")
    assert heatmap.width / heatmap.height == pytest.approx(width / height, rel=0.02)


def test_the_base64_json_form_and_a_methods_subset(sky: Sky) -> None:
    data = _stylegan()
    as_json = sky.client.post(
        f"{BASE}/analyze",
        json={"image": base64.b64encode(data).decode(), "methods": ["metadata", "frequency"]},
        headers=sky.headers(),
    )
    assert as_json.status_code == 200, as_json.text
    assert [m["method"] for m in as_json.json()["methods"]] == ["metadata", "frequency"]
    as_form = sky.analyze(data, methods="frequency,metadata")
    assert as_form.status_code == 200, as_form.text
    first, second = as_json.json(), as_form.json()
    assert first["result_id"] != second["result_id"]
    assert first["confidence_score"] == second["confidence_score"]
    assert first["methods"][1]["score"] == second["methods"][1]["score"]
    assert first["ela_url"] is None  # ELA did not run: no image, and its URL says so
    assert sky.get(f"{BASE}/results/{first['result_id']}/ela.png").status_code == 404


def _truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def test_bad_inputs_get_stable_codes_and_store_nothing(sky: Sky) -> None:
    before = sky.rows()
    photo = _photo()
    cases = [
        (sky.analyze(b"hello, not an image"), (415,), ("NOT_AN_IMAGE", "UNSUPPORTED_MEDIA_TYPE")),
        (sky.analyze(_truncated(photo)), (422,), ("IMAGE_TRUNCATED",)),
        (sky.analyze(b""), (400,), ("EMPTY_IMAGE",)),
        (
            sky.client.post(f"{BASE}/analyze", json={"image": "@@not base64@@"}, headers=sky.headers()),
            (422,),
            ("INVALID_BASE64",),
        ),
        (sky.analyze(photo, methods="ela,astrology"), (422,), ("VALIDATION_ERROR",)),
        (sky.analyze(photo, **{"async": "perhaps"}), (422,), ("VALIDATION_ERROR",)),
        (
            sky.client.post(f"{BASE}/analyze", content=b"x", headers=sky.headers()),
            (415,),
            ("UNSUPPORTED_MEDIA_TYPE",),
        ),
        (sky.get(f"{BASE}/uploads?page=0"), (422,), ("VALIDATION_ERROR",)),
        (sky.get(f"{BASE}/uploads?page_size=101"), (422,), ("VALIDATION_ERROR",)),
        (sky.get(f"{BASE}/uploads?page=99999999999999999999"), (422,), ("VALIDATION_ERROR",)),
        (sky.get(f"{BASE}/uploads?band=fake"), (422,), ("VALIDATION_ERROR",)),
        (sky.get(f"{BASE}/results/not-a-uuid"), (404,), ("AI_RESULT_NOT_FOUND",)),
        (sky.get(f"{BASE}/results/{uuid.uuid4()}"), (404,), ("AI_RESULT_NOT_FOUND",)),
        (sky.get(f"{BASE}/results/{'x' * 5000}/ela.png"), (404,), ("AI_RESULT_NOT_FOUND",)),
        (
            sky.client.delete(f"{BASE}/results/{uuid.uuid4()}", headers=sky.headers()),
            (404,),
            ("AI_RESULT_NOT_FOUND",),
        ),
    ]
    limits = sky.container.settings.limits
    saved = limits.max_image_bytes
    limits.max_image_bytes = len(photo) - 1
    try:
        cases.append((sky.analyze(photo), (413,), ("IMAGE_TOO_LARGE", "PAYLOAD_TOO_LARGE")))
    finally:
        limits.max_image_bytes = saved
    for response, statuses, codes in cases:
        assert response.status_code in statuses, (response.request.url, response.text)
        body = response.json()
        assert body["success"] is False and body["error"]["code"] in codes, body
    assert sky.rows() == before


# --- tenants -----------------------------------------------------------------------------------------


def test_another_tenant_learns_nothing_of_a_result(sky: Sky) -> None:
    body = sky.analyze(_photo()).json()
    rid = body["result_id"]
    paths = [
        f"{BASE}/results/{rid}",
        *(f"{BASE}/results/{rid}/{n}" for n in ("ela.png", "heatmap.png", "thumbnail.jpg")),
    ]
    for path in paths:
        foreign = sky.get(path, key=sky.other_key)
        assert foreign.status_code == 404, path
        assert foreign.json()["error"]["code"] == "AI_RESULT_NOT_FOUND"
    listed = sky.get(f"{BASE}/uploads?page_size=100", key=sky.other_key).json()
    assert rid not in {item["result_id"] for item in listed["items"]}
    erase = sky.client.delete(f"{BASE}/results/{rid}", headers=sky.headers(sky.other_key))
    assert erase.status_code == 404 and erase.json()["error"]["code"] == "AI_RESULT_NOT_FOUND"
    assert sky.rows(rid)["uploads"] == 1  # still there for its owner
    assert sky.get(f"{BASE}/results/{rid}").status_code == 200


def test_delete_erases_every_row_of_the_result(sky: Sky) -> None:
    rid = sky.analyze(_photo()).json()["result_id"]
    stored = sky.rows(rid)
    assert stored["uploads"] == stored["detection_results"] == stored["detection_metadata"] == 1
    assert stored["method_results"] == len(sky.container.ai_analyzer.available())
    assert stored["report_images"] >= 2  # thumbnail and heatmap at least
    before = sky.rows()
    gone = sky.client.delete(f"{BASE}/results/{rid}", headers=sky.headers())
    assert gone.status_code == 200 and gone.json()["deleted"] is True
    assert sky.rows(rid) == dict.fromkeys(stored, 0)
    after = sky.rows()
    assert {name: before[name] - after[name] for name in before} == stored
    for path in (f"{BASE}/results/{rid}", f"{BASE}/results/{rid}/thumbnail.jpg"):
        assert sky.get(path).status_code == 404
    assert sky.client.delete(f"{BASE}/results/{rid}", headers=sky.headers()).status_code == 404


# --- history -----------------------------------------------------------------------------------------


def test_uploads_are_paged_newest_first_with_a_total(sky: Sky) -> None:
    key = sky.container.keys.create(f"history {uuid.uuid4()}").secret
    ids = []
    for index in range(3):
        response = sky.analyze(_photo(index), f"p{index}.jpg", key=key, methods="metadata,frequency")
        assert response.status_code == 200, response.text
        ids.append(response.json()["result_id"])
    first = sky.get(f"{BASE}/uploads?page=1&page_size=2", key=key).json()
    second = sky.get(f"{BASE}/uploads?page=2&page_size=2", key=key).json()
    assert first["total"] == second["total"] == 3
    assert [i["result_id"] for i in first["items"] + second["items"]] == ids[::-1]
    assert first["items"][0]["original_file_name"] == "p2.jpg"
    assert all(i["status"] == "completed" and i["band"] for i in first["items"])
    band = first["items"][0]["band"]
    same = sky.get(f"{BASE}/uploads?band={band}&page_size=100", key=key).json()
    assert same["total"] == sum(1 for i in first["items"] + second["items"] if i["band"] == band)
    assert all(i["band"] == band for i in same["items"])
    assert sky.get(f"{BASE}/uploads?page=9&page_size=2", key=key).json()["items"] == []


# --- methods and weights -----------------------------------------------------------------------------


def test_methods_are_listed_for_any_caller(sky: Sky) -> None:
    body = sky.get(f"{BASE}/methods", key=sky.other_key).json()
    listed = {m["method_name"]: m for m in body["methods"]}
    assert list(listed) == list(report.METHODS)
    assert {n for n, m in listed.items() if m["available"]} == set(sky.container.ai_analyzer.available())
    assert all(0.0 <= m["weight"] <= 9.99 and m["description"] for m in listed.values())


def test_only_the_operator_changes_weights_and_the_next_analysis_uses_them(sky: Sky) -> None:
    data = _photo(1)
    baseline = sky.analyze(data).json()
    factor = baseline["contributing_factors"][0]["factor"]
    weight = next(
        m["weight"] for m in sky.get(f"{BASE}/methods").json()["methods"] if m["method_name"] == factor
    )
    change = [{"method_name": factor, "weight": 0}]
    refused = sky.client.put(f"{BASE}/methods", json=change, headers=sky.headers())
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "FORBIDDEN"
    put = lambda body: sky.client.put(f"{BASE}/methods", json=body, headers=sky.headers(sky.operator_key))  # noqa: E731
    unknown = put([{"method_name": factor, "weight": 0}, {"method_name": "astrology", "weight": 1}])
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "METHOD_NOT_FOUND"
    for bad in (
        [{"method_name": factor, "weight": 10}],
        [{"method_name": factor, "weight": -1}],
        [],
        {"x": 1},
    ):
        response = put(bad)
        assert response.status_code == 422 and response.json()["error"]["code"] == "VALIDATION_ERROR", bad
    # Nothing of the refused requests applied.
    assert sky.analyze(data).json()["contributing_factors"] == baseline["contributing_factors"]
    try:
        done = put(change)
        assert done.status_code == 200, done.text
        assert next(m for m in done.json()["methods"] if m["method_name"] == factor)["weight"] == 0.0
        after = sky.analyze(data).json()
        assert factor not in {f["factor"] for f in after["contributing_factors"]}
        assert factor in {m["method"] for m in after["methods"]}  # still run and reported
        inactive = put([{"method_name": factor, "weight": weight, "is_active": False}])
        assert inactive.status_code == 200
        assert factor not in {m["method"] for m in sky.analyze(data).json()["methods"]}
    finally:
        assert put([{"method_name": factor, "weight": weight, "is_active": True}]).status_code == 200
    assert sky.analyze(data).json()["contributing_factors"] == baseline["contributing_factors"]


# --- jobs --------------------------------------------------------------------------------------------


def test_a_large_image_runs_as_a_job_and_its_report_is_readable(sky: Sky) -> None:
    data = _sd21()
    response = sky.analyze(data, "sd21.jpg")
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["result_id"] and accepted["job_id"] and accepted["status"] == "pending"
    # The thumbnail exists at once; the report when the job is done.
    _decoded(sky.get(accepted["thumbnail_url"]), "JPEG")
    body = _wait(sky, accepted["result_id"])
    assert body["status"] == "completed", body
    assert body["band"] in ("real", "uncertain", "ai_generated")
    assert body["file_info"]["dimensions"] == {"width": 768, "height": 768}
    assert {m["method"] for m in body["methods"]} == set(sky.container.ai_analyzer.available())
    heatmap = _decoded(sky.get(body["visual_anomalies"]["heatmap_url"]), "PNG")
    assert heatmap.width == heatmap.height
    job = sky.get(f"/api/v1/jobs/{accepted['job_id']}").json()["job"]
    assert job["status"] == "completed" and job["kind"] == "ai_detection.image"
    assert job["result"]["result_id"] == accepted["result_id"]
    # The image itself is not kept: its spooled copy went with the job.
    assert not (sky.container.settings.resolved_spool_dir() / accepted["job_id"]).exists()
    with sky.container.database.session(readonly=True) as session:
        upload = session.get(AiUpload, uuid.UUID(accepted["result_id"]))
        assert upload is not None and upload.file_path is None and upload.is_processed
        if sky.profile == "scaled":  # the document is JSONB with document 003's structure
            kind = session.scalar(
                text(
                    "SELECT jsonb_typeof(document -> 'pixel_analysis' -> 'ela_results') "
                    "FROM ai_detection.detection_metadata WHERE result_id = :id"
                ),
                {"id": upload.upload_id},
            )
            assert kind == "object"
            paths = session.scalar(
                text(
                    "SELECT document #>> '{visual_anomalies,heatmap_path}' "
                    "FROM ai_detection.detection_metadata WHERE result_id = :id"
                ),
                {"id": upload.upload_id},
            )
            assert paths == body["visual_anomalies"]["heatmap_url"]


def test_async_flag_and_deleting_a_pending_analysis(sky: Sky) -> None:
    response = sky.analyze(_photo(), **{"async": "true"})
    assert response.status_code == 202, response.text
    accepted = response.json()
    gone = sky.client.delete(f"{BASE}/results/{accepted['result_id']}", headers=sky.headers())
    assert gone.status_code == 200
    assert sky.rows(accepted["result_id"]) == dict.fromkeys(sky.rows(accepted["result_id"]), 0)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = sky.get(f"/api/v1/jobs/{accepted['job_id']}").json()["job"]
        if job["status"] in ("completed", "failed", "cancelled"):
            break
        time.sleep(0.3)
    # Cancelled while queued, or (it had started) failed because its upload was erased.
    assert job["status"] in ("cancelled", "failed"), job
    assert sky.rows(accepted["result_id"])["uploads"] == 0
    assert not (sky.container.settings.resolved_spool_dir() / accepted["job_id"]).exists()
    with sky.container.database.session(readonly=True) as session:
        assert session.scalar(select(Job.status).where(Job.job_id == accepted["job_id"])) in (
            "cancelled",
            "failed",
        )


# --- concurrency and retention -----------------------------------------------------------------------


def test_concurrent_analyses_give_distinct_results(sky: Sky) -> None:
    images = [_photo(i) for i in range(4)]
    answers: list[Any] = [None] * len(images)

    def run(index: int) -> None:
        answers[index] = sky.analyze(images[index], f"c{index}.jpg")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(images))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert all(a is not None and a.status_code == 200 for a in answers), [a and a.text for a in answers]
    bodies = [a.json() for a in answers]
    assert len({b["result_id"] for b in bodies}) == len(images)
    for index, body in enumerate(bodies):
        stored = sky.get(body["result_url"]).json()
        assert stored["original_file_name"] == f"c{index}.jpg"
        assert stored["confidence_score"] == body["confidence_score"]


def test_retention_erases_old_analyses_only(sky: Sky) -> None:
    old = sky.analyze(_photo(), methods="metadata").json()["result_id"]
    new = sky.analyze(_photo(), methods="metadata").json()["result_id"]
    days = sky.container.settings.ai_detection.retention_days
    with sky.container.database.session() as session:
        session.execute(
            update(AiUpload)
            .where(AiUpload.upload_id == uuid.UUID(old))
            .values(upload_date=utcnow() - timedelta(days=days + 1))
        )
    assert sky.container.retention()["ai_detection_analyses"] >= 1
    assert sky.rows(old) == dict.fromkeys(sky.rows(old), 0)
    assert sky.get(f"{BASE}/results/{new}").status_code == 200
