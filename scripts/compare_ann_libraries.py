"""Compare ANN libraries for the local index on face-like data (docs/benchmarks.md "Vector index").

    .venv/bin/python scripts/compare_ann_libraries.py 200000 [--libraries usearch,hnswlib,faiss]
        [--connectivity 16] [--expansion-add 128] [--ef 64,128] [--fetch 64,128]

Builds each graph with 2 threads over ``size`` dlib-like vectors (FaceLikeGenerator), then runs
500 single queries (1 thread): build seconds, graph memory (RSS growth), p50/p95 ms of the
graph search plus the exact rerank of max(4k, 64) candidates, true-match recall at the dlib
identify threshold and recall@10.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from facesocial.evaluation.bench_index import FaceLikeGenerator

K, FETCH, THRESHOLD, THREADS = 10, 64, 0.925, 2


def rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("size", type=int)
    parser.add_argument("--libraries", default="usearch,hnswlib,faiss")
    parser.add_argument("--connectivity", type=int, default=16)
    parser.add_argument("--expansion-add", type=int, default=128)
    parser.add_argument("--ef", default="64", help="comma-separated ef_search values to try")
    parser.add_argument("--fetch", default="64", help="comma-separated candidate counts to rerank")
    args = parser.parse_args()
    size, m, ef_add = args.size, args.connectivity, args.expansion_add
    rng = np.random.default_rng(0)
    gen = FaceLikeGenerator(rng)
    centres = gen.centres(size // 4)
    data = gen.samples(centres[np.arange(size) % len(centres)])
    known = rng.integers(0, len(centres), 450)
    queries = np.concatenate([gen.samples(centres[known]), gen.samples(gen.centres(50))])
    exact = queries @ data.T
    tops = np.argpartition(-exact, K, axis=1)[:, :K]
    for name in args.libraries.split(","):
        before = rss_mib()
        started = time.perf_counter()
        set_ef: Callable[[int], None]
        search: Callable[[np.ndarray, int], np.ndarray]
        if name.startswith("usearch"):
            from usearch.index import Index

            dtype = "f16" if name == "usearch" else "f32"
            uindex = Index(ndim=data.shape[1], metric="ip", dtype=dtype, connectivity=m, expansion_add=ef_add)
            uindex.add(np.arange(size), data, threads=THREADS)

            def set_ef(ef: int, index: Any = uindex) -> None:
                index.expansion_search = ef

            def search(q: np.ndarray, fetch: int, index: Any = uindex) -> np.ndarray:
                return np.asarray(index.search(q, fetch, threads=1).keys)
        elif name == "hnswlib":
            import hnswlib

            hindex = hnswlib.Index(space="ip", dim=data.shape[1])
            hindex.init_index(max_elements=size, M=m, ef_construction=ef_add)
            hindex.set_num_threads(THREADS)
            hindex.add_items(data, np.arange(size))
            hindex.set_num_threads(1)

            def set_ef(ef: int, index: Any = hindex) -> None:
                index.set_ef(ef)

            def search(q: np.ndarray, fetch: int, index: Any = hindex) -> np.ndarray:
                return np.asarray(index.knn_query(q[None, :], k=fetch)[0][0])
        else:
            import faiss

            faiss.omp_set_num_threads(THREADS)
            findex = faiss.IndexHNSWFlat(data.shape[1], m, faiss.METRIC_INNER_PRODUCT)
            findex.hnsw.efConstruction = ef_add
            findex.add(data)
            faiss.omp_set_num_threads(1)

            def set_ef(ef: int, index: Any = findex) -> None:
                index.hnsw.efSearch = ef

            def search(q: np.ndarray, fetch: int, index: Any = findex) -> np.ndarray:
                return np.asarray(index.search(q[None, :], fetch)[1][0])

        build = time.perf_counter() - started
        memory = rss_mib() - before
        for ef in (int(v) for v in args.ef.split(",")):
            set_ef(ef)
            for fetch in (int(v) for v in args.fetch.split(",")):
                times, found, total, overlap = [], 0, 0, 0
                for qi, q in enumerate(queries):
                    began = time.perf_counter()
                    candidates = search(q, max(fetch, ef) if name == "hnswlib" and fetch > ef else fetch)
                    scores = data[candidates] @ q
                    best = candidates[np.argsort(-scores)[:K]]
                    times.append((time.perf_counter() - began) * 1000)
                    truth = {int(i) for i in tops[qi] if exact[qi, i] >= THRESHOLD}
                    got = {int(i) for i in best}
                    total += len(truth)
                    found += len(truth & got)
                    overlap += len(set(tops[qi].tolist()) & got)
                result = {
                    "M": m, "ef_construction": ef_add, "ef_search": ef, "fetch": fetch,
                    "build_s": round(build, 1), "graph_mib": round(memory, 1),
                    "p50_ms": round(float(np.percentile(times, 50)), 3),
                    "p95_ms": round(float(np.percentile(times, 95)), 3),
                    "true_match_recall": round(found / max(total, 1), 4), "true_matches": total,
                    "recall_at_10": round(overlap / (K * len(queries)), 4),
                }  # fmt: skip
                print(name, json.dumps(result), flush=True)
    # Exact, for reference: one query against the whole matrix.
    times = []
    for q in queries[:100]:
        began = time.perf_counter()
        s = data @ q
        np.argpartition(-s, K)[:K]
        times.append((time.perf_counter() - began) * 1000)
    print("exact", json.dumps({"p50_ms": round(float(np.percentile(times, 50)), 3),
                               "p95_ms": round(float(np.percentile(times, 95)), 3)}))  # fmt: skip


if __name__ == "__main__":
    main()
