"""FastAPI dependencies: the container, the authenticated caller, limits, request context."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request, Security, UploadFile
from fastapi.security import APIKeyHeader

from facesocial import errors
from facesocial.api.audit_middleware import context_from_scope
from facesocial.container import Container
from facesocial.services.context import RequestContext
from facesocial.services.principal import Principal
from facesocial.store.kv import rate_limit_key

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key")
_authorization_header = APIKeyHeader(
    name="Authorization", auto_error=False, description="Bearer JWT (HS256; claims user_id, role, exp)"
)


def get_container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(get_container)]


def authenticate(
    request: Request,
    container: ContainerDep,
    api_key: Annotated[str | None, Security(_api_key_header)] = None,
    authorization: Annotated[str | None, Security(_authorization_header)] = None,
) -> Principal:
    """An API key (X-API-Key) or, when JWT is configured, a bearer token."""
    tokens = container.tokens
    if api_key:
        principal = container.keys.authenticate(api_key)
    elif authorization and tokens is not None:
        principal = tokens.verify(authorization)
    elif tokens is not None:
        raise errors.MissingTokenError("Send 'Authorization: Bearer <token>' or an X-API-Key header")
    else:
        principal = container.keys.authenticate(None)  # raises MISSING_API_KEY
    request.state.principal = principal
    request.state.context = context_from_scope(
        request.scope, api_key_id=str(principal.api_key_id) if principal.api_key_id else principal.name
    )
    return principal


CallerDep = Annotated[Principal, Depends(authenticate)]


def get_context(request: Request, _caller: CallerDep) -> RequestContext:
    ctx: RequestContext = request.state.context
    return ctx


ContextDep = Annotated[RequestContext, Depends(get_context)]


def rate_limited(service: str) -> Callable[[Request, Principal, Container], None]:
    """A dependency counting the call against ``service``'s limit for this caller."""

    def check(request: Request, caller: CallerDep, container: ContainerDep) -> None:
        settings = container.settings.rate_limits
        limit = settings.limits.get(service)
        if not settings.enabled or limit is None:
            return
        decision = container.rate_limiter.hit(
            rate_limit_key(service, caller.rate_key), limit.rate_per_second, limit.burst
        )
        if not decision.allowed:
            retry = max(1, math.ceil(decision.retry_after_seconds))
            raise errors.RateLimitedError(
                f"Too many {service} requests: {limit.rate_per_second:g}/s with bursts of {limit.burst}",
                retry_after=retry,
            )

    return check


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
