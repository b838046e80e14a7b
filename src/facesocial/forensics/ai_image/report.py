"""The shapes every AI-image method returns, and the report the analyzer assembles from them.

A method answers with a :class:`MethodResult`: its own score that the image was AI-generated
(``score`` 0..1, or None when it has no opinion — metadata without any generator trace, a face
method on an image without faces), how long it took, and JSON-ready ``details`` (its raw
statistics, their percentile among real photos, anything a reader needs to check the score).
The ensemble (:mod:`.ensemble`) weighs the scores with the weights of ``ai_detection.detection_methods``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The scoring methods, in report order (document 003: EXIF, pixel analysis, models, faces).
METADATA = "metadata"
ELA = "ela"
NOISE = "noise"
TEXTURE = "texture"
FREQUENCY = "frequency"
MODEL = "model"
EXTRA_MODEL = "extra_model"
FACES = "faces"
METHODS = (METADATA, ELA, NOISE, TEXTURE, FREQUENCY, MODEL, EXTRA_MODEL, FACES)
# The weights ``detection_methods`` is seeded with (0..9.99). The rule: a method whose AUC on the
# TRAIN split of the development data is at or below 0.5 weighs 0 — it is still run and reported
# (with its image), but does not vote; ELA (0.38: it finds edits, not generation) and texture
# (0.48) by that rule. The others keep their prior: the learned model, the only method trained on
# the task, weighs most; noise and the image spectrum (0.64, 0.62) half; metadata and faces carry
# the verdict alone when strong (ensemble.py), so their weight only matters below that.
# Measured by scripts/calibrate_ai_image_methods.py and scripts/choose_ai_image_thresholds.py
# (docs/ai-detection.md has the table).
DEFAULT_WEIGHTS: dict[str, float] = {
    METADATA: 2.0,
    ELA: 0.0,
    NOISE: 0.5,
    TEXTURE: 0.0,
    FREQUENCY: 0.5,
    MODEL: 3.0,
    EXTRA_MODEL: 1.0,
    FACES: 1.0,
}
DESCRIPTIONS: dict[str, str] = {
    METADATA: "EXIF, PNG text, XMP/IPTC and C2PA traces of generators (decisive when present, else neutral)",
    ELA: "error-level analysis: how the image answers one more JPEG compression",
    NOISE: "noise residual / PRNU-style consistency across the image",
    TEXTURE: "texture smoothness (over-smooth surfaces of generators)",
    FREQUENCY: "image spectrum: periodic upsampling peaks and high-frequency deviation",
    MODEL: "learned classifier over 80 image statistics (shipped, trained offline)",
    EXTRA_MODEL: "user-supplied ONNX classifier (settings.ai_detection.extra_model_path)",
    FACES: "per-face deepfake signals and face-region spectrum (a synthetic face in a real photo)",
}
# Above this a method's score says "AI-generated" (its ``is_ai_generated``).
METHOD_THRESHOLD = 0.5


@dataclass(frozen=True, slots=True)
class MethodResult:
    """One method's finding.

    ``score``: 0..1 suspicion that the image is AI-generated, None = no opinion (neutral: it does
    not enter the ensemble). ``confidence``: 0..1, how far the score is from undecided
    (``|score − 0.5| · 2``; 0 when ``score`` is None). ``version``: ``name@x.y`` of the code or
    model that produced it. ``details``: JSON-ready, method-specific.
    """

    name: str
    score: float | None
    processing_time_ms: float
    version: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def is_ai_generated(self) -> bool | None:
        return None if self.score is None else self.score >= METHOD_THRESHOLD

    @property
    def confidence(self) -> float:
        return 0.0 if self.score is None else round(abs(self.score - 0.5) * 2.0, 4)

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.name,
            "score": None if self.score is None else round(self.score, 4),
            "is_ai_generated": self.is_ai_generated,
            "confidence": self.confidence,
            "processing_time_ms": round(self.processing_time_ms, 1),
            "version": self.version,
            "details": self.details,
        }


@dataclass(frozen=True, slots=True)
class Anomaly:
    """A region the pixel methods found unusual; ``box`` in image pixels (x, y, width, height)."""

    type: str  # e.g. "noise_inconsistency", "over_smooth_texture", "ela_hotspot", "synthetic_face"
    confidence: float  # 0..1
    box: tuple[int, int, int, int]
    description: str

    def as_dict(self) -> dict[str, Any]:
        x, y, w, h = self.box
        return {
            "type": self.type,
            "confidence": round(self.confidence, 4),
            "bounding_box": {"x": x, "y": y, "width": w, "height": h},
            "description": self.description,
        }
