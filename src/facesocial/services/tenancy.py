"""Tenant isolation: a caller sees and changes only the users, faces and groups it created.

Admins see every tenant. Anything outside the caller's tenant answers exactly as if it did
not exist (404), so ids of other tenants cannot be probed.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from facesocial import errors
from facesocial.services.principal import Principal
from facesocial.store.tables import FaceData, FaceGroup, User

# Internal callers (CLI maintenance) act for every tenant.
SYSTEM = Principal(kind="api_key", role="admin", tenant_id=uuid.UUID(int=0), name="system")


def scoped_users(caller: Principal) -> Select[Any]:
    query = select(User)
    return query if caller.is_admin else query.where(User.tenant_id == caller.tenant_id)


def scoped_groups(caller: Principal) -> Select[Any]:
    query = select(FaceGroup)
    return query if caller.is_admin else query.where(FaceGroup.tenant_id == caller.tenant_id)


def require_user(session: Session, user_id: uuid.UUID, caller: Principal) -> User:
    user: User | None = session.scalar(scoped_users(caller).where(User.user_id == user_id))
    if user is None:
        raise errors.UserNotFoundError(f"No user {user_id}")
    return user


def require_group(session: Session, group_id: uuid.UUID, caller: Principal) -> FaceGroup:
    group: FaceGroup | None = session.scalar(scoped_groups(caller).where(FaceGroup.id == group_id))
    if group is None:
        raise errors.GroupNotFoundError(f"No face group {group_id}")
    return group


def visible_face_ids(session: Session, caller: Principal, collection: str) -> list[str] | None:
    """Face ids the caller may match against in one collection; None = no restriction."""
    if caller.is_admin:
        return None
    ids = session.scalars(
        select(FaceData.face_id)
        .join(User, User.user_id == FaceData.user_id)
        .where(
            User.tenant_id == caller.tenant_id,
            FaceData.milvus_collection == collection,
            FaceData.status == "active",
        )
    ).all()
    return list(ids)
