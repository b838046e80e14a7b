"""Queries of the face-recognition tables, every one scoped to a tenant.

A tenant (the API key's owner or the JWT subject) sees and changes only its own users, faces and
groups. Anything outside it answers exactly as if it did not exist (404), so the ids of other
tenants can neither be probed nor collide: a client's ``user_id`` is ``core.users.external_id``,
unique per tenant; ``core.users.user_id`` is the internal key that never leaves the server.
Users whose erasure has begun (``deleted_at`` set) are invisible to every read here.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from facesocial import errors
from facesocial.store.tables import FACE_ACTIVE, FaceData, FaceGroup, FaceGroupMember, User


def users_of(tenant_id: uuid.UUID) -> Select[Any]:
    """The tenant's live users (erasures in progress excluded)."""
    return select(User).where(User.tenant_id == tenant_id, User.deleted_at.is_(None))


def find_user(
    session: Session, tenant_id: uuid.UUID, external_id: uuid.UUID, *, with_erasing: bool = False
) -> User | None:
    """The tenant's user named ``external_id``; with ``with_erasing`` also one being erased."""
    query = select(User).where(User.tenant_id == tenant_id, User.external_id == external_id)
    if not with_erasing:
        query = query.where(User.deleted_at.is_(None))
    user: User | None = session.scalar(query)
    return user


def require_user(session: Session, tenant_id: uuid.UUID, external_id: uuid.UUID) -> User:
    """The tenant's user, or ``USER_NOT_FOUND`` (404) — also when another tenant has that id."""
    user = find_user(session, tenant_id, external_id)
    if user is None:
        raise errors.UserNotFoundError(f"No user {external_id}")
    return user


def require_group(session: Session, tenant_id: uuid.UUID, group_id: uuid.UUID) -> FaceGroup:
    group: FaceGroup | None = session.scalar(
        select(FaceGroup).where(FaceGroup.id == group_id, FaceGroup.tenant_id == tenant_id)
    )
    if group is None:
        raise errors.GroupNotFoundError(f"No face group {group_id}")
    return group


def groups_of(tenant_id: uuid.UUID) -> Select[Any]:
    return select(FaceGroup).where(FaceGroup.tenant_id == tenant_id)


def active_faces(session: Session, user_id: uuid.UUID) -> Sequence[Any]:
    """``(id, milvus_collection, embedding)`` of a user's active faces (internal user id)."""
    return session.execute(
        select(FaceData.id, FaceData.milvus_collection, FaceData.embedding).where(
            FaceData.user_id == user_id, FaceData.status == FACE_ACTIVE
        )
    ).all()


def group_face_ids(session: Session, group_id: uuid.UUID, collection: str) -> list[str]:
    """The group's active faces that live in one embedding model's collection."""
    ids = session.scalars(
        select(FaceData.face_id)
        .join(FaceGroupMember, FaceGroupMember.face_id == FaceData.id)
        .where(
            FaceGroupMember.group_id == group_id,
            FaceData.milvus_collection == collection,
            FaceData.status == FACE_ACTIVE,
        )
    ).all()
    return list(ids)


def face_owners(session: Session, tenant_id: uuid.UUID, face_ids: Collection[str]) -> dict[str, uuid.UUID]:
    """``face_id -> external user id`` for the tenant's active faces among ``face_ids``."""
    if not face_ids:
        return {}
    rows = session.execute(
        select(FaceData.face_id, User.external_id)
        .join(User, User.user_id == FaceData.user_id)
        .where(
            FaceData.face_id.in_(list(face_ids)),
            FaceData.status == FACE_ACTIVE,
            FaceData.tenant_id == tenant_id,
            User.deleted_at.is_(None),
        )
    ).all()
    return {face_id: external for face_id, external in rows}


def external_ids(session: Session, user_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
    """``internal user id -> external user id``."""
    if not user_ids:
        return {}
    rows = session.execute(
        select(User.user_id, User.external_id).where(User.user_id.in_(list(user_ids)))
    ).all()
    return {internal: external for internal, external in rows}
