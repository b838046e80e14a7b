"""Known content: features of analysed images and videos with their verdict (``deepfake_features``).

Document 000 §5.1 keeps a 1024-D feature vector per analysed content with ``is_deepfake`` in the
Milvus collection ``deepfake_features``. Here SQL (``deepfake_detection.content_features``) is the
source of truth and the vector index (local or Milvus, whichever the profile uses) the search
structure, as for face embeddings. A search only ever looks at the caller's tenant's fake content
(``allowed_ids`` from SQL), so one tenant never learns of another's uploads, and a vector whose row
is gone (a crash between the two deletes) can never match.

Write order: SQL row, then vector; erase: vector, then row. A vector missing after a crash only
costs a missed match; :meth:`KnownContent.repair` (run at start-up) re-adds such vectors.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from facesocial import errors
from facesocial.store.db import Database
from facesocial.store.tables import ContentFeature, DeepfakeAnalysis
from facesocial.store.vector_index import VectorIndex

log = logging.getLogger(__name__)

COLLECTION = "deepfake_features"
DIMENSION = 1024
# Matches looked at per search: enough to skip near-duplicates that are no longer fake-labelled.
_SEARCH_K = 5


@dataclass(frozen=True, slots=True)
class KnownMatch:
    """Analysed content of this tenant, judged fake, that the new content duplicates."""

    analysis_id: str
    similarity: float  # cosine similarity of the content features, -1..1

    def as_dict(self) -> dict[str, object]:
        return {"analysis_id": self.analysis_id, "similarity": round(self.similarity, 4)}


class KnownContent:
    def __init__(self, database: Database, index: Callable[[], VectorIndex], min_similarity: float) -> None:
        self._db = database
        # Opened on first use: a job worker that never meets a match (or cannot open the
        # embedded profile's local index, which `facesocial serve` owns) still runs its jobs.
        self._open_index = index
        self._min_similarity = min_similarity
        self._ready = False

    @property
    def _index(self) -> VectorIndex:
        return self._open_index()

    def _ensure(self) -> None:
        if not self._ready:
            self._index.ensure_collection(COLLECTION, DIMENSION)
            self._ready = True

    def match(self, tenant_id: uuid.UUID, features: npt.NDArray[np.float32]) -> KnownMatch | None:
        """The most similar fake content of ``tenant_id`` at or above the similarity threshold.

        ``features``: (1024,) unit float32. Returns None when there is none; an index that does
        not answer (``SERVICE_UNAVAILABLE``) is logged and treated as no match, since this signal
        only adds to the detectors' verdict.
        """
        with self._db.session(readonly=True) as session:
            rows = session.execute(
                select(ContentFeature.id, DeepfakeAnalysis.analysis_id)
                .join(DeepfakeAnalysis, DeepfakeAnalysis.id == ContentFeature.analysis_id)
                .where(ContentFeature.tenant_id == tenant_id, ContentFeature.is_deepfake.is_(True))
            ).all()
        if not rows:
            return None
        names = {str(row[0]): str(row[1]) for row in rows}
        try:
            self._ensure()
            hits = self._index.search(COLLECTION, features.reshape(1, -1), _SEARCH_K, allowed_ids=set(names))
        except errors.FaceSocialError as exc:
            log.warning("known-content search skipped: %s", exc.message)
            return None
        for hit in hits[0] if hits else []:
            if hit.id in names and hit.score >= self._min_similarity:
                return KnownMatch(names[hit.id], float(hit.score))
        return None

    def remember(
        self,
        session: Session,
        analysis_pk: uuid.UUID,
        tenant_id: uuid.UUID,
        content_hash: str,
        features: npt.NDArray[np.float32],
        is_deepfake: bool,
    ) -> uuid.UUID:
        """Add the SQL row to ``session`` (committed by the caller); call :meth:`index` after it."""
        row = ContentFeature(
            id=uuid.uuid4(),
            analysis_id=analysis_pk,
            tenant_id=tenant_id,
            content_hash=content_hash,
            features=np.ascontiguousarray(features, dtype=np.float32).tobytes(),
            is_deepfake=is_deepfake,
        )
        session.add(row)
        return row.id

    def index(self, feature_id: uuid.UUID, features: npt.NDArray[np.float32]) -> None:
        """Store the vector of a committed row; a failure is repaired by :meth:`repair` later."""
        try:
            self._ensure()
            self._index.upsert(COLLECTION, [str(feature_id)], features.reshape(1, -1).astype(np.float32))
        except errors.FaceSocialError as exc:
            log.warning("content feature %s not indexed yet: %s", feature_id, exc.message)

    def forget(self, analysis_pk: uuid.UUID) -> None:
        """Erase the vectors and then the rows of one analysis."""
        with self._db.session(readonly=True) as session:
            ids = [
                str(i)
                for i in session.scalars(
                    select(ContentFeature.id).where(ContentFeature.analysis_id == analysis_pk)
                )
            ]
        if ids:
            try:
                self._ensure()
                self._index.delete(COLLECTION, ids)
            except errors.FaceSocialError as exc:
                # The rows go anyway: a vector without its row never matches (searches only
                # look at ids from SQL) and repair() drops it.
                log.warning("content vectors of %s left for repair: %s", analysis_pk, exc.message)
        with self._db.session() as session:
            session.execute(delete(ContentFeature).where(ContentFeature.analysis_id == analysis_pk))

    def repair(self) -> int:
        """Index rows whose vector is missing; drop vectors without a row. Returns vectors changed.

        Raises the index's errors (SERVICE_UNAVAILABLE, INDEX_IN_USE) when it cannot be reached.
        """
        self._ensure()
        present = set(self._index.ids(COLLECTION))
        with self._db.session(readonly=True) as session:
            rows = session.execute(select(ContentFeature.id, ContentFeature.features)).all()
        wanted = {str(row[0]): row[1] for row in rows}
        missing = [key for key in wanted if key not in present]
        for start in range(0, len(missing), 256):
            chunk = missing[start : start + 256]
            vectors = np.stack([np.frombuffer(wanted[key], dtype=np.float32) for key in chunk])
            self._index.upsert(COLLECTION, chunk, vectors)
        orphans = [key for key in present if key not in wanted]
        if orphans:
            self._index.delete(COLLECTION, orphans)
        return len(missing) + len(orphans)
