"""CompreFace's response shapes and error codes, built from the platform's results.

Source of the shapes: CompreFace's ``docs/Rest-API-description.md`` and
``docs/Face-services-and-plugins.md`` (exadel-inc/CompreFace); of the numeric error codes: its
``CommonExceptionCode`` enum (``java/common/.../handler/CommonExceptionCode.java``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

# Face plugins this server answers (CompreFace slugs); others are ignored (see docs/compreface.md).
SUPPORTED_PLUGINS = ("age", "gender", "landmarks", "calculator", "pose")

# Platform error code -> (CompreFace code, CompreFace HTTP status). Statuses of authentication,
# limits and outages stay the platform's (401, 403, 413, 429, 503): clients retry on those.
_CODES: dict[str, tuple[int, int]] = {
    "VALIDATION_ERROR": (26, 400),  # VALIDATION_CONSTRAINT_VIOLATION
    "EMPTY_IMAGE": (5, 400),  # EMPTY_REQUIRED_FIELD
    "INVALID_BASE64": (26, 400),
    "NOT_AN_IMAGE": (21, 400),  # UNAVAILABLE_FILE_EXTENSION
    "UNSUPPORTED_MEDIA_TYPE": (21, 400),
    "IMAGE_TRUNCATED": (21, 400),
    "IMAGE_TOO_SMALL": (28, 400),
    "NO_FACE_FOUND": (28, 400),  # NO_FACES_FOUND
    "MULTIPLE_FACES": (31, 400),  # TOO_MANY_FACES
    "FACE_INDEX_OUT_OF_RANGE": (28, 400),
    "IMAGE_NOT_FOUND": (11, 404),
    "SUBJECT_NOT_FOUND": (42, 404),
    "SUBJECT_ALREADY_EXISTS": (43, 400),
    "UNKNOWN_MODEL": (10, 404),  # MODEL_NOT_FOUND
    "MISSING_API_KEY": (20, 401),  # MISSING_REQUEST_HEADER
    "INVALID_API_KEY": (10, 401),
    "API_KEY_EXPIRED": (10, 401),
}
UNDEFINED = 0


def compreface_error(code: str, status: int) -> tuple[int, int]:
    """``(numeric code, HTTP status)`` of a platform error code; unknown ones keep their status
    with CompreFace's ``UNDEFINED`` (0)."""
    return _CODES.get(code, (UNDEFINED, status))


def parse_plugins(text: str | None) -> frozenset[str]:
    """The supported plugins named in ``face_plugins`` (comma-separated, case-insensitive)."""
    asked = {part.strip().lower() for part in (text or "").split(",")}
    return frozenset(asked & set(SUPPORTED_PLUGINS))


def box(bbox: dict[str, Any], probability: float) -> dict[str, Any]:
    """A platform ``bbox {x, y, width, height}`` (px) as CompreFace's integer corner box."""
    x, y = float(bbox["x"]), float(bbox["y"])
    return {
        "probability": round(float(probability), 5),
        "x_max": round(x + float(bbox["width"])),
        "y_max": round(y + float(bbox["height"])),
        "x_min": round(x),
        "y_min": round(y),
    }


def xyxy(bbox: dict[str, Any]) -> tuple[float, float, float, float]:
    x, y = float(bbox["x"]), float(bbox["y"])
    return x, y, x + float(bbox["width"]), y + float(bbox["height"])


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``(x1, y1, x2, y2)`` boxes, 0..1."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match(
    boxes: Sequence[Sequence[float]], candidates: Sequence[Sequence[float]], minimum: float = 0.3
) -> list[int | None]:
    """For each of ``boxes``, the index of the candidate box overlapping it most (None below
    ``minimum`` IoU): joins faces found by two calls on the same image."""
    out: list[int | None] = []
    for a in boxes:
        scores = [iou(a, b) for b in candidates]
        best = int(np.argmax(scores)) if scores else -1
        out.append(best if best >= 0 and scores[best] >= minimum else None)
    return out


def five_points(points68: Sequence[Sequence[float]]) -> list[list[int]]:
    """CompreFace's 5 landmarks from the 68-point (iBUG) set: eye centres, nose tip, mouth
    corners, image-left first (as in CompreFace's example responses)."""
    pts = np.asarray(points68, dtype=np.float64)
    eyes = sorted([pts[36:42].mean(axis=0), pts[42:48].mean(axis=0)], key=lambda p: float(p[0]))
    mouth = sorted([pts[48], pts[54]], key=lambda p: float(p[0]))
    return [[round(float(p[0])), round(float(p[1]))] for p in (*eyes, pts[30], *mouth)]


def plugin_fields(face: dict[str, Any], plugins: frozenset[str]) -> dict[str, Any]:
    """The age / gender / landmarks / pose fields of one face of a platform detect result."""
    out: dict[str, Any] = {}
    attributes = face.get("attributes")
    if attributes is not None and "age" in plugins:
        # The range holds the central 80 % of the age distribution (vision/attributes.py _RANGE).
        out["age"] = {
            "probability": 0.8,
            "high": int(attributes["age_range"]["max"]),
            "low": int(attributes["age_range"]["min"]),
        }
    if attributes is not None and "gender" in plugins:
        out["gender"] = {
            "probability": float(attributes["gender_confidence"]),
            "value": str(attributes["gender"]).lower(),
        }
    if "landmarks" in plugins and face.get("landmarks_68"):
        out["landmarks"] = five_points(face["landmarks_68"])
    mesh = face.get("mesh")
    if "pose" in plugins and mesh is not None:
        out["pose"] = {"pitch": float(mesh["pitch"]), "roll": float(mesh["roll"]), "yaw": float(mesh["yaw"])}
    return out


def model_tag(ref: dict[str, Any] | None) -> str | None:
    """``name@version`` of a platform model description (``{"name", "version", ...}``)."""
    if not ref:
        return None
    name, version = ref.get("name"), ref.get("version")
    return f"{name}@{version}" if version else str(name)


def similarity(cosine: float) -> float:
    """The platform's cosine similarity (−1..1) shown as CompreFace's 0..1 similarity: negative
    values (unrelated faces) become 0; rounded to 5 places as CompreFace does."""
    return round(max(0.0, float(cosine)), 5)
