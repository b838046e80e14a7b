"""The vector-index port: cosine search over unit-length float32 rows, per collection.

A collection holds the embeddings of exactly one model (its name says which model and
dimension), so vectors of different models are never compared.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
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
    def ensure_collection(self, name: str, dimension: int) -> None: ...

    def upsert(self, name: str, ids: Sequence[str], vectors: npt.NDArray[np.float32]) -> None: ...

    def delete(self, name: str, ids: Sequence[str]) -> int: ...

    def search(
        self,
        name: str,
        vectors: npt.NDArray[np.float32],
        k: int,
        allowed_ids: Collection[str] | None = None,
    ) -> list[list[Hit]]: ...

    def count(self, name: str) -> int: ...

    def drop(self, name: str) -> None: ...

    def collections(self) -> list[str]: ...
