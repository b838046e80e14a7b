"""FastAPI dependencies: the container, the authenticated caller, the request context."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security, UploadFile
from fastapi.security import APIKeyHeader

from facesocial import errors
from facesocial.api.audit_middleware import context_from_scope
from facesocial.container import Container
from facesocial.services.context import RequestContext
from facesocial.services.keys import Principal

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key")


def get_container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(get_container)]


def require_api_key(
    request: Request,
    container: ContainerDep,
    api_key: Annotated[str | None, Security(_api_key_header)] = None,
) -> Principal:
    principal = container.keys.authenticate(api_key)
    request.state.principal = principal
    request.state.context = context_from_scope(request.scope, api_key_id=str(principal.key_id))
    return principal


CallerDep = Annotated[Principal, Depends(require_api_key)]


def get_context(request: Request, _caller: CallerDep) -> RequestContext:
    ctx: RequestContext = request.state.context
    return ctx


ContextDep = Annotated[RequestContext, Depends(get_context)]


def read_upload(upload: UploadFile, container: Container) -> bytes:
    """Read an uploaded image, refusing more than the byte limit without reading it all."""
    limit = container.settings.limits.max_image_bytes
    if upload.size is not None and upload.size > limit:
        raise errors.ImageTooLargeError(
            f"The image is {upload.size} bytes; the limit is {limit}", limit_bytes=limit
        )
    data = upload.file.read(limit + 1)
    if len(data) > limit:
        raise errors.ImageTooLargeError(f"The image exceeds the limit of {limit} bytes", limit_bytes=limit)
    return data
