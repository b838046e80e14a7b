"""The one write path for face data: SQL and the vector index, in a fixed order.

A registration answered 200 must be stored in both stores, and an erasure answered 200 must
leave nothing in either. Neither store can take part in the other's transaction, so every
write is split into steps whose order makes each intermediate state recognisable, and
``services/reconcile.py`` repairs whatever a crash leaves between two steps:

Enrolment (``face_data.status``: pending → active)
  1. SQL: the user (created if new) and the face row with status ``pending``; commit.
  2. Vector index: upsert the embedding.
  3. SQL: status ``active`` (only if still pending); commit. Only now is the answer 200.
  A crash after 1 or 2 leaves a pending row (and perhaps its vector): invisible to every read
  and rolled back by the reconciler once older than its grace period. A failure of the index in
  step 2 undoes step 1 at once and answers 503.

Erasure (the user's ``deleted_at`` set, faces → ``deleting``)
  1. SQL: mark the user and all their faces; commit. From here every read ignores them.
  2. Vector index: delete the user's vectors in every collection.
  3. SQL: delete the faces, memberships, recognition sessions and the user; commit. 200.
  A crash or an index failure after 1 leaves marked rows whose erasure the next request for that
  user, or the reconciler, finishes. The vectors always go before the rows, so no vector can
  outlive the row that would let a reconciler find it (orphans are caught too, see reconcile).

Writes of one user hold that user's lock (store/user_locks.py) from the first read to the last
write, so a registration racing an erasure of the same user runs wholly before or after it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from facesocial import errors
from facesocial.services.face_cache import FaceCache
from facesocial.services.groups import add_faces_to_group, refresh_face_count
from facesocial.store import recognition_repository as repo
from facesocial.store.db import Database
from facesocial.store.tables import (
    FACE_ACTIVE,
    FACE_DELETING,
    FACE_PENDING,
    FaceData,
    FaceGroup,
    FaceGroupMember,
    RecognitionSession,
    User,
)
from facesocial.store.types import utcnow
from facesocial.store.user_locks import UserLocks
from facesocial.store.vector_index import VectorIndex

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class NewFace:
    """One face to enrol: its embedding (unit-length float32, 1-D) and what SQL keeps about it."""

    face_id: uuid.UUID
    collection: str
    embedding: npt.NDArray[np.float32]
    model_tag: str
    image_hash: str | None = None
    quality_score: float | None = None
    landmarks: Any = None
    attributes: Any = None
    chip: bytes | None = None
    registration_source: str | None = None
    ip_address: str | None = None


@dataclass(frozen=True, slots=True)
class Erasure:
    user_id: uuid.UUID  # internal
    faces_removed: int
    vectors_removed: int
    sessions_removed: int


class FaceWriter:
    """Enrols and erases faces in SQL and the vector index in the documented order."""

    def __init__(self, database: Database, index: VectorIndex, locks: UserLocks, cache: FaceCache) -> None:
        self._db = database
        self._index = index
        self._locks = locks
        self._cache = cache

    # --- enrolment --------------------------------------------------------------------------------
    def enroll(
        self,
        tenant_id: uuid.UUID,
        external_id: uuid.UUID,
        face: NewFace,
        *,
        group_id: uuid.UUID | None = None,
        companions: Sequence[NewFace] = (),
    ) -> uuid.UUID:
        """Store one face of the tenant's user (created on first enrolment); the internal user id.

        ``companions``: the same face embedded by other models (dual enrolment while several
        face_embedding versions serve, services/recognition.py), one per other collection; they
        go through the same three steps with ``face`` (all pending, all vectors, all active),
        so the answer names them only when every one is stored.

        Raises ``GROUP_NOT_FOUND`` (404) if ``group_id`` is not the tenant's, ``SERVICE_UNAVAILABLE``
        (503) when a store fails (nothing is left half-written), ``SERVER_BUSY`` (503) when the
        user's lock is held too long by another writer.
        """
        with self._locks.hold(tenant_id, external_id):
            stale = self._erasing_user(tenant_id, external_id)
            if stale is not None:
                # An erasure of this id was interrupted: finish it before the id is reused.
                self.finish_erasure(stale)
            faces = [face, *companions]
            user_id = self._insert_pending(tenant_id, external_id, face, group_id)
            for companion in companions:
                self._insert_pending(tenant_id, external_id, companion, group_id)
            written: list[NewFace] = []
            try:
                for each in faces:
                    self._write_vector(each, tenant_id)  # discards its own pending row on failure
                    written.append(each)
            except Exception:
                self._undo_enrolment(faces, written)
                raise
            if not all([self._activate(each.face_id) for each in faces]):
                # The reconciler rolled a row back (it outlived its grace period): undo ours.
                self._delete_vectors(_by_collection(faces))
                with self._db.session() as session:
                    delete_face_rows(session, [each.face_id for each in faces])
                    drop_faceless_users(session, [user_id])
                raise errors.ServiceUnavailableError("The registration took too long and was rolled back")
        self._cache.drop(user_id)
        return user_id

    def _undo_enrolment(self, faces: list[NewFace], written: list[NewFace]) -> None:
        """A vector write failed mid-enrolment (that face's pending row is already discarded):
        remove the vectors written before it and every other pending row of the enrolment.
        What cannot be removed now, the reconciler rolls back (pending rows past their grace)."""
        try:
            self._delete_vectors(_by_collection(written))
        except Exception:
            log.warning("vectors of a failed enrolment left for the reconciler", exc_info=True)
        failed = len(written)  # the face whose vector write raised
        for index, each in enumerate(faces):
            if index != failed:
                self._discard_pending(each)

    def add_face(self, user_id: uuid.UUID, face: NewFace) -> None:
        """Enrol one more face of an existing user, by internal id (gallery migration)."""
        with self._db.session() as session:
            user = session.scalar(select(User).where(User.user_id == user_id, User.deleted_at.is_(None)))
            if user is None:
                raise errors.UserNotFoundError(f"No user {user_id}")
            tenant_id, external_id = user.tenant_id, user.external_id
            groups = session.scalars(
                select(FaceGroupMember.group_id)
                .join(FaceData, FaceData.id == FaceGroupMember.face_id)
                .where(FaceData.user_id == user_id)
                .distinct()
            ).all()
        with self._locks.hold(tenant_id, external_id):
            self._insert_pending(tenant_id, external_id, face, None, also_groups=list(groups))
            self._write_vector(face, tenant_id)
            self._activate(face.face_id)
        self._cache.drop(user_id)

    def _erasing_user(self, tenant_id: uuid.UUID, external_id: uuid.UUID) -> uuid.UUID | None:
        with self._db.session() as session:
            user = repo.find_user(session, tenant_id, external_id, with_erasing=True)
            return user.user_id if user is not None and user.deleted_at is not None else None

    def _insert_pending(
        self,
        tenant_id: uuid.UUID,
        external_id: uuid.UUID,
        face: NewFace,
        group_id: uuid.UUID | None,
        also_groups: list[uuid.UUID] | None = None,
    ) -> uuid.UUID:
        try:
            with self._db.session() as session:
                if group_id is not None:
                    repo.require_group(session, tenant_id, group_id)
                user = repo.find_user(session, tenant_id, external_id)
                now = utcnow()
                if user is None:
                    user = User(
                        user_id=uuid.uuid4(),
                        external_id=external_id,
                        tenant_id=tenant_id,
                        face_id=face.face_id,
                        consent_given=True,
                        consent_timestamp=now,
                    )
                    session.add(user)
                else:
                    user.consent_given, user.consent_timestamp = True, now
                    user.face_id = user.face_id or face.face_id
                session.flush()
                session.add(_face_row(user.user_id, tenant_id, face))
                session.flush()
                for group in [*(also_groups or []), *([group_id] if group_id else [])]:
                    add_faces_to_group(session, group, [face.face_id])
                return user.user_id
        except IntegrityError as exc:
            # Only a group deleted between the check and the insert can get here: the user's lock
            # rules out every race on the user itself.
            raise errors.GroupNotFoundError(f"No face group {group_id}") from exc

    def _write_vector(self, face: NewFace, tenant_id: uuid.UUID) -> None:
        try:
            # The tenant is the vector's partition: a tenant's searches never see another's faces.
            self._index.upsert(
                face.collection, [str(face.face_id)], face.embedding[None, :], partitions=[str(tenant_id)]
            )
        except Exception:
            self._discard_pending(face)
            raise

    def _discard_pending(self, face: NewFace) -> None:
        """Undo step 1 after the index failed; what cannot be undone now the reconciler undoes."""
        try:
            with self._db.session() as session:
                owner = session.scalar(select(FaceData.user_id).where(FaceData.id == face.face_id))
                delete_face_rows(session, [face.face_id])
                if owner is not None:
                    drop_faceless_users(session, [owner])
        except Exception:
            log.warning("pending face %s left for the reconciler to roll back", face.face_id, exc_info=True)

    def _activate(self, face_id: uuid.UUID) -> bool:
        with self._db.session() as session:
            result = session.execute(
                update(FaceData)
                .where(FaceData.id == face_id, FaceData.status == FACE_PENDING)
                .values(status=FACE_ACTIVE, updated_at=utcnow())
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    # --- erasure ----------------------------------------------------------------------------------
    def erase(self, tenant_id: uuid.UUID, external_id: uuid.UUID) -> Erasure:
        """GDPR erasure of the tenant's user: rows, kept chips, memberships, sessions, vectors.

        Raises ``USER_NOT_FOUND`` (404) for an id the tenant does not have (an erasure that was
        interrupted is found, and finished), ``SERVICE_UNAVAILABLE`` (503) when a store fails: the
        user is then already invisible and the erasure completes on retry or by the reconciler.
        """
        with self._locks.hold(tenant_id, external_id):
            with self._db.session() as session:
                user = repo.find_user(session, tenant_id, external_id, with_erasing=True)
                if user is None:
                    raise errors.UserNotFoundError(f"No user {external_id}")
                user.deleted_at = user.deleted_at or utcnow()
                session.execute(
                    update(FaceData).where(FaceData.user_id == user.user_id).values(status=FACE_DELETING)
                )
                user_id = user.user_id
            erasure = self.finish_erasure(user_id)
        return erasure

    def finish_erasure(self, user_id: uuid.UUID) -> Erasure:
        """Steps 2 and 3 of an erasure whose step 1 is committed; idempotent."""
        with self._db.session() as session:
            faces = session.execute(
                select(FaceData.id, FaceData.milvus_collection).where(FaceData.user_id == user_id)
            ).all()
        by_collection: dict[str, list[str]] = {}
        for face_id, collection in faces:
            by_collection.setdefault(collection, []).append(str(face_id))
        removed_vectors = self._delete_vectors(by_collection)
        self._cache.drop(user_id)
        face_ids = [face_id for face_id, _ in faces]
        with self._db.session() as session:
            sessions_removed = session.execute(
                delete(RecognitionSession).where(
                    (RecognitionSession.user_id == user_id) | RecognitionSession.matched_face_id.in_(face_ids)
                )
            ).rowcount  # type: ignore[attr-defined]
            delete_face_rows(session, face_ids)
            session.execute(update(FaceGroup).where(FaceGroup.user_id == user_id).values(user_id=None))
            session.execute(delete(User).where(User.user_id == user_id))
        self._cache.drop(user_id)
        return Erasure(user_id, len(face_ids), removed_vectors, int(sessions_removed or 0))

    def _delete_vectors(self, by_collection: dict[str, list[str]]) -> int:
        return sum(self._index.delete(name, ids) for name, ids in by_collection.items() if ids)


def _by_collection(faces: Sequence[NewFace]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for face in faces:
        out.setdefault(face.collection, []).append(str(face.face_id))
    return out


def _face_row(user_id: uuid.UUID, tenant_id: uuid.UUID, face: NewFace) -> FaceData:
    return FaceData(
        id=face.face_id,
        user_id=user_id,
        tenant_id=tenant_id,
        face_id=str(face.face_id),
        status=FACE_PENDING,
        image_hash=face.image_hash,
        face_quality_score=face.quality_score,
        face_landmarks=face.landmarks,
        face_attributes=face.attributes,
        embedding_version=face.model_tag,
        embedding_dimension=int(face.embedding.shape[0]),
        milvus_collection=face.collection,
        embedding=np.asarray(face.embedding, dtype=np.float32).tobytes(),
        face_chip=face.chip,
        registration_source=face.registration_source,
        ip_address=face.ip_address,
    )


def delete_face_rows(session: Session, face_ids: list[uuid.UUID]) -> None:
    """Delete faces with their group memberships, keeping each group's face count right."""
    if not face_ids:
        return
    groups = set(
        session.scalars(select(FaceGroupMember.group_id).where(FaceGroupMember.face_id.in_(face_ids))).all()
    )
    session.execute(delete(FaceGroupMember).where(FaceGroupMember.face_id.in_(face_ids)))
    # recognition_sessions.matched_face_id is ON DELETE SET NULL.
    session.execute(delete(FaceData).where(FaceData.id.in_(face_ids)))
    for group_id in groups:
        refresh_face_count(session, group_id)


def drop_faceless_users(session: Session, user_ids: list[uuid.UUID]) -> None:
    """Delete users a rolled-back registration created: every enrolled user has a face."""
    if not user_ids:
        return
    with_faces = select(FaceData.user_id).where(FaceData.user_id.in_(user_ids))
    session.execute(delete(User).where(User.user_id.in_(user_ids), User.user_id.not_in(with_faces)))
