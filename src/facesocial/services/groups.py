"""Face groups: named sets of enrolled faces that scope identification."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from facesocial import errors
from facesocial.services.principal import Principal
from facesocial.services.tenancy import require_group, require_user, scoped_groups
from facesocial.store.db import Database
from facesocial.store.tables import FaceData, FaceGroup, FaceGroupMember


def add_faces_to_group(session: Session, group_id: uuid.UUID, face_ids: Sequence[uuid.UUID]) -> None:
    existing = set(
        session.scalars(select(FaceGroupMember.face_id).where(FaceGroupMember.group_id == group_id)).all()
    )
    for face_id in face_ids:
        if face_id not in existing:
            session.add(FaceGroupMember(group_id=group_id, face_id=face_id))
            existing.add(face_id)
    session.flush()
    refresh_face_count(session, group_id)


def refresh_face_count(session: Session, group_id: uuid.UUID) -> None:
    count = session.scalar(
        select(func.count()).select_from(FaceGroupMember).where(FaceGroupMember.group_id == group_id)
    )
    session.execute(update(FaceGroup).where(FaceGroup.id == group_id).values(face_count=int(count or 0)))


def group_face_ids(session: Session, group_id: uuid.UUID, collection: str) -> list[str]:
    """The group's faces that live in one embedding model's collection."""
    ids = session.scalars(
        select(FaceData.face_id)
        .join(FaceGroupMember, FaceGroupMember.face_id == FaceData.id)
        .where(FaceGroupMember.group_id == group_id, FaceData.milvus_collection == collection)
    ).all()
    return list(ids)


class GroupService:
    def __init__(self, database: Database) -> None:
        self._db = database

    def create(
        self,
        name: str,
        *,
        caller: Principal,
        description: str | None = None,
        privacy_level: str = "private",
        owner: uuid.UUID | None = None,
    ) -> dict[str, Any]:
        with self._db.session() as session:
            if owner is not None:
                require_user(session, owner, caller)
            group = FaceGroup(
                group_name=name,
                description=description,
                privacy_level=privacy_level,
                user_id=owner,
                tenant_id=caller.tenant_id,
            )
            session.add(group)
            session.flush()
            return _group_dict(group)

    def list(self, *, caller: Principal) -> list[dict[str, Any]]:
        with self._db.session() as session:
            groups = session.scalars(scoped_groups(caller).order_by(FaceGroup.created_at)).all()
            return [_group_dict(g) for g in groups]

    def get(self, group_id: uuid.UUID, *, caller: Principal) -> dict[str, Any]:
        with self._db.session() as session:
            group = require_group(session, group_id, caller)
            rows = session.execute(
                select(FaceData.user_id, FaceData.id)
                .join(FaceGroupMember, FaceGroupMember.face_id == FaceData.id)
                .where(FaceGroupMember.group_id == group_id)
                .order_by(FaceGroupMember.created_at)
            )
            members: dict[str, list[str]] = {}
            for owner, face_id in rows:
                members.setdefault(str(owner), []).append(str(face_id))
            return {
                **_group_dict(group),
                "members": [{"user_id": u, "face_ids": f} for u, f in members.items()],
            }

    def delete(self, group_id: uuid.UUID, *, caller: Principal) -> None:
        with self._db.session() as session:
            group = require_group(session, group_id, caller)
            session.execute(delete(FaceGroupMember).where(FaceGroupMember.group_id == group_id))
            session.delete(group)

    def add_members(
        self, group_id: uuid.UUID, user_ids: Sequence[uuid.UUID], *, caller: Principal
    ) -> dict[str, Any]:
        """Add every active face of each user (users must be visible to the caller)."""
        with self._db.session() as session:
            require_group(session, group_id, caller)
            face_ids: list[uuid.UUID] = []
            for user_id in user_ids:
                require_user(session, user_id, caller)
                found = session.scalars(
                    select(FaceData.id).where(FaceData.user_id == user_id, FaceData.status == "active")
                ).all()
                if not found:
                    raise errors.UserNotFoundError(f"User {user_id} has no enrolled face")
                face_ids.extend(found)
            add_faces_to_group(session, group_id, face_ids)
        return self.get(group_id, caller=caller)

    def remove_member(self, group_id: uuid.UUID, user_id: uuid.UUID, *, caller: Principal) -> dict[str, Any]:
        with self._db.session() as session:
            require_group(session, group_id, caller)
            face_ids = select(FaceData.id).where(FaceData.user_id == user_id).scalar_subquery()
            removed = session.execute(
                delete(FaceGroupMember).where(
                    FaceGroupMember.group_id == group_id, FaceGroupMember.face_id.in_(face_ids)
                )
            ).rowcount  # type: ignore[attr-defined]
            if not removed:
                raise errors.UserNotFoundError(f"User {user_id} is not a member of group {group_id}")
            refresh_face_count(session, group_id)
        return self.get(group_id, caller=caller)


def _group_dict(group: FaceGroup) -> dict[str, Any]:
    return {
        "group_id": str(group.id),
        "group_name": group.group_name,
        "description": group.description,
        "privacy_level": group.privacy_level,
        "owner_user_id": str(group.user_id) if group.user_id else None,
        "face_count": group.face_count,
        "created_at": group.created_at.isoformat(),
    }
