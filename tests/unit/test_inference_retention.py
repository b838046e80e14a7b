"""Retention of model_inference_results: old rows go in batches, new ones and counting videos'
rows (their detections, tracks and events reference them) stay."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from facesocial.domains.counting.tasks import SERVICE as COUNTING
from facesocial.domains.registry import retention
from facesocial.domains.registry.sync import sync_slots
from facesocial.store import migrate
from facesocial.store.db import Database
from facesocial.store.tables_registry import ModelInferenceResult
from facesocial.store.types import utcnow


@pytest.fixture
def database(tmp_path: Path) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'retention.db'}")
    migrate.upgrade(db)
    sync_slots(db, tmp_path / "no-models", {})
    return db


def _row(inference_id: str, age_days: float, service: str | None) -> ModelInferenceResult:
    return ModelInferenceResult(
        inference_id=inference_id,
        model_id="face_detection",
        model_version="dlib_hog@1",
        service=service,
        input_timestamp=utcnow() - timedelta(days=age_days),
        inference_results={},
    )


def test_old_rows_go_in_batches_new_and_counting_rows_stay(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retention, "_BATCH", 3)  # several batches, the last one partial
    with database.session() as session:
        for i in range(7):
            session.add(_row(f"old-{i}", 91, "face_detection"))
        session.add(_row("old-none", 120, None))
        session.add(_row("old-video", 200, COUNTING))
        session.add(_row("new", 89, "face_detection"))
    assert retention.purge_inferences(database, 90) == 8
    with database.session(readonly=True) as session:
        kept = set(session.scalars(select(ModelInferenceResult.inference_id)))
    assert kept == {"old-video", "new"}
    assert retention.purge_inferences(database, 90) == 0
