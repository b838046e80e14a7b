"""``facesocial bench``: per-stage and per-model latency on a real photo (median, p95 in ms).

Every model runs at each requested ONNX Runtime thread count (dlib has no BLAS here and is
single-threaded whatever the setting). Times are wall-clock after one warm-up run.
"""

from __future__ import annotations

import io
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from facesocial.container import Container
from facesocial.evaluation.process_stats import peak_rss_mb
from facesocial.settings import Settings, VectorIndexSettings
from facesocial.store.local_index import LocalVectorIndex
from facesocial.vision.align import dlib_chips
from facesocial.vision.crops import CropCache
from facesocial.vision.detect_dlib import DlibHogDetector
from facesocial.vision.geometry import l2_normalise
from facesocial.vision.image import decode_image
from facesocial.vision.pipeline import DetectOptions, FacePipeline


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
    }


def _pipeline_stages(pipeline: FacePipeline, data: bytes, settings: Settings, runs: int) -> dict[str, Any]:
    options = DetectOptions(
        settings.detection.min_face_size,
        settings.detection.max_faces,
        settings.detection.detection_confidence,
    )
    rgb = decode_image(data, settings.limits).rgb
    faces = pipeline.detect(rgb, options)
    one = faces[[0]] if len(faces) else faces
    stages: dict[str, Any] = {
        f"detect ({pipeline.detector.model.name})": _time(
            lambda: pipeline.detector.detect(
                rgb, min_face_size=options.min_face_size, min_confidence=options.detection_confidence
            ),
            runs,
        ),
        "landmarks (dlib_shape_5, per image)": _time(lambda: pipeline.landmarker.predict(rgb, faces), runs),
    }
    for name, embedder in pipeline.embedders.items():
        stages[f"embed ({name}, one face)"] = _time(lambda e=embedder: e.embed(rgb, one), runs)  # type: ignore[misc]
    if pipeline.attributes is not None:
        stages["attributes (faceres age/gender + emotion, one face)"] = _time(
            lambda: pipeline.analyze_attributes(rgb, one, CropCache(rgb, one)), runs
        )
    if pipeline.mesh is not None:
        stages["mesh (facemesh 468 + iris, pose, eyes, gaze, one face)"] = _time(
            lambda: pipeline.analyze_mesh(rgb, one), runs
        )

    def recognise() -> None:
        decoded = decode_image(data, settings.limits)
        found = pipeline.detect(decoded.rgb, options)
        pipeline.embed(decoded.rgb, found)

    def demographics() -> None:
        decoded = decode_image(data, settings.limits)
        found = pipeline.detect(decoded.rgb, options)
        pipeline.analyze_attributes(decoded.rgb, found)

    stages["pipeline: decode → detect → landmarks → quality → embed (default model)"] = _time(recognise, runs)
    if pipeline.attributes is not None:
        stages["pipeline: decode → detect → attributes (demographics)"] = _time(demographics, runs)
    return {"faces_detected": len(faces), "stages": stages}


def bench_photo(width: int, height: int) -> np.ndarray:
    """A large test photo without external data: scikit-image's coffee enlarged, with the
    astronaut's head pasted at 2 %, 5 % and 10 % of the short side, the 5 % one lying on its
    side (turned clockwise)."""
    import skimage.data

    coffee = np.ascontiguousarray(skimage.data.coffee())  # type: ignore[no-untyped-call]
    canvas = cv2.resize(coffee, (width, height), interpolation=cv2.INTER_CUBIC)
    head = np.ascontiguousarray(skimage.data.astronaut()[0:320, 80:380])  # type: ignore[no-untyped-call]
    short = min(width, height)
    for fraction, x, turned in ((0.02, 0.15, False), (0.05, 0.45, True), (0.10, 0.7, False)):
        # The astronaut's face box is ~106 px in this 300 px wide head crop.
        scale = fraction * short / 106.0
        pasted = cv2.resize(head, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        if turned:
            pasted = np.ascontiguousarray(np.rot90(pasted, -1))
        top, left = int(height * 0.3), int(width * x)
        h, w = pasted.shape[:2]
        canvas[top : top + h, left : left + w] = pasted[: height - top, : width - left]
    return np.ascontiguousarray(canvas)


SEARCH_MODES: dict[str, dict[str, Any]] = {
    "single upright pass (before)": {"rotation": "upright", "small_face_fraction": 1.0},
    "upright, tiles": {"rotation": "upright"},
    "auto (default)": {},
    "always": {"rotation": "always"},
}


def _search_stages(settings: Settings, runs: int) -> dict[str, Any]:
    """Detection alone per search mode and photo size: median ms, faces, model inputs."""
    import skimage.data

    photos = {
        "astronaut 512x512": np.ascontiguousarray(skimage.data.astronaut()),  # type: ignore[no-untyped-call]
        "1920x1080": bench_photo(1920, 1080),
        "4000x3000": bench_photo(4000, 3000),
        "8000x4500": bench_photo(8000, 4500),
    }
    min_face = settings.detection.min_face_size
    confidence = settings.detection.detection_confidence
    result: dict[str, Any] = {}
    detectors = [("blazeface_full", mode, update) for mode, update in SEARCH_MODES.items()]
    if Container(settings).model_cache.has("retinaface_mnet025"):
        detectors.append(("retinaface_mnet025", "auto (default)", {}))
    for name, mode, update in detectors:
        configured = settings.model_copy(
            update={
                "detection": settings.detection.model_copy(update=update),
                "models": settings.models.model_copy(update={"detector": name}),
            }
        )
        detector = Container(configured).pipeline.detector
        row: dict[str, Any] = {}
        for label, rgb in photos.items():

            def detect(x: np.ndarray = rgb, d: Any = detector) -> Any:
                return d.detect(x, min_face_size=min_face, min_confidence=confidence)

            faces = detect()
            timing = _time(detect, runs)
            row[label] = {
                **timing,
                "faces": len(faces),
                "model_inputs": int(getattr(detector, "views_run", 1)),
            }
        result[f"{name}: {mode}"] = row
    return result


def _index_search(runs: int, gallery: int = 100_000) -> dict[str, float]:
    """Exact top-10 search in the local index over a synthetic gallery of unit vectors."""
    vectors = l2_normalise(np.random.default_rng(0).normal(size=(gallery, 128)))
    with tempfile.TemporaryDirectory() as folder:
        # Exact on purpose: graphs have their own command (`facesocial bench index`).
        index = LocalVectorIndex(Path(folder), settings=VectorIndexSettings(ann=False))
        index.ensure_collection("bench", 128)
        index.upsert("bench", [str(i) for i in range(gallery)], vectors)
        query = vectors[:1]
        return _time(lambda: index.search("bench", query, 10), runs)


def run_bench(
    image_path: Path | None, *, runs: int = 20, threads: tuple[int, ...] = (1, 2)
) -> dict[str, Any]:
    data = image_path.read_bytes() if image_path else _astronaut_jpeg()
    settings = Settings()
    image = decode_image(data, settings.limits)
    report: dict[str, Any] = {
        "image": {
            "source": str(image_path) if image_path else "skimage astronaut (JPEG q92)",
            **image.metadata(),
        },
        "cpu_count": os.cpu_count(),
        "decode": _time(lambda: decode_image(data, settings.limits), runs),
        "by_threads": {},
    }
    for count in threads:
        cv2.setNumThreads(count)
        configured = settings.model_copy(
            update={"models": settings.models.model_copy(update={"intra_op_threads": count})}
        )
        load_start = time.perf_counter()
        pipeline = Container(configured).pipeline
        load_ms = (time.perf_counter() - load_start) * 1000.0
        result = _pipeline_stages(pipeline, data, configured, runs)
        result["model_load_ms"] = round(load_ms, 1)
        report["by_threads"][str(count)] = result
    hog = DlibHogDetector(settings.detection.hog_upsample_max_pixels)
    rgb = image.rgb
    report["dlib_hog_detect (fallback detector)"] = _time(
        lambda: hog.detect(rgb, min_face_size=settings.detection.min_face_size), max(3, runs // 4)
    )
    # The last thread setting's pipeline serves the single-threaded dlib stages below too.
    faces = pipeline.detect(rgb, DetectOptions())
    if len(faces):
        report["align (dlib 150² chip, one face)"] = _time(lambda: dlib_chips(rgb, faces[[0]]), runs)
        report["landmarks_68 (dlib, per image)"] = _time(lambda: pipeline.landmarks68(rgb, faces), runs)
    report["detector_search (default min_face_size, ms per photo)"] = _search_stages(
        settings, max(3, runs // 4)
    )
    report["index_search_top10_100k (local, exact)"] = _index_search(runs)
    report["peak_rss_mb"] = peak_rss_mb()
    report["models"] = {
        "detector": pipeline.detector.model.tag,
        "embedders": sorted(e.model.tag for e in pipeline.embedders.values()),
        "attributes": sorted(m.tag for m in pipeline.attributes.models.values())
        if pipeline.attributes
        else [],
        "mesh": pipeline.mesh.model.tag if pipeline.mesh else None,
    }
    return report
