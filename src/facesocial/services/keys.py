"""API keys (document 003): only a SHA-256 of the secret is stored; quota counted per call."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select, update

from facesocial import errors
from facesocial.services.principal import Principal
from facesocial.store.db import Database
from facesocial.store.tables import ApiKey
from facesocial.store.types import utcnow

KEY_PREFIX = "fs_"


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class IssuedKey:
    id: uuid.UUID
    secret: str  # shown once, never stored
    name: str
    role: str


class ApiKeyService:
    def __init__(self, database: Database) -> None:
        self._db = database

    def create(
        self,
        name: str,
        *,
        role: str = "admin",
        request_limit: int | None = None,
        expires_at: datetime | None = None,
        owner_id: uuid.UUID | None = None,
    ) -> IssuedKey:
        """A new key; keys with the same ``owner_id`` share one tenant (default: its own)."""
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        row = ApiKey(
            owner_id=owner_id,
            key_prefix=secret[:10],
            key_hash=hash_key(secret),
            key_name=name,
            role=role,
            request_limit=request_limit,
            expires_at=expires_at,
        )
        with self._db.session() as session:
            session.add(row)
            session.flush()
            key_id = row.id
        return IssuedKey(id=key_id, secret=secret, name=name, role=role)

    def count(self) -> int:
        with self._db.session() as session:
            return int(session.scalar(select(func.count()).select_from(ApiKey)) or 0)

    def authenticate(self, secret: str | None) -> Principal:
        """Check a presented key, count the request against its quota, return the caller."""
        if not secret:
            raise errors.MissingApiKeyError()
        now = utcnow()
        with self._db.session() as session:
            row = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(secret)))
            if row is None or not row.is_active:
                raise errors.InvalidApiKeyError()
            if row.expires_at is not None and _aware(row.expires_at) <= now:
                raise errors.ApiKeyExpiredError()
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
                role="admin" if row.role == "admin" else "user",
                tenant_id=row.owner_id or row.id,
                name=row.key_name,
                api_key_id=row.id,
            )


def _aware(moment: datetime) -> datetime:
    # SQLite returns naive datetimes for timezone-aware columns; they were written as UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
