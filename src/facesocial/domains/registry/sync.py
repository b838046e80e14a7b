"""Fill the registry from the installed model files on every start (after the migrations).

One ``registered_models`` row per serving slot and one ``model_versions`` row per model file
that can fill it (:func:`facesocial.domains.registry.catalogue.installed_versions`). The sync
writes facts (path, size, sha256, source, licence, measured figures, ``is_installed``) and
never decisions: a version's stage and canary share are only set when the row is created, and
a slot's production version only when the slot has none — then it is the settings' default
(``models.detector``, ``models.default_embedding``, ...), or the first installed preferred model.
A version whose file went away stays listed with ``is_installed`` false (the router then serves
the settings' default instead, and says so in the log).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from facesocial.domains.registry.catalogue import SLOT_INFO, VersionFile, installed_versions
from facesocial.domains.registry.serving import SLOTS
from facesocial.settings import Settings
from facesocial.store.db import Database
from facesocial.store.tables_registry import DeploymentPipeline, ModelVersion, RegisteredModel
from facesocial.store.types import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What one sync did: versions seen per slot, versions created, and initial productions set."""

    versions: Mapping[str, tuple[str, ...]]
    created: tuple[str, ...]  # "slot:tag"
    production_set: Mapping[str, str]  # slot -> tag, for slots that had no production version


def _initial_production(slot: str, files: list[VersionFile], default: str | None) -> VersionFile | None:
    """The settings' default if installed (a model name or a tag), else the first installed
    preferred model, else the first installed file of the slot."""
    installed = [f for f in files if f.installed]
    if default is not None:
        for f in installed:
            if default in (f.name, f.tag):
                return f
    for name in SLOT_INFO[slot].models:
        for f in installed:
            if f.name == name:
                return f
    return installed[0] if installed else None


def _apply(session: Session, files: list[VersionFile], defaults: Mapping[str, str]) -> SyncReport:
    now = utcnow()
    by_slot: dict[str, list[VersionFile]] = {slot: [] for slot in SLOTS}
    for f in files:
        by_slot[f.slot].append(f)
    created: list[str] = []
    production_set: dict[str, str] = {}
    for slot in SLOTS:
        info = SLOT_INFO[slot]
        model = session.scalar(select(RegisteredModel).where(RegisteredModel.model_id == slot))
        if model is None:
            model = RegisteredModel(model_id=slot, model_name=info.name, model_type=info.model_type)
            session.add(model)
        model.model_name = info.name
        model.model_type = info.model_type
        model.model_description = info.description
        model.model_framework = "onnxruntime"
        model.model_format = "onnx"
        session.flush()
        rows = {
            row.version_number: row
            for row in session.scalars(select(ModelVersion).where(ModelVersion.model_id == slot))
        }
        seen = set()
        for f in by_slot[slot]:
            seen.add(f.tag)
            row = rows.get(f.tag)
            if row is None:
                # Shipped, measured files are ready for a canary: they start in staging.
                row = ModelVersion(model_id=slot, version_number=f.tag, deployment_status="staging")
                session.add(row)
                rows[f.tag] = row
                created.append(f"{slot}:{f.tag}")
            row.version_description = f"{f.name} {f.version} ({f.task})"
            row.model_file_path = f.path
            row.model_file_size_mb = f.size_mb
            row.model_file_checksum = f.sha256
            row.source_package = f.source[:200]
            row.licence = f.licence[:200] or None
            row.validation_metrics = dict(f.metrics) or None
            row.validation_accuracy = f.accuracy
            row.is_installed = f.installed
        for tag, row in rows.items():
            if tag not in seen and row.is_installed:
                log.warning("registry: %s of %s is no longer installed", tag, slot)
                row.is_installed = False
        production = [row for row in rows.values() if row.deployment_status == "production"]
        if not production:
            first = _initial_production(slot, by_slot[slot], defaults.get(slot))
            if first is not None:
                row = rows[first.tag]
                row.deployment_status = "production"
                row.deployment_timestamp = now
                row.deployment_environment = "production"
                row.canary_percent = None
                production = [row]
                production_set[slot] = first.tag
                session.add(
                    DeploymentPipeline(
                        pipeline_id=uuid.uuid4().hex,
                        model_id=slot,
                        version_number=first.tag,
                        pipeline_stages=["production"],
                        current_stage="production",
                        stage_status="completed",
                        deployment_config={"action": "initial", "source": "settings default at first start"},
                        pipeline_status="completed",
                        pipeline_started_at=now,
                        pipeline_completed_at=now,
                        can_rollback=False,
                    )
                )
        live = production[0] if production else None
        model.model_version = live.version_number if live else None
        model.is_production = live is not None
        model.deployment_status = "production" if live else "development"
        model.model_path = live.model_file_path if live else None
        model.model_checksum = live.model_file_checksum if live else None
        model.model_size_mb = live.model_file_size_mb if live else None
        model.accuracy_score = live.validation_accuracy if live else None
    return SyncReport(
        versions={slot: tuple(f.tag for f in by_slot[slot]) for slot in SLOTS},
        created=tuple(created),
        production_set=production_set,
    )


def sync_slots(database: Database, model_dir: Path, defaults: Mapping[str, str]) -> SyncReport:
    """Write the slots and versions of this installation (idempotent; one transaction).

    ``defaults``: slot -> the model name (or tag) the settings choose for it; used only for a
    slot without a production version. Several processes starting at once may race to create
    the same rows: the loser's unique-constraint failure is retried once (the rows then exist).
    """
    files = installed_versions(model_dir)
    for attempt in (1, 2):
        try:
            with database.session() as session:
                return _apply(session, files, defaults)
        except IntegrityError:
            if attempt == 2:
                raise
            log.info("registry: another process synced at the same time; syncing again")
    raise AssertionError("unreachable")


def settings_defaults(settings: Settings) -> dict[str, str]:
    """The model each slot runs without a registry (the settings' choices; the others are the
    only or the measured-best model of their slot, docs/accuracy.md)."""
    return {
        "face_detection": settings.models.detector,
        "face_embedding": settings.models.default_embedding,
        "demographics": "faceres",
        "liveness": "liveness_passive",
        "deepfake": "deepfake_sbi",
        "ai_image": "skygate_mlp",
        "person_detection": settings.counting.detector,
    }
