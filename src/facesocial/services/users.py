"""Enrolled users: look-up and GDPR erasure."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, select, update

from facesocial.services.face_cache import FaceCache
from facesocial.services.groups import refresh_face_count
from facesocial.services.outcome import Outcome
from facesocial.services.principal import Principal
from facesocial.services.tenancy import require_user
from facesocial.store.db import Database
from facesocial.store.tables import FaceData, FaceGroup, FaceGroupMember, RecognitionSession
from facesocial.store.vector_index import VectorIndex


class UserService:
    def __init__(self, database: Database, index: VectorIndex, cache: FaceCache) -> None:
        self._db = database
        self._index = index
        self._cache = cache

    def get(self, user_id: uuid.UUID, *, caller: Principal) -> dict[str, Any]:
        with self._db.session() as session:
            user = require_user(session, user_id, caller)
            faces = session.scalars(
                select(FaceData).where(FaceData.user_id == user_id).order_by(FaceData.created_at)
            ).all()
            return {
                "user_id": str(user_id),
                "consent_given": user.consent_given,
                "consent_timestamp": user.consent_timestamp.isoformat() if user.consent_timestamp else None,
                "created_at": user.created_at.isoformat(),
                "faces": [
                    {
                        "face_id": str(f.id),
                        "status": f.status,
                        "quality": f.face_quality_score,
                        "embedding_model": f.embedding_version,
                        "collection": f.milvus_collection,
                        "chip_kept": f.face_chip is not None,
                        "created_at": f.created_at.isoformat(),
                    }
                    for f in faces
                ],
            }

    def erase(self, user_id: uuid.UUID, *, caller: Principal) -> Outcome:
        """GDPR erasure: rows, kept chips, cache entries, and vectors in every collection.

        The erasure itself stays on record in audit.ai_operations_log (operation erase_user).
        """
        with self._db.session() as session:
            user = require_user(session, user_id, caller)
            faces = session.execute(
                select(FaceData.id, FaceData.milvus_collection).where(FaceData.user_id == user_id)
            ).all()
            face_ids = [face_id for face_id, _ in faces]
            groups = session.scalars(
                select(FaceGroupMember.group_id).where(FaceGroupMember.face_id.in_(face_ids))
            ).all()
            session.execute(delete(FaceGroupMember).where(FaceGroupMember.face_id.in_(face_ids)))
            sessions_removed = session.execute(
                delete(RecognitionSession).where(
                    (RecognitionSession.user_id == user_id) | RecognitionSession.matched_face_id.in_(face_ids)
                )
            ).rowcount  # type: ignore[attr-defined]
            session.execute(delete(FaceData).where(FaceData.user_id == user_id))
            session.execute(update(FaceGroup).where(FaceGroup.user_id == user_id).values(user_id=None))
            session.delete(user)
            session.flush()
            for group_id in set(groups):
                refresh_face_count(session, group_id)
        self._cache.drop(user_id)
        by_collection: dict[str, list[str]] = {}
        for face_id, collection in faces:
            by_collection.setdefault(collection, []).append(str(face_id))
        vectors_removed = sum(self._index.delete(name, ids) for name, ids in by_collection.items())
        body = {
            "user_id": str(user_id),
            "erased": True,
            "faces_removed": len(face_ids),
            "vectors_removed": vectors_removed,
            "recognition_sessions_removed": int(sessions_removed or 0),
        }
        return Outcome(body, user_id=user_id)
