"""``facesocial bench index --size N``: the local vector index at gallery size N on face-like data.

Face-like data: identities with several samples each, drawn from Gaussians fitted to real
dlib_resnet_v1 embeddings of LFW (``data/dlib_embedding_stats.npz``, provenance in its
manifest; made by ``scripts/fit_embedding_stats.py``): identity centre ~ N(centre_mean,
centre_cov), sample = unit(centre + N(0, within_cov)). Uniform random unit vectors would make
every query equally far from everything, which flatters no index and tells nothing about faces.

Queries are held-out samples of stored identities (90 %) and strangers (10 %). A *true match*
is an exact top-``k`` hit scoring at least the dlib identify threshold; ``true_match_recall``
is the share of them the index returns. ``recall_at_k`` (overlap with the exact top ``k``,
most of which are far below any threshold) is given for reference only.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from facesocial.evaluation.process_stats import peak_rss_mb
from facesocial.settings import Settings, VectorIndexSettings
from facesocial.store.local_index import LocalVectorIndex
from facesocial.store.vector_index import IndexBatch

_STATS = Path(__file__).parent / "data" / "dlib_embedding_stats.npz"
_COLLECTION = "bench_faces"
_CHUNK = 50_000


class FaceLikeGenerator:
    """Draws unit-length dlib-like embeddings; ``rng`` makes every draw reproducible."""

    def __init__(self, rng: np.random.Generator, stats: Path = _STATS) -> None:
        with np.load(stats) as data:
            self.mean = np.asarray(data["centre_mean"], dtype=np.float64)
            self._centre = _root(np.asarray(data["centre_cov"], dtype=np.float64))
            self._within = _root(np.asarray(data["within_cov"], dtype=np.float64))
        self.dimension = len(self.mean)
        self._rng = rng

    def centres(self, count: int) -> npt.NDArray[np.float32]:
        """(count, D) identity centres (not unit length)."""
        noise = self._rng.standard_normal((count, self.dimension))
        return (self.mean + noise @ self._centre.T).astype(np.float32)

    def samples(self, centres: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """One unit-length sample per centre row: (len(centres), D) float32."""
        noise = self._rng.standard_normal((len(centres), self.dimension)) @ self._within.T
        drawn = centres + noise.astype(np.float32)
        norms = np.linalg.norm(drawn, axis=1, keepdims=True)
        unit: npt.NDArray[np.float32] = (drawn / norms).astype(np.float32)
        return unit


def _root(covariance: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """A matrix R with R @ R.T == covariance (PSD; eigen-decomposition, clipped at 0)."""
    values, vectors = np.linalg.eigh(covariance)
    return np.asarray(vectors * np.sqrt(np.clip(values, 0.0, None)), dtype=np.float64)


def run_bench_index(
    size: int,
    *,
    queries: int = 1000,
    k: int = 10,
    samples_per_identity: int = 4,
    seed: int = 0,
    threads: int = 2,
    settings: VectorIndexSettings | None = None,
    tenants: int = 1,
    sweep: Sequence[int] = (),
) -> dict[str, Any]:
    """Build a ``size``-vector local index and time top-``k`` queries of one partition.

    Returns build seconds (SQL-free refill + graph), peak RSS (MiB, the whole process, data
    generation included), index memory (matrix and graph, MiB), per-query p50/p95/p99 in ms
    (single query, one thread, ANN path), and true-match / top-k recall against exact search.
    ``threads`` is the graph build's thread count. ``settings`` overrides the index settings
    (``ann=False``: exact search, to find where a graph starts to pay). ``tenants`` > 1 spreads
    the faces over that many partitions and queries the first one (as an identify does).
    ``sweep``: more ef_search values to measure on the same graph (``by_expansion_search``).
    Besides true matches (which at 1 M include hundreds of strangers above the threshold per
    query), ``same_identity_recall`` counts only the stored samples of the probe's identity.
    """
    rng = np.random.default_rng(seed)
    generator = FaceLikeGenerator(rng)
    identities = max(1, size // samples_per_identity)
    centres = generator.centres(identities)
    threshold = Settings().thresholds["dlib_resnet_v1"].identify
    strangers = queries // 10
    known = rng.integers(0, identities, queries - strangers)
    probes = np.concatenate(
        [generator.samples(centres[known]), generator.samples(generator.centres(strangers))]
    )

    def batches() -> Iterator[IndexBatch]:
        for start in range(0, size, _CHUNK):
            rows = np.arange(start, min(size, start + _CHUNK))
            vectors = generator.samples(centres[rows % identities])
            yield [str(i) for i in rows], vectors, [str(i % tenants) for i in rows]

    chosen = (settings or VectorIndexSettings()).model_copy(update={"build_threads": threads})
    expansions = sorted({chosen.expansion_search, *sweep})
    with tempfile.TemporaryDirectory(prefix="facesocial-bench-index-") as folder:
        index = LocalVectorIndex(Path(folder), settings=chosen)
        try:
            started = time.perf_counter()
            index.replace_collection(_COLLECTION, generator.dimension, batches())
            build_seconds = time.perf_counter() - started
            graphs = index.graph_stats(_COLLECTION)
            truths = _exact_truth(index, probes, k, threshold, tenants)
            runs = {}
            for expansion in expansions:
                index.set_expansion_search(expansion)
                runs[expansion] = _measure(index, probes, k, truths, known, identities)
        finally:
            index.close()
    main = runs[chosen.expansion_search]
    return {
        "size": size,
        "dimension": generator.dimension,
        "identities": identities,
        "queries": len(probes),
        "strangers": strangers,
        "k": k,
        "threshold": threshold,
        "build_threads": threads,
        "tenants": tenants,
        "ann": chosen.ann,
        "connectivity": chosen.connectivity,
        "expansion_add": chosen.expansion_add,
        "expansion_search": chosen.expansion_search,
        "build_seconds": round(build_seconds, 1),
        "graph_build_seconds": round(sum(g["build_seconds"] for g in graphs), 1),
        "graph_memory_mib": round(sum(g["memory_bytes"] for g in graphs) / 2**20, 1),
        "matrix_memory_mib": round(size * generator.dimension * 4 / 2**20, 1),
        "peak_rss_mib": peak_rss_mb(),
        **main,
        "by_expansion_search": {str(e): r for e, r in runs.items()} if len(runs) > 1 else None,
        "graph": graphs,
    }


def _exact_truth(
    index: LocalVectorIndex, probes: npt.NDArray[np.float32], k: int, threshold: float, tenants: int
) -> list[tuple[set[str], set[str]]]:
    """Per probe: the exact top-``k`` ids of partition "0", and those scoring >= ``threshold``."""
    ids, matrix = index.exact_matrix(_COLLECTION)
    mine = np.array([int(i) % tenants == 0 for i in ids])
    tenant_ids, tenant_rows = [i for i, m in zip(ids, mine, strict=True) if m], matrix[mine]
    del matrix
    truths = []
    for probe in probes:
        scores = tenant_rows @ probe
        top = np.argpartition(-scores, k)[:k]
        truths.append(({tenant_ids[i] for i in top}, {tenant_ids[i] for i in top if scores[i] >= threshold}))
    return truths


def _measure(
    index: LocalVectorIndex,
    probes: npt.NDArray[np.float32],
    k: int,
    truths: list[tuple[set[str], set[str]]],
    known: npt.NDArray[np.int64],
    identities: int,
) -> dict[str, Any]:
    """Latency percentiles and recalls of single-probe searches of partition "0"."""
    latencies, true_found, true_total, overlap, mates_found, mates_total = [], 0, 0, 0, 0, 0
    for number, (probe, (exact, truth)) in enumerate(zip(probes, truths, strict=True)):
        began = time.perf_counter()
        hits = index.search(_COLLECTION, probe[None, :], k, partition="0")[0]
        latencies.append(time.perf_counter() - began)
        found = {hit.id for hit in hits}
        true_total += len(truth)
        true_found += len(truth & found)
        overlap += len(exact & found)
        if number < len(known):  # the probe's own identity's stored samples among the true matches
            mates = {i for i in truth if int(i) % identities == known[number]}
            mates_total += len(mates)
            mates_found += len(mates & found)
    times = np.array(latencies) * 1000.0
    return {
        "p50_ms": round(float(np.percentile(times, 50)), 3),
        "p95_ms": round(float(np.percentile(times, 95)), 3),
        "p99_ms": round(float(np.percentile(times, 99)), 3),
        "true_matches": true_total,
        "true_match_recall": round(true_found / true_total, 5) if true_total else None,
        "same_identity_matches": mates_total,
        "same_identity_recall": round(mates_found / mates_total, 5) if mates_total else None,
        f"recall_at_{k}": round(overlap / (k * len(probes)), 5),
    }


if __name__ == "__main__":  # pragma: no cover - manual runs: python -m facesocial.evaluation.bench_index N
    import sys

    print(json.dumps(run_bench_index(int(sys.argv[1])), indent=2))
