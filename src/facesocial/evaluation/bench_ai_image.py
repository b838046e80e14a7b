"""``facesocial bench ai-image``: time per SkyGate method and per whole analysis, and peak memory.

Every image is read, decoded (the server's decoder and limits) and analysed with every method the
installation has, in this process, one image at a time (the server runs as many at once as
``limits.max_concurrent_images``). The first image is analysed once untimed, so model loading is
reported apart (``first_analysis_ms``). Per method and for the whole analysis: mean, p50, p95 in
ms; images per second; peak RSS.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from facesocial.evaluation.process_stats import peak_rss_mb
from facesocial.forensics.ai_image.analyzer import AiImageAnalyzer
from facesocial.forensics.ai_image.ensemble import MethodWeight, fuse
from facesocial.forensics.ai_image.report import DEFAULT_WEIGHTS
from facesocial.settings import Settings
from facesocial.vision.image import decode_image

SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}


def _files(images: Sequence[Path], limit: int | None) -> list[Path]:
    found: list[Path] = []
    for item in images:
        if item.is_file():
            found.append(item)
            continue
        files = sorted(p for p in item.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
        found += files[:limit]
    if not found:
        raise ValueError("no images under --images")
    return found


def _stats(values: list[float]) -> dict[str, float]:
    array = np.asarray(values, float)
    return {
        "mean": round(float(array.mean()), 1),
        "p50": round(float(np.percentile(array, 50)), 1),
        "p95": round(float(np.percentile(array, 95)), 1),
    }


def run_bench_ai_image(
    analyzer: AiImageAnalyzer, settings: Settings, images: Sequence[Path], limit: int | None = None
) -> dict[str, Any]:
    """The JSON report (module doc). Raises ValueError when no image is found."""
    files = _files(images, limit)
    weights = {n: MethodWeight(w) for n, w in DEFAULT_WEIGHTS.items()}
    active = set(analyzer.available())
    started = time.perf_counter()
    first = files[0].read_bytes()
    analyzer.analyze(first, decode_image(first, settings.limits).rgb, active)
    first_ms = (time.perf_counter() - started) * 1000.0
    per_method: dict[str, list[float]] = {}
    totals: list[float] = []
    pixels: list[int] = []
    for path in files:
        data = path.read_bytes()
        t0 = time.perf_counter()
        image = decode_image(data, settings.limits)
        report = analyzer.analyze(data, image.rgb, active)
        fuse(report.methods, weights, ai_threshold=0.5, real_below=0.5)
        totals.append((time.perf_counter() - t0) * 1000.0)
        pixels.append(image.width * image.height)
        for name, ms in report.timings_ms.items():
            per_method.setdefault(name, []).append(ms)
    return {
        "algorithm_version": analyzer.version,
        "methods_run": sorted(active),
        "images": len(files),
        "megapixels": _stats([p / 1e6 for p in pixels]),
        "first_analysis_ms": round(first_ms, 1),
        "analysis_ms": _stats(totals),
        "images_per_second": round(len(totals) / (sum(totals) / 1000.0), 2),
        "method_ms": {name: _stats(values) for name, values in sorted(per_method.items())},
        "peak_rss_mb": peak_rss_mb(),
    }
