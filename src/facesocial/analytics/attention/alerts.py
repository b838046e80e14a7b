"""Attention alerts with hysteresis: ``not_attentive``, ``looking_away``, ``drowsy`` per face track.

Each (track, alert type) has one :class:`Hysteresis` machine fed every frame with two facts:
``bad`` (the condition holds: attention below ``not_attentive_below``, looking away, drowsy) and
``good`` (recovered: attention above ``not_attentive_clear_above``, which is higher, so values in
between neither open nor close; for the yes/no conditions ``good`` = not ``bad``).

* An alert opens when ``bad`` has held on every frame for ``open_seconds``; its ``started_ms`` is
  the first of those frames.
* An open alert closes when ``good`` has held on every frame for ``close_seconds``; it ended at
  the first of those frames (``duration_seconds`` runs from start to there).
* Severity grows with the time since ``started_ms``: info, warning after
  ``warning_after_seconds``, critical after ``critical_after_seconds``; each step is an
  ``escalated`` event. ``drowsy`` starts at warning (closed eyes are never a minor matter).

Requiring the condition on every frame of a span, with a gap between the open and the close
level, is what keeps a noisy signal from flapping (tests/unit/test_attention_scoring.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from facesocial.settings import AttentionSettings

AlertType = Literal["not_attentive", "looking_away", "drowsy"]
Severity = Literal["info", "warning", "critical"]
AlertState = Literal["opened", "escalated", "closed"]
ALERT_TYPES: tuple[AlertType, ...] = ("not_attentive", "looking_away", "drowsy")
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "critical")
_FIRST_SEVERITY: dict[AlertType, Severity] = {
    "not_attentive": "info",
    "looking_away": "info",
    "drowsy": "warning",
}
_MESSAGES: dict[AlertType, str] = {
    "not_attentive": "Attention score low",
    "looking_away": "Looking away from the screen",
    "drowsy": "Eyes closed too often (PERCLOS)",
}


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """A change of one alert: ``opened``, ``escalated`` (severity rose) or ``closed``.

    ``started_ms``: stream time (ms) the condition began; ``timestamp_ms``: the frame that caused
    the event; ``duration_seconds``: from ``started_ms`` to the event (for ``closed``: to the
    first recovered frame).
    """

    track_id: int
    alert_type: AlertType
    severity: Severity
    state: AlertState
    started_ms: int
    timestamp_ms: int
    duration_seconds: float
    message: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, with the same names."""
        return {
            "track_id": self.track_id,
            "alert_type": self.alert_type,
            "severity": self.severity,
            "state": self.state,
            "started_ms": self.started_ms,
            "timestamp_ms": self.timestamp_ms,
            "duration_seconds": round(self.duration_seconds, 3),
            "message": self.message,
        }


def severity_for(seconds: float, first: Severity, warning_after: float, critical_after: float) -> Severity:
    """Severity of an alert that has lasted ``seconds`` (never below ``first``)."""
    level = 2 if seconds >= critical_after else 1 if seconds >= warning_after else 0
    return SEVERITIES[max(level, SEVERITIES.index(first))]


class Hysteresis:
    """One alert machine (module docstring). Timestamps in ms must not decrease."""

    def __init__(
        self,
        track_id: int,
        alert_type: AlertType,
        *,
        open_seconds: float,
        close_seconds: float,
        warning_after_seconds: float,
        critical_after_seconds: float,
    ) -> None:
        self.track_id = track_id
        self.alert_type = alert_type
        self.open_ms = open_seconds * 1000.0
        self.close_ms = close_seconds * 1000.0
        self.warning_after = warning_after_seconds
        self.critical_after = critical_after_seconds
        self.is_open = False
        self.severity: Severity = _FIRST_SEVERITY[alert_type]
        self._bad_since: int | None = None
        self._good_since: int | None = None
        self._started_ms = 0

    def update(self, timestamp_ms: int, *, bad: bool, good: bool) -> list[AlertEvent]:
        """Feed one frame's facts; returns the events it caused (0, 1 or 2)."""
        self._bad_since = _since(self._bad_since, timestamp_ms) if bad else None
        self._good_since = _since(self._good_since, timestamp_ms) if good else None
        events: list[AlertEvent] = []
        if not self.is_open:
            if self._bad_since is not None and timestamp_ms - self._bad_since >= self.open_ms:
                self.is_open = True
                self._started_ms = self._bad_since
                self.severity = self._severity_at(timestamp_ms)
                events.append(self._event("opened", timestamp_ms, timestamp_ms))
            return events
        if self._good_since is not None and timestamp_ms - self._good_since >= self.close_ms:
            return [self.close(timestamp_ms, ended_ms=self._good_since)]
        severity = self._severity_at(timestamp_ms)
        if SEVERITIES.index(severity) > SEVERITIES.index(self.severity):
            self.severity = severity
            events.append(self._event("escalated", timestamp_ms, timestamp_ms))
        return events

    def close(self, timestamp_ms: int, ended_ms: int | None = None) -> AlertEvent:
        """Close the open alert now (a track ended, the stream closed). Raises RuntimeError if not open."""
        if not self.is_open:
            raise RuntimeError("the alert is not open")
        self.is_open = False
        self._bad_since = None
        end = timestamp_ms if ended_ms is None else ended_ms
        event = self._event("closed", timestamp_ms, max(end, self._started_ms))
        self.severity = _FIRST_SEVERITY[self.alert_type]
        return event

    def _severity_at(self, timestamp_ms: int) -> Severity:
        seconds = (timestamp_ms - self._started_ms) / 1000.0
        first = _FIRST_SEVERITY[self.alert_type]
        return severity_for(seconds, first, self.warning_after, self.critical_after)

    def _event(self, state: AlertState, timestamp_ms: int, end_ms: int) -> AlertEvent:
        duration = (end_ms - self._started_ms) / 1000.0
        return AlertEvent(
            track_id=self.track_id,
            alert_type=self.alert_type,
            severity=self.severity,
            state=state,
            started_ms=self._started_ms,
            timestamp_ms=timestamp_ms,
            duration_seconds=duration,
            message=f"{_MESSAGES[self.alert_type]} for {duration:.1f} s",
        )


def _since(start_ms: int | None, timestamp_ms: int) -> int:
    """The start of a run that continues at ``timestamp_ms`` (it starts now if none is running)."""
    return timestamp_ms if start_ms is None else start_ms


class AlertTracker:
    """The three alert machines of one face track, fed with that track's per-frame facts."""

    def __init__(self, track_id: int, settings: AttentionSettings) -> None:
        self.track_id = track_id
        self.settings = settings
        self.machines = {
            kind: Hysteresis(
                track_id,
                kind,
                open_seconds=settings.alert_open_seconds,
                close_seconds=settings.alert_close_seconds,
                warning_after_seconds=settings.warning_after_seconds,
                critical_after_seconds=settings.critical_after_seconds,
            )
            for kind in ALERT_TYPES
        }

    def update(
        self, timestamp_ms: int, *, attention_score: float, is_looking_away: bool, is_drowsy: bool
    ) -> list[AlertEvent]:
        """Events caused by this frame (in the order not_attentive, looking_away, drowsy)."""
        s = self.settings
        m = self.machines
        return [
            *m["not_attentive"].update(
                timestamp_ms,
                bad=attention_score < s.not_attentive_below,
                good=attention_score > s.not_attentive_clear_above,
            ),
            *m["looking_away"].update(timestamp_ms, bad=is_looking_away, good=not is_looking_away),
            *m["drowsy"].update(timestamp_ms, bad=is_drowsy, good=not is_drowsy),
        ]

    def open_alerts(self) -> list[AlertType]:
        return [kind for kind, machine in self.machines.items() if machine.is_open]

    def close_all(self, timestamp_ms: int, ended_ms: int | None = None) -> list[AlertEvent]:
        """Close every open alert at ``timestamp_ms`` (the track ended or the stream closed);
        ``ended_ms`` (default ``timestamp_ms``): when the condition was last seen, the end of
        each alert's duration (a vanished face's last sighting)."""
        return [m.close(timestamp_ms, ended_ms) for m in self.machines.values() if m.is_open]
