"""``facesocial bench``: per-stage latency on a real photo, median and p95 in milliseconds."""

from __future__ import annotations

import io
import os
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from facesocial.container import Container
from facesocial.settings import Settings
from facesocial.vision.align import dlib_chips
from facesocial.vision.image import decode_image
from facesocial.vision.pipeline import DetectOptions


def _astronaut_jpeg() -> bytes:
    import skimage.data
    from PIL import Image

    buffer = io.BytesIO()
    portrait = skimage.data.astronaut()  # type: ignore[no-untyped-call]
    Image.fromarray(portrait).save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def _time(function: Callable[[], object], runs: int) -> dict[str, float]:
    function()  # warm-up
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        samples.append((time.perf_counter() - start) * 1000.0)
    return {
        "median_ms": round(statistics.median(samples), 2),
        "p95_ms": round(float(np.percentile(samples, 95)), 2),
        "runs": runs,
    }


def _index_search(runs: int, gallery: int = 100_000) -> dict[str, dict[str, float]]:
    """Exact top-10 search in the local index over a synthetic gallery of unit vectors."""
    import tempfile

    from facesocial.store.local_index import LocalVectorIndex
    from facesocial.vision.geometry import l2_normalise

    vectors = l2_normalise(np.random.default_rng(0).normal(size=(gallery, 128)))
    with tempfile.TemporaryDirectory() as folder:
        index = LocalVectorIndex(Path(folder))
        index.ensure_collection("bench", 128)
        index.upsert("bench", [str(i) for i in range(gallery)], vectors)
        query = vectors[:1]
        return {
            f"index_search_top10_{gallery // 1000}k": _time(lambda: index.search("bench", query, 10), runs)
        }


def run_bench(image_path: Path | None, *, runs: int = 20, threads: int = 2) -> dict[str, Any]:
    cv2.setNumThreads(threads)
    data = image_path.read_bytes() if image_path else _astronaut_jpeg()
    settings = Settings()
    load_start = time.perf_counter()
    pipeline = Container(settings).pipeline
    load_ms = (time.perf_counter() - load_start) * 1000.0
    options = DetectOptions(
        settings.detection.min_face_size,
        settings.detection.max_faces,
        settings.detection.detection_confidence,
    )
    image = decode_image(data, settings.limits)
    rgb = image.rgb
    raw = pipeline.detector.detect(
        rgb, min_face_size=options.min_face_size, min_confidence=options.detection_confidence
    )
    with_landmarks = pipeline.landmarker.predict(rgb, raw)
    first = with_landmarks[[0]] if len(with_landmarks) else with_landmarks

    def whole() -> None:
        decoded = decode_image(data, settings.limits)
        faces = pipeline.detect(decoded.rgb, options)
        pipeline.embed(decoded.rgb, faces)

    index_stats = _index_search(runs)
    stages = {
        "decode": _time(lambda: decode_image(data, settings.limits), runs),
        "detect": _time(
            lambda: pipeline.detector.detect(
                rgb, min_face_size=options.min_face_size, min_confidence=options.detection_confidence
            ),
            runs,
        ),
        "landmarks": _time(lambda: pipeline.landmarker.predict(rgb, raw), runs),
        "align_dlib_chip": _time(lambda: dlib_chips(rgb, first), runs),
        **{
            f"embed_{name}": _time(lambda e=embedder: e.embed(rgb, first), runs)  # type: ignore[misc]
            for name, embedder in pipeline.embedders.items()
        },
        "pipeline": _time(whole, runs),
        **index_stats,
    }
    return {
        "image": {
            "source": str(image_path) if image_path else "skimage astronaut (JPEG q92)",
            **image.metadata(),
        },
        "faces_detected": len(raw),
        "per_face_stages": "landmarks: all faces; align and embed: one face",
        "stages": stages,
        "model_load_ms": round(load_ms, 1),
        "threads": threads,
        "cpu_count": os.cpu_count(),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
        "models": {
            "detector": pipeline.detector.model.tag,
            "landmarks": pipeline.landmarker.model.tag,
            "embedding": pipeline.embedder.model.tag,
        },
    }
