"""Deepfake analysis of a video: sampled frames, tracked faces, per-person fusion of frame and time signals.

Per sampled frame (:mod:`facesocial.video.frames`): detect, embed (faceres when installed — the
tracker's gate is calibrated on it — else the default embedder), track
(:class:`facesocial.video.tracking.FaceTracker`), score every face with the image ensemble
(:meth:`.ensemble.DeepfakeDetector.score_faces`), and at the advanced level run the face mesh for
eye openness. Only a few numbers per face and frame are kept (:class:`.temporal.TrackSeries`);
frames are dropped as soon as they are scored.

Per person (track):

* ``frame_score`` — the 10 %-trimmed mean of its frame scores (a robust mean: a few odd frames do
  not decide);
* temporal signals (:mod:`.temporal`): identity drift, landmark jitter, blinks;
* ``score`` = weighted mean of ``frame_score`` (weight = the summed weights of the image signals
  that scored its frames) and the temporal suspicions (identity drift 1, landmark jitter 1,
  blink 0.25); band and confidence as for images (:mod:`.verdict`).

Video score = the highest person score among persons seen in ≥ 3 analysed frames (shorter tracks —
a passer-by, a false detection — are listed but decide only when there is no longer one).
``consistency_score`` = 1 − min(1, mean |Δ frame score| between consecutive frames of the same
person / 0.25): 1 when the scores are steady, 0 when they jump by a quarter of the range or more on
average. ``manipulation_types`` adds "expression_transfer" when a person's landmarks flicker
(jitter suspicion ≥ 0.5) while their identity stays steady (drift < 0.5) — a re-enactment keeps
the target's identity — and "face_swap" when the identity drifts. These are indications.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from facesocial import errors
from facesocial.forensics.ensemble import LEARNED_SIGNALS, DeepfakeDetector
from facesocial.forensics.fingerprint import VideoFingerprint
from facesocial.forensics.image_verdict import FaceScore, inconsistency_areas
from facesocial.forensics.temporal import TrackSeries, temporal_signals
from facesocial.forensics.verdict import Level, band_of, verdict_confidence, weighted_mean
from facesocial.forensics.video_verdict import FrameVerdict, PersonVerdict, VideoVerdict
from facesocial.settings import VideoLimits

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]
Progress = Callable[[float, float | None], None]

TEMPORAL_WEIGHTS = {"identity_drift": 1.0, "landmark_jitter": 1.0, "blink": 0.25}
MIN_DECIDING_FRAMES = 3
TRIM = 0.1
FULL_INCONSISTENCY_JUMP = 0.25
SCORE_FLICKER = 0.3  # a jump of a face's score this large between consecutive frames is listed
PREFERRED_EMBEDDER = "faceres"
MISSED_INTERVALS = 2.5
PERSON_TYPE_SHARE = 0.3  # a frame-level type seen on ≥ 30 % of a person's frames is the person's


def track_embedder(detector: DeepfakeDetector) -> str:
    """The embedding model used for tracking and identity drift (module doc)."""
    pipeline = detector.pipeline
    return PREFERRED_EMBEDDER if PREFERRED_EMBEDDER in pipeline.embedders else pipeline.default_embedder


@dataclass
class _Accumulator:
    """Per-track state and the frame verdicts of one analysis."""

    series: dict[int, TrackSeries] = field(default_factory=dict)
    weight_sums: dict[int, list[float]] = field(default_factory=dict)
    frames: list[FrameVerdict] = field(default_factory=list)
    mesh_missing: bool = False

    def add_face(
        self,
        track_id: int,
        timestamp_ms: int,
        frame_number: int,
        face: FaceScore,
        landmarks: FloatArray | None,
        embedding: FloatArray | None,
        openness: float | None,
    ) -> None:
        s = self.series.setdefault(track_id, TrackSeries(track_id))
        s.frame_numbers.append(frame_number)
        s.timestamps_ms.append(timestamp_ms)
        s.boxes.append(face.box)
        if landmarks is not None:
            s.landmarks.append(np.asarray(landmarks, np.float32))
        if embedding is not None:
            s.embeddings.append(np.asarray(embedding, np.float32))
        if openness is not None:
            s.openness.append(openness)
        s.scores.append(face.score)
        for kind in face.manipulation_types:
            s.types[kind] = s.types.get(kind, 0) + 1
        for name, value in face.signals.items():
            if value.suspicion is not None:
                s.signal_sums.setdefault(name, []).append(value.suspicion)
        self.weight_sums.setdefault(track_id, []).append(sum(face.weights.values()))


def _trimmed_mean(values: list[float]) -> float:
    x = np.sort(np.asarray(values, dtype=np.float64))
    cut = int(len(x) * TRIM)
    kept = x[cut : len(x) - cut] if len(x) - 2 * cut > 0 else x
    return float(kept.mean())


def _frame_verdict(
    frame_number: int,
    timestamp_ms: int,
    rgb: npt.NDArray[np.uint8],
    scores: list[FaceScore],
    ids: npt.NDArray[np.int64],
    detector: DeepfakeDetector,
) -> FrameVerdict:
    digest = hashlib.sha256(rgb.tobytes()).hexdigest()
    faces = [
        {
            "track_id": int(track_id),
            "box": {
                "x": round(float(f.box[0]), 1),
                "y": round(float(f.box[1]), 1),
                "width": round(float(f.box[2] - f.box[0]), 1),
                "height": round(float(f.box[3] - f.box[1]), 1),
            },
            "score": round(f.score, 4),
            "band": f.band,
        }
        for f, track_id in zip(scores, ids, strict=True)
    ]
    if not scores:
        return FrameVerdict(frame_number, timestamp_ms, False, 0.0, None, None, [], [], digest, [])
    top = max(scores, key=lambda f: f.score)
    return FrameVerdict(
        frame_number=frame_number,
        timestamp_ms=timestamp_ms,
        is_deepfake=top.band == "fake",
        confidence_score=top.confidence,
        manipulation_score=top.score,
        band=top.band,
        manipulation_types=sorted({t for f in scores for t in f.manipulation_types}),
        inconsistent_regions=inconsistency_areas(scores, detector.settings.real_below),
        frame_hash=digest,
        faces=faces,
    )


def _person(
    series: TrackSeries, weight_sums: list[float], detector: DeepfakeDetector, embedder: str, level: Level
) -> tuple[PersonVerdict, list[dict[str, Any]]]:
    temporal = temporal_signals(series, detector.reference, embedder)
    frame_score = _trimmed_mean(series.scores)
    frame_weight = float(np.mean(weight_sums)) if weight_sums else 0.0
    pairs = [(frame_score, frame_weight)]
    for name, value in temporal.signals.items():
        if value.suspicion is not None:
            pairs.append((value.suspicion, TEMPORAL_WEIGHTS.get(name, 0.0)))
    fused = weighted_mean(pairs)
    score = frame_score if fused is None else fused
    # Clearing a person needs a learned classifier on its frames (verdict.py).
    can_clear = any(name in LEARNED_SIGNALS for name in series.signal_sums) and detector.clears(level)
    band = band_of(score, detector.settings, can_clear=can_clear)
    types = {kind for kind, count in series.types.items() if count >= PERSON_TYPE_SHARE * len(series)}
    drift = temporal.signals.get("identity_drift")
    jitter = temporal.signals.get("landmark_jitter")
    drift_s = drift.suspicion if drift is not None and drift.suspicion is not None else 0.0
    jitter_s = jitter.suspicion if jitter is not None and jitter.suspicion is not None else 0.0
    if drift_s >= 0.5:
        types.add("face_swap")
    elif jitter_s >= 0.5:
        types.add("expression_transfer")
    flicker = [
        {
            "start_ms": int(series.timestamps_ms[i]),
            "end_ms": int(series.timestamps_ms[i + 1]),
            "track_id": series.track_id,
            "kind": "score_flicker",
            "score": round(abs(series.scores[i + 1] - series.scores[i]), 4),
        }
        for i in range(len(series) - 1)
        if abs(series.scores[i + 1] - series.scores[i]) >= SCORE_FLICKER
    ]
    person = PersonVerdict(
        track_id=series.track_id,
        frames=len(series),
        first_ms=int(series.timestamps_ms[0]),
        last_ms=int(series.timestamps_ms[-1]),
        frame_score=frame_score,
        score=score,
        band=band,
        confidence=verdict_confidence(score, detector.settings, can_clear=can_clear),
        deciding=len(series) >= MIN_DECIDING_FRAMES,
        manipulation_types=sorted(types) if score >= detector.settings.real_below else [],
        signals=dict(temporal.signals),
        frame_signals={name: float(np.mean(values)) for name, values in series.signal_sums.items()},
    )
    return person, temporal.inconsistencies + flicker


def _consistency(series: list[TrackSeries]) -> float:
    jumps = [abs(b - a) for s in series for a, b in zip(s.scores, s.scores[1:], strict=False)]
    if not jumps:
        return 1.0
    return float(1.0 - min(1.0, float(np.mean(jumps)) / FULL_INCONSISTENCY_JUMP))


def analyze_video(
    path: Path,
    detector: DeepfakeDetector,
    limits: VideoLimits,
    sample_fps: float | None,
    level: Level = "standard",
    progress: Progress | None = None,
) -> VideoVerdict:
    """Analyse the video at ``path`` (module doc).

    ``sample_fps``: frames analysed per second of video (None: ``limits.default_sample_fps``; lowered
    to fit ``limits.max_analyzed_frames``). ``progress(fraction 0..1, eta_seconds | None)`` is called
    after every analysed frame; an exception it raises (a cancellation) propagates unchanged.
    Raises the video errors of :func:`facesocial.video.probe.probe_video` (UNSUPPORTED_VIDEO,
    VIDEO_TOO_LONG, ...) and VIDEO_TRUNCATED when no frame decodes.
    """
    from facesocial.video.frames import effective_sample_fps, iter_frames, planned_samples
    from facesocial.video.probe import probe_video
    from facesocial.video.tracking import FaceTracker

    started = time.perf_counter()
    info = probe_video(path, limits)
    fps = effective_sample_fps(sample_fps, limits, info)
    planned = max(1, planned_samples(info, fps, limits.max_analyzed_frames))
    embedder = track_embedder(detector)
    # A face unseen for a few sample intervals is still the same person (the tracker's default
    # 1 s would split every track at sample rates under 1 frame/s).
    tracker = FaceTracker(max_missed_seconds=max(1.0, MISSED_INTERVALS / fps))
    fingerprint = VideoFingerprint()
    acc = _Accumulator()
    want_mesh = level == "advanced" and detector.pipeline.mesh is not None
    acc.mesh_missing = level == "advanced" and detector.pipeline.mesh is None
    analysed = 0
    with iter_frames(path, info, fps, limits.max_analyzed_frames) as reader:
        for frame in reader:
            rgb = frame.rgb
            fingerprint.add(rgb)
            faces = detector.detect(rgb)
            embeddings: FloatArray | None = None
            if len(faces):
                faces = detector.pipeline.embed(rgb, faces, model=embedder)
                embeddings = np.asarray(faces.columns["embedding"], np.float32)
            ids = tracker.update(faces.boxes, frame.timestamp_ms, embeddings)
            scores = detector.score_faces(rgb, faces, level)
            openness: list[float | None] = [None] * len(faces)
            if want_mesh and len(faces):
                try:
                    meshes = detector.pipeline.analyze_mesh(rgb, faces)
                    openness = [max(m.eye_openness_left, m.eye_openness_right) for m in meshes]
                except errors.ModelUnavailableError:
                    want_mesh, acc.mesh_missing = False, True
            for i, face in enumerate(scores):
                acc.add_face(
                    int(ids[i]),
                    frame.timestamp_ms,
                    frame.index,
                    face,
                    None if faces.landmarks is None else faces.landmarks[i],
                    None if embeddings is None else embeddings[i],
                    openness[i],
                )
            acc.frames.append(_frame_verdict(frame.index, frame.timestamp_ms, rgb, scores, ids, detector))
            del rgb, faces
            analysed += 1
            if progress is not None:
                elapsed = time.perf_counter() - started
                remaining = max(planned - analysed, 0)
                progress(min(1.0, analysed / planned), elapsed / analysed * remaining)
        truncated = bool(reader.truncated or reader.overrun)
    if analysed == 0:
        raise errors.VideoTruncatedError("No frame of the video could be analysed")
    return _verdict(
        acc, detector, info.frame_count, analysed, truncated, fps, level, embedder, fingerprint, started
    )


def _verdict(
    acc: _Accumulator,
    detector: DeepfakeDetector,
    total_frames: int,
    analysed: int,
    truncated: bool,
    fps: float,
    level: Level,
    embedder: str,
    fingerprint: VideoFingerprint,
    started: float,
) -> VideoVerdict:
    persons: list[PersonVerdict] = []
    inconsistencies: list[dict[str, Any]] = []
    for track_id in sorted(acc.series):
        person, found = _person(
            acc.series[track_id], acc.weight_sums.get(track_id, []), detector, embedder, level
        )
        persons.append(person)
        inconsistencies.extend(found)
    inconsistencies.sort(key=lambda item: (item["start_ms"], item["track_id"]))
    deciding = [p for p in persons if p.deciding] or persons
    components = detector.components(level)
    components.append(
        {"name": "tracking_embedder", "version": embedder, "kind": "identity drift and tracking"}
    )
    if level == "advanced":
        mesh = detector.pipeline.mesh
        components.append(
            {
                "name": "facemesh",
                "version": None if mesh is None else mesh.model.version,
                "kind": "eye openness for blinks",
                "available": not acc.mesh_missing,
            }
        )
    common = {
        "total_frames": total_frames,
        "analyzed_frames": analysed,
        "deepfake_frame_count": sum(1 for f in acc.frames if f.is_deepfake),
        "consistency_score": _consistency(list(acc.series.values())),
        "temporal_inconsistencies": inconsistencies,
        "persons": persons,
        "truncated": truncated,
        "model_version": detector.model_version,
        "sample_fps": fps,
        "level": level,
        "frames": acc.frames,
        "features": fingerprint.features(),
        "components": components,
    }
    if not deciding:
        return VideoVerdict(
            is_deepfake=False,
            confidence_score=0.0,
            manipulation_score=0.0,
            band="uncertain",
            manipulation_types=[],
            processing_time_ms=round((time.perf_counter() - started) * 1000),
            reason="no_face",
            **common,  # type: ignore[arg-type]
        )
    top = max(deciding, key=lambda p: p.score)
    band = top.band
    return VideoVerdict(
        is_deepfake=band == "fake",
        confidence_score=top.confidence,
        manipulation_score=top.score,
        band=band,
        manipulation_types=sorted({t for p in deciding for t in p.manipulation_types}),
        processing_time_ms=round((time.perf_counter() - started) * 1000),
        **common,  # type: ignore[arg-type]
    )
