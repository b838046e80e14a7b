"""Which arm of a running A/B experiment serves a request: a stable hash of the split subject.

The router (``domains/registry``) calls :func:`choose_arm` for every request on a slot with a
running experiment; it needs no SQL. :func:`record_assignment` then keeps the first arm each
subject was given (``ab_testing_assignments``, unique per experiment and subject) so results can
be read per subject as well as per inference.

Split methods (document 002's ``traffic_split_method``):

* ``random`` — the subject is the request id: each request is drawn afresh (uniform, stateless);
* ``user`` — the caller's account or API key (``RoutingKey.user_key``), falling back to the
  request id for an anonymous caller: one caller always sees one arm;
* ``session`` — ``RoutingKey.session_id`` (``X-Session-Id`` or a liveness session), falling
  back to the user, then to the request id: one session sees one arm.

A subject goes to the challenger when ``stable_bucket(hash_salt, subject) < traffic_split_percent``
(:func:`facesocial.domains.registry.serving.stable_bucket`: sha256, uniform on 0..100), so the
share of subjects on the challenger is the split percentage, the same subject keeps its arm for
the experiment's life, and a new experiment (new salt) reshuffles everyone.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from sqlalchemy import insert
from sqlalchemy.orm import Session

from facesocial.domains.registry.serving import Arm, RoutingKey, stable_bucket
from facesocial.store.tables_registry import AbAssignment

# assignment_reason values: which key the hash was taken of (the fallbacks say so).
Reason = Literal["random", "user_hash", "session_hash", "user_fallback", "request_fallback"]


class ExperimentLike(Protocol):
    """What :func:`choose_arm` reads: an ``AbExperiment`` row or an :class:`ExperimentSnapshot`."""

    @property
    def experiment_id(self) -> str: ...
    @property
    def model_id(self) -> str: ...
    @property
    def baseline_version(self) -> str: ...
    @property
    def challenger_version(self) -> str: ...
    @property
    def traffic_split_percent(self) -> float: ...
    @property
    def traffic_split_method(self) -> str: ...
    @property
    def hash_salt(self) -> str: ...


@dataclass(frozen=True, slots=True)
class ExperimentSnapshot:
    """An immutable copy of the routing fields of a running experiment (safe to cache across
    threads and sessions, unlike an ORM row)."""

    experiment_id: str
    model_id: str
    baseline_version: str
    challenger_version: str
    traffic_split_percent: float  # 0..100, share of subjects on the challenger
    traffic_split_method: str  # random | user | session
    hash_salt: str

    @classmethod
    def of(cls, experiment: ExperimentLike) -> ExperimentSnapshot:
        return cls(
            experiment_id=experiment.experiment_id,
            model_id=experiment.model_id,
            baseline_version=experiment.baseline_version,
            challenger_version=experiment.challenger_version,
            traffic_split_percent=float(experiment.traffic_split_percent),
            traffic_split_method=experiment.traffic_split_method,
            hash_salt=experiment.hash_salt,
        )

    def version_of(self, arm: Arm) -> str:
        """The model tag serving ``arm``."""
        return self.challenger_version if arm == "challenger" else self.baseline_version


def split_subject(method: str, key: RoutingKey) -> tuple[str, Reason]:
    """The hash input for ``method`` (random | user | session) and why it was chosen.

    Subjects are prefixed with their kind (``user:``, ``session:``, ``request:``) so a session id
    that happens to equal a user key is still a different subject. A session id is the client's
    own text: it is scoped by the tenant, so two tenants' sessions named alike are two subjects
    (two assignment rows), never one.
    """
    if method == "user":
        if key.user_key:
            return f"user:{key.user_key}", "user_hash"
        return f"request:{key.request_id}", "request_fallback"
    if method == "session":
        if key.session_id:
            scope = f"{key.tenant_id}:" if key.tenant_id is not None else ""
            return f"session:{scope}{key.session_id}", "session_hash"
        if key.user_key:
            return f"user:{key.user_key}", "user_fallback"
        return f"request:{key.request_id}", "request_fallback"
    # random (and any unknown method, which validation refuses before an experiment can run)
    return f"request:{key.request_id}", "random"


def choose_arm(experiment: ExperimentLike, key: RoutingKey) -> tuple[Arm, str, Reason]:
    """The arm that serves ``key``, the subject key that was hashed, and the reason.

    ``challenger`` when ``stable_bucket(experiment.hash_salt, subject) < traffic_split_percent``,
    else ``baseline``. Pure and cheap (one sha256): no SQL, safe from any thread.

    >>> exp = ExperimentSnapshot("exp_1", "face_detection", "a@1", "b@1", 50.0, "user", "salt")
    >>> choose_arm(exp, RoutingKey("r1", user_key="k1")) == choose_arm(exp, RoutingKey("r2", user_key="k1"))
    True
    """
    subject, reason = split_subject(experiment.traffic_split_method, key)
    bucket = stable_bucket(experiment.hash_salt, subject)
    arm: Arm = "challenger" if bucket < float(experiment.traffic_split_percent) else "baseline"
    return arm, subject, reason


def _user_uuid(key: RoutingKey) -> uuid.UUID | None:
    if not key.user_key:
        return None
    try:
        return uuid.UUID(key.user_key.split(":")[-1])
    except ValueError:
        return None


def record_assignment(
    session: Session,
    experiment: ExperimentLike,
    key: RoutingKey,
    arm: Arm,
    subject_key: str,
    reason: str,
) -> None:
    """Insert the subject's assignment unless it already has one (the first arm is kept).

    ``INSERT ... ON CONFLICT (experiment_id, subject_key) DO NOTHING`` on PostgreSQL and SQLite,
    so concurrent requests of one subject never fail. Runs in the caller's transaction.
    """
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "experiment_id": experiment.experiment_id,
        "subject_key": subject_key[:200],
        "tenant_id": key.tenant_id,
        "user_id": _user_uuid(key),
        "session_id": key.session_id[:100] if key.session_id else None,
        "assigned_model_id": experiment.model_id,
        "assigned_version": (
            experiment.challenger_version if arm == "challenger" else experiment.baseline_version
        ),
        "assigned_group": arm,
        "assignment_reason": reason,
    }
    dialect = session.get_bind().dialect.name
    statement: Any
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        statement = (
            pg_insert(AbAssignment)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["experiment_id", "subject_key"])
        )
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        statement = (
            sqlite_insert(AbAssignment)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["experiment_id", "subject_key"])
        )
    else:  # pragma: no cover - the project runs on these two
        statement = insert(AbAssignment).values(**values)
    session.execute(statement)
