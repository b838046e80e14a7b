"""One live stream (WebSocket) of a meeting: frames → attention, participants, alerts, metrics, live state.

:class:`LiveStream` is the socket's state outside HTTP. Its methods run in a worker thread, one
call at a time (ws.py guarantees it); the face pipeline they use is shared and thread-safe.

* Participants: the first frame a face track appears in, ``container.meetings.join(...,
  track_id=, stream_id=<socket id>)`` creates its participant; when the session ends the track
  (unseen for the tracker's ``max_missed_seconds``) or the socket closes, ``leave``.
* Alerts: the session's ``opened`` / ``escalated`` / ``closed`` events become
  ``open_alert`` / ``update_alert`` / ``close_alert`` of the meeting service; the answer carries
  each event's ``alert_id``.
* Metrics: one ``MetricRow`` per participant per wall-clock second (the last frame of that
  second), buffered and written by :meth:`LiveStream.flush` at most every
  ``metrics_flush_seconds`` (and at close). One row a second is the resolution the per-minute
  roll-up and the charts use; 10-30 rows a second per face would only multiply the table.
* Live state in the key-value store (document 004 §4, through the ``KeyValue`` port):
  ``ws_sessions:{meeting_id}:{socket_id}`` while the socket is open (TTL :data:`PRESENCE_TTL`,
  refreshed by every flush; counting these keys gives the meeting's sockets across server
  processes, and their meeting ids are document 004's ``active_meetings``: the port has no sets,
  and a separately kept set would outlive a crashed server), and
  ``attention:{meeting_id}:{participant_id}``: the participant's latest scores (JSON, TTL
  ``live_ttl_seconds``, 300 s by default as in §4.2), written at each flush, removed on leave.
"""

from __future__ import annotations

import json
import logging
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from facesocial import errors
from facesocial.analytics.attention import AlertEvent, AttentionSession, FaceAttention, FrameAttention
from facesocial.container import Container
from facesocial.services.principal import Principal
from facesocial.store.attention_metrics import MetricRow
from facesocial.vision.decode_gate import DecodeGate
from facesocial.vision.image import decode_image, probe_image

log = logging.getLogger(__name__)

# A socket's presence key outlives its last refresh by this long (s): an idle socket's worker
# refreshes it every flush interval, a crashed server's keys vanish within it.
PRESENCE_TTL = 30
WS_SESSIONS = "ws_sessions:"
LATEST = "attention:"


def presence_key(meeting_id: uuid.UUID | str, socket_id: str = "") -> str:
    """``ws_sessions:{meeting_id}:{socket_id}``; without ``socket_id`` the meeting's prefix."""
    return f"{WS_SESSIONS}{meeting_id}:{socket_id}"


def latest_key(meeting_id: uuid.UUID | str, participant_id: uuid.UUID | str = "") -> str:
    """``attention:{meeting_id}:{participant_id}``; without ``participant_id`` the meeting's prefix."""
    return f"{LATEST}{meeting_id}:{participant_id}"


def live_meetings(container: Container) -> set[str]:
    """Ids of the meetings with at least one open socket on any server (document 004 ``active_meetings``)."""
    return {key[len(WS_SESSIONS) :].split(":", 1)[0] for key in container.kv.keys(WS_SESSIONS)}


def socket_count(container: Container, meeting_id: uuid.UUID | str) -> int:
    """Open sockets of the meeting across server processes (their presence keys)."""
    return len(container.kv.keys(presence_key(meeting_id)))


def latest_scores(container: Container, meeting_id: uuid.UUID | str) -> list[dict[str, Any]]:
    """The latest scores of each participant streamed in the last ``live_ttl_seconds``, by participant id."""
    out = []
    kv = container.kv
    for key in kv.keys(latest_key(meeting_id)):
        raw = kv.get(key)
        if raw is None:  # expired between the listing and the read
            continue
        try:
            out.append(json.loads(raw))
        except ValueError:
            log.warning("unreadable live state under %s", key)
    return sorted(out, key=lambda item: str(item.get("participant_id")))


@dataclass(slots=True)
class _Second:
    """The last face of one participant in one wall-clock second, to become one metric row."""

    face: FaceAttention
    at: datetime


@dataclass(slots=True)
class LiveStream:
    """The state of one socket on one active meeting (module docstring).

    ``clock``: wall-clock UTC (metric times, leave times); ``monotonic``: seconds for the flush
    pacing. Both are parameters so the tests can drive time.
    """

    container: Container
    meeting_id: uuid.UUID
    caller: Principal
    socket_id: str
    gate: DecodeGate
    session: AttentionSession = field(init=False)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    monotonic: Callable[[], float] = field(default=time.monotonic)
    participants: dict[int, uuid.UUID] = field(default_factory=dict)
    open_alerts: dict[tuple[int, str], uuid.UUID] = field(default_factory=dict)
    last_ms: int | None = None
    _seconds: dict[tuple[uuid.UUID, int], _Second] = field(default_factory=dict)
    _latest: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)
    _last_flush: float = 0.0
    closed: bool = False
    # Set by a flush that found the meeting erased: the socket closes (MEETING_NOT_FOUND).
    meeting_gone: bool = False

    def __post_init__(self) -> None:
        self.session = AttentionSession(self.container.frame_pipeline, self.container.settings.attention)
        self._last_flush = self.monotonic()

    # --- frames ------------------------------------------------------------------------------------
    def process(self, data: bytes, timestamp_ms: int) -> dict[str, Any]:
        """Analyse one encoded frame (any image the decoder takes) at ``timestamp_ms``; the answer.

        Answer: ``{"type": "frame", "frame_index", "timestamp_ms", "faces": [FaceAttention.as_dict()
        + participant_id], "alerts": [AlertEvent.as_dict() + participant_id + alert_id]}``.
        Raises the decoder's errors (IMAGE_TOO_LARGE 413, NOT_AN_IMAGE 415, IMAGE_TRUNCATED 422,
        ...), SERVER_BUSY (503) from the decode gate, VALIDATION_ERROR (422) for a timestamp before
        the previous frame's, and the meeting service's (MEETING_ENDED 409 when the meeting ended).
        """
        limits = self.container.settings.limits.model_copy(
            update={"max_image_bytes": self.container.settings.attention.max_frame_bytes}
        )
        header = probe_image(data, limits)
        with self.gate.admit(header.pixels):
            rgb = decode_image(data, limits).rgb
            frame = self.session.process(rgb, timestamp_ms)
        self.last_ms = frame.timestamp_ms
        return self._record(frame)

    def _record(self, frame: FrameAttention) -> dict[str, Any]:
        now = self.clock()
        faces = []
        for face in frame.faces:
            participant_id = self._participant(face.track_id, now)
            faces.append({**face.as_dict(), "participant_id": str(participant_id)})
            self._seconds[(participant_id, math.floor(now.timestamp()))] = _Second(face, now)
            self._latest[participant_id] = {
                **face.as_dict(),
                "participant_id": str(participant_id),
                "timestamp_ms": frame.timestamp_ms,
                "updated_at": now.isoformat(),
            }
        alerts = [self._alert(event, now) for event in frame.alerts]
        for track_id in frame.ended_tracks:
            self._leave(track_id, now)
        if self.monotonic() - self._last_flush >= self.container.settings.attention.metrics_flush_seconds:
            self.flush()
        return {
            "type": "frame",
            "frame_index": frame.frame_index,
            "timestamp_ms": frame.timestamp_ms,
            "faces": faces,
            "alerts": alerts,
        }

    def _participant(self, track_id: int, now: datetime) -> uuid.UUID:
        participant_id = self.participants.get(track_id)
        if participant_id is None:
            row = self.container.meetings.join(
                self.meeting_id, self.caller, track_id=track_id, stream_id=self.socket_id
            )
            participant_id = self.participants[track_id] = row.id
        return participant_id

    def _alert(self, event: AlertEvent, now: datetime) -> dict[str, Any]:
        meetings = self.container.meetings
        participant_id = self._participant(event.track_id, now)
        key = (event.track_id, event.alert_type)
        alert_id = self.open_alerts.get(key)
        if event.state == "opened" or alert_id is None:
            alert_id = meetings.open_alert(self.meeting_id, participant_id, event)
            self.open_alerts[key] = alert_id
        elif event.state == "escalated":
            meetings.update_alert(alert_id, event)
        if event.state == "closed":
            meetings.close_alert(alert_id, event, at=now)
            del self.open_alerts[key]
        return {**event.as_dict(), "participant_id": str(participant_id), "alert_id": str(alert_id)}

    def _leave(self, track_id: int, now: datetime) -> None:
        participant_id = self.participants.pop(track_id, None)
        if participant_id is None:
            return
        self.container.meetings.leave(participant_id, now)
        self._latest.pop(participant_id, None)
        self.container.kv.delete(latest_key(self.meeting_id, participant_id))

    # --- metrics and live state ------------------------------------------------------------------------
    def flush(self, *, everything: bool = False) -> int:
        """Write the buffered metric rows of completed seconds (all of them when ``everything``),
        the participants' latest scores and the socket's presence key; the rows written."""
        self._last_flush = self.monotonic()
        current = math.floor(self.clock().timestamp())
        due = [key for key in self._seconds if everything or key[1] < current]
        rows = [_metric_row(self.meeting_id, key[0], self._seconds.pop(key)) for key in sorted(due)]
        rows = self._rows_the_meeting_takes(rows) if rows else rows
        if rows:
            self.container.attention_metrics.write(rows)
            if self._meeting_end() is None and self.meeting_gone:
                # Erased between the check and the write: its metrics must not outlive it.
                self.container.attention_metrics.delete_meeting(self.meeting_id)
        kv = self.container.kv
        ttl = self.container.settings.attention.live_ttl_seconds
        for participant_id, scores in self._latest.items():
            kv.set(latest_key(self.meeting_id, participant_id), json.dumps(scores).encode(), ttl)
        self._latest.clear()
        if not self.closed:
            self.touch()
        return len(rows)

    def _meeting_end(self) -> datetime | None:
        """The meeting's end (``datetime.max`` while it runs); None, with ``meeting_gone`` set,
        when it was erased."""
        try:
            meeting = self.container.meetings.get(self.meeting_id, self.caller)
        except errors.MeetingNotFoundError:
            self.meeting_gone = True
            return None
        if meeting.status == "ended" and meeting.end_time is not None:
            end = meeting.end_time
            return end if end.tzinfo else end.replace(tzinfo=UTC)
        return datetime.max.replace(tzinfo=UTC)

    def _rows_the_meeting_takes(self, rows: list[MetricRow]) -> list[MetricRow]:
        """A deleted meeting takes no rows; an ended one none dated at or after its end (the socket
        learns of either within STATUS_CHECK_SECONDS, and keeps analysing until then)."""
        end = self._meeting_end()
        if end is None:
            return []
        return [row for row in rows if row.time < end]

    def touch(self) -> None:
        """Refresh this socket's presence key (``ws_sessions:{meeting}:{socket}``)."""
        presence = json.dumps({"tenant_id": str(self.caller.tenant_id), "socket_id": self.socket_id})
        self.container.kv.set(presence_key(self.meeting_id, self.socket_id), presence.encode(), PRESENCE_TTL)

    def flush_due(self) -> bool:
        return self.monotonic() - self._last_flush >= self.container.settings.attention.metrics_flush_seconds

    # --- end -----------------------------------------------------------------------------------------
    def close(self) -> None:
        """End the stream: close the session and its open alerts, every participant leaves, the
        metrics are flushed and the live state removed. Idempotent; each step runs even when an
        earlier one failed (the first failure is raised at the end)."""
        if self.closed:
            return
        self.closed = True
        now = self.clock()
        failure: Exception | None = None
        steps: list[Callable[[], None]] = [
            lambda: self._close_alerts(now),
            lambda: self._leave_all(now),
            lambda: self._final_flush(),
        ]
        for step in steps:
            try:
                step()
            except Exception as exc:  # every step must get its chance; the first failure is kept
                log.exception("closing live stream %s of meeting %s", self.socket_id, self.meeting_id)
                failure = failure or exc
        if failure is not None:
            raise failure

    def _close_alerts(self, now: datetime) -> None:
        events = self.session.close(self.last_ms if self.last_ms is not None else 0)
        for event in events:
            # (close_alert leaves an alert alone that ending the meeting resolved already)
            if (event.track_id, event.alert_type) in self.open_alerts:
                self._alert(event, now)

    def _leave_all(self, now: datetime) -> None:
        for track_id in list(self.participants):
            self._leave(track_id, now)  # idempotent: ending the meeting may have done it

    def _final_flush(self) -> None:
        try:
            self.flush(everything=True)
        finally:
            self.container.kv.delete(presence_key(self.meeting_id, self.socket_id))


def _metric_row(meeting_id: uuid.UUID, participant_id: uuid.UUID, second: _Second) -> MetricRow:
    face = second.face
    return MetricRow(
        meeting_id=meeting_id,
        participant_id=participant_id,
        time=second.at.replace(microsecond=0),
        attention_score=round(face.attention_score, 2),
        gaze_score=round(face.gaze_score, 2),
        head_pose_score=round(face.head_pose_score, 2),
        eye_openness_score=round(face.eye_openness_score, 2),
        is_looking_away=face.is_looking_away,
        is_drowsy=face.is_drowsy,
    )
