"""The vector-index port: cosine search over unit-length float32 rows, per collection.

A collection holds the embeddings of exactly one model (its name says which model and
dimension), so vectors of different models are never compared. SQL is the source of truth;
an index can always be refilled from it (``replace_collection``) and compared with it (``ids``).

Errors: ``VectorIndexError`` for misuse (unknown collection, wrong dimension, bad id: a
programming error); ``facesocial.errors.VectorIndexUnavailableError`` (SERVICE_UNAVAILABLE,
503) when the index cannot answer (Milvus unreachable or timing out, the local index's disk
failing); ``facesocial.errors.IndexInUseError`` (INDEX_IN_USE, 409) from the local index's
constructor when another process owns its folder.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

# (ids, (len(ids), dimension) float32 vectors, each id's partition or None for "" throughout)
IndexBatch = tuple[Sequence[str], npt.NDArray[np.float32], Sequence[str] | None]


class VectorIndexError(Exception):
    """Misuse of an index (unknown collection, wrong dimension): a programming error."""


@dataclass(frozen=True, slots=True)
class Hit:
    id: str
    score: float  # cosine similarity


def best_first(scores: npt.NDArray[np.float32], k: int) -> npt.NDArray[np.intp]:
    """Indices of the ``k`` highest of 1-D ``scores`` (all when fewer), highest first; equal
    scores keep their order. Exact top-k for both adapters' exact searches."""
    top = min(k, len(scores))
    if top <= 0:
        return np.zeros(0, dtype=np.intp)
    best = np.argpartition(-scores, top - 1)[:top]
    return best[np.argsort(-scores[best], kind="stable")]


class VectorIndex(Protocol):
    def ensure_collection(self, name: str, dimension: int) -> None:
        """Create ``name`` for ``dimension``-D vectors, or check an existing one has that dimension."""
        ...

    def upsert(
        self,
        name: str,
        ids: Sequence[str],
        vectors: npt.NDArray[np.float32],
        partitions: Sequence[str] | None = None,
    ) -> None:
        """Store (len(ids), dimension) ``vectors`` under ``ids``; a repeated id keeps its last vector.

        ``partitions`` gives each id's partition (face collections: the tenant id as text);
        None puts every id in partition ``""``. A repeated upsert of an id may move it.
        """
        ...

    def delete(self, name: str, ids: Sequence[str]) -> int:
        """Remove ``ids``; returns how many were present. Unknown ids and collections count 0."""
        ...

    def search(
        self,
        name: str,
        vectors: npt.NDArray[np.float32],
        k: int,
        allowed_ids: Collection[str] | None = None,
        partition: str | None = None,
    ) -> list[list[Hit]]:
        """Top-``k`` hits per query row, best first.

        Only vectors of ``partition`` when given (None: every partition), narrowed further to
        ``allowed_ids`` when given (a group). Scores are exact cosine similarities.
        """
        ...

    def count(self, name: str, partition: str | None = None) -> int:
        """Vectors in ``name``, or in one of its partitions (0 for an unknown collection)."""
        ...

    def needs_partition_rebuild(self, name: str) -> bool:
        """True when ``name`` holds vectors an older version wrote without partitions.

        Such a face collection must be rebuilt from SQL (services/index_maintenance.py) before
        partitioned searches can find its faces.
        """
        ...

    def ids(self, name: str) -> Iterator[str]:
        """Every id stored in ``name`` (none for an unknown collection), each once, in no order."""
        ...

    def drop(self, name: str) -> None:
        """Delete ``name`` and its vectors; dropping an unknown collection is a no-op."""
        ...

    def collections(self) -> list[str]:
        """The names of this application's collections, sorted."""
        ...

    def replace_collection(
        self,
        name: str,
        dimension: int,
        batches: Iterable[IndexBatch],
    ) -> int:
        """Make ``name`` hold exactly the vectors of ``batches``, built without reading the old content.

        ``batches`` yields (ids, (len(ids), dimension) vectors, partitions or None) and is consumed
        once; a repeated id keeps its last vector and partition. Searches keep answering from
        the old content until the new one is switched in at once; a failure or crash leaves the
        old content or the new one, never a mix. Creates ``name`` if absent; the dimension may
        differ from the old one. Returns the number of vectors stored.
        """
        ...

    def ping(self) -> None:
        """Return if the index answers; raise VectorIndexUnavailableError otherwise. Cheap."""
        ...

    def close(self) -> None:
        """Release connections and locks; safe to call twice."""
        ...
