"""Deployment actions on a slot: stage changes, canaries, promotion, rollback.

Stages (``model_versions.deployment_status``) move ``development → staging → production``;
``archived`` retires a version. :data:`TRANSITIONS` is the whole rule; anything else is
``ILLEGAL_STAGE_TRANSITION`` (409). A slot has at most one production version: a version
reaches production by :meth:`DeploymentService.deploy`, :meth:`~DeploymentService.promote` (its
canary) or :meth:`~DeploymentService.rollback`, and the version it replaces goes back to
``staging`` (ready to be rolled back to). A production version cannot be moved out by a stage
change (the slot would be left without one): deploy or roll back another version instead.

A canary is a staging version serving ``canary_percent`` (1..99) of the slot's traffic, chosen
by a stable hash of the caller (routing.py); one per slot (a new one replaces the old).
Only a version installed on this server can go to production or be a canary
(``MODEL_VERSION_NOT_INSTALLED``, 409). A face_embedding version must also hold every enrolled
user in its gallery (galleries.py: ``GALLERY_NOT_MIGRATED``, 409, unless ``force``, which the
pipeline row records as ``force: true`` with ``missing_users``).

Every action is one transaction that first locks the slot's ``registered_models`` row
(``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's write lock is taken at BEGIN), so two
concurrent actions on a slot are serialised and each sees the other's result; each appends one
``model_deployment_pipeline`` row: ``deployment_config.action`` (deploy, stage, canary,
canary_end, promote, rollback, initial), ``previous_version`` (production before), and
``rollback_version`` = the version a rollback of this action would return to.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from facesocial import errors
from facesocial.domains.registry import views
from facesocial.domains.registry.galleries import require_gallery_coverage
from facesocial.domains.registry.serving import SLOTS
from facesocial.store.db import Database
from facesocial.store.tables_registry import (
    STAGES,
    AbExperiment,
    DeploymentPipeline,
    ModelVersion,
    RegisteredModel,
)
from facesocial.store.types import utcnow

# Allowed stage changes by POST .../versions/{version}/stage (production is entered and left
# only through deploy/promote/rollback, which keep exactly one production version per slot).
TRANSITIONS: Mapping[str, frozenset[str]] = {
    "development": frozenset({"staging", "production", "archived"}),
    "staging": frozenset({"development", "production", "archived"}),
    "production": frozenset(),
    "archived": frozenset({"development", "staging"}),
}
CANARY_MIN, CANARY_MAX = 1.0, 99.0
MAX_REASON = 1000


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acted (recorded as ``created_by``): the caller's account or API key id, if any."""

    id: uuid.UUID | None = None
    name: str = "cli"


class DeploymentService:
    """Reads and changes the registry. ``on_change`` runs after every committed change (the
    container passes the router's ``invalidate``, so this process routes by it at once)."""

    def __init__(self, database: Database, on_change: Callable[[], None] | None = None) -> None:
        self._database = database
        self._on_change = on_change or (lambda: None)

    # --- reads ------------------------------------------------------------------------------

    def list_models(self) -> list[dict[str, Any]]:
        """Every slot with its production, canary, running experiment and versions."""
        with self._database.session(readonly=True) as session:
            models = {m.model_id: m for m in session.scalars(select(RegisteredModel))}
            versions = self._versions_by_slot(session)
            experiments = self._running(session)
        return [
            views.slot(models[slot], versions.get(slot, []), experiments.get(slot))
            for slot in SLOTS
            if slot in models
        ]

    def get_model(self, slot: str) -> dict[str, Any]:
        with self._database.session(readonly=True) as session:
            model = self._model(session, slot)
            versions = self._versions_by_slot(session, slot).get(slot, [])
            experiment = self._running(session, slot).get(slot)
            return views.slot(model, versions, experiment)

    def versions(self, slot: str) -> list[dict[str, Any]]:
        with self._database.session(readonly=True) as session:
            self._model(session, slot)
            return [views.version(v) for v in self._versions_by_slot(session, slot).get(slot, [])]

    def history(self, slot: str, *, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        """The slot's deployment actions, newest first."""
        with self._database.session(readonly=True) as session:
            self._model(session, slot)
            total = session.scalar(
                select(func.count())
                .select_from(DeploymentPipeline)
                .where(DeploymentPipeline.model_id == slot)
            )
            rows = session.scalars(
                select(DeploymentPipeline)
                .where(DeploymentPipeline.model_id == slot)
                .order_by(DeploymentPipeline.created_at.desc(), DeploymentPipeline.id)
                .limit(limit)
                .offset(offset)
            ).all()
            return {"total": int(total or 0), "deployments": [views.deployment(r) for r in rows]}

    # --- actions ----------------------------------------------------------------------------

    def set_stage(
        self, slot: str, version: str, stage: str, actor: Actor, *, force: bool = False
    ) -> dict[str, Any]:
        """Move ``version`` to ``stage`` (:data:`TRANSITIONS`); to ``production`` it is a deploy
        (``force``: as :meth:`deploy`)."""
        if stage not in STAGES:
            raise errors.ValidationFailedError(f"stage must be one of {', '.join(STAGES)}")
        if stage == "production":
            return self.deploy(slot, version, actor, force=force)
        with self._action(slot) as (session, _model):
            row = self._version(session, slot, version)
            before = row.deployment_status
            _check_transition(version, before, stage)
            row.deployment_status = stage
            if stage == "archived" or row.canary_percent:
                row.canary_percent = None
            entry = self._log(
                session, slot, version, actor, "stage", [before, stage], stage, {"previous_stage": before}
            )
        return entry

    def deploy(self, slot: str, version: str, actor: Actor, *, force: bool = False) -> dict[str, Any]:
        """``version`` becomes production now (passing staging); the old one goes to staging.

        Raises ``GALLERY_NOT_MIGRATED`` (409) for a face_embedding version whose gallery misses
        enrolled users, unless ``force`` (galleries.py).
        """
        with self._action(slot) as (session, model):
            row = self._version(session, slot, version)
            before = row.deployment_status
            if before == "production":
                raise errors.IllegalStageTransitionError(
                    f"{version} is already the production version of {slot}", stage=before
                )
            _check_transition(version, before, "production")
            _require_installed(row)
            forced = _forced(require_gallery_coverage(session, slot, version, force=force), force)
            stages = ["staging", "production"] if before == "development" else [before, "production"]
            previous = self._make_production(session, model, row)
            entry = self._log(
                session, slot, version, actor, "deploy", stages, "production",
                {"previous_version": previous, **forced}, rollback_version=previous,
            )  # fmt: skip
        return entry

    def set_canary(
        self, slot: str, version: str, percent: float, actor: Actor, *, force: bool = False
    ) -> dict[str, Any]:
        """``version`` serves ``percent`` (1..99) of the slot's traffic; replaces another canary.

        Raises ``GALLERY_NOT_MIGRATED`` (409) as :meth:`deploy`, unless ``force``.
        """
        if not CANARY_MIN <= percent <= CANARY_MAX:
            raise errors.ValidationFailedError(f"percent must be within {CANARY_MIN:g}..{CANARY_MAX:g}")
        with self._action(slot) as (session, model):
            row = self._version(session, slot, version)
            if row.deployment_status == "production":
                raise errors.IllegalStageTransitionError(
                    f"{version} is the production version of {slot}: a canary must be another version",
                    stage=row.deployment_status,
                )
            if row.deployment_status == "archived":
                raise errors.IllegalStageTransitionError(
                    f"{version} is archived: move it to staging first", stage=row.deployment_status
                )
            _require_installed(row)
            forced = _forced(require_gallery_coverage(session, slot, version, force=force), force)
            replaced = None
            for other in self._canaries(session, slot):
                if other.version_number != version:
                    replaced = other.version_number
                    other.canary_percent = None
            before = row.deployment_status
            row.deployment_status = "staging"
            row.canary_percent = round(float(percent), 2)
            entry = self._log(
                session, slot, version, actor, "canary", [before, "staging"], "staging",
                {"canary_percent": row.canary_percent, "replaced_canary": replaced,
                 "production_version": model.model_version, **forced},
                rollback_version=model.model_version,
            )  # fmt: skip
        return entry

    def clear_canary(self, slot: str, actor: Actor) -> dict[str, Any]:
        """End the slot's canary (its version stays in staging); 409 NO_CANARY if none."""
        with self._action(slot) as (session, model):
            canaries = self._canaries(session, slot)
            if not canaries:
                raise errors.NoCanaryError(f"{slot} has no canary")
            for row in canaries:
                percent, row.canary_percent = row.canary_percent, None
            entry = self._log(
                session, slot, canaries[0].version_number, actor, "canary_end", ["staging"], "staging",
                {"canary_percent": percent, "production_version": model.model_version},
            )  # fmt: skip
        return entry

    def promote(self, slot: str, actor: Actor, *, force: bool = False) -> dict[str, Any]:
        """The canary becomes production; the previous production version goes to staging.

        The canary's gallery is checked again (users enrolled while it ran are in it, but one
        forced in is not): ``GALLERY_NOT_MIGRATED`` (409) unless ``force``.
        """
        with self._action(slot) as (session, model):
            canaries = self._canaries(session, slot)
            if not canaries:
                raise errors.NoCanaryError(f"{slot} has no canary to promote")
            row = canaries[0]
            _require_installed(row)
            forced = _forced(require_gallery_coverage(session, slot, row.version_number, force=force), force)
            percent = row.canary_percent
            previous = self._make_production(session, model, row)
            entry = self._log(
                session, slot, row.version_number, actor, "promote", ["staging", "production"], "production",
                {"previous_version": previous, "canary_percent": percent, **forced},
                rollback_version=previous,
            )  # fmt: skip
        return entry

    def rollback(
        self, slot: str, version: str, reason: str, actor: Actor, *, force: bool = False
    ) -> dict[str, Any]:
        """``version`` becomes production at once and any canary ends; ``reason`` is recorded.

        Rolling back to the current production version only ends the canary. Archived versions
        are refused (409): un-archive first, so a retired file is never revived by mistake. A
        face_embedding version whose gallery misses enrolled users: ``GALLERY_NOT_MIGRATED``
        (409) unless ``force`` (galleries.py).
        """
        reason = reason.strip()
        if not reason or len(reason) > MAX_REASON:
            raise errors.ValidationFailedError(f"reason is required (1..{MAX_REASON} characters)")
        with self._action(slot) as (session, model):
            row = self._version(session, slot, version)
            before = row.deployment_status
            if before == "archived":
                raise errors.IllegalStageTransitionError(
                    f"{version} is archived: move it to staging first", stage=before
                )
            _require_installed(row)
            forced: dict[str, Any] = {}
            if before != "production":
                forced = _forced(require_gallery_coverage(session, slot, version, force=force), force)
            ended = [c.version_number for c in self._canaries(session, slot)]
            for other in self._canaries(session, slot):
                other.canary_percent = None
            previous = model.model_version
            if before != "production":
                previous = self._make_production(session, model, row)
            entry = self._log(
                session, slot, version, actor, "rollback", [before, "production"], "production",
                {"previous_version": previous, "ended_canaries": ended, **forced},
                rollback_version=previous, reason=reason,
            )  # fmt: skip
        return entry

    # --- internals --------------------------------------------------------------------------

    @contextmanager
    def _action(self, slot: str) -> Iterator[tuple[Session, RegisteredModel]]:
        """One transaction holding the slot's row lock; ``on_change`` runs after it committed."""
        with self._database.session() as session:
            model = session.scalar(
                select(RegisteredModel).where(RegisteredModel.model_id == slot).with_for_update()
            )
            if model is None:
                raise errors.ModelNotFoundError(f"No model slot {slot!r}; slots: {', '.join(SLOTS)}")
            model.updated_at = utcnow()
            yield session, model
        self._on_change()

    @staticmethod
    def _model(session: Session, slot: str) -> RegisteredModel:
        model = session.scalar(select(RegisteredModel).where(RegisteredModel.model_id == slot))
        if model is None:
            raise errors.ModelNotFoundError(f"No model slot {slot!r}; slots: {', '.join(SLOTS)}")
        return model

    @staticmethod
    def _version(session: Session, slot: str, version: str) -> ModelVersion:
        row = session.scalar(
            select(ModelVersion).where(ModelVersion.model_id == slot, ModelVersion.version_number == version)
        )
        if row is None:
            raise errors.ModelVersionNotFoundError(f"{slot} has no version {version!r}")
        return row

    @staticmethod
    def _canaries(session: Session, slot: str) -> list[ModelVersion]:
        return list(
            session.scalars(
                select(ModelVersion).where(ModelVersion.model_id == slot, ModelVersion.canary_percent > 0)
            )
        )

    @staticmethod
    def _versions_by_slot(session: Session, slot: str | None = None) -> dict[str, list[ModelVersion]]:
        query = select(ModelVersion).order_by(ModelVersion.model_id, ModelVersion.version_number)
        if slot is not None:
            query = query.where(ModelVersion.model_id == slot)
        found: dict[str, list[ModelVersion]] = {}
        for row in session.scalars(query):
            found.setdefault(row.model_id, []).append(row)
        return found

    @staticmethod
    def _running(session: Session, slot: str | None = None) -> dict[str, AbExperiment]:
        query = select(AbExperiment).where(AbExperiment.experiment_status == "running")
        if slot is not None:
            query = query.where(AbExperiment.model_id == slot)
        found: dict[str, AbExperiment] = {}
        for row in session.scalars(query.order_by(AbExperiment.start_date)):
            found.setdefault(row.model_id, row)
        return found

    @staticmethod
    def _make_production(session: Session, model: RegisteredModel, row: ModelVersion) -> str | None:
        """``row`` becomes the slot's only production version; returns the one it replaced."""
        now = utcnow()
        previous = None
        for other in session.scalars(
            select(ModelVersion).where(
                ModelVersion.model_id == model.model_id, ModelVersion.deployment_status == "production"
            )
        ):
            if other.id != row.id:
                previous = other.version_number
                other.deployment_status = "staging"
        # Flush the demotion first: PostgreSQL would otherwise see two production rows at once
        # if a partial unique index is ever added.
        session.flush()
        row.deployment_status = "production"
        row.canary_percent = None
        row.deployment_timestamp = now
        row.deployment_environment = "production"
        model.model_version = row.version_number
        model.is_production = True
        model.deployment_status = "production"
        model.model_path = row.model_file_path
        model.model_checksum = row.model_file_checksum
        model.model_size_mb = row.model_file_size_mb
        model.accuracy_score = row.validation_accuracy
        return previous

    @staticmethod
    def _log(
        session: Session,
        slot: str,
        version: str,
        actor: Actor,
        action: str,
        stages: list[str],
        current: str,
        config: dict[str, Any],
        *,
        rollback_version: str | None = None,
        reason: str | None = None,
    ) -> dict[str, Any]:
        now: datetime = utcnow()
        row = DeploymentPipeline(
            pipeline_id=uuid.uuid4().hex,
            model_id=slot,
            version_number=version,
            pipeline_stages=stages,
            current_stage=current,
            stage_status="completed",
            deployment_config={"action": action, "actor": actor.name, **config},
            pipeline_status="completed",
            pipeline_started_at=now,
            pipeline_completed_at=now,
            can_rollback=rollback_version is not None,
            rollback_version=rollback_version,
            rollback_reason=reason,
            created_by=actor.id,
            created_at=now,
        )
        session.add(row)
        session.flush()
        return views.deployment(row)


def _check_transition(version: str, before: str, stage: str) -> None:
    if stage == before:
        raise errors.IllegalStageTransitionError(f"{version} is already in {stage}", stage=before)
    if before == "production":
        raise errors.IllegalStageTransitionError(
            f"{version} is in production: deploy or roll back another version to replace it", stage=before
        )
    if stage not in TRANSITIONS.get(before, frozenset()):
        raise errors.IllegalStageTransitionError(
            f"{version} cannot go from {before} to {stage}", stage=before, allowed=sorted(TRANSITIONS[before])
        )


def _forced(missing: int, force: bool) -> dict[str, Any]:
    """What a pipeline row records of a forced gallery check (nothing without ``force``)."""
    return {"force": True, "missing_users": missing} if force else {}


def _require_installed(row: ModelVersion) -> None:
    if not row.is_installed:
        raise errors.ModelVersionNotInstalledError(
            f"{row.version_number} is not installed on this server (`facesocial models pull`)"
        )
