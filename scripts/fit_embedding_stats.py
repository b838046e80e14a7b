"""Fit the statistics of real dlib_resnet_v1 face embeddings that `bench index` draws from.

Embeds LFW deep-funneled images (every identity with at least two images, at most
``--per-identity`` images each) with the production pipeline (default detector, the face
nearest the centre, as `facesocial eval verification` does), then fits:

* ``centre_mean`` (D,), ``centre_cov`` (D, D): mean and covariance of identity centres
  (the mean of an identity's unit embeddings), corrected for the within-identity noise that
  a mean of n samples still carries (``cov(means) - within_cov * mean(1/n)``, clipped PSD);
* ``within_cov`` (D, D): covariance of a sample's deviation from its identity centre
  (unbiased: deviations scaled by sqrt(n / (n - 1))).

Writes src/facesocial/evaluation/data/dlib_embedding_stats.npz and a manifest beside it.
Run from the repo root (takes several minutes on 2 cores)::

    .venv/bin/python scripts/fit_embedding_stats.py /work/shared/data/lfw_deepfunneled/lfw-deepfunneled
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import time
from pathlib import Path

import numpy as np

from facesocial.evaluation import verification
from facesocial.settings import Settings

OUT = Path("src/facesocial/evaluation/data/dlib_embedding_stats.npz")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("images", type=Path)
    parser.add_argument("--per-identity", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    started = time.perf_counter()
    files: list[Path] = []
    for person in sorted(p for p in args.images.iterdir() if p.is_dir()):
        images = sorted(person.glob("*.jpg"))
        if len(images) >= 2:
            files.extend(images[: args.per_identity])
    settings = Settings()
    with multiprocessing.get_context("fork").Pool(
        args.workers, verification._init_worker, (settings, "dlib_resnet_v1")
    ) as pool:
        results = list(pool.imap_unordered(verification.embed_file, files, chunksize=16))
    by_person: dict[str, list[np.ndarray]] = {}
    statuses: dict[str, int] = {}
    for path, vector, status in results:
        statuses[status.split(":")[0]] = statuses.get(status.split(":")[0], 0) + 1
        if vector is not None and status == "ok":  # centre-box fallbacks are not typical faces
            by_person.setdefault(Path(path).parent.name, []).append(vector)
    groups = [np.stack(v) for v in by_person.values() if len(v) >= 2]
    centres = np.stack([g.mean(axis=0) for g in groups])
    deviations = np.concatenate([(g - g.mean(axis=0)) * np.sqrt(len(g) / (len(g) - 1)) for g in groups])
    within_cov = deviations.T @ deviations / len(deviations)
    shrink = float(np.mean([1.0 / len(g) for g in groups]))
    raw_centre_cov = np.cov(centres, rowvar=False)
    values, vectors = np.linalg.eigh(raw_centre_cov - within_cov * shrink)
    centre_cov = (vectors * np.clip(values, 0.0, None)) @ vectors.T
    np.savez(
        OUT,
        centre_mean=centres.mean(axis=0).astype(np.float64),
        centre_cov=centre_cov.astype(np.float64),
        within_cov=within_cov.astype(np.float64),
    )
    manifest = {
        "file": OUT.name,
        "sha256": hashlib.sha256(OUT.read_bytes()).hexdigest(),
        "model": "dlib_resnet_v1",
        "detector": settings.models.detector,
        "source": "LFW deep-funneled (lfw-deepfunneled), identities with >= 2 images, "
        f"at most {args.per_identity} images each, detected faces only",
        "identities": len(groups),
        "images": int(sum(len(g) for g in groups)),
        "statuses": statuses,
        "script": "scripts/fit_embedding_stats.py",
        "seconds": round(time.perf_counter() - started, 1),
    }
    OUT.with_suffix(".manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(json.dumps(manifest, indent=2))


if __name__ == "__main__":
    main()
