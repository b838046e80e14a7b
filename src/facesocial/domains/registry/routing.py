"""The registry's :class:`~facesocial.domains.registry.serving.ModelRouter`: which version serves a
request, from the slots' production versions, canaries and running experiments.

Routing must not cost a request an SQL round trip: the router keeps a snapshot of every slot
(production version, canary version and percentage, running experiment) in memory and reloads
it when it is older than ``refresh_seconds`` (``registry.refresh_seconds``, 2 s by default) —
so a change made by another process (the CLI, another API worker) is followed within that time,
and a change made through this process's :class:`~facesocial.domains.registry.deployments.
DeploymentService` at once (it calls :meth:`DbModelRouter.invalidate`). While the database does
not answer, the last snapshot keeps serving (and before the first one, the callers' defaults).

Order (serving.py): pinned > experiment > canary > production > the caller's default. A route to
a version that this process cannot run (not in ``installed``) falls through to the next route,
and is logged once per (slot, version) and counted.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from typing import Any

from prometheus_client import Counter
from sqlalchemy import select

from facesocial.domains.experiments.assignment import ExperimentSnapshot, choose_arm, record_assignment
from facesocial.domains.registry.serving import (
    InferenceRecord,
    RoutingKey,
    Serving,
    pinned_serving,
    stable_bucket,
)
from facesocial.store.db import Database
from facesocial.store.tables_registry import AbExperiment, ModelInferenceResult, ModelVersion

log = logging.getLogger(__name__)

ROUTED = Counter(
    "facesocial_model_routes_total",
    "Requests routed per slot, version and route",
    ["slot", "version", "route"],
)
FALLBACKS = Counter(
    "facesocial_model_route_fallbacks_total",
    "Routes to a version this process cannot run (served by the next route instead)",
    ["slot", "version"],
)
RECORD_FAILURES = Counter(
    "facesocial_inference_record_failures_total", "model_inference_results rows that could not be written"
)
# Pending experiment assignments (resolve -> record) kept at most; older ones are dropped
# (a request that never records is not an assignment worth keeping).
_PENDING_MAX = 10_000


def canary_salt(slot: str, version: str) -> str:
    """The stable-hash salt of a canary: a new canary version reshuffles who sees it."""
    return f"canary:{slot}:{version}"


@dataclass(frozen=True, slots=True)
class SlotState:
    """A slot's routing facts at one moment (immutable: shared across request threads)."""

    production: str | None = None
    canary: str | None = None
    canary_percent: float = 0.0
    experiment: ExperimentSnapshot | None = None


def load_states(database: Database) -> dict[str, SlotState]:
    """Every slot's production, canary and running experiment: two small indexed reads."""
    production: dict[str, str] = {}
    canary: dict[str, tuple[str, float]] = {}
    experiments: dict[str, ExperimentSnapshot] = {}
    with database.session(readonly=True) as session:
        rows = session.execute(
            select(
                ModelVersion.model_id,
                ModelVersion.version_number,
                ModelVersion.deployment_status,
                ModelVersion.canary_percent,
            ).where((ModelVersion.deployment_status == "production") | (ModelVersion.canary_percent > 0))
        )
        for slot, version, status, percent in rows:
            if status == "production":
                production[slot] = version
            elif percent:
                canary[slot] = (version, float(percent))
        for experiment in session.scalars(
            select(AbExperiment)
            .where(AbExperiment.experiment_status == "running")
            .order_by(AbExperiment.start_date)
        ):
            experiments.setdefault(experiment.model_id, ExperimentSnapshot.of(experiment))
    slots = set(production) | set(canary) | set(experiments)
    return {
        slot: SlotState(
            production=production.get(slot),
            canary=canary.get(slot, (None, 0.0))[0],
            canary_percent=canary.get(slot, (None, 0.0))[1],
            experiment=experiments.get(slot),
        )
        for slot in slots
    }


@dataclass(frozen=True, slots=True)
class _Pending:
    """An experiment arm given to a subject, to be written with its first recorded inference.

    ``inference_id``: the decision's own id, under which the router also keeps it (for a
    decision that lost the carried copy, e.g. one kept in a job's payload as a dict)."""

    experiment: ExperimentSnapshot
    key: RoutingKey
    subject: str
    reason: str
    inference_id: str


class DbModelRouter:
    """Routes requests by the registry's tables; records inferences into them.

    Thread-safe; one per process (``Container.model_router``). ``clock`` is for tests.
    """

    def __init__(
        self,
        database: Database,
        refresh_seconds: float = 2.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._database = database
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._states: dict[str, SlotState] = {}
        self._loaded_at: float | None = None
        self._warned: set[tuple[str, str]] = set()
        self._pending: OrderedDict[str, _Pending] = OrderedDict()
        self._pending_lock = threading.Lock()

    # --- the snapshot ------------------------------------------------------------------------

    def invalidate(self) -> None:
        """Reload on the next request (after a change made through this process)."""
        with self._lock:
            self._loaded_at = None

    def states(self) -> Mapping[str, SlotState]:
        """The current snapshot, reloaded first if older than ``refresh_seconds``."""
        now = self._clock()
        loaded = self._loaded_at
        if loaded is not None and now - loaded < self._refresh_seconds:
            return self._states
        with self._lock:
            # Another thread may have reloaded while this one waited for the lock.
            if self._loaded_at is not None and now - self._loaded_at < self._refresh_seconds:
                return self._states
            try:
                self._states = load_states(self._database)
            except Exception:
                # Keep serving the last snapshot; try again after refresh_seconds.
                log.warning("registry: routing snapshot not refreshed (keeping the last one)", exc_info=True)
            self._loaded_at = now
            return self._states

    def state(self, slot: str) -> SlotState:
        return self.states().get(slot, SlotState())

    def active_versions(self, slot: str) -> tuple[str, ...]:
        """Every version that may serve ``slot`` now: production, canary, both experiment arms
        (de-duplicated, in that order; from the snapshot, no SQL). Enrolment writes a face into
        each of these embedding models' collections so that identify finds it on any route."""
        state = self.state(slot)
        found = [state.production, state.canary]
        if state.experiment is not None:
            found += [state.experiment.baseline_version, state.experiment.challenger_version]
        return tuple(dict.fromkeys(v for v in found if v is not None))

    # --- ModelRouter -------------------------------------------------------------------------

    def resolve(
        self,
        slot: str,
        key: RoutingKey,
        *,
        installed: Collection[str],
        default: str,
        pinned: str | None = None,
    ) -> Serving:
        """The version serving ``slot`` for ``key``; see the module docstring for the order.

        Raises ``UnknownModelError`` (422 UNKNOWN_MODEL) only for a ``pinned`` version that is
        not in ``installed``; every other unrunnable route falls through, never fails.
        """
        serving = self._resolve(slot, key, installed=installed, default=default, pinned=pinned)
        ROUTED.labels(slot, serving.version, serving.route).inc()
        return serving

    def _resolve(
        self, slot: str, key: RoutingKey, *, installed: Collection[str], default: str, pinned: str | None
    ) -> Serving:
        if pinned is not None:
            return pinned_serving(slot, pinned, installed)
        state = self.state(slot)
        experiment = state.experiment
        if experiment is not None:
            arm, subject, reason = choose_arm(experiment, key)
            version = experiment.version_of(arm)
            if self._runnable(slot, version, installed):
                serving = Serving(slot, version, "experiment", experiment.experiment_id, arm)
                pending = _Pending(experiment, key, subject, reason, serving.inference_id)
                self._remember(serving.inference_id, pending)
                # Carried on the decision too: a batch item's copy has another inference id.
                return replace(serving, assignment=pending)
        if state.canary is not None and state.canary_percent > 0:
            # The caller (API key or account) keeps one version while the share is unchanged.
            subject = key.user_key or key.request_id
            bucket = stable_bucket(canary_salt(slot, state.canary), subject)
            if bucket < state.canary_percent and self._runnable(slot, state.canary, installed):
                return Serving(slot, state.canary, "canary")
        if state.production is not None and self._runnable(slot, state.production, installed):
            return Serving(slot, state.production, "production")
        return Serving(slot, default, "production")

    def _runnable(self, slot: str, version: str, installed: Collection[str]) -> bool:
        if version in installed:
            return True
        FALLBACKS.labels(slot, version).inc()
        if (slot, version) not in self._warned:
            self._warned.add((slot, version))
            log.warning(
                "registry: %s routes to %s, which this process cannot run (installed: %s); "
                "serving the next route instead",
                slot,
                version,
                ", ".join(sorted(installed)),
            )
        return False

    def _remember(self, inference_id: str, pending: _Pending) -> None:
        with self._pending_lock:
            self._pending[inference_id] = pending
            while len(self._pending) > _PENDING_MAX:
                self._pending.popitem(last=False)

    def record(self, record: InferenceRecord) -> None:
        """One ``model_inference_results`` row (and, for an experiment arm, the subject's first
        assignment), in one transaction. Never raises: a failure is logged and counted.

        The assignment comes with the decision (``Serving.assignment``, also on each batch
        item's copy under its own inference id), else from the entry kept under the inference
        id; the kept entry is dropped at the first record of either. Repeats are harmless
        (``record_assignment`` inserts if absent)."""
        serving = record.serving
        carried = serving.assignment if isinstance(serving.assignment, _Pending) else None
        with self._pending_lock:
            kept = self._pending.pop(carried.inference_id if carried else serving.inference_id, None)
        pending = carried or kept
        try:
            with self._database.session() as session:
                session.add(inference_row(record))
                if pending is not None and serving.arm is not None:
                    record_assignment(
                        session, pending.experiment, pending.key, serving.arm, pending.subject, pending.reason
                    )
        except Exception:
            RECORD_FAILURES.inc()
            log.warning(
                "registry: inference %s of %s not recorded",
                serving.inference_id,
                serving.version,
                exc_info=True,
            )


def inference_row(record: InferenceRecord) -> ModelInferenceResult:
    """The ``model_inference_results`` row of one inference (also for writers of their own rows,
    e.g. counting, which writes it in the transaction of its results)."""
    serving = record.serving
    # Non-finite numbers are dropped: JSON (and PostgreSQL's JSONB) has no NaN or infinity.
    confidences = [round(float(c), 6) for c in record.confidences if math.isfinite(float(c))]
    features: dict[str, Any] = {
        name: float(value) for name, value in record.features.items() if math.isfinite(float(value))
    }
    quality = features.get("quality")
    return ModelInferenceResult(
        id=uuid.uuid4(),
        inference_id=serving.inference_id,
        model_id=serving.slot,
        model_version=serving.version,
        tenant_id=record.tenant_id,
        service=record.service[:50],
        route=serving.route,
        experiment_id=serving.experiment_id,
        arm=serving.arm,
        input_data_hash=record.input_hash,
        input_metadata=features or None,
        inference_results=_plain(dict(record.result)),
        confidence_scores=confidences,
        processing_time_ms=max(0, int(record.processing_time_ms)),
        result_quality_score=min(1.0, max(0.0, quality)) if quality is not None else None,
        batch_size=1,
    )


def _plain(value: Any) -> Any:
    """``value`` as plain JSON: numpy scalars become numbers, non-finite numbers null, other
    objects their text (a result dict must never make the row unwritable)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return number if math.isfinite(number) else None
