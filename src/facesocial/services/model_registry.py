"""``config.ai_models``: the registry row of every model this server can run.

Filled from the dlib pack and the converted-model manifest on every start (idempotent), so
an operator can see in SQL which model and version each service uses by default.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy import select

from facesocial.models.cache import Manifest
from facesocial.models.dlib_pack import all_model_infos, verified_path
from facesocial.models.packaged import packaged_manifests
from facesocial.store.db import Database
from facesocial.store.tables import AiModel

# Which service each task serves (document 000's service names).
_SERVICE_BY_TASK = {
    "face_detection": "face_detection",
    "face_landmarks_5": "face_detection",
    "face_landmarks_68": "face_detection",
    "face_mesh_468": "face_detection",
    "iris_landmarks": "face_detection",
    "face_embedding": "face_recognition",
    "face_embedding+age+gender": "face_recognition",
    "emotion": "demographics",
    "age": "demographics",
    "age+gender+race": "demographics",
    "deepfake_face_classification": "deepfake_detection",
    "face_presentation_attack_detection": "antispoofing",
    "person_detection": "people_counting",
}


def _packaged_entries() -> list[RegistryEntry]:
    """Models trained by this project and shipped in the package (``<package>/weights/*.manifest.json``)."""
    entries = []
    for weights, meta in packaged_manifests():
        entries.append(
            RegistryEntry(
                _SERVICE_BY_TASK.get(meta["task"], "deepfake_detection"), meta["name"], meta["version"],
                meta["task"], str(weights), round(meta["size_bytes"] / 1e6, 2), meta.get("input"),
                meta.get("output"),
                f"trained here ({meta.get('script', 'scripts/train')}); {meta.get('licence', '')}; "
                f"sha256 {meta['sha256']}",
            )
        )  # fmt: skip
    return entries


@dataclass(frozen=True, slots=True)
class RegistryEntry:
    service_name: str
    model_name: str
    model_version: str
    model_type: str
    model_path: str
    size_mb: float | None
    inputs: Any
    outputs: Any
    description: str


def registry_entries(model_dir: Path) -> list[RegistryEntry]:
    entries = []
    for info in all_model_infos():
        path = "(built into dlib)" if not info.sha256 else str(verified_path(info.name))
        size = None if not info.sha256 else round(Path(path).stat().st_size / 1e6, 2)
        entries.append(
            RegistryEntry(
                _SERVICE_BY_TASK.get(info.task, "face_recognition"), info.name, info.version, info.task, path,
                size, {"spec": info.input_spec}, None,
                f"{info.source_package}=={info.source_version}; {info.licence}; sha256 {info.sha256 or '-'}",
            )
        )  # fmt: skip
    manifest = Manifest.load(model_dir)
    for entry in manifest.models.values():
        entries.append(
            RegistryEntry(
                _SERVICE_BY_TASK.get(entry.task, "face_detection"), entry.name, entry.version, entry.task,
                str(model_dir / entry.file), round(entry.size_bytes / 1e6, 2),
                {"tensors": entry.inputs, "spec": entry.input_spec},
                {"tensors": entry.output_tensors, "spec": entry.outputs},
                f"{entry.source_package}@{entry.source_version}; {entry.licence}; sha256 {entry.sha256}",
            )
        )  # fmt: skip
    entries.extend(_packaged_entries())
    return _one_per_key(entries)


def _one_per_key(entries: list[RegistryEntry]) -> list[RegistryEntry]:
    """One entry per (service, model, version): a model in two files (dlib_resnet_v1 as dlib's
    .dat and as our ONNX conversion of it, which gives the same vectors) is one model with two
    runtimes; the later file (the converted one) gives the path, both describe it."""
    merged: dict[tuple[str, str, str], RegistryEntry] = {}
    for entry in entries:
        key = (entry.service_name, entry.model_name, entry.model_version)
        earlier = merged.get(key)
        if earlier is not None:
            entry = replace(entry, description=f"{entry.description} | also {earlier.description}")
        merged[key] = entry
    return list(merged.values())


def sync_registry(database: Database, model_dir: Path, defaults: set[str]) -> int:
    """Insert or update one row per (service, model, version); returns rows written."""
    entries = registry_entries(model_dir)
    with database.session() as session:
        for entry in entries:
            row = session.scalar(
                select(AiModel).where(
                    AiModel.service_name == entry.service_name,
                    AiModel.model_name == entry.model_name,
                    AiModel.model_version == entry.model_version,
                )
            )
            if row is None:
                row = AiModel(
                    service_name=entry.service_name,
                    model_name=entry.model_name,
                    model_version=entry.model_version,
                    model_path=entry.model_path,
                )
                session.add(row)
            row.model_type = entry.model_type
            row.model_path = entry.model_path
            row.model_size_mb = entry.size_mb
            row.input_dimensions = entry.inputs
            row.output_dimensions = entry.outputs
            row.description = entry.description
            row.status = "active"
            row.is_default = entry.model_name in defaults
    return len(entries)
