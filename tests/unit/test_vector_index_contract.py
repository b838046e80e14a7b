"""One behavioural contract for every VectorIndex adapter (local files, Milvus via milvus-lite).

Each test gets a fresh ``Fixture``: an index object, a way to re-open it on the same storage,
and a unique collection-name prefix, so the Milvus case can share one milvus-lite server per
module (starting one costs about half a second) without tests seeing each other's data.
"""

from __future__ import annotations

import importlib.util
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from facesocial.store.local_index import LocalVectorIndex
from facesocial.store.vector_index import VectorIndex, VectorIndexError
from facesocial.vision.geometry import l2_normalise

MILVUS_MISSING = [m for m in ("pymilvus", "milvus_lite") if importlib.util.find_spec(m) is None]


@dataclass
class Fixture:
    index: VectorIndex
    reopen: Callable[[], VectorIndex]
    prefix: str

    def name(self, suffix: str) -> str:
        return f"{self.prefix}_{suffix}"


_counter = itertools.count()


@pytest.fixture(scope="module")
def milvus_lite_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("milvus") / "vectors.db")


@pytest.fixture(scope="module")
def milvus_index(milvus_lite_uri: str) -> Iterator[VectorIndex]:
    if MILVUS_MISSING:
        pytest.skip(
            f"Milvus contract skipped: {', '.join(MILVUS_MISSING)} not importable"
            " (pip install pymilvus milvus-lite)"
        )
    from facesocial.store.milvus_index import MilvusVectorIndex

    index = MilvusVectorIndex(milvus_lite_uri)
    yield index
    index.close()


@pytest.fixture(params=["local", "milvus"])
def fx(request: pytest.FixtureRequest, tmp_path: Path) -> Fixture:
    prefix = f"t{next(_counter)}"
    if request.param == "local":
        return Fixture(LocalVectorIndex(tmp_path), lambda: LocalVectorIndex(tmp_path), prefix)
    index: VectorIndex = request.getfixturevalue("milvus_index")
    uri: str = request.getfixturevalue("milvus_lite_uri")
    from facesocial.store.milvus_index import MilvusVectorIndex

    def reopen() -> VectorIndex:
        # A new client on the same URI. pymilvus keeps one milvus-lite server per file in a
        # process; a restart of that server is covered by test_milvus_lite_survives_restart.
        return MilvusVectorIndex(uri)

    return Fixture(index, reopen, prefix)


def random_unit(n: int, dim: int = 8, seed: int = 0) -> np.ndarray:
    return l2_normalise(np.random.default_rng(seed).normal(size=(n, dim)))


def ids_of(n: int) -> list[str]:
    return [f"id{i}" for i in range(n)]


def filled(fx: Fixture, n: int = 50, dim: int = 8) -> tuple[str, np.ndarray]:
    name = fx.name("c")
    fx.index.ensure_collection(name, dim)
    vectors = random_unit(n, dim)
    fx.index.upsert(name, ids_of(n), vectors)
    return name, vectors


def test_exact_neighbour_first_and_scores_sorted(fx: Fixture) -> None:
    name, vectors = filled(fx)
    hits = fx.index.search(name, vectors[[7, 31]], k=5)
    assert [h[0].id for h in hits] == ["id7", "id31"]
    for row in hits:
        assert row[0].score == pytest.approx(1.0, abs=1e-5)
        scores = [h.score for h in row]
        assert scores == sorted(scores, reverse=True)
        assert len(row) == 5


def test_agrees_with_brute_force(fx: Fixture) -> None:
    name, vectors = filled(fx, n=200, dim=16)
    queries = random_unit(5, 16, seed=1)
    hits = fx.index.search(name, queries, k=10)
    exact = queries @ vectors.T
    for row, found in enumerate(hits):
        expected = np.argsort(-exact[row])[:10]
        assert [h.id for h in found] == [f"id{i}" for i in expected]
        np.testing.assert_allclose([h.score for h in found], exact[row, expected], atol=1e-5)


def test_k_larger_than_collection_and_nonpositive_k(fx: Fixture) -> None:
    name, vectors = filled(fx, n=4)
    assert len(fx.index.search(name, vectors[[0]], k=10)[0]) == 4
    assert fx.index.search(name, vectors[[0, 1]], k=0) == [[], []]


def test_allowed_ids_restrict_the_search(fx: Fixture) -> None:
    name, vectors = filled(fx, n=30)
    hits = fx.index.search(name, vectors[[0]], k=5, allowed_ids={"id3", "id4", "unknown"})[0]
    assert {h.id for h in hits} == {"id3", "id4"}
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    expected = sorted(("id3", "id4"), key=lambda i: -float(vectors[0] @ vectors[int(i[2:])]))
    assert [h.id for h in hits] == expected
    assert fx.index.search(name, vectors[[0]], k=5, allowed_ids=set())[0] == []
    assert fx.index.search(name, vectors[[0]], k=5, allowed_ids={"nobody", "neither"})[0] == []
    # The query's own row is found first when allowed.
    hits = fx.index.search(name, vectors[[9]], k=2, allowed_ids=[f"id{i}" for i in range(5, 15)])[0]
    assert hits[0].id == "id9"
    assert len(hits) == 2


def test_upsert_overwrites(fx: Fixture) -> None:
    name, vectors = filled(fx, n=20)
    fx.index.upsert(name, ["id5"], vectors[[6]])  # id5 now holds id6's vector
    assert fx.index.count(name) == 20
    hits = fx.index.search(name, vectors[[6]], k=2)[0]
    assert {h.id for h in hits} == {"id5", "id6"}
    assert all(h.score == pytest.approx(1.0, abs=1e-5) for h in hits)
    assert fx.index.search(name, vectors[[5]], k=1)[0][0].id != "id5"
    fx.index.upsert(name, ["id1", "id1"], vectors[[2, 3]])  # within one call, the last wins
    assert fx.index.count(name) == 20
    assert {h.id for h in fx.index.search(name, vectors[[3]], k=2)[0]} == {"id1", "id3"}


def test_delete_counts_removed_and_ignores_unknown(fx: Fixture) -> None:
    name, vectors = filled(fx, n=20)
    assert fx.index.delete(name, ["id3", "id19", "missing"]) == 2
    assert fx.index.delete(name, ["id3"]) == 0
    assert fx.index.delete(name, []) == 0
    assert fx.index.delete(fx.name("absent"), ["id1"]) == 0
    assert fx.index.count(name) == 18
    found = {h.id for h in fx.index.search(name, vectors[[3]], k=20)[0]}
    assert found.isdisjoint({"id3", "id19"})
    assert len(found) == 18


def test_persistence_across_reopen(fx: Fixture) -> None:
    name, vectors = filled(fx, n=20)
    fx.index.delete(name, ["id3"])
    fx.index.upsert(name, ["id5"], vectors[[6]])
    reopened = fx.reopen()
    assert name in reopened.collections()
    assert reopened.count(name) == 19
    assert {h.id for h in reopened.search(name, vectors[[6]], k=2)[0]} == {"id5", "id6"}
    assert reopened.search(name, vectors[[3]], k=1)[0][0].id != "id3"
    with pytest.raises(VectorIndexError):
        reopened.ensure_collection(name, 16)  # the dimension survived too


def test_collections_are_separate_and_typed(fx: Fixture) -> None:
    a, b = fx.name("face_embeddings_8d_a"), fx.name("face_embeddings_4d_b")
    fx.index.ensure_collection(a, 8)
    fx.index.ensure_collection(b, 4)
    fx.index.ensure_collection(a, 8)  # idempotent
    with pytest.raises(VectorIndexError):
        fx.index.ensure_collection(a, 16)
    with pytest.raises(VectorIndexError):
        fx.index.upsert(b, ["x"], random_unit(1, 8))
    with pytest.raises(VectorIndexError):
        fx.index.upsert(fx.name("never_created"), ["x"], random_unit(1, 8))
    for bad in ("../escape", "bad-name", "", "a b"):
        with pytest.raises(VectorIndexError):
            fx.index.ensure_collection(bad, 8)
    fx.index.upsert(a, ["x"], random_unit(1, 8))
    fx.index.upsert(b, ["x"], random_unit(1, 4))
    fx.index.upsert(b, ["y"], random_unit(1, 4, seed=2))
    assert (fx.index.count(a), fx.index.count(b)) == (1, 2)
    assert fx.index.search(fx.name("absent"), random_unit(1, 8), k=3) == [[]]
    assert fx.index.count(fx.name("absent")) == 0
    mine = [n for n in fx.index.collections() if n.startswith(fx.prefix + "_")]
    assert mine == sorted([a, b])


def test_drop(fx: Fixture) -> None:
    name, vectors = filled(fx, n=10)
    fx.index.drop(name)
    fx.index.drop(name)  # dropping twice is fine
    assert name not in fx.index.collections()
    assert name not in fx.reopen().collections()
    assert fx.index.count(name) == 0
    assert fx.index.search(name, vectors[[0]], k=3) == [[]]
    fx.index.ensure_collection(name, 4)  # the name is free again, with a new dimension
    assert fx.index.count(name) == 0


# --- Milvus-only behaviour -------------------------------------------------------------------
milvus_only = pytest.mark.skipif(bool(MILVUS_MISSING), reason=f"not importable: {', '.join(MILVUS_MISSING)}")


@milvus_only
def test_milvus_rejects_ids_that_could_inject_a_filter(milvus_index: VectorIndex) -> None:
    name = f"t{next(_counter)}_inject"
    milvus_index.ensure_collection(name, 4)
    milvus_index.upsert(name, ["a"], random_unit(1, 4))
    for bad in ['x"] or face_id != "', "x' or 1==1", "a\\", "with space", "é", "x" * 65, ""]:
        with pytest.raises(VectorIndexError):
            milvus_index.search(name, random_unit(1, 4), k=1, allowed_ids={bad})
        with pytest.raises(VectorIndexError):
            milvus_index.delete(name, [bad])
        with pytest.raises(VectorIndexError):
            milvus_index.upsert(name, [bad], random_unit(1, 4))
    assert milvus_index.count(name) == 1
    with pytest.raises(VectorIndexError):
        milvus_index.search(name, random_unit(1, 8), k=1)  # wrong query dimension


@milvus_only
def test_milvus_large_restriction_uses_filtered_ann(milvus_lite_uri: str) -> None:
    from facesocial.store.milvus_index import MilvusVectorIndex

    index = MilvusVectorIndex(milvus_lite_uri, exact_filter_limit=10, index_type="FLAT")
    name = f"t{next(_counter)}_filtered"
    index.ensure_collection(name, 8)
    vectors = random_unit(2500)
    index.upsert(name, ids_of(2500), vectors)
    allowed = [f"id{i}" for i in range(0, 2500, 2)]  # 1250 ids: two filter chunks
    hits = index.search(name, vectors[[11, 12]], k=5, allowed_ids=allowed)
    exact = vectors[[11, 12]] @ vectors[::2].T
    for row, found in enumerate(hits):
        assert [h.id for h in found] == [allowed[i] for i in np.argsort(-exact[row])[:5]]
    assert hits[1][0].id == "id12"


@milvus_only
def test_milvus_lite_survives_restart(tmp_path: Path) -> None:
    from milvus_lite.server_manager import server_manager_instance

    from facesocial.store.milvus_index import MilvusVectorIndex

    uri = str(tmp_path / "restart" / "vectors.db")  # the folder is created on demand
    index = MilvusVectorIndex(uri)
    index.ensure_collection("face_embeddings_8d_x", 8)
    vectors = random_unit(30)
    index.upsert("face_embeddings_8d_x", ids_of(30), vectors)
    index.delete("face_embeddings_8d_x", ["id0"])
    index.close()
    server_manager_instance.release_server(index.uri)  # as if the process had exited

    reopened = MilvusVectorIndex(uri)
    assert reopened.collections() == ["face_embeddings_8d_x"]
    assert reopened.count("face_embeddings_8d_x") == 29
    assert reopened.search("face_embeddings_8d_x", vectors[[4]], k=1)[0][0].id == "id4"
    reopened.close()
    server_manager_instance.release_server(reopened.uri)
