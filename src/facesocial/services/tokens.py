"""JWT bearer tokens (design document 001): HS256, claims ``user_id``, ``role``, ``exp``.

Tokens issued at login (services/accounts.py) also carry ``account_id`` (equal to ``user_id``):
the caller then checks in SQL that the account is still active (api/auth_middleware.py).
"""

from __future__ import annotations

import logging
import os
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import jwt

from facesocial import errors
from facesocial.services.principal import Principal

log = logging.getLogger(__name__)
JWT_KEY_FILE = "jwt.key"

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

    def issue(
        self,
        user_id: uuid.UUID,
        role: TokenRole,
        ttl_seconds: int = 3600,
        *,
        account_id: uuid.UUID | None = None,
    ) -> str:
        """A signed token; ``account_id`` (login tokens) must equal ``user_id``, the tenant."""
        claims: dict[str, Any] = {
            "user_id": str(user_id),
            "role": role,
            "exp": datetime.now(UTC) + timedelta(seconds=ttl_seconds),
            "iat": datetime.now(UTC),
        }
        if account_id is not None:
            claims["account_id"] = str(account_id)
        return jwt.encode(claims, self._secret, algorithm=self._algorithm)

    def verify(self, authorization: str, *, require_account: bool = False) -> Principal:
        """``Authorization`` header value → caller, or the document's error codes.

        ``require_account``: only login tokens (with an ``account_id`` claim) are accepted, as
        when the secret is the installation's own and no other issuer holds it. The caller must
        still check that the account is active (AccountService.require_active).
        """
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
        account = claims.get("account_id")
        if account is None:
            if require_account:
                raise errors.InvalidTokenError()
            return Principal(kind="jwt", role=role, tenant_id=subject, name=f"jwt:{subject}")
        if str(account) != str(subject):
            # An account's tenant is the account: a token naming another tenant is forged or broken.
            raise errors.InvalidTokenError("The token's account_id must equal its user_id")
        return Principal(
            kind="jwt", role=role, tenant_id=subject, name=f"account:{subject}", account_id=subject
        )


def installation_secret(secrets_dir: Path) -> str:
    """The JWT secret generated once per installation (``secrets_dir/jwt.key``, mode 0600).

    Used when ``auth.jwt_secret`` is not configured, so login works on a fresh embedded
    install. Processes starting at once agree on one secret: each writes its candidate to a
    private temporary file and links it into place, which fails if another got there first;
    the loser reads the winner's. The file is complete before it appears under its name.
    Raises OSError when the folder cannot be written.
    """
    path = secrets_dir / JWT_KEY_FILE
    if not path.exists():
        secrets_dir.mkdir(parents=True, exist_ok=True)
        candidate = secrets_dir / f".{JWT_KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        descriptor = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(candidate, path)
                log.warning("created %s to sign login tokens (or set FACESOCIAL_AUTH__JWT_SECRET)", path)
            except FileExistsError:
                pass  # another process won: use its secret
        finally:
            candidate.unlink(missing_ok=True)
    return path.read_text().strip()
