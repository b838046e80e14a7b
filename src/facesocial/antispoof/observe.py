"""One video frame reduced to what active liveness needs: pose, eyes, mouth, identity, luma.

:func:`observe` runs detection, then the face mesh on the largest face, and optionally an
embedding and a passive presentation-attack score. The result, :class:`FrameObservation`, is
small and JSON-serialisable (without its landmarks), so a service can keep it, and the
decision code in :mod:`.active` and :mod:`.motion` needs no models and is tested on synthetic
observations.

Face counting: faces whose box area is below ``COMPARABLE_FACE_AREA`` (40 %) of the largest
face's are not counted. The subject sits close to the camera during a challenge; a far
smaller face is a passer-by or a face on a poster behind them, and the detector's occasional
false positives are small too (a real DFDC selfie clip, ``lynaeydofd``, shows a second box of
25-30 % of the subject's area on a third of its frames). A second face of comparable size is a
second person in front of the camera, or a photo held up next to the subject.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from facesocial.vision.heads.mesh import LEFT_EYE_CORNERS, RIGHT_EYE_CORNERS, MeshResult
from facesocial.vision.pipeline import DetectOptions, FacePipeline

FloatArray = npt.NDArray[np.float32]
PassiveScorer = Callable[[npt.NDArray[np.uint8], npt.NDArray[np.float32]], list[float]]

COMPARABLE_FACE_AREA = 0.40
# MediaPipe face-mesh topology: inner lips (upper 13, lower 14), inner mouth corners (78, 308),
# outer mouth corners (61, 291).
INNER_LIP_UPPER, INNER_LIP_LOWER = 13, 14
INNER_MOUTH_CORNERS = (78, 308)
OUTER_MOUTH_CORNERS = (61, 291)
# Luma is averaged on every LUMA_STEP-th pixel: a mean over ~20k pixels is as steady as over all.
LUMA_STEP = 4


@dataclass(frozen=True, slots=True)
class FrameObservation:
    """What one frame shows of the subject (the largest face).

    * ``timestamp_ms``: on the session clock (ms since the first challenge was issued).
    * ``face_count``: faces of at least 40 % of the largest face's area (module docstring).
    * ``box``: x1, y1, x2, y2 of the largest face in image pixels, None without a face.
    * ``yaw``, ``pitch``, ``roll``: degrees, the mesh head's conventions (yaw > 0 = the subject
      turns to their left, pitch > 0 = looks up).
    * ``eye_openness``: 0 closed .. 1 open, the more open eye (a blink closes both).
    * ``mouth_open``: inner-lip gap / inner mouth width, ≈ 0.02-0.05 closed, 0.05-0.3 talking.
    * ``mouth_width``: outer mouth width / outer eye-corner distance (≈ 0.55 neutral; a smile widens it).
    * ``landmarks``: (468, 2) float32 image pixels (not serialised).
    * ``embedding``: (D,) unit vector when the frame was embedded, else None.
    * ``continuity``: (D',) unit vector of a (cheaper) embedder run on every face frame, for the
      frame-to-frame identity check; None when not asked for.
    * ``live_score``: passive P(live) 0..1 when a passive scorer ran on this frame.
    * ``face_luma``, ``background_luma``: mean luma (BT.601, 0..255) inside / outside the face box.
    """

    timestamp_ms: float
    face_count: int
    box: tuple[float, float, float, float] | None = None
    yaw: float | None = None
    pitch: float | None = None
    roll: float | None = None
    eye_openness: float | None = None
    mouth_open: float | None = None
    mouth_width: float | None = None
    landmarks: FloatArray | None = None
    embedding: FloatArray | None = None
    continuity: FloatArray | None = None
    live_score: float | None = None
    face_luma: float | None = None
    background_luma: float | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict; ``landmarks`` are left out (they are large and only needed live)."""
        return {
            "timestamp_ms": self.timestamp_ms,
            "face_count": self.face_count,
            "box": list(self.box) if self.box is not None else None,
            "yaw": self.yaw,
            "pitch": self.pitch,
            "roll": self.roll,
            "eye_openness": self.eye_openness,
            "mouth_open": self.mouth_open,
            "mouth_width": self.mouth_width,
            "embedding": self.embedding.tolist() if self.embedding is not None else None,
            "continuity": self.continuity.tolist() if self.continuity is not None else None,
            "live_score": self.live_score,
            "face_luma": self.face_luma,
            "background_luma": self.background_luma,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FrameObservation:
        """Inverse of :meth:`to_json` (``landmarks`` None). Raises ``KeyError`` without
        ``timestamp_ms`` / ``face_count``."""
        box = data.get("box")
        embedding = data.get("embedding")
        continuity = data.get("continuity")
        return cls(
            timestamp_ms=float(data["timestamp_ms"]),
            face_count=int(data["face_count"]),
            box=(float(box[0]), float(box[1]), float(box[2]), float(box[3])) if box is not None else None,
            yaw=_opt_float(data.get("yaw")),
            pitch=_opt_float(data.get("pitch")),
            roll=_opt_float(data.get("roll")),
            eye_openness=_opt_float(data.get("eye_openness")),
            mouth_open=_opt_float(data.get("mouth_open")),
            mouth_width=_opt_float(data.get("mouth_width")),
            embedding=np.asarray(embedding, np.float32) if embedding is not None else None,
            continuity=np.asarray(continuity, np.float32) if continuity is not None else None,
            live_score=_opt_float(data.get("live_score")),
            face_luma=_opt_float(data.get("face_luma")),
            background_luma=_opt_float(data.get("background_luma")),
        )


def observe(
    pipeline: FacePipeline,
    rgb: npt.NDArray[np.uint8],
    timestamp_ms: float,
    *,
    embed_model: str | None = None,
    passive: PassiveScorer | None = None,
    detect_options: DetectOptions | None = None,
    continuity_model: str | None = None,
) -> FrameObservation:
    """Observe one upright RGB frame (H, W, 3) uint8 taken at ``timestamp_ms`` (session clock).

    Detect faces, keep the largest, run the face mesh on it; with ``embed_model`` (an
    embedder name of ``pipeline.embedders``; None = no embedding) add its unit embedding; with
    ``passive`` (``passive(rgb, boxes (1, 4) float32) -> [P(live)]``) add the passive score;
    with ``continuity_model`` (an embedder name) add that model's embedding of the face as
    ``continuity`` (the session compares every face frame with it, not only the sampled ones).
    A frame without a face gives ``face_count`` 0 and only the luma of the whole frame.
    Raises ``MODEL_UNAVAILABLE`` when the mesh models are not installed and
    ``UNKNOWN_MODEL`` for an unknown ``embed_model``.
    """
    faces = pipeline.detect(rgb, detect_options or DetectOptions())
    if len(faces) == 0:
        return FrameObservation(timestamp_ms=float(timestamp_ms), face_count=0, background_luma=_luma(rgb))
    areas = faces.areas
    largest = int(np.argmax(areas))
    count = int(np.sum(areas >= COMPARABLE_FACE_AREA * areas[largest]))
    face = faces[[largest]]
    mesh = pipeline.analyze_mesh(rgb, face)[0]
    embedding = None
    if embed_model is not None:
        embedding = np.asarray(pipeline.embed(rgb, face, embed_model).columns["embedding"][0], np.float32)
    continuity = None
    if continuity_model is not None:
        if continuity_model == embed_model and embedding is not None:
            continuity = embedding
        else:
            vector = pipeline.embed(rgb, face, continuity_model).columns["embedding"][0]
            continuity = np.asarray(vector, np.float32)
    live_score = None
    if passive is not None:
        live_score = float(passive(rgb, face.boxes.astype(np.float32))[0])
    x1, y1, x2, y2 = (float(v) for v in face.boxes[0])
    face_luma, background_luma = _box_luma(rgb, (x1, y1, x2, y2))
    mouth_open, mouth_width = mouth_measures(mesh)
    return FrameObservation(
        timestamp_ms=float(timestamp_ms),
        face_count=count,
        box=(x1, y1, x2, y2),
        yaw=mesh.yaw,
        pitch=mesh.pitch,
        roll=mesh.roll,
        eye_openness=max(mesh.eye_openness_left, mesh.eye_openness_right),
        mouth_open=mouth_open,
        mouth_width=mouth_width,
        landmarks=np.ascontiguousarray(mesh.landmarks[:, :2], dtype=np.float32),
        embedding=embedding,
        continuity=continuity,
        live_score=live_score,
        face_luma=face_luma,
        background_luma=background_luma,
    )


def mouth_measures(mesh: MeshResult) -> tuple[float, float]:
    """(inner-lip gap / inner mouth width, outer mouth width / outer eye-corner distance)."""
    p = mesh.landmarks[:, :2].astype(np.float64)
    gap = float(np.linalg.norm(p[INNER_LIP_UPPER] - p[INNER_LIP_LOWER]))
    inner = float(np.linalg.norm(p[INNER_MOUTH_CORNERS[0]] - p[INNER_MOUTH_CORNERS[1]]))
    outer = float(np.linalg.norm(p[OUTER_MOUTH_CORNERS[0]] - p[OUTER_MOUTH_CORNERS[1]]))
    eyes = float(np.linalg.norm(p[RIGHT_EYE_CORNERS[0]] - p[LEFT_EYE_CORNERS[0]]))
    return gap / max(inner, 1e-6), outer / max(eyes, 1e-6)


def _luma(rgb: npt.NDArray[np.uint8]) -> float:
    sample = rgb[::LUMA_STEP, ::LUMA_STEP].astype(np.float32)
    return float((sample @ np.array([0.299, 0.587, 0.114], np.float32)).mean())


def _box_luma(
    rgb: npt.NDArray[np.uint8], box: tuple[float, float, float, float]
) -> tuple[float, float | None]:
    """Mean luma inside the box and outside it (None when the box covers the whole frame)."""
    sample = rgb[::LUMA_STEP, ::LUMA_STEP].astype(np.float32)
    luma = sample @ np.array([0.299, 0.587, 0.114], np.float32)
    h, w = luma.shape
    x1, y1, x2, y2 = (round(v / LUMA_STEP) for v in box)
    x1, x2 = max(0, min(w, x1)), max(0, min(w, x2))
    y1, y2 = max(0, min(h, y1)), max(0, min(h, y2))
    inside = np.zeros(luma.shape, dtype=bool)
    inside[y1:y2, x1:x2] = True
    face = float(luma[inside].mean()) if inside.any() else float(luma.mean())
    outside = float(luma[~inside].mean()) if (~inside).any() else None
    return face, outside


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)
