"""SkyGate use cases: analyse an image now or as a job; read, list and erase analyses; weights.

``POST /analyze`` decodes the image first (a bad file is refused with its code before anything
is stored) and makes its thumbnail. An image up to ``ai_detection.sync_max_pixels`` is analysed
at once: the active methods run, the ensemble fuses them with the weights read from
``detection_methods`` for this very analysis, and one transaction stores the upload, its result,
method rows, metadata document and images. A larger image (or ``async``) is spooled; one
transaction writes the upload row, its thumbnail and its job row (``ai_detection.image``),
and the job is dispatched after that commit. The image itself is never stored (privacy): the
spooled file is removed when its job ends, whatever the end.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import shutil
import time
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image
from sqlalchemy import select

from facesocial import errors
from facesocial.domains.ai_detection import images, views
from facesocial.domains.ai_detection.methods_repo import MethodsRepository, MethodUpdate
from facesocial.domains.ai_detection.repository import ResultsRepository
from facesocial.domains.registry.serving import ModelRouter, RoutingKey, Serving, StaticRouter
from facesocial.forensics.ai_image import report
from facesocial.forensics.ai_image.analyzer import AiImageAnalyzer, AiImageReport
from facesocial.forensics.ai_image.ensemble import MethodWeight, Verdict, fuse
from facesocial.jobs.port import PRIORITY_DEFAULT, JobContext, JobQueue, JobStatus, NewJob
from facesocial.jobs.store import JobStore
from facesocial.services.outcome import Outcome
from facesocial.services.principal import Principal
from facesocial.services.serving_context import ServingScope, scope_or_static
from facesocial.settings import Settings
from facesocial.store.db import Database
from facesocial.store.tables import JOB_TERMINAL, AiUpload, Job
from facesocial.store.types import utcnow
from facesocial.vision.image import decode_image

log = logging.getLogger(__name__)

IMAGE_JOB = "ai_detection.image"
_SPOOLED = "image"
_INCOMING = "incoming"  # the spool's folder for uploads before their job exists (as deepfake's)
_ENDED = ("completed", "failed", "cancelled")
_RESULTS = "/api/v1/ai-detection/results"


@dataclass(frozen=True, slots=True)
class Accepted:
    """``POST /analyze`` of an image analysed as a job: the 202 body."""

    body: dict[str, Any]


class AiDetectionService:
    def __init__(
        self,
        database: Database,
        results: ResultsRepository,
        methods: MethodsRepository,
        analyzer: Callable[[], AiImageAnalyzer],
        job_store: JobStore,
        jobs: Callable[[], JobQueue],
        cancel: Callable[[str, uuid.UUID], object],
        settings: Settings,
        router: Callable[[], ModelRouter] | None = None,
    ) -> None:
        self._router = router or StaticRouter
        self._results = results
        self._methods = methods
        self._analyzer = analyzer
        self._job_store = job_store
        self._jobs = jobs
        self._cancel = cancel
        self._settings = settings
        self._db = database
        self.spool_dir = settings.resolved_spool_dir()

    # --- analyse ------------------------------------------------------------------------------------

    def analyze(
        self,
        data: bytes,
        filename: str,
        *,
        methods: Sequence[str] | None,
        run_async: bool,
        caller: Principal,
        scope: ServingScope | None = None,
    ) -> Outcome | Accepted:
        """Analyse now (an Outcome with the report) or as a job (Accepted, for a 202).

        ``scope``: the request's routing of the ai_image slot (one version per installed
        learned model: ``skygate_mlp@…``); ``serving`` in a synchronous answer; a job routes
        when it runs (where the model is loaded), with this request's key kept in its payload.

        Raises the image errors of :func:`decode_image` (4xx), and ValidationFailedError (422)
        for an unknown name in ``methods``; nothing is stored then.
        """
        started = time.perf_counter()
        wanted = _requested(methods)
        image = decode_image(data, self._settings.limits)
        thumb = images.thumbnail(image.rgb)
        upload = AiUpload(
            upload_id=uuid.uuid4(),
            tenant_id=caller.tenant_id,
            api_key_id=caller.api_key_id,
            original_file_name=(filename or "")[:255],
            file_path=None,
            file_size=len(data),
            file_type=image.format,
            mime_type=Image.MIME.get(image.format, "application/octet-stream"),
            upload_date=utcnow(),
            is_processed=False,
            thumbnail_path=None,
            status="pending",
        )
        upload.file_name = f"{upload.upload_id}.{image.format.lower()}"
        upload.thumbnail_path = images.url(str(upload.upload_id), images.THUMBNAIL)
        scope = scope_or_static(scope)
        if run_async or image.width * image.height > self._settings.ai_detection.sync_max_pixels:
            return self._submit(upload, data, thumb, wanted, caller, scope.key)
        upload.processing_started_at = utcnow()
        upload.status = "processing"
        serving = self._resolve(scope)
        found, verdict = self._run(data, image.rgb, wanted)
        with self._db.session() as session:
            session.add(upload)
            session.flush()  # no ORM relationship orders the inserts: the parent row first
            self._results.add_image(session, upload.upload_id, thumb)
            self._results.save(
                session, upload, found, verdict, time.perf_counter() - started, scope.serving_body()
            )
        _report(scope, serving, started, verdict, image.sha256, str(upload.upload_id))
        body = self._body(str(upload.upload_id), caller)
        return Outcome(body, confidence=body["confidence_score"], model_version=serving.version)

    def _resolve(self, scope: ServingScope) -> Serving:
        """The ai_image slot's version: the learned model's tag, or SkyGate's without it."""
        analyzer = self._analyzer()
        tag = analyzer.model.version if analyzer.model is not None else analyzer.version
        return scope.resolve("ai_image", installed=(tag,), default=tag)

    def _run(
        self, data: bytes, rgb: npt.NDArray[np.uint8], wanted: Collection[str] | None
    ) -> tuple[AiImageReport, Verdict]:
        """Run the active (and wanted) methods with the weights stored now, and fuse them."""
        weights: dict[str, MethodWeight] = self._methods.weights()
        active = [n for n, w in weights.items() if w.is_active and (wanted is None or n in wanted)]
        found = self._analyzer().analyze(data, rgb, active)
        settings = self._settings.ai_detection
        verdict = fuse(
            found.methods, weights, ai_threshold=settings.ai_threshold, real_below=settings.real_below
        )
        return found, verdict

    def _submit(
        self,
        upload: AiUpload,
        data: bytes,
        thumb: images.ReportImage,
        wanted: Collection[str] | None,
        caller: Principal,
        key: RoutingKey,
    ) -> Accepted:
        """Spool the bytes, store the upload, its thumbnail and its job (one commit), dispatch."""
        incoming = self.spool_dir / _INCOMING / secrets.token_hex(8)
        incoming.mkdir(parents=True, exist_ok=True)
        try:
            path = incoming / _SPOOLED
            path.write_bytes(data)
            with self._db.session() as session:
                job_id = self._job_store.add_with_file(
                    session,
                    NewJob(
                        kind=IMAGE_JOB,
                        tenant_id=caller.tenant_id,
                        api_key_id=caller.api_key_id,
                        payload={
                            "upload": str(upload.upload_id),
                            "methods": sorted(wanted) if wanted else None,
                            "routing": {
                                "request_id": key.request_id,
                                "user_key": key.user_key,
                                "session_id": key.session_id,
                            },
                        },
                    ),
                    self._settings.jobs.max_attempts,
                    self.spool_dir,
                    path,
                    _SPOOLED,
                )
                upload.job_id = job_id
                session.add(upload)
                session.flush()
                self._results.add_image(session, upload.upload_id, thumb)
        finally:
            shutil.rmtree(incoming, ignore_errors=True)
        self._jobs().dispatch(job_id, PRIORITY_DEFAULT)
        rid = str(upload.upload_id)
        return Accepted(
            {
                "result_id": rid,
                "upload_id": rid,
                "job_id": job_id,
                "status": "pending",
                "status_url": f"{_RESULTS}/{rid}",
                "job_url": f"/api/v1/jobs/{job_id}",
                "thumbnail_url": upload.thumbnail_path,
            }
        )

    # --- the job ------------------------------------------------------------------------------------

    def run_job(self, job: JobContext) -> dict[str, Any]:
        """The ``ai_detection.image`` handler: analyse the spooled image of one upload, store all."""
        upload_id = uuid.UUID(str(job.payload["upload"]))
        wanted = job.payload.get("methods")
        with self._db.session() as session:
            upload = session.get(AiUpload, upload_id)
            if upload is None:  # erased while queued
                raise errors.AiResultNotFoundError("The analysis was erased before it ran")
            upload.status = "processing"
            upload.processing_started_at = upload.processing_started_at or utcnow()
            tenant_id = upload.tenant_id
        path = self.spool_dir / job.job_id / _SPOOLED
        if not path.is_file():
            raise errors.TruncatedImageError("The uploaded image is no longer in the spool folder")
        started = time.perf_counter()
        data = path.read_bytes()
        image = decode_image(data, self._settings.limits)
        job.progress(0.1)
        routing = job.payload.get("routing") or {}
        scope = ServingScope(
            self._router(),
            RoutingKey(
                request_id=str(routing.get("request_id") or job.job_id),
                tenant_id=tenant_id,
                user_key=routing.get("user_key"),
                session_id=routing.get("session_id"),
            ),
        )
        serving = self._resolve(scope)
        found, verdict = self._run(data, image.rgb, set(wanted) if wanted else None)
        job.progress(0.9)
        with self._db.session() as session:
            upload = session.get(AiUpload, upload_id)
            if upload is None:
                raise errors.AiResultNotFoundError("The analysis was erased while it ran")
            self._results.save(
                session, upload, found, verdict, time.perf_counter() - started, scope.serving_body()
            )
        _report(scope, serving, started, verdict, image.sha256, str(upload_id))
        return {
            "result_id": str(upload_id),
            "band": verdict.band,
            "confidence_score": round(verdict.score, 4),
        }

    def on_job_end(self, job_id: str, status: JobStatus) -> None:
        """Copy a failed or cancelled end onto the upload; remove the spooled image (any end)."""
        try:
            if status != "completed":
                with self._db.session() as session:
                    job = session.scalar(select(Job).where(Job.job_id == job_id))
                    upload = session.scalar(select(AiUpload).where(AiUpload.job_id == job_id))
                    if upload is not None and upload.status != "completed":
                        upload.status = status
                        upload.processing_completed_at = utcnow()
                        if job is not None:
                            upload.error_code = job.error_code
                            upload.error_message = job.error_message
        finally:
            shutil.rmtree(self.spool_dir / job_id, ignore_errors=True)

    # --- reads and erasure --------------------------------------------------------------------------

    def get(self, result_id: str, caller: Principal) -> dict[str, Any]:
        """The stored report, or status and progress while its job runs."""
        return self._body(result_id, caller)

    def _body(self, result_id: str, caller: Principal) -> dict[str, Any]:
        stored = self._results.load(result_id, caller.tenant_id)
        if stored.result is not None and stored.document is not None:
            return views.report_body(stored.upload, stored.result, stored.document, stored.methods)
        job = self._job_store.get(stored.upload.job_id) if stored.upload.job_id else None
        return views.pending_body(
            stored.upload,
            None
            if job is None
            else {
                "status": job.status,
                "progress_percentage": float(job.progress_percentage),
                "estimated_completion": job.estimated_completion.isoformat()
                if job.estimated_completion
                else None,
                "error_code": job.error_code,
                "error_message": job.error_message,
            },
        )

    def image(self, result_id: str, kind: str, caller: Principal) -> tuple[str, bytes]:
        """(media type, bytes) of a report image; ReportImageNotFoundError when it has none."""
        row = self._results.image(result_id, caller.tenant_id, kind)
        return row.media_type, row.data

    def delete(self, result_id: str, caller: Principal) -> dict[str, Any]:
        """Erase the upload, its result, method rows, document and images; cancel a pending job."""
        with self._db.session(readonly=True) as session:
            upload = self._results.owned(session, result_id, caller.tenant_id)
            pk, job_id = upload.upload_id, upload.job_id
            status = session.scalar(select(Job.status).where(Job.job_id == job_id)) if job_id else None
        if job_id and status is not None and status not in JOB_TERMINAL:
            # It may have ended meanwhile: erasure goes on either way.
            with contextlib.suppress(errors.JobNotCancellableError, errors.JobNotFoundError):
                self._cancel(job_id, caller.tenant_id)
        self._results.erase(pk)
        if job_id:
            shutil.rmtree(self.spool_dir / job_id, ignore_errors=True)
        return {"result_id": str(pk), "deleted": True}

    def uploads(
        self, caller: Principal, page: int, page_size: int, band: str | None, status: str | None
    ) -> dict[str, Any]:
        found = self._results.page(caller.tenant_id, page, page_size, band, status)
        items = []
        for upload, result in found.items:
            item = views.upload_fields(upload)
            item["band"] = result.band if result is not None else None
            item["is_ai_generated"] = result.is_ai_generated if result is not None else None
            item["confidence_score"] = result.confidence_score if result is not None else None
            items.append(item)
        return {"items": items, "page": page, "page_size": page_size, "total": found.total}

    def retention(self) -> int:
        """Erase analyses uploaded more than ``ai_detection.retention_days`` ago; returns how many."""
        cutoff = utcnow() - timedelta(days=self._settings.ai_detection.retention_days)
        old = self._results.ended_before(cutoff, _ENDED)
        for pk in old:
            self._results.erase(pk)
        return len(old)

    # --- methods and weights ------------------------------------------------------------------------

    def methods(self) -> dict[str, Any]:
        """Every method: weight, active flag, whether this installation can run it."""
        try:
            available = set(self._analyzer().available())
        except Exception:  # an analyzer that cannot be built leaves the table readable
            log.exception("the AI-image analyzer could not be built")
            available = set()
        settings = self._settings.ai_detection
        return {
            "methods": [
                {
                    "method_name": row.method_name,
                    "description": row.description,
                    "weight": float(row.weight),
                    "is_active": row.is_active,
                    "available": row.method_name in available,
                    "updated_at": row.updated_at.isoformat() if row.updated_at else None,
                }
                for row in self._methods.rows()
            ],
            "thresholds": {"ai_threshold": settings.ai_threshold, "real_below": settings.real_below},
        }

    def update_methods(self, updates: Sequence[MethodUpdate]) -> dict[str, Any]:
        self._methods.update(updates)
        return self.methods()


def _requested(methods: Sequence[str] | None) -> frozenset[str] | None:
    """The subset the caller asked for (None: every active method); unknown names are refused."""
    if methods is None:
        return None
    names = frozenset(m.strip() for m in methods if m.strip())
    unknown = sorted(names - set(report.METHODS))
    if unknown or not names:
        raise errors.ValidationFailedError(
            f"methods must name some of {', '.join(report.METHODS)}"
            + (f" (unknown: {', '.join(unknown)})" if unknown else ""),
            fields=["methods"],
        )
    return names


def _report(
    scope: ServingScope, serving: Serving, started: float, verdict: Verdict, input_hash: str, result_id: str
) -> None:
    """Record one AI-image inference: the fused score (0..1, higher = more likely generated)."""
    scope.record(
        serving,
        "ai_detection",
        started=started,
        result={"result_id": result_id, "band": verdict.band, "is_ai_generated": verdict.is_ai_generated},
        confidences=[float(verdict.score)],
        features={"score": float(verdict.score), "methods": float(len(verdict.factors))},
        input_hash=input_hash,
    )
