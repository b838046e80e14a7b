"""The names the compatibility APIs give to platform objects, schema ``compat``.

* ``compreface_subjects``: a CompreFace subject's name in its tenant (unique per tenant), and the
  enrolled person it names (``core.users.user_id``, ON DELETE CASCADE: erasing the person removes
  the subject; NULL while a subject made by ``POST /subjects`` has no example yet).
* ``rekognition_collections``: a Rekognition ``CollectionId`` made by CreateCollection, unique per
  tenant, and the face group it is (ON DELETE CASCADE: deleting the group frees the name).

Both unique constraints are what makes two concurrent creations (or a creation and a rename) of
one name end with exactly one winner on every backend and across server processes.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from facesocial.store.tables import Base
from facesocial.store.types import TimestampTZ, utcnow

SCHEMA = "compat"
# face_data.registration_source of the faces Rekognition's IndexFaces enrols: they belong to the
# collection they were indexed into and are erased with it (services/groups.py).
REKOGNITION_SOURCE = "rekognition"


class CompreFaceSubject(Base):
    __tablename__ = "compreface_subjects"
    __table_args__ = (
        UniqueConstraint("tenant_id", "subject"),
        UniqueConstraint("user_id"),
        {"schema": SCHEMA},
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    subject: Mapped[str] = mapped_column(String(255), nullable=False)
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("core.users.user_id", ondelete="CASCADE"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(TimestampTZ, default=utcnow, nullable=False)


class RekognitionCollection(Base):
    __tablename__ = "rekognition_collections"
    __table_args__ = (
        UniqueConstraint("tenant_id", "collection_id"),
        UniqueConstraint("group_id"),
        {"schema": SCHEMA},
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    collection_id: Mapped[str] = mapped_column(String(255), nullable=False)
    group_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("face_recognition.face_groups.id", ondelete="CASCADE"), nullable=False
    )
    created_at: Mapped[datetime] = mapped_column(TimestampTZ, default=utcnow, nullable=False)
