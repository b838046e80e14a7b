"""Attribute-head evaluation on labelled folders (JSON-ready dicts).

* ``eval_age_gender``: UTKFace layout, files ``age_gender_race_date*.jpg`` anywhere below the
  folder (gender 0 = male, 1 = female). The images are already cropped faces: BlazeFace
  finds the face (the one nearest the centre); when it finds none the whole image is the
  box. faceres age is scored with both bin read-outs; GEAR and SSR-Net ages are included
  for comparison.
* ``eval_emotion``: FER-2013 layout, ``<label>/*.png|jpg`` with labels among ``EMOTIONS``.
  The 48x48 grey images are whole faces: the whole image is the face box (no detection).

``limit`` takes a deterministic random subset (seed 0) so a small run is not biased by the
file order (UTK names sort by age).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from facesocial.models.manifest import ModelRef
from facesocial.models.runtime import ModelCache, OnnxModel
from facesocial.vision.crops import CropCache, SquareSpec
from facesocial.vision.detect_blazeface import BlazeFaceDetector
from facesocial.vision.faces import Faces
from facesocial.vision.heads.emotion import EMOTIONS, EmotionHead
from facesocial.vision.heads.faceres import faceres_forward
from facesocial.vision.heads.faceres_attributes import age_from_bins
from facesocial.vision.heads.race import gear_outputs

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
ADULT_AGES = (16, 70)
# SSR-Net takes 64² BGR 0..255 with the 40 % margin it was trained with.
SSRNET_CROP = SquareSpec(scale=1.4, size=64)


def _models(models: ModelCache | None) -> ModelCache:
    if models is not None:
        return models
    from facesocial.settings import Settings

    return ModelCache(Settings().models.model_dir)


def _subset(paths: list[Path], limit: int | None) -> list[Path]:
    if limit is None or limit >= len(paths):
        return paths
    chosen = np.random.default_rng(0).permutation(len(paths))[:limit]
    return [paths[i] for i in sorted(chosen)]


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def _read_rgb(path: Path) -> npt.NDArray[np.uint8]:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cannot read image {path}")
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def whole_image_face(rgb: npt.NDArray[np.uint8], detector: ModelRef) -> Faces:
    height, width = rgb.shape[:2]
    return Faces(
        boxes=np.array([[0.0, 0.0, width, height]], np.float32),
        confidence=np.ones((1,), np.float32),
        detector=detector,
    )


def central_face(
    rgb: npt.NDArray[np.uint8], detector: BlazeFaceDetector, pad: float = 0.25
) -> tuple[Faces, bool]:
    """The detected face nearest the image centre, or the whole image (False) if none.

    BlazeFace misses faces that fill the frame (on UTKFace chips it found 111/203 as they
    are, 200/203 with a 25 % black border), so the image is padded by ``pad`` of its
    height on each side for detection; boxes and keypoints are shifted back.
    """
    border = round(pad * rgb.shape[0])
    padded = cv2.copyMakeBorder(rgb, border, border, border, border, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    faces = detector.detect(np.ascontiguousarray(padded), min_face_size=20, min_confidence=0.5)
    if len(faces) == 0:
        return whole_image_face(rgb, ModelRef("whole_image", "1")), False
    centres = (faces.boxes[:, :2] + faces.boxes[:, 2:]) / 2.0
    target = np.array([padded.shape[1] / 2.0, padded.shape[0] / 2.0], np.float32)
    face = faces[[int(np.argmin(np.linalg.norm(centres - target, axis=1)))]]
    shifted = replace(face, boxes=(face.boxes - border).astype(np.float32))
    keypoints = face.columns.get("keypoints6")
    if keypoints is not None:
        shifted = shifted.with_column("keypoints6", (np.asarray(keypoints) - border).astype(np.float32))
    return shifted, True


def parse_utk_name(path: Path) -> tuple[int, int] | None:
    """(age, gender) from ``age_gender_race_date...``; None for malformed names."""
    parts = path.name.split("_")
    if len(parts) < 3 or not parts[0].isdigit() or parts[1] not in {"0", "1"}:
        return None
    return int(parts[0]), int(parts[1])


def _mae(pred: Iterable[float], truth: Iterable[float]) -> float:
    p, t = np.asarray(list(pred), np.float64), np.asarray(list(truth), np.float64)
    return round(float(np.abs(p - t).mean()), 2) if p.size else float("nan")


def _ssrnet_age(model: OnnxModel, cache: CropCache) -> float:
    images = cache.get(SSRNET_CROP).images[..., ::-1]  # RGB -> BGR
    return float(model.run(images.astype(np.float32))["Identity"].reshape(-1)[0])


def eval_age_gender(
    utk_dir: Path, limit: int | None = None, models: ModelCache | None = None
) -> dict[str, Any]:
    """MAE and gender accuracy overall and for ages 16-70, per model and age read-out."""
    cache = _models(models)
    detector = BlazeFaceDetector(cache.get("blazeface_full"))
    faceres, gear, ssrnet = cache.get("faceres"), cache.get("gear"), cache.get("age_ssrnet")
    labels = {p: lab for p in _images(utk_dir) if (lab := parse_utk_name(p)) is not None}
    labelled = [(p, labels[p]) for p in _subset(sorted(labels), limit)]
    rows: list[dict[str, float]] = []
    detected = 0
    seconds = {"detect": 0.0, "faceres": 0.0, "gear": 0.0, "ssrnet": 0.0}
    for path, (age, gender) in labelled:
        rgb = _read_rgb(path)
        t0 = time.perf_counter()
        faces, found = central_face(rgb, detector)
        t1 = time.perf_counter()
        detected += found
        crops = CropCache(rgb, faces)
        out = faceres_forward(faceres, crops)
        t2 = time.perf_counter()
        gear_out = gear_outputs(gear, crops)
        t3 = time.perf_counter()
        ssr_age = _ssrnet_age(ssrnet, crops)
        t4 = time.perf_counter()
        for key, dt in zip(seconds, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            seconds[key] += dt
        rows.append(
            {
                "age": age,
                "male": 1.0 - gender,
                "faceres_expected": float(age_from_bins(out.age_bins, "expected")[0]),
                "faceres_argmax_interp": float(age_from_bins(out.age_bins, "argmax_interp")[0]),
                "faceres_male": float(out.male_probability[0]),
                "gear_age": float(gear_out.age[0]),
                "gear_male": float(gear_out.male_probability[0]),
                "ssrnet_age": ssr_age,
            }
        )
    lo, hi = ADULT_AGES
    adult = [r for r in rows if lo <= r["age"] <= hi]

    def age_stats(key: str) -> dict[str, float]:
        return {
            "mae": _mae((r[key] for r in rows), (r["age"] for r in rows)),
            f"mae_{lo}_{hi}": _mae((r[key] for r in adult), (r["age"] for r in adult)),
        }

    def gender_stats(key: str) -> dict[str, float]:
        def acc(subset: list[dict[str, float]]) -> float:
            if not subset:
                return float("nan")
            return round(float(np.mean([(r[key] > 0.5) == (r["male"] > 0.5) for r in subset])), 4)

        return {"accuracy": acc(rows), f"accuracy_{lo}_{hi}": acc(adult)}

    n = max(1, len(rows))
    return {
        "dataset": str(utk_dir),
        "n": len(rows),
        f"n_{lo}_{hi}": len(adult),
        "face_detected": detected,
        "age": {
            "faceres_expected": age_stats("faceres_expected"),
            "faceres_argmax_interp": age_stats("faceres_argmax_interp"),
            "gear": age_stats("gear_age"),
            "ssrnet": age_stats("ssrnet_age"),
        },
        "gender": {"faceres": gender_stats("faceres_male"), "gear": gender_stats("gear_male")},
        "ms_per_image": {k: round(1000 * v / n, 1) for k, v in seconds.items()},
        "models": {m.ref.name: m.ref.version for m in (faceres, gear, ssrnet)},
    }


def eval_emotion(fer_dir: Path, limit: int | None = None, models: ModelCache | None = None) -> dict[str, Any]:
    """Accuracy, per-class recall, majority-class baseline on a ``<label>/*`` folder."""
    cache = _models(models)
    head = EmotionHead(cache.get("emotion"))
    labelled = [
        (p, folder.name)
        for folder in sorted(fer_dir.iterdir())
        if folder.is_dir() and folder.name in EMOTIONS
        for p in _images(folder)
    ]
    by_path = dict(labelled)
    chosen = _subset([p for p, _ in labelled], limit)
    truth: list[str] = []
    predicted: list[str] = []
    seconds = 0.0
    for path in chosen:
        rgb = _read_rgb(path)
        faces = whole_image_face(rgb, ModelRef("whole_image", "1"))
        t0 = time.perf_counter()
        result = head.run(rgb, faces)[0]
        seconds += time.perf_counter() - t0
        truth.append(by_path[path])
        predicted.append(result.label)
    t, p = np.array(truth), np.array(predicted)
    per_class: dict[str, dict[str, float]] = {}
    for label in EMOTIONS:
        support = int((t == label).sum())
        predicted_count = int((p == label).sum())
        hits = int(((t == label) & (p == label)).sum())
        per_class[label] = {
            "n": support,
            "recall": round(hits / support, 4) if support else float("nan"),
            "precision": round(hits / predicted_count, 4) if predicted_count else float("nan"),
        }
    counts = {label: int((t == label).sum()) for label in EMOTIONS}
    majority = max(counts, key=lambda k: counts[k]) if truth else ""
    return {
        "dataset": str(fer_dir),
        "n": len(truth),
        "accuracy": round(float((t == p).mean()), 4) if truth else float("nan"),
        "balanced_accuracy": round(float(np.nanmean([v["recall"] for v in per_class.values() if v["n"]])), 4)
        if truth
        else float("nan"),
        "majority_class": majority,
        "majority_baseline": round(counts[majority] / len(truth), 4) if truth else float("nan"),
        "per_class": per_class,
        "ms_per_image": round(1000 * seconds / max(1, len(truth)), 2),
        "model": head.model.as_dict(),
    }
