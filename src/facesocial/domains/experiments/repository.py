"""SQL of the A/B experiments (schema ``model_registry``): experiments, the inference rows of
their arms, feedback, results, conclusions and comparisons. Every method runs in the caller's
session (one transaction per use case, opened by the service)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from facesocial.store.tables_registry import (
    AbAssignment,
    AbConclusion,
    AbExperiment,
    AbFeedback,
    AbResult,
    ModelComparisonMetric,
    ModelInferenceResult,
    ModelVersion,
    RegisteredModel,
)

# The newest rows of an arm read for the mean tests: enough for any effect worth deploying on,
# and a bound on the memory of one results call (two floats per row).
MAX_ROWS_PER_ARM = 200_000


@dataclass(frozen=True, slots=True)
class ArmSample:
    """The observations of one arm. ``latency_ms``: processing time per inference;
    ``confidence``: the mean of each inference's confidence scores (inferences without scores
    are left out); ``correct``/``feedback``: outcomes reported for the arm's inferences."""

    inferences: int
    subjects: int
    latency_ms: list[float]
    confidence: list[float]
    correct: int
    feedback: int


def _row_confidence(scores: Any) -> float | None:
    if not isinstance(scores, list):
        return None
    values = [float(v) for v in scores if isinstance(v, int | float) and not isinstance(v, bool)]
    return sum(values) / len(values) if values else None


class ExperimentRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # --- registry facts ---------------------------------------------------------------------

    def slot(self, model_id: str, *, lock: bool = False) -> RegisteredModel | None:
        """The registered model (slot); ``lock``: hold its row until the transaction ends (on
        PostgreSQL; SQLite transactions already hold the database's write lock), which serialises
        starts on one slot."""
        query = select(RegisteredModel).where(RegisteredModel.model_id == model_id)
        if lock:
            query = query.with_for_update()
        return self.session.scalar(query)

    def version(self, model_id: str, tag: str) -> ModelVersion | None:
        return self.session.scalar(
            select(ModelVersion).where(ModelVersion.model_id == model_id, ModelVersion.version_number == tag)
        )

    # --- experiments ------------------------------------------------------------------------

    def get(self, experiment_id: str, *, lock: bool = False, share: bool = False) -> AbExperiment | None:
        """The experiment. ``lock``: hold its row FOR UPDATE (start, stop); ``share``: FOR SHARE
        (feedback: many at once, but never beside a stop). Either re-reads the row's columns
        (``populate_existing``): an earlier unlocked read in this session must not leave the
        identity map's stale status in place (two concurrent starts of one draft)."""
        query = select(AbExperiment).where(AbExperiment.experiment_id == experiment_id)
        if lock or share:
            query = query.with_for_update(read=share and not lock).execution_options(populate_existing=True)
        return self.session.scalar(query)

    def running_on(self, model_id: str) -> AbExperiment | None:
        return self.session.scalar(
            select(AbExperiment).where(
                AbExperiment.model_id == model_id, AbExperiment.experiment_status == "running"
            )
        )

    def running(self) -> Sequence[AbExperiment]:
        """Every running experiment (at most one per slot)."""
        return self.session.scalars(
            select(AbExperiment).where(AbExperiment.experiment_status == "running")
        ).all()

    def page(
        self, *, status: str | None, model_id: str | None, limit: int, offset: int
    ) -> tuple[Sequence[AbExperiment], int]:
        """Experiments newest first, filtered, and the filtered total."""
        query = select(AbExperiment)
        if status is not None:
            query = query.where(AbExperiment.experiment_status == status)
        if model_id is not None:
            query = query.where(AbExperiment.model_id == model_id)
        total = int(self.session.scalar(select(func.count()).select_from(query.subquery())) or 0)
        rows = self.session.scalars(
            query.order_by(AbExperiment.created_at.desc(), AbExperiment.id).limit(limit).offset(offset)
        ).all()
        return rows, total

    def add(self, row: Any) -> None:
        self.session.add(row)
        self.session.flush()

    # --- observations -----------------------------------------------------------------------

    def arm_sample(self, experiment_id: str, arm: str, until: datetime | None = None) -> ArmSample:
        """Counts and values of one arm (the newest :data:`MAX_ROWS_PER_ARM` inferences for the
        means). ``until``: only inferences made and feedback given up to then (a finished
        experiment's end: its figures stay those of the stop)."""
        in_arm = [ModelInferenceResult.experiment_id == experiment_id, ModelInferenceResult.arm == arm]
        feedback_in_arm = [
            AbFeedback.experiment_id == experiment_id,
            AbFeedback.arm == arm,
            AbFeedback.correct.is_not(None),
        ]
        if until is not None:
            in_arm.append(ModelInferenceResult.input_timestamp <= until)
            feedback_in_arm.append(AbFeedback.created_at <= until)
        inferences = int(
            self.session.scalar(select(func.count()).select_from(ModelInferenceResult).where(*in_arm)) or 0
        )
        subjects = int(
            self.session.scalar(
                select(func.count())
                .select_from(AbAssignment)
                .where(AbAssignment.experiment_id == experiment_id, AbAssignment.assigned_group == arm)
            )
            or 0
        )
        rows = self.session.execute(
            select(ModelInferenceResult.processing_time_ms, ModelInferenceResult.confidence_scores)
            .where(*in_arm)
            .order_by(ModelInferenceResult.input_timestamp.desc())
            .limit(MAX_ROWS_PER_ARM)
        ).all()
        latency = [float(ms) for ms, _scores in rows if ms is not None]
        confidence = [c for _ms, scores in rows if (c := _row_confidence(scores)) is not None]
        outcomes = self.session.execute(
            select(AbFeedback.correct, func.count()).where(*feedback_in_arm).group_by(AbFeedback.correct)
        ).all()
        by_outcome = {bool(correct): int(n) for correct, n in outcomes}
        return ArmSample(
            inferences=inferences,
            subjects=subjects,
            latency_ms=latency,
            confidence=confidence,
            correct=by_outcome.get(True, 0),
            feedback=by_outcome.get(True, 0) + by_outcome.get(False, 0),
        )

    # --- feedback ---------------------------------------------------------------------------

    def inferences(self, inference_ids: Sequence[str]) -> dict[str, ModelInferenceResult]:
        rows = self.session.scalars(
            select(ModelInferenceResult).where(ModelInferenceResult.inference_id.in_(list(inference_ids)))
        ).all()
        return {row.inference_id: row for row in rows}

    def feedback_of(self, inference_ids: Sequence[str]) -> dict[str, AbFeedback]:
        rows = self.session.scalars(
            select(AbFeedback)
            .where(AbFeedback.inference_id.in_(list(inference_ids)))
            .execution_options(populate_existing=True)
        ).all()
        return {row.inference_id: row for row in rows}

    def _insert(self, table: Any) -> postgresql.Insert | sqlite.Insert:
        """INSERT for this session's database with ON CONFLICT support (PostgreSQL or SQLite)."""
        dialect = self.session.get_bind().dialect.name
        return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)

    def insert_feedback(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert outcomes, skipping inferences that already have one (ON CONFLICT (inference_id)
        DO NOTHING): concurrent requests on one inference never fail; the caller reads back what
        is stored (:meth:`feedback_of`) to tell its own rows from another request's."""
        if rows:
            statement = self._insert(AbFeedback).on_conflict_do_nothing(index_elements=["inference_id"])
            # One order for every request: two requests inserting overlapping ids in opposite
            # orders would otherwise wait on each other's unique-index entries (a deadlock).
            ordered = sorted((dict(r) for r in rows), key=lambda r: str(r["inference_id"]))
            self.session.execute(statement, ordered)

    def ensure_comparison(self, comparison_id: str, experiment_id: str) -> ModelComparisonMetric:
        """The comparison row, created when missing (ON CONFLICT (comparison_id) DO NOTHING, then
        read): concurrent first results calls of one experiment share one row."""
        statement = self._insert(ModelComparisonMetric).on_conflict_do_nothing(
            index_elements=["comparison_id"]
        )
        self.session.execute(
            statement,
            [{"id": uuid.uuid4(), "comparison_id": comparison_id, "experiment_id": experiment_id}],
        )
        row = self.session.scalar(
            select(ModelComparisonMetric)
            .where(ModelComparisonMetric.comparison_id == comparison_id)
            .execution_options(populate_existing=True)
        )
        assert row is not None  # inserted above or by a concurrent call that committed
        return row

    # --- results ----------------------------------------------------------------------------

    def comparison(self, comparison_id: str) -> ModelComparisonMetric | None:
        return self.session.scalar(
            select(ModelComparisonMetric).where(ModelComparisonMetric.comparison_id == comparison_id)
        )

    def latest_conclusion(self, experiment_id: str) -> AbConclusion | None:
        return self.session.scalar(
            select(AbConclusion)
            .where(AbConclusion.experiment_id == experiment_id)
            .order_by(AbConclusion.created_at.desc(), AbConclusion.id)
            .limit(1)
        )

    def result_rows(self, experiment_id: str, limit: int = 100) -> Sequence[AbResult]:
        return self.session.scalars(
            select(AbResult)
            .where(AbResult.experiment_id == experiment_id)
            .order_by(AbResult.result_timestamp.desc(), AbResult.id)
            .limit(limit)
        ).all()


def new_experiment_id() -> str:
    return f"exp_{uuid.uuid4().hex}"
