"""``facesocial eval ai-image``: SkyGate on folders of real and AI-generated images (JSON-ready).

Labels come only from the folder the caller names (``--real DIR`` / ``--ai DIR``, each searched
recursively for images). Every image is analysed twice when ``equalise`` is on: as stored, and
after being scaled to a shorter side of :data:`EQUAL_SIDE` px and JPEG-encoded at quality
:data:`EQUAL_QUALITY`, so that the two classes have the same size and the same encoding — a
method whose AUC falls in the equalised run was reading size or encoding, not generation.

Figures per run: ROC AUC of the ensemble score and of each method's score (AI = positive; a
method's images without an opinion are left out of its AUC and counted), the accuracy of
``is_ai_generated`` at the configured ``ai_threshold``, the bands per folder, and per AI folder its
AUC against all real images (the per-generator figure). Weights are the defaults of
:data:`facesocial.forensics.ai_image.report.DEFAULT_WEIGHTS` unless given.
"""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from facesocial.evaluation.metrics import roc_auc
from facesocial.forensics.ai_image.analyzer import AiImageAnalyzer
from facesocial.forensics.ai_image.ensemble import MethodWeight, fuse
from facesocial.forensics.ai_image.report import DEFAULT_WEIGHTS, METHODS
from facesocial.vision.image import decode_image

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".avif"}
EQUAL_SIDE = 384
EQUAL_QUALITY = 90


@dataclass(frozen=True, slots=True)
class Labelled:
    path: Path
    is_ai: bool
    folder: str


def collect(real: Sequence[Path], ai: Sequence[Path], limit: int | None = None) -> list[Labelled]:
    """Images under each folder (sorted; at most ``limit`` per folder). Raises ValueError for a
    missing folder or when either class is empty. Folders are told apart by their path."""
    found: list[Labelled] = []
    for folders, is_ai in ((real, False), (ai, True)):
        for folder in folders:
            if not folder.is_dir():
                raise ValueError(f"{folder} is not a folder")
            files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            found += [Labelled(p, is_ai, _folder_label(folder)) for p in files[:limit]]
    if not any(x.is_ai for x in found) or all(x.is_ai for x in found):
        raise ValueError("both --real and --ai folders must hold images")
    return found


def _folder_label(folder: Path) -> str:
    """The folder's last two path parts (``faces_ffhq_vs_stylegan2/real``): names like ``real`` or
    ``images`` alone say little in a report."""
    parts = folder.resolve().parts
    return "/".join(parts[-2:])


def first_per_folder(images: Sequence[Labelled], limit: int | None) -> list[Labelled]:
    """At most ``limit`` images per folder, in the given order (all when ``limit`` is None)."""
    if limit is None:
        return list(images)
    taken: dict[str, int] = {}
    kept = []
    for item in images:
        if taken.get(item.folder, 0) < limit:
            taken[item.folder] = taken.get(item.folder, 0) + 1
            kept.append(item)
    return kept


def equalise(data: bytes) -> bytes:
    """The file re-made at the eval's common size and encoding (module doc); metadata is dropped."""
    with Image.open(io.BytesIO(data)) as image:
        rgb = image.convert("RGB")
        scale = EQUAL_SIDE / min(rgb.size)
        size = (max(1, round(rgb.size[0] * scale)), max(1, round(rgb.size[1] * scale)))
        out = io.BytesIO()
        rgb.resize(size, Image.Resampling.LANCZOS).save(out, format="JPEG", quality=EQUAL_QUALITY)
        return out.getvalue()


def _auc(pos: list[float], neg: list[float]) -> float | None:
    return round(float(roc_auc(np.asarray(pos), np.asarray(neg))), 4) if pos and neg else None


def _run(
    analyzer: AiImageAnalyzer,
    images: Sequence[Labelled],
    weights: Mapping[str, MethodWeight],
    ai_threshold: float,
    real_below: float,
    transform: Callable[[bytes], bytes] | None,
) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    active = set(weights)
    started = time.perf_counter()
    for item in images:
        data = item.path.read_bytes()
        if transform is not None:
            data = transform(data)
        image = decode_image(data)
        report = analyzer.analyze(data, image.rgb, active)
        verdict = fuse(report.methods, weights, ai_threshold=ai_threshold, real_below=real_below)
        rows.append(
            {
                "ai": item.is_ai,
                "folder": item.folder,
                "score": verdict.score,
                "band": verdict.band,
                "methods": {m.name: m.score for m in report.methods},
            }
        )
    seconds = time.perf_counter() - started
    ai = [r["score"] for r in rows if r["ai"]]
    real = [r["score"] for r in rows if not r["ai"]]
    correct = sum((r["score"] >= ai_threshold) == r["ai"] for r in rows)
    per_method: dict[str, Any] = {}
    for name in METHODS:
        pos = [r["methods"][name] for r in rows if r["ai"] and r["methods"].get(name) is not None]
        neg = [r["methods"][name] for r in rows if not r["ai"] and r["methods"].get(name) is not None]
        if pos or neg:
            per_method[name] = {"auc": _auc(pos, neg), "with_opinion": len(pos) + len(neg)}
    folders: dict[str, Any] = {}
    for folder in sorted({r["folder"] for r in rows}):
        mine = [r for r in rows if r["folder"] == folder]
        bands = {b: sum(r["band"] == b for r in mine) for b in ("real", "uncertain", "ai_generated")}
        entry: dict[str, Any] = {
            "label": "ai" if mine[0]["ai"] else "real",
            "images": len(mine),
            "bands": bands,
        }
        if mine[0]["ai"]:
            entry["auc_vs_all_real"] = _auc([r["score"] for r in mine], real)
        else:
            entry["false_positive_rate"] = round(sum(r["score"] >= ai_threshold for r in mine) / len(mine), 4)
        folders[folder] = entry
    return {
        "images": {"ai": len(ai), "real": len(real)},
        "auc": _auc(ai, real),
        "accuracy_at_threshold": round(correct / len(rows), 4),
        "tpr_at_threshold": round(sum(s >= ai_threshold for s in ai) / len(ai), 4),
        "fpr_at_threshold": round(sum(s >= ai_threshold for s in real) / len(real), 4),
        "uncertain_rate": round(sum(r["band"] == "uncertain" for r in rows) / len(rows), 4),
        "methods": per_method,
        "folders": folders,
        "seconds_per_image": round(seconds / len(rows), 3),
    }


def evaluate(
    analyzer: AiImageAnalyzer,
    images: Sequence[Labelled],
    *,
    ai_threshold: float,
    real_below: float,
    weights: Mapping[str, float] | None = None,
    equalised: bool = True,
) -> dict[str, Any]:
    """The JSON report (module doc): ``as_stored`` and, with ``equalised``, ``equalised``."""
    chosen = {
        name: MethodWeight(w)
        for name, w in (weights or DEFAULT_WEIGHTS).items()
        if name in analyzer.available()
    }
    out: dict[str, Any] = {
        "algorithm_version": analyzer.version,
        "weights": {name: w.weight for name, w in chosen.items()},
        "thresholds": {"ai_threshold": ai_threshold, "real_below": real_below},
        "as_stored": _run(analyzer, images, chosen, ai_threshold, real_below, None),
    }
    if equalised:
        out["equalised"] = _run(analyzer, images, chosen, ai_threshold, real_below, equalise)
        out["equalised"]["transform"] = (
            f"shorter side {EQUAL_SIDE} px (Lanczos), JPEG quality {EQUAL_QUALITY}"
        )
    return out


def without_trained(images: Sequence[Labelled], analyzer: AiImageAnalyzer) -> tuple[list[Labelled], int]:
    """``images`` minus those the shipped model was trained on (by sha256 prefix, from its manifest),
    and how many were left out."""
    model = analyzer.model
    trained: set[str] = set(getattr(model, "manifest", {}).get("trained_on_sha256_prefixes", []))
    if not trained:
        return list(images), 0
    kept = [x for x in images if hashlib.sha256(x.path.read_bytes()).hexdigest()[:16] not in trained]
    return kept, len(images) - len(kept)
