"""FastAPI dependencies: the container, the authenticated caller, limits, request context, decode gate."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from facesocial import errors
from facesocial.container import Container
from facesocial.services.context import RequestContext
from facesocial.services.principal import Principal
from facesocial.store.kv import rate_limit_key
from facesocial.vision.decode_gate import DecodeGate

# Two distinct OpenAPI security schemes (generated clients and Swagger's "Authorize" offer
# both); a protected route lists them as alternatives. The check itself ran before the body
# was read, in api/auth_middleware.py: these only document it.
_api_key_scheme = APIKeyHeader(
    name="X-API-Key",
    scheme_name="ApiKeyAuth",
    description="An API key (`facesocial keys create`); it wins when both credentials are sent.",
    auto_error=False,
)
_bearer_scheme = HTTPBearer(
    scheme_name="BearerAuth",
    bearerFormat="JWT",
    description="A JWT (HS256; claims user_id, role, exp) when the server has auth.jwt_secret.",
    auto_error=False,
)


def get_container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(get_container)]


def authenticate(
    request: Request,
    _api_key: Annotated[str | None, Security(_api_key_scheme)] = None,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer_scheme)] = None,
) -> Principal:
    """The caller that the auth middleware admitted (an API key or a bearer token)."""
    principal = getattr(request.state, "principal", None)
    if not isinstance(principal, Principal):
        # Only reachable if a route outside /api/ asks for a caller: nothing authenticated it.
        raise errors.MissingApiKeyError("This route needs credentials but none were checked")
    return principal


CallerDep = Annotated[Principal, Depends(authenticate)]


def get_context(request: Request, _caller: CallerDep) -> RequestContext:
    ctx: RequestContext = request.state.context
    return ctx


ContextDep = Annotated[RequestContext, Depends(get_context)]


def get_decode_gate(request: Request) -> DecodeGate:
    gate: DecodeGate = request.app.state.decode_gate
    return gate


DecodeGateDep = Annotated[DecodeGate, Depends(get_decode_gate)]


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
