"""``/api/v1/face-detection``."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile

from facesocial.api.deps import ContainerDep, ContextDep, rate_limited, read_upload
from facesocial.services.detection import DetectionParams
from facesocial.services.outcome import Outcome
from facesocial.vision.pipeline import DetectOptions

_LANDMARKS_HELP = (
    "5 (default), 68 (dlib iBUG: its training data bars commercial use) or 468 (mesh, with pose, "
    "eye openness and gaze)"
)
router = APIRouter(
    prefix="/api/v1/face-detection",
    tags=["face-detection"],
    dependencies=[Depends(rate_limited("face_detection"))],
)


@router.post("/detect", name="detect")
def detect(
    request: Request,
    container: ContainerDep,
    ctx: ContextDep,
    image: Annotated[UploadFile, File(description="JPEG, PNG, WebP or BMP")],
    min_face_size: Annotated[int, Form(ge=8, le=4096)] = 40,
    max_faces: Annotated[int, Form(ge=1, le=1000)] = 100,
    detection_confidence: Annotated[
        float | None, Form(ge=0.0, le=1.0, description="Default: the server's setting (0.5)")
    ] = None,
    return_landmarks: Annotated[bool, Form()] = True,
    landmarks: Annotated[Literal["5", "68", "468"], Form(description=_LANDMARKS_HELP)] = "5",
    return_attributes: Annotated[bool, Form(description="Age, gender, emotion per face")] = False,
) -> dict[str, Any]:
    """Find faces: boxes, confidence, landmarks, quality; optionally attributes and the mesh."""
    data = read_upload(image, container)
    confidence = container.settings.detection.detection_confidence
    if detection_confidence is not None:
        confidence = detection_confidence
    params = DetectionParams(
        DetectOptions(min_face_size, max_faces, confidence), return_landmarks, landmarks, return_attributes
    )
    result = container.detection.detect(data, params, ctx)
    best = max((f["confidence"] for f in result.faces), default=None)
    request.state.outcome = Outcome(
        {}, confidence=best, model_version="{name}@{version}".format(**result.model["detector"])
    )
    body = asdict(result)
    body["faces_detected"] = len(result.faces)
    return {"success": True, **body}
