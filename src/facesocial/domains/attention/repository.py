"""Tenant-scoped look-ups of meetings, participants and alerts inside a session.

Every look-up answers a malformed id, an unknown one and another tenant's alike (the 404 of its
kind): a caller learns nothing about other tenants' meetings. Participants and alerts are reached
only through their meeting, so their tenant is the meeting's.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from facesocial import errors
from facesocial.store.tables import AttentionAlert, Meeting, MeetingSummary, Participant

MEETING_STATUSES = ("scheduled", "active", "ended")
ALERT_TYPES = ("not_attentive", "looking_away", "drowsy")
SEVERITIES = ("info", "warning", "critical")


def as_uuid(value: uuid.UUID | str) -> uuid.UUID | None:
    """``value`` as a UUID, or None when it is not one (callers answer that with their 404)."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value)[:64])
    except ValueError:
        return None


def meeting(
    session: Session, meeting_id: uuid.UUID | str, tenant_id: uuid.UUID, *, lock: bool = False
) -> Meeting:
    """The tenant's meeting; MeetingNotFoundError (404) otherwise.

    ``lock``: hold the row until the transaction ends (PostgreSQL ``FOR UPDATE``), so concurrent
    transitions of one meeting run one after the other and the second sees the first's status.
    SQLite needs none: its writers are serialised already (BEGIN IMMEDIATE, store/db.py).
    """
    pk = as_uuid(meeting_id)
    row = session.get(Meeting, pk, with_for_update=lock) if pk is not None else None
    if row is None or row.tenant_id != tenant_id:
        raise errors.MeetingNotFoundError(f"No meeting {str(meeting_id)[:64]!r}")
    return row


def participant(session: Session, meeting_id: uuid.UUID, participant_id: uuid.UUID | str) -> Participant:
    """The meeting's participant; ParticipantNotFoundError (404) otherwise."""
    pk = as_uuid(participant_id)
    row = session.get(Participant, pk) if pk is not None else None
    if row is None or row.meeting_id != meeting_id:
        raise errors.ParticipantNotFoundError(f"No participant {str(participant_id)[:64]!r} in this meeting")
    return row


def alert(session: Session, meeting_id: uuid.UUID, alert_id: uuid.UUID | str) -> AttentionAlert:
    """The meeting's alert; AlertNotFoundError (404) otherwise."""
    pk = as_uuid(alert_id)
    row = session.get(AttentionAlert, pk) if pk is not None else None
    if row is None or row.meeting_id != meeting_id:
        raise errors.AlertNotFoundError(f"No alert {str(alert_id)[:64]!r} in this meeting")
    return row


def summary(session: Session, meeting_id: uuid.UUID) -> MeetingSummary | None:
    row: MeetingSummary | None = session.scalar(
        select(MeetingSummary).where(MeetingSummary.meeting_id == meeting_id)
    )
    return row


def meetings_of(tenant_id: uuid.UUID, status: str | None) -> Select[Any]:
    query = select(Meeting).where(Meeting.tenant_id == tenant_id)
    if status is not None:
        query = query.where(Meeting.status == status)
    return query


def count(session: Session, query: Select[Any]) -> int:
    return int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)


def open_alerts(session: Session, meeting_id: uuid.UUID) -> list[AttentionAlert]:
    return list(
        session.scalars(
            select(AttentionAlert).where(
                AttentionAlert.meeting_id == meeting_id, AttentionAlert.resolved_at.is_(None)
            )
        )
    )


def active_participants(session: Session, meeting_id: uuid.UUID) -> list[Participant]:
    return list(
        session.scalars(
            select(Participant).where(Participant.meeting_id == meeting_id, Participant.is_active.is_(True))
        )
    )


def alert_filter(
    meeting_id: uuid.UUID,
    *,
    alert_type: str | None = None,
    severity: str | None = None,
    resolved: bool | None = None,
    participant_id: uuid.UUID | None = None,
    since: datetime | None = None,
) -> Select[Any]:
    query = select(AttentionAlert).where(AttentionAlert.meeting_id == meeting_id)
    if alert_type is not None:
        query = query.where(AttentionAlert.alert_type == alert_type)
    if severity is not None:
        query = query.where(AttentionAlert.severity == severity)
    if resolved is True:
        query = query.where(AttentionAlert.resolved_at.is_not(None))
    elif resolved is False:
        query = query.where(AttentionAlert.resolved_at.is_(None))
    if participant_id is not None:
        query = query.where(AttentionAlert.participant_id == participant_id)
    if since is not None:
        query = query.where(AttentionAlert.created_at >= since)
    return query
