"""``/api/v1/auth``: accounts (document 003's ``users``): register, login, the account's API keys.

``register`` and ``login`` are the only ``/api/`` routes reached without credentials
(api/auth_middleware.py ``PUBLIC_PATHS``). Failed logins count in the failed-authentication
limit of the client address (429 ``RATE_LIMITED`` past it); registrations have their own limit
per address (``rate_limits.limits["auth_register"]``). The other routes need the account's
login token or one of its keys; creating and deleting keys needs the login token, so a leaked
key cannot mint fresh quota. See docs/api.md "Accounts".
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, StrictStr, StringConstraints

from facesocial import errors
from facesocial.api.audit_middleware import context_from_scope
from facesocial.api.auth_middleware import COUNT_AUTH_FAILURE, client_key
from facesocial.api.deps import CallerDep, ContainerDep
from facesocial.api.forms import ONE_LINE_TEXT
from facesocial.api.openapi import error_responses
from facesocial.api.routing import ApiRoute
from facesocial.container import Container
from facesocial.services.accounts import MAX_EMAIL_LENGTH, MAX_NAME_LENGTH, MAX_PASSWORD_LENGTH
from facesocial.services.principal import Principal
from facesocial.services.usage import DEFAULT_DAYS, MAX_DAYS, MIN_DAYS, UsageService
from facesocial.store.kv import rate_limit_key
from facesocial.store.types import utcnow

router = APIRouter(prefix="/api/v1/auth", tags=["auth"], route_class=ApiRoute, redirect_slashes=False)

REGISTER_LIMIT = "auth_register"  # rate-limit name in settings

Username = Annotated[StrictStr, StringConstraints(strip_whitespace=True, min_length=3, max_length=50)]
# Free text refuses control and invisible characters like every other route's (api/forms.py);
# the service refuses the rest of Unicode's format characters (services/accounts.py).
Email = Annotated[
    StrictStr,
    StringConstraints(strip_whitespace=True, min_length=3, max_length=MAX_EMAIL_LENGTH),
    ONE_LINE_TEXT,
]
# Length limits only: WEAK_PASSWORD (422) says what a password lacks.
Password = Annotated[StrictStr, StringConstraints(min_length=1, max_length=MAX_PASSWORD_LENGTH)]
PersonName = Annotated[
    StrictStr, StringConstraints(strip_whitespace=True, max_length=MAX_NAME_LENGTH), ONE_LINE_TEXT
]
KeyName = Annotated[
    StrictStr, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), ONE_LINE_TEXT
]


def _blank_as_none(value: object) -> object:
    # An empty name field of a sign-up form means "not given", as it always has.
    return None if isinstance(value, str) and not value.strip() else value


OptionalName = Annotated[PersonName | None, BeforeValidator(_blank_as_none)]


class RegisterBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: Username = Field(description="3-50 of A-Z a-z 0-9 _ . - ; unique regardless of case")
    email: Email = Field(description="Stored lower-cased; unique")
    password: Password = Field(description="At least 10 characters, not the username or email")
    first_name: OptionalName = None
    last_name: OptionalName = None


class LoginBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # No character rule here: any name no account holds, NUL included, answers the same 401
    # INVALID_CREDENTIALS as a wrong password (services/accounts.py login).
    username: Annotated[StrictStr, StringConstraints(min_length=1, max_length=MAX_EMAIL_LENGTH)] | None = (
        Field(default=None, description="The username (any case), or the email")
    )
    email: Annotated[StrictStr, StringConstraints(min_length=1, max_length=MAX_EMAIL_LENGTH)] | None = None
    password: Password


class KeyCreateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: KeyName
    request_limit: StrictInt | None = Field(
        default=None,
        ge=1,
        description="Requests the key may make (default 1000, at most auth.max_key_request_limit)",
    )
    expires_at: datetime | None = Field(default=None, description="ISO 8601 with a timezone; in the future")


_AUTH_ERRORS = (errors.ValidationFailedError, errors.RateLimitedError)


@router.post(
    "/register",
    name="register_account",
    status_code=201,
    response_model=None,
    openapi_extra={"security": []},
    responses=error_responses(
        *_AUTH_ERRORS, errors.AccountExistsError, errors.WeakPasswordError, errors.RegistrationClosedError
    ),
)
def register(request: Request, container: ContainerDep, body: RegisterBody) -> dict[str, Any]:
    if not container.settings.auth.open_registration:
        raise errors.RegistrationClosedError()
    _limit_registrations(request, container)
    account = container.accounts.register(
        body.username,
        body.email,
        body.password,
        first_name=body.first_name,
        last_name=body.last_name,
    )
    return {"success": True, "account": account.as_dict()}


@router.post(
    "/login",
    name="login",
    response_model=None,
    openapi_extra={"security": []},
    responses=error_responses(*_AUTH_ERRORS, errors.InvalidCredentialsError, errors.AccountDisabledError),
)
def login(request: Request, container: ContainerDep, body: LoginBody) -> dict[str, Any]:
    if (body.username is None) == (body.email is None):
        raise errors.ValidationFailedError(
            "Send either username or email, with password", fields=["username"]
        )
    identifier = body.username if body.username is not None else body.email
    assert identifier is not None
    try:
        result = container.accounts.login(identifier, body.password)
    except errors.InvalidCredentialsError:
        count: Callable[[], None] | None = getattr(request.state, COUNT_AUTH_FAILURE, None)
        if count is not None:
            count()  # raises RATE_LIMITED (429) once this address is over the limit
        raise
    # The audit row of this call names the account that signed in.
    request.state.context = context_from_scope(
        request.scope, api_key_id=f"account:{result.account.account_id}"
    )
    return {
        "success": True,
        "access_token": result.access_token,
        "token_type": "bearer",
        "expires_in": result.expires_in,
        "account": result.account.as_dict(),
    }


@router.get(
    "/me",
    name="current_account",
    response_model=None,
    responses=error_responses(errors.ForbiddenError, errors.AccountDisabledError),
)
def me(container: ContainerDep, caller: CallerDep) -> dict[str, Any]:
    account_id = _account_of(caller)
    return {"success": True, "account": container.accounts.get(account_id).as_dict()}


@router.post(
    "/api-keys",
    name="create_account_api_key",
    status_code=201,
    response_model=None,
    responses=error_responses(
        errors.ValidationFailedError,
        errors.ForbiddenError,
        errors.TooManyApiKeysError,
        errors.AccountDisabledError,
    ),
)
def create_key(container: ContainerDep, caller: CallerDep, body: KeyCreateBody) -> dict[str, Any]:
    account_id = _account_of(caller, login_only=True)
    issued = container.accounts.create_key(
        account_id, body.name, request_limit=body.request_limit, expires_at=body.expires_at
    )
    keys = {key["id"]: key for key in container.accounts.list_keys(account_id)}
    return {"success": True, "api_key": issued.secret, "key": keys[str(issued.id)]}


@router.get(
    "/api-keys",
    name="list_account_api_keys",
    response_model=None,
    responses=error_responses(errors.ForbiddenError),
)
def list_keys(container: ContainerDep, caller: CallerDep) -> dict[str, Any]:
    keys = container.accounts.list_keys(_account_of(caller))
    return {"success": True, "total": len(keys), "keys": keys}


@router.delete(
    "/api-keys/{key_id}",
    name="delete_account_api_key",
    response_model=None,
    responses=error_responses(errors.ForbiddenError, errors.ApiKeyNotFoundError),
)
def delete_key(container: ContainerDep, caller: CallerDep, key_id: uuid.UUID) -> dict[str, Any]:
    key = container.accounts.revoke_key(_account_of(caller, login_only=True), key_id)
    return {"success": True, "key": key}


@router.get(
    "/usage",
    name="tenant_usage",
    response_model=None,
    responses=error_responses(errors.ValidationFailedError, errors.ForbiddenError),
)
def usage(
    container: ContainerDep,
    caller: CallerDep,
    days: Annotated[
        int, Query(ge=MIN_DAYS, le=MAX_DAYS, description="Whole UTC days, today included")
    ] = DEFAULT_DAYS,
    api_key_id: Annotated[
        uuid.UUID | None, Query(description="Only this key's calls (a key of another tenant: no rows)")
    ] = None,
) -> dict[str, Any]:
    """The caller's tenant's API calls (audit.usage_logs): totals, per day, per endpoint, per
    day and endpoint, per key: requests, 4xx and 5xx answers, mean and p95 processing time (ms);
    ``endpoint`` is the method and route template, ``unmatched`` for every request that matched no
    route; at most ``endpoint_limit`` (50) endpoints and 50 keys are named, the rest summed as
    ``other`` (``endpoints_total``, ``keys_total``: how many there were); and ``caller``: the
    credential's kind, role, tenant and, for an API key, its own record.
    Any credential of the tenant may read it, except that a ``user``-role API key sees only its
    own calls (403 FORBIDDEN when it asks for another key's)."""
    if caller.role == "user" and caller.kind == "api_key":
        if api_key_id is not None and api_key_id != caller.api_key_id:
            raise errors.ForbiddenError("A user key sees only its own usage")
        api_key_id = caller.api_key_id
    report = UsageService(container.database).report(caller.tenant_id, days=days, api_key_id=api_key_id)
    return {"success": True, "caller": _caller_facts(container, caller), **report}


def _caller_facts(container: Container, caller: Principal) -> dict[str, Any]:
    """Who is asking: credential kind, role, tenant, and the key's own record (no secret) when an
    API key made the call."""
    key = None
    if caller.api_key_id is not None:
        key = container.keys.find(str(caller.api_key_id)).as_dict(utcnow())
    return {
        "kind": caller.kind,
        "role": caller.role,
        "tenant_id": str(caller.tenant_id),
        "account_id": str(caller.account_id) if caller.account_id else None,
        "key": key,
    }


def _account_of(caller: Principal, *, login_only: bool = False) -> uuid.UUID:
    """The caller's account id; FORBIDDEN for callers that are not an account (or, with
    ``login_only``, that hold one of its keys rather than its login token)."""
    if caller.account_id is None:
        raise errors.ForbiddenError("This route is for accounts: sign in at POST /api/v1/auth/login")
    if login_only and caller.kind != "jwt":
        raise errors.ForbiddenError("Managing API keys needs the account's login token, not an API key")
    return caller.account_id


def _limit_registrations(request: Request, container: Container) -> None:
    settings = container.settings.rate_limits
    limit = settings.limits.get(REGISTER_LIMIT)
    if not settings.enabled or limit is None:
        return
    decision = container.rate_limiter.hit(
        rate_limit_key(REGISTER_LIMIT, client_key(request.scope)), limit.rate_per_second, limit.burst
    )
    if not decision.allowed:
        retry = max(1, math.ceil(decision.retry_after_seconds))
        raise errors.RateLimitedError(
            f"Too many registrations from this address; retry in {retry} s", retry_after=retry
        )
