"""``facesocial bench attention``: ms per 640×480 meeting frame with 1-4 faces, stage by stage.

Frames are composed from real LFW photos (``lfw_deepfunneled``): 1-4 people's first images,
each scaled to 220×220 (the face ≈ 100 px wide, a webcam participant at arm's length in a
gallery view) and pasted in the cells of a 2×2 grid on a grey 640×480 canvas, then JPEG-encoded
(quality 85) as a browser would send them. Each frame goes through what the WebSocket handler
does: decode, then :class:`AttentionSession` — detection (the container's upright one-pass
``frame_pipeline``), the mesh + iris batch, and the model-free rest (tracking, scores, PERCLOS,
alerts). Frames of one composition are repeated with a 1-pixel shift (so no cache helps) at
200 ms steps, as a 5 frames/s stream. Wall clock, one thread, models loaded before timing.
"""

from __future__ import annotations

import io
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from facesocial.analytics.attention.session import AttentionSession
from facesocial.container import Container
from facesocial.settings import Settings
from facesocial.vision.image import decode_image

CANVAS = (640, 480)
FACE_SIDE = 220
CELLS = ((100, 10), (330, 10), (100, 250), (330, 250))  # top-left corners of the 2x2 grid


def compose(photos: list[npt.NDArray[np.uint8]], shift: int = 0) -> npt.NDArray[np.uint8]:
    """A 480×640 RGB canvas with up to four photos in the grid cells, moved ``shift`` px right."""
    canvas = Image.new("RGB", CANVAS, (128, 128, 128))
    for photo, (x, y) in zip(photos, CELLS, strict=False):
        tile = Image.fromarray(photo).resize((FACE_SIDE, FACE_SIDE), Image.Resampling.BILINEAR)
        canvas.paste(tile, (x + shift, y))
    return np.asarray(canvas)


def jpeg(rgb: npt.NDArray[np.uint8]) -> bytes:
    """The bench's frame encoding: JPEG quality 85."""
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50 and p95 (nearest rank) of ``samples``, ms rounded to 0.1."""
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50": round(statistics.median(ordered), 1), "p95": round(p95, 1)}


def bench_attention(lfw: Path, frames_per_count: int = 60, people: int = 12) -> dict[str, Any]:
    """p50/p95 ms per frame and per stage for 1, 2, 3 and 4 faces (module docstring).

    ``lfw``: the ``lfw-deepfunneled`` folder; ``people``: how many people's photos are used
    (in turns). Raises FileNotFoundError when ``lfw`` has fewer than 4 people.
    """
    folders = sorted(p for p in lfw.iterdir() if p.is_dir())
    step = max(1, len(folders) // people)
    photos = [
        np.asarray(Image.open(sorted(f.glob("*.jpg"))[0]).convert("RGB")) for f in folders[::step][:people]
    ]
    if len(photos) < 4:
        raise FileNotFoundError(f"fewer than 4 people in {lfw}")
    settings = Settings()
    container = Container(settings)
    began = time.perf_counter()
    pipeline = container.frame_pipeline
    if pipeline.mesh is None:
        raise FileNotFoundError("face mesh models are not installed (facesocial models pull)")
    warm = AttentionSession(pipeline, settings.attention)
    for i in range(3):
        warm.process(compose(photos[:4], i), i * 200)
    load_seconds = time.perf_counter() - began
    report: dict[str, Any] = {
        "frame": f"{CANVAS[0]}x{CANVAS[1]} JPEG q85, LFW faces scaled to {FACE_SIDE} px",
        "load_and_warm_seconds": round(load_seconds, 2),
        "by_face_count": {},
    }
    for count in (1, 2, 3, 4):
        session = AttentionSession(pipeline, settings.attention)
        stages: dict[str, list[float]] = {
            k: [] for k in ("decode", "detect_and_mesh", "track_score_alerts", "total")
        }
        found: list[int] = []
        for i in range(frames_per_count):
            group = [photos[(i // 10 * count + k) % len(photos)] for k in range(count)]
            data = jpeg(compose(group, i % 10))
            t0 = time.perf_counter()
            rgb = decode_image(data, settings.limits).rgb
            t1 = time.perf_counter()
            faces, meshes = session.measure(rgb)
            t2 = time.perf_counter()
            frame = session.process_measured(faces, meshes, i * 200)
            t3 = time.perf_counter()
            stages["decode"].append((t1 - t0) * 1000)
            stages["detect_and_mesh"].append((t2 - t1) * 1000)
            stages["track_score_alerts"].append((t3 - t2) * 1000)
            stages["total"].append((t3 - t0) * 1000)
            found.append(len(frame.faces))
        report["by_face_count"][str(count)] = {
            "frames": frames_per_count,
            "faces_found_median": statistics.median(found),
            "faces_found_min": min(found),
            **{name: percentiles(values) for name, values in stages.items()},
        }
    report["detect_vs_mesh_4_faces"] = _split_detect_mesh(container, photos, settings)
    return report


def _split_detect_mesh(
    container: Container, photos: list[npt.NDArray[np.uint8]], settings: Settings
) -> dict[str, Any]:
    """Detection and mesh timed apart on 4-face frames (what :meth:`AttentionSession.measure` runs)."""
    pipeline = container.frame_pipeline
    session = AttentionSession(pipeline, settings.attention)
    detect: list[float] = []
    mesh: list[float] = []
    for i in range(30):
        rgb = compose(photos[i % 4 :] + photos[: i % 4], i % 10)
        t0 = time.perf_counter()
        faces = pipeline.detect(rgb, session.detect_options)
        t1 = time.perf_counter()
        if len(faces):
            pipeline.analyze_mesh(rgb, faces)
        t2 = time.perf_counter()
        detect.append((t1 - t0) * 1000)
        mesh.append((t2 - t1) * 1000)
    return {"detect": percentiles(detect), "mesh_and_iris": percentiles(mesh)}
