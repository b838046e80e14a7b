"""Reads and writes of an analysis: its upload, result, method rows, metadata document and images.

A completed analysis is written in one transaction (:meth:`ResultsRepository.save`): the result
row, one row per method, the metadata document (through the :class:`DetectionMetadataStore`
port, in the same session) and the report images, so a crash leaves either all of it or none.
Erasure removes them child-first in one transaction too (not relying on the dialect's cascades).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from facesocial import errors
from facesocial.domains.ai_detection import images, views
from facesocial.domains.ai_detection.images import ReportImage
from facesocial.domains.ai_detection.metadata_store import DetectionMetadataStore
from facesocial.forensics.ai_image import report
from facesocial.forensics.ai_image.analyzer import AiImageReport
from facesocial.forensics.ai_image.ensemble import Verdict
from facesocial.store.db import Database
from facesocial.store.tables import (
    AiDetectionResult,
    AiMethodResult,
    AiReportImage,
    AiUpload,
    DetectionMethod,
)
from facesocial.store.types import utcnow


@dataclass(frozen=True, slots=True)
class StoredAnalysis:
    """An analysis as stored; ``result``/``document`` are None until it completed."""

    upload: AiUpload
    result: AiDetectionResult | None
    document: dict[str, Any] | None
    methods: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class UploadPage:
    items: list[tuple[AiUpload, AiDetectionResult | None]]
    total: int


class ResultsRepository:
    def __init__(self, database: Database, documents: DetectionMetadataStore) -> None:
        self._db = database
        self._documents = documents

    # --- writes -----------------------------------------------------------------------------------

    @staticmethod
    def add_image(session: Session, upload_id: uuid.UUID, image: ReportImage) -> None:
        session.add(
            AiReportImage(
                upload_id=upload_id,
                kind=image.kind,
                media_type=image.media_type,
                width=image.width,
                height=image.height,
                data=image.data,
            )
        )

    def save(
        self,
        session: Session,
        upload: AiUpload,
        found: AiImageReport,
        verdict: Verdict,
        processing_seconds: float,
        serving: Mapping[str, Any] | None = None,
    ) -> None:
        """Write the result of ``upload`` (already in ``session``) whole; the caller commits.

        A result of an earlier, interrupted attempt (a job's retry) is replaced. ``serving``:
        the registry's decision for the ai_image slot, kept in the document (the report's
        ``serving``).
        """
        result_id = upload.upload_id  # one result per upload: the same id (docs/data-model.md)
        self._drop_result(session, result_id)
        ela = images.from_png(images.ELA, found.ela_png)
        heatmap = images.from_png(images.HEATMAP, found.heatmap_png)
        now = utcnow()
        session.add(
            AiDetectionResult(
                result_id=result_id,
                upload_id=upload.upload_id,
                is_ai_generated=verdict.is_ai_generated,
                confidence_score=round(verdict.score, 4),
                band=verdict.band,
                processing_time=round(processing_seconds, 3),
                detection_date=now,
                algorithm_version=found.algorithm_version[:64],
                result_summary=views.summary(verdict),
                metadata_id=str(result_id),
            )
        )
        session.flush()
        named = session.execute(select(DetectionMethod.method_name, DetectionMethod.method_id))
        method_ids = {name: pk for name, pk in named}
        for method in found.methods:
            method_id = method_ids.get(method.name)
            if method_id is None:  # a method the table does not know is reported, not stored
                continue
            session.add(
                AiMethodResult(
                    result_id=result_id,
                    method_id=method_id,
                    is_ai_generated=method.is_ai_generated,
                    confidence_score=method.confidence,
                    processing_time=round(method.processing_time_ms / 1000.0, 3),
                    result_details=views.method_details(method, verdict),
                )
            )
        document = views.document(
            result_id=str(result_id),
            upload_id=str(upload.upload_id),
            tenant_id=str(upload.tenant_id),
            found=found,
            verdict=verdict,
            has_ela=ela is not None,
            has_heatmap=heatmap is not None,
            created_at=now,
        )
        if serving is not None:
            document = {**document, "serving": dict(serving)}
        self._documents.put(session, result_id, document)
        for image in (ela, heatmap):
            if image is not None:
                self.add_image(session, upload.upload_id, image)
        upload.status = "completed"
        upload.is_processed = True
        upload.processing_started_at = upload.processing_started_at or now
        upload.processing_completed_at = now

    def _drop_result(self, session: Session, result_id: uuid.UUID) -> None:
        session.execute(delete(AiMethodResult).where(AiMethodResult.result_id == result_id))
        self._documents.delete(session, result_id)
        session.execute(
            delete(AiReportImage).where(
                AiReportImage.upload_id == result_id, AiReportImage.kind != images.THUMBNAIL
            )
        )
        session.execute(delete(AiDetectionResult).where(AiDetectionResult.result_id == result_id))

    def erase(self, upload_id: uuid.UUID) -> None:
        """Remove the upload and everything of it (result, method rows, document, images)."""
        with self._db.session() as session:
            self._drop_result(session, upload_id)
            session.execute(delete(AiReportImage).where(AiReportImage.upload_id == upload_id))
            session.execute(delete(AiUpload).where(AiUpload.upload_id == upload_id))

    # --- reads ------------------------------------------------------------------------------------

    @staticmethod
    def owned(session: Session, result_id: str, tenant_id: uuid.UUID) -> AiUpload:
        """The upload of ``result_id`` if ``tenant_id`` owns it; else AiResultNotFoundError.

        A malformed id, an unknown one and another tenant's are answered alike (learn nothing).
        """
        try:
            pk = uuid.UUID(result_id)
        except ValueError:
            pk = None
        row = session.get(AiUpload, pk) if pk is not None else None
        if row is None or row.tenant_id != tenant_id:
            raise errors.AiResultNotFoundError(f"No AI-detection result {result_id[:64]!r}")
        return row

    def load(self, result_id: str, tenant_id: uuid.UUID) -> StoredAnalysis:
        with self._db.session(readonly=True) as session:
            upload = self.owned(session, result_id, tenant_id)
            result = session.scalar(
                select(AiDetectionResult).where(AiDetectionResult.upload_id == upload.upload_id)
            )
            document = self._documents.get(session, result.result_id) if result is not None else None
            methods: list[dict[str, Any]] = []
            if result is not None:
                rows = session.scalars(
                    select(AiMethodResult).where(AiMethodResult.result_id == result.result_id)
                )
                order = {name: i for i, name in enumerate(report.METHODS)}
                methods = sorted(
                    (dict(r.result_details or {}) for r in rows),
                    key=lambda m: order.get(str(m.get("method")), len(order)),
                )
            session.expunge_all()
        return StoredAnalysis(upload, result, document, methods)

    def image(self, result_id: str, tenant_id: uuid.UUID, kind: str) -> AiReportImage:
        with self._db.session(readonly=True) as session:
            upload = self.owned(session, result_id, tenant_id)
            row = session.get(AiReportImage, (upload.upload_id, kind))
            if row is None:
                raise errors.ReportImageNotFoundError(f"Result {result_id[:64]!r} has no {kind} image")
            session.expunge(row)
            return row

    def page(
        self, tenant_id: uuid.UUID, page: int, page_size: int, band: str | None, status: str | None
    ) -> UploadPage:
        """The tenant's uploads, newest first, with their results (None while pending)."""
        query = (
            select(AiUpload, AiDetectionResult)
            .outerjoin(AiDetectionResult, AiDetectionResult.upload_id == AiUpload.upload_id)
            .where(AiUpload.tenant_id == tenant_id)
        )
        if band is not None:
            query = query.where(AiDetectionResult.band == band)
        if status is not None:
            query = query.where(AiUpload.status == status)
        with self._db.session(readonly=True) as session:
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = session.execute(
                query.order_by(AiUpload.upload_date.desc(), AiUpload.upload_id.desc())
                .offset((page - 1) * page_size)
                .limit(page_size)
            ).all()
            session.expunge_all()
        return UploadPage([(u, r) for u, r in rows], int(total))

    def ended_before(self, cutoff: datetime, statuses: Sequence[str]) -> list[uuid.UUID]:
        with self._db.session(readonly=True) as session:
            return list(
                session.scalars(
                    select(AiUpload.upload_id).where(
                        AiUpload.upload_date < cutoff, AiUpload.status.in_(statuses)
                    )
                )
            )
