"""CompreFace subjects and example images on the platform's users and faces.

A CompreFace *subject* is a user of the API key's tenant; an *example* (``image_id``) is one of
that user's enrolled faces (``face_recognition.face_data.id``). A subject's name maps onto the
user id deterministically: a name that is itself a canonical UUID is that user id (so users
enrolled through ``/api/v1/face-recognition`` appear as subjects named by their id), any other
name is ``uuid5(SUBJECT_NAMESPACE, name)``. The name itself is kept on the user row
(``core.users.privacy_settings["compreface_subject"]``) so that lists and matches can show it.

The platform keeps no person without a face (an enrolment that is rolled back drops the user),
so a subject exists while it has at least one example.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Collection, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

from sqlalchemy import func, select, update

from facesocial import errors
from facesocial.services.face_cache import FaceCache
from facesocial.services.face_writes import delete_face_rows, drop_faceless_users
from facesocial.store import recognition_repository as repo
from facesocial.store.db import Database
from facesocial.store.tables import FACE_ACTIVE, FACE_DELETING, FaceData, User
from facesocial.store.user_locks import UserLocks
from facesocial.store.vector_index import VectorIndex

# Fixed forever: changing it would rename every stored subject's user id.
SUBJECT_NAMESPACE = uuid.UUID("8d0f5a52-3c1e-5b7e-9f3a-c0de0f0ace01")
SUBJECT_KEY = "compreface_subject"
MAX_SUBJECT_LENGTH = 255


class SubjectNotFoundError(errors.FaceSocialError):
    code: ClassVar[str] = "SUBJECT_NOT_FOUND"
    status: ClassVar[int] = 404
    default_message: ClassVar[str] = "No such subject"


class SubjectAlreadyExistsError(errors.FaceSocialError):
    code: ClassVar[str] = "SUBJECT_ALREADY_EXISTS"
    status: ClassVar[int] = 400
    default_message: ClassVar[str] = "The subject already exists"


class ImageNotFoundError(errors.FaceSocialError):
    code: ClassVar[str] = "IMAGE_NOT_FOUND"
    status: ClassVar[int] = 404
    default_message: ClassVar[str] = "No example image has this id"


def check_subject(name: str | None, field: str = "subject") -> str:
    """The subject name stripped, or ``VALIDATION_ERROR`` naming ``field``.

    Refused: absent or blank, longer than 255 characters, control characters (Unicode Cc).
    """
    text = (name or "").strip()
    if not text:
        raise errors.ValidationFailedError(f"{field} is required", fields=[field])
    if len(text) > MAX_SUBJECT_LENGTH:
        raise errors.ValidationFailedError(
            f"{field} is longer than {MAX_SUBJECT_LENGTH} characters", fields=[field]
        )
    if any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in text):
        raise errors.ValidationFailedError(f"{field} holds control characters", fields=[field])
    return text


def subject_user_id(name: str) -> uuid.UUID:
    """The tenant-side user id (``core.users.external_id``) of a subject name.

    >>> str(subject_user_id("6f1c3c52-3f0e-4d55-9a57-1f6a3c0e2b11"))
    '6f1c3c52-3f0e-4d55-9a57-1f6a3c0e2b11'
    """
    try:
        parsed = uuid.UUID(name)
    except ValueError:
        return uuid.uuid5(SUBJECT_NAMESPACE, name)
    return parsed if str(parsed) == name else uuid.uuid5(SUBJECT_NAMESPACE, name)


def _name_of(user: User) -> str:
    settings = user.privacy_settings or {}
    stored = settings.get(SUBJECT_KEY) if isinstance(settings, dict) else None
    return stored if isinstance(stored, str) else str(user.external_id)


@dataclass(frozen=True, slots=True)
class Example:
    image_id: uuid.UUID
    subject: str


class SubjectStore:
    """Reads and writes of subjects and examples, always within one tenant."""

    def __init__(self, database: Database, index: VectorIndex, locks: UserLocks, cache: FaceCache) -> None:
        self._db = database
        self._index = index
        self._locks = locks
        self._cache = cache

    # --- names --------------------------------------------------------------------------------
    def remember(self, tenant_id: uuid.UUID, name: str) -> None:
        """Store ``name`` on its user (after an enrolment); a UUID name needs no storing."""
        external = subject_user_id(name)
        if str(external) == name:
            return
        with self._db.session() as session:
            user = repo.find_user(session, tenant_id, external)
            if user is not None and _name_of(user) != name:
                user.privacy_settings = {**(user.privacy_settings or {}), SUBJECT_KEY: name}

    def names(self, tenant_id: uuid.UUID, external_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, str]:
        """``external user id -> subject name`` for the tenant's live users among ``external_ids``."""
        if not external_ids:
            return {}
        with self._db.session(readonly=True) as session:
            users = session.scalars(
                repo.users_of(tenant_id).where(User.external_id.in_(list(external_ids)))
            ).all()
            return {user.external_id: _name_of(user) for user in users}

    def subjects(self, tenant_id: uuid.UUID) -> list[str]:
        """Every subject of the tenant (users with at least one face), by creation time."""
        with self._db.session(readonly=True) as session:
            users = session.scalars(repo.users_of(tenant_id).order_by(User.created_at, User.id)).all()
            return [_name_of(user) for user in users]

    def exists(self, tenant_id: uuid.UUID, name: str) -> bool:
        with self._db.session(readonly=True) as session:
            return repo.find_user(session, tenant_id, subject_user_id(name)) is not None

    # --- examples -----------------------------------------------------------------------------
    def examples(
        self, tenant_id: uuid.UUID, collection: str, *, subject: str | None, page: int, size: int
    ) -> dict[str, Any]:
        """One page of the tenant's examples in ``collection`` (CompreFace's list shape)."""
        query = (
            select(FaceData.id, User)
            .join(User, User.user_id == FaceData.user_id)
            .where(
                FaceData.tenant_id == tenant_id,
                FaceData.status == FACE_ACTIVE,
                FaceData.milvus_collection == collection,
                User.deleted_at.is_(None),
            )
        )
        if subject is not None:
            query = query.where(User.external_id == subject_user_id(subject))
        with self._db.session(readonly=True) as session:
            total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
            rows = session.execute(
                query.order_by(FaceData.created_at, FaceData.id).offset(page * size).limit(size)
            ).all()
            faces = [{"image_id": str(face_id), "subject": _name_of(user)} for face_id, user in rows]
        return {
            "faces": faces,
            "page_number": page,
            "page_size": size,
            "total_pages": math.ceil(total / size),
            "total_elements": total,
        }

    def example(self, tenant_id: uuid.UUID, image_id: uuid.UUID) -> tuple[FaceData, str]:
        """The tenant's active face ``image_id`` with its subject, or ``IMAGE_NOT_FOUND`` (404)."""
        with self._db.session(readonly=True) as session:
            row = session.execute(
                select(FaceData, User)
                .join(User, User.user_id == FaceData.user_id)
                .where(
                    FaceData.id == image_id,
                    FaceData.tenant_id == tenant_id,
                    FaceData.status == FACE_ACTIVE,
                    User.deleted_at.is_(None),
                )
            ).first()
            if row is None:
                raise ImageNotFoundError(f"No example image {image_id}")
            face, user = row
            session.expunge(face)
            return face, _name_of(user)

    def count_examples(self, tenant_id: uuid.UUID, collection: str, subject: str | None) -> int:
        return int(self.examples(tenant_id, collection, subject=subject, page=0, size=1)["total_elements"])

    def delete_example(self, tenant_id: uuid.UUID, image_id: uuid.UUID) -> Example:
        """Delete one example: its row, vector and the companion rows of the same image (dual
        enrolment, other embedding models); the subject goes with its last example."""
        face, name = self.example(tenant_id, image_id)
        with self._db.session(readonly=True) as session:
            external = repo.external_ids(session, [face.user_id])[face.user_id]
        with self._locks.hold(tenant_id, external):
            with self._db.session() as session:
                same_image = session.execute(
                    select(FaceData.id, FaceData.milvus_collection).where(
                        FaceData.user_id == face.user_id,
                        FaceData.status == FACE_ACTIVE,
                        # Companions: the same photo embedded by another model (another collection).
                        (FaceData.id == face.id)
                        | (
                            (FaceData.image_hash == face.image_hash)
                            & (FaceData.milvus_collection != face.milvus_collection)
                        ),
                    )
                ).all()
                ids = [face_id for face_id, _ in same_image]
                # Invisible first (as an erasure does): a failure below leaves no half-deleted face.
                session.execute(update(FaceData).where(FaceData.id.in_(ids)).values(status=FACE_DELETING))
            by_collection: dict[str, list[str]] = {}
            for face_id, collection in same_image:
                by_collection.setdefault(collection, []).append(str(face_id))
            for collection, face_ids in by_collection.items():
                self._index.delete(collection, face_ids)
            self._cache.drop(face.user_id)
            with self._db.session() as session:
                delete_face_rows(session, ids)
                drop_faceless_users(session, [face.user_id])
            self._cache.drop(face.user_id)
        return Example(image_id, name)

    # --- renaming -----------------------------------------------------------------------------
    def rename(self, tenant_id: uuid.UUID, old: str, new: str) -> bool:
        """CompreFace's rename: the user takes the new name; if that subject exists, the old
        subject's faces move to it and the old subject is removed. ``SUBJECT_NOT_FOUND`` for an
        unknown ``old``; False when the names are the same."""
        if old == new:
            if not self.exists(tenant_id, old):
                raise SubjectNotFoundError(f"No subject {old!r}")
            return False
        source_id, target_id = subject_user_id(old), subject_user_id(new)
        with self._hold(tenant_id, [source_id, target_id]), self._db.session() as session:
            source = repo.find_user(session, tenant_id, source_id)
            if source is None:
                raise SubjectNotFoundError(f"No subject {old!r}")
            target = repo.find_user(session, tenant_id, target_id)
            if target is None:
                source.external_id = target_id
                settings = {k: v for k, v in (source.privacy_settings or {}).items() if k != SUBJECT_KEY}
                if str(target_id) != new:
                    settings[SUBJECT_KEY] = new
                source.privacy_settings = settings
                moved_from = source.user_id
                moved_to = source.user_id
            else:
                # Faces are found through SQL (face_owners), so moving the rows moves the matches.
                session.execute(
                    update(FaceData).where(FaceData.user_id == source.user_id).values(user_id=target.user_id)
                )
                session.flush()
                session.delete(source)
                moved_from, moved_to = source.user_id, target.user_id
        self._cache.drop(moved_from)
        self._cache.drop(moved_to)
        return True

    @contextmanager
    def _hold(self, tenant_id: uuid.UUID, external_ids: list[uuid.UUID]) -> Iterator[None]:
        # Always in the same order, so two renames in opposite directions cannot deadlock.
        with ExitStack() as stack:
            for external in sorted(set(external_ids)):
                stack.enter_context(self._locks.hold(tenant_id, external))
            yield
