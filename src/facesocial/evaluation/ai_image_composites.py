"""``facesocial eval ai-image --composites``: a synthetic face pasted into a real photograph.

For each real photo with a detected face (≥ 64 px) the largest face is replaced by the face of an
AI-generated image (taken in turn from the AI folders): the AI face's square (1.4 × its box) is
resized to the same square around the real face and blended in with a feathered ellipse (an alpha
matte blurred over 1/8 of the face size, so no hard seam is left for the other methods to find);
the composite is JPEG-encoded at quality 90, as a shared photo would be. Both the composite and
the untouched photo are analysed, so the figures are paired: how many composites are called
``ai_generated`` (and by which rule: ``decided_by``), and how many of the same photos untouched
were (the false alarms the face rule costs on these photos).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

from facesocial.evaluation.ai_image import Labelled
from facesocial.forensics.ai_image.analyzer import AiImageAnalyzer
from facesocial.forensics.ai_image.ensemble import MethodWeight, fuse
from facesocial.forensics.ensemble import DeepfakeDetector
from facesocial.vision.crops import square_crop
from facesocial.vision.image import decode_image

UInt8Array = npt.NDArray[np.uint8]
SCALE = 1.4


def _largest_box(detector: DeepfakeDetector, rgb: UInt8Array) -> npt.NDArray[np.float64] | None:
    faces = detector.detect(rgb)
    if len(faces) == 0:
        return None
    areas = (faces.boxes[:, 2] - faces.boxes[:, 0]) * (faces.boxes[:, 3] - faces.boxes[:, 1])
    return np.asarray(faces.boxes[int(np.argmax(areas))], np.float64)


def paste_face(
    real: UInt8Array, real_box: npt.ArrayLike, ai: UInt8Array, ai_box: npt.ArrayLike
) -> UInt8Array:
    """``real`` with the AI face blended over its face (module doc); same shape as ``real``."""
    x1, y1, x2, y2 = (float(v) for v in np.asarray(real_box).reshape(4))
    side = max(16, round(SCALE * max(x2 - x1, y2 - y1)))
    patch = square_crop(ai, np.asarray(ai_box, np.float64), SCALE, side, "edge").astype(np.float32)
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    x0, y0 = round(cx - side / 2.0), round(cy - side / 2.0)
    mask = np.zeros((side, side), np.float32)
    cv2.ellipse(mask, (side // 2, side // 2), (int(side * 0.30), int(side * 0.38)), 0, 0, 360, 1.0, -1)
    blur = max(3, (side // 8) | 1)
    mask = np.asarray(cv2.GaussianBlur(mask, (blur, blur), 0), np.float32)[..., None]
    out = real.astype(np.float32)
    h, w = real.shape[:2]
    ya, yb, xa, xb = max(0, y0), min(h, y0 + side), max(0, x0), min(w, x0 + side)
    if ya >= yb or xa >= xb:
        return real
    region = out[ya:yb, xa:xb]
    p = patch[ya - y0 : yb - y0, xa - x0 : xb - x0]
    m = mask[ya - y0 : yb - y0, xa - x0 : xb - x0]
    out[ya:yb, xa:xb] = region * (1.0 - m) + p * m
    return np.asarray(np.clip(out + 0.5, 0, 255), dtype=np.uint8)


def _jpeg(rgb: UInt8Array) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def evaluate_composites(
    analyzer: AiImageAnalyzer,
    detector: DeepfakeDetector,
    real: Sequence[Labelled],
    ai: Sequence[Labelled],
    weights: Mapping[str, MethodWeight],
    *,
    ai_threshold: float,
    real_below: float,
) -> dict[str, Any]:
    """Paired figures (module doc). Photos or AI images without a face are skipped and counted."""
    donors: list[tuple[UInt8Array, npt.NDArray[np.float64]]] = []
    for item in ai:
        rgb = decode_image(item.path.read_bytes()).rgb
        box = _largest_box(detector, rgb)
        if box is not None:
            donors.append((rgb, box))
    if not donors:
        raise ValueError("no face found in the AI images")
    active = set(weights)
    rows: list[dict[str, Any]] = []
    skipped = 0
    for item in real:
        photo = decode_image(item.path.read_bytes()).rgb
        box = _largest_box(detector, photo)
        if box is None:
            skipped += 1
            continue
        donor_rgb, donor_box = donors[len(rows) % len(donors)]
        row: dict[str, Any] = {"folder": item.folder}
        for kind, rgb in (("original", photo), ("composite", paste_face(photo, box, donor_rgb, donor_box))):
            data = _jpeg(rgb)
            report = analyzer.analyze(data, decode_image(data).rgb, active)
            verdict = fuse(report.methods, weights, ai_threshold=ai_threshold, real_below=real_below)
            faces = report.method("faces")
            row[kind] = {
                "band": verdict.band,
                "decided_by": verdict.decided_by,
                "faces_score": None if faces is None else faces.score,
            }
        rows.append(row)
    n = len(rows)
    if n == 0:
        raise ValueError("no face found in the real photos")

    def share(kind: str, band: str) -> float:
        return round(float(sum(r[kind]["band"] == band for r in rows)) / n, 4)

    return {
        "photos": n,
        "photos_without_a_face": skipped,
        "ai_face_donors": len(donors),
        "composites": {
            "ai_generated": share("composite", "ai_generated"),
            "uncertain": share("composite", "uncertain"),
            "real": share("composite", "real"),
            "decided_by_faces": round(sum(r["composite"]["decided_by"] == "faces" for r in rows) / n, 4),
        },
        "originals": {
            "ai_generated": share("original", "ai_generated"),
            "uncertain": share("original", "uncertain"),
            "real": share("original", "real"),
        },
        "method": "largest face replaced by an AI face, feathered ellipse, JPEG q90 (module doc)",
    }
