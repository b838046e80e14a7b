"""``facesocial eval detection``: recall, precision and AP at IoU 0.5 on dlib imglab XML labels.

Any folder with an imglab XML (``<image file=...><box top left width height/>``) works. Boxes
marked ``ignore='1'`` are neither required nor counted as false positives. AP is the area
under the precision-recall curve over all detections ranked by confidence (VOC-style, all
points interpolated).
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

from facesocial.settings import Settings
from facesocial.vision.geometry import iou_matrix
from facesocial.vision.image import decode_image


def read_imglab(xml_file: Path) -> list[tuple[Path, np.ndarray, np.ndarray]]:
    """(image path, boxes xyxy, ignore flags) per image."""
    images = []
    for image in ET.parse(xml_file).getroot().iter("image"):
        boxes, ignore = [], []
        for box in image.iter("box"):
            left, top = float(box.get("left", 0)), float(box.get("top", 0))
            boxes.append([left, top, left + float(box.get("width", 0)), top + float(box.get("height", 0))])
            ignore.append(box.get("ignore") == "1")
        images.append(
            (
                xml_file.parent / str(image.get("file")),
                np.array(boxes, float).reshape(-1, 4),
                np.array(ignore, bool),
            )
        )
    return images


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the interpolated precision-recall curve."""
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[0.0], precision, [0.0]])
    for i in range(len(p) - 2, -1, -1):
        p[i] = max(p[i], p[i + 1])
    steps = np.where(r[1:] != r[:-1])[0]
    return float(np.sum((r[steps + 1] - r[steps]) * p[steps + 1]))


def run_detection_eval(
    xml_file: Path, *, settings: Settings | None = None, iou: float = 0.5, min_face_size: int = 20
) -> dict[str, Any]:
    from facesocial.container import Container

    settings = settings or Settings()
    pipeline = Container(settings).pipeline
    detector = pipeline.detector
    views = 0
    # Score everything the detector offers; AP sweeps the threshold itself.
    scored: list[tuple[float, bool]] = []
    total_faces = 0
    seconds = 0.0
    images = read_imglab(xml_file)
    default_confidence = settings.detection.detection_confidence
    default_seconds = 0.0
    default_views = 0
    if images:  # warm-up: the first inference allocates the runtime's buffers
        detector.detect(
            decode_image(images[0][0].read_bytes()).rgb,
            min_face_size=min_face_size,
            min_confidence=default_confidence,
        )
    for path, truth, ignore in images:
        rgb = decode_image(path.read_bytes()).rgb
        started = time.perf_counter()
        faces = detector.detect(rgb, min_face_size=min_face_size, min_confidence=0.05)
        seconds += time.perf_counter() - started
        views += int(getattr(detector, "views_run", 0))
        # The cost a caller pays: fewer candidates reach a second look at the default cut-off.
        started = time.perf_counter()
        detector.detect(rgb, min_face_size=min_face_size, min_confidence=default_confidence)
        default_seconds += time.perf_counter() - started
        default_views += int(getattr(detector, "views_run", 0))
        total_faces += int((~ignore).sum())
        taken = np.zeros(len(truth), bool)
        overlaps = iou_matrix(faces.boxes, truth) if len(truth) else np.zeros((len(faces), 0))
        for row in np.argsort(-faces.confidence):
            best = int(np.argmax(overlaps[row])) if overlaps.shape[1] else -1
            if best >= 0 and overlaps[row, best] >= iou and not taken[best]:
                taken[best] = True
                if not ignore[best]:
                    scored.append((float(faces.confidence[row]), True))
            elif not (best >= 0 and overlaps[row, best] >= iou and ignore[best]):
                scored.append((float(faces.confidence[row]), False))
    scored.sort(key=lambda item: -item[0])
    hits = np.array([hit for _, hit in scored], bool)
    confidences = np.array([c for c, _ in scored])
    true_positives = np.cumsum(hits)
    recall_curve = true_positives / max(1, total_faces)
    precision_curve = true_positives / np.arange(1, len(hits) + 1) if len(hits) else np.zeros(0)
    at_default = confidences >= default_confidence
    found = int(hits[at_default].sum())
    reported = int(at_default.sum())
    return {
        "xml": str(xml_file),
        "images": len(images),
        "faces": total_faces,
        "detector": detector.model.tag,
        "rotation": settings.detection.rotation,
        "small_face_fraction": settings.detection.small_face_fraction,
        "iou": iou,
        "min_face_size": min_face_size,
        "ap": round(average_precision(recall_curve, precision_curve), 4),
        "at_default_confidence": {
            "confidence": default_confidence,
            "recall": round(found / max(1, total_faces), 4),
            "precision": round(found / max(1, reported), 4),
            "false_positives": reported - found,
        },
        "max_recall": round(float(recall_curve[-1]) if len(recall_curve) else 0.0, 4),
        # Scoring everything down to 0.05 (the AP sweep):
        "ms_per_image": round(1000 * seconds / max(1, len(images)), 1),
        "model_inputs_per_image": round(views / max(1, len(images)), 1),
        # Detecting at the default confidence, as the API does:
        "ms_per_image_at_default_confidence": round(1000 * default_seconds / max(1, len(images)), 1),
        "model_inputs_per_image_at_default_confidence": round(default_views / max(1, len(images)), 1),
    }
