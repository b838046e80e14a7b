"""ms per face of ``dlib_resnet_v1`` in dlib vs our ONNX conversion, by batch and threads.

Run: ``python -m facesocial.evaluation.bench_dlib_runtime LFW_FOLDER`` (prints JSON rows),
LFW_FOLDER being ``../shared/data/lfw_deepfunneled/lfw-deepfunneled``; the chips are the
aligned faces of its first images. Timings are the median of ``repeats`` runs after a warm-up.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from facesocial.models import dlib_pack
from facesocial.models.runtime import ModelCache, RuntimeOptions
from facesocial.vision.align import dlib_chips
from facesocial.vision.embed_dlib import DlibResnetEmbedder
from facesocial.vision.embed_dlib_onnx import DlibResnetOnnxEmbedder
from facesocial.vision.pipeline import DetectOptions, FacePipeline

Chips = list[npt.NDArray[np.uint8]]


def lfw_chips(folder: Path, count: int) -> Chips:
    """Aligned chips of the largest face of the first LFW images (``count`` of them)."""
    pipeline = FacePipeline.load()
    paths = sorted(folder.glob("*/*.jpg"))[: count * 2]
    images = [np.asarray(Image.open(path).convert("RGB")) for path in paths]
    chips: Chips = []
    for rgb in images:
        chips.extend(dlib_chips(rgb, pipeline.detect(rgb, DetectOptions(max_faces=1))))
    if len(chips) < count:
        raise ValueError(f"only {len(chips)} faces found under {folder}")
    return chips[:count]


def _median_ms(run: Callable[[], object], repeats: int) -> float:
    run()  # warm-up (allocations, ORT's first-run planning)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def bench_dlib_runtimes(
    chips: Chips,
    *,
    batches: tuple[int, ...] = (1, 4, 16),
    threads: tuple[int, ...] = (1, 2),
    repeats: int = 5,
) -> list[dict[str, Any]]:
    """Rows of {runtime, threads, batch, ms_per_face}; the ONNX model is converted to a temp dir."""
    rows: list[dict[str, Any]] = []
    dlib_embedder = DlibResnetEmbedder()
    for batch in batches:
        ms = _median_ms(partial(dlib_embedder.embed_chips, chips[:batch]), repeats)
        rows.append({"runtime": "dlib", "threads": 1, "batch": batch, "ms_per_face": round(ms / batch, 2)})
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        dlib_pack.ensure_resnet_onnx(folder)
        for count in threads:
            cache = ModelCache(folder, RuntimeOptions(intra_op_threads=count, use_cuda=False))
            embedder = DlibResnetOnnxEmbedder(cache.get(dlib_pack.ONNX_NAME), max_batch=max(batches))
            for batch in batches:
                ms = _median_ms(partial(embedder.embed_chips, chips[:batch]), repeats)
                rows.append(
                    {
                        "runtime": "onnxruntime",
                        "threads": count,
                        "batch": batch,
                        "ms_per_face": round(ms / batch, 2),
                    }
                )
    return rows


if __name__ == "__main__":
    print(json.dumps(bench_dlib_runtimes(lfw_chips(Path(sys.argv[1]), 16)), indent=1))
