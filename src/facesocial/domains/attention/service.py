"""Meetings, their participants, alerts and summaries (document 004), scoped to the caller's tenant.

:class:`MeetingService` is ``container.meetings``. The REST routes (router.py) and the live and
recording analyses (live.py, recordings.py) share it: the live analysis joins participants,
persists alerts as the core's :class:`AlertEvent` s open, escalate and close, and lets
participants leave; the routes manage the meeting's life cycle
(``scheduled`` → ``active`` → ``ended``) and read its rows.

Per-frame metrics are not written here: they go to ``container.attention_metrics`` (the store
helper's :class:`AttentionMetricsStore`), which this service reads for summaries and charts.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from facesocial import errors
from facesocial.domains.attention import repository as repo
from facesocial.domains.attention import summary, views
from facesocial.services.context import RequestContext
from facesocial.services.principal import Principal
from facesocial.services.recognition import RecognitionService
from facesocial.services.serving_context import ServingScope
from facesocial.settings import AttentionSettings
from facesocial.store import recognition_repository as faces
from facesocial.store.attention_metrics import AttentionMetricsStore
from facesocial.store.db import Database
from facesocial.store.tables import AttentionAlert, Meeting, MeetingSummary, Participant
from facesocial.store.types import utcnow


class AlertEventLike(Protocol):
    """What the service reads of the core's ``AlertEvent`` (analytics/attention)."""

    @property
    def alert_type(self) -> str: ...

    @property
    def severity(self) -> str: ...

    @property
    def duration_seconds(self) -> float: ...

    @property
    def message(self) -> str: ...


# Bounds of a time range the client left open: every metric of the meeting (a meeting's rows are
# only its own, so no wider scan; store/attention_metrics.py needs explicit bounds).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)

MeetingChanges = dict[str, Any]  # any of title, description, group_id (None clears the group)


class MeetingService:
    def __init__(
        self,
        database: Database,
        metrics: Callable[[], AttentionMetricsStore],
        recognition: Callable[[], RecognitionService],
        settings: AttentionSettings,
    ) -> None:
        # Reached lazily: reading a meeting needs neither the metrics backend nor a model.
        self._db = database
        self._metrics = metrics
        self._recognition = recognition
        self._settings = settings

    # --- used by the live and recording analyses --------------------------------------------------

    def get(self, meeting_id: uuid.UUID | str, caller: Principal) -> Meeting:
        """The caller's meeting (detached). Raises MeetingNotFoundError (404) for a missing,
        malformed or other tenant's id."""
        with self._db.session(readonly=True) as session:
            row = repo.meeting(session, meeting_id, caller.tenant_id)
            session.expunge(row)
            return row

    def join(
        self,
        meeting_id: uuid.UUID | str,
        caller: Principal,
        *,
        display_name: str | None = None,
        user_id: uuid.UUID | None = None,
        track_id: int | None = None,
        stream_id: str | None = None,
    ) -> Participant:
        """Add an active participant (joined now) to a scheduled or active meeting.

        ``user_id``: the external id of an enrolled user of the tenant (USER_NOT_FOUND 404
        otherwise). ``track_id``/``stream_id``: the live analysis' face track and its connection.
        Raises MeetingNotFoundError (404), MeetingEndedError (409).
        """
        with self._db.session() as session:
            meeting = repo.meeting(session, meeting_id, caller.tenant_id, lock=True)
            if meeting.status == "ended":
                raise errors.MeetingEndedError(f"Meeting {meeting.id} has ended", status=meeting.status)
            if user_id is not None:
                faces.require_user(session, caller.tenant_id, user_id)
            row = Participant(
                id=uuid.uuid4(),
                meeting_id=meeting.id,
                user_id=user_id,
                display_name=display_name,
                track_id=track_id,
                stream_id=stream_id[:64] if stream_id else None,
                joined_at=utcnow(),
                is_active=True,
            )
            session.add(row)
            session.flush()
            session.expunge(row)
            return row

    def leave(self, participant_id: uuid.UUID, at: datetime | None = None) -> Participant | None:
        """Mark the participant as left at ``at`` (default now). Idempotent: a participant that
        already left keeps its first ``left_at``; an unknown id returns None. No tenant check:
        only for callers that obtained the id from :meth:`join`."""
        with self._db.session() as session:
            row = session.get(Participant, participant_id)
            if row is None:
                return None
            if row.is_active:
                row.is_active = False
                row.left_at = at or utcnow()
            session.flush()
            session.expunge(row)
            return row

    def open_alert(
        self,
        meeting_id: uuid.UUID,
        participant_id: uuid.UUID,
        event: AlertEventLike,
        *,
        at: datetime | None = None,
    ) -> uuid.UUID:
        """Persist an opened alert; returns its id. ``created_at`` is when the condition began:
        ``at`` (default now) minus ``event.duration_seconds``. Raises MeetingNotFoundError /
        ParticipantNotFoundError for an unknown meeting or a participant not of the meeting.

        In a meeting that has ended (a late event of an analysis still running) the alert is
        stored already resolved at the meeting's ``end_time``: no alert stays open after the end.
        """
        now = at or utcnow()
        with self._db.session() as session:
            # Locked: an end committing meanwhile is either seen here or sees this alert.
            meeting = session.get(Meeting, meeting_id, with_for_update=True)
            if meeting is None:
                raise errors.MeetingNotFoundError(f"No meeting {meeting_id}")
            repo.participant(session, meeting_id, participant_id)
            row = AttentionAlert(
                id=uuid.uuid4(),
                meeting_id=meeting_id,
                participant_id=participant_id,
                alert_type=event.alert_type[:50],
                severity=event.severity[:20],
                message=event.message,
                duration_seconds=round(max(0.0, float(event.duration_seconds)), 3),
                created_at=now - timedelta(seconds=max(0.0, float(event.duration_seconds))),
                resolved_at=meeting.end_time if meeting.status == "ended" else None,
            )
            session.add(row)
            return row.id

    def update_alert(self, alert_id: uuid.UUID, event: AlertEventLike) -> None:
        """An escalation or progress of an open alert: its severity, message and duration so far.
        A resolved alert (e.g. closed by the meeting's end) or an unknown id is left alone."""
        with self._db.session() as session:
            row = session.get(AttentionAlert, alert_id)
            if row is None or row.resolved_at is not None:
                return
            row.severity = event.severity[:20]
            row.message = event.message
            row.duration_seconds = round(max(0.0, float(event.duration_seconds)), 3)

    def close_alert(self, alert_id: uuid.UUID, event: AlertEventLike, *, at: datetime | None = None) -> None:
        """Resolve an open alert at ``at`` (default now) with the event's final duration and
        severity. Already resolved or unknown: left alone (a resolution is never moved)."""
        with self._db.session() as session:
            row = session.get(AttentionAlert, alert_id)
            if row is None or row.resolved_at is not None:
                return
            row.severity = event.severity[:20]
            row.message = event.message
            row.duration_seconds = round(max(0.0, float(event.duration_seconds)), 3)
            # The duration is stream time (a replay may run faster than the clock, a live stream
            # lags it): the stored span must agree with it, so the start is the resolution minus
            # that duration (for a live stream the same instant as when it opened, within lag).
            row.resolved_at = at or utcnow()
            row.created_at = row.resolved_at - timedelta(seconds=row.duration_seconds)

    # --- meetings ----------------------------------------------------------------------------------

    def create(
        self,
        caller: Principal,
        *,
        title: str,
        description: str | None = None,
        group_id: uuid.UUID | None = None,
    ) -> dict[str, Any]:
        """A scheduled meeting. ``group_id``: a face group of the tenant (GROUP_NOT_FOUND 404)."""
        with self._db.session() as session:
            if group_id is not None:
                faces.require_group(session, caller.tenant_id, group_id)
            row = Meeting(
                id=uuid.uuid4(),
                tenant_id=caller.tenant_id,
                title=title,
                description=description,
                host_id=caller.account_id or caller.api_key_id,
                status="scheduled",
                group_id=group_id,
            )
            session.add(row)
            session.flush()
            return views.meeting(row)

    def describe(self, meeting_id: str, caller: Principal) -> dict[str, Any]:
        with self._db.session(readonly=True) as session:
            row = repo.meeting(session, meeting_id, caller.tenant_id)
            body = views.meeting(row)
            body["participant_count"] = int(
                session.scalar(select(func.count()).where(Participant.meeting_id == row.id)) or 0
            )
            body["active_participants"] = len(repo.active_participants(session, row.id))
            body["open_alerts"] = len(repo.open_alerts(session, row.id))
            return body

    def page(self, caller: Principal, page: int, page_size: int, status: str | None) -> dict[str, Any]:
        """The tenant's meetings, newest first; ``total`` counts every match of ``status``."""
        query = repo.meetings_of(caller.tenant_id, status)
        with self._db.session(readonly=True) as session:
            total = repo.count(session, query)
            rows = session.scalars(
                query.order_by(Meeting.created_at.desc(), Meeting.id.desc())
                .offset((page - 1) * page_size)
                .limit(page_size)
            )
            items = [views.meeting(r) for r in rows]
        return {"items": items, "total": total, "page": page, "page_size": page_size}

    def update(self, meeting_id: str, caller: Principal, changes: MeetingChanges) -> dict[str, Any]:
        """Change title, description and/or group (in any status). Raises MeetingNotFoundError,
        GroupNotFoundError."""
        with self._db.session() as session:
            row = repo.meeting(session, meeting_id, caller.tenant_id, lock=True)
            if "title" in changes:
                row.title = changes["title"]
            if "description" in changes:
                row.description = changes["description"]
            if "group_id" in changes:
                group_id = changes["group_id"]
                if group_id is not None:
                    faces.require_group(session, caller.tenant_id, group_id)
                row.group_id = group_id
            row.updated_at = utcnow()
            session.flush()
            return views.meeting(row)

    def delete(self, meeting_id: str, caller: Principal) -> dict[str, Any]:
        """Erase the meeting with its participants, alerts, summary and metrics (child first,
        not relying on the dialect's cascades)."""
        with self._db.session() as session:
            row = repo.meeting(session, meeting_id, caller.tenant_id, lock=True)
            pk = row.id
            alerts = session.execute(delete(AttentionAlert).where(AttentionAlert.meeting_id == pk))
            session.execute(delete(MeetingSummary).where(MeetingSummary.meeting_id == pk))
            people = session.execute(delete(Participant).where(Participant.meeting_id == pk))
            session.delete(row)
            erased = {"alerts": alerts.rowcount, "participants": people.rowcount}  # type: ignore[attr-defined]
        # After the commit: metric rows without their meeting are unreachable (every read goes
        # through the meeting), so a failure here leaves no visible data, only rows to purge.
        erased["metrics"] = self._metrics().delete_meeting(pk)
        return {"meeting_id": str(pk), "deleted": True, "erased": erased}

    def start(self, meeting_id: str, caller: Principal) -> dict[str, Any]:
        """scheduled → active (start_time now). Other statuses: InvalidMeetingTransitionError 409."""
        with self._db.session() as session:
            row = repo.meeting(session, meeting_id, caller.tenant_id, lock=True)
            _require_status(row, "scheduled", "start")
            row.status = "active"
            row.start_time = utcnow()
            row.updated_at = row.start_time
            session.flush()
            return views.meeting(row)

    def end(self, meeting_id: str, caller: Principal) -> dict[str, Any]:
        """active → ended (end_time now): close open alerts and active participants at the end
        time, compute and store the summary. Other statuses: InvalidMeetingTransitionError 409."""
        with self._db.session() as session:
            row = repo.meeting(session, meeting_id, caller.tenant_id, lock=True)
            _require_status(row, "active", "end")
            now = utcnow()
            row.status = "ended"
            row.end_time = now
            row.updated_at = now
            for alert in repo.open_alerts(session, row.id):
                alert.resolved_at = now
                alert.duration_seconds = round(max(0.0, (now - alert.created_at).total_seconds()), 3)
            for person in repo.active_participants(session, row.id):
                person.is_active = False
                person.left_at = now
            session.flush()
            body = views.meeting(row)
            meeting_pk, start = row.id, row.start_time
        # The metrics are read outside the meeting's transaction: they live in the metrics store
        # (possibly another backend), and the live analysis stops writing once the status is ended.
        body["summary"] = self._store_summary(meeting_pk, start, now)
        return body

    def _store_summary(self, meeting_pk: uuid.UUID, start: datetime | None, end: datetime) -> dict[str, Any]:
        """Compute and store the summary of an ended meeting; one that exists already is returned
        as it is (a concurrent writer won, or the end's own write is being repeated)."""
        # Every minute of the meeting (its first starts before start_time: no bound there).
        minutes = self._metrics().per_minute(meeting_pk, None, EARLIEST, end)
        found = summary.figures(minutes, self._settings.low_attention_threshold)
        try:
            with self._db.session() as session:
                participants, alerts = _counts(session, meeting_pk)
                stored = MeetingSummary(
                    id=uuid.uuid4(),
                    meeting_id=meeting_pk,
                    duration_minutes=summary.duration_minutes(start, end),
                    participant_count=participants,
                    avg_attention_score=found.avg_attention_score,
                    min_attention_score=found.min_attention_score,
                    max_attention_score=found.max_attention_score,
                    total_alerts=alerts,
                    low_attention_segments=found.low_attention_segments,
                )
                session.add(stored)
                session.flush()
                return views.stored_summary(stored)
        except IntegrityError:  # the unique meeting_id: another request stored it first
            with self._db.session(readonly=True) as session:
                existing = repo.summary(session, meeting_pk)
                if existing is None:
                    if session.get(Meeting, meeting_pk) is None:  # erased while it ended
                        raise errors.MeetingNotFoundError("The meeting was erased while it ended") from None
                    raise
                return views.stored_summary(existing)

    def summary(self, meeting_id: str, caller: Principal) -> dict[str, Any]:
        """The stored summary of an ended meeting (``source`` "stored"), else one computed now
        from the metrics so far (``source`` "live"; duration up to now, None before the start)."""
        with self._db.session(readonly=True) as session:
            row = repo.meeting(session, meeting_id, caller.tenant_id)
            stored = repo.summary(session, row.id)
            if stored is not None:
                return views.stored_summary(stored)
            participants, alerts = _counts(session, row.id)
            meeting_pk, start, end = row.id, row.start_time, row.end_time
        if end is not None:
            # Ended, but the end's summary write did not happen (the metrics store failed then):
            # store it now, once, instead of answering a live figure for ever.
            return self._store_summary(meeting_pk, start, end)
        now = utcnow()
        rows = self._metrics().per_minute(meeting_pk, None, EARLIEST, LATEST) if start else []
        found = summary.figures(rows, self._settings.low_attention_threshold)
        duration = summary.duration_minutes(start, end or now)
        return views.live_summary(meeting_pk, duration, participants, alerts, found, now)

    def metrics(
        self,
        meeting_id: str,
        caller: Principal,
        *,
        participant_id: str | None,
        start: datetime | None,
        end: datetime | None,
        resolution: Literal["raw", "minute"],
        limit: int,
    ) -> dict[str, Any]:
        """Per-frame samples (``raw``, oldest first, at most ``limit``) or 1-minute roll-ups
        (``minute``) of the meeting, or of one participant."""
        with self._db.session(readonly=True) as session:
            row = repo.meeting(session, meeting_id, caller.tenant_id)
            person = repo.participant(session, row.id, participant_id).id if participant_id else None
            meeting_pk = row.id
            ended_at = row.end_time if row.status == "ended" else None
        store = self._metrics()
        low, high = start or EARLIEST, end or LATEST
        if ended_at is not None:
            # An ended meeting's metrics stop at its end (what its summary counted), whatever a
            # socket that had not yet noticed the end still sent.
            high = min(high, ended_at if ended_at.tzinfo else ended_at.replace(tzinfo=UTC))
        if resolution == "raw":
            items: Sequence[Any] = store.raw(meeting_pk, person, low, high, limit)
        else:
            items = store.per_minute(meeting_pk, person, low, high)[:limit]
        return {
            "meeting_id": str(meeting_pk),
            "participant_id": str(person) if person else None,
            "resolution": resolution,
            "count": len(items),
            "items": [views.metric_row(item) for item in items],
        }

    # --- participants ------------------------------------------------------------------------------

    def add_participant(
        self,
        meeting_id: str,
        caller: Principal,
        *,
        display_name: str | None,
        user_id: uuid.UUID | None,
    ) -> dict[str, Any]:
        return views.participant(self.join(meeting_id, caller, display_name=display_name, user_id=user_id))

    def participants(self, meeting_id: str, caller: Principal, active: bool | None) -> dict[str, Any]:
        with self._db.session(readonly=True) as session:
            row = repo.meeting(session, meeting_id, caller.tenant_id)
            query = select(Participant).where(Participant.meeting_id == row.id)
            if active is not None:
                query = query.where(Participant.is_active.is_(active))
            items = [
                views.participant(p)
                for p in session.scalars(query.order_by(Participant.joined_at, Participant.id))
            ]
        return {"meeting_id": str(row.id), "items": items, "total": len(items)}

    def leave_participant(self, meeting_id: str, participant_id: str, caller: Principal) -> dict[str, Any]:
        """The participant leaves now; ParticipantNotActiveError (409) if it already left."""
        with self._db.session() as session:
            meeting = repo.meeting(session, meeting_id, caller.tenant_id)
            row = repo.participant(session, meeting.id, participant_id)
            if not row.is_active:
                raise errors.ParticipantNotActiveError(f"Participant {row.id} left at {row.left_at}")
            row.is_active = False
            row.left_at = utcnow()
            session.flush()
            return views.participant(row)

    def identify_participant(
        self,
        meeting_id: str,
        participant_id: str,
        data: bytes,
        caller: Principal,
        ctx: RequestContext,
        *,
        face_index: int | None = None,
        threshold: float | None = None,
        scope: ServingScope | None = None,
    ) -> dict[str, Any]:
        """Identify the face in ``data`` against the meeting's face group (the whole tenant when
        the meeting has none) and bind the best match to the participant.

        ``scope``: the request's routing (face_detection and face_embedding are routed, recorded
        and named in ``serving`` as in face-recognition identify).

        No match: ``matched`` false and the participant unchanged (not an error: the face was
        seen, it is just nobody enrolled). A match replaces an earlier binding. Errors: those of
        face-recognition identify (image errors, NO_FACE_FOUND, GROUP_NOT_FOUND if the group went).
        """
        with self._db.session(readonly=True) as session:
            meeting = repo.meeting(session, meeting_id, caller.tenant_id)
            repo.participant(session, meeting.id, participant_id)
            meeting_pk, group_id = meeting.id, meeting.group_id
        outcome = self._recognition().identify(
            data,
            caller=caller,
            ctx=ctx,
            top_k=1,
            group_id=group_id,
            threshold=threshold,
            face_index=face_index,
            scope=scope,
        )
        found = outcome.body
        best = found["candidates"][0] if found["candidates"] else None
        with self._db.session() as session:
            row = repo.participant(session, meeting_pk, participant_id)
            if best is not None:
                row.user_id = uuid.UUID(best["user_id"])
            session.flush()
            person = views.participant(row)
        return {
            "matched": best is not None,
            "participant": person,
            "user_id": best["user_id"] if best else None,
            "similarity": best["similarity"] if best else None,
            "threshold": found["threshold"],
            "group_id": found["group_id"],
            "gallery_size": found["gallery_size"],
            "face": found["face"],
            "serving": found.get("serving"),
        }

    # --- alerts --------------------------------------------------------------------------------------

    def alerts(
        self,
        meeting_id: str,
        caller: Principal,
        *,
        alert_type: str | None,
        severity: str | None,
        resolved: bool | None,
        participant_id: str | None,
        page: int,
        page_size: int,
    ) -> dict[str, Any]:
        """The meeting's alerts, newest first; ``total`` counts every match of the filters."""
        with self._db.session(readonly=True) as session:
            row = repo.meeting(session, meeting_id, caller.tenant_id)
            person = repo.participant(session, row.id, participant_id).id if participant_id else None
            query = repo.alert_filter(
                row.id, alert_type=alert_type, severity=severity, resolved=resolved, participant_id=person
            )
            total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
            items = [
                views.alert(a)
                for a in session.scalars(
                    query.order_by(AttentionAlert.created_at.desc(), AttentionAlert.id.desc())
                    .offset((page - 1) * page_size)
                    .limit(page_size)
                )
            ]
        return {
            "meeting_id": str(row.id),
            "items": items,
            "total": total,
            "page": page,
            "page_size": page_size,
        }

    def resolve_alert(self, meeting_id: str, alert_id: str, caller: Principal) -> dict[str, Any]:
        """Resolve an open alert now (duration: since it began). AlertAlreadyResolvedError 409."""
        with self._db.session() as session:
            meeting = repo.meeting(session, meeting_id, caller.tenant_id)
            row = repo.alert(session, meeting.id, alert_id)
            if row.resolved_at is not None:
                raise errors.AlertAlreadyResolvedError(f"Alert {row.id} was resolved at {row.resolved_at}")
            now = utcnow()
            row.resolved_at = now
            row.duration_seconds = round(max(0.0, (now - row.created_at).total_seconds()), 3)
            session.flush()
            return views.alert(row)


def _require_status(row: Meeting, wanted: str, action: str) -> None:
    if row.status != wanted:
        raise errors.InvalidMeetingTransitionError(
            f"Cannot {action} a meeting that is {row.status} (only a {wanted} one)",
            status=row.status,
            action=action,
        )


def _counts(session: Session, meeting_id: uuid.UUID) -> tuple[int, int]:
    """(participants, alerts): people counted once per bound user, plus each unbound participant."""
    bound = session.scalar(
        select(func.count(func.distinct(Participant.user_id))).where(
            Participant.meeting_id == meeting_id, Participant.user_id.is_not(None)
        )
    )
    unbound = session.scalar(
        select(func.count()).where(Participant.meeting_id == meeting_id, Participant.user_id.is_(None))
    )
    alerts = session.scalar(select(func.count()).where(AttentionAlert.meeting_id == meeting_id))
    return int(bound or 0) + int(unbound or 0), int(alerts or 0)
