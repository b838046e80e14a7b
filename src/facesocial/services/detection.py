"""Face detection use case: detect, record the request and its faces, return the result."""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass
from typing import Any

from facesocial import errors
from facesocial.services.context import RequestContext
from facesocial.services.serving_context import DetectorVariants, ServingScope, scope_or_static
from facesocial.settings import ImageLimits
from facesocial.store.db import Database
from facesocial.store.tables import DetectedFace, DetectionRequest
from facesocial.store.types import utcnow
from facesocial.vision.attributes import FaceAttributes
from facesocial.vision.describe import LandmarkSet, describe_faces
from facesocial.vision.faces import Faces
from facesocial.vision.geometry import xyxy_to_xywh
from facesocial.vision.image import DecodedImage, decode_image
from facesocial.vision.pipeline import DetectOptions, FacePipeline, face_to_dict


@dataclass(frozen=True, slots=True)
class DetectionParams:
    options: DetectOptions
    return_landmarks: bool = True
    landmark_set: LandmarkSet = "5"
    return_attributes: bool = False


@dataclass(slots=True)
class DetectionResult:
    request_id: str
    image: dict[str, Any]
    faces: list[dict[str, Any]]
    model: dict[str, Any]
    processing_time_ms: int
    # The registry's decision: {"slot", "version", "route", "experiment_id", "arm", "inference_id"}.
    serving: dict[str, Any]


class DetectionService:
    def __init__(self, database: Database, variants: DetectorVariants, limits: ImageLimits) -> None:
        self._db = database
        self._variants = variants
        self._limits = limits

    @property
    def _pipeline(self) -> FacePipeline:
        return self._variants.base

    def detect(
        self,
        data: bytes,
        params: DetectionParams,
        ctx: RequestContext,
        scope: ServingScope | None = None,
    ) -> DetectionResult:
        """Detect with the face_detection version the registry gives this request (``scope``;
        without one, the settings' detector) and record the inference (confidences, quality,
        image size). Raises the decoder's errors and ``MODEL_UNAVAILABLE``."""
        started = time.perf_counter()
        request_id = uuid.uuid4().hex
        scope = scope_or_static(scope)
        serving = scope.resolve(
            "face_detection", installed=self._variants.installed, default=self._variants.default
        )
        pipeline = self._variants.pipeline(serving.version)
        row = DetectionRequest(
            request_id=request_id,
            image_hash=hashlib.sha256(data).hexdigest(),
            min_face_size=params.options.min_face_size,
            max_faces=params.options.max_faces,
            detection_confidence=params.options.detection_confidence,
            return_landmarks=params.return_landmarks,
            return_attributes=params.return_attributes,
            request_source=ctx.request_source,
            ip_address=ctx.ip_address,
            model_version=serving.version,
        )
        try:
            image = decode_image(data, self._limits)
            faces = pipeline.detect(image.rgb, params.options)
            extras = describe_faces(
                pipeline,
                image.rgb,
                faces,
                landmarks=params.landmark_set if params.return_landmarks else "5",
                attributes=params.return_attributes,
            )
        except errors.FaceSocialError as exc:
            row.status = "failed"
            row.error_message = f"{exc.code}: {exc.message}"
            row.processing_time_ms = _elapsed_ms(started)
            row.completed_at = utcnow()
            with self._db.session() as session:
                session.add(row)
            raise
        elapsed = _elapsed_ms(started)
        items = [
            {**face_to_dict(faces, i, landmarks=params.return_landmarks), **extras.fields[i]}
            for i in range(len(faces))
        ]
        self._store(row, image, faces, items, extras.attributes, elapsed)
        models = _models(faces)
        models.update({role: ref.as_dict() for role, ref in extras.models.items()})
        qualities = [float(item["quality"]["score"]) for item in items if "quality" in item]
        height, width = image.rgb.shape[:2]
        scope.record(
            serving,
            "face_detection",
            started=started,
            result={"request_id": request_id, "faces_detected": len(items)},
            confidences=[float(c) for c in faces.confidence],
            features={
                "faces": float(len(items)),
                "width": float(width),
                "height": float(height),
                **({"quality": sum(qualities) / len(qualities)} if qualities else {}),
            },
            input_hash=row.image_hash,
        )
        return DetectionResult(
            request_id=request_id,
            image=image.metadata(),
            faces=items,
            model=models,
            processing_time_ms=elapsed,
            serving=serving.as_dict(),
        )

    def _store(
        self,
        row: DetectionRequest,
        image: DecodedImage,
        faces: Faces,
        items: list[dict[str, Any]],
        attributes: list[FaceAttributes] | None,
        elapsed: int,
    ) -> None:
        row.image_metadata = image.metadata()
        row.faces_detected = len(faces)
        row.processing_time_ms = elapsed
        row.status = "completed"
        row.completed_at = utcnow()
        with self._db.session() as session:
            session.add(row)
            session.flush()
            for index, item in enumerate(items):
                x, y, w, h = xyxy_to_xywh(faces.boxes[index])
                attribute = attributes[index] if attributes else None
                session.add(
                    DetectedFace(
                        detection_request_id=row.id,
                        face_index=index,
                        bbox_x=x,
                        bbox_y=y,
                        bbox_width=w,
                        bbox_height=h,
                        detection_confidence=float(faces.confidence[index]),
                        face_quality_score=item.get("quality", {}).get("score"),
                        landmarks=item.get("landmarks"),
                        estimated_age=attribute.estimated_age if attribute else None,
                        estimated_gender=attribute.gender if attribute else None,
                        gender_confidence=attribute.gender_confidence if attribute else None,
                        emotions=attribute.emotions if attribute else None,
                    )
                )


def _models(faces: Faces) -> dict[str, Any]:
    """Which model produced which part of the result."""
    models: dict[str, Any] = {"detector": faces.detector.as_dict()}
    models.update({role: ref.as_dict() for role, ref in faces.models.items()})
    return models


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
