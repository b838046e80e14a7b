"""HNSW graphs and partition row lists for the local vector index (store/local_index.py).

Why hnswlib: measured on 200 k dlib-like faces (scripts/compare_ann_libraries.py, 2 build
threads, M=16, ef_construction=128; docs/benchmarks.md "Vector index"), hnswlib, usearch and
FAISS HNSW find the same neighbours for the same parameters and build in about the same time
(84-99 s), and all answer a query in well under a millisecond. usearch would halve the graph's
memory (f16 storage), but importing usearch's extension before onnxruntime's makes the
onnxruntime import crash the process (SIGSEGV in libstdc++'s codecvt, usearch 2.26.6 with
onnxruntime 1.32.0): an import-order trap in a process that loads both. FAISS has no per-label
removal for HNSW. hnswlib has none of these problems: labels, mark_deleted, save/load, and it
releases the GIL while it builds and searches. The graph only proposes candidates: every score
returned is recomputed from the float32 matrix.

A graph is keyed by *keys*: integers the collection hands out, one per stored (id, vector)
and never reused, so moving a row in the matrix (a delete fills the hole with the last row)
never touches a graph. A new vector for an id gets a new key and the old one is removed.

Partitions: every id belongs to one partition (the tenant id as text; ``""`` when none was
given). Each partition keeps its own row list and, once it holds ``ann_min_vectors`` rows, its
own graph, so a tenant's search never walks another tenant's vectors.
"""

from __future__ import annotations

import importlib.metadata
import os
import struct
import time
from pathlib import Path

import hnswlib  # type: ignore[import-untyped]  # ships no type information
import numpy as np
import numpy.typing as npt

from facesocial.settings import VectorIndexSettings

HNSWLIB_VERSION = importlib.metadata.version("hnswlib")

# hnswlib 0.8's file (hnswalg.h, saveIndex): offsetLevel0, max_elements, cur_element_count,
# size_data_per_element, label_offset, offsetData (size_t each), maxlevel (int),
# enterpoint_node (uint32), maxM, maxM0, M (size_t), mult (double), ef_construction (size_t);
# then every element's level-0 block (link count + maxM0 links, the vector, the label), then
# per element a uint32 byte count and its upper-level link lists (link count + maxM links each).
_HEADER = struct.Struct("<6Q i I 3Q d Q")
_MAX_LEVEL = 64  # hnswlib's levels grow as log(n)/log(M): 64 is far beyond any real graph


def check_graph_file(path: Path, dimension: int) -> None:
    """Raise ValueError unless ``path`` is a well-formed hnswlib graph of ``dimension``-D vectors.

    hnswlib trusts the file it loads: a wrong count, link or size makes it read or write out of
    bounds and kill the process (found by fuzzing the files). This checks every number hnswlib
    will index with — header layout against the dimension, counts, entry point, level range,
    every link id and every block size — and the exact file length. About 3 s per million
    vectors (the upper-level blocks are walked one element at a time).
    """
    data = np.fromfile(path, dtype=np.uint8)
    if len(data) < _HEADER.size:
        raise ValueError("shorter than a graph header")
    (offset0, capacity, count, per_element, label_at, vector_at, max_level, entry, max_m, max_m0, m, _, _) = (
        _HEADER.unpack_from(data[: _HEADER.size].tobytes())
    )
    if offset0 != 0 or max_m != m or max_m0 != 2 * m or not 2 <= m <= 2048:
        raise ValueError("not a graph header (offsets or M)")
    links0 = 4 * max_m0 + 4
    if vector_at != links0 or label_at != vector_at + 4 * dimension or per_element != label_at + 8:
        raise ValueError(f"elements are not laid out for {dimension}-D vectors")
    if count > capacity or not 0 <= max_level < _MAX_LEVEL or (count and entry >= count):
        raise ValueError("element count, level or entry point out of range")
    level0_end = _HEADER.size + count * per_element
    if level0_end > len(data):
        raise ValueError("truncated in level 0")
    level0 = data[_HEADER.size : level0_end].reshape(count, per_element)
    links = np.ascontiguousarray(level0[:, :links0]).view(np.uint32)
    _check_links(links, max_m0, count, "level 0")
    upper = 4 * max_m + 4
    position = level0_end
    for _ in range(count):
        if position + 4 > len(data):
            raise ValueError("truncated in the upper levels")
        size = int(data[position : position + 4].view(np.uint32)[0])
        position += 4
        if size % upper or size // upper > max_level or position + size > len(data):
            raise ValueError("an upper-level block of impossible size")
        if size:
            block = np.ascontiguousarray(data[position : position + size]).view(np.uint32)
            _check_links(block.reshape(-1, max_m + 1), max_m, count, "an upper level")
        position += size
    if position != len(data):
        raise ValueError("bytes after the last element")


def _check_links(lists: npt.NDArray[np.uint32], most: int, count: int, where: str) -> None:
    """Rows of [count word, ids...]: the low 16 bits of the count word are the link count."""
    sizes = lists[:, 0] & 0xFFFF
    if np.any(sizes > most):
        raise ValueError(f"a link count out of range in {where}")
    used = np.arange(most)[None, :] < sizes[:, None]
    if np.any(lists[:, 1:][used] >= count):
        raise ValueError(f"a link to a node that does not exist in {where}")


class GraphSearchError(Exception):
    """The graph could not return the candidates asked for (the caller searches exactly)."""


class Graph:
    """An HNSW graph (hnswlib, inner product on unit vectors), labels = int64 keys."""

    def __init__(self, dimension: int, settings: VectorIndexSettings, capacity: int = 1024) -> None:
        self.index = hnswlib.Index(space="ip", dim=dimension)
        self.index.init_index(
            max_elements=max(capacity, 1024), M=settings.connectivity, ef_construction=settings.expansion_add
        )
        self.index.set_ef(settings.expansion_search)
        self.build_seconds = 0.0
        self.removed = 0  # tombstones (mark_deleted) since the build or load
        self.origin = "built"  # or "file": loaded from a saved graph

    @classmethod
    def build(
        cls,
        dimension: int,
        settings: VectorIndexSettings,
        keys: npt.NDArray[np.int64],
        vectors: npt.NDArray[np.float32],
    ) -> Graph:
        """A graph of (len(keys), dimension) ``vectors`` built with ``settings.build_threads``."""
        graph = cls(dimension, settings, capacity=len(keys) + len(keys) // 4)
        started = time.perf_counter()
        if len(keys):
            graph.index.add_items(vectors, keys, num_threads=settings.build_threads)
        graph.build_seconds = time.perf_counter() - started
        return graph

    @classmethod
    def load(cls, path: Path, dimension: int, settings: VectorIndexSettings) -> Graph:
        """The graph saved at ``path``; check it with :func:`check_graph_file` first (the file's
        layout proves its dimension: hnswlib takes the one it is given). Raises any error of
        hnswlib or the file system."""
        graph = cls.__new__(cls)
        graph.index = hnswlib.Index(space="ip", dim=dimension)  # not initialised: load fills it
        graph.index.load_index(str(path))
        graph.index.set_ef(settings.expansion_search)
        graph.build_seconds = 0.0
        graph.removed = 0
        graph.origin = "file"
        return graph

    def save(self, path: Path) -> None:
        """Write the graph to ``path`` atomically (temp file, fsync, rename; folder fsynced by caller)."""
        temporary = path.with_name(path.name + ".tmp")
        self.index.save_index(str(temporary))
        with temporary.open("rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)

    def add(self, keys: npt.NDArray[np.int64], vectors: npt.NDArray[np.float32]) -> None:
        if not len(keys):
            return
        needed = self.index.element_count + len(keys)
        if needed > self.index.get_max_elements():
            self.index.resize_index(max(needed, 2 * self.index.get_max_elements()))
        self.index.add_items(vectors, keys, num_threads=1)

    def remove(self, keys: npt.NDArray[np.int64]) -> None:
        for key in keys.tolist():
            try:
                self.index.mark_deleted(key)
            except RuntimeError:  # not in the graph, or removed already
                continue
            self.removed += 1

    def labels(self) -> npt.NDArray[np.int64]:
        return np.asarray(self.index.get_ids_list(), dtype=np.int64)

    def search(self, queries: npt.NDArray[np.float32], count: int) -> list[npt.NDArray[np.int64]]:
        """``count`` candidate keys per query row (approximate). Raises GraphSearchError."""
        if count <= 0:
            return [np.zeros(0, dtype=np.int64) for _ in range(len(queries))]
        try:
            labels, _ = self.index.knn_query(queries, k=count, num_threads=1)
        except RuntimeError as exc:  # fewer than ``count`` reachable live nodes
            raise GraphSearchError(str(exc)) from exc
        return [row.astype(np.int64) for row in np.asarray(labels)]

    def holds_exactly(self, keys: npt.NDArray[np.int64]) -> bool:
        """Whether every key is in the graph; any other node is marked deleted (a tombstone).

        Tombstones are counted from the graph itself, not from what a file says about it.
        """
        labels = self.labels()
        if not np.all(np.isin(keys, labels)):
            return False
        extra = np.setdiff1d(labels, keys)  # get_ids_list includes tombstones
        self.remove(extra)
        self.removed = len(extra)
        return True

    def contains_all(self, keys: npt.NDArray[np.int64]) -> bool:
        """True when every key is in the graph and nothing else is live in it (by the counts
        this process kept: for checks of a graph built or loaded here)."""
        labels = self.labels()
        return len(labels) - self.removed == len(keys) and bool(np.all(np.isin(keys, labels)))

    @property
    def size(self) -> int:
        """Live nodes (tombstones not counted)."""
        return int(self.index.element_count) - self.removed

    @property
    def memory_bytes(self) -> int:
        """Approximate: float32 vectors plus two layers' worth of links (hnswlib gives no figure)."""
        count = int(self.index.element_count)
        return count * (4 * int(self.index.dim) + 4 * 2 * int(self.index.M) + 16)

    def worn(self) -> bool:
        """Many removals leave tombstones that searches still walk: rebuild past half the size."""
        return self.removed > max(1000, self.size // 2)


class Partition:
    """The rows of one partition (a growable int64 array) and its graph, if any.

    ``building`` is a token while a background build runs; ``dirty`` collects the keys
    added or removed meanwhile, which the builder applies before installing its graph.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._rows = np.zeros(16, dtype=np.int64)
        self.size = 0
        self.graph: Graph | None = None
        self.building: object | None = None
        self.dirty: set[int] = set()

    @property
    def rows(self) -> npt.NDArray[np.int64]:
        return self._rows[: self.size]

    def fill(self, rows: npt.NDArray[np.int64]) -> None:
        """Make an empty partition hold ``rows`` (row i at position i)."""
        self._rows = np.array(rows, dtype=np.int64) if len(rows) else np.zeros(16, dtype=np.int64)
        self.size = len(rows)

    def push(self, row: int) -> int:
        """Append ``row``; returns its position in the partition."""
        if self.size == len(self._rows):
            grown = np.zeros(2 * len(self._rows), dtype=np.int64)
            grown[: self.size] = self.rows
            self._rows = grown
        self._rows[self.size] = row
        self.size += 1
        return self.size - 1

    def pop(self, position: int) -> int | None:
        """Remove the row at ``position`` (the last one fills it); returns that last row if moved."""
        last = self.size - 1
        self.size -= 1
        if position == last:
            return None
        moved = int(self._rows[last])
        self._rows[position] = moved
        return moved

    def set_row(self, position: int, row: int) -> None:
        self._rows[position] = row

    def note_added(self, keys: npt.NDArray[np.int64], vectors: npt.NDArray[np.float32]) -> None:
        """Keys (with their (len(keys), D) vectors) that joined the partition."""
        if self.graph is not None:
            self.graph.add(keys, vectors)
        if self.building is not None:
            self.dirty.update(keys.tolist())

    def note_removed(self, keys: npt.NDArray[np.int64]) -> None:
        """Keys that left the partition (deleted, or replaced by a new vector)."""
        if self.graph is not None:
            self.graph.remove(keys)
        if self.building is not None:
            self.dirty.update(keys.tolist())
