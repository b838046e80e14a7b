"""Gallery-scale behaviour of the Milvus adapter on milvus-lite: ANN recall and deletes.

20k random unit 128-D faces (the dlib model's dimension). Random vectors on the sphere have no
cluster structure, which makes them a hard case for ANN indexes: a recall floor met here is
conservative for real face embeddings.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from facesocial.vision.geometry import l2_normalise

MISSING = [m for m in ("pymilvus", "milvus_lite") if importlib.util.find_spec(m) is None]
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(bool(MISSING), reason=f"Milvus tests need {', '.join(MISSING)} (pip install)"),
]

N, DIM, QUERIES, K = 20_000, 128, 50, 10
COLLECTION = "face_embeddings_128d_dlib_resnet_v1"


def face_id(i: int) -> str:
    return f"00000000-0000-4000-8000-{i:012d}"  # UUID-shaped, like the service's ids


@pytest.fixture(scope="module")
def gallery(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, np.ndarray]]:
    from facesocial.store.milvus_index import MilvusVectorIndex

    uri = str(Path(tmp_path_factory.mktemp("milvus_gallery")) / "vectors.db")
    index = MilvusVectorIndex(uri)
    index.ensure_collection(COLLECTION, DIM)
    vectors = l2_normalise(np.random.default_rng(7).normal(size=(N, DIM)))
    ids = [face_id(i) for i in range(N)]
    for start in range(0, N, 2000):  # the batch size `facesocial index rebuild` uses
        index.upsert(COLLECTION, ids[start : start + 2000], vectors[start : start + 2000])
    index.flush(COLLECTION)  # seal the tail so every row is searched through the HNSW index
    yield index, vectors
    index.close()


def test_top10_recall_against_exact_search(gallery: tuple[object, np.ndarray]) -> None:
    from facesocial.store.milvus_index import MilvusVectorIndex

    index, vectors = gallery
    assert isinstance(index, MilvusVectorIndex)
    assert index.count(COLLECTION) == N
    queries = l2_normalise(np.random.default_rng(8).normal(size=(QUERIES, DIM)))
    truth = np.argsort(-(queries @ vectors.T), axis=1)[:, :K]

    latencies = []
    found = []
    for query in queries:  # one query per call, as identify does
        started = time.perf_counter()
        found.append(index.search(COLLECTION, query[None, :], k=K)[0])
        latencies.append(time.perf_counter() - started)
    recall = np.mean(
        [
            len({h.id for h in hits} & {face_id(int(i)) for i in expected}) / K
            for hits, expected in zip(found, truth, strict=True)
        ]
    )
    print(
        f"\nmilvus-lite {index.index_type}, {N} x {DIM}-D: top-{K} recall {recall:.3f}, "
        f"median search {1000 * float(np.median(latencies)):.1f} ms"
    )
    assert recall >= 0.95
    for hits in found:
        scores = [h.score for h in hits]
        assert scores == sorted(scores, reverse=True) and len(hits) == K
    # Scores are cosine similarities: the exact ones, whatever the index.
    exact = float(queries[0] @ vectors[int(found[0][0].id[-12:])])
    assert found[0][0].score == pytest.approx(exact, abs=1e-4)


def test_deleted_ids_are_never_returned(gallery: tuple[object, np.ndarray]) -> None:
    from facesocial.store.milvus_index import MilvusVectorIndex

    index, vectors = gallery
    assert isinstance(index, MilvusVectorIndex)
    rng = np.random.default_rng(9)
    probes = rng.choice(N, size=20, replace=False)
    # Delete each probe's own row and its nine nearest neighbours: the rows a search would
    # otherwise rank first.
    neighbours = np.argsort(-(vectors[probes] @ vectors.T), axis=1)[:, :K]
    doomed = sorted({face_id(int(i)) for i in neighbours.ravel()})
    assert index.delete(COLLECTION, [*doomed, "00000000-0000-4000-8000-999999999999"]) == len(doomed)
    assert index.count(COLLECTION) == N - len(doomed)

    gone = set(doomed)
    for hits in index.search(COLLECTION, vectors[probes], k=K):
        assert len(hits) == K
        assert gone.isdisjoint(h.id for h in hits)
    # Also through the restricted (exact) path, with deleted ids among the allowed ones.
    allowed = [*doomed[:50], *(face_id(int(i)) for i in rng.choice(N, size=200, replace=False))]
    for hits in index.search(COLLECTION, vectors[probes[:5]], k=K, allowed_ids=allowed):
        assert gone.isdisjoint(h.id for h in hits)
