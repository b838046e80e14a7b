"""``/api/v1/demographics``: age, gender, emotion per face; one image or a batch."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Request, UploadFile

from facesocial import errors
from facesocial.api.deps import ContainerDep, ContextDep, rate_limited, read_upload
from facesocial.services.demographics import BATCH_MAX_IMAGES, NamedImage

router = APIRouter(prefix="/api/v1/demographics", tags=["demographics"])


@router.post("/analyze", name="analyze", dependencies=[Depends(rate_limited("demographics"))])
def analyze(
    request: Request,
    container: ContainerDep,
    ctx: ContextDep,
    image: Annotated[UploadFile, File(description="JPEG, PNG, WebP or BMP")],
) -> dict[str, Any]:
    """Per face: estimated age, age range and group, gender + confidence, emotion + confidence."""
    outcome = container.demographics.analyze(read_upload(image, container), ctx=ctx)
    request.state.outcome = outcome
    return {"success": True, **outcome.body}


@router.post("/batch", name="batch", dependencies=[Depends(rate_limited("batch"))])
def batch(
    request: Request,
    container: ContainerDep,
    ctx: ContextDep,
    images: Annotated[list[UploadFile], File(description=f"1 to {BATCH_MAX_IMAGES} images")],
) -> dict[str, Any]:
    """Many images: a result or an error for each, in order; one bad image fails only itself."""
    if len(images) > BATCH_MAX_IMAGES:
        raise errors.ValidationFailedError(
            f"A batch holds at most {BATCH_MAX_IMAGES} images; {len(images)} were sent"
        )
    named = []
    for upload in images:
        try:
            named.append(NamedImage(upload.filename or "", read_upload(upload, container)))
        except errors.FaceSocialError as exc:  # e.g. one oversize image: that item's error only
            named.append(NamedImage(upload.filename or "", b"", exc))
    outcome = container.demographics.batch(named, ctx=ctx)
    request.state.outcome = outcome
    return {"success": True, **outcome.body}
