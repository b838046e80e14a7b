"""``facesocial eval group-photos``: recall and precision on large composed group photos.

Each picture is a labelled photo of ``dlib_faces_detection`` scaled up to cover a large canvas
(1920×1080 up to 8000×4500 and a 9000×3000 panorama; its hand-drawn faces become large
faces), with LFW faces pasted at random free places (:mod:`.composed`): sizes log-uniform from
``min_percent`` to ``max_percent`` of the short side, a quarter of them turned by a uniformly
random roll, the rest within ±10°. Recall is reported by face size as a percentage of the short
side, for upright and turned faces, and precision over all detections at the default
confidence. The choice of pictures is fixed by ``seed``; nothing is tuned per file.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from facesocial.evaluation.composed import (
    SourceFace,
    TruthFace,
    background,
    free_spot,
    lfw_faces,
    match_faces,
    paste_face,
)
from facesocial.evaluation.detection import read_imglab
from facesocial.settings import Settings
from facesocial.vision.image import decode_image
from facesocial.vision.rotation import rotate_view, unrotate_points

SIZES: tuple[tuple[int, int], ...] = ((1920, 1080), (4000, 3000), (6000, 4000), (8000, 4500), (9000, 3000))
# Size buckets, percent of the short side.
BUCKETS: tuple[tuple[float, float], ...] = ((1.5, 2.0), (2.0, 3.0), (3.0, 5.0), (5.0, 10.0), (10.0, 100.0))


def compose_group_photo(
    rng: np.random.Generator,
    width: int,
    height: int,
    photo: tuple[np.ndarray, list[TruthFace]],
    faces: list[SourceFace],
    *,
    count: int,
    turned_fraction: float,
    min_side: float,
    min_percent: float,
    max_percent: float,
) -> tuple[np.ndarray, list[TruthFace]]:
    """One picture and its truth (background faces first, then pasted ones)."""
    canvas, truth = background(photo[0], photo[1], width, height)
    short = min(width, height)
    low = max(min_side, min_percent / 100 * short)
    high = max(low * 1.01, max_percent / 100 * short)
    for _ in range(count):
        side = float(math.exp(rng.uniform(math.log(low), math.log(high))))
        turned = rng.uniform() < turned_fraction
        roll = float(rng.uniform(-180.0, 180.0)) if turned else float(rng.uniform(-10.0, 10.0))
        spot = free_spot(rng, width, height, side, truth)
        if spot is None:
            continue
        face = faces[int(rng.integers(len(faces)))]
        paste_face(canvas, face, spot, side, roll)
        truth.append(TruthFace(spot[0], spot[1], side, roll, source=face.name))
    return canvas, truth


def turn_picture(rgb: np.ndarray, truth: list[TruthFace], turns: int) -> tuple[np.ndarray, list[TruthFace]]:
    """The picture turned counter-clockwise by ``turns`` quarter turns (a photo whose EXIF
    orientation was lost), its faces moved and their roll lowered by 90° per turn."""
    view = rotate_view(rgb, turns)
    height, width = view.shape[:2]
    moved = []
    for face in truth:
        # original -> view is the view -> original map of the opposite turn
        ((cx, cy),) = unrotate_points([[face.cx, face.cy]], (4 - turns) % 4, width, height)
        roll = (face.roll - 90.0 * turns + 180.0) % 360.0 - 180.0
        moved.append(TruthFace(float(cx), float(cy), face.side, roll, face.ignore, face.source))
    return view, moved


def _photos(xml_files: list[Path]) -> list[tuple[np.ndarray, list[TruthFace]]]:
    photos = []
    for xml_file in xml_files:
        for path, boxes, ignore in read_imglab(xml_file):
            rgb = decode_image(path.read_bytes()).rgb
            truth = [
                TruthFace(
                    float((b[0] + b[2]) / 2),
                    float((b[1] + b[3]) / 2),
                    float(math.sqrt((b[2] - b[0]) * (b[3] - b[1]))),
                    0.0,
                    bool(skip),
                    path.name,
                )
                for b, skip in zip(boxes, ignore, strict=True)
            ]
            photos.append((rgb, truth))
    return photos


def run_group_photo_eval(
    lfw_dir: Path,
    xml_files: list[Path],
    *,
    settings: Settings | None = None,
    sizes: tuple[tuple[int, int], ...] = SIZES,
    per_size: int = 3,
    faces_per_picture: int = 14,
    turned_fraction: float = 0.25,
    min_percent: float = 1.5,
    max_percent: float = 12.0,
    min_face_size: int = 20,
    turn_pictures: bool = False,
    seed: int = 0,
) -> dict[str, Any]:
    from facesocial.container import Container

    settings = settings or Settings()
    detector = Container(settings).pipeline.detector
    confidence = settings.detection.detection_confidence
    rng = np.random.default_rng(seed)
    sources = lfw_faces(lfw_dir, 60, seed)
    photos = _photos(xml_files)
    rows: list[tuple[TruthFace, bool, str]] = []
    per_size_report: dict[str, Any] = {}
    detections = false_positives = 0
    total_seconds = 0.0
    for width, height in sizes:
        found_here = faces_here = fp_here = views = 0
        seconds = 0.0
        for _ in range(per_size):
            photo = photos[int(rng.integers(len(photos)))]
            rgb, truth = compose_group_photo(
                rng,
                width,
                height,
                photo,
                sources,
                count=faces_per_picture,
                turned_fraction=turned_fraction,
                min_side=min_face_size * 1.1,
                min_percent=min_percent,
                max_percent=max_percent,
            )
            if turn_pictures:
                rgb, truth = turn_picture(rgb, truth, int(rng.integers(1, 4)))
            started = time.perf_counter()
            faces = detector.detect(rgb, min_face_size=min_face_size, min_confidence=confidence)
            seconds += time.perf_counter() - started
            views += int(getattr(detector, "views_run", 0))
            match = match_faces(faces.boxes, faces.confidence, truth)
            label = f"{rgb.shape[1]}x{rgb.shape[0]}"
            for face, hit in zip(truth, match.found, strict=True):
                if not face.ignore:
                    rows.append((face, bool(hit), label))
            detections += len(faces)
            false_positives += match.false_positives
            fp_here += match.false_positives
            counted = [not f.ignore for f in truth]
            faces_here += int(sum(counted))
            found_here += int(match.found.sum())
        total_seconds += seconds
        per_size_report[f"{width}x{height}"] = {
            "pictures": per_size,
            "faces": faces_here,
            "recall": round(found_here / max(1, faces_here), 4),
            "false_positives": fp_here,
            "ms_per_picture": round(1000 * seconds / per_size, 1),
            "views_per_picture": round(views / per_size, 1),
        }
    pictures = per_size * len(sizes)
    return {
        "pictures": pictures,
        "faces": len(rows),
        "detector": detector.model.tag,
        "rotation": settings.detection.rotation,
        "small_face_fraction": settings.detection.small_face_fraction,
        "min_face_size": min_face_size,
        "confidence": confidence,
        "pictures_turned": turn_pictures,
        "match": "centre within 0.5 x side, size within 2x",
        "recall": _rate(rows, lambda f, label: True),
        "recall_by_percent_of_short_side": {
            f"{lo:g}-{hi:g}%" if hi < 100 else f">={lo:g}%": _rate(rows, _in_bucket(lo, hi))
            for lo, hi in BUCKETS
        },
        "recall_upright": _rate(rows, lambda f, label: abs(f.roll) <= 10.0),
        "recall_upright_by_percent": {
            f"{lo:g}-{hi:g}%" if hi < 100 else f">={lo:g}%": _rate(
                rows, lambda f, label, lo=lo, hi=hi: abs(f.roll) <= 10.0 and _in_bucket(lo, hi)(f, label)
            )
            for lo, hi in BUCKETS
        },
        "recall_turned": _rate(rows, lambda f, label: abs(f.roll) > 10.0),
        "recall_turned_over_45": _rate(rows, lambda f, label: abs(f.roll) > 45.0),
        "recall_turned_by_percent": {
            f"{lo:g}-{hi:g}%" if hi < 100 else f">={lo:g}%": _rate(
                rows, lambda f, label, lo=lo, hi=hi: abs(f.roll) > 10.0 and _in_bucket(lo, hi)(f, label)
            )
            for lo, hi in BUCKETS
        },
        "precision": round((detections - false_positives) / max(1, detections), 4),
        "false_positives": false_positives,
        "by_picture_size": per_size_report,
        "ms_per_picture": round(1000 * total_seconds / max(1, pictures), 1),
    }


def _in_bucket(lo: float, hi: float) -> Any:
    def test(face: TruthFace, label: str) -> bool:
        width, height = (int(v) for v in label.split("x"))
        percent = 100.0 * face.side / min(width, height)
        return lo <= percent < hi

    return test


def _rate(rows: list[tuple[TruthFace, bool, str]], keep: Any) -> dict[str, float | int | None]:
    chosen = [hit for face, hit, label in rows if keep(face, label)]
    return {"faces": len(chosen), "recall": round(sum(chosen) / len(chosen), 4) if chosen else None}
