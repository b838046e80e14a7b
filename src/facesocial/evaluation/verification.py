"""``facesocial eval verification``: embed every image of an LFW-format pair list, score pairs.

Besides the official genuine/impostor pairs, every two evaluated images of different people
form an extra impostor comparison. Thresholds for a false-match rate of 1e-3 or 1e-4 need
many thousands of impostors to be resolved at all: 1,500 official impostor pairs cannot.
"""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path
from typing import Any

import numpy as np

from facesocial import errors
from facesocial.evaluation import metrics
from facesocial.evaluation.lfw import read_pairs
from facesocial.settings import Settings
from facesocial.vision.faces import Faces
from facesocial.vision.image import decode_image
from facesocial.vision.pipeline import DetectOptions, FacePipeline

_pipeline: FacePipeline | None = None
_model: str | None = None
# LFW faces fill roughly the central 40 % of the frame; look for small faces too.
_OPTIONS = DetectOptions(min_face_size=20, max_faces=20, detection_confidence=0.5)


def _init_worker(settings: Settings, model: str | None) -> None:
    """Each worker process builds its own pipeline (models are not shared across forks)."""
    global _pipeline, _model
    from facesocial.container import Container

    _pipeline = Container(settings).pipeline
    _model = model


def embed_file(path: Path) -> tuple[str, np.ndarray | None, str]:
    """Embedding of the face nearest the image centre; status ``ok``, ``fallback`` or an error."""
    assert _pipeline is not None
    try:
        image = decode_image(path.read_bytes())
    except (OSError, errors.FaceSocialError) as exc:
        return str(path), None, f"error: {exc}"
    rgb = image.rgb
    faces = _pipeline.detect(rgb, _OPTIONS)
    status = "ok"
    if len(faces) == 0:
        # Standard LFW practice: the aligned images are centred on the face, so score the
        # centre box rather than dropping the pair (counted and reported as fallbacks).
        h, w = rgb.shape[:2]
        side = 0.4 * min(h, w)
        box = np.array([[w / 2 - side / 2, h / 2 - side / 2, w / 2 + side / 2, h / 2 + side / 2]], np.float32)
        faces = _pipeline.landmarker.predict(
            rgb, Faces(box, np.ones(1, np.float32), _pipeline.detector.model)
        )
        status = "fallback"
    else:
        centres = (faces.boxes[:, :2] + faces.boxes[:, 2:]) / 2.0
        distance = np.linalg.norm(centres - np.array([rgb.shape[1] / 2, rgb.shape[0] / 2]), axis=1)
        nearest = int(np.argmin(distance))
        faces = faces[[nearest]]
    embedded = _pipeline.embed(rgb, faces, _model)
    return str(path), np.asarray(embedded.columns["embedding"][0], dtype=np.float32), status


def run_verification_eval(
    pairs_file: Path,
    images: Path,
    *,
    settings: Settings | None = None,
    model: str | None = None,
    workers: int = 2,
    limit: int | None = None,
) -> dict[str, Any]:
    started = time.perf_counter()
    pairs = read_pairs(pairs_file, images)
    if limit is not None:
        pairs = pairs[:limit]
    unique = sorted({p.first for p in pairs} | {p.second for p in pairs})
    embeddings: dict[str, np.ndarray] = {}
    statuses: dict[str, str] = {}
    if workers > 1:
        init_args = (settings or Settings(), model)
        with multiprocessing.get_context("fork").Pool(workers, _init_worker, init_args) as pool:
            results = pool.imap_unordered(embed_file, unique, chunksize=16)
            for path, vector, status in results:
                statuses[path] = status
                if vector is not None:
                    embeddings[path] = vector
    else:
        _init_worker(settings or Settings(), model)
        for file in unique:
            path, vector, status = embed_file(file)
            statuses[path] = status
            if vector is not None:
                embeddings[path] = vector

    genuine: list[float] = []
    impostor: list[float] = []
    g_folds: list[int] = []
    i_folds: list[int] = []
    failures = 0
    for pair in pairs:
        a, b = embeddings.get(str(pair.first)), embeddings.get(str(pair.second))
        if a is None or b is None:
            failures += 1
            continue
        score = float(np.dot(a, b))
        (genuine if pair.same else impostor).append(score)
        (g_folds if pair.same else i_folds).append(pair.fold)
    g, i = np.array(genuine), np.array(impostor)
    threshold, best_accuracy = metrics.best_threshold(g, i)
    folds = len(set(g_folds) | set(i_folds))
    if folds >= 2:
        cv_mean, cv_std = metrics.cross_validated_accuracy(g, i, g_folds, i_folds)
        protocol = f"mean over {folds} folds, threshold chosen on the other folds"
    else:
        cv_mean, cv_std = best_accuracy, float("nan")
        protocol = "single fold: threshold chosen on the same pairs (optimistic)"
    extended = _extended_impostors(embeddings)
    report: dict[str, Any] = {
        "pairs": len(pairs),
        "scored_pairs": len(genuine) + len(impostor),
        "failures": failures,
        "images": len(unique),
        "detection_fallbacks": sum(1 for s in statuses.values() if s == "fallback"),
        "image_errors": sum(1 for s in statuses.values() if s.startswith("error")),
        **_model_tags(settings or Settings(), model),
        "similarity": "cosine of L2-normalised embeddings",
        "accuracy": round(cv_mean, 4),
        "accuracy_std": round(cv_std, 4),
        "accuracy_protocol": protocol,
        "accuracy_at_best_threshold": round(best_accuracy, 4),
        "auc": round(metrics.roc_auc(g, i), 5),
        "best_threshold": round(threshold, 4),
        "tar_at_far": {},
        "extended_impostors": {"comparisons": int(extended.size)},
        "seconds": round(time.perf_counter() - started, 1),
    }
    for far in (1e-2, 1e-3):
        t = metrics.threshold_at_far(i, far)
        report["tar_at_far"][f"{far:g}"] = {"tar": round(metrics.tar_at(g, t), 4), "threshold": round(t, 4)}
    for far in (1e-3, 1e-4):
        if extended.size:
            t = metrics.threshold_at_far(extended, far)
            report["extended_impostors"][f"{far:g}"] = {
                "tar": round(metrics.tar_at(g, t), 4),
                "threshold": round(t, 4),
            }
    safe: dict[str, Any] = _json_safe(report)
    return safe


def _json_safe(value: Any) -> Any:
    """NaN (a metric with no data, e.g. no impostor pairs) becomes null."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, float) and value != value:
        return None
    return value


def _extended_impostors(embeddings: dict[str, np.ndarray], max_images: int = 6000) -> np.ndarray:
    """Scores of every pair of images of different people (identity = parent folder)."""
    paths = sorted(embeddings)[:max_images]
    if len(paths) < 2:
        return np.zeros(0)
    identities = np.array([Path(p).parent.name for p in paths])
    matrix = np.stack([embeddings[p] for p in paths])
    scores = matrix @ matrix.T
    upper = np.triu(np.ones_like(scores, dtype=bool), k=1)
    different = identities[:, None] != identities[None, :]
    impostor: np.ndarray = scores[upper & different].astype(np.float64)
    return impostor


def _model_tags(settings: Settings, model: str | None) -> dict[str, str]:
    """Which embedding model and detector the workers ran (one pipeline load, not one per tag)."""
    from facesocial.container import Container

    pipeline = Container(settings).pipeline
    return {"model": pipeline.embedder_for(model).model.tag, "detector": pipeline.detector.model.tag}
