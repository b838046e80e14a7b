"""Passive liveness evaluation on labelled folders: ISO/IEC 30107-3 figures (JSON-ready dicts).

``facesocial eval liveness`` → :func:`evaluate_liveness`. Labels come from the folders the caller
names, never from file names: ``--live DIR`` holds bona fide presentations, ``--attack TYPE=DIR``
attacks of one type (photo, screen, mask, ...). Shortcuts: ``--nuaa DIR`` = live ``ClientRaw``,
photo ``ImposterRaw``, screen ``ImposterRaw_phone_17phonespoof``; ``--replay DIR`` = live
``crops/real``, screen ``crops/fake``. Folders are searched recursively; a ``--live`` or
``--attack`` path may also be one image file (e.g. the three Silent-Face samples, whose folder
also holds unlabelled files).

Each image is scored by its largest detected face. An image with no detected face is scored on
the whole image as the box (as in training, where the inputs are often face crops already) and
listed under ``no_face``; ``--skip-no-face`` leaves such images out instead.

``--cross-validate`` adds the subject-disjoint protocol of :mod:`facesocial.evaluation.liveness_cv`
on the same images: features are computed once per image, then the recipe is refit per fold.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from facesocial import errors
from facesocial.antispoof.features import batch_features
from facesocial.antispoof.passive import PassiveLiveness
from facesocial.evaluation.liveness_cv import GroupRule, cross_validate, group_key, recipe_c
from facesocial.evaluation.pad_metrics import pad_report
from facesocial.vision.image import decode_image
from facesocial.vision.pipeline import DetectOptions, FacePipeline

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp"})
LIVE = "live"


@dataclass(frozen=True, slots=True)
class LabelledFolder:
    """A folder (or one image file) of presentations of one kind: ``live`` or an attack type.

    ``grouping``: how :func:`liveness_cv.group_key` groups its flat files for cross-validation
    (``"prefix"`` for antispoof_replay's source-prefixed names; ``"folder"`` otherwise).
    """

    kind: str
    folder: Path
    grouping: GroupRule = "folder"


def folders_from_options(
    live: list[Path], attacks: list[str], nuaa: Path | None, replay: Path | None
) -> list[LabelledFolder]:
    """The labelled folders of the CLI options (module doc); ``attacks`` are ``TYPE=DIR`` strings.

    Raises ``errors.ValidationFailedError`` for a malformed ``TYPE=DIR`` or a missing folder.
    """
    out = [LabelledFolder(LIVE, p) for p in live]
    for spec in attacks:
        kind, sep, folder = spec.partition("=")
        if not sep or not kind or not folder or kind == LIVE:
            raise errors.ValidationFailedError(
                f"--attack expects TYPE=DIR with TYPE not 'live', got {spec!r}"
            )
        out.append(LabelledFolder(kind, Path(folder)))
    if nuaa is not None:
        out += [
            LabelledFolder(LIVE, nuaa / "ClientRaw"),
            LabelledFolder("photo", nuaa / "ImposterRaw"),
            LabelledFolder("screen", nuaa / "ImposterRaw_phone_17phonespoof"),
        ]
    if replay is not None:
        root = replay / "crops" if (replay / "crops").is_dir() else replay
        out += [
            LabelledFolder(LIVE, root / "real", "prefix"),
            LabelledFolder("screen", root / "fake", "prefix"),
        ]
    for item in out:
        if not (item.folder.is_dir() or item.folder.is_file()):
            raise errors.ValidationFailedError(f"{item.folder} is neither a folder nor a file")
    return out


def _images(folder: Path) -> list[Path]:
    if folder.is_file():
        return [folder]
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def evaluate_liveness(
    folders: list[LabelledFolder],
    pipeline: FacePipeline,
    options: DetectOptions,
    model: PassiveLiveness,
    threshold: float | None = None,
    skip_no_face: bool = False,
    cross_validated: bool = False,
) -> dict[str, Any]:
    """Score every image and report APCER per attack type, BPCER, ACER, EER, BPCER@APCER 1 %/5 %.

    ``threshold`` on P(live) defaults to the model's (manifest). Timing: mean ms per image of
    detection and of the liveness model (crop + features + ONNX), measured here. With
    ``cross_validated`` the report also has ``cross_validation``
    (:func:`liveness_cv.cross_validate` on the same features, C from the manifest), or
    ``cross_validation_error`` when the images cannot make folds (e.g. one group only).
    """
    chosen = model.threshold if threshold is None else float(threshold)
    scores: dict[str, list[float]] = {}
    rows: list[npt.NDArray[np.float32]] = []
    kinds: list[str] = []
    groups: list[str] = []
    no_face: list[str] = []
    failed: list[dict[str, str]] = []
    detect_s = score_s = 0.0
    for item in folders:
        for path in _images(item.folder):
            try:
                rgb = decode_image(path.read_bytes()).rgb
            except errors.FaceSocialError as exc:
                failed.append({"file": str(path), "code": exc.code, "message": exc.message})
                continue
            t0 = time.perf_counter()
            faces = pipeline.detect(rgb, options)
            t1 = time.perf_counter()
            if len(faces):
                box = faces.boxes[:1]
            else:
                no_face.append(str(path))
                if skip_no_face:
                    continue
                box = np.array([[0.0, 0.0, rgb.shape[1], rgb.shape[0]]])
            # Features once per image: the shipped model scores them, the folds refit on them.
            features = batch_features(rgb, box)
            probabilities, _signals = model.predict(features)
            t2 = time.perf_counter()
            detect_s += t1 - t0
            score_s += t2 - t1
            rows.append(features[0])
            kinds.append(item.kind)
            groups.append(group_key(item.folder, path, item.grouping))
            scores.setdefault(item.kind, []).append(float(probabilities[0, 0]))
    bona = scores.get(LIVE, [])
    attacks = {k: v for k, v in scores.items() if k != LIVE}
    report: dict[str, Any] = {
        "model": model.model.tag,
        "threshold": chosen,
        "threshold_source": "manifest (out-of-fold BPCER <= 5 %)" if threshold is None else "--threshold",
        "counts": {k: len(v) for k, v in scores.items()},
        "no_face": {"count": len(no_face), "scored_on_whole_image": not skip_no_face, "files": no_face},
        "failed": failed,
        "mean_p_live": {k: round(float(np.mean(v)), 4) for k, v in scores.items()},
        "timing_ms_per_image": {
            "detection": round(1000 * detect_s / max(1, len(rows)), 2),
            "liveness": round(1000 * score_s / max(1, len(rows)), 2),
        },
    }
    if bona and attacks:
        report["metrics"] = pad_report(bona, attacks, chosen)
    else:
        report["metrics"] = None
        report["note"] = "needs both live and attack images for APCER/BPCER"
    if cross_validated:
        c, c_source = recipe_c(model.manifest)
        try:
            report["cross_validation"] = cross_validate(
                np.stack(rows) if rows else [], kinds, groups, chosen, c
            )
            report["cross_validation"]["c_source"] = c_source
        except ValueError as exc:
            report["cross_validation"] = None
            report["cross_validation_error"] = str(exc)
    return report
