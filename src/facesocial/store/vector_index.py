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


class VectorIndexError(Exception):
    """Misuse of an index (unknown collection, wrong dimension): a programming error."""


@dataclass(frozen=True, slots=True)
class Hit:
    id: str
    score: float  # cosine similarity


class VectorIndex(Protocol):
    def ensure_collection(self, name: str, dimension: int) -> None:
        """Create ``name`` for ``dimension``-D vectors, or check an existing one has that dimension."""
        ...

    def upsert(self, name: str, ids: Sequence[str], vectors: npt.NDArray[np.float32]) -> None:
        """Store (len(ids), dimension) ``vectors`` under ``ids``; a repeated id keeps its last vector."""
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
    ) -> list[list[Hit]]:
        """Top-``k`` hits per query row, best first, optionally only among ``allowed_ids``."""
        ...

    def count(self, name: str) -> int:
        """Vectors in ``name`` (0 for an unknown collection)."""
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
        batches: Iterable[tuple[Sequence[str], npt.NDArray[np.float32]]],
    ) -> int:
        """Make ``name`` hold exactly the vectors of ``batches``, built without reading the old content.

        ``batches`` yields (ids, (len(ids), dimension) vectors) and is consumed once; a repeated id
        keeps its last vector. Searches keep answering from the old content until the new one is
        switched in at once; a failure or crash leaves the old content or the new one, never a mix.
        Creates ``name`` if absent; the dimension may differ from the old one. Returns the
        number of vectors stored.
        """
        ...

    def ping(self) -> None:
        """Return if the index answers; raise VectorIndexUnavailableError otherwise. Cheap."""
        ...

    def close(self) -> None:
        """Release connections and locks; safe to call twice."""
        ...
