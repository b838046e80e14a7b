"""One behavioural contract for every VectorIndex adapter (local files, Milvus via milvus-lite).

Each test gets a fresh ``Fixture``: an index object, a way to re-open it on the same storage,
and a unique collection-name prefix, so the Milvus case can share one milvus-lite server per
module (starting one costs about half a second) without tests seeing each other's data.
"""

from __future__ import annotations

import importlib.util
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from facesocial.store.local_index import LocalVectorIndex
from facesocial.store.vector_index import IndexBatch, VectorIndex, VectorIndexError
from facesocial.vision.geometry import l2_normalise

MILVUS_MISSING = [m for m in ("pymilvus", "milvus_lite") if importlib.util.find_spec(m) is None]


@dataclass
class Fixture:
    index: VectorIndex
    _open: Callable[[], VectorIndex]
    prefix: str
    _closes_on_reopen: bool  # the local index owns its folder: the old one must let go first

    def name(self, suffix: str) -> str:
        return f"{self.prefix}_{suffix}"

    def reopen(self) -> VectorIndex:
        """A fresh index object on the same storage; it replaces ``index``."""
        if self._closes_on_reopen:
            self.index.close()
        self.index = self._open()
        return self.index


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
def fx(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Fixture]:
    prefix = f"t{next(_counter)}"
    if request.param == "local":
        fixture = Fixture(LocalVectorIndex(tmp_path), lambda: LocalVectorIndex(tmp_path), prefix, True)
        yield fixture
        fixture.index.close()
        return
    index: VectorIndex = request.getfixturevalue("milvus_index")
    uri: str = request.getfixturevalue("milvus_lite_uri")
    from facesocial.store.milvus_index import MilvusVectorIndex

    # A new client on the same URI. pymilvus keeps one milvus-lite server per file in a
    # process; a restart of that server is covered by test_milvus_lite_survives_restart.
    fixture = Fixture(index, lambda: MilvusVectorIndex(uri), prefix, False)
    yield fixture
    if fixture.index is not index:
        fixture.index.close()


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
    assert sorted(reopened.ids(name)) == sorted(set(ids_of(20)) - {"id3"})
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
    assert list(fx.index.ids(name)) == []
    assert name not in fx.reopen().collections()
    assert fx.index.count(name) == 0
    assert fx.index.search(name, vectors[[0]], k=3) == [[]]
    fx.index.ensure_collection(name, 4)  # the name is free again, with a new dimension
    assert fx.index.count(name) == 0


def test_ids_lists_every_key_once(fx: Fixture) -> None:
    name, _ = filled(fx, n=60)
    fx.index.delete(name, ["id0", "id59"])
    fx.index.upsert(name, ["id7", "extra"], random_unit(2, seed=4))  # an overwrite and a new key
    listed = list(fx.index.ids(name))
    assert len(listed) == len(set(listed)) == 59 == fx.index.count(name)
    assert set(listed) == (set(ids_of(60)) - {"id0", "id59"}) | {"extra"}
    assert list(fx.index.ids(fx.name("absent"))) == []


def batches_of(ids: list[str], vectors: np.ndarray, size: int) -> Iterator[IndexBatch]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size], vectors[start : start + size], None


def test_replace_collection_swaps_in_exactly_the_new_content(fx: Fixture) -> None:
    name, old = filled(fx, n=40)
    new = random_unit(75, seed=11)
    new_ids = [f"new{i}" for i in range(75)]
    # Streamed in batches; "new3" comes again at the end with another vector: the last one wins.
    stream = itertools.chain(batches_of(new_ids, new, 20), [(["new3"], new[[70]], None)])
    assert fx.index.replace_collection(name, 8, stream) == 75

    def check(index: VectorIndex) -> None:
        assert sorted(index.ids(name)) == sorted(new_ids)
        assert index.count(name) == 75
        assert [n for n in index.collections() if n.startswith(fx.prefix)] == [name]
        hits = index.search(name, new[[10, 70]], k=2)
        assert hits[0][0].id == "new10" and hits[0][0].score == pytest.approx(1.0, abs=1e-5)
        assert {h.id for h in hits[1]} == {"new3", "new70"}
        assert all(h.id.startswith("new") for h in index.search(name, old[[0]], k=75)[0])

    check(fx.index)
    check(fx.reopen())  # durable
    fx.index.upsert(name, ["after"], old[[0]])  # the replaced collection takes writes as usual
    assert fx.reopen().search(name, old[[0]], k=1)[0][0].id == "after"


def test_replace_collection_creates_and_may_change_dimension(fx: Fixture) -> None:
    fresh = fx.name("fresh")
    assert fx.index.replace_collection(fresh, 4, batches_of(["a", "b"], random_unit(2, 4), 1)) == 2
    assert sorted(fx.index.ids(fresh)) == ["a", "b"]
    fx.index.ensure_collection(fresh, 4)  # the dimension is recorded
    assert fx.index.replace_collection(fresh, 16, []) == 0  # replaced by nothing, now 16-D
    assert fx.index.count(fresh) == 0 and fresh in fx.index.collections()
    fx.index.ensure_collection(fresh, 16)
    with pytest.raises(VectorIndexError):
        fx.index.ensure_collection(fresh, 4)


def test_replace_collection_with_a_bad_batch_keeps_the_old_content(fx: Fixture) -> None:
    name, _ = filled(fx, n=30)

    def stream() -> Iterator[IndexBatch]:
        yield ["n1", "n2"], random_unit(2), None
        yield ["n3"], random_unit(1, 4), None  # the wrong dimension

    with pytest.raises(VectorIndexError):
        fx.index.replace_collection(name, 8, stream())
    for reopen in (False, True):
        index = fx.reopen() if reopen else fx.index
        assert sorted(index.ids(name)) == sorted(ids_of(30))
        assert [n for n in index.collections() if n.startswith(fx.prefix)] == [name]
    with pytest.raises(VectorIndexError):
        fx.index.replace_collection("bad-name", 8, [])


def test_searches_during_replace_see_old_or_new_and_never_fail(fx: Fixture) -> None:
    name, old = filled(fx, n=40)
    new = random_unit(60, seed=12)
    old_ids, new_ids = set(ids_of(40)), {f"new{i}" for i in range(60)}
    query = np.vstack([old[[0]], new[[0]]])
    seen: list[str] = []
    failures: list[BaseException] = []
    done = threading.Event()

    def search_until_done() -> None:
        try:
            while not done.is_set():
                for hits in fx.index.search(name, query, k=5):
                    found = {h.id for h in hits}
                    seen.append(
                        "old" if found <= old_ids else "new" if found <= new_ids else f"mixed {found}"
                    )
        except BaseException as exc:
            failures.append(exc)

    def slow_batches() -> Iterator[IndexBatch]:
        for batch in batches_of(sorted(new_ids, key=lambda i: int(i[3:])), new, 10):
            time.sleep(0.05)  # let the searchers run against the old content meanwhile
            yield batch

    threads = [threading.Thread(target=search_until_done) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        fx.index.replace_collection(name, 8, slow_batches())
        time.sleep(0.3)
    finally:
        done.set()
        for thread in threads:
            thread.join(timeout=60)
    assert failures == []
    assert set(seen) == {"old", "new"}  # searched before and after the swap, never a mix
    assert seen.index("new") > 0 and "old" not in seen[seen.index("new") :]


def test_ping_answers(fx: Fixture) -> None:
    fx.index.ping()


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
def test_milvus_reads_survive_another_client_dropping_or_replacing(
    milvus_index: VectorIndex, milvus_lite_uri: str
) -> None:
    from facesocial.store.milvus_index import MilvusVectorIndex

    name = f"t{next(_counter)}_shared"
    milvus_index.ensure_collection(name, 8)
    vectors = random_unit(10)
    milvus_index.upsert(name, ids_of(10), vectors)
    assert milvus_index.count(name) == 10  # the collection's description is now cached
    other = MilvusVectorIndex(milvus_lite_uri)  # e.g. `facesocial index rebuild` elsewhere
    try:
        other.replace_collection(name, 8, [(["r0"], vectors[[3]], None)])  # the old physical one is dropped
        assert milvus_index.search(name, vectors[[3]], k=5)[0][0].id == "r0"
        other.drop(name)
        assert milvus_index.search(name, vectors[[3]], k=5) == [[]]  # gone: empty, not an error
        assert milvus_index.count(name) == 0
    finally:
        other.close()


@milvus_only
def test_milvus_errors_are_classified_as_unavailable_or_misuse() -> None:
    import grpc  # type: ignore[import-untyped]
    from pymilvus.exceptions import (  # type: ignore[import-untyped]
        ConnectionConfigException,
        MilvusException,
        ParamError,
    )

    from facesocial.store.milvus_index import _is_unavailable

    cases = [
        (MilvusException(2, "Fail connecting to server on 127.0.0.1:1"), True),  # CONNECT_FAILED
        (MilvusException(grpc.StatusCode.UNAVAILABLE, "[search] Retry timeout: 3s"), True),
        (MilvusException(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline"), True),
        (MilvusException(1, "[query] Retry timeout: 30s, message=..."), True),
        (MilvusException(8, "rate limit exceeded"), True),
        (ConnectionConfigException(message="illegal uri"), True),
        (MilvusException(100, "collection not found[collection=x]"), False),
        (MilvusException(1100, "the dim (8) of field data(embedding) is not equal to schema dim (4)"), False),
        (ParamError(message="wrong type"), False),
        (MilvusException(1, "alias 'x' already exists"), False),
        (grpc.FutureTimeoutError(), True),
    ]
    assert [_is_unavailable(exc) for exc, _ in cases] == [expected for _, expected in cases]


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


# --- partitions (tenants) and groups -------------------------------------------------------------
def two_tenants(fx: Fixture, n: int = 40) -> tuple[str, np.ndarray, np.ndarray]:
    """Tenant "A" holds a0..; tenant "B" holds b0.., each b_i a near-copy of a_i (closer to A's queries)."""
    name = fx.name("p")
    fx.index.ensure_collection(name, 8)
    a = random_unit(n, seed=11)
    b = l2_normalise(a + 0.01 * random_unit(n, seed=12))
    fx.index.upsert(name, [f"a{i}" for i in range(n)], a, partitions=["A"] * n)
    fx.index.upsert(name, [f"b{i}" for i in range(n)], b, partitions=["B"] * n)
    return name, a, b


def test_a_partition_never_returns_another_tenants_ids(fx: Fixture) -> None:
    name, a, b = two_tenants(fx)
    queries = l2_normalise(b[:5] + 0.001 * random_unit(5, seed=13))  # nearest of all: B's vectors
    unrestricted = fx.index.search(name, queries, k=3)
    assert all(row[0].id.startswith("b") for row in unrestricted)
    for row, hits in enumerate(fx.index.search(name, queries, k=10, partition="A")):
        assert len(hits) == 10 and all(h.id.startswith("a") for h in hits)
        assert hits[0].id == f"a{row}"
        np.testing.assert_allclose(hits[0].score, float(queries[row] @ a[row]), atol=1e-5)
    assert fx.index.search(name, queries[:1], k=5, partition="nobody") == [[]]
    assert fx.index.count(name) == 80
    assert (fx.index.count(name, partition="A"), fx.index.count(name, partition="nobody")) == (40, 0)


def test_groups_are_narrowed_within_their_partition(fx: Fixture) -> None:
    name, a, _ = two_tenants(fx)
    group = ["a3", "a5", "b4", "nope"]  # b4 is B's: never returned to A even if listed
    hits = fx.index.search(name, a[[4]], k=5, allowed_ids=group, partition="A")[0]
    assert {h.id for h in hits} == {"a3", "a5"}
    assert fx.index.search(name, a[[4]], k=5, allowed_ids=["b4"], partition="A") == [[]]


def test_an_upsert_may_move_an_id_to_another_partition(fx: Fixture) -> None:
    name, a, _ = two_tenants(fx)
    fx.index.upsert(name, ["a7"], a[[7]], partitions=["B"])
    assert fx.index.count(name, partition="A") == 39 and fx.index.count(name, partition="B") == 41
    assert "a7" not in {h.id for h in fx.index.search(name, a[[7]], k=5, partition="A")[0]}
    assert fx.index.search(name, a[[7]], k=1, partition="B")[0][0].id == "a7"
    with pytest.raises(VectorIndexError):
        fx.index.upsert(name, ["x", "y"], random_unit(2), partitions=["A"])


def test_partitions_survive_reopen_and_replace_collection(fx: Fixture) -> None:
    name, a, _ = two_tenants(fx, n=20)
    fx.index.delete(name, ["a0", "b1"])
    index = fx.reopen()
    assert (index.count(name, partition="A"), index.count(name, partition="B")) == (19, 19)
    assert not index.needs_partition_rebuild(name)
    assert all(h.id.startswith("b") for h in index.search(name, a[:3], k=10, partition="B")[0])
    batches: list[IndexBatch] = [(["x0", "x1"], a[:2], ["T", "U"]), (["x2"], a[[2]], None)]
    assert index.replace_collection(name, 8, batches) == 3
    assert [index.count(name, partition=p) for p in ("A", "T", "U", "")] == [0, 1, 1, 1]
    assert index.search(name, a[[0]], k=3, partition="U")[0][0].id == "x1"
