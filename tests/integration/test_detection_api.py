"""Black-box HTTP tests of /api/v1/face-detection/detect and the audit trail."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from facesocial.store.tables import AiOperationLog, DetectedFace, DetectionRequest
from tests.integration.conftest import Api

pytestmark = pytest.mark.integration
URL = "/api/v1/face-detection/detect"


def test_detect_returns_faces_and_stores_rows(api: Api, astronaut_jpeg: bytes) -> None:
    response = api.post(
        URL, files={"image": ("a.jpg", astronaut_jpeg, "image/jpeg")}, data={"return_landmarks": "true"}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["success"] and body["faces_detected"] == 1
    face = body["faces"][0]
    assert set(face["bbox"]) == {"x", "y", "width", "height"}
    assert len(face["landmarks"]) == 5 and 0 < face["quality"]["score"] <= 1
    assert body["model"]["detector"]["name"] == api.container.pipeline.detector.model.name
    assert body["model"]["detector"]["version"]
    with api.container.database.session() as session:
        row = session.scalar(
            select(DetectionRequest).where(DetectionRequest.request_id == body["request_id"])
        )
        assert row is not None and row.status == "completed" and row.faces_detected == 1
        stored = session.scalars(
            select(DetectedFace).where(DetectedFace.detection_request_id == row.id)
        ).all()
        assert [f.bbox_width for f in stored] == [face["bbox"]["width"]]
        # Newest last: without an ORDER BY, PostgreSQL returns rows in no particular order.
        audit = session.scalars(
            select(AiOperationLog)
            .where(AiOperationLog.operation_type == "detect")
            .order_by(AiOperationLog.created_at)
        ).all()
        assert (
            audit and audit[-1].service_name == "face_detection" and audit[-1].operation_result == "success"
        )


def test_detect_parameters(api: Api, astronaut_jpeg: bytes, three_astronauts_jpeg: bytes) -> None:
    files = {"image": ("a.jpg", three_astronauts_jpeg, "image/jpeg")}
    assert api.post(URL, files=files).json()["faces_detected"] == 3
    assert api.post(URL, files=files, data={"max_faces": "2"}).json()["faces_detected"] == 2
    assert api.post(URL, files=files, data={"min_face_size": "400"}).json()["faces_detected"] == 0
    no_landmarks = api.post(
        URL, files={"image": ("a.jpg", astronaut_jpeg, "image/jpeg")}, data={"return_landmarks": "false"}
    ).json()
    assert "landmarks" not in no_landmarks["faces"][0]
    for value in ("1.5", "0.1", "0"):  # below 0.2 costs a second look per non-face
        bad = api.post(URL, files=files, data={"detection_confidence": value})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "VALIDATION_ERROR", value


def test_failed_detection_is_recorded(api: Api) -> None:
    response = api.post(URL, files={"image": ("x.jpg", b"plain text, not a jpeg", "image/jpeg")})
    assert response.status_code == 415 and response.json()["error"]["code"] == "NOT_AN_IMAGE"
    with api.container.database.session() as session:
        failed = session.scalars(select(DetectionRequest).where(DetectionRequest.status == "failed")).all()
        assert failed and failed[-1].error_message.startswith("NOT_AN_IMAGE")
        audit = session.scalars(
            select(AiOperationLog).where(AiOperationLog.error_code == "NOT_AN_IMAGE")
        ).all()
        assert audit and audit[-1].operation_result == "error"
