"""The platform's face results in Rekognition's shapes (API reference, data types ``FaceDetail``,
``BoundingBox``, ``Landmark``, ``Pose``, ``ImageQuality``, ``AgeRange``, ``Gender``, ``Emotion``).

Conventions kept from Rekognition: ratios of the image's width and height for boxes and
landmarks (0..1, may stray outside for faces cut by the border); confidences and similarities
0..100; landmark names ``eyeLeft``/``eyeRight``... where *left* is the image's left (the
subject's right eye is ``eyeLeft``), as in Rekognition's documented examples.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

# 468-point face mesh (MediaPipe canonical topology) vertex -> Rekognition landmark name.
# Indices: MediaPipe's canonical_face_model_uv_visualization chart (33/133/159/145: the
# image-left eye's corners and lids; 362/263/386/374 the image-right one; 61/291 mouth
# corners; 0/17 lip middles; 1 nose tip; 129/358 alae; 152 chin; 234/454 the face's sides).
MESH_LANDMARKS: dict[str, int] = {
    "nose": 1,
    "noseLeft": 129,
    "noseRight": 358,
    "mouthLeft": 61,
    "mouthRight": 291,
    "mouthUp": 0,
    "mouthDown": 17,
    "leftEyeLeft": 33,
    "leftEyeRight": 133,
    "leftEyeUp": 159,
    "leftEyeDown": 145,
    "rightEyeLeft": 362,
    "rightEyeRight": 263,
    "rightEyeUp": 386,
    "rightEyeDown": 374,
    "leftEyeBrowLeft": 70,
    "leftEyeBrowUp": 105,
    "leftEyeBrowRight": 107,
    "rightEyeBrowLeft": 336,
    "rightEyeBrowUp": 334,
    "rightEyeBrowRight": 300,
    "upperJawlineLeft": 234,
    "midJawlineLeft": 172,
    "chinBottom": 152,
    "midJawlineRight": 397,
    "upperJawlineRight": 454,
}

# 68-point iBUG 300-W markup (dlib's shape predictor), 0-based -> name; tuples are averaged.
IBUG_LANDMARKS: dict[str, tuple[int, ...]] = {
    "eyeLeft": (36, 37, 38, 39, 40, 41),
    "eyeRight": (42, 43, 44, 45, 46, 47),
    "nose": (30,),
    "noseLeft": (31,),
    "noseRight": (35,),
    "mouthLeft": (48,),
    "mouthRight": (54,),
    "mouthUp": (51,),
    "mouthDown": (57,),
    "leftEyeLeft": (36,),
    "leftEyeRight": (39,),
    "leftEyeUp": (37, 38),
    "leftEyeDown": (40, 41),
    "rightEyeLeft": (42,),
    "rightEyeRight": (45,),
    "rightEyeUp": (43, 44),
    "rightEyeDown": (46, 47),
    "leftEyeBrowLeft": (17,),
    "leftEyeBrowUp": (19,),
    "leftEyeBrowRight": (21,),
    "rightEyeBrowLeft": (22,),
    "rightEyeBrowUp": (24,),
    "rightEyeBrowRight": (26,),
    "leftPupil": (36, 37, 38, 39, 40, 41),
    "rightPupil": (42, 43, 44, 45, 46, 47),
    "upperJawlineLeft": (0,),
    "midJawlineLeft": (4,),
    "chinBottom": (8,),
    "midJawlineRight": (12,),
    "upperJawlineRight": (16,),
}

# The platform's emotion classes (vision/attributes.py, FER+ style) -> Rekognition's Emotion.Type.
# Rekognition's CONFUSED has no counterpart and is not reported.
EMOTIONS: dict[str, str] = {
    "happy": "HAPPY",
    "sad": "SAD",
    "angry": "ANGRY",
    "disgust": "DISGUSTED",
    "surprise": "SURPRISED",
    "neutral": "CALM",
    "fear": "FEAR",
}

# Rekognition's documented default FaceMatchThreshold / SimilarityThreshold (percent).
DEFAULT_THRESHOLD = 80.0


def bounding_box(bbox: dict[str, Any], width: int, height: int) -> dict[str, float]:
    """Pixel ``{x, y, width, height}`` -> ``{Width, Height, Left, Top}`` as image ratios."""
    return {
        "Width": round(bbox["width"] / width, 6),
        "Height": round(bbox["height"] / height, 6),
        "Left": round(bbox["x"] / width, 6),
        "Top": round(bbox["y"] / height, 6),
    }


def _point(name: str, point: Any, width: int, height: int) -> dict[str, Any]:
    """``point``: (x, y) in pixels -> a Landmark with image ratios."""
    return {"Type": name, "X": round(float(point[0]) / width, 6), "Y": round(float(point[1]) / height, 6)}


def mesh_landmarks(mesh: dict[str, Any], width: int, height: int) -> list[dict[str, Any]]:
    """Rekognition's 30 landmarks from a 468-point mesh (``mesh`` as MeshResult.as_dict)."""
    points = np.asarray(mesh["landmarks"], dtype=np.float64)[:, :2]
    out = [_point(name, points[index], width, height) for name, index in MESH_LANDMARKS.items()]
    left_eye = points[[33, 133]].mean(axis=0)
    right_eye = points[[362, 263]].mean(axis=0)
    out.insert(0, _point("eyeRight", right_eye, width, height))
    out.insert(0, _point("eyeLeft", left_eye, width, height))
    irises = sorted(
        (
            np.asarray(mesh["iris"][side], dtype=np.float64).reshape(-1, 2).mean(axis=0)
            for side in ("left", "right")
        ),
        key=lambda p: float(p[0]),
    )  # the image-left iris is leftPupil, whatever side the mesh called it
    out.append(_point("leftPupil", irises[0], width, height))
    out.append(_point("rightPupil", irises[1], width, height))
    return out


def ibug_landmarks(points: Sequence[Sequence[float]], width: int, height: int) -> list[dict[str, Any]]:
    """Rekognition's 30 landmarks from the 68-point iBUG markup (pupils: the eye contour's mean)."""
    array = np.asarray(points, dtype=np.float64)
    return [
        _point(name, array[list(idx)].mean(axis=0), width, height) for name, idx in IBUG_LANDMARKS.items()
    ]


def face_detail(item: dict[str, Any], width: int, height: int, *, everything: bool) -> dict[str, Any]:
    """One detected face (DetectionService item) as a Rekognition ``FaceDetail``.

    DEFAULT (``everything`` False): BoundingBox, Confidence, Landmarks, Pose, Quality.
    ALL adds AgeRange, Gender, Emotions (from ``item["attributes"]``) and EyesOpen (mesh blink).
    Pose: the mesh's yaw/pitch/roll in degrees; without a mesh, only Roll (the detector's).
    """
    detail: dict[str, Any] = {
        "BoundingBox": bounding_box(item["bbox"], width, height),
        "Confidence": round(float(item["confidence"]) * 100, 4),
    }
    mesh = item.get("mesh")
    if mesh is not None:
        detail["Landmarks"] = mesh_landmarks(mesh, width, height)
        detail["Pose"] = {
            "Roll": float(mesh["roll"]),
            "Yaw": float(mesh["yaw"]),
            "Pitch": float(mesh["pitch"]),
        }
    else:
        if "landmarks_68" in item:
            detail["Landmarks"] = ibug_landmarks(item["landmarks_68"], width, height)
        if "roll" in item:
            detail["Pose"] = {"Roll": float(item["roll"])}
    quality = item.get("quality")
    if quality is not None:
        detail["Quality"] = {
            "Brightness": round(float(quality["brightness"]) * 100, 4),
            "Sharpness": round(float(quality["sharpness"]) * 100, 4),
        }
    attributes = item.get("attributes")
    if everything and attributes is not None:
        detail["AgeRange"] = {
            "Low": int(attributes["age_range"]["min"]),
            "High": int(attributes["age_range"]["max"]),
        }
        detail["Gender"] = {
            "Value": "Male" if attributes["gender"] == "male" else "Female",
            "Confidence": round(float(attributes["gender_confidence"]) * 100, 4),
        }
        emotions = [
            {"Type": EMOTIONS[name], "Confidence": round(float(score) * 100, 4)}
            for name, score in attributes["emotions"].items()
            if name in EMOTIONS
        ]
        detail["Emotions"] = sorted(emotions, key=lambda e: -e["Confidence"])
    if everything and mesh is not None:
        detail["EyesOpen"] = {
            "Value": not bool(mesh["blink"]),
            "Confidence": round(float(mesh["face_score"]) * 100, 4),
        }
    return detail


def compact_face(detail: dict[str, Any]) -> dict[str, Any]:
    """A ``ComparedFace`` (CompareFaces): FaceDetail's BoundingBox, Confidence, Landmarks, Pose, Quality."""
    return {
        k: detail[k] for k in ("BoundingBox", "Confidence", "Landmarks", "Pose", "Quality") if k in detail
    }


def to_similarity(cosine: float, threshold: float) -> float:
    """A model's cosine similarity as Rekognition's 0..100 Similarity.

    Anchored so that Rekognition's default threshold means the model's calibrated identify
    threshold ``threshold`` (settings.recognition thresholds, a 1e-3 false-match rate): cosine
    ``threshold`` -> 80, cosine 1 -> 100, linear between; below, 80 points per ``1 - threshold``
    of cosine, floored at 0 (so cosine ``2·threshold - 1`` and less -> 0).
    """
    span = 1.0 - threshold
    if span <= 0:
        return 100.0 if cosine >= threshold else 0.0
    if cosine >= threshold:
        return round(min(100.0, 80.0 + 20.0 * (cosine - threshold) / span), 4)
    return round(max(0.0, 80.0 + 80.0 * (cosine - threshold) / span), 4)


def to_cosine(similarity: float, threshold: float) -> float:
    """The inverse of :func:`to_similarity` (a 0..100 threshold -> the model's cosine); 0 and
    less -> -1, the lowest cosine, since every face's Similarity is at least 0."""
    if similarity <= 0:
        return -1.0
    span = 1.0 - threshold
    if similarity >= 80.0:
        return threshold + (similarity - 80.0) * span / 20.0
    return threshold - (80.0 - similarity) * span / 80.0
