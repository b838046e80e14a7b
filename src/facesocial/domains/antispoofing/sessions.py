"""Liveness sessions in SQL (the truth) and in ``session:{session_id}`` (document 000 §6).

SQL holds every session with the evaluator's state and a ``version``: a writer names the version
it read, and a stale writer changes nothing (optimistic concurrency), so two requests racing on
one session never both advance it. The key-value mirror (Redis when scaled, memory when
embedded) carries the document's hash fields with the session's remaining lifetime as its TTL;
it is written after each commit and only serves reads of the status, never decisions.

The bearer token is never stored: the row keeps its SHA-256, so a copy of the database hands
out no live session.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update

from facesocial import errors
from facesocial.services.sessions import SessionStore
from facesocial.store.db import Database
from facesocial.store.tables import AntispoofingCheck, LivenessSession
from facesocial.store.types import utcnow

# 256 bits: the token is the only credential of the session's WebSocket.
TOKEN_BYTES = 32
# The longest accepted token string (token_urlsafe(32) is 43 characters).
MAX_TOKEN_CHARS = 128


def token_hash(token: str) -> str:
    """SHA-256 (hex, 64 characters) of a session token, as stored in ``session_token``."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def as_utc(moment: datetime) -> datetime:
    """SQLite reads timestamps back naive (stored as UTC): make every one aware."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class SessionSnapshot:
    """One session as read, with the version a writer must name."""

    pk: uuid.UUID
    tenant_id: uuid.UUID | None
    api_key_id: uuid.UUID | None
    user_id: uuid.UUID | None
    external_user_id: uuid.UUID | None
    challenges: list[str]
    max_attempts: int
    timeout_seconds: int
    status: str
    overall_result: bool | None
    failure_reason: str | None
    attempts_count: int
    progress: dict[str, Any]
    version: int
    created_at: datetime
    expires_at: datetime
    completed_at: datetime | None
    consumed_at: datetime | None
    consumed_by: str | None

    @property
    def session_id(self) -> str:
        return str(self.pk)

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at


@dataclass(frozen=True, slots=True)
class SessionUpdate:
    """What a step writes: the new state and the document's columns derived from it."""

    progress: dict[str, Any]
    status: str
    current_challenge: str | None
    challenges_completed: list[str]
    attempts_count: int
    overall_result: bool | None
    failure_reason: str | None
    completed_at: datetime | None
    expires_at: datetime


def _snapshot(row: LivenessSession) -> SessionSnapshot:
    return SessionSnapshot(
        pk=row.id,
        tenant_id=row.tenant_id,
        api_key_id=row.api_key_id,
        user_id=row.user_id,
        external_user_id=row.external_user_id,
        challenges=list(row.challenges_required or []),
        max_attempts=int(row.max_attempts or 0),
        timeout_seconds=int(row.timeout_seconds or 0),
        status=row.session_status,
        overall_result=row.overall_result,
        failure_reason=row.failure_reason,
        attempts_count=int(row.attempts_count or 0),
        progress=dict(row.progress or {}),
        version=int(row.version),
        created_at=as_utc(row.created_at),
        expires_at=as_utc(row.expires_at) if row.expires_at else as_utc(row.created_at),
        completed_at=as_utc(row.completed_at) if row.completed_at else None,
        consumed_at=as_utc(row.consumed_at) if row.consumed_at else None,
        consumed_by=row.consumed_by,
    )


class LivenessSessions:
    """The repository of liveness sessions (SQL + key-value mirror)."""

    def __init__(self, database: Database, mirror: SessionStore) -> None:
        self._db = database
        self._mirror = mirror

    def create(
        self,
        *,
        tenant_id: uuid.UUID,
        api_key_id: uuid.UUID | None,
        user_id: uuid.UUID | None,
        external_user_id: uuid.UUID | None,
        challenges: list[str],
        max_attempts: int,
        timeout_seconds: int,
        progress: dict[str, Any],
    ) -> tuple[str, SessionSnapshot]:
        """Store a new active session; returns (token, snapshot). The token is shown only here."""
        token = new_token()
        created = utcnow()
        row = LivenessSession(
            id=uuid.uuid4(),
            session_token=token_hash(token),
            tenant_id=tenant_id,
            api_key_id=api_key_id,
            user_id=user_id,
            external_user_id=external_user_id,
            challenges_required=challenges,
            max_attempts=max_attempts,
            timeout_seconds=timeout_seconds,
            current_challenge=challenges[0] if challenges else None,
            challenges_completed=[],
            attempts_count=0,
            session_status="active",
            progress=progress,
            version=0,
            created_at=created,
            expires_at=created + timedelta(seconds=timeout_seconds),
        )
        with self._db.session() as session:
            session.add(row)
            session.flush()
            snapshot = _snapshot(row)
        self._mirror_put(snapshot)
        return token, snapshot

    def find(self, token: str, tenant_id: uuid.UUID | None) -> SessionSnapshot:
        """The session of ``token``; another tenant's is reported exactly like a missing one.

        ``tenant_id`` None: the token alone identifies the caller (the session's WebSocket).
        Raises ``LIVENESS_SESSION_NOT_FOUND`` (404).
        """
        if not token or len(token) > MAX_TOKEN_CHARS:
            raise errors.LivenessSessionNotFoundError()
        with self._db.session(readonly=True) as session:
            row = session.scalar(
                select(LivenessSession).where(LivenessSession.session_token == token_hash(token))
            )
            if row is None or (tenant_id is not None and row.tenant_id != tenant_id):
                raise errors.LivenessSessionNotFoundError()
            return _snapshot(row)

    def save(
        self, snapshot: SessionSnapshot, change: SessionUpdate, check: AntispoofingCheck | None
    ) -> SessionSnapshot:
        """Write ``change`` if nobody wrote since ``snapshot`` was read (and the check row, in one commit).

        Raises ``LIVENESS_SESSION_BUSY`` (409) when another request advanced the session first.
        """
        with self._db.session() as session:
            result = session.execute(
                update(LivenessSession)
                .where(LivenessSession.id == snapshot.pk, LivenessSession.version == snapshot.version)
                .values(
                    progress=change.progress,
                    version=snapshot.version + 1,
                    session_status=change.status,
                    current_challenge=change.current_challenge,
                    challenges_completed=change.challenges_completed,
                    attempts_count=change.attempts_count,
                    overall_result=change.overall_result,
                    failure_reason=change.failure_reason,
                    completed_at=change.completed_at,
                    expires_at=change.expires_at,
                )
            )
            if _rowcount(result) != 1:
                raise errors.LivenessSessionBusyError()
            if check is not None:
                session.add(check)
            row = session.get(LivenessSession, snapshot.pk, populate_existing=True)
            assert row is not None
            saved = _snapshot(row)
        self._mirror_put(saved)
        return saved

    def expire(self, snapshot: SessionSnapshot) -> None:
        """Mark an active session past its time as expired (idempotent; losing a race is fine)."""
        with self._db.session() as session:
            session.execute(
                update(LivenessSession)
                .where(LivenessSession.id == snapshot.pk, LivenessSession.session_status == "active")
                .values(
                    session_status="expired",
                    failure_reason="expired",
                    overall_result=False,
                    version=LivenessSession.version + 1,
                )
            )
        self._mirror.end(snapshot.session_id)

    def consume(self, snapshot: SessionSnapshot, operation: str, progress: dict[str, Any]) -> bool:
        """Mark a completed, unexpired, unused session used by ``operation``; False if it was not.

        One conditional UPDATE: of two requests presenting the same session, one wins.
        """
        with self._db.session() as session:
            result = session.execute(
                update(LivenessSession)
                .where(
                    LivenessSession.id == snapshot.pk,
                    LivenessSession.session_status == "completed",
                    LivenessSession.consumed_at.is_(None),
                    LivenessSession.expires_at > utcnow(),
                )
                .values(
                    consumed_at=utcnow(),
                    consumed_by=operation,
                    progress=progress,
                    version=LivenessSession.version + 1,
                )
            )
            used = _rowcount(result) == 1
        if used:
            self._mirror.end(snapshot.session_id)
        return used

    def purge_expired(self) -> int:
        """Delete sessions past ``expires_at`` (document 000 §7.2), with the face reference a
        completed, unused one still held; returns how many. Their check rows stay (audit)."""
        with self._db.session() as session:
            result = session.execute(delete(LivenessSession).where(LivenessSession.expires_at < utcnow()))
            return _rowcount(result)

    def _mirror_put(self, snapshot: SessionSnapshot) -> None:
        ttl = int((snapshot.expires_at - utcnow()).total_seconds())
        if ttl <= 0 or snapshot.status not in ("active", "completed") or snapshot.consumed_at is not None:
            self._mirror.end(snapshot.session_id)
            return
        # The document's hash fields (user_id, operation_type, created_at, attempts) plus status.
        self._mirror.put(
            snapshot.session_id,
            {
                "user_id": str(snapshot.external_user_id) if snapshot.external_user_id else None,
                "operation_type": "liveness",
                "created_at": snapshot.created_at.isoformat(),
                "attempts": snapshot.attempts_count,
                "status": snapshot.status,
            },
            ttl_seconds=ttl,
        )


def _rowcount(result: Any) -> int:
    # An UPDATE's CursorResult; typed as the general Result by SQLAlchemy's execute().
    return int(result.rowcount)
