"""``facesocial bench pipeline``: images/s, faces/s and per-stage latency of the recognition pipeline.

Each image goes through the platform's own code path, the one ``register``/``identify`` take per
face (vision/probe.py): ``decode_image`` → ``FacePipeline.detect`` (detector, 5-point landmarks,
roll, quality) → ``FacePipeline.embed`` of every face found. The pipeline is the composition
root's (``Container.pipeline``), so the detector and the embedding runtime are whatever the
settings pick. Stage times come from thin timing proxies around the loaded detector, landmarker
and embedders; ``quality`` is the rest of ``FacePipeline.detect`` (roll from the landmarks plus
``quality.assess``). File reads happen before the clock starts; one warm-up run of the first
image is excluded.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from facesocial import errors
from facesocial.container import Container
from facesocial.evaluation.process_stats import peak_rss_mb
from facesocial.settings import Settings
from facesocial.vision.align import dlib_chips
from facesocial.vision.faces import Faces
from facesocial.vision.image import decode_image
from facesocial.vision.landmarks import DlibFivePointLandmarker
from facesocial.vision.pipeline import FacePipeline
from facesocial.vision.ports import Embedder, FaceDetector

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp"})
STAGES = ("decode", "detect", "landmarks", "quality", "align", "embed", "total")


def list_images(folders: Sequence[Path], limit: int | None = None) -> list[Path]:
    """Image files under each folder (recursive), sorted by path; the first ``limit`` of EACH folder.

    Deterministic: the same folders and limit give the same list on every machine. A file
    (not a folder) is taken as it is. Raises ``FileNotFoundError`` for a missing path.
    """
    chosen: list[Path] = []
    for folder in folders:
        if not folder.exists():
            raise FileNotFoundError(f"no such file or folder: {folder}")
        if folder.is_file():
            found = [folder]
        else:
            found = sorted(
                (p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
                key=lambda p: p.relative_to(folder).as_posix(),
            )
        chosen.extend(found if limit is None else found[:limit])
    return chosen


def latency_summary(samples_ms: Sequence[float]) -> dict[str, float | int]:
    """p50/p95/mean in ms (rounded to 0.01) and the sample count; zeros without samples."""
    if not samples_ms:
        return {"n": 0, "p50_ms": 0.0, "p95_ms": 0.0, "mean_ms": 0.0}
    values = np.asarray(samples_ms, dtype=np.float64)
    return {
        "n": int(values.size),
        "p50_ms": round(float(np.percentile(values, 50)), 2),
        "p95_ms": round(float(np.percentile(values, 95)), 2),
        "mean_ms": round(float(values.mean()), 2),
    }


def settings_for_runtime(settings: Settings, runtime: str | None) -> Settings:
    """``settings`` with ``models.dlib_runtime`` set to ``runtime`` ("onnx" or "dlib"); None keeps it.

    Raises ``ValueError`` (pydantic's ValidationError) for any other value.
    """
    if runtime is None:
        return settings
    models = type(settings.models).model_validate({**settings.models.model_dump(), "dlib_runtime": runtime})
    return settings.model_copy(update={"models": models})


def runtime_of(settings: Settings, pipeline: FacePipeline) -> dict[str, Any]:
    """What actually ran: the configured dlib runtime and the default embedder's class."""
    return {
        "dlib_runtime_setting": settings.models.dlib_runtime,
        "embedder_class": type(pipeline.embedder).__name__,
        "intra_op_threads": settings.models.intra_op_threads,
        "cpu_count": os.cpu_count(),
    }


@dataclass
class _Stopwatch:
    """Milliseconds per stage for the image being processed."""

    current: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.current[name] += (time.perf_counter() - started) * 1000.0

    def take(self) -> dict[str, float]:
        taken = dict(self.current)
        self.current = defaultdict(float)
        return taken


class _TimedDetector:
    def __init__(self, inner: FaceDetector, watch: _Stopwatch) -> None:
        self._inner, self._watch, self.model = inner, watch, inner.model

    def detect(self, rgb: npt.NDArray[np.uint8], *, min_face_size: int, min_confidence: float) -> Faces:
        with self._watch.stage("detect"):
            return self._inner.detect(rgb, min_face_size=min_face_size, min_confidence=min_confidence)


class _TimedLandmarker:
    def __init__(self, inner: DlibFivePointLandmarker, watch: _Stopwatch) -> None:
        self._inner, self._watch, self.model = inner, watch, inner.model

    def predict(self, rgb: npt.NDArray[np.uint8], faces: Faces) -> Faces:
        with self._watch.stage("landmarks"):
            return self._inner.predict(rgb, faces)


class _TimedEmbedder:
    """Times alignment and the model apart when the embedder takes chips (dlib's ResNet in
    either runtime embeds ``dlib_chips``); otherwise the whole ``embed`` counts as ``embed``."""

    def __init__(self, inner: Embedder, watch: _Stopwatch) -> None:
        self._inner, self._watch = inner, watch
        self.model, self.dimension = inner.model, inner.dimension

    @property
    def collection(self) -> str:
        return self._inner.collection

    def embed(self, rgb: npt.NDArray[np.uint8], faces: Faces) -> npt.NDArray[np.float32]:
        embed_chips = getattr(self._inner, "embed_chips", None)
        if embed_chips is None:
            with self._watch.stage("embed"):
                return self._inner.embed(rgb, faces)
        with self._watch.stage("align"):
            chips = dlib_chips(rgb, faces)
        with self._watch.stage("embed"):
            vectors: npt.NDArray[np.float32] = embed_chips(chips)
        return vectors


def timed_pipeline(pipeline: FacePipeline, watch: _Stopwatch) -> FacePipeline:
    """The same models and the same ``FacePipeline`` methods, with every stage timed."""
    return FacePipeline(
        cast(FaceDetector, _TimedDetector(pipeline.detector, watch)),
        cast(DlibFivePointLandmarker, _TimedLandmarker(pipeline.landmarker, watch)),
        {name: cast(Embedder, _TimedEmbedder(e, watch)) for name, e in pipeline.embedders.items()},
        pipeline.default_embedder,
        pipeline.attributes,
        pipeline.mesh,
    )


@dataclass(frozen=True, slots=True)
class ImageFaces:
    """One image's faces as the pipeline found them: boxes (N, 4) x1 y1 x2 y2 px, unit embeddings (N, D)."""

    name: str
    boxes: npt.NDArray[np.float32]
    embeddings: npt.NDArray[np.float32]


def measure_pipeline(
    images: Sequence[Path], settings: Settings, *, names: Sequence[str] | None = None
) -> tuple[dict[str, Any], list[ImageFaces]]:
    """Run the default recognition pipeline over ``images``: the report and every image's faces.

    ``names`` label the images in the report (default: the file names). Images that fail to
    decode are counted under ``failed`` with their error code and left out of the timings.
    """
    if not images:
        raise ValueError("no images to benchmark")
    labels = list(names) if names is not None else [p.name for p in images]
    payloads = [p.read_bytes() for p in images]
    load_started = time.perf_counter()
    container = Container(settings)
    pipeline = container.pipeline
    load_s = time.perf_counter() - load_started
    options = container.detect_defaults
    watch = _Stopwatch()
    timed = timed_pipeline(pipeline, watch)

    def run(data: bytes) -> Faces:
        with watch.stage("decode"):
            image = decode_image(data, settings.limits)
        with watch.stage("pipeline_detect"):
            faces = timed.detect(image.rgb, options)
        if len(faces):  # as probe_face: nothing is embedded when no face is found
            faces = timed.embed(image.rgb, faces)
        return faces

    with contextlib.suppress(errors.FaceSocialError):
        run(payloads[0])  # warm-up: lazy allocations, first ONNX Runtime run
    watch.take()
    samples: dict[str, list[float]] = {stage: [] for stage in STAGES}
    found: list[ImageFaces] = []
    failed: dict[str, str] = {}
    faces_per_image: dict[str, int] = {}
    wall_started = time.perf_counter()
    for label, data in zip(labels, payloads, strict=True):
        started = time.perf_counter()
        try:
            faces = run(data)
        except errors.FaceSocialError as exc:
            watch.take()
            failed[label] = exc.code
            continue
        total = (time.perf_counter() - started) * 1000.0
        stages = watch.take()
        stages["quality"] = stages.pop("pipeline_detect") - stages["detect"] - stages.get("landmarks", 0.0)
        stages["total"] = total
        for stage, value in stages.items():
            samples[stage].append(value)
        faces_per_image[label] = len(faces)
        embeddings = (
            np.asarray(faces.columns["embedding"], np.float32)
            if len(faces)
            else np.zeros((0, pipeline.embedder.dimension), np.float32)
        )
        found.append(ImageFaces(label, faces.boxes.astype(np.float32), embeddings))
    wall_s = time.perf_counter() - wall_started
    done = len(faces_per_image)
    face_count = sum(faces_per_image.values())
    report: dict[str, Any] = {
        "images": done,
        "faces": face_count,
        "failed": failed,
        "total_s": round(wall_s, 3),
        "images_per_s": round(done / wall_s, 3) if wall_s > 0 else 0.0,
        "faces_per_s": round(face_count / wall_s, 3) if wall_s > 0 else 0.0,
        "stages_ms_per_image": {stage: latency_summary(samples[stage]) for stage in STAGES},
        "embed_ms_per_face": round(sum(samples["embed"]) / face_count, 2) if face_count else None,
        "model_load_s": round(load_s, 3),
        "peak_rss_mb": peak_rss_mb(),
        "models": {
            "detector": pipeline.detector.model.tag,
            "landmarks": pipeline.landmarker.model.tag,
            "embedding": pipeline.embedder.model.tag,
        },
        "runtime": runtime_of(settings, pipeline),
        "faces_per_image": faces_per_image,
    }
    return report, found


def run_bench_pipeline(
    folders: Sequence[Path], *, limit: int | None = None, runtime: str | None = None
) -> dict[str, Any]:
    """``facesocial bench pipeline``: the report of :func:`measure_pipeline` over the chosen images.

    Images: :func:`list_images` (sorted, the first ``limit`` of each folder). ``runtime``
    overrides ``models.dlib_runtime`` ("onnx" or "dlib"). Raises ``ValueError`` without images.
    """
    images = list_images(folders, limit)
    settings = settings_for_runtime(Settings(), runtime)
    report, _ = measure_pipeline(images, settings, names=image_names(folders, images))
    return {"selection": {"folders": [str(f) for f in folders], "limit_per_folder": limit}, **report}


def image_names(folders: Sequence[Path], images: Sequence[Path]) -> list[str]:
    """Each image's path relative to the folder it was found in (unique across folders)."""
    names = []
    for path in images:
        owner = next((f for f in folders if f.is_dir() and path.is_relative_to(f)), None)
        names.append(path.relative_to(owner).as_posix() if owner else path.name)
    if len(set(names)) != len(names):  # two folders with the same relative names: keep the folder
        names = [p.as_posix() for p in images]
    return names
