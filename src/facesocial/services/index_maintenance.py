"""Rebuild the vector index from SQL, the source of truth."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import select

from facesocial.store.db import Database
from facesocial.store.tables import FaceData
from facesocial.store.vector_index import VectorIndex

_BATCH = 2000


@dataclass(frozen=True, slots=True)
class RebuildReport:
    collection: str
    vectors: int


def rebuild_index(database: Database, index: VectorIndex) -> list[RebuildReport]:
    """Drop every collection and refill each from ``face_data`` (active faces only)."""
    with database.session() as session:
        layout = session.execute(
            select(FaceData.milvus_collection, FaceData.embedding_dimension).distinct()
        ).all()
    for name in index.collections():
        index.drop(name)
    reports = []
    for collection, dimension in layout:
        index.ensure_collection(collection, dimension)
        total = 0
        with database.session() as session:
            rows = session.execute(
                select(FaceData.face_id, FaceData.embedding)
                .where(FaceData.milvus_collection == collection, FaceData.status == "active")
                .execution_options(yield_per=_BATCH)
            )
            batch_ids: list[str] = []
            batch_vectors: list[np.ndarray] = []
            for face_id, blob in rows:
                batch_ids.append(face_id)
                batch_vectors.append(np.frombuffer(blob, dtype=np.float32))
                if len(batch_ids) == _BATCH:
                    index.upsert(collection, batch_ids, np.stack(batch_vectors))
                    total += len(batch_ids)
                    batch_ids, batch_vectors = [], []
            if batch_ids:
                index.upsert(collection, batch_ids, np.stack(batch_vectors))
                total += len(batch_ids)
        reports.append(RebuildReport(collection, total))
    return reports
