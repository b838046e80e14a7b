"""``/api/v1/face-detection``."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from facesocial import errors
from facesocial.api.deps import CallerDep, ContainerDep, ContextDep, DecodeGateDep, rate_limited
from facesocial.api.forms import DetectForm
from facesocial.api.image_input import image_form
from facesocial.api.openapi import IMAGE_ERRORS, error_responses, image_request_body
from facesocial.api.routing import ApiRoute
from facesocial.api.schemas import DetectResponse
from facesocial.services.detection import DetectionParams
from facesocial.services.outcome import Outcome
from facesocial.services.serving_context import ServingScope
from facesocial.vision.pipeline import DetectOptions

router = APIRouter(
    prefix="/api/v1/face-detection",
    tags=["face-detection"],
    route_class=ApiRoute,
    redirect_slashes=False,
    dependencies=[Depends(rate_limited("face_detection"))],
)


@router.post(
    "/detect",
    name="detect",
    response_model=None,
    openapi_extra=image_request_body(DetectForm),
    responses={
        200: {"model": DetectResponse},
        **error_responses(*IMAGE_ERRORS, errors.ModelUnavailableError),
    },
)
def detect(
    request: Request,
    container: ContainerDep,
    caller: CallerDep,
    ctx: ContextDep,
    gate: DecodeGateDep,
    form: Annotated[DetectForm, image_form(DetectForm)],
) -> dict[str, Any]:
    """Find faces: boxes, confidence, landmarks, quality; optionally attributes and the mesh."""
    confidence = container.settings.detection.detection_confidence
    if form.detection_confidence is not None:
        confidence = form.detection_confidence
    params = DetectionParams(
        DetectOptions(form.min_face_size, form.max_faces, confidence),
        form.return_landmarks,
        form.landmarks,
        form.return_attributes,
    )
    with gate.admit(form.pixel_weight(container.settings.limits)):
        scope = ServingScope.for_request(container, caller, request.headers)
        result = container.detection.detect(form.image.data, params, ctx, scope)
    best = max((f["confidence"] for f in result.faces), default=None)
    # The audit row names the version that served (the registry's answer, the detector that ran).
    request.state.outcome = Outcome({}, confidence=best, model_version=result.serving["version"])
    body = asdict(result)
    body["faces_detected"] = len(result.faces)
    return {"success": True, **body}
