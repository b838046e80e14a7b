"""Results of a video analysis: per frame, per person (track), and for the whole video."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from facesocial.forensics.signals import SignalValue
from facesocial.forensics.verdict import Band, Level

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class FrameVerdict:
    """One analysed frame. ``band`` and ``manipulation_score`` are None when the frame has no face."""

    frame_number: int
    timestamp_ms: int
    is_deepfake: bool
    confidence_score: float
    manipulation_score: float | None
    band: Band | None
    manipulation_types: list[str]
    inconsistent_regions: list[dict[str, Any]]
    frame_hash: str
    faces: list[dict[str, Any]]

    @property
    def face_count(self) -> int:
        return len(self.faces)

    def as_dict(self) -> dict[str, Any]:
        return {
            "frame_number": self.frame_number,
            "timestamp_ms": self.timestamp_ms,
            "is_deepfake": self.is_deepfake,
            "confidence_score": round(self.confidence_score, 4),
            "manipulation_score": None
            if self.manipulation_score is None
            else round(self.manipulation_score, 4),
            "band": self.band,
            "manipulation_types": self.manipulation_types,
            "inconsistent_regions": self.inconsistent_regions,
            "frame_hash": self.frame_hash,
            "faces": self.faces,
        }


@dataclass(frozen=True, slots=True)
class PersonVerdict:
    """One tracked person: ``frames`` analysed frames from ``first_ms`` to ``last_ms``."""

    track_id: int
    frames: int
    first_ms: int
    last_ms: int
    frame_score: float
    score: float
    band: Band
    confidence: float
    deciding: bool
    manipulation_types: list[str]
    signals: dict[str, SignalValue]
    frame_signals: dict[str, float] = field(default_factory=dict)  # mean suspicion of each image signal

    def as_dict(self) -> dict[str, Any]:
        return {
            "track_id": self.track_id,
            "frames": self.frames,
            "first_ms": self.first_ms,
            "last_ms": self.last_ms,
            "frame_score": round(self.frame_score, 4),
            "score": round(self.score, 4),
            "band": self.band,
            "confidence": round(self.confidence, 4),
            "deciding": self.deciding,
            "manipulation_types": self.manipulation_types,
            "signals": {name: value.as_dict() for name, value in self.signals.items()},
            "frame_signals": {name: round(value, 4) for name, value in self.frame_signals.items()},
        }


@dataclass(frozen=True, slots=True)
class VideoVerdict:
    """The verdict on one video (module doc). ``features`` is the (1024,) content fingerprint."""

    total_frames: int
    analyzed_frames: int
    deepfake_frame_count: int
    consistency_score: float
    temporal_inconsistencies: list[dict[str, Any]]
    persons: list[PersonVerdict]
    is_deepfake: bool
    confidence_score: float
    manipulation_score: float
    band: Band
    manipulation_types: list[str]
    truncated: bool
    model_version: str
    processing_time_ms: int
    sample_fps: float
    level: Level
    frames: list[FrameVerdict] = field(default_factory=list)
    features: FloatArray | None = None
    components: list[dict[str, Any]] = field(default_factory=list)
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (frames and features excluded: they are stored apart)."""
        return {
            "is_deepfake": self.is_deepfake,
            "band": self.band,
            "confidence_score": round(self.confidence_score, 4),
            "manipulation_score": round(self.manipulation_score, 4),
            "manipulation_types": self.manipulation_types,
            "total_frames": self.total_frames,
            "analyzed_frames": self.analyzed_frames,
            "deepfake_frame_count": self.deepfake_frame_count,
            "consistency_score": round(self.consistency_score, 4),
            "temporal_inconsistencies": self.temporal_inconsistencies,
            "persons": [p.as_dict() for p in self.persons],
            "truncated": self.truncated,
            "sample_fps": round(self.sample_fps, 4),
            "detection_level": self.level,
            "model_version": self.model_version,
            "processing_time_ms": self.processing_time_ms,
            "components": self.components,
            "reason": self.reason,
        }
