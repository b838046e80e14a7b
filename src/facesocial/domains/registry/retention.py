"""Retention of ``model_registry.model_inference_results`` (document 002: 90 days).

Rows older than ``registry.inference_retention_days`` go in batches (each its own short
transaction, so a large backlog never holds one long lock), except a counting video's row: its
detections, tracks and events reference it and it goes with the video (counting retention).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select

from facesocial.store.db import Database
from facesocial.store.tables_registry import ModelInferenceResult
from facesocial.store.types import utcnow

# Rows deleted per transaction.
_BATCH = 5_000


def purge_inferences(database: Database, days: int, *, now: datetime | None = None) -> int:
    """Delete inference rows older than ``days`` days (not counting videos'); returns how many."""
    # Imported here: the counting job module pulls in the person detectors (ONNX Runtime).
    from facesocial.domains.counting.tasks import SERVICE as COUNTING_SERVICE

    cutoff = (now or utcnow()) - timedelta(days=days)
    removed = 0
    while True:
        with database.session() as session:
            ids = list(
                session.scalars(
                    select(ModelInferenceResult.id)
                    .where(
                        ModelInferenceResult.input_timestamp < cutoff,
                        (ModelInferenceResult.service != COUNTING_SERVICE)
                        | ModelInferenceResult.service.is_(None),
                    )
                    .limit(_BATCH)
                )
            )
            if ids:
                session.execute(delete(ModelInferenceResult).where(ModelInferenceResult.id.in_(ids)))
        removed += len(ids)
        if len(ids) < _BATCH:
            return removed
