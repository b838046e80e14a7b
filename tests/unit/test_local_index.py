"""The embedded vector index: exact cosine search, persistence, deletes, journal recovery."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facesocial.store.local_index import LocalVectorIndex
from facesocial.store.vector_index import VectorIndexError
from facesocial.vision.geometry import l2_normalise


def random_unit(n: int, dim: int = 8, seed: int = 0) -> np.ndarray:
    return l2_normalise(np.random.default_rng(seed).normal(size=(n, dim)))


def test_search_finds_exact_neighbour_first(tmp_path: Path) -> None:
    index = LocalVectorIndex(tmp_path)
    index.ensure_collection("c", 8)
    vectors = random_unit(50)
    ids = [f"id{i}" for i in range(50)]
    index.upsert("c", ids, vectors)
    hits = index.search("c", vectors[[7, 31]], k=3)
    assert [h[0].id for h in hits] == ["id7", "id31"]
    assert hits[0][0].score == pytest.approx(1.0, abs=1e-5)
    assert hits[0][0].score >= hits[0][1].score >= hits[0][2].score
    # Brute-force agreement on the second neighbour.
    expected = ids[int(np.argsort(-(vectors @ vectors[7]))[1])]
    assert hits[0][1].id == expected


def test_allowed_ids_restrict_the_search(tmp_path: Path) -> None:
    index = LocalVectorIndex(tmp_path)
    index.ensure_collection("c", 8)
    vectors = random_unit(10)
    index.upsert("c", [f"id{i}" for i in range(10)], vectors)
    hits = index.search("c", vectors[[0]], k=5, allowed_ids={"id3", "id4", "unknown"})[0]
    assert {h.id for h in hits} == {"id3", "id4"}
    assert index.search("c", vectors[[0]], k=5, allowed_ids=set())[0] == []


def test_persistence_deletes_and_updates_survive_reload(tmp_path: Path) -> None:
    index = LocalVectorIndex(tmp_path)
    index.ensure_collection("c", 8)
    vectors = random_unit(20)
    index.upsert("c", [f"id{i}" for i in range(20)], vectors)
    assert index.delete("c", ["id3", "id19", "missing"]) == 2
    index.upsert("c", ["id5"], vectors[[6]])  # overwrite id5 with id6's vector
    reloaded = LocalVectorIndex(tmp_path)
    assert reloaded.count("c") == 18
    hits = reloaded.search("c", vectors[[6]], k=2)[0]
    assert {h.id for h in hits} == {"id5", "id6"}
    assert all(h.id not in {"id3", "id19"} for h in reloaded.search("c", vectors, k=20)[0])


def test_compaction_keeps_content(tmp_path: Path) -> None:
    index = LocalVectorIndex(tmp_path)
    index.ensure_collection("c", 8)
    vectors = random_unit(1500)
    for start in range(0, 1500, 100):  # many small appends trigger a snapshot
        index.upsert("c", [f"id{i}" for i in range(start, start + 100)], vectors[start : start + 100])
    assert (tmp_path / "c" / "snapshot.npz").exists()
    reloaded = LocalVectorIndex(tmp_path)
    assert reloaded.count("c") == 1500
    assert reloaded.search("c", vectors[[1234]], k=1)[0][0].id == "id1234"


def test_torn_final_journal_record_is_ignored(tmp_path: Path) -> None:
    index = LocalVectorIndex(tmp_path)
    index.ensure_collection("c", 8)
    index.upsert("c", ["a", "b"], random_unit(2))
    journal = tmp_path / "c" / "journal.bin"
    journal.write_bytes(journal.read_bytes()[:-5])  # a crash mid-write
    reloaded = LocalVectorIndex(tmp_path)
    assert reloaded.count("c") == 1


def test_collections_are_separate_and_typed(tmp_path: Path) -> None:
    index = LocalVectorIndex(tmp_path)
    index.ensure_collection("face_embeddings_8d_a", 8)
    index.ensure_collection("face_embeddings_4d_b", 4)
    with pytest.raises(VectorIndexError):
        index.ensure_collection("face_embeddings_8d_a", 16)
    with pytest.raises(VectorIndexError):
        index.upsert("face_embeddings_4d_b", ["x"], random_unit(1, 8))
    with pytest.raises(VectorIndexError):
        index.ensure_collection("../escape", 8)
    assert index.collections() == ["face_embeddings_4d_b", "face_embeddings_8d_a"]
    index.drop("face_embeddings_4d_b")
    assert LocalVectorIndex(tmp_path).collections() == ["face_embeddings_8d_a"]
