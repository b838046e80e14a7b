"""The detection metadata document (document 003's MongoDB ``detection_metadata``) behind a port.

Document 003 keeps this nested document in MongoDB. No MongoDB server is part of this stack, and
the document must become durable together with the relational rows of its result, so the
adapter here stores it as one JSON value (JSONB on PostgreSQL) in ``ai_detection.detection_metadata``,
written in the caller's session: the result, its method rows, this document and the report
images commit or vanish together. A document-store adapter would implement the same protocol.
"""

from __future__ import annotations

import uuid
from typing import Any, Protocol

from sqlalchemy import delete
from sqlalchemy.orm import Session

from facesocial.store.tables import DetectionMetadata
from facesocial.store.types import utcnow


class DetectionMetadataStore(Protocol):
    """Put, get and delete one JSON-ready document per result id.

    ``session`` is the caller's unit of work: an adapter whose store can join it writes there;
    one that cannot must write after the caller's commit and tolerate a missing document on read.
    """

    def put(self, session: Session, result_id: uuid.UUID, document: dict[str, Any]) -> None: ...

    def get(self, session: Session, result_id: uuid.UUID) -> dict[str, Any] | None: ...

    def delete(self, session: Session, result_id: uuid.UUID) -> None: ...


class SqlDetectionMetadataStore:
    """The document as a JSON(B) row keyed by ``result_id`` (cascades with its result)."""

    def put(self, session: Session, result_id: uuid.UUID, document: dict[str, Any]) -> None:
        row = session.get(DetectionMetadata, result_id)
        if row is None:
            session.add(DetectionMetadata(result_id=result_id, document=document))
        else:
            row.document = document
            row.updated_at = utcnow()

    def get(self, session: Session, result_id: uuid.UUID) -> dict[str, Any] | None:
        row = session.get(DetectionMetadata, result_id)
        return dict(row.document) if row is not None else None

    def delete(self, session: Session, result_id: uuid.UUID) -> None:
        session.execute(delete(DetectionMetadata).where(DetectionMetadata.result_id == result_id))
