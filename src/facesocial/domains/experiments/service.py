"""A/B experiments: create, start, stop, feedback on outcomes, and results with a conclusion.

An experiment splits one slot's traffic between a baseline and a challenger version (the
registry's router asks :func:`~facesocial.domains.experiments.assignment.choose_arm` per
request). Every inference it routes is a ``model_inference_results`` row naming the experiment
and the arm; callers report outcomes on their own inferences (feedback), which makes accuracy
measured, not guessed. Results compare the arms (stats.py) and recommend (conclusions.py).

Lifecycle: ``draft`` → (start) ``running`` → (stop) ``completed`` when the conclusion at stop is
decisive (deploy_challenger / keep_baseline), else ``stopped``. One experiment runs per slot.
Nothing deploys by itself: ``deploy_challenger`` is a recommendation for the operator (canary,
then promote, through /api/v1/models).
"""

from __future__ import annotations

import math
import secrets
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from facesocial import errors
from facesocial.domains.experiments import views
from facesocial.domains.experiments.conclusions import (
    METRICS,
    Conclusion,
    conclude,
    relative_improvement_percent,
)
from facesocial.domains.experiments.repository import ArmSample, ExperimentRepository, new_experiment_id
from facesocial.domains.experiments.stats import (
    MeanTest,
    ProportionTest,
    summarize,
    two_proportion_ztest,
    welch_ttest,
    wilson_interval,
)
from facesocial.domains.registry.galleries import require_gallery_coverage
from facesocial.store.db import Database
from facesocial.store.tables_registry import (
    ARMS,
    SPLIT_METHODS,
    AbConclusion,
    AbExperiment,
    AbResult,
    ModelVersion,
)
from facesocial.store.types import utcnow

MAX_FEEDBACK_ITEMS = 1000


@dataclass(frozen=True, slots=True)
class ExperimentSpec:
    """A new experiment. Ranges are checked by the API's body model and again here."""

    name: str
    model_id: str
    baseline_version: str
    challenger_version: str
    traffic_split_percent: float = 50.0  # 1..99: share of subjects on the challenger
    traffic_split_method: str = "random"  # random | user | session
    minimum_sample_size: int = 1000  # per arm, of the primary metric's observations
    confidence_level: float = 0.95  # 0.8..0.999
    success_metrics: tuple[str, ...] = ("accuracy", "latency_ms")  # ordered: the first is primary
    success_thresholds: Mapping[str, float] = field(default_factory=dict)  # equivalence margins
    duration_days: int = 7
    description: str | None = None


@dataclass(frozen=True, slots=True)
class FeedbackItem:
    """An outcome for one inference: ``correct`` (was the answer right?) and/or a numeric ``value``."""

    inference_id: str
    correct: bool | None = None
    value: float | None = None


def _clamp(value: float | None, bound: float) -> float | None:
    """Fit a figure into its NUMERIC column (an extreme ratio must not fail the insert)."""
    if value is None or not math.isfinite(value):
        return None
    return max(-bound, min(bound, value))


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


@dataclass(frozen=True, slots=True)
class ExperimentResults:
    samples: Mapping[str, ArmSample]
    tests: Mapping[str, ProportionTest | MeanTest]
    conclusion: Conclusion


def compute_results(
    experiment: AbExperiment, repo: ExperimentRepository, until: datetime | None = None
) -> ExperimentResults:
    """Both arms' observations (up to ``until``, when given), every metric's test
    (challenger − baseline), and the conclusion."""
    confidence = float(experiment.confidence_level)
    samples = {arm: repo.arm_sample(experiment.experiment_id, arm, until) for arm in ARMS}
    a, b = samples["baseline"], samples["challenger"]
    tests: dict[str, ProportionTest | MeanTest] = {
        "accuracy": two_proportion_ztest(a.correct, a.feedback, b.correct, b.feedback, confidence=confidence),
        "confidence": welch_ttest(a.confidence, b.confidence, confidence=confidence),
        "latency_ms": welch_ttest(a.latency_ms, b.latency_ms, confidence=confidence),
    }
    conclusion = conclude(
        tests,
        list(experiment.success_metrics or METRICS),
        experiment.minimum_sample_size,
        thresholds=experiment.success_thresholds or None,
    )
    return ExperimentResults(samples, tests, conclusion)


def _arm_metrics(sample: ArmSample, confidence: float) -> dict[str, Any]:
    accuracy: dict[str, Any] = {
        "n": sample.feedback,
        "correct": sample.correct,
        "rate": None,
        "confidence_interval": [None, None],
    }
    if sample.feedback:
        low, high = wilson_interval(sample.correct, sample.feedback, confidence)
        accuracy["rate"] = round(sample.correct / sample.feedback, 6)
        accuracy["confidence_interval"] = [round(low, 6), round(high, 6)]
    return {
        "accuracy": accuracy,
        "confidence": summarize(sample.confidence, confidence).as_dict(),
        "latency_ms": summarize(sample.latency_ms, confidence).as_dict(),
    }


class ExperimentService:
    """Use cases of /api/v1/experiments. ``on_change`` runs after a start or stop commits (the
    router's ``invalidate``: this process routes by the new state at once)."""

    def __init__(self, database: Database, on_change: Callable[[], None] | None = None) -> None:
        self.database = database
        self.on_change = on_change

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    @staticmethod
    def _get(repo: ExperimentRepository, experiment_id: str, *, lock: bool = False) -> AbExperiment:
        row = repo.get(experiment_id[:100], lock=lock)
        if row is None:
            raise errors.ExperimentNotFoundError(f"No experiment {experiment_id[:100]!r}")
        return row

    # --- lifecycle --------------------------------------------------------------------------

    def create(self, spec: ExperimentSpec, created_by: uuid.UUID | None = None) -> dict[str, Any]:
        """A draft experiment. Raises ModelNotFoundError (no such slot), ModelVersionNotFoundError
        (a version the slot does not list), InvalidExperimentError (ranges, one version twice)."""
        self._check(spec)
        with self.database.session() as session:
            repo = ExperimentRepository(session)
            if repo.slot(spec.model_id) is None:
                raise errors.ModelNotFoundError(f"No model slot {spec.model_id!r}", model_id=spec.model_id)
            for field_name, tag in (
                ("baseline_version", spec.baseline_version),
                ("challenger_version", spec.challenger_version),
            ):
                version = repo.version(spec.model_id, tag)
                if version is None:
                    raise errors.ModelVersionNotFoundError(
                        f"{spec.model_id} has no version {tag!r}", field=field_name, version=tag
                    )
                self._refuse_archived(version, field_name)
            row = AbExperiment(
                experiment_id=new_experiment_id(),
                experiment_name=spec.name,
                description=spec.description,
                model_id=spec.model_id,
                baseline_model_id=spec.model_id,
                baseline_version=spec.baseline_version,
                challenger_model_id=spec.model_id,
                challenger_version=spec.challenger_version,
                traffic_split_percent=spec.traffic_split_percent,
                traffic_split_method=spec.traffic_split_method,
                hash_salt=secrets.token_hex(16),
                experiment_duration_days=spec.duration_days,
                minimum_sample_size=spec.minimum_sample_size,
                confidence_level=spec.confidence_level,
                experiment_status="draft",
                success_metrics=list(spec.success_metrics),
                success_thresholds=dict(spec.success_thresholds),
                created_by=created_by,
            )
            repo.add(row)
            return views.experiment(row)

    @staticmethod
    def _refuse_archived(version: ModelVersion, field_name: str) -> None:
        """An archived version is retired: it serves no traffic, not even an experiment's share
        (docs/model-registry.md: un-archive first). 409 ILLEGAL_STAGE_TRANSITION, like canary,
        deploy and rollback of an archived version."""
        if version.deployment_status == "archived":
            raise errors.IllegalStageTransitionError(
                f"{version.version_number} is archived: move it to staging before it serves an arm",
                field=field_name,
                version=version.version_number,
                stage="archived",
            )

    @staticmethod
    def _check(spec: ExperimentSpec) -> None:
        problems: list[str] = []
        if spec.baseline_version == spec.challenger_version:
            problems.append("baseline_version and challenger_version must differ")
        if not 1 <= spec.traffic_split_percent <= 99:
            problems.append("traffic_split_percent must lie in 1..99")
        if spec.traffic_split_method not in SPLIT_METHODS:
            problems.append(f"traffic_split_method must be one of {', '.join(SPLIT_METHODS)}")
        if not 0.8 <= spec.confidence_level <= 0.999:
            problems.append("confidence_level must lie in 0.8..0.999")
        if spec.minimum_sample_size < 1:
            problems.append("minimum_sample_size must be at least 1")
        if not spec.success_metrics or len(set(spec.success_metrics)) != len(spec.success_metrics):
            problems.append("success_metrics must be a non-empty list without repeats")
        unknown = sorted(set(spec.success_metrics) - set(METRICS))
        if unknown:
            problems.append(f"unknown success_metrics {unknown}; known: {', '.join(METRICS)}")
        bad_thresholds = sorted(
            k
            for k, v in spec.success_thresholds.items()
            if k not in METRICS or not (math.isfinite(v) and v >= 0)
        )
        if bad_thresholds:
            problems.append(f"success_thresholds must map known metrics to margins >= 0: {bad_thresholds}")
        if problems:
            raise errors.InvalidExperimentError("; ".join(problems), problems=problems)

    def start(self, experiment_id: str, *, force: bool = False) -> dict[str, Any]:
        """draft → running. 409 INVALID_EXPERIMENT_TRANSITION (not a draft), 409 EXPERIMENT_CONFLICT
        (another runs on the slot), 409 MODEL_VERSION_NOT_INSTALLED (an arm cannot serve here),
        409 ILLEGAL_STAGE_TRANSITION (an arm was archived after the draft was created), 409
        GALLERY_NOT_MIGRATED (an embedding arm's collection lacks enrolled users: identify and
        verify routed to it would miss them; galleries.require_gallery_coverage), unless
        ``force``; a forced start names the missing users per arm in ``gallery_missing_users``."""
        with self.database.session() as session:
            repo = ExperimentRepository(session)
            row = self._get(repo, experiment_id)
            # The slot's row serialises starts on one slot (two starts cannot both find it free);
            # the locked re-read refreshes the status a concurrent start may have changed.
            repo.slot(row.model_id, lock=True)
            row = self._get(repo, experiment_id, lock=True)
            if row.experiment_status != "draft":
                raise errors.InvalidExperimentTransitionError(
                    f"Only a draft can start; this experiment is {row.experiment_status}",
                    status=row.experiment_status,
                )
            running = repo.running_on(row.model_id)
            if running is not None:
                raise errors.ExperimentConflictError(
                    f"{running.experiment_id} is already running on {row.model_id}",
                    experiment_id=running.experiment_id,
                )
            for field_name, tag in (
                ("baseline_version", row.baseline_version),
                ("challenger_version", row.challenger_version),
            ):
                version = repo.version(row.model_id, tag)
                if version is None or not version.is_installed:
                    raise errors.ModelVersionNotInstalledError(
                        f"{tag} is not installed on this server; `facesocial models pull` first", version=tag
                    )
                self._refuse_archived(version, field_name)
            missing = {
                arm: require_gallery_coverage(session, row.model_id, tag, force=force)
                for arm, tag in (("baseline", row.baseline_version), ("challenger", row.challenger_version))
            }
            row.experiment_status = "running"
            row.start_date = utcnow()
            session.flush()
            body = views.experiment(row)
            if any(missing.values()):
                body["gallery_missing_users"] = missing
        self._changed()
        return body

    def stop(self, experiment_id: str) -> dict[str, Any]:
        """running → completed (a decisive conclusion) or stopped (run_longer); the final results
        are stored. 409 INVALID_EXPERIMENT_TRANSITION when it is not running."""
        with self.database.session() as session:
            repo = ExperimentRepository(session)
            row = self._get(repo, experiment_id, lock=True)
            if row.experiment_status != "running":
                raise errors.InvalidExperimentTransitionError(
                    f"Only a running experiment can stop; this one is {row.experiment_status}",
                    status=row.experiment_status,
                )
            # The end is the cut-off of the final figures: /results of the finished experiment
            # recomputes with the same cut-off and shows the conclusion stored here.
            row.end_date = utcnow()
            results = compute_results(row, repo, until=row.end_date)
            decisive = results.conclusion.recommendation != "run_longer"
            row.experiment_status = "completed" if decisive else "stopped"
            session.flush()
            body = self._store_and_describe(session, row, results)
        self._changed()
        return body

    def expire(self, now: datetime | None = None) -> list[str]:
        """Stop every running experiment whose ``experiment_duration_days`` have passed since its
        start (run by the periodic model upkeep); returns their ids. One that another caller
        stopped meanwhile is skipped."""
        now = now or utcnow()
        with self.database.session(readonly=True) as session:
            due = [
                row.experiment_id
                for row in ExperimentRepository(session).running()
                if row.start_date is not None
                and row.experiment_duration_days
                and row.start_date + timedelta(days=row.experiment_duration_days) <= now
            ]
        stopped = []
        for experiment_id in due:
            try:
                self.stop(experiment_id)
            except errors.InvalidExperimentTransitionError:
                continue
            stopped.append(experiment_id)
        return stopped

    # --- reads ------------------------------------------------------------------------------

    def get(self, experiment_id: str) -> dict[str, Any]:
        with self.database.session(readonly=True) as session:
            repo = ExperimentRepository(session)
            row = self._get(repo, experiment_id)
            body = views.experiment(row)
            latest = repo.latest_conclusion(row.experiment_id)
            body["latest_conclusion"] = views.conclusion(latest) if latest is not None else None
            return body

    def page(self, page: int, page_size: int, status: str | None, model_id: str | None) -> dict[str, Any]:
        with self.database.session(readonly=True) as session:
            rows, total = ExperimentRepository(session).page(
                status=status, model_id=model_id, limit=page_size, offset=(page - 1) * page_size
            )
            return {
                "experiments": [views.experiment(r) for r in rows],
                "page": page,
                "page_size": page_size,
                "total": total,
            }

    def results(self, experiment_id: str) -> dict[str, Any]:
        """Per-arm figures, tests, conclusion; stored as ab_testing_results (one row per arm),
        an ab_testing_conclusions row and the experiment's model_comparison_metrics row.

        A finished (completed/stopped) experiment's results are final: its figures are those up
        to its end (feedback is refused after the stop), its conclusion is the one stored at the
        stop, ``final`` is true, and nothing is stored again."""
        with self.database.session() as session:
            repo = ExperimentRepository(session)
            row = self._get(repo, experiment_id)
            if row.experiment_status in ("completed", "stopped") and row.end_date is not None:
                return self._describe_final(repo, row)
            return self._store_and_describe(session, row, compute_results(row, repo))

    def _describe_final(self, repo: ExperimentRepository, row: AbExperiment) -> dict[str, Any]:
        results = compute_results(row, repo, until=row.end_date)
        body = self._describe(row, results, row.end_date or utcnow())
        stored = repo.latest_conclusion(row.experiment_id)
        if stored is not None:
            # The verdict given at the stop, whatever a recomputation would say.
            body["conclusion"].update(
                recommendation=stored.recommendation,
                reason=stored.conclusion_reason,
                winner_version=stored.winner_version,
                expected_improvement_percent=stored.expected_improvement_percent,
                risk=stored.risk_assessment,
            )
            body["conclusion"]["winner"] = {
                row.challenger_version: "challenger",
                row.baseline_version: "baseline",
            }.get(stored.winner_version or "")
        body["final"] = True
        return body

    def _describe(self, row: AbExperiment, results: ExperimentResults, at: datetime) -> dict[str, Any]:
        """The results body (not stored)."""
        confidence = float(row.confidence_level)
        conclusion = results.conclusion
        arms: dict[str, Any] = {}
        for arm in ARMS:
            sample = results.samples[arm]
            arms[arm] = {
                "version": row.challenger_version if arm == "challenger" else row.baseline_version,
                "sample_size": sample.inferences,
                "subjects": sample.subjects,
                "feedback": sample.feedback,
                "metrics": _arm_metrics(sample, confidence),
            }
        winner_version = {"challenger": row.challenger_version, "baseline": row.baseline_version}.get(
            conclusion.winner or ""
        )
        return {
            "experiment": views.experiment(row),
            "computed_at": at.isoformat(),
            "arms": arms,
            "tests": {name: test.as_dict() for name, test in results.tests.items()},
            "primary_metric": conclusion.primary_metric,
            "conclusion": {**conclusion.as_dict(), "winner_version": winner_version},
            "final": False,
        }

    def _store_and_describe(
        self, session: Session, row: AbExperiment, results: ExperimentResults
    ) -> dict[str, Any]:
        confidence = float(row.confidence_level)
        conclusion = results.conclusion
        primary = conclusion.primary_metric
        primary_test = results.tests.get(primary) if primary else None
        now = utcnow()
        for arm in ARMS:
            sample = results.samples[arm]
            metrics = _arm_metrics(sample, confidence)
            # The test's figures sit on the challenger's row: the baseline is the reference.
            shown = primary_test if arm == "challenger" else None
            session.add(
                AbResult(
                    experiment_id=row.experiment_id,
                    result_timestamp=now,
                    group_name=arm,
                    sample_size=sample.inferences,
                    accuracy_score=metrics["accuracy"]["rate"],
                    metrics=metrics,
                    is_statistically_significant=shown.significant if shown else None,
                    p_value=_finite(shown.p_value) if shown else None,
                    confidence_interval=(
                        {primary: shown.as_dict()["confidence_interval"]} if shown and primary else None
                    ),
                )
            )
        winner_version = {"challenger": row.challenger_version, "baseline": row.baseline_version}.get(
            conclusion.winner or ""
        )
        strategy = {"deploy_challenger": "canary", "keep_baseline": "none", "run_longer": "continue"}
        session.add(
            AbConclusion(
                experiment_id=row.experiment_id,
                winner_model_id=row.model_id if winner_version else None,
                winner_version=winner_version,
                conclusion_reason=conclusion.reason,
                recommendation=conclusion.recommendation,
                expected_improvement_percent=_clamp(conclusion.expected_improvement_percent, 999_999),
                confidence_level=confidence,
                risk_assessment=conclusion.risk,
                deployment_strategy=strategy[conclusion.recommendation],
            )
        )
        comparison = ExperimentRepository(session).ensure_comparison(row.experiment_id, row.experiment_id)
        accuracy, latency = results.tests["accuracy"], results.tests["latency_ms"]
        comparison.baseline_model_id = comparison.challenger_model_id = row.model_id
        comparison.baseline_version = row.baseline_version
        comparison.challenger_version = row.challenger_version
        comparison.accuracy_improvement = _clamp(accuracy.difference, 9999)
        comparison.latency_improvement_percent = _clamp(
            relative_improvement_percent("latency_ms", latency), 999_999
        )
        comparison.is_statistically_significant = primary_test.significant if primary_test else None
        comparison.p_value = _finite(primary_test.p_value) if primary_test else None
        comparison.confidence_interval = {
            name: t.as_dict()["confidence_interval"] for name, t in results.tests.items()
        }
        finished = row.experiment_status in ("completed", "stopped")
        comparison.comparison_status = "completed" if finished else "running"
        comparison.winner_model_id = row.model_id if winner_version else None
        comparison.winner_version = winner_version
        comparison.completed_at = row.end_date if finished else None
        session.flush()
        return self._describe(row, results, now)

    # --- feedback ---------------------------------------------------------------------------

    def feedback(
        self, experiment_id: str, items: Sequence[FeedbackItem], tenant_id: uuid.UUID
    ) -> dict[str, Any]:
        """Record outcomes of the caller's own inferences in this experiment (all or none).

        An inference that is unknown, another tenant's, or served outside this experiment →
        404 INFERENCE_NOT_FOUND (the same answer for all three). Repeating an outcome already
        recorded is accepted and reported as ``duplicate`` (idempotent); a different outcome for
        the same inference → 409 FEEDBACK_CONFLICT; an experiment that is not running (a draft,
        or finished: its verdict is final) → 409 INVALID_EXPERIMENT_TRANSITION. Returns the
        counts and each item's status.
        """
        if not items:
            raise errors.ValidationFailedError("Send at least one feedback item")
        if len(items) > MAX_FEEDBACK_ITEMS:
            raise errors.ValidationFailedError(f"At most {MAX_FEEDBACK_ITEMS} feedback items per request")
        wanted: dict[str, FeedbackItem] = {}
        for item in items:
            if item.correct is None and item.value is None:
                raise errors.ValidationFailedError(
                    f"Feedback on {item.inference_id} needs correct or value", inference_id=item.inference_id
                )
            seen = wanted.setdefault(item.inference_id, item)
            if (seen.correct, seen.value) != (item.correct, item.value):
                raise errors.FeedbackConflictError(
                    f"Two different outcomes for {item.inference_id} in one request",
                    inference_id=item.inference_id,
                )
        return self._record_feedback(experiment_id, wanted, tenant_id)

    def _record_feedback(
        self, experiment_id: str, wanted: Mapping[str, FeedbackItem], tenant_id: uuid.UUID
    ) -> dict[str, Any]:
        """One transaction: lock the experiment FOR SHARE (concurrent feedback proceeds, a stop
        waits), check every inference, insert with ON CONFLICT (inference_id) DO NOTHING, then
        read back what is stored: our rows are ``recorded``, another request's equal outcome a
        ``duplicate``, a different one a conflict (raised: the whole request rolls back)."""
        with self.database.session() as session:
            repo = ExperimentRepository(session)
            experiment = repo.get(experiment_id[:100], share=True)
            if experiment is None:
                raise errors.ExperimentNotFoundError(f"No experiment {experiment_id[:100]!r}")
            ids = list(wanted)
            inferences = repo.inferences(ids)
            for inference_id in ids:
                inference = inferences.get(inference_id)
                if (
                    inference is None
                    or inference.tenant_id != tenant_id
                    or inference.experiment_id != experiment.experiment_id
                ):
                    raise errors.InferenceNotFoundError(
                        f"No inference {inference_id!r} of yours in {experiment.experiment_id}",
                        inference_id=inference_id,
                    )
            # After the inference check: an inference that is not of this experiment stays 404.
            if experiment.experiment_status != "running":
                raise errors.InvalidExperimentTransitionError(
                    f"Feedback is taken while an experiment runs; this one is {experiment.experiment_status}",
                    status=experiment.experiment_status,
                )
            ours = {inference_id: uuid.uuid4() for inference_id in ids}
            repo.insert_feedback(
                [
                    {
                        "id": ours[inference_id],
                        "inference_id": inference_id,
                        "experiment_id": experiment.experiment_id,
                        "arm": inferences[inference_id].arm,
                        "model_id": inferences[inference_id].model_id,
                        "model_version": inferences[inference_id].model_version,
                        "tenant_id": tenant_id,
                        "correct": item.correct,
                        "value": item.value,
                    }
                    for inference_id, item in wanted.items()
                ]
            )
            stored = repo.feedback_of(ids)
            statuses: list[dict[str, Any]] = []
            for inference_id, item in wanted.items():
                known = stored[inference_id]
                if known.id == ours[inference_id]:
                    statuses.append({"inference_id": inference_id, "arm": known.arm, "status": "recorded"})
                    continue
                # abs_tol: the stored value is rounded to the column's 6 decimals.
                same_value = (known.value is None and item.value is None) or (
                    known.value is not None
                    and item.value is not None
                    and math.isclose(known.value, item.value, abs_tol=1e-6)
                )
                if known.correct != item.correct or not same_value:
                    raise errors.FeedbackConflictError(
                        f"{inference_id} already has a different outcome", inference_id=inference_id
                    )
                statuses.append({"inference_id": inference_id, "arm": known.arm, "status": "duplicate"})
        return {
            "experiment_id": experiment.experiment_id,
            "recorded": sum(1 for s in statuses if s["status"] == "recorded"),
            "duplicates": sum(1 for s in statuses if s["status"] == "duplicate"),
            "items": statuses,
        }
