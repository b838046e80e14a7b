"""Attention analysis of one stream (a WebSocket connection or a video), frame by frame.

Each :meth:`AttentionSession.process` call: detect every face (the pipeline given, normally the
container's upright one-pass ``frame_pipeline``), run the 468-point mesh + iris on all of them in
one batch, drop boxes the mesh does not take for a face (face flag < 0.5), give each face a track
id (:class:`facesocial.video.tracking.FaceTracker`, by position only: no embedding per frame),
score it (:mod:`.scoring`), update the track's PERCLOS and blinks (:mod:`.perclos`) and its alert
machines (:mod:`.alerts`). A track unseen for longer than the tracker's ``max_missed_seconds``
ends: its open alerts close in that frame's events, their duration ending at its last sighting.

One session belongs to one stream and one thread; the pipeline may be shared (it is thread-safe).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from facesocial import errors
from facesocial.analytics.attention.alerts import AlertEvent, AlertTracker
from facesocial.analytics.attention.perclos import EyeClosure, Perclos
from facesocial.analytics.attention.scoring import FaceScores, score_face
from facesocial.settings import AttentionSettings
from facesocial.video.tracking import FaceTracker
from facesocial.vision.faces import Faces
from facesocial.vision.heads.mesh import MeshResult
from facesocial.vision.pipeline import DetectOptions, FacePipeline


@dataclass(frozen=True, slots=True)
class FaceAttention:
    """One tracked face in one frame.

    ``box``: x, y, width, height in image pixels; scores 0-100 (:class:`FaceScores`); ``perclos``
    0..1 over the track's window; ``eyes_closed`` this frame; ``blink``: a blink ended at this
    frame; ``blink_count`` since the track began; ``yaw``/``pitch`` degrees (mesh conventions);
    ``eye_openness`` 0..1 (the more open eye).
    """

    track_id: int
    box: tuple[float, float, float, float]
    head_pose_score: float
    gaze_score: float
    eye_openness_score: float
    attention_score: float
    is_looking_away: bool
    is_drowsy: bool
    perclos: float
    eyes_closed: bool
    blink: bool
    blink_count: int
    yaw: float
    pitch: float
    eye_openness: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready; the issue's names for the scores and flags."""
        x, y, w, h = self.box
        return {
            "track_id": self.track_id,
            "box": {"x": round(x, 1), "y": round(y, 1), "width": round(w, 1), "height": round(h, 1)},
            "attention_score": round(self.attention_score, 2),
            "gaze_score": round(self.gaze_score, 2),
            "head_pose_score": round(self.head_pose_score, 2),
            "eye_openness_score": round(self.eye_openness_score, 2),
            "is_looking_away": self.is_looking_away,
            "is_drowsy": self.is_drowsy,
            "perclos": round(self.perclos, 4),
            "eyes_closed": self.eyes_closed,
            "blink": self.blink,
            "blink_count": self.blink_count,
            "yaw": round(self.yaw, 2),
            "pitch": round(self.pitch, 2),
            "eye_openness": round(self.eye_openness, 3),
        }


@dataclass(frozen=True, slots=True)
class FrameAttention:
    """The answer for one frame: its index (0-based, per session), time, faces and alert events."""

    frame_index: int
    timestamp_ms: int
    faces: list[FaceAttention]
    alerts: list[AlertEvent]
    # Tracks that ended at this frame (their open alerts are among ``alerts``, closed).
    ended_tracks: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The WebSocket message: ``{"frame_index", "timestamp_ms", "faces": [...], "alerts": [...]}``."""
        return {
            "frame_index": self.frame_index,
            "timestamp_ms": self.timestamp_ms,
            "faces": [f.as_dict() for f in self.faces],
            "alerts": [a.as_dict() for a in self.alerts],
        }


@dataclass(slots=True)
class _TrackState:
    perclos: Perclos
    closure: EyeClosure
    alerts: AlertTracker
    last_ms: int


class AttentionSession:
    """Frame-by-frame attention of one stream (module docstring).

    ``detect_options`` default to the settings' ``min_face_size`` and ``max_faces`` at confidence 0.5.
    """

    def __init__(
        self,
        pipeline: FacePipeline,
        settings: AttentionSettings,
        *,
        detect_options: DetectOptions | None = None,
        tracker: FaceTracker | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.settings = settings
        self.detect_options = detect_options or DetectOptions(
            min_face_size=settings.min_face_size, max_faces=settings.max_faces
        )
        self.tracker = tracker or FaceTracker()
        self._tracks: dict[int, _TrackState] = {}
        self._frame_index = 0
        self._last_ms: int | None = None
        self.closed = False

    @property
    def frames_processed(self) -> int:
        return self._frame_index

    def process(self, rgb: npt.NDArray[np.uint8], timestamp_ms: int) -> FrameAttention:
        """Analyse one upright RGB frame (H, W, 3) uint8 at ``timestamp_ms`` (stream time, ms).

        Raises ``VALIDATION_ERROR`` (422) when the timestamp goes back in time or the session is
        closed, ``MODEL_UNAVAILABLE`` when the mesh models are not installed.
        """
        faces, meshes = self.measure(rgb)
        return self.process_measured(faces, meshes, timestamp_ms)

    def measure(self, rgb: npt.NDArray[np.uint8]) -> tuple[Faces, list[MeshResult]]:
        """Detection + mesh of one frame (the model part of :meth:`process`), faces the mesh accepts."""
        faces = self.pipeline.detect(rgb, self.detect_options)
        if len(faces) == 0:
            return faces, []
        meshes = self.pipeline.analyze_mesh(rgb, faces)
        keep = [i for i, m in enumerate(meshes) if m.is_face]
        return faces[np.asarray(keep, dtype=np.int64)], [meshes[i] for i in keep]

    def process_measured(self, faces: Faces, meshes: list[MeshResult], timestamp_ms: int) -> FrameAttention:
        """The model-free part of :meth:`process`: tracking, scores, PERCLOS and alerts."""
        timestamp_ms = int(timestamp_ms)
        if self.closed:
            raise errors.ValidationFailedError("The attention session is closed")
        if self._last_ms is not None and timestamp_ms < self._last_ms:
            raise errors.ValidationFailedError(
                f"timestamp_ms {timestamp_ms} precedes the previous frame's ({self._last_ms})"
            )
        previous_ms, self._last_ms = self._last_ms, timestamp_ms
        ids = self.tracker.update(faces.boxes.reshape(-1, 4), timestamp_ms)
        events: list[AlertEvent] = []
        results: list[FaceAttention] = []
        for row, (track_id, mesh) in enumerate(zip(ids.tolist(), meshes, strict=True)):
            state = self._tracks.get(track_id) or self._new_track(track_id, timestamp_ms)
            state.last_ms = timestamp_ms
            scores = score_face(mesh, self.settings)
            openness = max(mesh.eye_openness_left, mesh.eye_openness_right)
            closed = state.closure.update(openness)
            perclos = state.perclos.add(timestamp_ms, closed)
            drowsy = state.perclos.is_drowsy
            events += state.alerts.update(
                timestamp_ms,
                attention_score=scores.attention_score,
                is_looking_away=scores.is_looking_away,
                is_drowsy=drowsy,
            )
            results.append(
                _face(track_id, faces.boxes[row], scores, mesh, state, drowsy, perclos, closed, openness)
            )
        ended = self._end_vanished(timestamp_ms, previous_ms, set(ids.tolist()))
        for track_id in ended:
            gone = self._tracks.pop(track_id)
            events += gone.alerts.close_all(timestamp_ms, ended_ms=gone.last_ms)
        frame = FrameAttention(self._frame_index, timestamp_ms, results, events, ended)
        self._frame_index += 1
        return frame

    def close(self, timestamp_ms: int) -> list[AlertEvent]:
        """End the stream: every open alert of every track closes at ``timestamp_ms``. Idempotent."""
        events: list[AlertEvent] = []
        for state in self._tracks.values():
            events += state.alerts.close_all(max(int(timestamp_ms), state.last_ms))
        self._tracks.clear()
        self.tracker.end_tracks()
        self.closed = True
        return events

    def _new_track(self, track_id: int, timestamp_ms: int) -> _TrackState:
        s = self.settings
        state = _TrackState(
            perclos=Perclos(
                s.perclos_window_seconds,
                drowsy_threshold=s.drowsy_perclos,
                min_coverage=s.perclos_min_coverage,
                max_gap_ms=s.perclos_max_gap_ms,
                blink_max_ms=s.blink_max_ms,
            ),
            closure=EyeClosure(s.closed_openness, s.open_openness),
            alerts=AlertTracker(track_id, s),
            last_ms=timestamp_ms,
        )
        self._tracks[track_id] = state
        return state

    def _end_vanished(self, timestamp_ms: int, previous_ms: int | None, seen: set[int]) -> list[int]:
        """Tracks the tracker has ended (ascending ids), by its own rule: not seen now, not seen at
        the previous frame, and unseen for longer than ``max_missed_seconds``."""
        limit_ms = self.tracker.max_missed_seconds * 1000.0
        return sorted(
            track_id
            for track_id, state in self._tracks.items()
            if track_id not in seen
            and state.last_ms != previous_ms
            and timestamp_ms - state.last_ms > limit_ms
        )


def _face(
    track_id: int,
    box_xyxy: npt.NDArray[np.float32],
    scores: FaceScores,
    mesh: MeshResult,
    state: _TrackState,
    drowsy: bool,
    perclos: float,
    closed: bool,
    openness: float,
) -> FaceAttention:
    x1, y1, x2, y2 = (float(v) for v in box_xyxy)
    return FaceAttention(
        track_id=track_id,
        box=(x1, y1, x2 - x1, y2 - y1),
        head_pose_score=scores.head_pose_score,
        gaze_score=scores.gaze_score,
        eye_openness_score=scores.eye_openness_score,
        attention_score=scores.attention_score,
        is_looking_away=scores.is_looking_away,
        is_drowsy=drowsy,
        perclos=perclos,
        eyes_closed=closed,
        blink=state.perclos.blink_ended,
        blink_count=state.perclos.blinks,
        yaw=mesh.yaw,
        pitch=mesh.pitch,
        eye_openness=openness,
    )
