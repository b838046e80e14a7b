"""API keys (document 003): only a SHA-256 of the secret is stored; quota counted per call.

Keys are read from SQL on every request (no cache), so revoking or expiring one takes effect on
the next request of every running server process.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from facesocial import errors
from facesocial.services.principal import Principal, Role
from facesocial.store.db import Database
from facesocial.store.tables import ACCOUNT_ACTIVE, Account, ApiKey
from facesocial.store.types import utcnow

KEY_PREFIX = "fs_"
ROLES: tuple[Role, ...] = ("operator", "admin", "user")
_ROLES: dict[str, Role] = {role: role for role in ROLES}


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class IssuedKey:
    id: uuid.UUID
    secret: str  # shown once, never stored
    name: str
    role: str


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What an operator may see of a key: everything but the secret and its hash."""

    id: uuid.UUID
    prefix: str  # the secret's first 10 characters, e.g. "fs_AbC1234"
    name: str
    role: str
    tenant_id: uuid.UUID  # owner_id, or the key's own id
    shared_owner: bool  # True when created with an explicit owner
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    is_active: bool
    requests_made: int
    request_limit: int | None

    def state(self, now: datetime) -> str:
        """``active``, ``revoked`` or ``expired`` (what the next request would meet)."""
        if not self.is_active:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"

    def as_dict(self, now: datetime) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "prefix": self.prefix,
            "name": self.name,
            "role": self.role,
            "tenant_id": str(self.tenant_id),
            "shared_owner": self.shared_owner,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
            "active": self.is_active,
            "state": self.state(now),
            "requests_made": self.requests_made,
            "request_limit": self.request_limit,
        }


class ApiKeyService:
    def __init__(self, database: Database) -> None:
        self._db = database

    def create(
        self,
        name: str,
        *,
        role: Role = "admin",
        request_limit: int | None = None,
        expires_at: datetime | None = None,
        owner_id: uuid.UUID | None = None,
        account_id: uuid.UUID | None = None,
        guard: Callable[[Session], None] | None = None,
    ) -> IssuedKey:
        """A new key; keys with the same ``owner_id`` share one tenant (default: its own).

        ``account_id``: the account the key belongs to (core.accounts); it stops working when
        that account is no longer active, and goes with the account. ``guard`` runs in the
        insert's own transaction, before the insert (a limit checked there cannot be raced);
        whatever it raises refuses the key.
        """
        if role not in ROLES:
            raise errors.ValidationFailedError(f"role must be one of {', '.join(ROLES)} (got {role!r})")
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        row = ApiKey(
            owner_id=owner_id,
            account_id=account_id,
            key_prefix=secret[:10],
            key_hash=hash_key(secret),
            key_name=name,
            role=role,
            request_limit=request_limit,
            expires_at=expires_at,
        )
        with self._db.session() as session:
            if guard is not None:
                guard(session)
            session.add(row)
            session.flush()
            key_id = row.id
        return IssuedKey(id=key_id, secret=secret, name=name, role=role)

    def count(self) -> int:
        with self._db.session() as session:
            return int(session.scalar(select(func.count()).select_from(ApiKey)) or 0)

    def list_all(self) -> list[KeyInfo]:
        """Every key, oldest first."""
        with self._db.session() as session:
            rows = session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)).all()
            return [_info(row) for row in rows]

    def find(self, ref: str) -> KeyInfo:
        """The one key named by ``ref``: its id (whole, or the start of it) or its secret's prefix.

        ``ref`` is a UUID, at least 4 leading characters of one, or the 10-character prefix shown
        by ``keys list`` (a longer string, e.g. the whole secret, works too: only its prefix is
        compared). Raises ApiKeyNotFoundError (none) or AmbiguousApiKeyError (several).
        """
        with self._db.session() as session:
            return _info(self._resolve(session, ref))

    def revoke(self, ref: str) -> KeyInfo:
        """Deactivate a key for good (``is_active = false``): its next request gets INVALID_API_KEY."""
        with self._db.session() as session:
            row = self._resolve(session, ref)
            row.is_active = False
            return _info(row)

    def expire(self, ref: str, at: datetime) -> KeyInfo:
        """Set when a key stops working (past or future, timezone-aware); then API_KEY_EXPIRED."""
        if at.tzinfo is None:
            raise errors.ValidationFailedError("The expiry needs a timezone (e.g. 2027-01-31T00:00:00Z)")
        with self._db.session() as session:
            row = self._resolve(session, ref)
            row.expires_at = at.astimezone(UTC)
            return _info(row)

    def tenant_of(self, ref: str) -> uuid.UUID:
        """The tenant a new key shares when created with ``owner=ref`` (a key, or any tenant UUID)."""
        try:
            return self.find(ref).tenant_id
        except errors.ApiKeyNotFoundError:
            try:
                return uuid.UUID(ref)
            except ValueError:
                raise errors.ApiKeyNotFoundError(
                    f"{ref!r} is neither a tenant UUID nor the id or prefix of an API key"
                ) from None

    def _resolve(self, session: Session, ref: str) -> ApiKey:
        ref = ref.strip()
        if ref.startswith(KEY_PREFIX) and len(ref) >= len(KEY_PREFIX) + 4:
            wanted = ref[:10]
            rows = session.scalars(
                select(ApiKey).where(ApiKey.key_prefix.startswith(wanted, autoescape=True))
            ).all()
        elif len(ref) >= 4 and all(c in "0123456789abcdef-" for c in ref.lower()):
            # Keys are few (one per client application): compare the text form in Python, the
            # same on PostgreSQL (uuid) and SQLite (32 hex digits).
            wanted = ref.lower()
            rows = [row for row in session.scalars(select(ApiKey)).all() if str(row.id).startswith(wanted)]
        else:
            raise errors.ApiKeyNotFoundError(
                f"{ref!r} is not a key id (UUID, or its first 4+ characters) or prefix (fs_ and 4+ more)"
            )
        if not rows:
            raise errors.ApiKeyNotFoundError(f"No API key has the id or prefix {ref!r}")
        if len(rows) > 1:
            listed = ", ".join(f"{row.id} ({row.key_prefix})" for row in rows[:5])
            raise errors.AmbiguousApiKeyError(f"{ref!r} matches {len(rows)} API keys: {listed}")
        return rows[0]

    def authenticate(self, secret: str | None) -> Principal:
        """Check a presented key, count the request against its quota, return the caller."""
        if not secret:
            raise errors.MissingApiKeyError()
        now = utcnow()
        with self._db.session() as session:
            found = session.execute(
                select(ApiKey, Account.account_status)
                .outerjoin(Account, Account.account_id == ApiKey.account_id)
                .where(ApiKey.key_hash == hash_key(secret))
            ).first()
            if found is None or not found[0].is_active:
                raise errors.InvalidApiKeyError()
            row, account_status = found
            if row.expires_at is not None and row.expires_at <= now:
                raise errors.ApiKeyExpiredError()
            if row.account_id is not None and account_status != ACCOUNT_ACTIVE:
                # Checked before counting: a suspended account's calls do not use its quota.
                raise errors.AccountDisabledError()
            # One conditional UPDATE counts the request and enforces the quota atomically,
            # so concurrent requests cannot overshoot the limit.
            counted = session.execute(
                update(ApiKey)
                .where(ApiKey.id == row.id)
                .where((ApiKey.request_limit.is_(None)) | (ApiKey.requests_made < ApiKey.request_limit))
                .values(requests_made=ApiKey.requests_made + 1, last_used_at=now)
            )
            if counted.rowcount == 0:  # type: ignore[attr-defined]
                raise errors.ApiKeyQuotaExceededError(
                    f"The API key has used its limit of {row.request_limit} requests"
                )
            return Principal(
                kind="api_key",
                role=_ROLES.get(row.role, "user"),  # an unknown role gets the least rights
                tenant_id=row.owner_id or row.id,
                name=row.key_name,
                api_key_id=row.id,
                account_id=row.account_id,
            )


def _info(row: ApiKey) -> KeyInfo:
    return KeyInfo(
        id=row.id,
        prefix=row.key_prefix,
        name=row.key_name,
        role=row.role,
        tenant_id=row.owner_id or row.id,
        shared_owner=row.owner_id is not None,
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        is_active=row.is_active,
        requests_made=row.requests_made,
        request_limit=row.request_limit,
    )
