"""An in-process cosine index persisted on disk (the embedded profile's VectorIndex).

The truth is an exact store: ids and a float32 matrix (store/local_collection.py). Each vector
belongs to a partition (a tenant); each partition holding ``ann_min_vectors`` or more gets an
HNSW graph (store/local_graphs.py, hnswlib) whose candidates are reranked exactly, smaller ones
are searched exactly over their own rows. At 1 M faces exact search takes ~70 ms per query, a
graph ~2 ms (docs/benchmarks.md "Vector index"). Graphs are derived data: saved beside the
snapshot at compaction, rebuilt in a background thread when missing, stale or unreadable
(searches run exactly meanwhile). Every change is appended to the collection's journal and
fsynced before it is applied in memory (matrix and graph alike), so memory is never ahead of
disk; the journal is folded into a new snapshot when it grows past the snapshot's size, so
enrolment cost does not grow with the gallery.

Local index on-disk format
--------------------------
::

    <root>/.lock                  flock()ed by the owning process; holds "<pid> <command>"
    <root>/<name>/meta.json       {"dimension": D, "partitioned": true} (no flag: written by a
                                  version without partitions; see needs_partition_rebuild)
    <root>/<name>/snapshot.npz    ids (str) + matrix (n x D float32) + partitions, graph keys and
                                  generation (store/local_collection.py); absent until the first
                                  compaction
    <root>/<name>/graphs.json     the snapshot generation the graph files match, and which file
                                  holds which partition's graph
    <root>/<name>/graph-*.hnsw    one partition's HNSW graph
    <root>/<name>/journal.bin     format v3, see store/local_journal.py: magic, then records of
                                  length | crc32 | payload, one record per upsert/delete call
    <root>/.<name>.new            replace_collection() building the next content (temporary)
    <root>/.<name>.old            the content it replaced, until removed (temporary)
    <root>/.<name>.dropped        a collection being dropped (temporary)
    <root>/.<name>.created        a new empty collection being created (temporary)
    <root>/<name>.corrupt-<UTC>   a collection quarantined on load (kept for inspection only)

Every file except the journal is written crash-safely (temp file, fsync, rename, fsync the
folder); journal appends are fsynced at the end of the last good record. On load:

* a journal whose tail is torn (crash mid-append) or damaged (a record failing its CRC) is
  replayed up to the last good record and truncated there, with a warning giving the bytes
  dropped; a v1 journal (no magic) or a v2 one (no partitions) is read with its parser and at
  once compacted into a snapshot plus an empty v3 journal;
* graph files are checked against the snapshot (generation, keys); a graph that does not
  match is ignored and rebuilt in the background, and the journal replay updates the graphs
  that do match, exactly as it updates the matrix;
* an unreadable ``meta.json``, snapshot or journal header quarantines the collection (its
  folder is renamed ``<name>.corrupt-<UTC time>``) and, when the dimension is known, the
  collection restarts empty. SQL is the source of truth: the reconciler re-adds what is missing.
  ``LocalVectorIndex.damaged`` names every collection that lost anything on load;
* temporary folders are settled so that a crash at any point of ``replace_collection`` leaves
  the old content or the new one, never a mix: with ``<name>`` present, ``.<name>.new`` (an
  unfinished build) and ``.<name>.old`` (the replaced content) are deleted; with ``<name>``
  missing and ``.<name>.old`` present, the crash fell between the two renames of the swap,
  after the build was complete, so ``.<name>.new`` becomes ``<name>`` (``.<name>.old`` does if
  the new one is unreadable). ``.<name>.dropped`` and ``.<name>.created`` are always deleted.

Ownership: the index lives in one process's memory, so the constructor takes an exclusive
``flock`` on ``<root>/.lock`` and raises ``IndexInUseError`` (naming the holder's pid) if another
process - or another open index in this one - has it. The kernel releases the lock when the
process dies, ``kill -9`` included. POSIX only, and only on a local file system.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import shutil
import sys
import threading
import time
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

from facesocial.errors import IndexInUseError, VectorIndexUnavailableError
from facesocial.settings import VectorIndexSettings
from facesocial.store.local_collection import DamagedError as _DamagedError
from facesocial.store.local_collection import StoredCollection
from facesocial.store.local_graphs import Graph, Partition
from facesocial.store.local_journal import (
    DELETE,
    MAGIC,
    UPSERT,
    ReadResult,
    Record,
    fsync_dir,
    journal_format,
    read_framed,
    read_v1,
    truncate,
    write_atomic,
)
from facesocial.store.vector_index import Hit, IndexBatch, VectorIndexError

log = logging.getLogger(__name__)

_NAME = re.compile(r"[A-Za-z0-9_]{1,100}")
_TEMPORARY = re.compile(r"\.(?P<name>[A-Za-z0-9_]{1,100})\.(?P<kind>new|old|dropped|created)")
_META, _SNAPSHOT, _JOURNAL = "meta.json", "snapshot.npz", "journal.bin"
_LOCK_FILE = ".lock"


@dataclass(frozen=True, slots=True)
class LoadIssue:
    """What loading found wrong with one collection, and what it did about it."""

    collection: str
    problem: str
    bytes_dropped: int = 0
    quarantined_as: str | None = None


def _meta_bytes(dimension: int) -> bytes:
    return json.dumps({"dimension": dimension, "partitioned": True}).encode()


def _read_meta(folder: Path) -> tuple[int, bool]:
    """(dimension, whether the collection was written with partitions). Raises _DamagedError."""
    try:
        info = json.loads((folder / _META).read_text())
        dimension = info["dimension"]
        partitioned = info.get("partitioned") is True
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise _DamagedError(f"unreadable {_META}: {exc}") from exc
    if not isinstance(dimension, int) or isinstance(dimension, bool) or dimension < 1:
        raise _DamagedError(f"{_META} gives an invalid dimension {dimension!r}")
    return dimension, partitioned


def _replay(collection: StoredCollection, name: str) -> list[LoadIssue]:
    """Apply the journal; truncate a damaged tail (v2) or convert a v1 journal. Raises _DamagedError."""
    path = collection.journal_path
    if not path.exists():
        write_atomic(path, MAGIC)
        return []
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _DamagedError(f"unreadable {_JOURNAL}: {exc}") from exc
    version = journal_format(data)
    if version is None:
        raise _DamagedError(f"{_JOURNAL} starts with {data[:8]!r}, no journal format (v1, v2 or v3)")
    result: ReadResult = (
        read_v1(data, collection.dimension)
        if version == 1
        else read_framed(data, collection.dimension, version)
    )
    for record in result.records:
        collection.apply(record)
    collection.journal_rows = sum(len(r.ids) for r in result.records)
    issues = []
    dropped = result.size - result.good_end
    if dropped:
        problem = f"{result.problem} journal record at byte {result.good_end} of v{version} journal"
        log.warning(
            "local index: collection %s: %s; replayed %d records, dropped the last %d bytes",
            name,
            problem,
            len(result.records),
            dropped,
        )
        issues.append(LoadIssue(name, problem, dropped))
    if version < 3 or len(data) < len(MAGIC):
        # v1/v2 (or a header-less file) becomes snapshot + empty v3 journal: v3 records must
        # never be appended behind an older magic.
        collection.write_files()
    elif dropped:
        truncate(path, result.good_end)  # later appends must not land after the garbage
        collection.journal_end = result.good_end
    else:
        collection.journal_end = result.good_end
    return issues


class LocalVectorIndex:
    """Exact cosine search over unit-length vectors, one folder per collection, one owner process.

    Raises ``IndexInUseError`` (409) when another process holds ``root``, and
    ``VectorIndexUnavailableError`` (503) when the folder cannot be written. Never raises for a
    damaged collection: see the module docstring, ``damaged`` and ``load_issues``.
    """

    def __init__(self, root: Path, settings: VectorIndexSettings | None = None) -> None:
        self.root = root
        self.settings = settings or VectorIndexSettings()
        self._lock = threading.RLock()
        # Signalled whenever a background graph build ends (wait_for_graphs).
        self._built = threading.Condition(self._lock)
        self._builders: set[threading.Thread] = set()
        self._collections: dict[str, StoredCollection] = {}
        # Collections being rebuilt by replace_collection, and the changes made meanwhile.
        self._rebuilding: dict[str, list[Record]] = {}
        self.load_issues: list[LoadIssue] = []
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise VectorIndexUnavailableError(
                f"The vector index folder {root} cannot be created: {exc}"
            ) from exc
        self._owner: BinaryIO | None = _take_ownership(root)
        try:
            self._settle_temporary_folders()
            for folder in sorted(p for p in self.root.iterdir() if p.is_dir() and _NAME.fullmatch(p.name)):
                self._load(folder)
            with self._lock:
                for name, collection in self._collections.items():
                    self._schedule_graphs(name, collection)
        except OSError as exc:
            self.close()
            raise VectorIndexUnavailableError(f"The vector index in {root} cannot be loaded: {exc}") from exc
        except BaseException:
            self.close()
            raise

    @property
    def damaged(self) -> list[str]:
        """Collections that lost content on load (torn or corrupt journal, quarantined files)."""
        return sorted({issue.collection for issue in self.load_issues})

    # --- loading ---------------------------------------------------------------------------------
    def _settle_temporary_folders(self) -> None:
        found: dict[str, set[str]] = {}
        for path in self.root.iterdir():
            match = _TEMPORARY.fullmatch(path.name)
            if match and path.is_dir():
                found.setdefault(match["name"], set()).add(match["kind"])
        for name, kinds in found.items():
            final, new, old = self.root / name, self.root / f".{name}.new", self.root / f".{name}.old"
            if not final.exists() and "old" in kinds:
                # The crash fell between the swap's two renames: the build was complete.
                chosen = new if "new" in kinds and (new / _META).exists() else old
                os.rename(chosen, final)
                fsync_dir(self.root)
                log.warning("local index: finished an interrupted rebuild of %s (kept %s)", name, chosen.name)
            for kind in ("new", "old", "dropped", "created"):
                shutil.rmtree(self.root / f".{name}.{kind}", ignore_errors=True)

    def _load(self, folder: Path) -> None:
        name = folder.name
        for leftover in folder.glob("*.tmp"):  # an atomic write that never reached its rename
            leftover.unlink(missing_ok=True)
        dimension: int | None = None
        try:
            dimension, partitioned = _read_meta(folder)
            collection = StoredCollection(folder, dimension, self.settings)
            collection.partitioned = partitioned
            if collection.snapshot_path.exists():
                collection.read_snapshot()
            if self.settings.ann:
                for problem in collection.read_graphs():
                    # Derived data: the graph is rebuilt in the background; nothing is lost.
                    log.warning("local index: collection %s: %s; rebuilding its graphs", name, problem)
            self.load_issues.extend(_replay(collection, name))
            if not partitioned and not collection.ids:
                # Empty: nothing was written without partitions, so it counts as partitioned.
                write_atomic(folder / _META, _meta_bytes(dimension))
                collection.partitioned = True
            self._collections[name] = collection
        except _DamagedError as exc:
            if dimension is None and not any(folder.iterdir()):
                # An empty folder with no meta.json: a creation that never completed, not a loss.
                folder.rmdir()
                return
            self._quarantine(folder, dimension, str(exc))

    def _quarantine(self, folder: Path, dimension: int | None, problem: str) -> None:
        name = folder.name
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        target = self.root / f"{name}.corrupt-{stamp}"
        serial = 1
        while target.exists():
            serial += 1
            target = self.root / f"{name}.corrupt-{stamp}-{serial}"
        os.rename(folder, target)
        fsync_dir(self.root)
        log.error(
            "local index: collection %s is damaged (%s); moved to %s and restarted %s",
            name,
            problem,
            target.name,
            "empty" if dimension is not None else "absent (dimension unknown)",
        )
        self.load_issues.append(LoadIssue(name, problem, quarantined_as=target.name))
        if dimension is not None:
            self._collections[name] = self._create(name, dimension)

    def _create(self, name: str, dimension: int) -> StoredCollection:
        """A new empty collection folder, made complete in a temporary folder and renamed in.

        Its own temporary name (not ``.<name>.new``): a rebuild of ``name`` may be writing that.
        """
        staging, final = self.root / f".{name}.created", self.root / name
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        collection = StoredCollection(staging, dimension, self.settings)
        write_atomic(staging / _JOURNAL, MAGIC)
        write_atomic(staging / _META, _meta_bytes(dimension))
        os.rename(staging, final)
        fsync_dir(self.root)
        collection.folder = final
        return collection

    # --- ownership -------------------------------------------------------------------------------
    def close(self) -> None:
        """Release the folder (other processes may open it afterwards); safe to call twice.

        Background graph builds still running finish in their thread and are discarded.
        """
        with self._lock:
            owner, self._owner = self._owner, None
            if owner is not None:
                fcntl.flock(owner.fileno(), fcntl.LOCK_UN)
                owner.close()
            self._built.notify_all()

    def ping(self) -> None:
        """Raise VectorIndexUnavailableError unless the index is open and its folder is there."""
        with self._lock:
            self._check_open()
            if not self.root.is_dir():
                raise VectorIndexUnavailableError(f"The vector index folder {self.root} is gone")

    def _check_open(self) -> None:
        if self._owner is None:
            raise VectorIndexUnavailableError("The vector index is closed")

    @contextmanager
    def _disk(self, action: str) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            log.error("local index: %s failed: %s", action, exc)
            raise VectorIndexUnavailableError(
                f"The vector index cannot write to disk ({exc.strerror or exc})"
            ) from exc

    # --- VectorIndex ----------------------------------------------------------------------------
    def ensure_collection(self, name: str, dimension: int) -> None:
        _check_layout(name, dimension)
        with self._lock:
            self._check_open()
            existing = self._collections.get(name)
            if existing is not None:
                if existing.dimension != dimension:
                    raise VectorIndexError(
                        f"collection {name} has dimension {existing.dimension}, not {dimension}"
                    )
                return
            with self._disk(f"creating collection {name}"):
                self._collections[name] = self._create(name, dimension)

    def _get(self, name: str) -> StoredCollection:
        self._check_open()
        collection = self._collections.get(name)
        if collection is None:
            raise VectorIndexError(f"no collection named {name}")
        return collection

    def _write(self, name: str, collection: StoredCollection, record: Record) -> int:
        """Journal, then apply; a failed append changes nothing (memory never gets ahead of disk)."""
        try:
            with self._disk(f"journal append to {name}"):
                collection.append([record])
        except ValueError as exc:  # an id too long to journal
            raise VectorIndexError(str(exc)) from exc
        changed = collection.apply(record)
        pending = self._rebuilding.get(name)
        if pending is not None:
            pending.append(record)
        collection.maybe_compact()
        # An upsert grows only the partitions it names; a delete can wear any graph. (A graph worn
        # by upserts moving ids to another partition waits for the next delete's full look:
        # tombstones cost search time, never correctness.)
        touched = set(record.partition_list()) if record.vectors is not None else None
        self._schedule_graphs(name, collection, touched)
        return changed

    def upsert(
        self,
        name: str,
        ids: Sequence[str],
        vectors: npt.NDArray[np.float32],
        partitions: Sequence[str] | None = None,
    ) -> None:
        with self._lock:
            collection = self._get(name)
            matrix = np.asarray(vectors, dtype=np.float32)
            if matrix.size != len(ids) * collection.dimension:
                raise VectorIndexError(f"{name} expects {len(ids)} x {collection.dimension}-D vectors")
            if partitions is not None and len(partitions) != len(ids):
                raise VectorIndexError(f"{len(ids)} ids need {len(ids)} partitions, not {len(partitions)}")
            if not ids:
                return
            matrix = matrix.reshape(len(ids), collection.dimension)
            parts = [str(p) for p in partitions] if partitions is not None else None
            self._write(name, collection, Record(UPSERT, list(ids), matrix, parts))

    def delete(self, name: str, ids: Sequence[str]) -> int:
        with self._lock:
            self._check_open()
            collection = self._collections.get(name)
            if collection is None or not ids:
                return 0
            return self._write(name, collection, Record(DELETE, list(ids), None))

    def search(
        self,
        name: str,
        vectors: npt.NDArray[np.float32],
        k: int,
        allowed_ids: Collection[str] | None = None,
        partition: str | None = None,
    ) -> list[list[Hit]]:
        """Top-``k`` hits per query row among ``partition`` (None: all) and ``allowed_ids``.

        Partitions with a graph answer from it (candidates reranked exactly); the others,
        small groups and collections whose graph is still being built are searched exactly.
        """
        queries = np.asarray(vectors, dtype=np.float32)
        queries = queries.reshape(-1, queries.shape[-1])
        with self._lock:
            self._check_open()
            collection = self._collections.get(name)
            if collection is None or not collection.ids or k <= 0:
                return [[] for _ in range(len(queries))]
            # Under the lock: a concurrent delete moves rows around.
            return collection.search(queries, k, allowed_ids, partition)

    def count(self, name: str, partition: str | None = None) -> int:
        with self._lock:
            self._check_open()
            collection = self._collections.get(name)
            if collection is None:
                return 0
            if partition is None:
                return len(collection.ids)
            part = collection.partitions.get(partition)
            return 0 if part is None else part.size

    def needs_partition_rebuild(self, name: str) -> bool:
        """True when ``name`` holds vectors written before partitions existed (rebuild from SQL)."""
        with self._lock:
            self._check_open()
            collection = self._collections.get(name)
            return collection is not None and not collection.partitioned and bool(collection.ids)

    def ids(self, name: str) -> Iterator[str]:
        """Every id in ``name`` (none for an unknown collection), as of this call."""
        with self._lock:
            self._check_open()
            collection = self._collections.get(name)
            return iter(list(collection.ids) if collection is not None else [])

    def drop(self, name: str) -> None:
        with self._lock:
            self._check_open()
            collection = self._collections.get(name)
            if collection is None:
                return
            # Renamed away first, so a crash mid-delete never leaves a half-deleted collection.
            doomed = self.root / f".{name}.dropped"
            with self._disk(f"dropping {name}"):
                shutil.rmtree(doomed, ignore_errors=True)
                os.rename(collection.folder, doomed)
                fsync_dir(self.root)
            del self._collections[name]
            shutil.rmtree(doomed, ignore_errors=True)

    def collections(self) -> list[str]:
        with self._lock:
            self._check_open()
            return sorted(self._collections)

    def replace_collection(
        self,
        name: str,
        dimension: int,
        batches: Iterable[IndexBatch],
    ) -> int:
        """Make ``name`` hold exactly the vectors in ``batches`` (the last of a repeated id wins).

        The new content is built from ``batches`` alone, in memory and in ``.<name>.new``,
        while searches and writes go on against the current content; the swap takes two
        renames under the index lock. Changes made to ``name`` while building are replayed on
        the new content before the swap (they are newer than what ``batches`` was read from).
        Graphs of partitions big enough are built before the swap (in this thread, with
        ``settings.build_threads``), so the new content is fast from its first search.
        Returns the number of vectors. Raises VectorIndexError for a bad batch (the old content
        is then untouched) and VectorIndexUnavailableError when the disk fails.
        """
        _check_layout(name, dimension)
        with self._lock:
            self._check_open()
            if name in self._rebuilding:
                raise VectorIndexError(f"collection {name} is already being replaced")
            self._rebuilding[name] = []
        staging = self.root / f".{name}.new"
        try:
            built = _build(staging, dimension, batches, self.settings)
            built.build_graphs_now()
            with self._disk(f"writing the new content of {name}"):
                shutil.rmtree(staging, ignore_errors=True)
                staging.mkdir()
                built.write_files()
                write_atomic(staging / _META, _meta_bytes(dimension))
            with self._lock:
                self._check_open()
                pending = self._rebuilding.pop(name)
                replayable = [r for r in pending if r.vectors is None or r.vectors.shape[1] == dimension]
                with self._disk(f"swapping in the new content of {name}"):
                    if replayable:
                        built.append(replayable)
                    self._swap(name, staging)
                for record in replayable:
                    built.apply(record)
                built.folder = self.root / name
                self._collections[name] = built
                self._schedule_graphs(name, built)
                shutil.rmtree(self.root / f".{name}.old", ignore_errors=True)
            return len(built.ids)
        except BaseException:
            with self._lock:
                self._rebuilding.pop(name, None)
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def _swap(self, name: str, staging: Path) -> None:
        final, old = self.root / name, self.root / f".{name}.old"
        had_old = final.exists()
        if had_old:
            shutil.rmtree(old, ignore_errors=True)
            os.rename(final, old)
            fsync_dir(self.root)
        try:
            os.rename(staging, final)
            fsync_dir(self.root)
        except OSError:
            if had_old:
                os.rename(old, final)  # put the old content back; the caller reports the failure
                fsync_dir(self.root)
            raise

    # --- beyond the port ------------------------------------------------------------------------
    def compact(self) -> None:
        """Snapshot every collection now (normally done when a journal outgrows its snapshot)."""
        with self._lock:
            self._check_open()
            for name, collection in self._collections.items():
                with self._disk(f"compacting {name}"):
                    collection.write_files()

    # --- graphs (beyond the port) ---------------------------------------------------------------
    def _schedule_graphs(
        self, name: str, collection: StoredCollection, only: Collection[str] | None = None
    ) -> None:
        """Start a background build for each partition that wants a graph (caller holds the lock).

        ``only``: consider these partitions alone (see StoredCollection.graphs_wanted).
        """
        for part in collection.graphs_wanted(only):
            token = object()
            part.building, part.dirty = token, set()
            keys, vectors = collection.graph_input(part)
            thread = threading.Thread(
                target=self._build_graph,
                args=(name, collection, part, token, keys, vectors),
                name=f"index-graph-{name}",
                daemon=True,
            )
            self._builders.add(thread)
            thread.start()

    def _build_graph(
        self,
        name: str,
        collection: StoredCollection,
        part: Partition,
        token: object,
        keys: npt.NDArray[np.int64],
        vectors: npt.NDArray[np.float32],
    ) -> None:
        """Build outside the lock; install under it, after applying the changes made meanwhile."""
        try:
            graph: Graph | None = Graph.build(collection.dimension, self.settings, keys, vectors)
        except Exception:  # searches stay exact (correct); the next write retries
            log.exception("local index: building a graph of %s failed", name)
            graph = None
        with self._lock:
            try:
                current = self._owner is not None and self._collections.get(name) is collection
                if part.building is token:
                    if graph is not None and current:
                        collection.install_graph(part, graph)
                        log.info("local index: %s partition %r graph of %d vectors ready in %.1f s",
                                 name, part.name, graph.size, graph.build_seconds)  # fmt: skip
                    else:
                        part.building, part.dirty = None, set()
            finally:
                self._builders.discard(threading.current_thread())
                self._built.notify_all()

    def wait_for_graphs(self, timeout: float | None = None) -> bool:
        """Block until no graph build runs; False if ``timeout`` seconds passed first."""
        with self._built:
            return self._built.wait_for(lambda: not self._builders, timeout)

    def graph_stats(self, name: str) -> list[dict[str, Any]]:
        """Per partition with a graph: vectors, build seconds, memory bytes."""
        with self._lock:
            return self._get(name).graph_stats()

    def set_expansion_search(self, expansion: int) -> None:
        """Change ef_search of every graph now (tuning recall against latency without a rebuild)."""
        with self._lock:
            self.settings = self.settings.model_copy(update={"expansion_search": expansion})
            for collection in self._collections.values():
                collection.settings = self.settings
                for part in collection.partitions.values():
                    if part.graph is not None:
                        part.graph.index.set_ef(expansion)

    def exact_matrix(self, name: str) -> tuple[list[str], npt.NDArray[np.float32]]:
        """Copies of the ids and matrix of ``name`` (benchmarks compare with exact search)."""
        with self._lock:
            collection = self._get(name)
            return list(collection.ids), collection.matrix.copy()


def _build(
    folder: Path, dimension: int, batches: Iterable[IndexBatch], settings: VectorIndexSettings
) -> StoredCollection:
    """A collection holding ``batches`` (in memory only; ``folder`` is where it will be written)."""
    all_ids: list[str] = []
    all_partitions: list[str] = []
    chunks: list[npt.NDArray[np.float32]] = []
    for ids, vectors, partitions in batches:
        matrix = np.asarray(vectors, dtype=np.float32)
        if matrix.size != len(ids) * dimension:
            raise VectorIndexError(f"a batch of {len(ids)} ids needs {len(ids)} x {dimension}-D vectors")
        if partitions is not None and len(partitions) != len(ids):
            raise VectorIndexError(f"a batch of {len(ids)} ids has {len(partitions)} partitions")
        all_ids.extend(ids)
        all_partitions.extend([str(p) for p in partitions] if partitions is not None else [""] * len(ids))
        chunks.append(matrix.reshape(len(ids), dimension))
    last_row = {face_id: row for row, face_id in enumerate(all_ids)}
    collection = StoredCollection(folder, dimension, settings)
    if chunks:
        matrix = np.concatenate(chunks)
        del chunks[:]  # let the batches go before the rows are picked (memory at 1 M faces)
        if len(last_row) == len(all_ids):  # no repeated id: every row is its id's last
            collection.load_rows(all_ids, matrix, all_partitions)
        else:
            rows = np.fromiter(last_row.values(), dtype=np.int64, count=len(last_row))
            collection.load_rows(list(last_row), matrix[rows], [all_partitions[r] for r in rows])
    return collection


def _take_ownership(root: Path) -> BinaryIO:
    """Lock ``root`` for this process (flock, non-blocking) and record who holds it."""
    path = root / _LOCK_FILE
    try:
        handle = path.open("a+b")
    except OSError as exc:
        raise VectorIndexUnavailableError(f"The vector index lock {path} cannot be opened: {exc}") from exc
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read(512).decode(errors="replace").strip()
        handle.close()
        pid_text, _, command = holder.partition(" ")
        pid = int(pid_text) if pid_text.isdigit() else None
        who = f"process {pid} ({command})" if pid is not None else "another process"
        if pid == os.getpid():
            who = f"this process ({pid}) through another open index"
        raise IndexInUseError(
            f"The local vector index {root} is in use by {who}; "
            "stop it (or run the command through its API) and try again",
            pid=pid,
        ) from None
    except OSError as exc:  # e.g. ENOLCK: a file system without working locks
        handle.close()
        raise VectorIndexUnavailableError(f"The vector index lock {path} cannot be taken: {exc}") from exc
    handle.truncate(0)
    handle.write(f"{os.getpid()} {' '.join(sys.argv)[:400]}\n".encode(errors="replace"))
    handle.flush()
    return handle


def _check_layout(name: str, dimension: int) -> None:
    if not _NAME.fullmatch(name):
        raise VectorIndexError(f"invalid collection name {name!r}")
    if dimension < 1:
        raise VectorIndexError(f"invalid dimension {dimension}")
