"""Active liveness: did the person in front of the camera perform the server's challenges?

The decision is a pure function of observations: :func:`advance` takes the stored
:class:`SessionProgress` and a batch of :class:`~.observe.FrameObservation` (time order, on
the session clock: ms since the first challenge was issued) and returns the new progress. A
service keeps the progress as JSON between requests (:meth:`SessionProgress.to_json`).

Rules (each failure has a stable ``failure_reason`` string, constants below):

* Timing: frame times strictly increase, no faster than ``min_frame_interval_ms`` and with no
  gap over ``max_frame_gap_ms`` (also across batches) → else ``implausible_timing``.
* A challenge counts only on frames after it was issued (``timestamp_ms > issued_at_ms``),
  in order, within ``challenge_window_ms``. A head challenge needs a near-neutral frame first
  (relative to the neutral baseline), then the move past its threshold: turn_left yaw up,
  turn_right yaw down, look_up pitch up, nod pitch down and back up. Because every head
  challenge starts from neutral, one long turn never counts twice.
* A head move of another kind (past ``wrong_move_factor`` x its threshold and the dominant
  axis) while a challenge is current → ``wrong_challenge``: a recording of an earlier session
  shows its head moves in its own order. Exempt: the return from (and overshoot of) the head
  challenge just passed until the subject has been neutral for ``settle_ms``, and looking up
  during a nod (the nod's way back). Blinks and mouth moves are natural, never "wrong".
* A window that ends without the challenge uses one attempt and re-issues the same challenge
  from that frame; after ``max_attempts`` used → ``challenge_timeout``.
* No face for more than ``face_lost_ms`` after one was seen → ``face_lost``; two faces of
  comparable size on ``multiple_faces_frames`` consecutive frames → ``multiple_faces``.
* Identity: the first embedded frame is the reference; an embedded frame with cosine
  similarity below ``identity_min_similarity`` → ``face_changed``. See :func:`needs_embedding`
  for which frames to embed; the session completes only on an embedded frame at or after the
  last challenge's completion (when ``require_embedding``).
* On completion: a sequence with a head challenge whose landmark motion is planar
  (:func:`.motion.rigidity` below ``rigidity_threshold``) → ``rigid_motion`` (a photo); mean
  passive ``live_score`` below ``passive_threshold`` → ``spoof_detected``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from facesocial.antispoof.challenges import INSTRUCTIONS, is_head_challenge, validate_sequence
from facesocial.antispoof.motion import BLINK_CLOSED, BLINK_OPEN, RIGIDITY_THRESHOLD, rigid_points, rigidity
from facesocial.antispoof.observe import FrameObservation

IMPLAUSIBLE_TIMING = "implausible_timing"
WRONG_CHALLENGE = "wrong_challenge"
CHALLENGE_TIMEOUT = "challenge_timeout"
FACE_LOST = "face_lost"
MULTIPLE_FACES = "multiple_faces"
FACE_CHANGED = "face_changed"
SPOOF_DETECTED = "spoof_detected"
RIGID_MOTION = "rigid_motion"
FAILURE_REASONS = (
    IMPLAUSIBLE_TIMING,
    WRONG_CHALLENGE,
    CHALLENGE_TIMEOUT,
    FACE_LOST,
    MULTIPLE_FACES,
    FACE_CHANGED,
    SPOOF_DETECTED,
    RIGID_MOTION,
)

# Cosine similarity below which two frames of one session are not the same face, per embedder:
# the verify_balanced thresholds of docs/accuracy.md (LFW accuracy-maximising point). Within a
# session (same camera, light, seconds apart) genuine similarities are far higher (blink video,
# dlib: ≥ 0.96 with closed eyes), so the balanced point rejects a swapped face while a turned
# head (20-30°) stays above it (docs/liveness-active.md).
IDENTITY_MIN_SIMILARITY: dict[str, float] = {"dlib_resnet_v1": 0.91, "faceres": 0.52, "mobileface": 0.17}
# Frame-to-frame continuity (every face frame against the session's first face): the strict
# thresholds of docs/accuracy.md (a false-match rate of 1e-3 per comparison on LFW: dlib 0.925,
# faceres 0.6315, mobileface 0.4046). Strict because it is applied to every frame, so a session
# of N frames offers N chances to slip another person's face in; within one session the same
# person stays far above them (faceres ≥ 0.81, dlib ≥ 0.96 on the real clips, docs/liveness-active.md).
CONTINUITY_MIN_SIMILARITY: dict[str, float] = {"dlib_resnet_v1": 0.925, "faceres": 0.63, "mobileface": 0.405}
# Landmark frames kept for the rigidity test (the pose-diverse ones).
HISTORY_FRAMES = 30

Status = Literal["active", "completed", "failed"]


@dataclass(frozen=True, slots=True)
class ActiveConfig:
    """Thresholds of :func:`advance`; where each value comes from is in its comment."""

    # Head moves, degrees relative to the neutral baseline. Mesh yaw/pitch of a still frontal
    # selfie jitter within ±1.5° (blink video, 140 frames: yaw 1.2-2.8, pitch -5.5..-3.4);
    # a talking head drifts ±8° (lynaeydofd). 20° yaw / 12° up / 10° down are deliberate moves
    # that a seated user does comfortably while still facing a phone (common SDK prompts use
    # 15-30°), and well outside drift.
    turn_yaw_deg: float = 20.0
    look_up_pitch_deg: float = 12.0
    nod_pitch_deg: float = 10.0
    # A nod counts once the pitch is back within half the nod threshold of the baseline.
    nod_return_fraction: float = 0.5
    # "Neutral": within this of the baseline (≈ 3x the still-face jitter above).
    neutral_yaw_deg: float = 8.0
    neutral_pitch_deg: float = 6.0
    # A head move counts as "wrong" past this multiple of its own threshold: a margin so that
    # pitch coupling at the start of a turn or a glance down at the screen is not a wrong move.
    wrong_move_factor: float = 1.25
    # After a head challenge passes, its axis is exempt from the wrong-move rule until the
    # subject has been neutral this long (the return and its overshoot).
    settle_ms: float = 500.0
    # Frames with |yaw| below neutral_yaw_deg averaged (median) into the baseline.
    baseline_frames: int = 3
    # Eye openness (mesh: 0 at EAR 0.10, 1 at EAR 0.28): closed below BLINK_OPENNESS (0.35 =
    # EAR 0.163, between the blink video's open 0.26-0.29 and closed 0.11-0.13), open above 0.6.
    blink_closed: float = BLINK_CLOSED
    blink_open: float = BLINK_OPEN
    # Inner-lip gap / mouth width: closed 0.02-0.05 (blink video), talking 0.05-0.27
    # (lynaeydofd); a deliberately opened mouth is ≥ 0.5. Armed below mouth_closed_ratio.
    mouth_open_ratio: float = 0.35
    mouth_closed_ratio: float = 0.20
    # Smile: outer mouth width / outer eye-corner distance grows by this fraction over the
    # baseline (neutral 0.54-0.56 in the blink video, i.e. ±2 % jitter; a smile widens 10-25 %).
    smile_width_gain: float = 0.12
    challenge_window_ms: float = 10_000.0
    max_frame_gap_ms: float = 2_000.0
    # ≈ 120 fps: faster frames are not from a phone camera.
    min_frame_interval_ms: float = 8.0
    face_lost_ms: float = 1_000.0
    multiple_faces_frames: int = 2
    # Cosine similarity for the embedder the service uses (IDENTITY_MIN_SIMILARITY).
    identity_min_similarity: float = IDENTITY_MIN_SIMILARITY["dlib_resnet_v1"]
    # Continuity embeddings (FrameObservation.continuity) below this against the first one fail
    # ``face_changed``; None: not checked. ``require_continuity``: a face frame without one fails
    # too (the service asks for one on every face frame).
    continuity_min_similarity: float | None = None
    require_continuity: bool = False
    embedding_interval_ms: float = 400.0
    require_embedding: bool = True
    # Passive P(live) mean below this fails the session (None: passive scores are not used).
    passive_threshold: float | None = None
    # Planar-motion test (motion.RIGIDITY_THRESHOLD, set from photo vs live data).
    rigidity_threshold: float = RIGIDITY_THRESHOLD
    rigidity_min_frames: int = 6
    # Face frames after the issue before a challenge may pass: one glitchy frame cannot pass it.
    min_frames_per_challenge: int = 3

    @classmethod
    def for_embedder(cls, model: str, continuity_model: str | None = None, **overrides: Any) -> ActiveConfig:
        """Defaults with ``identity_min_similarity`` for ``model`` and, given ``continuity_model``,
        the continuity check on every face frame; raises ``KeyError`` for an unknown model."""
        values: dict[str, Any] = {"identity_min_similarity": IDENTITY_MIN_SIMILARITY[model]}
        if continuity_model is not None:
            values["continuity_min_similarity"] = CONTINUITY_MIN_SIMILARITY[continuity_model]
            values["require_continuity"] = True
        return cls(**{**values, **overrides})


@dataclass
class SessionProgress:
    """JSON-serialisable state of one liveness session (the service stores it between frames).

    ``index``: the current challenge (``len(challenges)`` once all passed and the identity check
    of the last one is pending); ``issued_at_ms``: when the current challenge was issued (the
    first at 0.0); ``attempts_used``: challenge windows that ended without the challenge;
    ``results``: per challenge ``kind``, ``status`` (pending/passed/failed), ``started_ms``,
    ``completed_ms``, ``peak`` (the strongest value seen: degrees, openness, ratio), ``frames``.
    The remaining fields are internal state of :func:`advance`.
    """

    challenges: list[str]
    index: int = 0
    issued_at_ms: float = 0.0
    attempts_used: int = 0
    max_attempts: int = 3
    status: Status = "active"
    failure_reason: str | None = None
    results: list[dict[str, Any]] = field(default_factory=list)
    # Neutral baseline (median of the first frontal frames).
    baseline_yaw: float | None = None
    baseline_pitch: float | None = None
    baseline_mouth_width: float | None = None
    baseline_samples: list[list[float]] = field(default_factory=list)
    # Current challenge: phase name, peak value, face frames since the issue.
    phase: str = "start"
    peak: float | None = None
    challenge_frames: int = 0
    # The head challenge just passed (its axis is exempt from wrong-move checks until settled).
    hold_kind: str | None = None
    neutral_since_ms: float | None = None
    reference_embedding: list[float] | None = None
    last_embedded_ms: float | None = None
    min_similarity: float | None = None
    continuity_reference: list[float] | None = None
    min_continuity: float | None = None
    last_timestamp_ms: float | None = None
    last_face_ms: float | None = None
    multiple_face_run: int = 0
    passive_sum: float = 0.0
    passive_count: int = 0
    frames_seen: int = 0
    # Pose-diverse rigid landmark sets: [yaw, pitch, x0, y0, x1, y1, ...] per frame.
    landmark_history: list[list[float]] = field(default_factory=list)
    rigidity: float | None = None

    @classmethod
    def start(cls, challenges: list[str], max_attempts: int = 3) -> SessionProgress:
        """A new session whose first challenge is issued at 0.0 on the session clock.

        Raises ``ValueError`` for an invalid sequence (:func:`.challenges.validate_sequence`) or
        ``max_attempts`` < 1.
        """
        sequence = validate_sequence(challenges)
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        results = [_pending(kind) for kind in sequence]
        results[0]["started_ms"] = 0.0
        return cls(challenges=sequence, max_attempts=max_attempts, results=results)

    @property
    def current(self) -> str | None:
        """The challenge being performed, None when none is (all passed, or the session ended)."""
        if self.status != "active" or self.index >= len(self.challenges):
            return None
        return self.challenges[self.index]

    @property
    def passive_mean(self) -> float | None:
        return self.passive_sum / self.passive_count if self.passive_count else None

    def copy(self) -> SessionProgress:
        """An independent copy, one level deep where :func:`advance` changes things in place.

        The evaluator appends to and deletes from the list fields and updates the ``results``
        dicts, but never changes an inner row (a baseline sample, a landmark set) or an embedding
        list in place: it replaces them whole. So those may be shared. (The two full deep copies
        this replaces cost 6.5 ms a frame; this copy 0.5 ms, with 30 landmark sets held.)
        """
        return replace(
            self,
            challenges=list(self.challenges),
            results=[dict(r) for r in self.results],
            baseline_samples=list(self.baseline_samples),
            landmark_history=list(self.landmark_history),
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (plain lists, floats, strings); :meth:`from_json` restores it."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SessionProgress:
        """Inverse of :meth:`to_json`; raises ``KeyError``/``TypeError`` on a malformed dict."""
        names = set(cls.__dataclass_fields__)
        unknown = set(data) - names
        if unknown:
            raise TypeError(f"unknown SessionProgress fields: {', '.join(sorted(unknown))}")
        copied: dict[str, Any] = copy.deepcopy(data)
        return cls(**copied)

    def instruction(self) -> dict[str, Any]:
        """What the client shows now: ``challenge`` (kind or None), ``instruction`` (text),
        ``index``/``total``/``progress`` ("i/n", challenges passed), ``status``,
        ``issued_at_ms``, ``attempts_left`` and ``failure_reason``."""
        kind = self.current
        if self.status == "completed":
            text = "Done: liveness confirmed"
        elif self.status == "failed":
            text = "Liveness check failed"
        elif kind is None:
            text = "Hold still and look at the camera"
        else:
            text = INSTRUCTIONS[kind]
        passed = sum(1 for r in self.results if r["status"] == "passed")
        return {
            "challenge": kind,
            "instruction": text,
            "index": self.index,
            "total": len(self.challenges),
            "progress": f"{passed}/{len(self.challenges)}",
            "status": self.status,
            "issued_at_ms": self.issued_at_ms,
            "attempts_left": max(0, self.max_attempts - self.attempts_used),
            "failure_reason": self.failure_reason,
        }


def needs_embedding(progress: SessionProgress, timestamp_ms: float, config: ActiveConfig) -> bool:
    """Whether the frame at ``timestamp_ms`` should be observed with an embedding.

    True while the session is active and: no reference embedding yet, or
    ``embedding_interval_ms`` passed since the last embedded frame, or all challenges have
    passed (completion waits for an embedded frame, so the face that did the last move is
    checked). A service may embed more frames; never fewer.
    """
    if progress.status != "active":
        return False
    if progress.reference_embedding is None or progress.last_embedded_ms is None:
        return True
    if progress.index >= len(progress.challenges):
        return True
    return timestamp_ms - progress.last_embedded_ms >= config.embedding_interval_ms


def advance(
    progress: SessionProgress, frames: list[FrameObservation], config: ActiveConfig
) -> SessionProgress:
    """The progress after ``frames`` (time order, session clock); ``progress`` is not changed.

    Frames after the session ended are ignored. The rules and failure reasons are listed in
    the module docstring.
    """
    state = progress.copy()
    for frame in frames:
        if state.status != "active":
            break
        _step(state, frame, config)
    return state


def _step(s: SessionProgress, f: FrameObservation, c: ActiveConfig) -> None:
    t = f.timestamp_ms
    if not _plausible_time(s.last_timestamp_ms, t, c):
        _fail(s, IMPLAUSIBLE_TIMING)
        return
    s.last_timestamp_ms = t
    s.frames_seen += 1
    if _expire_window(s, t, c):
        return
    if f.face_count == 0:
        if s.last_face_ms is not None and t - s.last_face_ms > c.face_lost_ms:
            _fail(s, FACE_LOST)
        return
    s.last_face_ms = t
    s.multiple_face_run = s.multiple_face_run + 1 if f.face_count > 1 else 0
    if s.multiple_face_run >= c.multiple_faces_frames:
        _fail(s, MULTIPLE_FACES)
        return
    if f.embedding is not None and not _same_identity(s, f.embedding, t, c):
        _fail(s, FACE_CHANGED)
        return
    if not _continuous(s, f, c):
        _fail(s, FACE_CHANGED)
        return
    if f.live_score is not None:
        s.passive_sum += float(f.live_score)
        s.passive_count += 1
    if f.face_count > 1:
        return  # which face performs is ambiguous on this frame
    _update_baseline(s, f, c)
    _remember_landmarks(s, f)
    if t > s.issued_at_ms and s.current is not None:
        if _wrong_head_move(s, f, t, c):
            _fail(s, WRONG_CHALLENGE)
            return
        s.challenge_frames += 1
        if _evaluate(s, f, c):
            _pass_current(s, t)
    if s.index >= len(s.challenges):
        _try_complete(s, c)


def _plausible_time(last: float | None, t: float, c: ActiveConfig) -> bool:
    if not math.isfinite(t) or t < 0:
        return False
    if last is None:
        return True
    gap = t - last
    return c.min_frame_interval_ms <= gap <= c.max_frame_gap_ms


def _expire_window(s: SessionProgress, t: float, c: ActiveConfig) -> bool:
    """Re-issue the current challenge (or fail) when its window has ended; True if failed."""
    if t <= s.issued_at_ms + c.challenge_window_ms:
        return False
    s.attempts_used += 1
    if s.index < len(s.challenges):
        s.results[s.index]["attempts"] = s.results[s.index].get("attempts", 0) + 1
    if s.attempts_used >= s.max_attempts:
        if s.index < len(s.challenges):
            s.results[s.index]["status"] = "failed"
        _fail(s, CHALLENGE_TIMEOUT)
        return True
    s.issued_at_ms = t
    if s.index < len(s.challenges):
        s.results[s.index]["started_ms"] = t
    _reset_challenge(s)
    return False


def _same_identity(s: SessionProgress, embedding: npt.NDArray[np.float32], t: float, c: ActiveConfig) -> bool:
    vector = np.asarray(embedding, np.float64).ravel()
    vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
    s.last_embedded_ms = t
    if s.reference_embedding is None:
        s.reference_embedding = [float(v) for v in vector]
        return True
    reference = np.asarray(s.reference_embedding, np.float64)
    if reference.shape != vector.shape:
        return False  # another embedder: not comparable, so not proven the same face
    similarity = float(reference @ vector)
    s.min_similarity = similarity if s.min_similarity is None else min(s.min_similarity, similarity)
    return similarity >= c.identity_min_similarity


def _continuous(s: SessionProgress, f: FrameObservation, c: ActiveConfig) -> bool:
    """Every face frame's continuity embedding against the session's first (see ActiveConfig)."""
    if c.continuity_min_similarity is None:
        return True
    if f.continuity is None:
        return not c.require_continuity
    vector = np.asarray(f.continuity, np.float64).ravel()
    vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
    if s.continuity_reference is None:
        s.continuity_reference = [float(v) for v in vector]
        return True
    reference = np.asarray(s.continuity_reference, np.float64)
    if reference.shape != vector.shape:
        return False
    similarity = float(reference @ vector)
    s.min_continuity = similarity if s.min_continuity is None else min(s.min_continuity, similarity)
    return similarity >= c.continuity_min_similarity


def _update_baseline(s: SessionProgress, f: FrameObservation, c: ActiveConfig) -> None:
    if s.baseline_yaw is not None or f.yaw is None or f.pitch is None:
        return
    if abs(f.yaw) > c.neutral_yaw_deg:
        return  # the baseline is a frontal pose
    s.baseline_samples.append([f.yaw, f.pitch, f.mouth_width if f.mouth_width is not None else math.nan])
    if len(s.baseline_samples) >= c.baseline_frames:
        samples = np.asarray(s.baseline_samples, np.float64)
        s.baseline_yaw = float(np.median(samples[:, 0]))
        s.baseline_pitch = float(np.median(samples[:, 1]))
        widths = samples[:, 2][np.isfinite(samples[:, 2])]
        s.baseline_mouth_width = float(np.median(widths)) if len(widths) else None
        s.baseline_samples = []


def _remember_landmarks(s: SessionProgress, f: FrameObservation) -> None:
    """Keep up to HISTORY_FRAMES pose-diverse rigid landmark sets (drop the most redundant)."""
    if f.landmarks is None or f.yaw is None or f.pitch is None:
        return
    points = rigid_points(f.landmarks)
    s.landmark_history.append([round(f.yaw, 2), round(f.pitch, 2), *np.round(points.ravel(), 1).tolist()])
    if len(s.landmark_history) <= HISTORY_FRAMES:
        return
    poses = np.asarray([entry[:2] for entry in s.landmark_history], np.float64)
    distance = np.linalg.norm(poses[:, None, :] - poses[None, :, :], axis=2)
    np.fill_diagonal(distance, np.inf)
    i, j = np.unravel_index(int(np.argmin(distance)), distance.shape)
    del s.landmark_history[min(int(i), int(j))]


def _deltas(s: SessionProgress, f: FrameObservation) -> tuple[float, float] | None:
    if s.baseline_yaw is None or s.baseline_pitch is None or f.yaw is None or f.pitch is None:
        return None
    return f.yaw - s.baseline_yaw, f.pitch - s.baseline_pitch


def _is_neutral(d: tuple[float, float], c: ActiveConfig) -> bool:
    return abs(d[0]) <= c.neutral_yaw_deg and abs(d[1]) <= c.neutral_pitch_deg


def _head_move(d: tuple[float, float], c: ActiveConfig) -> tuple[str, float]:
    """The dominant head move and its size in multiples of its own threshold."""
    dyaw, dpitch = d
    scores = {
        "turn_left": dyaw / c.turn_yaw_deg,
        "turn_right": -dyaw / c.turn_yaw_deg,
        "look_up": dpitch / c.look_up_pitch_deg,
        "nod": -dpitch / c.nod_pitch_deg,
    }
    kind = max(scores, key=lambda k: scores[k])
    return kind, scores[kind]


_AXIS = {"turn_left": "yaw", "turn_right": "yaw", "look_up": "pitch", "nod": "pitch"}


def _wrong_head_move(s: SessionProgress, f: FrameObservation, t: float, c: ActiveConfig) -> bool:
    d = _deltas(s, f)
    if d is None:
        return False
    if _is_neutral(d, c):
        if s.neutral_since_ms is None:
            s.neutral_since_ms = t
        if s.hold_kind is not None and t - s.neutral_since_ms >= c.settle_ms:
            s.hold_kind = None
        return False
    s.neutral_since_ms = None
    kind, size = _head_move(d, c)
    current = s.current
    if size < c.wrong_move_factor or kind == current:
        return False
    if s.hold_kind is not None and _AXIS[kind] == _AXIS[s.hold_kind]:
        return False  # returning from (or overshooting) the head challenge just passed
    # Looking up is the way back of a nod.
    return not (current == "nod" and kind == "look_up")


def _evaluate(s: SessionProgress, f: FrameObservation, c: ActiveConfig) -> bool:
    """Advance the current challenge's phase on one face frame; True when it is performed."""
    kind = s.current
    ready = s.challenge_frames >= c.min_frames_per_challenge
    if kind is None:
        return False
    if is_head_challenge(kind):
        d = _deltas(s, f)
        if d is None:
            return False
        if s.phase == "start":
            if _is_neutral(d, c):
                s.phase = "armed"
            return False
        dyaw, dpitch = d
        value = {"turn_left": dyaw, "turn_right": -dyaw, "look_up": dpitch, "nod": -dpitch}[kind]
        s.peak = value if s.peak is None else max(s.peak, value)
        if kind == "nod":
            if s.phase == "armed" and value >= c.nod_pitch_deg:
                s.phase = "down"
            return ready and s.phase == "down" and value <= c.nod_pitch_deg * c.nod_return_fraction
        threshold = c.turn_yaw_deg if kind.startswith("turn") else c.look_up_pitch_deg
        return ready and value >= threshold
    if kind == "blink":
        return _blink(s, f, c) and ready
    if kind == "open_mouth":
        if f.mouth_open is None:
            return False
        s.peak = f.mouth_open if s.peak is None else max(s.peak, f.mouth_open)
        if s.phase == "start" and f.mouth_open < c.mouth_closed_ratio:
            s.phase = "armed"
        return ready and s.phase == "armed" and f.mouth_open >= c.mouth_open_ratio
    if kind == "smile":
        if f.mouth_width is None or s.baseline_mouth_width is None:
            return False
        gain = f.mouth_width / s.baseline_mouth_width - 1.0
        s.peak = gain if s.peak is None else max(s.peak, gain)
        if s.phase == "start" and gain < c.smile_width_gain / 2:
            s.phase = "armed"
        return ready and s.phase == "armed" and gain >= c.smile_width_gain
    return False


def _blink(s: SessionProgress, f: FrameObservation, c: ActiveConfig) -> bool:
    """Open → closed → open after the issue (a blink begun before it does not count)."""
    if f.eye_openness is None:
        return False
    value = f.eye_openness
    s.peak = value if s.peak is None else min(s.peak, value)
    if s.phase == "start" and value >= c.blink_open:
        s.phase = "open"
    elif s.phase == "open" and value < c.blink_closed:
        s.phase = "closed"
    elif s.phase in ("closed", "reopened") and value >= c.blink_open:
        s.phase = "reopened"
        return True
    return False


def _pass_current(s: SessionProgress, t: float) -> None:
    kind = s.challenges[s.index]
    s.results[s.index].update(
        status="passed",
        completed_ms=t,
        peak=None if s.peak is None else round(s.peak, 4),
        frames=s.challenge_frames,
    )
    if is_head_challenge(kind):
        s.hold_kind = kind
        s.neutral_since_ms = None
    s.index += 1
    s.issued_at_ms = t
    if s.index < len(s.challenges):
        s.results[s.index]["started_ms"] = t
    _reset_challenge(s)


def _try_complete(s: SessionProgress, c: ActiveConfig) -> None:
    last_done = s.results[-1].get("completed_ms")
    if c.require_embedding and (
        s.last_embedded_ms is None or last_done is None or s.last_embedded_ms < float(last_done)
    ):
        return  # wait for an embedded frame that shows who did the last move
    if any(is_head_challenge(k) for k in s.challenges) and len(s.landmark_history) >= c.rigidity_min_frames:
        s.rigidity = rigidity([np.asarray(e[2:], np.float64).reshape(-1, 2) for e in s.landmark_history])
        if s.rigidity < c.rigidity_threshold:
            _fail(s, RIGID_MOTION)
            return
    mean = s.passive_mean
    if c.passive_threshold is not None and mean is not None and mean < c.passive_threshold:
        _fail(s, SPOOF_DETECTED)
        return
    s.status = "completed"


def _reset_challenge(s: SessionProgress) -> None:
    s.phase = "start"
    s.peak = None
    s.challenge_frames = 0


def _fail(s: SessionProgress, reason: str) -> None:
    s.status = "failed"
    s.failure_reason = reason


def _pending(kind: str) -> dict[str, Any]:
    return {
        "kind": kind,
        "status": "pending",
        "started_ms": None,
        "completed_ms": None,
        "peak": None,
        "frames": 0,
    }
