"""CompreFace subjects and example images on the platform's users and faces.

A CompreFace *subject* is a user of the API key's tenant; an *example* (``image_id``) is one of
that user's enrolled faces (``face_recognition.face_data.id``). A subject's name maps onto the
user id deterministically: a name that is itself a canonical UUID is that user id (so users
enrolled through ``/api/v1/face-recognition`` appear as subjects named by their id), any other
name is ``uuid5(SUBJECT_NAMESPACE, name)``. The name itself is a row of
``compat.compreface_subjects`` (unique per tenant; its ``user_id`` references the user ON DELETE
CASCADE, so erasing the user removes the subject), which lists and matches show; a user without
a row (enrolled through ``/api/v1``) is named by its id.

The platform keeps no person without a face (an enrolment that is rolled back drops the user),
so a subject with examples goes with its last one. ``POST /subjects`` makes a row without a user:
a subject with no example yet, which its first example (``POST /faces``) takes.

Uniqueness is the database's: the row's unique (tenant, subject) makes two concurrent creations
of one name end with one winner and one ``SUBJECT_ALREADY_EXISTS`` (CompreFace's code 43), also
across server processes; a rename moves the name and the user's id in one transaction.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Collection, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from facesocial import errors
from facesocial.services.face_cache import FaceCache
from facesocial.services.face_writes import delete_face_rows, drop_faceless_users
from facesocial.store import recognition_repository as repo
from facesocial.store.db import Database
from facesocial.store.tables import FACE_ACTIVE, FACE_DELETING, FaceData, User
from facesocial.store.tables_compat import CompreFaceSubject
from facesocial.store.user_locks import UserLocks
from facesocial.store.vector_index import VectorIndex

# Fixed forever: changing it would rename every stored subject's user id.
SUBJECT_NAMESPACE = uuid.UUID("8d0f5a52-3c1e-5b7e-9f3a-c0de0f0ace01")
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


def _name(external_id: uuid.UUID, subject: str | None) -> str:
    return subject if subject is not None else str(external_id)


def _row(
    session: Session, tenant_id: uuid.UUID, name: str, *, for_update: bool = False
) -> CompreFaceSubject | None:
    """The tenant's row named ``name``. ``for_update``: locked until the transaction ends
    (PostgreSQL ``SELECT ... FOR UPDATE``; SQLite's writers are serialised anyway), so a
    concurrent ``DELETE /subjects`` or rename either ends before the read (the row is not
    found, or found under its new name) or waits for this transaction: the write that follows
    never meets a row that vanished meanwhile."""
    query = select(CompreFaceSubject).where(
        CompreFaceSubject.tenant_id == tenant_id, CompreFaceSubject.subject == name
    )
    row: CompreFaceSubject | None = session.scalar(query.with_for_update() if for_update else query)
    return row


def _named_users(tenant_id: uuid.UUID) -> Select[Any]:
    """``(User, subject name or None)`` of the tenant's live users."""
    return (
        repo.users_of(tenant_id)
        .add_columns(CompreFaceSubject.subject)
        .outerjoin(CompreFaceSubject, CompreFaceSubject.user_id == User.user_id)
    )


def _active_examples(face: Any, tenant_id: uuid.UUID) -> Select[Any]:
    """``(face, the user's external id, subject name or None)`` of the tenant's active faces of
    live users; ``face`` is what to select of the face row (the entity or a column)."""
    return (
        select(face, User.external_id, CompreFaceSubject.subject)
        .join(User, User.user_id == FaceData.user_id)
        .outerjoin(CompreFaceSubject, CompreFaceSubject.user_id == User.user_id)
        .where(FaceData.tenant_id == tenant_id, FaceData.status == FACE_ACTIVE, User.deleted_at.is_(None))
    )


def _reserved(session: Session, tenant_id: uuid.UUID) -> dict[uuid.UUID, str]:
    """``user id -> name`` of the tenant's rows without a user yet (``POST /subjects``, or a
    first example being enrolled: ``SubjectStore.reserve``)."""
    bare = session.scalars(
        select(CompreFaceSubject.subject).where(
            CompreFaceSubject.tenant_id == tenant_id, CompreFaceSubject.user_id.is_(None)
        )
    )
    return {subject_user_id(name): name for name in bare}


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
    def create(self, tenant_id: uuid.UUID, name: str) -> None:
        """``POST /subjects``: a subject without examples; ``SUBJECT_ALREADY_EXISTS`` when the
        tenant has the name (a row, or a user of that id), also when another request gives it at
        the same moment (the unique row decides)."""
        taken = SubjectAlreadyExistsError(f"Subject {name!r} already exists")
        try:
            with self._db.session() as session:
                if repo.find_user(session, tenant_id, subject_user_id(name), with_erasing=True) is not None:
                    raise taken
                if _row(session, tenant_id, name) is not None:
                    raise taken
                session.add(CompreFaceSubject(tenant_id=tenant_id, subject=name, user_id=None))
                session.flush()
        except IntegrityError:
            raise taken from None

    def remember(self, tenant_id: uuid.UUID, name: str) -> None:
        """After an enrolment: the subject's row names its user (a row ``POST /subjects`` made is
        taken over); a UUID name needs no row (the user is named by its id)."""
        external = subject_user_id(name)
        for _attempt in range(3):
            try:
                with self._db.session() as session:
                    user = repo.find_user(session, tenant_id, external)
                    if user is None:
                        return  # erased meanwhile
                    row = _row(session, tenant_id, name, for_update=True)
                    if row is not None:
                        if row.user_id is None:
                            row.user_id = user.user_id
                        return
                    if str(external) == name:
                        return
                    session.add(CompreFaceSubject(tenant_id=tenant_id, subject=name, user_id=user.user_id))
                    session.flush()
                    return
            except IntegrityError:
                continue  # another request wrote the row first: read it again
        raise SubjectAlreadyExistsError(f"Subject {name!r} already exists")

    def forget(self, tenant_id: uuid.UUID, name: str) -> bool:
        """Delete a subject that has no example (``POST /subjects`` only); False if there is none."""
        with self._db.session() as session:
            removed = session.execute(
                delete(CompreFaceSubject).where(
                    CompreFaceSubject.tenant_id == tenant_id,
                    CompreFaceSubject.subject == name,
                    CompreFaceSubject.user_id.is_(None),
                )
            )
            return bool(getattr(removed, "rowcount", 0))

    def reserve(self, tenant_id: uuid.UUID, name: str) -> bool:
        """Before a first example's enrolment: the subject's row (without a user yet), so the
        user the enrolment creates is named from its first moment (``names``, ``subjects``)
        rather than by its id until ``remember`` links the row. True when this call made the
        row (``release`` it if the enrolment fails); False when the name has a row already or
        needs none (a UUID name)."""
        if str(subject_user_id(name)) == name:
            return False
        try:
            with self._db.session() as session:
                if _row(session, tenant_id, name) is not None:
                    return False
                session.add(CompreFaceSubject(tenant_id=tenant_id, subject=name, user_id=None))
                session.flush()
        except IntegrityError:
            return False  # another request made it at the same moment
        return True

    def release(self, tenant_id: uuid.UUID, name: str) -> None:
        """Undo ``reserve`` after a failed enrolment (only a row that still names no user)."""
        self.forget(tenant_id, name)

    def names(self, tenant_id: uuid.UUID, external_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, str]:
        """``external user id -> subject name`` for the tenant's live users among ``external_ids``
        (a user that is gone, e.g. erased meanwhile, is not in the answer)."""
        if not external_ids:
            return {}
        with self._db.session(readonly=True) as session:
            rows = session.execute(_named_users(tenant_id).where(User.external_id.in_(list(external_ids))))
            named = [(user.external_id, subject) for user, subject in rows]
            reserved = _reserved(session, tenant_id) if any(s is None for _, s in named) else {}
        return {external: subject or reserved.get(external) or str(external) for external, subject in named}

    def subjects(self, tenant_id: uuid.UUID) -> list[str]:
        """Every subject of the tenant (users with at least one face, and subjects without an
        example yet), by creation time."""
        with self._db.session(readonly=True) as session:
            users = [
                (user.created_at, user.external_id, subject)
                for user, subject in session.execute(_named_users(tenant_id))
            ]
            bare = session.execute(
                select(CompreFaceSubject.created_at, CompreFaceSubject.subject).where(
                    CompreFaceSubject.tenant_id == tenant_id, CompreFaceSubject.user_id.is_(None)
                )
            ).all()
        reserved = {subject_user_id(name): name for _, name in bare}
        named = [(at, subject or reserved.get(external) or str(external)) for at, external, subject in users]
        # A reserved row whose user exists already (``remember`` not run yet) is that user's name.
        taken = {external for _, external, subject in users if subject is None}
        pending = [(at, name) for at, name in bare if subject_user_id(name) not in taken]
        return [name for _, name in sorted([*named, *pending], key=lambda p: p[0])]

    def exists(self, tenant_id: uuid.UUID, name: str) -> bool:
        with self._db.session(readonly=True) as session:
            return (
                repo.find_user(session, tenant_id, subject_user_id(name)) is not None
                or _row(session, tenant_id, name) is not None
            )

    # --- examples -----------------------------------------------------------------------------
    def examples(
        self, tenant_id: uuid.UUID, collection: str, *, subject: str | None, page: int, size: int
    ) -> dict[str, Any]:
        """One page of the tenant's examples in ``collection`` (CompreFace's list shape)."""
        query = _active_examples(FaceData.id, tenant_id).where(FaceData.milvus_collection == collection)
        if subject is not None:
            query = query.where(User.external_id == subject_user_id(subject))
        with self._db.session(readonly=True) as session:
            total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
            rows = session.execute(
                query.order_by(FaceData.created_at, FaceData.id).offset(page * size).limit(size)
            ).all()
            faces = [
                {"image_id": str(face_id), "subject": _name(external, subject)}
                for face_id, external, subject in rows
            ]
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
            query = _active_examples(FaceData, tenant_id).where(FaceData.id == image_id)
            row = session.execute(query).first()
            if row is None:
                raise ImageNotFoundError(f"No example image {image_id}")
            face, external, subject = row
            session.expunge(face)
            return face, _name(external, subject)

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
        subject's faces move to it and the old subject is removed (merge). One transaction
        moves the name and the user's id; ``SUBJECT_NOT_FOUND`` for an unknown ``old``,
        ``SUBJECT_ALREADY_EXISTS`` when another request took ``new`` at the same moment (the
        unique row decides); False when the names are the same."""
        if old == new:
            if not self.exists(tenant_id, old):
                raise SubjectNotFoundError(f"No subject {old!r}")
            return False
        source_id, target_id = subject_user_id(old), subject_user_id(new)
        moved: list[uuid.UUID] = []
        try:
            with self._hold(tenant_id, [source_id, target_id]), self._db.session() as session:
                moved = self._rename(session, tenant_id, old, new)
        except IntegrityError:
            raise SubjectAlreadyExistsError(f"Subject {new!r} already exists") from None
        for user_id in moved:
            self._cache.drop(user_id)
        return True

    def _rename(self, session: Session, tenant_id: uuid.UUID, old: str, new: str) -> list[uuid.UUID]:
        """The rename's writes; the users whose cached faces changed."""
        # The users are held by their advisory locks (_hold); the name rows are locked here:
        # ``DELETE /subjects`` of a subject without examples and the first example taking a
        # row over (``remember``) do not hold the user's lock.
        source = repo.find_user(session, tenant_id, subject_user_id(old))
        source_row = _row(session, tenant_id, old, for_update=True)
        if source is None and (source_row is None or source_row.user_id is not None):
            raise SubjectNotFoundError(f"No subject {old!r}")
        target = repo.find_user(session, tenant_id, subject_user_id(new))
        target_row = _row(session, tenant_id, new, for_update=True)
        if source is None:
            # A subject without examples: renamed, or merged into ``new`` (nothing to move).
            assert source_row is not None
            if target is not None or target_row is not None:
                session.delete(source_row)
            else:
                source_row.subject = new
            session.flush()
            return []
        if target is None:
            if target_row is not None:  # ``new`` exists without examples: the faces make it whole
                session.delete(target_row)
                session.flush()
            source.external_id = subject_user_id(new)
            if source_row is None:
                session.add(CompreFaceSubject(tenant_id=tenant_id, subject=new, user_id=source.user_id))
            else:
                # (a row reserved by a first example not linked yet is linked here)
                source_row.subject, source_row.user_id = new, source.user_id
            session.flush()
            return [source.user_id]
        # Faces are found through SQL (face_owners), so moving the rows moves the matches.
        session.execute(
            update(FaceData).where(FaceData.user_id == source.user_id).values(user_id=target.user_id)
        )
        if source_row is not None:
            session.delete(source_row)
        session.flush()
        session.delete(source)
        session.flush()
        return [source.user_id, target.user_id]

    @contextmanager
    def _hold(self, tenant_id: uuid.UUID, external_ids: list[uuid.UUID]) -> Iterator[None]:
        # Always in the same order, so two renames in opposite directions cannot deadlock.
        with ExitStack() as stack:
            for external in sorted(set(external_ids)):
                stack.enter_context(self._locks.hold(tenant_id, external))
            yield
