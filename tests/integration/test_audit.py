"""Usage accounting per call, and the daily performance roll-up, on both profiles."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from facesocial.services.rollup import rollup_day
from facesocial.store.tables import PerformanceMetric, UsageLog
from tests.integration.conftest import Api

pytestmark = pytest.mark.integration


def test_every_call_is_accounted_and_rolled_up(api: Api, astronaut_jpeg: bytes) -> None:
    with api.container.database.session() as session:
        before = int(session.scalar(select(func.count()).select_from(UsageLog)) or 0)
    files = {"image": ("a.jpg", astronaut_jpeg, "image/jpeg")}
    assert api.post("/api/v1/face-detection/detect", files=files).status_code == 200
    assert (
        api.post(
            "/api/v1/face-detection/detect", files={"image": ("x.jpg", b"nope", "image/jpeg")}
        ).status_code
        == 415
    )
    with api.container.database.session() as session:
        rows = session.scalars(select(UsageLog).order_by(UsageLog.request_date)).all()
        assert len(rows) == before + 2
        assert [r.response_code for r in rows[-2:]] == [200, 415]
        assert all(r.api_key_id is not None and r.processing_time >= 0 for r in rows[-2:])
        assert rows[-1].request_path == "POST /api/v1/face-detection/detect"

    summaries = {s["service_name"]: s for s in rollup_day(api.container.database, datetime.now(UTC).date())}
    detection = summaries["face_detection"]
    assert detection["total_requests"] >= 2
    assert detection["failed_requests"] >= 1
    assert 0 < detection["error_rate"] < 1
    assert detection["p99_response_time_ms"] >= detection["p95_response_time_ms"] > 0
    again = rollup_day(api.container.database, datetime.now(UTC).date())  # idempotent
    with api.container.database.session() as session:
        stored = session.scalar(
            select(func.count())
            .select_from(PerformanceMetric)
            .where(PerformanceMetric.service_name == "face_detection")
        )
    assert stored == 1 and len(again) == len(summaries)
