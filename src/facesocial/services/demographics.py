"""Demographics use case: age, gender, emotion per face, for one image or a batch.

Each analysed image writes one ``demographics.demographic_analyses`` row and one
``face_demographics`` row per face; a batch shares a ``batch_id`` and reports every item's
result or error on its own, so one bad image does not fail the others.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from facesocial import errors
from facesocial.services.context import RequestContext
from facesocial.services.outcome import Outcome
from facesocial.settings import ImageLimits
from facesocial.store.db import Database
from facesocial.store.tables import DemographicAnalysis, FaceDemographics
from facesocial.vision.attributes import FaceAttributes
from facesocial.vision.faces import Faces
from facesocial.vision.geometry import xyxy_to_xywh
from facesocial.vision.image import decode_image
from facesocial.vision.pipeline import DetectOptions, FacePipeline, face_to_dict

BATCH_MAX_IMAGES = 20


@dataclass(frozen=True, slots=True)
class NamedImage:
    filename: str
    data: bytes
    error: errors.FaceSocialError | None = None  # the upload itself was refused


class DemographicsService:
    def __init__(
        self, database: Database, pipeline: FacePipeline, limits: ImageLimits, detect_options: DetectOptions
    ) -> None:
        self._db = database
        self._pipeline = pipeline
        self._limits = limits
        self._detect = detect_options

    def analyze(self, data: bytes, *, ctx: RequestContext, batch_id: str | None = None) -> Outcome:
        started = time.perf_counter()
        image = decode_image(data, self._limits)
        faces = self._pipeline.detect(image.rgb, self._detect)
        found = self._pipeline.analyze_attributes(image.rgb, faces) if len(faces) else []
        elapsed = round((time.perf_counter() - started) * 1000)
        request_id = uuid.uuid4().hex
        model_tag = self._model_tag()
        self._store(request_id, image.sha256, faces, found, elapsed, ctx, batch_id, model_tag)
        items = []
        for row, attributes in enumerate(found):
            face = face_to_dict(faces, row, landmarks=False)
            items.append({**face, **attributes.as_dict(), "quality": face.get("quality")})
        body = {
            "request_id": request_id,
            "image": image.metadata(),
            "faces_detected": len(faces),
            "faces": items,
            "models": self._models(),
            "processing_time_ms": elapsed,
        }
        best = max((a.gender_confidence for a in found), default=None)
        return Outcome(body, confidence=best, model_version=model_tag)

    def batch(self, images: list[NamedImage], *, ctx: RequestContext) -> Outcome:
        """Analyse each image on its own; one failing image fails only its own item.

        Raises:
            ValidationFailedError (422): no image, or more than ``BATCH_MAX_IMAGES``.
            BatchFailedError (422): every item failed; ``details`` holds the whole batch body
                (``batch_id``, ``total``, ``succeeded``, ``failed``, ``results`` with each error).
        """
        if not images:
            raise errors.ValidationFailedError("Send at least one image (field: images)")
        if len(images) > BATCH_MAX_IMAGES:
            raise errors.ValidationFailedError(
                f"A batch holds at most {BATCH_MAX_IMAGES} images; {len(images)} were sent"
            )
        batch_id = uuid.uuid4().hex
        results: list[dict[str, Any]] = []
        for index, item in enumerate(images):
            try:
                if item.error is not None:
                    raise item.error
                outcome = self.analyze(item.data, ctx=ctx, batch_id=batch_id)
                results.append({"index": index, "filename": item.filename, "success": True, **outcome.body})
            except errors.FaceSocialError as exc:
                results.append(
                    {"index": index, "filename": item.filename, "success": False, "error": exc.to_dict()}
                )
        succeeded = sum(1 for r in results if r["success"])
        body = {
            "batch_id": batch_id,
            "total": len(images),
            "succeeded": succeeded,
            "failed": len(images) - succeeded,
            "max_images": BATCH_MAX_IMAGES,
            "results": results,
        }
        if succeeded == 0:
            # Nothing was analysed: the call failed, though each item says why on its own.
            raise errors.BatchFailedError(
                f"All {len(images)} images of the batch failed; details.results gives each error",
                **body,
            )
        return Outcome(body, model_version=self._model_tag())

    def _models(self) -> dict[str, Any]:
        models: dict[str, Any] = {"detector": self._pipeline.detector.model.as_dict()}
        if self._pipeline.attributes is not None:
            models.update({k: v.as_dict() for k, v in self._pipeline.attributes.models.items()})
        return models

    def _model_tag(self) -> str | None:
        attributes = self._pipeline.attributes
        return attributes.models["age_gender"].tag if attributes is not None else None

    def _store(
        self,
        request_id: str,
        image_hash: str,
        faces: Faces,
        found: list[FaceAttributes],
        elapsed: int,
        ctx: RequestContext,
        batch_id: str | None,
        model_tag: str | None,
    ) -> None:
        with self._db.session() as session:
            analysis = DemographicAnalysis(
                request_id=request_id,
                image_hash=image_hash,
                faces_analyzed=len(found),
                model_version=model_tag,
                processing_time_ms=elapsed,
                request_source=ctx.request_source,
                batch_id=batch_id,
            )
            session.add(analysis)
            session.flush()
            for row, attributes in enumerate(found):
                x, y, w, h = xyxy_to_xywh(faces.boxes[row])
                session.add(
                    FaceDemographics(
                        analysis_id=analysis.id,
                        face_index=row,
                        bbox_x=x,
                        bbox_y=y,
                        bbox_width=w,
                        bbox_height=h,
                        estimated_age=attributes.estimated_age,
                        age_range_min=attributes.age_range[0],
                        age_range_max=attributes.age_range[1],
                        age_group=attributes.age_group,
                        estimated_gender=attributes.gender,
                        gender_confidence=attributes.gender_confidence,
                        emotion_primary=attributes.emotion,
                        emotion_confidence=attributes.emotion_confidence,
                        face_quality_score=faces.columns["quality"][row].score,
                    )
                )
