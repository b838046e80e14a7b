"""Rows of the attention schema → response bodies (one place decides every answer's shape).

Times are ISO 8601 UTC strings; ids are strings; scores are 0..100.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime
from typing import Any

from facesocial.domains.attention.summary import AttentionFigures
from facesocial.store.tables import AttentionAlert, Meeting, MeetingSummary, Participant
from facesocial.store.types import iso as _iso


def _id(value: uuid.UUID | None) -> str | None:
    return str(value) if value is not None else None


def meeting(row: Meeting) -> dict[str, Any]:
    return {
        "meeting_id": str(row.id),
        "title": row.title,
        "description": row.description,
        "status": row.status,
        "group_id": _id(row.group_id),
        "host_id": _id(row.host_id),
        "start_time": _iso(row.start_time),
        "end_time": _iso(row.end_time),
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
    }


def participant(row: Participant) -> dict[str, Any]:
    return {
        "participant_id": str(row.id),
        "meeting_id": str(row.meeting_id),
        "user_id": _id(row.user_id),
        "display_name": row.display_name,
        "track_id": row.track_id,
        "stream_id": row.stream_id,
        "joined_at": _iso(row.joined_at),
        "left_at": _iso(row.left_at),
        "is_active": row.is_active,
    }


def alert(row: AttentionAlert) -> dict[str, Any]:
    return {
        "alert_id": str(row.id),
        "meeting_id": str(row.meeting_id),
        "participant_id": str(row.participant_id),
        "alert_type": row.alert_type,
        "severity": row.severity,
        "message": row.message,
        "duration_seconds": row.duration_seconds,
        "created_at": _iso(row.created_at),
        "resolved_at": _iso(row.resolved_at),
        "is_open": row.resolved_at is None,
    }


def stored_summary(row: MeetingSummary) -> dict[str, Any]:
    return {
        "source": "stored",
        "meeting_id": str(row.meeting_id),
        "duration_minutes": row.duration_minutes,
        "participant_count": row.participant_count,
        "avg_attention_score": row.avg_attention_score,
        "min_attention_score": row.min_attention_score,
        "max_attention_score": row.max_attention_score,
        "total_alerts": row.total_alerts,
        "low_attention_segments": row.low_attention_segments,
        "created_at": _iso(row.created_at),
    }


def live_summary(
    meeting_id: uuid.UUID,
    duration: int | None,
    participants: int,
    alerts: int,
    found: AttentionFigures,
    computed_at: datetime,
) -> dict[str, Any]:
    return {
        "source": "live",
        "meeting_id": str(meeting_id),
        "duration_minutes": duration,
        "participant_count": participants,
        "avg_attention_score": found.avg_attention_score,
        "min_attention_score": found.min_attention_score,
        "max_attention_score": found.max_attention_score,
        "total_alerts": alerts,
        "low_attention_segments": found.low_attention_segments,
        "created_at": _iso(computed_at),
    }


def metric_row(row: Any) -> dict[str, Any]:
    """A ``MetricRow`` / ``MinuteRow`` dataclass of the metrics store, JSON-ready."""
    plain: dict[str, Any] = {}
    for field in dataclasses.fields(row):
        value = getattr(row, field.name)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, uuid.UUID):
            value = str(value)
        plain[field.name] = value
    return plain
