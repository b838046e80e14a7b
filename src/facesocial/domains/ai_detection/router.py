"""``/api/v1/ai-detection``: SkyGate's analyses, their reports and images, and the ensemble's weights."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from facesocial import errors
from facesocial.api.deps import CallerDep, ContainerDep, DecodeGateDep, rate_limited
from facesocial.api.forms import Flag
from facesocial.api.image_input import ImageForm, ImageUpload, image_form
from facesocial.api.openapi import IMAGE_ERRORS, error_responses, image_request_body
from facesocial.api.routing import ApiRoute
from facesocial.domains.ai_detection import images
from facesocial.domains.ai_detection.catalogue import WEIGHT_MAX
from facesocial.domains.ai_detection.methods_repo import MethodUpdate
from facesocial.domains.ai_detection.service import Accepted
from facesocial.services.principal import Principal
from facesocial.services.serving_context import ServingScope

router = APIRouter(
    prefix="/api/v1/ai-detection",
    tags=["ai-detection"],
    route_class=ApiRoute,
    redirect_slashes=False,
)
# Analyses count against the upload limit "ai_detection" (unlimited until settings define it);
# reads and erasure against the job-polling limit, so a client polling its job keeps uploading.
_UPLOAD_LIMIT = [Depends(rate_limited("ai_detection"))]
_READ_LIMIT = [Depends(rate_limited("jobs"))]
# Pages beyond this are refused (422), not passed to SQL (an offset beyond 2^63 is a 500 there).
_MAX_PAGE = 100_000
_NOT_FOUND = error_responses(errors.AiResultNotFoundError)
_IMAGE_NOT_FOUND = error_responses(errors.AiResultNotFoundError, errors.ReportImageNotFoundError)


class AnalyzeForm(ImageForm):
    image: ImageUpload = Field(description="The image (JPEG, PNG, WebP, HEIC, AVIF, ...)")
    methods: list[str] | str | None = Field(
        default=None,
        description="Run only these methods (a list, or comma-separated): metadata, ela, noise, texture, "
        "frequency, model, extra_model, faces. Default: every active method",
    )
    run_async: Flag = Field(
        default=False,
        alias="async",
        description="Analyse as a job (202 + job_id) whatever the size; larger images always are",
    )

    def method_names(self) -> list[str] | None:
        if self.methods is None:
            return None
        return self.methods.split(",") if isinstance(self.methods, str) else list(self.methods)


@router.post(
    "/analyze",
    name="analyze",
    response_model=None,
    dependencies=_UPLOAD_LIMIT,
    openapi_extra=image_request_body(AnalyzeForm),
    responses={
        202: {"description": "Analysed as a job: result_id, job_id, status_url (poll GET /results/{id})"},
        **error_responses(*IMAGE_ERRORS, errors.ModelUnavailableError),
    },
)
def analyze(
    request: Request,
    container: ContainerDep,
    caller: CallerDep,
    gate: DecodeGateDep,
    form: Annotated[AnalyzeForm, image_form(AnalyzeForm)],
) -> Any:
    """Judge one image: verdict band, score, contributing factors and the per-method report.

    Images over ``ai_detection.sync_max_pixels`` pixels, or with ``async`` true, are analysed as a
    job: 202 with ``result_id``, ``job_id`` and ``status_url``.
    """
    with gate.admit(form.pixel_weight(container.settings.limits)):
        outcome = container.ai_detection.analyze(
            form.image.data,
            form.image.filename,
            methods=form.method_names(),
            run_async=form.run_async,
            caller=caller,
            scope=ServingScope.for_request(container, caller, request.headers),
        )
    if isinstance(outcome, Accepted):
        return JSONResponse({"success": True, **outcome.body}, status_code=202)
    request.state.outcome = outcome
    return {"success": True, **outcome.body}


@router.get(
    "/results/{result_id}",
    name="get_result",
    response_model=None,
    dependencies=_READ_LIMIT,
    responses=_NOT_FOUND,
)
def get_result(container: ContainerDep, caller: CallerDep, result_id: str) -> dict[str, Any]:
    """The stored report; while its job runs, its status and progress."""
    return {"success": True, **container.ai_detection.get(result_id[:64], caller)}


def _image(container: ContainerDep, caller: Principal, result_id: str, kind: str) -> Response:
    media_type, data = container.ai_detection.image(result_id[:64], kind, caller)
    return Response(content=data, media_type=media_type, headers={"Cache-Control": "private, max-age=3600"})


_PNG: dict[int | str, dict[str, Any]] = {200: {"content": {"image/png": {}}, "description": "The image"}}
_JPEG: dict[int | str, dict[str, Any]] = {200: {"content": {"image/jpeg": {}}, "description": "The image"}}


@router.get(
    "/results/{result_id}/ela.png",
    name="get_ela_image",
    response_class=Response,
    dependencies=_READ_LIMIT,
    responses={**_PNG, **_IMAGE_NOT_FOUND},
)
def get_ela_image(container: ContainerDep, caller: CallerDep, result_id: str) -> Response:
    """The error-level-analysis visualisation (PNG)."""
    return _image(container, caller, result_id, images.ELA)


@router.get(
    "/results/{result_id}/heatmap.png",
    name="get_heatmap_image",
    response_class=Response,
    dependencies=_READ_LIMIT,
    responses={**_PNG, **_IMAGE_NOT_FOUND},
)
def get_heatmap_image(container: ContainerDep, caller: CallerDep, result_id: str) -> Response:
    """The visual-anomaly heatmap (PNG)."""
    return _image(container, caller, result_id, images.HEATMAP)


@router.get(
    "/results/{result_id}/thumbnail.jpg",
    name="get_thumbnail",
    response_class=Response,
    dependencies=_READ_LIMIT,
    responses={**_JPEG, **_IMAGE_NOT_FOUND},
)
def get_thumbnail(container: ContainerDep, caller: CallerDep, result_id: str) -> Response:
    """A JPEG preview of the upload, at most 256 px on its longest side."""
    return _image(container, caller, result_id, images.THUMBNAIL)


@router.delete(
    "/results/{result_id}",
    name="delete_result",
    response_model=None,
    dependencies=_READ_LIMIT,
    responses=_NOT_FOUND,
)
def delete_result(container: ContainerDep, caller: CallerDep, result_id: str) -> dict[str, Any]:
    """Erase the upload, its result, method rows, metadata document and images; cancel its job."""
    return {"success": True, **container.ai_detection.delete(result_id[:64], caller)}


@router.get("/uploads", name="list_uploads", response_model=None, dependencies=_READ_LIMIT)
def list_uploads(
    container: ContainerDep,
    caller: CallerDep,
    page: Annotated[int, Query(ge=1, le=_MAX_PAGE)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
    band: Annotated[Literal["real", "uncertain", "ai_generated"] | None, Query()] = None,
    status: Annotated[
        Literal["pending", "processing", "completed", "failed", "cancelled"] | None, Query()
    ] = None,
) -> dict[str, Any]:
    """The caller's analyses, newest first (``total`` counts every match of the filters)."""
    return {"success": True, **container.ai_detection.uploads(caller, page, page_size, band, status)}


@router.get("/methods", name="list_methods", response_model=None, dependencies=_READ_LIMIT)
def list_methods(container: ContainerDep, _caller: CallerDep) -> dict[str, Any]:
    """Every method: description, weight, active flag, and whether this installation runs it."""
    return {"success": True, **container.ai_detection.methods()}


class MethodChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method_name: str = Field(min_length=1, max_length=100)
    weight: float | None = Field(default=None, ge=0.0, le=WEIGHT_MAX, allow_inf_nan=False)
    is_active: bool | None = None


def require_operator(caller: CallerDep) -> Principal:
    if not caller.is_operator:
        raise errors.ForbiddenError(
            "The ensemble's weights apply to every tenant's analyses: only the operator's API key "
            "may change them"
        )
    return caller


@router.put(
    "/methods",
    name="update_methods",
    response_model=None,
    dependencies=[Depends(require_operator), Depends(rate_limited("admin"))],
    responses=error_responses(errors.ForbiddenError, errors.MethodNotFoundError),
)
def update_methods(
    container: ContainerDep,
    changes: Annotated[list[MethodChange], Body(min_length=1, max_length=50)],
) -> dict[str, Any]:
    """Change weights (0..9.99) and active flags (operator only); the next analysis uses them."""
    updates = [MethodUpdate(c.method_name, c.weight, c.is_active) for c in changes]
    return {"success": True, **container.ai_detection.update_methods(updates)}
