"""One collection of the local vector index in memory, and its snapshot and graph files.

The exact store is the truth of the index: ``ids``, a float32 matrix (one unit row per id,
grown by doubling) and, per row, its partition and its graph key. Graphs (store/local_graphs.py)
are derived from it and only propose candidates; scores always come from the matrix.

Files (in the collection's folder; meta.json and the journal are handled by local_index.py)::

    snapshot.npz   ids (str), matrix (n x D float32), partition_names (str),
                   partition_codes (n int32), keys (n int64), next_key, generation (str)
                   (a snapshot written before partitions has only ids and matrix: every row
                   is then in partition "" and row i gets key i)
    graphs.json    {"generation": g, "graphs": {partition: {"file": f, "crc32": c, "hnswlib": v}}}: the graphs
                   matching snapshot g, each with the CRC-32 of its file (checked before loading)
    graph-<g>-<i>.hnsw      one partition's HNSW graph (hnswlib file format)

Compaction writes the graphs and graphs.json first, then the snapshot, then empties the
journal (each atomic). A crash between leaves graphs whose generation the snapshot does not
carry: they are ignored and rebuilt in the background.
"""

from __future__ import annotations

import json
import logging
import uuid
import zlib
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

from facesocial.settings import VectorIndexSettings
from facesocial.store.local_graphs import (
    HNSWLIB_VERSION,
    Graph,
    GraphSearchError,
    Partition,
    check_graph_file,
)
from facesocial.store.local_journal import MAGIC, Record, append_at, encode_all, write_atomic
from facesocial.store.vector_index import Hit, best_first

log = logging.getLogger(__name__)

SNAPSHOT, GRAPHS = "snapshot.npz", "graphs.json"
JOURNAL = "journal.bin"


class DamagedError(Exception):
    """A collection file that cannot be read; the collection is quarantined."""


class StoredCollection:
    """One collection in memory. Not thread-safe: the index calls it under its lock."""

    def __init__(self, folder: Path, dimension: int, settings: VectorIndexSettings) -> None:
        self.folder = folder
        self.dimension = dimension
        self.settings = settings
        self.ids: list[str] = []
        self.rows: dict[str, int] = {}
        self._buffer = np.zeros((0, dimension), dtype=np.float32)
        # Per row (moved with it): graph key, partition code, position in the partition's rows.
        self._keys = np.zeros(0, dtype=np.int64)
        self._codes = np.zeros(0, dtype=np.int32)
        self._positions = np.zeros(0, dtype=np.int64)
        self._key_rows = np.full(0, -1, dtype=np.int64)  # key -> row, -1 once the key is gone
        self.next_key = 0
        self.partitions: dict[str, Partition] = {}
        self._names: list[str] = []  # partition code -> name
        self._name_codes: dict[str, int] = {}  # partition name -> code
        self.generation = ""  # of the snapshot on disk
        self.partitioned = True  # False: written by a version without partitions
        self.journal_end = len(MAGIC)  # the journal's bytes up to the end of its last good record
        self.journal_rows = 0  # ids journalled since the snapshot
        self.snapshot_rows = 0

    @property
    def matrix(self) -> npt.NDArray[np.float32]:
        return self._buffer[: len(self.ids)]

    # --- in-memory operations -----------------------------------------------------------------
    def _reserve(self, rows: int) -> None:
        if rows > len(self._buffer):
            # Doubling keeps a stream of single-face upserts (and a journal replay) linear.
            size = max(rows, 2 * len(self._buffer), 64)
            grown = np.empty((size, self.dimension), dtype=np.float32)
            grown[: len(self.ids)] = self.matrix
            self._buffer = grown
            self._keys = np.resize(self._keys, size)
            self._codes = np.resize(self._codes, size)
            self._positions = np.resize(self._positions, size)

    def _new_key(self, row: int) -> int:
        key = self.next_key
        self.next_key += 1
        if key >= len(self._key_rows):
            grown = np.full(max(2 * len(self._key_rows), key + 1, 64), -1, dtype=np.int64)
            grown[: len(self._key_rows)] = self._key_rows
            self._key_rows = grown
        self._key_rows[key] = row
        self._keys[row] = key
        return key

    def _join(self, row: int, partition: str) -> None:
        if partition not in self.partitions:
            self.partitions[partition] = Partition(partition)
            self._names.append(partition)
            self._name_codes[partition] = len(self._names) - 1
        self._codes[row] = self._name_codes[partition]
        self._positions[row] = self.partitions[partition].push(row)

    def _leave(self, row: int) -> None:
        part = self.partitions[self._names[self._codes[row]]]
        moved = part.pop(int(self._positions[row]))
        if moved is not None:
            self._positions[moved] = self._positions[row]

    def partition_of(self, row: int) -> str:
        return self._names[int(self._codes[row])]

    def apply_upsert(
        self, ids: Sequence[str], vectors: npt.NDArray[np.float32], partitions: Sequence[str]
    ) -> None:
        self._reserve(len(self.ids) + len(ids))
        removed: dict[str, list[int]] = {}
        added: dict[str, list[int]] = {}
        for face_id, vector, partition in zip(ids, vectors, partitions, strict=True):
            row = self.rows.get(face_id)
            if row is None:
                row = len(self.ids)
                self.rows[face_id] = row
                self.ids.append(face_id)
                self._join(row, partition)
            else:
                old_key, old_partition = int(self._keys[row]), self.partition_of(row)
                self._key_rows[old_key] = -1
                removed.setdefault(old_partition, []).append(old_key)
                if old_partition != partition:
                    self._leave(row)
                    self._join(row, partition)
            self._buffer[row] = vector
            added.setdefault(partition, []).append(self._new_key(row))
        for partition, keys in removed.items():
            self.partitions[partition].note_removed(np.array(keys, dtype=np.int64))
        for partition, keys in added.items():
            # A key replaced later in the same call is gone already: only live keys join.
            live = np.array(keys, dtype=np.int64)
            live = live[self._key_rows[live] >= 0]
            self.partitions[partition].note_added(live, self._buffer[self._key_rows[live]])

    def apply_delete(self, ids: Sequence[str]) -> int:
        removed_keys: dict[str, list[int]] = {}
        count = 0
        for face_id in ids:
            row = self.rows.pop(face_id, None)
            if row is None:
                continue
            key = int(self._keys[row])
            self._key_rows[key] = -1
            removed_keys.setdefault(self.partition_of(row), []).append(key)
            self._leave(row)
            last = len(self.ids) - 1
            if row != last:  # move the last row into the hole; its key moves with it
                moved = self.ids[last]
                self.ids[row] = moved
                self._buffer[row] = self._buffer[last]
                self.rows[moved] = row
                self._keys[row] = self._keys[last]
                self._codes[row] = self._codes[last]
                self._positions[row] = self._positions[last]
                self._key_rows[self._keys[row]] = row
                self.partitions[self.partition_of(row)].set_row(int(self._positions[row]), row)
            self.ids.pop()
            count += 1
        for partition, keys in removed_keys.items():
            self.partitions[partition].note_removed(np.array(keys, dtype=np.int64))
        return count

    def apply(self, record: Record) -> int:
        if record.vectors is not None:  # an upsert (the decoder gives deletes no vectors)
            self.apply_upsert(record.ids, record.vectors, record.partition_list())
            return len(record.ids)
        return self.apply_delete(record.ids)

    def load_rows(
        self,
        ids: list[str],
        matrix: npt.NDArray[np.float32],
        partitions: Sequence[str] | None = None,
        keys: npt.NDArray[np.int64] | None = None,
        next_key: int | None = None,
    ) -> None:
        """Fill an empty collection with distinct ``ids`` at once (snapshots, rebuilds)."""
        count = len(ids)
        self.ids = ids
        self.rows = {face_id: row for row, face_id in enumerate(ids)}
        # Callers hand over a fresh array: no copy (at 1 M faces that is 512 MB).
        self._buffer = np.ascontiguousarray(matrix, dtype=np.float32).reshape(count, self.dimension)
        self._keys = np.arange(count, dtype=np.int64) if keys is None else np.array(keys, dtype=np.int64)
        self.next_key = int(next_key) if next_key is not None else count
        if count and (self.next_key <= int(self._keys.max()) or len(np.unique(self._keys)) != count):
            raise DamagedError("snapshot keys are not distinct or reach past next_key")
        self._key_rows = np.full(max(self.next_key, 64), -1, dtype=np.int64)
        self._key_rows[self._keys] = np.arange(count)
        names, codes = np.unique(
            np.asarray(partitions if partitions is not None else [""] * count), return_inverse=True
        )
        self._names = [str(n) for n in names]
        self._name_codes = {name: code for code, name in enumerate(self._names)}
        self._codes = codes.astype(np.int32).reshape(count)
        self._positions = np.zeros(count, dtype=np.int64)
        self.partitions = {}
        order = np.argsort(self._codes, kind="stable")
        bounds = np.searchsorted(self._codes[order], np.arange(len(self._names) + 1))
        for code, name in enumerate(self._names):
            part = Partition(name)
            members = order[bounds[code] : bounds[code + 1]]
            part.fill(members)
            self._positions[members] = np.arange(len(members))
            self.partitions[name] = part

    # --- graphs ----------------------------------------------------------------------------------
    def graphs_wanted(self, only: Collection[str] | None = None) -> list[Partition]:
        """Partitions big enough for a graph that have none (or a worn one) and no build running.

        ``only``: look at these partitions alone (those an upsert touched), so a write does not
        walk every tenant's partition; None looks at all (after deletes, loads, rebuilds).
        """
        if not self.settings.ann:
            return []
        candidates = (
            self.partitions.values()
            if only is None
            else [part for name in only if (part := self.partitions.get(name)) is not None]
        )
        return [
            part
            for part in candidates
            if part.building is None
            and part.size >= self.settings.ann_min_vectors
            and (part.graph is None or part.graph.worn())
        ]

    def graph_input(self, part: Partition) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """Copies of a partition's keys and vectors, for a build outside the lock."""
        rows = part.rows.copy()
        return self._keys[rows], self._buffer[rows]

    def install_graph(self, part: Partition, graph: Graph) -> None:
        """Bring a graph built from ``graph_input`` up to date (``part.dirty``) and use it."""
        dirty = np.array(sorted(part.dirty), dtype=np.int64)
        if len(dirty):
            graph.remove(dirty)
            rows = self._key_rows[dirty]
            keep = rows >= 0
            keep[keep] = self._codes[rows[keep]] == self._name_codes[part.name]
            graph.add(dirty[keep], self._buffer[rows[keep]])
        part.graph, part.building, part.dirty = graph, None, set()

    def build_graphs_now(self) -> None:
        """Build every wanted graph in this thread (a collection nobody searches yet)."""
        for part in self.graphs_wanted():
            keys, vectors = self.graph_input(part)
            part.graph = Graph.build(self.dimension, self.settings, keys, vectors)

    def graph_stats(self) -> list[dict[str, Any]]:
        return [
            {
                "partition": part.name,
                "vectors": part.size,
                "graph_vectors": part.graph.size,
                "build_seconds": round(part.graph.build_seconds, 2),
                "origin": part.graph.origin,
                "memory_bytes": part.graph.memory_bytes,
            }
            for part in self.partitions.values()
            if part.graph is not None
        ]

    # --- search ----------------------------------------------------------------------------------
    def search(
        self,
        queries: npt.NDArray[np.float32],
        k: int,
        allowed_ids: Collection[str] | None,
        partition: str | None,
    ) -> list[list[Hit]]:
        """Top-``k`` exact-scored hits per query among ``partition`` (all: None) ∩ ``allowed_ids``."""
        empty: list[list[Hit]] = [[] for _ in range(len(queries))]
        if partition is not None:
            part = self.partitions.get(partition)
            if part is None or part.size == 0:
                return empty
            if allowed_ids is None:
                if part.graph is not None:
                    return self._ann(part, queries, k, None)
                return self._exact(queries, k, None if part.size == len(self.ids) else part.rows)
            code = self._name_codes[partition]
            rows = self._allowed_rows(allowed_ids, code)
            if rows.size == 0:
                return empty
            if part.graph is not None and rows.size >= self.settings.ann_min_vectors:
                return self._ann(part, queries, k, rows)
            return self._exact(queries, k, rows)
        if allowed_ids is not None:
            rows = self._allowed_rows(allowed_ids, None)
            return self._exact(queries, k, rows) if rows.size else empty
        graphed = [part for part in self.partitions.values() if part.graph is not None and part.size]
        if not graphed:
            return self._exact(queries, k, None)
        if len(graphed) == 1 and graphed[0].size == len(self.ids):
            return self._ann(graphed[0], queries, k, None)
        results = [self._ann(part, queries, k, None) for part in graphed]
        rest = [part.rows for part in self.partitions.values() if part.graph is None and part.size]
        if rest:
            results.append(self._exact(queries, k, np.concatenate(rest)))
        merged = []
        for per_query in zip(*results, strict=True):
            hits = sorted((hit for hits in per_query for hit in hits), key=lambda hit: -hit.score)
            merged.append(hits[:k])
        return merged

    def _allowed_rows(self, allowed_ids: Collection[str], code: int | None) -> npt.NDArray[np.int64]:
        rows = np.array(sorted(self.rows[i] for i in allowed_ids if i in self.rows), dtype=np.int64)
        if code is not None and rows.size:
            rows = rows[self._codes[rows] == code]
        return rows

    def _exact(
        self, queries: npt.NDArray[np.float32], k: int, rows: npt.NDArray[np.int64] | None
    ) -> list[list[Hit]]:
        matrix = self.matrix if rows is None else self._buffer[rows]
        scores = queries @ matrix.T
        results = []
        for row_scores in scores:
            best = best_first(row_scores, k)
            chosen = best if rows is None else rows[best]
            results.append(
                [Hit(self.ids[r], float(s)) for r, s in zip(chosen, row_scores[best], strict=True)]
            )
        return results

    def _ann(
        self,
        part: Partition,
        queries: npt.NDArray[np.float32],
        k: int,
        allowed: npt.NDArray[np.int64] | None,
    ) -> list[list[Hit]]:
        assert part.graph is not None
        fetch = max(4 * k, 64)
        if allowed is not None:
            # Only a share of the graph's candidates pass the filter: fetch more, in proportion.
            fetch *= min(16, -(-part.size // len(allowed)))
        fetch = min(fetch, part.size)
        try:
            candidates = part.graph.search(queries, fetch)
        except GraphSearchError:  # a graph worn by removals: exact is slower but right
            return self._exact(queries, k, allowed if allowed is not None else part.rows)
        results = []
        for query, keys in zip(queries, candidates, strict=True):
            rows = self._key_rows[keys]
            rows = rows[rows >= 0]
            # Only this partition's rows, whatever the graph holds: isolation never rests on a
            # graph file's content.
            rows = rows[self._codes[rows] == self._name_codes[part.name]]
            if allowed is not None:
                rows = rows[np.isin(rows, allowed)]
                if len(rows) < min(k, len(allowed)):  # too few survived: exact over the group
                    results.append(self._exact(query[None, :], k, allowed)[0])
                    continue
            scores = self._buffer[rows] @ query
            best = np.argsort(-scores, kind="stable")[:k]
            results.append(
                [Hit(self.ids[r], float(s)) for r, s in zip(rows[best], scores[best], strict=True)]
            )
        return results

    # --- persistence -----------------------------------------------------------------------------
    @property
    def snapshot_path(self) -> Path:
        return self.folder / SNAPSHOT

    @property
    def journal_path(self) -> Path:
        return self.folder / JOURNAL

    def append(self, records: list[Record]) -> None:
        """Journal ``records`` durably (OSError: nothing was journalled)."""
        data = encode_all(records)
        append_at(self.journal_path, self.journal_end, data)
        self.journal_end += len(data)
        self.journal_rows += sum(len(r.ids) for r in records)

    def write_files(self) -> None:
        """Graphs, then the snapshot, then an empty journal (replaying it again would be harmless).

        Each step is atomic. A crash after the graphs leaves graphs of a generation the old
        snapshot does not carry (ignored on load); a crash after the snapshot leaves the old
        journal, whose replay is idempotent: every id ends in the state its last record gives it.
        """
        generation = uuid.uuid4().hex
        graph_files: dict[str, dict[str, Any]] = {}
        for number, part in enumerate(p for p in self.partitions.values() if p.graph is not None):
            assert part.graph is not None
            file = f"graph-{generation[:12]}-{number}.hnsw"
            part.graph.save(self.folder / file)
            graph_files[part.name] = {
                "file": file,
                "crc32": _crc32(self.folder / file),
                "hnswlib": HNSWLIB_VERSION,  # another version's file is rebuilt, not trusted
            }
        if graph_files or (self.folder / GRAPHS).exists():
            manifest = {"generation": generation, "graphs": graph_files}
            write_atomic(self.folder / GRAPHS, json.dumps(manifest).encode())  # fsyncs the folder too
        count = len(self.ids)
        ids, matrix = np.array(self.ids, dtype=str), self.matrix
        codes = self._codes[:count]

        def snapshot(handle: BinaryIO) -> None:
            np.savez(
                handle,
                ids=ids,
                matrix=matrix,
                partition_names=np.array(self._names, dtype=str),
                partition_codes=codes,
                keys=self._keys[:count],
                next_key=np.array(self.next_key, dtype=np.int64),
                generation=np.array(generation),
            )

        write_atomic(self.snapshot_path, snapshot)
        self.generation = generation
        write_atomic(self.journal_path, MAGIC)
        self.journal_end = len(MAGIC)
        self.journal_rows = 0
        self.snapshot_rows = count
        for stale in self.folder.glob("graph-*.hnsw"):
            if stale.name not in {entry["file"] for entry in graph_files.values()}:
                stale.unlink(missing_ok=True)

    def maybe_compact(self) -> None:
        # Snapshot when the journal outgrows the last snapshot: replay stays short and the
        # rewrite cost is amortised (each snapshot at least doubles the one before).
        if self.journal_rows > max(1000, self.snapshot_rows):
            try:
                self.write_files()
            except OSError as exc:
                # The change itself is journalled and durable; compaction is retried next time.
                log.warning(
                    "local index: compacting %s failed (%s); the journal keeps growing", self.folder, exc
                )

    def read_snapshot(self) -> None:
        """Load ``snapshot.npz`` (either layout). Raises DamagedError."""
        try:
            with np.load(self.snapshot_path, allow_pickle=False) as data:
                ids = data["ids"]
                matrix = np.asarray(data["matrix"], dtype=np.float32)
                extra = {name: np.asarray(data[name]) for name in data.files if name not in ("ids", "matrix")}
        except Exception as exc:  # zip, CRC, format and I/O errors alike: the file is not usable
            raise DamagedError(f"unreadable {SNAPSHOT}: {type(exc).__name__}: {exc}") from exc
        if (
            ids.ndim != 1
            or ids.dtype.kind != "U"
            or matrix.shape != (len(ids), self.dimension)
            or len(set(ids.tolist())) != len(ids)
        ):
            raise DamagedError(f"{SNAPSHOT} has ids {ids.shape} and a matrix {matrix.shape}")
        partitions: list[str] | None = None
        keys = next_key = None
        if "keys" in extra:
            try:
                names = [str(n) for n in extra["partition_names"]]
                partitions = [names[c] for c in extra["partition_codes"].tolist()]
                keys, next_key = extra["keys"], int(extra["next_key"])
                self.generation = str(extra["generation"])
            except (KeyError, IndexError, TypeError, ValueError) as exc:
                raise DamagedError(f"{SNAPSHOT} has inconsistent partitions or keys: {exc}") from exc
            if len(partitions) != len(ids) or keys.shape != (len(ids),):
                raise DamagedError(f"{SNAPSHOT} has {len(ids)} ids but {keys.shape} keys")
        self.load_rows([str(i) for i in ids], matrix, partitions, keys, next_key)
        self.snapshot_rows = len(ids)

    def read_graphs(self) -> list[str]:
        """Use the saved graphs that match the snapshot; returns the problems met (none: all fine)."""
        path = self.folder / GRAPHS
        if not path.exists():
            return []
        try:
            manifest = json.loads(path.read_text())
            generation, files = manifest["generation"], dict(manifest["graphs"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return [f"unreadable {GRAPHS}: {exc}"]
        if generation != self.generation or not self.generation:
            return [f"graphs of generation {generation}, snapshot of {self.generation or 'none'}"]
        problems = []
        for name, entry in files.items():
            part = self.partitions.get(name)
            if part is None:
                continue
            file = str(entry.get("file")) if isinstance(entry, dict) else "?"
            try:
                # hnswlib trusts the file it loads (a damaged one can crash the process): check first.
                if _crc32(self.folder / file) != entry.get("crc32"):
                    raise ValueError("checksum mismatch")
                if entry.get("hnswlib") != HNSWLIB_VERSION:
                    raise ValueError(f"written by hnswlib {entry.get('hnswlib')}, not {HNSWLIB_VERSION}")
                # The structure too (counts, links, sizes): hnswlib reads a malformed file out of
                # bounds, and a checksum only proves the file is the one written.
                check_graph_file(self.folder / file, self.dimension)
                graph = Graph.load(self.folder / file, self.dimension, self.settings)
            except Exception as exc:  # hnswlib raises RuntimeError, ValueError, OSError...
                problems.append(f"graph {file}: {type(exc).__name__}: {exc}")
                continue
            if not graph.holds_exactly(self._keys[part.rows]):
                problems.append(f"graph {file} does not hold the snapshot's keys of its partition")
                continue
            part.graph = graph
        return problems


def _crc32(path: Path) -> int:
    """CRC-32 of a file, read in 16 MiB blocks. Raises OSError."""
    checksum = 0
    with path.open("rb") as handle:
        while block := handle.read(16 << 20):
            checksum = zlib.crc32(block, checksum)
    return checksum
