"""``facesocial bench --liveness-video FILE``: what one liveness frame costs, stage by stage.

The video's frames are sampled at ``sample_fps``, JPEG-encoded (quality 90) as a client would
send them, then measured as a session measures them: decode, the frame pipeline's one upright
detection pass, the 468-point mesh, the passive model, the continuity embedding (every face
frame) and the reference embedding (about every 400 ms). ``session_frames_per_second`` is how
many frames a second one worker thread takes through the whole session step
(:func:`facesocial.antispoof.active.advance` included). Wall clock on this machine, models
loaded once (reported apart), peak RSS of the process.
"""

from __future__ import annotations

import io
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from facesocial.antispoof.active import ActiveConfig, SessionProgress, advance, needs_embedding
from facesocial.antispoof.observe import observe
from facesocial.container import Container
from facesocial.evaluation.process_stats import peak_rss_mb
from facesocial.settings import Settings
from facesocial.video.frames import FrameReader
from facesocial.video.probe import probe_video
from facesocial.vision.image import decode_image


def _ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"median": round(statistics.median(ordered), 1), "p95": round(p95, 1)}


def _lap(samples: list[float], since: float) -> float:
    """Append the ms since ``since`` to ``samples``; returns now (the next lap's start)."""
    now = time.perf_counter()
    samples.append((now - since) * 1000.0)
    return now


def bench_liveness(path: Path, sample_fps: float) -> dict[str, Any]:
    """Median and p95 ms per stage over the sampled frames of ``path``; raises the video errors."""
    settings = Settings()
    container = Container(settings)
    began = time.perf_counter()
    pipeline, passive = container.frame_pipeline, container.passive_liveness
    load_seconds = time.perf_counter() - began
    info = probe_video(path, settings.video)
    jpegs: list[tuple[float, bytes]] = []
    with FrameReader(path, info, sample_fps, 600) as reader:
        for frame in reader:
            buffer = io.BytesIO()
            Image.fromarray(frame.rgb).save(buffer, format="JPEG", quality=90)
            jpegs.append((float(frame.timestamp_ms), buffer.getvalue()))
    model = pipeline.default_embedder
    continuity = "faceres" if "faceres" in pipeline.embedders else model
    stages: dict[str, list[float]] = {
        k: [] for k in ("decode", "detect", "mesh", "passive", "continuity_embed", "embed")
    }
    for _, data in jpegs:
        clock = time.perf_counter()
        rgb = decode_image(data, settings.limits).rgb
        clock = _lap(stages["decode"], clock)
        faces = pipeline.detect(rgb, container.detect_defaults)
        clock = _lap(stages["detect"], clock)
        if len(faces) == 0:
            continue
        one = faces[np.array([0])]
        pipeline.analyze_mesh(rgb, one)
        clock = _lap(stages["mesh"], clock)
        passive.score(rgb, one.boxes)
        clock = _lap(stages["passive"], clock)
        pipeline.embed(rgb, one, continuity)
        clock = _lap(stages["continuity_embed"], clock)
        pipeline.embed(rgb, one, model)
        _lap(stages["embed"], clock)
    config = ActiveConfig.for_embedder(
        model, continuity_model=continuity, passive_threshold=passive.threshold
    )
    # Head moves the clip never makes, and attempts enough to stay active for the whole clip: the
    # steady state of a session (a completed one would stop measuring, or embed every frame).
    progress = SessionProgress.start(["turn_left", "nod", "blink"], 10)

    def live(rgb: np.ndarray, boxes: np.ndarray) -> list[float]:
        return [s.live_score for s in passive.score(rgb, boxes)]

    steps: list[float] = []
    for t_ms, data in jpegs:
        began = time.perf_counter()
        rgb = decode_image(data, settings.limits).rgb
        embed = needs_embedding(progress, t_ms, config)
        obs = observe(
            pipeline,
            rgb,
            t_ms,
            embed_model=model if embed else None,
            passive=live,
            continuity_model=continuity,
        )
        progress = advance(progress, [obs], config)
        steps.append((time.perf_counter() - began) * 1000.0)
    return {
        "video": path.name,
        "width": info.width,
        "height": info.height,
        "frames": len(jpegs),
        "sample_fps": sample_fps,
        "model_load_seconds": round(load_seconds, 2),
        "embedding_model": model,
        "continuity_model": continuity,
        "passive_model": passive.model.tag,
        "stages_ms": {name: _ms(values) for name, values in stages.items() if values},
        "session_step_ms": _ms(steps),
        "session_frames_per_second": round(1000.0 / statistics.mean(steps), 1),
        "session_status_at_end": progress.status,
        "peak_rss_mib": peak_rss_mb(),
    }
