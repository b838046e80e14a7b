"""Drift checks and performance roll-ups of model versions, from ``model_inference_results``.

Every inference of the platform is one row naming its slot (``model_id``), version, latency,
confidence scores and input features (``input_metadata``: image quality, size, embedding norm,
...). From these rows:

* a **drift check** compares a *current* window of one slot (optionally one version) with a
  *baseline* window, feature by feature (analytics/drift.py: PSI over 10 baseline-quantile bins
  and the two-sample KS test), and stores one ``model_drift_metrics`` row: per-feature figures,
  the worst severity, whether it alerts (PSI > 0.25 with KS p < 0.01), and 0..1 scores (largest
  KS D of the input features = ``data_drift_score``, of the confidences = ``model_drift_score``;
  ``concept_drift_score`` = the change of feedback accuracy between the windows, when both have
  at least :data:`MIN_FEEDBACK` outcomes and the change is significant, else 0 or None);
* a **performance roll-up** stores one ``model_performance_metrics`` row per version with
  inferences in a window: count, mean and 95th-percentile latency, served rate (inferences per
  second of the window), accuracy from feedback, and ``detection_rate`` (share of inferences
  that returned at least one confidence: for detectors, the share of inputs with a detection).

The upkeep (:meth:`ModelMonitoring.upkeep`, hourly through jobs/periodic.py) rolls up the
previous whole hour and checks every version with inferences in the last day against the seven
days before it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from facesocial import errors
from facesocial.analytics.drift import ALERT_PSI, KS_ALPHA, MIN_SAMPLES, drift_report
from facesocial.domains.experiments import views
from facesocial.domains.experiments.stats import two_proportion_ztest
from facesocial.store.db import Database
from facesocial.store.tables_registry import (
    AbFeedback,
    ModelDriftMetric,
    ModelInferenceResult,
    ModelPerformanceMetric,
    ModelVersion,
    RegisteredModel,
)
from facesocial.store.types import utcnow

log = logging.getLogger(__name__)

# Rows read per window at most (the newest): two windows of this size keep a check's memory and
# time bounded (a few MB, well under a second) whatever the traffic.
MAX_ROWS_PER_WINDOW = 50_000
# Feedback outcomes per window below which accuracy is not compared (concept drift unknown).
MIN_FEEDBACK = 30
CURRENT_WINDOW = timedelta(days=1)
BASELINE_WINDOW = timedelta(days=7)
OUTPUT_FEATURES = ("confidence",)
# The span a window may cover, in UTC: no inference record lies outside it, and window arithmetic
# (the default baseline = 7 days before the current window) and the stored TIMESTAMPTZ columns
# stay far from datetime's year 1..9999 limits, which raise OverflowError (a 500) instead.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def _in_span(moment: datetime, what: str) -> datetime:
    """``moment`` in UTC; 422 VALIDATION_ERROR outside [:data:`EARLIEST`, :data:`LATEST`]."""
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00+14:00 is before year 1 in UTC
        utc = None
    if utc is None or not EARLIEST <= utc <= LATEST:
        raise errors.ValidationFailedError(
            f"The {what} must lie between {EARLIEST.isoformat()} and {LATEST.isoformat()}",
            field=what,
        )
    return utc


@dataclass(frozen=True, slots=True)
class Window:
    """A half-open time interval ``[start, end)``: timezone-aware, stored in UTC, within
    :data:`EARLIEST` .. :data:`LATEST` (else 422 VALIDATION_ERROR). ``name`` words the errors."""

    start: datetime
    end: datetime
    name: str = field(default="window", compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", _in_span(self.start, f"{self.name}.start"))
        object.__setattr__(self, "end", _in_span(self.end, f"{self.name}.end"))
        if self.end <= self.start:
            raise errors.ValidationFailedError(
                f"{self.name}.end must come after {self.name}.start", field=self.name
            )

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


def features_of(rows: Sequence[tuple[Any, Any]]) -> dict[str, list[float]]:
    """Per feature, the values of ``(confidence_scores, input_metadata)`` rows: ``confidence`` =
    every confidence score of every row; one feature per numeric ``input_metadata`` key."""
    out: dict[str, list[float]] = {"confidence": []}
    for scores, metadata in rows:
        if isinstance(scores, list):
            out["confidence"].extend(
                float(v) for v in scores if isinstance(v, int | float) and not isinstance(v, bool)
            )
        if isinstance(metadata, dict):
            for name, value in metadata.items():
                if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
                    out.setdefault(str(name)[:64], []).append(float(value))
    return out


class ModelMonitoring:
    def __init__(self, database: Database) -> None:
        self.database = database

    # --- reading the inference records --------------------------------------------------------

    @staticmethod
    def _require_slot(session: Session, model_id: str) -> None:
        found = session.scalar(select(RegisteredModel.id).where(RegisteredModel.model_id == model_id))
        if found is None:
            raise errors.ModelNotFoundError(f"No model slot {model_id!r}", model_id=model_id)

    @staticmethod
    def _require_version(session: Session, model_id: str, version: str) -> None:
        found = session.scalar(
            select(ModelVersion.id).where(
                ModelVersion.model_id == model_id, ModelVersion.version_number == version
            )
        )
        if found is None:
            raise errors.ModelVersionNotFoundError(
                f"{model_id} has no version {version!r}", field="version", version=version
            )

    @staticmethod
    def _rows(session: Session, model_id: str, version: str | None, window: Window) -> Sequence[Any]:
        query = select(ModelInferenceResult.confidence_scores, ModelInferenceResult.input_metadata).where(
            ModelInferenceResult.model_id == model_id,
            ModelInferenceResult.input_timestamp >= window.start,
            ModelInferenceResult.input_timestamp < window.end,
        )
        if version is not None:
            query = query.where(ModelInferenceResult.model_version == version)
        return session.execute(
            query.order_by(ModelInferenceResult.input_timestamp.desc()).limit(MAX_ROWS_PER_WINDOW)
        ).all()

    @staticmethod
    def _feedback(session: Session, model_id: str, version: str | None, window: Window) -> tuple[int, int]:
        """(correct, total) outcomes reported for inferences made in ``window``."""
        query = (
            select(AbFeedback.correct, func.count())
            .join(ModelInferenceResult, ModelInferenceResult.inference_id == AbFeedback.inference_id)
            .where(
                ModelInferenceResult.model_id == model_id,
                ModelInferenceResult.input_timestamp >= window.start,
                ModelInferenceResult.input_timestamp < window.end,
                AbFeedback.correct.is_not(None),
            )
            .group_by(AbFeedback.correct)
        )
        if version is not None:
            query = query.where(ModelInferenceResult.model_version == version)
        counts = {bool(c): int(n) for c, n in session.execute(query).all()}
        return counts.get(True, 0), counts.get(True, 0) + counts.get(False, 0)

    # --- drift --------------------------------------------------------------------------------

    def check_drift(
        self,
        model_id: str,
        *,
        baseline: Window,
        current: Window,
        version: str | None = None,
        features: Sequence[str] | None = None,
        min_samples: int = MIN_SAMPLES,
    ) -> dict[str, Any]:
        """Compare ``current`` with ``baseline`` for one version of the slot and store the check.

        ``version``: default the slot's production version — mixing versions would report a
        model change (a canary, a promotion) as drift of the data; a slot without a production
        version is checked over all its inferences. ``features``: only these (default: every
        feature present in both windows).
        Raises ModelNotFoundError for an unknown slot, ModelVersionNotFoundError for a version
        the slot does not list (a typo must not read as "no drift"). Returns the stored check
        (views.drift)."""
        with self.database.session() as session:
            self._require_slot(session, model_id)
            if version is not None:
                self._require_version(session, model_id, version)
            else:
                version = session.scalar(
                    select(ModelVersion.version_number).where(
                        ModelVersion.model_id == model_id, ModelVersion.deployment_status == "production"
                    )
                )
            base = features_of(self._rows(session, model_id, version, baseline))
            cur = features_of(self._rows(session, model_id, version, current))
            if features is not None:
                keep = set(features)
                base = {k: v for k, v in base.items() if k in keep}
                cur = {k: v for k, v in cur.items() if k in keep}
            report = drift_report(base, cur, output_features=OUTPUT_FEATURES, min_samples=min_samples)
            described = report.features_dict()
            concept: float | None = None
            b_correct, b_total = self._feedback(session, model_id, version, baseline)
            c_correct, c_total = self._feedback(session, model_id, version, current)
            if b_total >= MIN_FEEDBACK and c_total >= MIN_FEEDBACK:
                test = two_proportion_ztest(b_correct, b_total, c_correct, c_total, confidence=1 - KS_ALPHA)
                concept = round(abs(test.difference), 4) if test.significant else 0.0
                described["accuracy"] = {
                    "baseline_rate": round(test.rate_a, 6),
                    "current_rate": round(test.rate_b, 6),
                    "n_baseline": b_total,
                    "n_current": c_total,
                    "p_value": test.as_dict()["p_value"],
                    "significant": test.significant,
                }
            row = ModelDriftMetric(
                model_id=model_id,
                model_version=version,
                drift_timestamp=utcnow(),
                baseline_start=baseline.start,
                baseline_end=baseline.end,
                window_start=current.start,
                window_end=current.end,
                data_drift_score=report.data_drift_score,
                model_drift_score=report.model_drift_score,
                concept_drift_score=concept,
                drift_type=report.drift_type,
                drift_severity=report.severity,
                drift_features=described,
                is_alerted=report.alerted,
                alert_threshold=ALERT_PSI,
            )
            session.add(row)
            session.flush()
            return views.drift(row)

    def drift_history(self, model_id: str, version: str | None, limit: int) -> list[dict[str, Any]]:
        """Stored checks of the slot (one version, or all), newest first."""
        with self.database.session(readonly=True) as session:
            self._require_slot(session, model_id)
            query = select(ModelDriftMetric).where(ModelDriftMetric.model_id == model_id)
            if version is not None:
                query = query.where(ModelDriftMetric.model_version == version)
            rows = session.scalars(
                query.order_by(ModelDriftMetric.drift_timestamp.desc(), ModelDriftMetric.id).limit(limit)
            ).all()
            return [views.drift(r) for r in rows]

    # --- performance --------------------------------------------------------------------------

    def rollup_performance(self, window: Window, model_id: str | None = None) -> list[dict[str, Any]]:
        """One stored ``model_performance_metrics`` row per (slot, version) with inferences in
        ``window`` (of one slot, or all). Raises ModelNotFoundError for an unknown slot."""
        with self.database.session() as session:
            if model_id is not None:
                self._require_slot(session, model_id)
            query = select(
                ModelInferenceResult.model_id,
                ModelInferenceResult.model_version,
                ModelInferenceResult.processing_time_ms,
                ModelInferenceResult.confidence_scores,
            ).where(
                ModelInferenceResult.input_timestamp >= window.start,
                ModelInferenceResult.input_timestamp < window.end,
            )
            if model_id is not None:
                query = query.where(ModelInferenceResult.model_id == model_id)
            groups: dict[tuple[str, str], tuple[list[float], list[bool]]] = {}
            for slot, version, ms, scores in session.execute(query).all():
                latencies, detected = groups.setdefault((slot, version), ([], []))
                if ms is not None:
                    latencies.append(float(ms))
                detected.append(isinstance(scores, list) and len(scores) > 0)
            out: list[dict[str, Any]] = []
            now = utcnow()
            for (slot, version), (latencies, detected) in sorted(groups.items()):
                correct, total = self._feedback(session, slot, version, window)
                row = ModelPerformanceMetric(
                    model_id=slot,
                    model_version=version,
                    metric_timestamp=now,
                    window_start=window.start,
                    window_end=window.end,
                    sample_size=len(detected),
                    accuracy_score=round(correct / total, 4) if total else None,
                    inference_latency_ms=round(float(np.mean(latencies))) if latencies else None,
                    latency_p95_ms=round(float(np.percentile(latencies, 95))) if latencies else None,
                    throughput_fps=round(min(len(detected) / window.seconds, 99_999_999.0), 2),
                    detection_rate=round(sum(detected) / len(detected), 4) if detected else None,
                )
                session.add(row)
                session.flush()
                out.append(views.performance(row))
            return out

    def performance_history(self, model_id: str, version: str | None, limit: int) -> list[dict[str, Any]]:
        """Stored roll-ups of the slot (one version, or all), newest first."""
        with self.database.session(readonly=True) as session:
            self._require_slot(session, model_id)
            query = select(ModelPerformanceMetric).where(ModelPerformanceMetric.model_id == model_id)
            if version is not None:
                query = query.where(ModelPerformanceMetric.model_version == version)
            rows = session.scalars(
                query.order_by(
                    ModelPerformanceMetric.metric_timestamp.desc(), ModelPerformanceMetric.id
                ).limit(limit)
            ).all()
            return [views.performance(r) for r in rows]

    # --- the scheduled upkeep -----------------------------------------------------------------

    def upkeep(self, now: datetime | None = None) -> dict[str, Any]:
        """Roll up the previous whole hour; check every (slot, version) with inferences in the last
        day against the seven days before it (skipped when either window has fewer than
        ``MIN_SAMPLES`` inferences). Returns counts and the alerted checks."""
        now = now or utcnow()
        hour_end = now.replace(minute=0, second=0, microsecond=0)
        rolled = self.rollup_performance(Window(hour_end - timedelta(hours=1), hour_end))
        current = Window(now - CURRENT_WINDOW, now)
        baseline = Window(current.start - BASELINE_WINDOW, current.start)
        with self.database.session(readonly=True) as session:
            counts = {
                (slot, version): int(n)
                for slot, version, n in session.execute(
                    select(ModelInferenceResult.model_id, ModelInferenceResult.model_version, func.count())
                    .where(
                        ModelInferenceResult.input_timestamp >= baseline.start,
                        ModelInferenceResult.input_timestamp < current.end,
                    )
                    .group_by(ModelInferenceResult.model_id, ModelInferenceResult.model_version)
                ).all()
            }
            recent = {
                (slot, version)
                for slot, version in session.execute(
                    select(ModelInferenceResult.model_id, ModelInferenceResult.model_version)
                    .where(ModelInferenceResult.input_timestamp >= current.start)
                    .distinct()
                ).all()
            }
        checked: list[str] = []
        alerts: list[dict[str, Any]] = []
        for slot, version in sorted(recent):
            if counts.get((slot, version), 0) < 2 * MIN_SAMPLES:
                continue
            check = self.check_drift(slot, baseline=baseline, current=current, version=version)
            checked.append(f"{slot}:{version}")
            if check["alerted"]:
                alerts.append({"model_id": slot, "version": version, "severity": check["severity"]})
                # The alert is the stored row (is_alerted); the log line is what an operator's
                # log-based alerting sees first.
                log.warning(
                    "drift alert: %s %s severity %s (%s drift) — GET /api/v1/models/%s/drift",
                    slot,
                    version,
                    check["severity"],
                    check["drift_type"],
                    slot,
                )
        return {"performance_rows": len(rolled), "drift_checks": checked, "alerts": alerts}
