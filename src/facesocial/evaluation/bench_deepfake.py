"""``facesocial bench --deepfake-video FILE``: deepfake analysis time per second of video, per level.

Each video is analysed at every detection level with the models loaded once (their loading is
reported apart); the figures are wall-clock seconds on this machine and the process's peak RSS.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

from facesocial.container import Container
from facesocial.evaluation.process_stats import peak_rss_mb
from facesocial.forensics.video_analysis import analyze_video
from facesocial.settings import Settings
from facesocial.video.probe import probe_video

LEVELS: tuple[Literal["basic", "standard", "advanced"], ...] = ("basic", "standard", "advanced")


def bench_deepfake_videos(paths: list[Path], sample_fps: float) -> dict[str, Any]:
    """Per video and level: ``seconds``, ``seconds_per_video_second``, ``ms_per_analysed_frame``.

    ``paths``: readable video files; ``sample_fps`` > 0 frames analysed per second of video
    (lowered to fit ``video.max_analyzed_frames``). Raises the video errors of
    :func:`facesocial.video.probe.probe_video` for a file that cannot be analysed.
    """
    settings = Settings()
    started = time.perf_counter()
    detector = Container(settings).deepfake_detector
    load_seconds = time.perf_counter() - started
    rows: list[dict[str, Any]] = []
    for path in paths:
        info = probe_video(path, settings.video)
        for level in LEVELS:
            began = time.perf_counter()
            verdict = analyze_video(path, detector, settings.video, sample_fps, level, progress=None)
            seconds = time.perf_counter() - began
            rows.append(
                {
                    "video": path.name,
                    "width": info.width,
                    "height": info.height,
                    "duration_seconds": round(info.duration_seconds, 2),
                    "level": level,
                    "analyzed_frames": verdict.analyzed_frames,
                    "seconds": round(seconds, 2),
                    "seconds_per_video_second": round(seconds / max(info.duration_seconds, 1e-6), 3),
                    "ms_per_analysed_frame": round(1000 * seconds / max(verdict.analyzed_frames, 1), 1),
                }
            )
    return {
        "sample_fps": sample_fps,
        "model_load_seconds": round(load_seconds, 2),
        "model_version": detector.model_version,
        "peak_rss_mib": peak_rss_mb(),
        "runs": rows,
    }
