"""Gallery-scale behaviour of the Milvus adapter on milvus-lite (ANN recall, deletes, id listing),
collections from before aliases, and a server that is unreachable, silent or lost mid-session.

20k random unit 128-D faces (the dlib model's dimension). Random vectors on the sphere have no
cluster structure, which makes them a hard case for ANN indexes: a recall floor met here is
conservative for real face embeddings.
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
    assert index.replace_collection("face_embeddings_8d_old", 8, [(["n0", "n1"], vectors[:2])]) == 2
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
