"""``/api/v1/demographics``: age, gender, emotion per face; one image or a batch."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from facesocial import errors
from facesocial.api.deps import CallerDep, ContainerDep, ContextDep, DecodeGateDep, rate_limited
from facesocial.api.forms import AnalyzeForm, BatchForm
from facesocial.api.image_input import image_form
from facesocial.api.openapi import IMAGE_ERRORS, INTAKE_ERRORS, error_responses, image_request_body
from facesocial.api.routing import ApiRoute
from facesocial.api.schemas import AnalyzeResponse, BatchResponse
from facesocial.services.demographics import NamedImage
from facesocial.services.serving_context import ServingScope

router = APIRouter(
    prefix="/api/v1/demographics", tags=["demographics"], route_class=ApiRoute, redirect_slashes=False
)


@router.post(
    "/analyze",
    name="analyze",
    response_model=None,
    dependencies=[Depends(rate_limited("demographics"))],
    openapi_extra=image_request_body(AnalyzeForm),
    responses={
        200: {"model": AnalyzeResponse},
        **error_responses(*IMAGE_ERRORS, errors.ModelUnavailableError),
    },
)
def analyze(
    request: Request,
    container: ContainerDep,
    caller: CallerDep,
    ctx: ContextDep,
    gate: DecodeGateDep,
    form: Annotated[AnalyzeForm, image_form(AnalyzeForm)],
) -> dict[str, Any]:
    """Per face: estimated age, age range and group, gender + confidence, emotion + confidence."""
    with gate.admit(form.pixel_weight(container.settings.limits)):
        scope = ServingScope.for_request(container, caller, request.headers)
        outcome = container.demographics.analyze(form.image.data, ctx=ctx, scope=scope)
    request.state.outcome = outcome
    return {"success": True, **outcome.body}


@router.post(
    "/batch",
    name="batch",
    response_model=None,
    dependencies=[Depends(rate_limited("batch"))],
    openapi_extra=image_request_body(BatchForm),
    responses={
        200: {"model": BatchResponse},
        **error_responses(*INTAKE_ERRORS, errors.BatchFailedError, errors.ModelUnavailableError),
    },
)
def batch(
    request: Request,
    container: ContainerDep,
    caller: CallerDep,
    ctx: ContextDep,
    gate: DecodeGateDep,
    form: Annotated[BatchForm, image_form(BatchForm)],
) -> dict[str, Any]:
    """Many images: a result or an error for each, in order; one bad image fails only itself.

    Partial failure is a 200 with each item's outcome; when every item failed the answer is 422
    ``BATCH_FAILED`` with every item's error in ``error.details.results``.
    """
    named = [NamedImage(upload.filename, upload.data, upload.error) for upload in form.images]
    with gate.admit(form.pixel_weight(container.settings.limits)):
        scope = ServingScope.for_request(container, caller, request.headers)
        outcome = container.demographics.batch(named, ctx=ctx, scope=scope)
    request.state.outcome = outcome
    return {"success": True, **outcome.body}
