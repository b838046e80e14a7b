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
from facesocial.domains.registry.serving import Serving
from facesocial.services.context import RequestContext
from facesocial.services.outcome import Outcome
from facesocial.services.serving_context import DetectorVariants, ServingScope, scope_or_static
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
        self,
        database: Database,
        pipeline: FacePipeline,
        limits: ImageLimits,
        detect_options: DetectOptions,
        variants: DetectorVariants | None = None,
    ) -> None:
        self._db = database
        self._pipeline = pipeline
        self._variants = variants if variants is not None else DetectorVariants(pipeline)
        self._limits = limits
        self._detect = detect_options

    def analyze(
        self,
        data: bytes,
        *,
        ctx: RequestContext,
        batch_id: str | None = None,
        scope: ServingScope | None = None,
    ) -> Outcome:
        """Age, gender, emotion of every face, by the face_detection and demographics versions
        the registry gives this request (``scope``). The demographics slot has one version per
        installed age/gender model (``faceres@…``); ``serving`` names both slots. Raises the
        decoder's errors and ``MODEL_UNAVAILABLE``."""
        started = time.perf_counter()
        scope = scope_or_static(scope)
        pipeline, demographics = self._route(scope)
        model_tag = self._model_tag()
        image = decode_image(data, self._limits)
        faces = pipeline.detect(image.rgb, self._detect)
        found = pipeline.analyze_attributes(image.rgb, faces) if len(faces) else []
        elapsed = round((time.perf_counter() - started) * 1000)
        request_id = uuid.uuid4().hex
        self._store(request_id, image.sha256, faces, found, elapsed, ctx, batch_id, model_tag)
        items = []
        for row, attributes in enumerate(found):
            face = face_to_dict(faces, row, landmarks=False)
            items.append({**face, **attributes.as_dict(), "quality": face.get("quality")})
        self._report(scope, started, image.rgb.shape, image.sha256, request_id, faces, found)
        body = {
            "request_id": request_id,
            "image": image.metadata(),
            "faces_detected": len(faces),
            "faces": items,
            "models": self._models(pipeline),
            "processing_time_ms": elapsed,
            "serving": scope.serving_body(),
        }
        best = max((a.gender_confidence for a in found), default=None)
        version = demographics.version if demographics is not None else model_tag
        return Outcome(body, confidence=best, model_version=version)

    def _route(self, scope: ServingScope) -> tuple[FacePipeline, Serving | None]:
        """The routed detector's pipeline and the demographics decision (None without the
        attribute models: there is nothing to route, and analysing faces raises)."""
        detection = scope.resolve(
            "face_detection", installed=self._variants.installed, default=self._variants.default
        )
        model_tag = self._model_tag()
        demographics = (
            scope.resolve("demographics", installed=(model_tag,), default=model_tag) if model_tag else None
        )
        return self._variants.pipeline(detection.version), demographics

    def _report(
        self,
        scope: ServingScope,
        started: float,
        shape: tuple[int, ...],
        image_hash: str,
        request_id: str,
        faces: Faces,
        found: list[FaceAttributes],
    ) -> None:
        """Record the detector's inference and, when faces were analysed, the demographics one
        (confidences: each face's gender confidence; features: mean age, quality)."""
        height, width = shape[:2]
        qualities = [float(q.score) for q in faces.columns["quality"]] if len(faces) else []
        detection_features = {"faces": float(len(faces)), "width": float(width), "height": float(height)}
        if qualities:
            detection_features["quality"] = sum(qualities) / len(qualities)
        scope.record(
            scope.decisions["face_detection"],
            "face_detection",
            started=started,
            result={"request_id": request_id, "faces_detected": len(faces)},
            confidences=[float(c) for c in faces.confidence],
            features=detection_features,
            input_hash=image_hash,
        )
        serving = scope.decisions.get("demographics")
        if serving is None or not found:
            return
        features = {
            "faces": float(len(found)),
            "age": sum(float(a.estimated_age) for a in found) / len(found),
            "emotion_confidence": sum(float(a.emotion_confidence) for a in found) / len(found),
        }
        if qualities:
            features["quality"] = detection_features["quality"]
        scope.record(
            serving,
            "demographics",
            started=started,
            result={"request_id": request_id, "genders": [a.gender for a in found]},
            confidences=[float(a.gender_confidence) for a in found],
            features=features,
            input_hash=image_hash,
        )

    def batch(
        self, images: list[NamedImage], *, ctx: RequestContext, scope: ServingScope | None = None
    ) -> Outcome:
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
        scope = scope_or_static(scope)
        _, demographics = self._route(scope)
        results: list[dict[str, Any]] = []
        for index, item in enumerate(images):
            try:
                if item.error is not None:
                    raise item.error
                # One version per slot for the whole batch; each image is its own inference.
                outcome = self.analyze(item.data, ctx=ctx, batch_id=batch_id, scope=scope.item())
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
        return Outcome(body, model_version=demographics.version if demographics else self._model_tag())

    def _models(self, pipeline: FacePipeline) -> dict[str, Any]:
        models: dict[str, Any] = {"detector": pipeline.detector.model.as_dict()}
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
