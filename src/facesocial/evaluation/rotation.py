"""``facesocial eval rotation``: faces matched against their own turned copies.

For each of ``limit`` LFW images (one per person, a fixed random choice; the face nearest the
centre, where dlib's HOG puts it, :mod:`.composed`), the upright image is embedded once, then
the image is turned clockwise by 0, 45, ..., 315° on a black canvas large enough to keep it
whole. Per angle: the face is *detected* when a face is found near where the upright face's
centre went; it *matches* when its embedding's cosine similarity to the upright embedding
reaches the model's balanced verification threshold; the *roll error* is the difference
between the reported roll and the upright roll + angle; *gender agrees* when the attribute
models are installed and give the same gender as upright.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from facesocial.evaluation.composed import lfw_faces
from facesocial.settings import Settings
from facesocial.vision.faces import Faces
from facesocial.vision.pipeline import DetectOptions, FacePipeline

ANGLES: tuple[int, ...] = (0, 45, 90, 135, 180, 225, 270, 315)
_OPTIONS = DetectOptions(min_face_size=20, max_faces=20, detection_confidence=0.5)


def turned_copy(rgb: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """``rgb`` turned clockwise by ``angle`` degrees on a black square canvas that holds it
    whole, and the 2x3 matrix mapping original pixels to the canvas."""
    height, width = rgb.shape[:2]
    side = math.ceil(math.hypot(width, height)) + 2
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), -angle, 1.0)  # cv2: counter-clockwise
    matrix[:, 2] += [(side - width) / 2, (side - height) / 2]
    canvas = cv2.warpAffine(rgb, matrix, (side, side), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
    return np.ascontiguousarray(canvas), matrix


def _nearest(faces: Faces, point: np.ndarray, side: float) -> Faces | None:
    if len(faces) == 0:
        return None
    centres = (faces.boxes[:, :2] + faces.boxes[:, 2:]) / 2.0
    distance = np.linalg.norm(centres - point, axis=1)
    best = int(np.argmin(distance))
    return faces[[best]] if distance[best] <= 0.5 * side else None


def _wrap(degrees: float) -> float:
    return (degrees + 180.0) % 360.0 - 180.0


def run_rotation_eval(
    lfw_dir: Path,
    *,
    settings: Settings | None = None,
    model: str | None = None,
    limit: int = 100,
    seed: int = 0,
    angles: tuple[int, ...] = ANGLES,
) -> dict[str, Any]:
    from facesocial.container import Container

    settings = settings or Settings()
    pipeline: FacePipeline = Container(settings).pipeline
    embedder = pipeline.embedder_for(model)
    threshold = settings.thresholds[embedder.model.name].verify_balanced
    with_gender = pipeline.attributes is not None
    per_angle: dict[int, dict[str, list[float]]] = {
        a: {"detected": [], "match": [], "similarity": [], "roll_error": [], "gender": []} for a in angles
    }
    skipped = 0
    seconds = 0.0
    for source in lfw_faces(lfw_dir, limit, seed):
        upright = _nearest(pipeline.detect(source.rgb, _OPTIONS), np.array(source.centre), source.side)
        if upright is None:
            skipped += 1
            continue
        reference = np.asarray(pipeline.embed(source.rgb, upright, model).columns["embedding"][0])
        upright_roll = float(upright.columns["roll"][0])
        upright_gender = pipeline.analyze_attributes(source.rgb, upright)[0].gender if with_gender else ""
        for angle in angles:
            canvas, matrix = turned_copy(source.rgb, angle)
            centre = matrix[:, :2] @ np.array(source.centre) + matrix[:, 2]
            started = time.perf_counter()
            found = _nearest(pipeline.detect(canvas, _OPTIONS), centre, source.side)
            seconds += time.perf_counter() - started
            row = per_angle[angle]
            row["detected"].append(float(found is not None))
            if found is None:
                row["match"].append(0.0)
                continue
            vector = np.asarray(pipeline.embed(canvas, found, model).columns["embedding"][0])
            similarity = float(vector @ reference)
            row["similarity"].append(similarity)
            row["match"].append(float(similarity >= threshold))
            row["roll_error"].append(abs(_wrap(float(found.columns["roll"][0]) - upright_roll - angle)))
            if with_gender:
                row["gender"].append(
                    float(pipeline.analyze_attributes(canvas, found)[0].gender == upright_gender)
                )
    images = len(per_angle[angles[0]]["detected"])
    report: dict[str, Any] = {
        "images": images,
        "skipped_no_upright_face": skipped,
        "detector": pipeline.detector.model.tag,
        "rotation": settings.detection.rotation,
        "embedding": embedder.model.tag,
        "threshold": threshold,
        "by_angle": {str(a): _summary(per_angle[a]) for a in angles},
        "all_angles": _summary(
            {k: [v for a in angles for v in per_angle[a][k]] for k in per_angle[angles[0]]}
        ),
        "ms_per_detection": round(1000 * seconds / max(1, images * len(angles)), 1),
    }
    return report


def _summary(row: dict[str, list[float]]) -> dict[str, Any]:
    def mean(values: list[float]) -> float | None:
        return round(float(np.mean(values)), 4) if values else None

    errors = row["roll_error"]
    return {
        "detection_rate": mean(row["detected"]),
        "match_rate": mean(row["match"]),
        "median_similarity": round(float(np.median(row["similarity"])), 4) if row["similarity"] else None,
        "roll_error_median": round(float(np.median(errors)), 1) if errors else None,
        "roll_error_p90": round(float(np.percentile(errors, 90)), 1) if errors else None,
        "roll_error_max": round(float(np.max(errors)), 1) if errors else None,
        # Found, but reported turned by more than 45° from the truth (seen the wrong way round).
        "wrong_way_round": int(sum(error > 45.0 for error in errors)),
        "gender_agreement": mean(row["gender"]),
    }
