"""Gallery-scale behaviour of the Milvus adapter on milvus-lite (ANN recall, deletes, id listing),
tenant partitions, collections from before aliases or partitions, and a server that is
unreachable, silent or lost mid-session.

20k random unit 128-D faces (the dlib model's dimension) spread over 5 tenants. Random vectors
on the sphere have no cluster structure, which makes them a hard case for ANN indexes: a recall
floor met here is conservative for real face embeddings.
"""

from __future__ import annotations

import contextlib
import importlib.util
import socket
import threading
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
TENANTS = 5
COLLECTION = "face_embeddings_128d_dlib_resnet_v1"


def face_id(i: int) -> str:
    return f"00000000-0000-4000-8000-{i:012d}"  # UUID-shaped, like the service's ids


def tenant_of(i: int) -> str:
    return str(1 + i % TENANTS)  # tenant ids are integers in SQL, text in the index


@pytest.fixture(scope="module")
def gallery(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, np.ndarray]]:
    from facesocial.store.milvus_index import MilvusVectorIndex

    uri = str(Path(tmp_path_factory.mktemp("milvus_gallery")) / "vectors.db")
    index = MilvusVectorIndex(uri)
    index.ensure_collection(COLLECTION, DIM)
    vectors = l2_normalise(np.random.default_rng(7).normal(size=(N, DIM)))
    ids = [face_id(i) for i in range(N)]
    tenants = [tenant_of(i) for i in range(N)]
    for start in range(0, N, 2000):  # the batch size `facesocial index rebuild` uses
        stop = start + 2000
        index.upsert(COLLECTION, ids[start:stop], vectors[start:stop], partitions=tenants[start:stop])
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


def test_top10_recall_within_one_tenant_against_exact_search(gallery: tuple[object, np.ndarray]) -> None:
    """The partition filter alone (no id list): only the tenant's rows, and the right ones."""
    from facesocial.store.milvus_index import MilvusVectorIndex

    index, vectors = gallery
    assert isinstance(index, MilvusVectorIndex)
    queries = l2_normalise(np.random.default_rng(10).normal(size=(QUERIES, DIM)))
    members = {t: np.array([i for i in range(N) if tenant_of(i) == t]) for t in map(str, range(1, 6))}
    recalls, latencies, id_list_latencies = [], [], []
    for row, query in enumerate(queries):
        tenant = str(1 + row % TENANTS)
        rows = members[tenant]
        expected = {face_id(int(i)) for i in rows[np.argsort(-(vectors[rows] @ query))[:K]]}
        started = time.perf_counter()
        hits = index.search(COLLECTION, query[None, :], k=K, partition=tenant)[0]
        latencies.append(time.perf_counter() - started)
        assert len(hits) == K
        assert all(tenant_of(int(h.id[-12:])) == tenant for h in hits)
        recalls.append(len({h.id for h in hits} & expected) / K)
        if row < 10:  # the way before partitions: every id of the tenant as allowed_ids
            tenant_ids = [face_id(int(i)) for i in rows]
            started = time.perf_counter()
            exact = index.search(COLLECTION, query[None, :], k=K, allowed_ids=tenant_ids)[0]
            id_list_latencies.append(time.perf_counter() - started)
            assert {h.id for h in exact} == expected  # 4000 ids <= exact_filter_limit: exact
    print(
        f"\nmilvus-lite {index.index_type}, {N} x {DIM}-D, {TENANTS} tenants: per-tenant top-{K} "
        f"recall {np.mean(recalls):.3f}, median search {1000 * float(np.median(latencies)):.1f} ms "
        f"by partition, {1000 * float(np.median(id_list_latencies)):.1f} ms by the tenant's "
        f"{N // TENANTS} ids"
    )
    assert float(np.mean(recalls)) >= 0.97
    assert index.count(COLLECTION, partition="3") == len(members["3"])


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


def test_ids_lists_every_key_of_a_large_collection(gallery: tuple[object, np.ndarray]) -> None:
    """More rows than one query page (10k) and than Milvus' 16384-row query window."""
    from facesocial.store.milvus_index import MilvusVectorIndex

    index, _ = gallery
    assert isinstance(index, MilvusVectorIndex)
    listed = list(index.ids(COLLECTION))
    assert len(listed) == len(set(listed)) == index.count(COLLECTION) > 16384
    # Deletes by the test above (if it ran) are reflected; every listed id is a gallery id.
    assert set(listed) <= {face_id(i) for i in range(N)}


def test_collections_from_before_aliases_keep_working_and_are_aliased_on_replace(tmp_path: Path) -> None:
    from pymilvus import DataType, MilvusClient

    from facesocial.store.milvus_index import MilvusVectorIndex

    uri = str(tmp_path / "legacy.db")
    # What ensure_collection created before aliases: a physical collection under the plain name.
    client = MilvusClient(uri=uri)
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("face_id", DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=8)
    params = client.prepare_index_params()
    params.add_index(field_name="embedding", index_name="embedding", index_type="HNSW", metric_type="COSINE")
    client.create_collection("face_embeddings_8d_old", schema=schema, index_params=params)
    vectors = l2_normalise(np.random.default_rng(3).normal(size=(20, 8))).astype(np.float32)
    client.upsert(
        "face_embeddings_8d_old", [{"face_id": f"o{i}", "embedding": vectors[i]} for i in range(20)]
    )

    index = MilvusVectorIndex(uri)
    assert index.collections() == ["face_embeddings_8d_old"]
    assert index.search("face_embeddings_8d_old", vectors[[4]], k=1)[0][0].id == "o4"
    assert index.replace_collection("face_embeddings_8d_old", 8, [(["n0", "n1"], vectors[:2], None)]) == 2
    assert index.collections() == ["face_embeddings_8d_old"]
    aliases = client.list_aliases()["aliases"]
    assert aliases == ["face_embeddings_8d_old"]
    physical = client.describe_alias("face_embeddings_8d_old")["collection_name"]
    assert physical.startswith("face_embeddings_8d_old__r") and client.list_collections() == [physical]
    assert sorted(index.ids("face_embeddings_8d_old")) == ["n0", "n1"]
    index.drop("face_embeddings_8d_old")  # the alias and its collection go together
    assert client.list_collections() == [] and client.list_aliases()["aliases"] == []
    index.close()
    client.close()


# --- tenant partitions ----------------------------------------------------------------------------
def _tenant_gallery(index: object, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Tenant A: 40 random faces. Tenant B: 40 faces, each a near copy of one of 40 queries, so
    every query's true nearest neighbours all belong to B. Returns (A's vectors, the queries)."""
    from facesocial.store.milvus_index import MilvusVectorIndex

    assert isinstance(index, MilvusVectorIndex)
    rng = np.random.default_rng(11)
    queries = l2_normalise(rng.normal(size=(40, DIM))).astype(np.float32)
    a = l2_normalise(rng.normal(size=(40, DIM))).astype(np.float32)
    b = l2_normalise(queries + 0.05 * rng.normal(size=queries.shape)).astype(np.float32)
    index.ensure_collection(name, DIM)
    index.upsert(name, [f"a{i}" for i in range(40)], a, partitions=["A"] * 40)
    index.upsert(name, [f"b{i}" for i in range(40)], b, partitions=["B"] * 40)
    index.upsert(name, ["n0", "n1"], a[:2])  # no partitions: tenant ""
    return a, queries


@pytest.mark.parametrize("flushed", [False, True], ids=["growing", "sealed"])
def test_a_tenant_never_sees_another_tenants_faces(tmp_path: Path, flushed: bool) -> None:
    from facesocial.store.milvus_index import MilvusVectorIndex

    # exact_filter_limit=8: restrictions of up to 8 ids are ranked exactly, larger ones go
    # through filtered ANN search, so both restricted paths are exercised.
    index = MilvusVectorIndex(str(tmp_path / "tenants.db"), exact_filter_limit=8)
    name = "face_embeddings_128d_tenants"
    a, queries = _tenant_gallery(index, name)
    if flushed:
        index.flush(name)
    a_ids = {f"a{i}" for i in range(40)}
    b_ids = [f"b{i}" for i in range(40)]
    try:
        # Unscoped, B's copies win: the scoped searches below have something to leave out.
        assert [hits[0].id for hits in index.search(name, queries, k=1)] == b_ids
        for hits in index.search(name, queries, k=5, partition="A"):  # ANN under the filter
            assert len(hits) == 5 and {h.id for h in hits} <= a_ids
        every_a = index.search(name, queries[:3], k=100, partition="A")
        assert all({h.id for h in hits} == a_ids for hits in every_a)
        truth = np.argsort(-(queries @ a.T), axis=1)[:, 0]
        best = index.search(name, queries, k=1, partition="A")
        assert [hits[0].id for hits in best] == [f"a{i}" for i in truth]

        small = ["a1", "a2", "b0", "b1", "b2"]  # exact path: B's allowed ids are still B's
        large = [*sorted(a_ids)[:20], *b_ids]  # 60 ids > exact_filter_limit: filtered ANN
        a_first = set(sorted(a_ids)[:20])
        for hits in index.search(name, queries[:5], k=10, allowed_ids=small, partition="A"):
            assert {h.id for h in hits} == {"a1", "a2"}
        for hits in index.search(name, queries[:5], k=10, allowed_ids=large, partition="A"):
            assert len(hits) == 10 and {h.id for h in hits} <= a_first
        for allowed in (small, large):
            unscoped = index.search(name, queries[:1], k=1, allowed_ids=allowed)[0]
            assert unscoped[0].id == "b0"  # without the partition the B copy wins
        assert index.search(name, queries[:2], k=5, allowed_ids=b_ids, partition="A") == [[], []]
        assert index.search(name, queries[:1], k=5, partition="C") == [[]]
        assert {h.id for h in index.search(name, queries[:1], k=5, partition="")[0]} == {"n0", "n1"}
        assert index.count(name) == 82
        assert [index.count(name, partition=p) for p in ("A", "B", "", "C")] == [40, 40, 2, 0]
        assert index.count("face_embeddings_128d_absent", partition="A") == 0
    finally:
        index.close()


@pytest.mark.parametrize("flushed", [False, True], ids=["growing", "sealed"])
def test_re_upserting_an_id_moves_it_to_its_new_partition(tmp_path: Path, flushed: bool) -> None:
    from facesocial.store.milvus_index import MilvusVectorIndex

    index = MilvusVectorIndex(str(tmp_path / "moves.db"))
    name = "face_embeddings_128d_moves"
    _, queries = _tenant_gallery(index, name)
    if flushed:
        index.flush(name)
    try:
        index.upsert(name, ["b0"], queries[[0]], partitions=["A"])  # same id, now tenant A
        index.upsert(name, ["a5", "a5"], queries[[1, 1]], partitions=["B", "C"])  # last one wins
        assert [index.count(name, partition=p) for p in ("A", "B", "C")] == [40, 39, 1]
        assert index.count(name) == 82
        assert index.search(name, queries[[0]], k=1, partition="A")[0][0].id == "b0"
        assert "b0" not in {h.id for h in index.search(name, queries[[0]], k=50, partition="B")[0]}
        assert index.search(name, queries[[0]], k=5, allowed_ids=["b0"], partition="B") == [[]]
        assert index.search(name, queries[[1]], k=1, partition="C")[0][0].id == "a5"
        assert "a5" not in {h.id for h in index.search(name, queries[[1]], k=50, partition="A")[0]}
    finally:
        index.close()


@pytest.mark.parametrize(
    "bad", ['A" or tenant != "', "A\\", "a b", "x" * 65, "é", "A\n"], ids=lambda b: repr(b)[:12]
)
def test_partitions_that_could_break_a_filter_are_refused(
    tmp_path_factory: pytest.TempPathFactory, bad: str
) -> None:
    from facesocial.store.milvus_index import MilvusVectorIndex
    from facesocial.store.vector_index import VectorIndexError

    index = MilvusVectorIndex(str(tmp_path_factory.mktemp("bad") / "bad.db"))
    name = "face_embeddings_4d_bad"
    try:
        index.ensure_collection(name, 4)
        one = l2_normalise(np.ones((1, 4))).astype(np.float32)
        index.upsert(name, ["x"], one, partitions=["A"])
        for call in (
            lambda: index.upsert(name, ["y"], one, partitions=[bad]),
            lambda: index.search(name, one, k=1, partition=bad),
            lambda: index.search(name, one, k=1, allowed_ids=["x"], partition=bad),
            lambda: index.count(name, partition=bad),
        ):
            with pytest.raises(VectorIndexError, match="invalid partition"):
                call()
        with pytest.raises(VectorIndexError, match="partitions"):
            index.upsert(name, ["y", "z"], np.vstack([one, one]), partitions=["A"])
        assert index.count(name) == 1 and index.count(name, partition="A") == 1
    finally:
        index.close()


def _old_schema_collection(uri: str, name: str, vectors: np.ndarray) -> None:
    """What ensure_collection created before partitions: face_id + embedding only."""
    from pymilvus import DataType, MilvusClient

    client = MilvusClient(uri=uri)
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("face_id", DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=vectors.shape[1])
    params = client.prepare_index_params()
    params.add_index(field_name="embedding", index_name="embedding", index_type="HNSW", metric_type="COSINE")
    client.create_collection(f"{name}__r0123456789ab", schema=schema, index_params=params)
    client.create_alias(f"{name}__r0123456789ab", name)
    if len(vectors):
        rows = [{"face_id": f"o{i}", "embedding": v} for i, v in enumerate(vectors)]
        client.upsert(f"{name}__r0123456789ab", rows)
    client.close()


def test_an_old_schema_collection_is_rebuilt_into_partitions(tmp_path: Path) -> None:
    from facesocial.store.milvus_index import MilvusVectorIndex
    from facesocial.store.vector_index import VectorIndexError

    uri = str(tmp_path / "old.db")
    name = "face_embeddings_8d_old"
    vectors = l2_normalise(np.random.default_rng(5).normal(size=(20, 8))).astype(np.float32)
    _old_schema_collection(uri, name, vectors)
    index = MilvusVectorIndex(uri)
    try:
        assert index.needs_partition_rebuild(name)
        assert not index.needs_partition_rebuild("face_embeddings_8d_absent")
        # Until the rebuild its rows count as partition "" (as in the local index): a tenant
        # finds nothing rather than every tenant's faces, and a tenant row cannot be stored.
        assert index.search(name, vectors[[4]], k=1)[0][0].id == "o4"
        assert index.search(name, vectors[[4]], k=1, partition="")[0][0].id == "o4"
        assert index.count(name) == index.count(name, partition="") == 20
        assert index.search(name, vectors[[4]], k=1, partition="7") == [[]]
        assert index.search(name, vectors[[4]], k=1, allowed_ids=["o4"], partition="7") == [[]]
        assert index.count(name, partition="7") == 0
        with pytest.raises(VectorIndexError, match="predates tenant partitions"):
            index.upsert(name, ["o4"], vectors[[4]], partitions=["7"])
        with pytest.raises(VectorIndexError, match="invalid partition"):
            index.search(name, vectors[[4]], k=1, partition='7" or "')
        index.ensure_collection(name, 8)  # non-empty: left for the rebuild, not dropped
        assert index.count(name) == 20

        tenants = [str(7 + i % 2) for i in range(20)]
        batches = [
            ([f"o{i}" for i in range(10)], vectors[:10], tenants[:10]),
            (["o10"], vectors[10:11], None),
        ]
        assert index.replace_collection(name, 8, batches) == 11
        assert not index.needs_partition_rebuild(name)
        assert [index.count(name, partition=p) for p in ("7", "8", "")] == [5, 5, 1]
        assert index.search(name, vectors[[4]], k=1, partition="7")[0][0].id == "o4"
        assert all(
            h.id in {"o1", "o3", "o5", "o7", "o9"}
            for h in index.search(name, vectors[[4]], k=10, partition="8")[0]
        )
        # Another client (another process after a restart) sees the new schema too.
        other = MilvusVectorIndex(uri)
        assert not other.needs_partition_rebuild(name)
        assert other.search(name, vectors[[4]], k=1, partition="7")[0][0].id == "o4"
        other.close()
    finally:
        index.close()


@pytest.mark.parametrize("upgrade", ["ensure_collection", "upsert", "emptied"])
def test_an_empty_old_schema_collection_is_upgraded_before_tenant_rows(tmp_path: Path, upgrade: str) -> None:
    """Emptied: what the start-up rebuild does to an old collection SQL has no faces for."""
    from facesocial.store.milvus_index import MilvusVectorIndex

    uri = str(tmp_path / "empty_old.db")
    name = "face_embeddings_8d_empty"
    vectors = l2_normalise(np.random.default_rng(6).normal(size=(3, 8))).astype(np.float32)
    _old_schema_collection(uri, name, vectors if upgrade == "emptied" else vectors[:0])
    index = MilvusVectorIndex(uri)
    try:
        if upgrade == "emptied":
            assert index.needs_partition_rebuild(name)
            assert index.delete(name, list(index.ids(name))) == 3
        assert not index.needs_partition_rebuild(name)  # nothing to rebuild from
        if upgrade == "ensure_collection":
            index.ensure_collection(name, 8)
        index.upsert(name, ["p0", "p1", "p2"], vectors, partitions=["7", "7", "8"])
        assert index.count(name, partition="7") == 2
        assert index.search(name, vectors[[2]], k=3, partition="7")[0][0].id in {"p0", "p1"}
        assert index.collections() == [name]
    finally:
        index.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_server_is_service_unavailable_quickly() -> None:
    from facesocial.errors import VectorIndexUnavailableError
    from facesocial.store.milvus_index import MilvusVectorIndex

    started = time.monotonic()
    with pytest.raises(VectorIndexUnavailableError) as refused:
        MilvusVectorIndex(f"http://127.0.0.1:{_free_port()}", timeout=2)  # nothing listens there
    assert refused.value.code == "SERVICE_UNAVAILABLE" and refused.value.status == 503
    assert "vector index" in refused.value.message
    assert time.monotonic() - started < 10


def test_a_server_that_never_answers_times_out_as_unavailable() -> None:
    """A listening socket that never speaks gRPC: the connect must give up after the timeout."""
    from facesocial.errors import VectorIndexUnavailableError
    from facesocial.store.milvus_index import MilvusVectorIndex

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        started = time.monotonic()
        with pytest.raises(VectorIndexUnavailableError):
            MilvusVectorIndex(f"http://127.0.0.1:{silent.getsockname()[1]}", timeout=2)
        assert time.monotonic() - started < 15


class _TcpProxy:
    """Forwards a loopback port to another. ``stall()`` holds every byte (a hung server);
    ``cut()`` drops every connection and stops listening (a dead one)."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = _free_port()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self.stalled = threading.Event()
        self.listen()

    def listen(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            upstream = socket.create_connection(("127.0.0.1", self.target))
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                while self.stalled.is_set():
                    time.sleep(0.05)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        # shutdown() first: a bare close() does not wake the thread blocked in accept(), and
        # the socket would go on listening.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            for connection in self._sockets:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
                connection.close()
            self._sockets.clear()


def test_a_server_lost_mid_session_is_unavailable_and_recovers(tmp_path: Path) -> None:
    from milvus_lite.server_manager import server_manager_instance

    from facesocial.errors import VectorIndexUnavailableError
    from facesocial.store.milvus_index import MilvusVectorIndex

    path = str(tmp_path / "cut.db")
    served = server_manager_instance.start_and_get_uri(path)
    assert served is not None
    proxy = _TcpProxy(int(served.rsplit(":", 1)[1]))
    index = MilvusVectorIndex(f"http://127.0.0.1:{proxy.port}", timeout=1.5)
    try:
        index.ensure_collection("face_embeddings_8d_cut", 8)
        vectors = l2_normalise(np.random.default_rng(4).normal(size=(10, 8))).astype(np.float32)
        index.upsert("face_embeddings_8d_cut", [f"c{i}" for i in range(10)], vectors)
        index.ping()
        calls = {
            "search": lambda: index.search("face_embeddings_8d_cut", vectors[[0]], k=1),
            "upsert": lambda: index.upsert("face_embeddings_8d_cut", ["x"], vectors[[1]]),
            "delete": lambda: index.delete("face_embeddings_8d_cut", ["c1"]),
            "count": lambda: index.count("face_embeddings_8d_cut"),
            "ids": lambda: list(index.ids("face_embeddings_8d_cut")),
            "collections": index.collections,
            "ping": index.ping,
        }
        for failure in ("stalled", "cut"):  # a hung server (deadline exceeded), then a dead one
            if failure == "stalled":
                proxy.stalled.set()
            else:
                proxy.cut()
                proxy.stalled.clear()
            for name, call in calls.items():
                started = time.monotonic()
                with pytest.raises(VectorIndexUnavailableError, match="vector index"):
                    call()
                assert time.monotonic() - started < 15, (failure, name)  # bounded, not a hang

        proxy.listen()  # the server is back: the same client recovers without a restart
        deadline = time.monotonic() + 30
        while True:
            try:
                index.ping()
                break
            except VectorIndexUnavailableError:
                assert time.monotonic() < deadline
                time.sleep(0.5)
        assert index.search("face_embeddings_8d_cut", vectors[[0]], k=1)[0][0].id == "c0"
        assert index.count("face_embeddings_8d_cut") == 10  # nothing half-applied while cut
    finally:
        index.close()
        proxy.cut()
        server_manager_instance.release_server(path)
