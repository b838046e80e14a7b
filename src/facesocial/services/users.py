"""Enrolled users of one tenant: look-up and GDPR erasure."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from facesocial.services.face_writes import FaceWriter
from facesocial.services.outcome import Outcome
from facesocial.services.principal import Principal
from facesocial.store import recognition_repository as repo
from facesocial.store.db import Database
from facesocial.store.tables import FaceData


class UserService:
    def __init__(self, database: Database, writer: FaceWriter) -> None:
        self._db = database
        self._writer = writer

    def get(self, user_id: uuid.UUID, *, caller: Principal) -> dict[str, Any]:
        """Consent and the faces of the caller's user ``user_id`` (``USER_NOT_FOUND`` otherwise)."""
        with self._db.session(readonly=True) as session:
            user = repo.require_user(session, caller.tenant_id, user_id)
            faces = session.scalars(
                select(FaceData).where(FaceData.user_id == user.user_id).order_by(FaceData.created_at)
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
                        "quality": None if f.face_quality_score is None else round(f.face_quality_score, 4),
                        "embedding_model": _model_ref(f.embedding_version),
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
        erased = self._writer.erase(caller.tenant_id, user_id)
        body = {
            "user_id": str(user_id),
            "erased": True,
            "faces_removed": erased.faces_removed,
            "vectors_removed": erased.vectors_removed,
            "recognition_sessions_removed": erased.sessions_removed,
        }
        return Outcome(body, user_id=user_id)  # the audit log keeps the tenant's own id


def _model_ref(tag: str) -> dict[str, str]:
    """``name@version`` (face_data.embedding_version) as the other routes show a model."""
    name, _, version = tag.partition("@")
    return {"name": name, "version": version}
