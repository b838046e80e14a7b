"""Which model files can fill which serving slot, and what is known about each.

One explicit map (no discovery by shape): :data:`SLOT_INFO` names every slot of
:data:`facesocial.domains.registry.serving.SLOTS` with its kind and the model names its service
can actually run when the registry routes to them (``only_listed``): a version the service
cannot load must not be listed as installed, or a deploy, canary or experiment of it would be
accepted and then silently served by another model. ``blazeface_back`` is a face detector the
pipeline never runs; ``gear`` and ``age_ssrnet`` estimate age but services/demographics.py runs
faceres' head only (vision/attributes.py); liveness, deepfake and AI-image each load one model
(their ``scope.resolve(..., installed=(tag,))``); counting runs vision/persons.py
``PERSON_DETECTORS``. tests/unit/test_registry_catalogue.py checks these lists against the
services' own.

:func:`installed_versions` lists the files of this installation: dlib's own models (pip),
the converted pack in ``models.model_dir`` (manifest.json) and the models trained here and
shipped in the package (``<package>/weights/*.manifest.json``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facesocial import errors
from facesocial.domains.registry.serving import SLOTS
from facesocial.models.cache import Manifest
from facesocial.models.dlib_pack import all_model_infos, verified_path
from facesocial.models.packaged import packaged_manifests

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SlotInfo:
    """A serving slot: its display name, document 002's ``model_type``, and which models fill it.

    ``models``: preferred model names, in order, for when the settings' default is not
    installed; with ``only_listed`` they are also the only models of ``tasks`` that can serve
    (the others of the task are landmark or helper models the service never runs).
    """

    name: str
    model_type: str  # detection | embedding | classification
    description: str
    tasks: tuple[str, ...]
    models: tuple[str, ...] = ()
    only_listed: bool = False


SLOT_INFO: Mapping[str, SlotInfo] = {
    "face_detection": SlotInfo(
        "Face detection",
        "detection",
        "Face boxes and 5-point landmarks (POST /face-detection/detect and every face path)",
        ("face_detection",),
        ("blazeface_full", "retinaface_mnet025", "dlib_hog"),
        only_listed=True,
    ),
    "face_embedding": SlotInfo(
        "Face embedding",
        "embedding",
        "Face vectors for register, verify and identify (one vector collection per model)",
        ("face_embedding", "face_embedding+age+gender"),
        ("dlib_resnet_v1", "faceres", "mobileface"),
        only_listed=True,
    ),
    "demographics": SlotInfo(
        "Demographics",
        "classification",
        "Age and gender (with emotion, and race where enabled) of each face",
        ("face_embedding+age+gender", "age+gender+race", "age"),
        # The attribute analyser runs faceres' age/gender head only (vision/attributes.py).
        ("faceres",),
        only_listed=True,
    ),
    "liveness": SlotInfo(
        "Passive liveness",
        "classification",
        "Presentation-attack detection of a face image (antispoofing checks and liveness sessions)",
        ("face_presentation_attack_detection",),
        ("liveness_passive",),
        only_listed=True,
    ),
    "deepfake": SlotInfo(
        "Deepfake detection",
        "classification",
        "The learned face classifier of the deepfake ensemble (images and videos)",
        ("deepfake_face_classification",),
        ("deepfake_sbi",),
        only_listed=True,
    ),
    "ai_image": SlotInfo(
        "AI-generated image detection",
        "classification",
        "SkyGate's learned model (the `model` method of the AI-image ensemble)",
        ("ai_generated_image_detection",),
        ("skygate_mlp",),
        only_listed=True,
    ),
    "person_detection": SlotInfo(
        "Person detection",
        "detection",
        "Person boxes for people counting and tracking in video",
        ("person_detection",),
        ("nanodet", "centernet"),  # vision/persons.py PERSON_DETECTORS
        only_listed=True,
    ),
}
assert tuple(SLOT_INFO) == SLOTS  # one entry per slot, in the contract's order

# Measured figures of docs/accuracy.md (the default configuration of each model), stored as a
# version's validation_metrics so `GET /api/v1/models/{slot}/versions` shows them beside the
# file. Keys: (slot, model name). Source lines are named so the numbers can be re-checked.
VALIDATION_METRICS: Mapping[tuple[str, str], Mapping[str, Any]] = {
    # docs/accuracy.md "Face detection" (FDDB-style sets testing.xml / training.xml, 43 faces)
    ("face_detection", "blazeface_full"): {"ap_iou50_testing": 1.0, "recall": 1.0, "precision": 1.0},
    ("face_detection", "retinaface_mnet025"): {"ap_iou50_testing": 1.0, "recall": 1.0, "precision": 0.926},
    ("face_detection", "dlib_hog"): {"ap_iou50_testing": 1.0, "recall": 1.0, "precision": 1.0},
    # docs/accuracy.md "Face verification (1:1) on LFW", 5-fold CV accuracy and TAR at FMR 1e-3
    ("face_embedding", "dlib_resnet_v1"): {
        "lfw_accuracy": 0.9823,
        "lfw_auc": 0.9988,
        "tar_at_fmr_1e-3": 0.925,
    },
    ("face_embedding", "faceres"): {"lfw_accuracy": 0.9577, "lfw_auc": 0.9899, "tar_at_fmr_1e-3": 0.717},
    ("face_embedding", "mobileface"): {"lfw_accuracy": 0.8893, "lfw_auc": 0.9537, "tar_at_fmr_1e-3": 0.401},
    # docs/accuracy.md "Age and gender" (UTKFace, ages 16-70)
    # (gear 9.24 / 0.745 and age_ssrnet 9.30 are measured there too, but no service runs them.)
    ("demographics", "faceres"): {"age_mae_16_70": 7.66, "gender_accuracy_16_70": 0.947},
    # docs/accuracy.md "Passive presentation-attack detection", out-of-fold at the default threshold
    ("liveness", "liveness_passive"): {"acer": 0.0501, "eer": 0.0497, "apcer_max": 0.0497, "bpcer": 0.0505},
    # docs/accuracy.md "AI-generated image detection": the learned model's AUC on the test split
    ("ai_image", "skygate_mlp"): {"auc": 0.986},
    # docs/accuracy.md "Deepfake detection": the classifier's validation AUC (held-out identities)
    ("deepfake", "deepfake_sbi"): {"validation_auc": 0.724},
}
# The headline accuracy of a version (model_versions.validation_accuracy), where one exists.
_ACCURACY_KEYS = ("lfw_accuracy", "gender_accuracy_16_70")


@dataclass(frozen=True, slots=True)
class VersionFile:
    """One model file that can fill a slot: ``model_versions``' facts about it."""

    slot: str
    name: str
    version: str
    task: str
    path: str | None
    size_mb: float | None
    sha256: str | None
    source: str  # package name and version
    licence: str
    installed: bool
    metrics: Mapping[str, Any] = field(default_factory=dict)

    @property
    def tag(self) -> str:
        """The version string of the registry: ``name@version`` (``ModelRef.tag``)."""
        return f"{self.name}@{self.version}"

    @property
    def accuracy(self) -> float | None:
        for key in _ACCURACY_KEYS:
            value = self.metrics.get(key)
            if isinstance(value, int | float):
                return float(value)
        return None


def slots_of(name: str, task: str) -> list[str]:
    """The slots a model named ``name`` with task ``task`` can fill (often none, e.g. landmarks)."""
    found = []
    for slot, info in SLOT_INFO.items():
        if task not in info.tasks:
            continue
        if info.only_listed and name not in info.models:
            continue
        found.append(slot)
    return found


@dataclass
class _File:
    name: str
    version: str
    task: str
    path: str | None
    size_mb: float | None
    sha256: str | None
    source: str
    licence: str
    installed: bool


def _dlib_files() -> list[_File]:
    files = []
    for info in all_model_infos():
        if not slots_of(info.name, info.task):
            continue  # landmark models: no slot, and no need to hash 100 MB for nothing
        path: str | None = "(built into dlib)"
        size = None
        installed = True
        if info.sha256:
            try:
                resolved = verified_path(info.name)
                path, size = str(resolved), round(resolved.stat().st_size / 1e6, 2)
            except errors.FaceSocialError as error:  # listed, cannot serve
                log.warning("registry: %s is not usable: %s", info.name, error)
                path, installed = None, False
        files.append(
            _File(
                info.name, info.version, info.task, path, size, info.sha256 or None,
                f"{info.source_package}=={info.source_version}", info.licence, installed,
            )
        )  # fmt: skip
    return files


def _pack_files(model_dir: Path) -> list[_File]:
    files = []
    for entry in Manifest.load(model_dir).models.values():
        path = model_dir / entry.file
        files.append(
            _File(
                entry.name, entry.version, entry.task, str(path), round(entry.size_bytes / 1e6, 2),
                entry.sha256, f"{entry.source_package}@{entry.source_version}", entry.licence, path.is_file(),
            )
        )  # fmt: skip
    return files


def _packaged_files() -> list[_File]:
    files = []
    for weights, meta in packaged_manifests():
        licence = meta.get("licence", "")
        script = meta.get("script") or json.dumps(meta.get("training", {}))[:120]
        files.append(
            _File(
                str(meta["name"]), str(meta["version"]), str(meta["task"]), str(weights),
                round(int(meta["size_bytes"]) / 1e6, 2), str(meta["sha256"]),
                f"facesocial (trained here: {script})",
                licence if isinstance(licence, str) else json.dumps(licence), weights.is_file(),
            )
        )  # fmt: skip
    return files


def installed_versions(model_dir: Path) -> list[VersionFile]:
    """Every (slot, model file) of this installation, one per (slot, tag).

    dlib_resnet_v1 comes twice (dlib's ``.dat`` and our ONNX conversion, which gives the same
    vectors): one version, described by the later file (the converted one, which serves unless
    ``models.dlib_runtime`` is ``dlib``), installed if either file is.
    """
    merged: dict[tuple[str, str], VersionFile] = {}
    for file in [*_dlib_files(), *_pack_files(model_dir), *_packaged_files()]:
        for slot in slots_of(file.name, file.task):
            key = (slot, f"{file.name}@{file.version}")
            earlier = merged.get(key)
            merged[key] = VersionFile(
                slot=slot,
                name=file.name,
                version=file.version,
                task=file.task,
                path=file.path if file.installed or earlier is None else earlier.path,
                size_mb=file.size_mb,
                sha256=file.sha256,
                source=file.source,
                licence=file.licence,
                installed=file.installed or (earlier is not None and earlier.installed),
                metrics=VALIDATION_METRICS.get((slot, file.name), {}),
            )
    return list(merged.values())
