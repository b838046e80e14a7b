"""``facesocial bench counting``: frames/s of the person detector, the tracker and the whole
counting engine on a video, and the process's peak memory.

The video's frames are decoded first (``frames`` of them, sampled at ``sample_fps`` by decode
position, as ``facesocial eval tracking`` does) and kept in memory, so decoding is timed apart
and not inside the stages. Then, one thread, after one warm-up call of the detector:

* ``detect``: the detector alone on every frame (``min_confidence`` = the tracker's low score,
  what the engine asks);
* ``track_and_count``: the tracker and two counting lines (through the frame centre) fed the
  detections just computed (no detector);
* ``engine``: :class:`~facesocial.analytics.people_counting.CountingEngine` end to end on the
  frames (detector + tracker + counters + the outcome), what a counting job spends per frame
  after decoding.

Milliseconds per frame are p50/p95 (nearest rank) per frame for ``detect`` and
``track_and_count``, and the mean for ``engine`` (wall clock over all frames, ``finish``
included); frames/s = 1000 / mean ms. ``detections_per_frame`` counts every box the engine
was given (down to the tracker's low score, 0.1), not people. Peak RSS is the process's
high-water mark (models and the decoded frames included).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from facesocial.analytics.people_counting import CountingEngine, CountingSettings
from facesocial.evaluation.process_stats import peak_rss_mb
from facesocial.evaluation.tracking import centre_lines, sampled_video
from facesocial.models.runtime import ModelCache
from facesocial.vision.persons import load_person_detector


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "p50": round(statistics.median(ordered), 2),
        "p95": round(p95, 2),
        "mean": round(statistics.fmean(ordered), 2),
    }


def run_bench_counting(
    video: Path,
    *,
    model_dir: Path,
    detector_name: str,
    sample_fps: float | None = None,
    frames: int = 200,
) -> dict[str, Any]:
    """The figures of the module docstring as a JSON-able dict. Raises ValueError for a video with
    no frames; the detector's errors (unknown name, not pulled) pass through."""
    detector = load_person_detector(ModelCache(model_dir), detector_name)
    settings = CountingSettings()
    started = time.perf_counter()
    iterator, rate, width, height = sampled_video(video, sample_fps)
    decoded: list[tuple[npt.NDArray[np.uint8], int, int]] = []
    for sample in iterator:
        decoded.append((sample.rgb, sample.timestamp_ms, sample.frame_number - 1))
        if len(decoded) >= frames:
            break
    decode_ms = (time.perf_counter() - started) * 1000.0
    if not decoded:
        raise ValueError(f"{video} has no frames")
    lines = centre_lines(width, height)
    low = settings.tracker.low_score

    detector.detect(decoded[0][0], min_confidence=low)  # warm-up: the runtime allocates its buffers
    detect_ms: list[float] = []
    found = []
    for rgb, _, _ in decoded:
        t0 = time.perf_counter()
        found.append(detector.detect(rgb, min_confidence=low))
        detect_ms.append((time.perf_counter() - t0) * 1000.0)

    tracking = CountingEngine(None, lines, (), settings)
    track_ms: list[float] = []
    for (_, timestamp_ms, index), boxes in zip(decoded, found, strict=True):
        t0 = time.perf_counter()
        tracking.feed_detections(boxes.boxes, boxes.scores, timestamp_ms, index)
        track_ms.append((time.perf_counter() - t0) * 1000.0)
    tracking.finish()

    engine = CountingEngine(detector, lines, (), settings)
    t0 = time.perf_counter()
    outcome = engine.process(iter(decoded))
    engine_ms = (time.perf_counter() - t0) * 1000.0 / len(decoded)

    detect = _percentiles(detect_ms)
    track = _percentiles(track_ms)
    return {
        "video": str(video),
        "size": [width, height],
        "frames": len(decoded),
        "sample_fps": round(rate, 3),
        "detector": detector.model.tag,
        "decode_ms_per_frame": round(decode_ms / len(decoded), 2),
        "detect_ms": detect,
        "detect_fps": round(1000.0 / detect["mean"], 1) if detect["mean"] else None,
        "track_and_count_ms": track,
        "track_and_count_fps": round(1000.0 / track["mean"], 1) if track["mean"] else None,
        "engine_ms_per_frame": round(engine_ms, 2),
        "engine_fps": round(1000.0 / engine_ms, 1) if engine_ms else None,
        "tracks": len(outcome.tracks),
        "detections_per_frame": round(float(np.mean([len(f.boxes) for f in outcome.frames])), 2),
        "peak_rss_mb": peak_rss_mb(),
    }
