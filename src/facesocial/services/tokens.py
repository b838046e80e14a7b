"""JWT bearer tokens (design document 001): HS256, claims ``user_id``, ``role``, ``exp``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import jwt

from facesocial import errors
from facesocial.services.principal import Principal

# No "operator": a token is signed by whoever holds the shared secret (often another service),
# so it must not be able to reach every tenant's index upkeep; the operator role comes only
# from an API key made on the server (`facesocial keys create --role operator`).
TokenRole = Literal["admin", "user"]


class TokenService:
    def __init__(self, secret: str, algorithm: str = "HS256", leeway_seconds: int = 30) -> None:
        if len(secret) < 32:
            # HS256 with a short secret is brute-forceable offline from any issued token.
            raise ValueError("the JWT secret must be at least 32 characters")
        self._secret = secret
        self._algorithm = algorithm
        self._leeway = leeway_seconds

    def issue(self, user_id: uuid.UUID, role: TokenRole, ttl_seconds: int = 3600) -> str:
        claims = {
            "user_id": str(user_id),
            "role": role,
            "exp": datetime.now(UTC) + timedelta(seconds=ttl_seconds),
            "iat": datetime.now(UTC),
        }
        return jwt.encode(claims, self._secret, algorithm=self._algorithm)

    def verify(self, authorization: str) -> Principal:
        """``Authorization`` header value → caller, or the document's error codes."""
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise errors.InvalidTokenFormatError("Use 'Authorization: Bearer <token>'")
        try:
            claims: dict[str, Any] = jwt.decode(
                token.strip(),
                self._secret,
                algorithms=[self._algorithm],  # never trust the token's own "alg"
                leeway=self._leeway,
                options={"require": ["exp", "user_id", "role"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise errors.InvalidTokenError("The token has expired") from exc
        except jwt.PyJWTError as exc:
            raise errors.InvalidTokenError() from exc
        role = claims.get("role")
        if role not in ("admin", "user"):
            raise errors.InvalidTokenError("The token's role must be admin or user")
        try:
            subject = uuid.UUID(str(claims["user_id"]))
        except ValueError as exc:
            raise errors.InvalidTokenError("The token's user_id must be a UUID") from exc
        return Principal(kind="jwt", role=role, tenant_id=subject, name=f"jwt:{subject}")
