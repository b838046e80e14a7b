"""Face groups of one tenant: named sets of enrolled people that scope identification."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from facesocial import errors
from facesocial.services.principal import Principal
from facesocial.store import recognition_repository as repo
from facesocial.store.db import Database
from facesocial.store.tables import FACE_ACTIVE, FaceData, FaceGroup, FaceGroupMember, User
from facesocial.store.tables_compat import REKOGNITION_SOURCE, RekognitionCollection
from facesocial.store.types import utcnow

if TYPE_CHECKING:  # face_writes imports this module's helpers
    from facesocial.services.face_writes import FaceWriter


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


class GroupService:
    def __init__(self, database: Database, writer: FaceWriter) -> None:
        self._db = database
        self._writer = writer

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
            owner_user = repo.require_user(session, caller.tenant_id, owner) if owner is not None else None
            group = FaceGroup(
                group_name=name,
                description=description,
                privacy_level=privacy_level,
                user_id=owner_user.user_id if owner_user else None,
                tenant_id=caller.tenant_id,
            )
            session.add(group)
            session.flush()
            return _group_dict(group, owner)

    def list(self, *, caller: Principal) -> list[dict[str, Any]]:
        with self._db.session(readonly=True) as session:
            groups = session.scalars(repo.groups_of(caller.tenant_id).order_by(FaceGroup.created_at)).all()
            owners = repo.external_ids(session, {g.user_id for g in groups if g.user_id})
            return [_group_dict(g, owners.get(g.user_id) if g.user_id else None) for g in groups]

    def get(self, group_id: uuid.UUID, *, caller: Principal) -> dict[str, Any]:
        with self._db.session(readonly=True) as session:
            return self._describe(session, repo.require_group(session, caller.tenant_id, group_id))

    def _describe(self, session: Session, group: FaceGroup) -> dict[str, Any]:
        session.refresh(group)  # face_count may have been updated by a bulk statement
        rows = session.execute(
            select(User.external_id, FaceData.id)
            .join(FaceGroupMember, FaceGroupMember.face_id == FaceData.id)
            .join(User, User.user_id == FaceData.user_id)
            .where(
                FaceGroupMember.group_id == group.id,
                FaceData.status == FACE_ACTIVE,
                User.deleted_at.is_(None),
            )
            .order_by(FaceGroupMember.created_at)
        )
        members: dict[str, list[str]] = {}
        for owner, face_id in rows:
            members.setdefault(str(owner), []).append(str(face_id))
        owner_id = repo.external_ids(session, {group.user_id}).get(group.user_id) if group.user_id else None
        return {
            **_group_dict(group, owner_id),
            "members": [{"user_id": u, "face_ids": f} for u, f in members.items()],
        }

    def delete(self, group_id: uuid.UUID, *, caller: Principal) -> None:
        """Delete the group; its members keep their faces. Except the faces Rekognition's
        IndexFaces enrolled into the group when it is a Rekognition collection: they exist only
        as members of that collection, so they are erased with it (GDPR erase path), whichever
        API deletes the group (DeleteCollection or ``DELETE /groups/{id}``; docs/rekognition.md).

        An enrolment into the group racing the deletion either commits its membership first
        (PostgreSQL: the group row is locked ``FOR UPDATE``, which waits for the membership's
        foreign-key lock; SQLite: writers are serialised) and its face is erased here, or finds
        the group gone (``GROUP_NOT_FOUND``); no face of the collection outlives it. The owners
        are marked as being erased in the same transaction that deletes the group, so a crash
        before their erasure finishes leaves them to the reconciler, never active and groupless.
        """
        indexed: list[uuid.UUID] = []
        with self._db.session() as session:
            group = session.scalar(
                select(FaceGroup)
                .where(FaceGroup.id == group_id, FaceGroup.tenant_id == caller.tenant_id)
                .with_for_update()
            )
            if group is None:
                raise errors.GroupNotFoundError(f"No face group {group_id}")
            collection = select(RekognitionCollection.id).where(RekognitionCollection.group_id == group_id)
            if session.scalar(collection) is not None:
                indexed = list(
                    session.scalars(
                        select(User.external_id)
                        .join(FaceData, FaceData.user_id == User.user_id)
                        .join(FaceGroupMember, FaceGroupMember.face_id == FaceData.id)
                        .where(
                            FaceGroupMember.group_id == group_id,
                            FaceData.registration_source == REKOGNITION_SOURCE,
                            User.tenant_id == caller.tenant_id,
                        )
                        .distinct()
                    )
                )
                if indexed:
                    session.execute(
                        update(User)
                        .where(
                            User.tenant_id == caller.tenant_id,
                            User.external_id.in_(indexed),
                            User.deleted_at.is_(None),
                        )
                        .values(deleted_at=utcnow())
                    )
            session.execute(delete(FaceGroupMember).where(FaceGroupMember.group_id == group_id))
            session.delete(group)
        for external_id in indexed:
            # Erased meanwhile by another request (DeleteFaces, another deletion): done already.
            with contextlib.suppress(errors.UserNotFoundError):
                self._writer.erase(caller.tenant_id, external_id)

    def add_members(
        self, group_id: uuid.UUID, user_ids: Sequence[uuid.UUID], *, caller: Principal
    ) -> dict[str, Any]:
        """Add every active face of each of the caller's users ``user_ids``."""
        with self._db.session() as session:
            group = repo.require_group(session, caller.tenant_id, group_id)
            face_ids: list[uuid.UUID] = []
            for user_id in user_ids:
                user = repo.require_user(session, caller.tenant_id, user_id)
                found = [face_id for face_id, _, _ in repo.active_faces(session, user.user_id)]
                if not found:
                    raise errors.UserNotFoundError(f"User {user_id} has no enrolled face")
                face_ids.extend(found)
            add_faces_to_group(session, group_id, face_ids)
            return self._describe(session, group)

    def remove_member(self, group_id: uuid.UUID, user_id: uuid.UUID, *, caller: Principal) -> dict[str, Any]:
        with self._db.session() as session:
            group = repo.require_group(session, caller.tenant_id, group_id)
            user = repo.find_user(session, caller.tenant_id, user_id)
            removed = 0
            if user is not None:
                face_ids = select(FaceData.id).where(FaceData.user_id == user.user_id).scalar_subquery()
                removed = session.execute(
                    delete(FaceGroupMember).where(
                        FaceGroupMember.group_id == group_id, FaceGroupMember.face_id.in_(face_ids)
                    )
                ).rowcount  # type: ignore[attr-defined]
            if not removed:
                raise errors.UserNotFoundError(f"User {user_id} is not a member of group {group_id}")
            refresh_face_count(session, group_id)
            return self._describe(session, group)


def _group_dict(group: FaceGroup, owner: uuid.UUID | None) -> dict[str, Any]:
    return {
        "group_id": str(group.id),
        "group_name": group.group_name,
        "description": group.description,
        "privacy_level": group.privacy_level,
        "owner_user_id": str(owner) if owner else None,
        "face_count": group.face_count,
        "created_at": group.created_at.isoformat(),
    }
