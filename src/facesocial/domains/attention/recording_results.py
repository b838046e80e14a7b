"""What a recording's analysis stores: per-frame timeline rows, alert spans, per-track results.

Pure computation over the per-frame output of one :class:`AttentionSession` (no storage): the
job handler of :mod:`facesocial.domains.attention.recordings` collects :class:`FrameRecord`
items and the session's alert events, then asks :func:`alert_spans` and :func:`summarize` for
``video_recordings.alerts_data`` and ``video_analyses.results`` (shape in docs/attention.md
"Recordings").

Durations (looking away, drowsy) weigh each analysed frame by the time until the next one
(capped at two sampling intervals, so a track that vanished for a while is not credited with
the gap), the last frame by one sampling interval.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from facesocial.analytics.attention import AlertEvent


@dataclass(frozen=True, slots=True)
class FrameRecord:
    """One analysed frame: its time in the video (ms ≥ 0) and its faces (``FaceAttention.as_dict()``,
    each with ``track_id`` and ``attention_score`` 0..100)."""

    timestamp_ms: int
    faces: list[dict[str, Any]]

    @property
    def avg_attention(self) -> float | None:
        """Mean attention (0..100) of the frame's faces, None when it has none."""
        scores = [float(f["attention_score"]) for f in self.faces if f.get("attention_score") is not None]
        return round(sum(scores) / len(scores), 2) if scores else None


@dataclass(slots=True)
class AlertSpan:
    """One alert from its opening to its closing (or the end of the video), in video time (ms)."""

    track_id: int
    alert_type: str
    severity: str
    started_ms: int
    ended_ms: int
    message: str
    closed: bool = False

    def as_dict(self, labels: Mapping[int, str]) -> dict[str, Any]:
        return {
            "track_id": self.track_id,
            "participant_label": labels.get(self.track_id, f"Track {self.track_id}"),
            "alert_type": self.alert_type,
            "severity": self.severity,
            "start_seconds": round(self.started_ms / 1000, 3),
            "end_seconds": round(self.ended_ms / 1000, 3),
            "duration_seconds": round((self.ended_ms - self.started_ms) / 1000, 3),
            "resolved": self.closed,
            "message": self.message,
        }


def alert_spans(events: Iterable[AlertEvent], end_ms: int) -> list[AlertSpan]:
    """Fold opened/escalated/closed events into spans (ordered by start); an alert never closed
    ends at ``end_ms`` (the last analysed frame) with ``closed`` False."""
    open_spans: dict[tuple[int, str], AlertSpan] = {}
    spans: list[AlertSpan] = []
    for event in events:
        key = (event.track_id, event.alert_type)
        span = open_spans.get(key)
        if span is None:
            span = AlertSpan(
                event.track_id,
                event.alert_type,
                event.severity,
                event.started_ms,
                event.timestamp_ms,
                event.message,
            )
            open_spans[key] = span
            spans.append(span)
        span.severity = event.severity
        span.ended_ms = max(span.ended_ms, event.timestamp_ms)
        span.message = event.message or span.message
        if event.state == "closed":
            span.closed = True
            del open_spans[key]
    for span in open_spans.values():
        span.ended_ms = max(span.ended_ms, end_ms)
    return sorted(spans, key=lambda s: (s.started_ms, s.track_id, s.alert_type))


def track_labels(frames: Sequence[FrameRecord]) -> dict[int, str]:
    """``"Participant n"`` per track id, numbered by first appearance (1-based)."""
    labels: dict[int, str] = {}
    for frame in frames:
        for face in frame.faces:
            track = int(face["track_id"])
            if track not in labels:
                labels[track] = f"Participant {len(labels) + 1}"
    return labels


@dataclass(slots=True)
class _Track:
    label: str
    scores: list[float] = field(default_factory=list)
    first_ms: int = 0
    last_ms: int = 0
    present_s: float = 0.0
    away_s: float = 0.0
    drowsy_s: float = 0.0


def frame_weights(frames: Sequence[FrameRecord], sample_fps: float) -> list[float]:
    """Seconds each frame stands for (see the module docstring)."""
    step = 1.0 / sample_fps
    weights = []
    for i, frame in enumerate(frames):
        if i + 1 < len(frames):
            weights.append(min((frames[i + 1].timestamp_ms - frame.timestamp_ms) / 1000, 2 * step))
        else:
            weights.append(step)
    return weights


def summarize(
    frames: Sequence[FrameRecord],
    spans: Sequence[AlertSpan],
    *,
    duration_seconds: float,
    sample_fps: float,
    processing_seconds: float,
) -> dict[str, Any]:
    """``video_analyses.results`` (docs/attention.md "Recordings"): per track its label, mean/min/max
    attention (0..100), seconds present, looking away and drowsy, alert count; overall mean/min;
    the duration (s), frames analysed, sample rate and processing time (s)."""
    labels = track_labels(frames)
    tracks: dict[int, _Track] = {}
    all_scores: list[float] = []
    for frame, weight in zip(frames, frame_weights(frames, sample_fps), strict=True):
        for face in frame.faces:
            track_id = int(face["track_id"])
            track = tracks.get(track_id)
            if track is None:
                track = tracks[track_id] = _Track(labels[track_id], first_ms=frame.timestamp_ms)
            score = float(face["attention_score"])
            track.scores.append(score)
            all_scores.append(score)
            track.last_ms = frame.timestamp_ms
            track.present_s += weight
            if face.get("is_looking_away"):
                track.away_s += weight
            if face.get("is_drowsy"):
                track.drowsy_s += weight
    alerts_per_track: dict[int, list[AlertSpan]] = {}
    for span in spans:
        alerts_per_track.setdefault(span.track_id, []).append(span)
    return {
        "duration_seconds": round(duration_seconds, 3),
        "frames_analyzed": len(frames),
        "frames_with_faces": sum(1 for f in frames if f.faces),
        "sample_fps": round(sample_fps, 3),
        "processing_seconds": round(processing_seconds, 3),
        "overall": {
            "mean_attention": _mean(all_scores),
            "min_attention": round(min(all_scores), 2) if all_scores else None,
            "participants": len(tracks),
            "alert_count": len(spans),
        },
        "tracks": [
            {
                "track_id": track_id,
                "participant_label": t.label,
                "first_seen_seconds": round(t.first_ms / 1000, 3),
                "last_seen_seconds": round(t.last_ms / 1000, 3),
                "frames": len(t.scores),
                "seconds_present": round(t.present_s, 3),
                "mean_attention": _mean(t.scores),
                "min_attention": round(min(t.scores), 2),
                "max_attention": round(max(t.scores), 2),
                "looking_away_seconds": round(t.away_s, 3),
                "drowsy_seconds": round(t.drowsy_s, 3),
                "alert_count": len(alerts_per_track.get(track_id, [])),
                "alerts": [s.as_dict(labels) for s in alerts_per_track.get(track_id, [])],
            }
            for track_id, t in tracks.items()
        ],
    }


def _mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None
