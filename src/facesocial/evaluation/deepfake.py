"""Deepfake evaluation on labelled videos and face frames (JSON-ready dicts).

``facesocial eval deepfake --videos DIR [--labels metadata.json]`` → :func:`evaluate_videos`;
``facesocial eval deepfake --frames DIR`` → :func:`evaluate_frames`.

Video labels, never guessed:

* DFDC: every ``metadata.json`` under DIR (merged; plus ``--labels``), mapping a file name to
  ``{"label": "REAL" | "FAKE", ...}``; a fake's manipulation type is "dfdc";
* FaceForensics++: by folder — a path through ``original_sequences`` is real, one through
  ``manipulated_sequences/<Method>`` is a fake of type ``<Method>`` (Deepfakes, Face2Face,
  FaceSwap, NeuralTextures, ...).

A video with neither is listed under ``unlabelled`` and not analysed. Frames: ``DIR/real/*`` and
``DIR/fake/*`` images; an image with no detected face is listed and left out of the metrics.

Figures: ROC AUC of the manipulation score (fake = positive; ties count ½), accuracy of
``is_deepfake`` at the configured threshold, the counts of each band per true label, per
manipulation type how many fakes fell in each band, and timing (per video, per second of video,
per analysed frame). On a handful of files these are a smoke test, not an accuracy claim.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from facesocial import errors
from facesocial.evaluation.metrics import roc_auc
from facesocial.forensics.ensemble import DeepfakeDetector
from facesocial.forensics.verdict import Level
from facesocial.settings import VideoLimits

VIDEO_SUFFIXES = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
REAL, FAKE = "real", "fake"


def _dfdc_labels(videos_dir: Path, labels_path: Path | None) -> dict[str, dict[str, Any]]:
    """File name -> DFDC metadata entry, from every metadata.json under the folder (and ``labels_path``)."""
    paths = sorted(videos_dir.rglob("metadata.json"))
    if labels_path is not None:
        paths.append(labels_path)
    merged: dict[str, dict[str, Any]] = {}
    for path in paths:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise errors.ValidationFailedError(f"{path} is not a readable DFDC metadata.json: {exc}") from exc
        if not isinstance(data, dict):
            raise errors.ValidationFailedError(f"{path}: expected an object mapping file names to labels")
        for name, entry in data.items():
            if isinstance(entry, dict) and str(entry.get("label", "")).upper() in {"REAL", "FAKE"}:
                merged[name] = entry
    return merged


def video_label(path: Path, dfdc: dict[str, dict[str, Any]]) -> tuple[str, str] | None:
    """(real|fake, manipulation type) of one video, or None when nothing labels it (module doc)."""
    parts = path.parts
    if "original_sequences" in parts:
        return REAL, "original"
    if "manipulated_sequences" in parts:
        i = parts.index("manipulated_sequences")
        if i + 1 < len(parts) - 1:
            return FAKE, parts[i + 1]
    entry = dfdc.get(path.name)
    if entry is not None:
        return (REAL, "original") if str(entry["label"]).upper() == "REAL" else (FAKE, "dfdc")
    return None


def _metrics(rows: list[dict[str, Any]], score_key: str) -> dict[str, Any]:
    ok = [r for r in rows if r.get(score_key) is not None]
    fake = np.asarray([r[score_key] for r in ok if r["label"] == FAKE], np.float64)
    real = np.asarray([r[score_key] for r in ok if r["label"] == REAL], np.float64)
    correct = sum(1 for r in ok if r["is_deepfake"] == (r["label"] == FAKE))
    bands: dict[str, dict[str, int]] = {REAL: {}, FAKE: {}}
    by_type: dict[str, dict[str, int]] = {}
    for r in ok:
        bands[r["label"]][r["band"]] = bands[r["label"]].get(r["band"], 0) + 1
        kind = by_type.setdefault(r["type"], {})
        kind[r["band"]] = kind.get(r["band"], 0) + 1
    auc = roc_auc(fake, real)
    return {
        "count": {"real": int(real.size), "fake": int(fake.size)},
        "auc": None if np.isnan(auc) else round(auc, 4),
        "accuracy_at_threshold": round(correct / len(ok), 4) if ok else None,
        "bands_by_label": bands,
        "bands_by_type": by_type,
        "mean_score": {
            "real": round(float(real.mean()), 4) if real.size else None,
            "fake": round(float(fake.mean()), 4) if fake.size else None,
        },
    }


def evaluate_videos(
    detector: DeepfakeDetector,
    videos_dir: Path,
    labels_path: Path | None,
    limits: VideoLimits,
    sample_fps: float | None,
    level: Level = "standard",
) -> dict[str, Any]:
    """Analyse every labelled video under ``videos_dir`` and report the figures (module doc)."""
    from facesocial.forensics.video_analysis import analyze_video
    from facesocial.video.probe import probe_video

    if not videos_dir.is_dir():
        raise errors.ValidationFailedError(f"{videos_dir} is not a folder")
    dfdc = _dfdc_labels(videos_dir, labels_path)
    rows: list[dict[str, Any]] = []
    unlabelled: list[str] = []
    failed: list[dict[str, str]] = []
    total_seconds = total_video_seconds = 0.0
    total_frames = 0
    for path in sorted(p for p in videos_dir.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES):
        relative = str(path.relative_to(videos_dir))
        label = video_label(path, dfdc)
        if label is None:
            unlabelled.append(relative)
            continue
        started = time.perf_counter()
        try:
            info = probe_video(path, limits)
            verdict = analyze_video(path, detector, limits, sample_fps, level)
        except errors.FaceSocialError as exc:
            failed.append({"file": relative, "code": exc.code, "message": exc.message})
            continue
        seconds = time.perf_counter() - started
        total_seconds += seconds
        total_video_seconds += info.duration_seconds
        total_frames += verdict.analyzed_frames
        rows.append(
            {
                "file": relative,
                "label": label[0],
                "type": label[1],
                "score": round(verdict.manipulation_score, 4),
                "band": verdict.band,
                "is_deepfake": verdict.is_deepfake,
                "confidence": round(verdict.confidence_score, 4),
                "manipulation_types": verdict.manipulation_types,
                "persons": len(verdict.persons),
                "analyzed_frames": verdict.analyzed_frames,
                "deepfake_frames": verdict.deepfake_frame_count,
                "consistency": round(verdict.consistency_score, 4),
                "duration_s": round(info.duration_seconds, 2),
                "seconds": round(seconds, 2),
                "reason": verdict.reason,
            }
        )
    return {
        "videos_dir": str(videos_dir),
        "level": level,
        "sample_fps": sample_fps if sample_fps is not None else limits.default_sample_fps,
        "model_version": detector.model_version,
        "thresholds": {
            "fake_threshold": detector.settings.fake_threshold,
            "real_below": detector.settings.real_below,
        },
        **_metrics(rows, "score"),
        "timing": {
            "seconds_per_video": round(total_seconds / len(rows), 2) if rows else None,
            "seconds_per_video_second": round(total_seconds / total_video_seconds, 3)
            if total_video_seconds
            else None,
            "seconds_per_analysed_frame": round(total_seconds / total_frames, 3) if total_frames else None,
        },
        "videos": rows,
        "unlabelled": unlabelled,
        "failed": failed,
    }


def evaluate_frames(
    detector: DeepfakeDetector, frames_dir: Path, level: Level = "standard", min_face_size: int | None = None
) -> dict[str, Any]:
    """Analyse ``frames_dir/real/*`` and ``frames_dir/fake/*`` images (module doc).

    ``min_face_size`` (px) overrides the detector's (64) for sets of small, tight face crops.
    """
    if min_face_size is not None:
        detector = detector.with_detect_options(replace(detector.detect_options, min_face_size=min_face_size))
    from facesocial.vision.image import decode_image

    if not (frames_dir / REAL).is_dir() and not (frames_dir / FAKE).is_dir():
        raise errors.ValidationFailedError(f"{frames_dir} has neither a real/ nor a fake/ folder")
    from facesocial.settings import ImageLimits

    limits = ImageLimits()
    rows: list[dict[str, Any]] = []
    no_face: list[str] = []
    failed: list[dict[str, str]] = []
    total_seconds = 0.0
    for label in (REAL, FAKE):
        folder = frames_dir / label
        if not folder.is_dir():
            continue
        for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
            relative = str(path.relative_to(frames_dir))
            started = time.perf_counter()
            try:
                image = decode_image(path.read_bytes(), limits)
                verdict = detector.analyze_image(image.rgb, level)
            except errors.FaceSocialError as exc:
                failed.append({"file": relative, "code": exc.code, "message": exc.message})
                continue
            seconds = time.perf_counter() - started
            total_seconds += seconds
            if verdict.faces_analyzed == 0:
                no_face.append(relative)
                continue
            rows.append(
                {
                    "file": relative,
                    "label": label,
                    "type": "frame_" + label,
                    "score": round(verdict.manipulation_score, 4),
                    "band": verdict.band,
                    "is_deepfake": verdict.is_deepfake,
                    "confidence": round(verdict.confidence_score, 4),
                    "faces": verdict.faces_analyzed,
                    "manipulation_types": verdict.manipulation_types,
                    "signals": {name: value.suspicion for name, value in verdict.faces[0].signals.items()},
                    "seconds": round(seconds, 3),
                }
            )
    analysed = len(rows) + len(no_face)
    return {
        "frames_dir": str(frames_dir),
        "level": level,
        "min_face_size": detector.detect_options.min_face_size,
        "model_version": detector.model_version,
        "thresholds": {
            "fake_threshold": detector.settings.fake_threshold,
            "real_below": detector.settings.real_below,
        },
        **_metrics(rows, "score"),
        "timing": {"seconds_per_image": round(total_seconds / analysed, 3) if analysed else None},
        "images": rows,
        "no_face": no_face,
        "failed": failed,
    }
