"""ASGI middleware: authenticate ``/api/`` requests from their headers, before any body byte is read.

An unauthenticated 200 MB upload is answered 401 after reading its headers only: the refusal
goes out with ``Connection: close`` so the server never has to drain the body. Failed
authentications are counted per client address (GCRA, ``rate_limits.limits["auth_failures"]``);
a client over that limit is answered 429 ``RATE_LIMITED`` before its credentials are even looked
at, so guessing keys costs the guesser time, not the database.

``PUBLIC_PATHS`` (account registration and login) pass without credentials; a client blocked by
the failed-authentication limit is refused there too, and the login route counts its failures
through ``scope["state"][COUNT_AUTH_FAILURE]``. A login token (``account_id`` claim) is accepted
only while its account is active, checked in SQL on every request.

The caller and the request context land in ``scope["state"]`` (``principal``, ``context``), where
``api/deps.py`` and the audit middleware (which stays outside this one, so refused calls are
audited too) read them.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import math
import time

import anyio.to_thread
from fastapi.routing import iter_route_contexts
from starlette.datastructures import Headers
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from facesocial import errors
from facesocial.api.audit_middleware import SKIP_AUDIT, context_from_scope
from facesocial.api.errors import envelope, store_unavailable
from facesocial.container import Container
from facesocial.services.principal import Principal
from facesocial.store.kv import rate_limit_key

log = logging.getLogger(__name__)

AUTH_FAILURES = "auth_failures"  # the rate-limit name in settings and in the Redis/memory key
# Reached without credentials (api/routers/auth.py): exactly these paths, any method.
PUBLIC_PATHS = frozenset({"/api/v1/auth/register", "/api/v1/auth/login"})
# scope["state"] key of a public request: a no-argument callable counting one failed login of
# this client address; it raises RateLimitedError (429) once the address is over the limit.
COUNT_AUTH_FAILURE = "count_auth_failure"


class AuthMiddleware:
    def __init__(self, app: ASGIApp, container: Container, prefix: str = "/api/") -> None:
        self.app = app
        self.container = container
        self.prefix = prefix
        self.gatekeeper = Gatekeeper(container)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        if scope["path"] in PUBLIC_PATHS:
            await self._public(scope, receive, send)
            return
        headers = Headers(scope=scope)
        try:
            principal = await anyio.to_thread.run_sync(self.gatekeeper.admit, headers, client_key(scope))
        except Exception as exc:
            if isinstance(exc, _ThrottledError):
                # The failed-authentication limit refused it: counted in the metrics, not audited
                # (api/audit_middleware.py), so a blocked client cannot grow the database.
                state[SKIP_AUDIT] = True
                refusal = exc.error
            else:
                refusal = _as_domain_error(exc)
            _name_route(scope)
            state["context"] = context_from_scope(scope, api_key_id=None)
            state["error"] = (refusal.code, refusal.message)
            await refuse(refusal, scope, receive, send)
            return
        state["principal"] = principal
        state["context"] = context_from_scope(
            scope, api_key_id=str(principal.api_key_id) if principal.api_key_id else principal.name
        )
        await self.app(scope, receive, send)

    async def _public(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Registration and login: no credentials, but a blocked address stays blocked."""
        state = scope["state"]
        client = client_key(scope)
        try:
            await anyio.to_thread.run_sync(self.gatekeeper.refuse_public_if_blocked, client)
        except Exception as exc:
            refusal = exc.error if isinstance(exc, _ThrottledError) else _as_domain_error(exc)
            state[SKIP_AUDIT] = isinstance(exc, _ThrottledError)
            _name_route(scope)
            state["context"] = context_from_scope(scope, api_key_id=None)
            state["error"] = (refusal.code, refusal.message)
            await refuse(refusal, scope, receive, send)
            return
        state["context"] = context_from_scope(scope, api_key_id=None)
        state[COUNT_AUTH_FAILURE] = functools.partial(self.gatekeeper.count_public_failure, client)
        await self.app(scope, receive, send)


class Gatekeeper:
    """Who is calling, under the failed-authentication limit: the rules of every transport (the
    HTTP middleware below, the attention WebSocket), so a socket cannot guess keys faster."""

    def __init__(self, container: Container) -> None:
        self.container = container

    def caller(self, headers: Headers, client: str) -> Principal:
        """:meth:`admit` for callers outside the middleware: every refusal is a FaceSocialError
        (401, or 429 RATE_LIMITED once the address is over the limit)."""
        try:
            return self.admit(headers, client)
        except _ThrottledError as exc:
            raise exc.error from None

    def refuse_public_if_blocked(self, client: str) -> None:
        if self._failure_limit() is not None:
            self._refuse_if_blocked(client)

    def count_public_failure(self, client: str) -> None:
        limit = self._failure_limit()
        if limit is None:
            return
        try:
            self._count_failure(client, *limit)
        except _ThrottledError as exc:
            raise exc.error from None

    def admit(self, headers: Headers, client: str) -> Principal:
        """The caller, or the error to answer; counts failures of this client address.

        A refusal by the failed-authentication limit raises ``_ThrottledError`` (the middleware
        answers it without auditing); :meth:`caller` raises its RATE_LIMITED error instead."""
        limit = self._failure_limit()
        if limit is not None:
            self._refuse_if_blocked(client)
        try:
            return self._authenticate(headers)
        except errors.FaceSocialError as exc:
            if exc.status == 401 and limit is not None:
                self._count_failure(client, *limit)  # raises RATE_LIMITED once over the limit
            raise

    def _authenticate(self, headers: Headers) -> Principal:
        """An API key (X-API-Key) wins; else, when JWT is configured, a bearer token."""
        api_key = headers.get("x-api-key")
        authorization = headers.get("authorization")
        tokens = self.container.tokens
        if api_key:
            return self.container.keys.authenticate(api_key)
        if authorization:
            # Without a configured secret, only login tokens signed with the installation's own
            # secret exist; a shared-secret token without account_id keeps working as before.
            principal = self.container.account_tokens.verify(authorization, require_account=tokens is None)
            if principal.account_id is not None:
                self.container.accounts.require_active(principal.account_id)
            return principal
        if tokens is not None:
            raise errors.MissingTokenError("Send 'Authorization: Bearer <token>' or an X-API-Key header")
        return self.container.keys.authenticate(None)  # raises MISSING_API_KEY

    # --- failed-authentication limit ---------------------------------------------------------------
    def _failure_limit(self) -> tuple[float, int] | None:
        settings = self.container.settings.rate_limits
        limit = settings.limits.get(AUTH_FAILURES)
        if not settings.enabled or limit is None:
            return None
        return limit.rate_per_second, limit.burst

    def _refuse_if_blocked(self, client: str) -> None:
        # The GCRA state only moves on failures; a marker with the time the block ends lets every
        # request of a blocked client be refused without touching credentials or the limiter.
        marker = self.container.kv.get(_blocked_key(client))
        if marker is None:
            return
        retry = max(1, math.ceil(float(marker) - time.time()))
        raise _ThrottledError(
            errors.RateLimitedError(
                f"Too many failed authentications from this address; retry in {retry} s", retry_after=retry
            )
        )

    def _count_failure(self, client: str, rate_per_second: float, burst: int) -> None:
        """Count one failure; the one over the limit is answered 429 and blocks the address."""
        decision = self.container.rate_limiter.hit(
            rate_limit_key(AUTH_FAILURES, client), rate_per_second, burst
        )
        if decision.allowed:
            return
        wait = max(1.0, decision.retry_after_seconds)
        self.container.kv.set(_blocked_key(client), str(time.time() + wait).encode(), math.ceil(wait))
        log.warning("failed authentications from %s over the limit: blocked for %.0f s", client, wait)
        retry = math.ceil(wait)
        raise _ThrottledError(
            errors.RateLimitedError(
                f"Too many failed authentications from this address; retry in {retry} s", retry_after=retry
            )
        )


class _ThrottledError(Exception):
    """A refusal by the failed-authentication limit (``error``, 429), told apart from a 429 of
    the per-caller limits, which authenticated callers meet and which stay audited."""

    def __init__(self, error: errors.FaceSocialError) -> None:
        super().__init__(error.message)
        self.error = error


def _blocked_key(client: str) -> str:
    return rate_limit_key(f"{AUTH_FAILURES}_blocked", client)


def client_key(scope: Scope) -> str:
    """The client address that failures count against.

    ``scope["client"]`` is the socket peer, or the X-Forwarded-For client when the peer is a
    trusted proxy (``intake.trusted_proxies``, applied by uvicorn's ProxyHeadersMiddleware in
    ``create_app``). IPv6 clients count per /64: one subscriber line gets a whole /64, so keying
    on single addresses would let it rotate through 2^64 of them.
    """
    client = scope.get("client")
    host = str(client[0]) if client else "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:100]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def _name_route(scope: Scope) -> None:
    """Set ``scope["route"]`` as routing would have, so the audit row and the metrics label of
    a refused call name its route (``POST /api/v1/face-recognition/register``), not the raw path."""
    routes = getattr(scope.get("app"), "routes", None)
    if routes is None:
        return
    for context in iter_route_contexts(routes):  # included routers flattened, as routing sees them
        match, _child = context.matches(scope)
        if match is Match.FULL:
            scope["route"] = context.original_route
            return


def _as_domain_error(exc: Exception) -> errors.FaceSocialError:
    if isinstance(exc, errors.FaceSocialError):
        return exc
    # A database that does not answer while the key is looked up: the same 503 a route gives.
    translated = store_unavailable(exc)
    if translated is None:
        raise exc
    return translated


async def refuse(exc: errors.FaceSocialError, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer the error envelope now; close the connection if a request body is still unread."""
    response = envelope(exc.code, exc.message, exc.status, exc.details or None)
    if "retry_after" in exc.details:
        response.headers["Retry-After"] = str(exc.details["retry_after"])
    if has_body(scope):
        # Otherwise the server would read (and discard) the whole body to reuse the connection.
        response.headers["Connection"] = "close"
    await response(scope, receive, send)


def has_body(scope: Scope) -> bool:
    headers = Headers(scope=scope)
    if "transfer-encoding" in headers:
        return True
    length = headers.get("content-length", "0").strip()
    return not length.isdigit() or int(length) > 0
