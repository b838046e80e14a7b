"""SQL of the counting service: the tenant-scoped reads of videos and their result rows.

Every read takes the caller's tenant: another tenant's video is reported exactly like a missing
one (``COUNTING_VIDEO_NOT_FOUND``, 404), and result rows are only reached through an owned video.
Pages are ordered so that paging is stable (video time, then the row's own id).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session

from facesocial import errors
from facesocial.store.tables import Job
from facesocial.store.tables_counting import CountingResult, CountingVideo, DetectionResult, TrackingResult

# The longest id a route passes on (video ids are 36-character uuids).
MAX_ID = 64


def owned_video(session: Session, video_id: str, tenant_id: uuid.UUID) -> CountingVideo:
    """The caller's video ``video_id``; ``COUNTING_VIDEO_NOT_FOUND`` (404) if missing or another
    tenant's."""
    video = session.scalar(select(CountingVideo).where(CountingVideo.video_id == video_id[:MAX_ID]))
    if video is None or video.tenant_id != tenant_id:
        raise errors.CountingVideoNotFoundError(f"No counting video {video_id[:MAX_ID]!r}")
    return video


def job_of(session: Session, job_id: str | None) -> Job | None:
    return session.scalar(select(Job).where(Job.job_id == job_id)) if job_id else None


def jobs_of(session: Session, job_ids: Sequence[str | None]) -> dict[str, Job]:
    wanted = [j for j in job_ids if j]
    if not wanted:
        return {}
    return {job.job_id: job for job in session.scalars(select(Job).where(Job.job_id.in_(wanted)))}


def page_videos(
    session: Session, tenant_id: uuid.UUID, status: str | None, offset: int, limit: int
) -> tuple[int, list[CountingVideo]]:
    """The tenant's videos, newest first: (total, page)."""
    where: list[ColumnElement[bool]] = [CountingVideo.tenant_id == tenant_id]
    if status is not None:
        where.append(CountingVideo.status == status)
    query = select(CountingVideo).where(*where)
    rows = session.scalars(
        query.order_by(CountingVideo.created_at.desc(), CountingVideo.id).offset(offset).limit(limit)
    )
    return _total(session, query), list(rows)


def page_events(
    session: Session, video_id: str, line: str | None, zone: str | None, offset: int, limit: int
) -> tuple[int, list[CountingResult]]:
    """A video's counting events in time order (``line`` / ``zone``: only that counter's)."""
    where: list[ColumnElement[bool]] = [CountingResult.video_id == video_id]
    if line is not None:
        where.append(CountingResult.line_name == line)
    if zone is not None:
        where.append(CountingResult.zone_name == zone)
    query = select(CountingResult).where(*where)
    rows = session.scalars(
        query.order_by(CountingResult.timestamp_ms, CountingResult.counting_event_id)
        .offset(offset)
        .limit(limit)
    )
    return _total(session, query), list(rows)


def page_tracks(session: Session, video_id: str, offset: int, limit: int) -> tuple[int, list[TrackingResult]]:
    """A video's tracks by first appearance."""
    query = select(TrackingResult).where(TrackingResult.video_id == video_id)
    rows = session.scalars(
        query.order_by(TrackingResult.first_timestamp_ms, TrackingResult.track_id).offset(offset).limit(limit)
    )
    return _total(session, query), list(rows)


def page_detections(
    session: Session, video_id: str, frame: int | None, offset: int, limit: int
) -> tuple[int, list[DetectionResult]]:
    """A video's person boxes in frame order, then by confidence (``frame``: only that source
    frame's)."""
    where: list[ColumnElement[bool]] = [DetectionResult.video_id == video_id]
    if frame is not None:
        where.append(DetectionResult.frame_index == frame)
    query = select(DetectionResult).where(*where)
    rows = session.scalars(
        query.order_by(
            DetectionResult.frame_index, DetectionResult.confidence_score.desc(), DetectionResult.detection_id
        )
        .offset(offset)
        .limit(limit)
    )
    return _total(session, query), list(rows)


def _total(session: Session, query: Select[Any]) -> int:
    return int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
