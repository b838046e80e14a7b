"""Active liveness sessions: create, take frames (HTTP or WebSocket), report, vouch once.

The server alone decides (src/facesocial/antispoof/active.py) from what it measures on each frame
(antispoof/observe.py: the 468-point mesh's yaw, pitch, eye openness and mouth opening, an
embedding now and then for identity continuity, and the passive P(live)).

Time. Each frame gets a time on the session's clock (ms since the session was created, by the
server's clock). Frames over a WebSocket, or a single frame without a timestamp, are dated by
their arrival. Frames with client timestamps (``timestamps_ms``, or a clip's presentation times)
are anchored once: the newest frame of the first batch is taken to have arrived now, and every
later client time keeps that offset. So a clip longer than the time since the session was
created would begin before the session did, and a frame dated after its arrival is from the
future: both fail ``implausible_timing``. Challenges are issued on the same clock, so a challenge
performed before it was issued does not count.

Concurrency: each request reads the session's state and version, measures the frames outside any
transaction, and writes the new state only if the version is unchanged (else
``LIVENESS_SESSION_BUSY``, 409, and nothing changes). Frames of one session are meant to arrive
in order from one client.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import select

from facesocial import errors
from facesocial.antispoof.active import (
    IMPLAUSIBLE_TIMING,
    ActiveConfig,
    SessionProgress,
    advance,
    needs_embedding,
)
from facesocial.antispoof.challenges import random_sequence, validate_sequence
from facesocial.antispoof.observe import FrameObservation, observe
from facesocial.antispoof.passive import PassiveLiveness
from facesocial.domains.antispoofing.sessions import LivenessSessions, SessionSnapshot, SessionUpdate
from facesocial.domains.registry.serving import ModelRouter, StaticRouter
from facesocial.services.principal import Principal
from facesocial.services.serving_context import (
    DetectorVariants,
    ServingScope,
    serving_from_dict,
    session_key,
)
from facesocial.settings import ImageLimits, Settings
from facesocial.store.db import Database
from facesocial.store.tables import AntispoofingCheck, User
from facesocial.store.types import utcnow
from facesocial.vision.faces import Faces
from facesocial.vision.image import decode_image
from facesocial.vision.pipeline import DetectOptions, FacePipeline

# A client's first frame may be dated this much before the session began (its clock and the
# request's travel are not ours to measure exactly); later than that, the clip was pre-recorded.
CLOCK_SLACK_MS = 1500.0
# Identity continuity: an embedding at least this often (ms of session time), and always on the
# last frame of a request (the one that may complete a challenge).
EMBED_EVERY_MS = 400.0
ENGINE_VERSION = "liveness_active@1.1.0"
# ~11 ms a face (vs 124 ms for dlib_resnet_v1): cheap enough for every frame.
CONTINUITY_EMBEDDER = "faceres"


@dataclass(frozen=True, slots=True)
class InputFrame:
    """One frame: decoded (``rgb`` (H, W, 3) uint8) or encoded (``data``, decoded when its turn
    comes, so a request never holds all its frames decoded); ``client_ms`` its client time or None.
    """

    client_ms: float | None
    rgb: np.ndarray | None = None
    data: bytes | None = None

    def pixels(self, limits: ImageLimits) -> np.ndarray:
        if self.rgb is not None:
            return self.rgb
        return decode_image(self.data or b"", limits).rgb


class LivenessService:
    def __init__(
        self,
        database: Database,
        sessions: LivenessSessions,
        pipeline: Callable[[], FacePipeline],
        passive: Callable[[], PassiveLiveness],
        settings: Settings,
        passive_threshold: Callable[[], float],
        detect_options: DetectOptions,
        variants: Callable[[], DetectorVariants] | None = None,
        router: Callable[[], ModelRouter] | None = None,
    ) -> None:
        self._detect = detect_options
        # The frame detector's versions and the router, reached lazily.
        self._variants = variants or (lambda: DetectorVariants(pipeline()))
        self._router = router or StaticRouter
        self._db = database
        self._sessions = sessions
        self._pipeline = pipeline
        self._passive = passive
        self._settings = settings
        self._passive_threshold = passive_threshold

    def config(self, embedder: str, continuity: str) -> ActiveConfig:
        """The evaluator's thresholds for frames embedded by ``embedder`` (sampled, the reference
        register/verify compare with) and ``continuity`` (every face frame; antispoof/active.py)."""
        try:
            return ActiveConfig.for_embedder(
                embedder, continuity_model=continuity, passive_threshold=self._passive_threshold()
            )
        except KeyError:
            # No identity threshold measured for this embedder: the dlib one would be meaningless.
            raise errors.ModelUnavailableError(
                f"Liveness sessions have no identity threshold for the embedding model {embedder}"
            ) from None

    # --- create and read -----------------------------------------------------------------------------

    def create(
        self,
        *,
        caller: Principal,
        user_id: uuid.UUID | None,
        challenges: list[str] | None,
        timeout_seconds: int | None,
        max_attempts: int | None,
    ) -> dict[str, Any]:
        """A new session with a random challenge sequence (or the caller's); the token once.

        Raises ``INVALID_CHALLENGES`` (422) for an unacceptable list, ``VALIDATION_ERROR`` (422)
        for a timeout or attempt count out of the configured bounds.
        """
        settings = self._settings.antispoofing
        timeout = settings.session_timeout_seconds if timeout_seconds is None else timeout_seconds
        if not 5 <= timeout <= settings.session_max_timeout_seconds:
            raise errors.ValidationFailedError(
                f"timeout_seconds must be 5..{settings.session_max_timeout_seconds}",
                fields=["timeout_seconds"],
            )
        attempts = settings.session_max_attempts if max_attempts is None else max_attempts
        if not 1 <= attempts <= 10:
            raise errors.ValidationFailedError("max_attempts must be 1..10", fields=["max_attempts"])
        if challenges is None:
            sequence = random_sequence()
        else:
            try:
                sequence = validate_sequence(list(challenges))
            except ValueError as exc:
                raise errors.InvalidChallengesError(str(exc)) from None
        internal = self._internal_user(caller.tenant_id, user_id) if user_id is not None else None
        progress = SessionProgress.start(sequence, attempts)
        token, snapshot = self._sessions.create(
            tenant_id=caller.tenant_id,
            api_key_id=caller.api_key_id,
            user_id=internal,
            external_user_id=user_id,
            challenges=sequence,
            max_attempts=attempts,
            timeout_seconds=timeout,
            progress={"engine": progress.to_json()},
        )
        return {"session_token": token, **self.view(snapshot)}

    def status(self, token: str, tenant_id: uuid.UUID | None) -> dict[str, Any]:
        snapshot = self._sessions.find(token, tenant_id)
        if snapshot.status == "active" and snapshot.expired(utcnow()):
            self._sessions.expire(snapshot)
            snapshot = self._sessions.find(token, tenant_id)
        return self.view(snapshot)

    def view(self, snapshot: SessionSnapshot) -> dict[str, Any]:
        progress = SessionProgress.from_json(snapshot.progress.get("engine") or {})
        body: dict[str, Any] = {
            "session_id": snapshot.session_id,
            "session_status": snapshot.status,
            "challenges": snapshot.challenges,
            "current_challenge": progress.current if snapshot.status == "active" else None,
            "challenges_completed": [r["kind"] for r in progress.results if r.get("status") == "passed"],
            "challenge_results": progress.results,
            "overall_result": snapshot.overall_result,
            "failure_reason": snapshot.failure_reason,
            "attempts_used": snapshot.attempts_count,
            "max_attempts": snapshot.max_attempts,
            "timeout_seconds": snapshot.timeout_seconds,
            "user_id": str(snapshot.external_user_id) if snapshot.external_user_id else None,
            "created_at": snapshot.created_at.isoformat(),
            "expires_at": snapshot.expires_at.isoformat(),
            "completed_at": snapshot.completed_at.isoformat() if snapshot.completed_at else None,
            "used": snapshot.consumed_at is not None,
            "used_by": snapshot.consumed_by,
            "failure_detail": snapshot.progress.get("failure_detail"),
            "frames_processed": int(snapshot.progress.get("frames", 0)),
            "engine_version": ENGINE_VERSION,
            # The versions this session runs (decided on its first frames).
            "serving": snapshot.progress.get("serving"),
        }
        if snapshot.status == "active":
            body["instruction"] = progress.instruction()
        return body

    # --- frames ----------------------------------------------------------------------------------------

    def submit(
        self, token: str, tenant_id: uuid.UUID | None, frames: list[InputFrame], input_type: str
    ) -> dict[str, Any]:
        """Measure ``frames`` and advance the session; returns the session's view.

        ``tenant_id`` None: the token alone authenticates (WebSocket). Raises
        ``LIVENESS_SESSION_NOT_FOUND`` (404), ``LIVENESS_SESSION_EXPIRED`` (410),
        ``LIVENESS_SESSION_CLOSED`` (409, completed or failed), ``LIVENESS_SESSION_BUSY`` (409),
        ``INVALID_FRAMES`` (422: no frames, or several without timestamps).
        """
        started = time.perf_counter()
        snapshot = self._sessions.find(token, tenant_id)
        self._require_open(snapshot)
        if not frames:
            raise errors.InvalidFramesError("Send at least one frame")
        dated = [f.client_ms is not None for f in frames]
        if any(dated) and not all(dated):
            raise errors.InvalidFramesError("Give a timestamp to every frame or to none")
        if not any(dated) and len(frames) > 1:
            raise errors.InvalidFramesError(
                "Several frames need timestamps_ms (one per frame, in milliseconds, increasing)"
            )
        now_ms = (utcnow() - snapshot.created_at).total_seconds() * 1000.0
        state = dict(snapshot.progress)
        times, state = _session_times(frames, state, now_ms)
        if _outside_session(times, now_ms):
            # A clip recorded before the session existed, or frames dated in the future: the
            # evidence of a replay, so the session fails (a retry needs a new session).
            engine = fail(SessionProgress.from_json(state.get("engine") or {}), IMPLAUSIBLE_TIMING)
            state["engine"] = engine.to_json()
            state["failure_detail"] = _timing_detail(times, now_ms)
            change, check = self._change(snapshot, engine, state, utcnow(), input_type, started)
            return self.view(self._sessions.save(snapshot, change, check))
        passive = self._passive()
        pipeline, scope = self._serve(snapshot, state, passive)
        model = pipeline.default_embedder
        # Every face frame is compared with the session's first face, by the cheapest good
        # embedder installed: sampling identity every 400 ms let frames of other people slip in
        # between (a session of 8 ms apart frames had ~49 unchecked frames per sample).
        continuity = CONTINUITY_EMBEDDER if CONTINUITY_EMBEDDER in pipeline.embedders else model
        config = self.config(model, continuity)

        def live(rgb: np.ndarray, boxes: np.ndarray) -> list[float]:
            return [s.live_score for s in passive.score(rgb, boxes)]

        engine = SessionProgress.from_json(state.get("engine") or {})
        last: FrameObservation | None = None
        observed: list[FrameObservation] = []
        # Frame by frame: whether a frame is embedded depends on the state the frames before it
        # left (a reference yet? all challenges passed, waiting for the face that did the last?).
        for i, (frame, t_ms) in enumerate(zip(frames, times, strict=True)):
            if engine.status != "active":
                break
            embed = needs_embedding(engine, t_ms, config) or i == len(frames) - 1
            obs = observe(
                pipeline,
                frame.pixels(self._settings.limits),
                t_ms,
                embed_model=model if embed else None,
                continuity_model=continuity,
                passive=live,
                detect_options=self._detect,
            )
            engine = advance(engine, [obs], config)
            last = obs
            observed.append(obs)
        self._report(scope, started, observed, engine.status)
        state["reference_model"] = model
        state["frames"] = int(state.get("frames", 0)) + len(frames)
        state["engine"] = engine.to_json()
        now = utcnow()
        change, check = self._change(snapshot, engine, state, now, input_type, started)
        saved = self._sessions.save(snapshot, change, check)
        return {**self.view(saved), "last_frame": _feedback(last), "serving": scope.serving_body()}

    def _serve(
        self, snapshot: SessionSnapshot, state: dict[str, Any], passive: PassiveLiveness
    ) -> tuple[FacePipeline, ServingScope]:
        """The frame pipeline and routing of this submission.

        One session runs one version per slot (face_detection, liveness): decided on its first
        frames with the session as the split subject, kept in the session's state
        (``serving``), reused by every later submission (a version no longer installed here is
        routed afresh). Each submission is its own inference: fresh inference ids.
        """
        scope = ServingScope(
            self._router(), session_key(snapshot.tenant_id, snapshot.api_key_id, snapshot.session_id)
        )
        for slot, data in (state.get("serving") or {}).items():
            scope.decisions[slot] = serving_from_dict(data)
        variants = self._variants()
        planned = scope.decisions.get("face_detection")
        if planned is not None and planned.version not in variants.installed:
            del scope.decisions["face_detection"]
        detection = scope.resolve("face_detection", installed=variants.installed, default=variants.default)
        tag = passive.model.tag
        scope.resolve("liveness", installed=(tag,), default=tag)
        state["serving"] = scope.serving_body()
        return variants.pipeline(detection.version), scope.item()

    def _report(
        self, scope: ServingScope, started: float, observed: list[FrameObservation], status: str
    ) -> None:
        """Record the submission's inferences: the detector's (faces per frame) and the passive
        model's (P(live) of every frame with a face)."""
        if not observed:
            return
        with_face = [obs for obs in observed if obs.face_count > 0]
        scope.record(
            scope.decisions["face_detection"],
            "face_detection",
            started=started,
            result={"frames": len(observed), "frames_with_face": len(with_face)},
            features={"frames": float(len(observed)), "face_fraction": len(with_face) / len(observed)},
        )
        scores = [float(obs.live_score) for obs in observed if obs.live_score is not None]
        scope.record(
            scope.decisions["liveness"],
            "antispoofing",
            started=started,
            result={"session_status": status, "frames": len(observed)},
            confidences=scores,
            features={"live_score": sum(scores) / len(scores)} if scores else {},
        )

    def require_open(self, token: str, tenant_id: uuid.UUID | None) -> None:
        """Raise unless the session exists for this tenant and takes frames (see :meth:`submit`)."""
        self._require_open(self._sessions.find(token, tenant_id))

    def _require_open(self, snapshot: SessionSnapshot) -> None:
        if snapshot.status == "active" and snapshot.expired(utcnow()):
            self._sessions.expire(snapshot)
            raise errors.LivenessSessionExpiredError()
        if snapshot.status == "expired":
            raise errors.LivenessSessionExpiredError()
        if snapshot.status != "active":
            raise errors.LivenessSessionClosedError(
                f"The session is {snapshot.status}"
                + (f" ({snapshot.failure_reason})" if snapshot.failure_reason else ""),
                session_status=snapshot.status,
            )

    def _change(
        self,
        snapshot: SessionSnapshot,
        engine: SessionProgress,
        state: dict[str, Any],
        now: datetime,
        input_type: str,
        started: float,
    ) -> tuple[SessionUpdate, AntispoofingCheck | None]:
        ended = engine.status != "active"
        completed = engine.status == "completed"
        if ended and not completed:
            # A failed session vouches for nothing: its biometric reference goes at once.
            state["engine"] = _without_reference(state.get("engine") or {})
        expires = snapshot.expires_at
        if completed:
            expires = now + timedelta(seconds=self._settings.antispoofing.completed_session_ttl_seconds)
        change = SessionUpdate(
            progress=state,
            status=engine.status,
            current_challenge=engine.current,
            challenges_completed=[r["kind"] for r in engine.results if r.get("status") == "passed"],
            attempts_count=engine.attempts_used,
            overall_result=None if not ended else completed,
            failure_reason=engine.failure_reason,
            completed_at=now if ended else None,
            expires_at=expires,
        )
        check = None
        if ended:
            live_scores = engine.passive_mean
            passive = self._passive()
            check = AntispoofingCheck(
                id=uuid.uuid4(),
                session_id=snapshot.session_id,
                user_id=snapshot.user_id,
                tenant_id=snapshot.tenant_id,
                api_key_id=snapshot.api_key_id,
                status="completed",
                check_type="active_liveness",
                input_type=input_type,
                liveness_challenges=snapshot.challenges,
                challenge_responses=engine.results,
                is_live=completed,
                # The session's answer is rule-based (no probability of it); the passive mean is
                # in analysis_details.
                confidence_score=None,
                spoof_type=_spoof_type(engine.failure_reason),
                risk_level="low" if completed else "high",
                model_version=ENGINE_VERSION,
                processing_time_ms=round((time.perf_counter() - started) * 1000),
                analysis_details={
                    "passive_mean_live_score": None if live_scores is None else round(float(live_scores), 4),
                    "failure_reason": engine.failure_reason,
                    "attempts_used": engine.attempts_used,
                    "frames": state.get("frames"),
                    "passive_model": passive.model.tag,
                    "embedding_model": state.get("reference_model"),
                },
            )
        return change, check

    # --- vouching for register / verify ----------------------------------------------------------------

    def vouch(
        self,
        token: str,
        caller: Principal,
        rgb: np.ndarray,
        faces: Faces,
        user_id: uuid.UUID | None,
        operation: str,
    ) -> dict[str, Any]:
        """Use a completed session once for ``operation`` on the face ``faces`` (one row) of ``rgb``
        (its ``embedding`` column is used when it comes from the session's model, else it is embedded).

        The session must be the caller's tenant's, completed, unexpired, unused, named for the same
        user when it named one, and show the same face (cosine similarity of the session's
        reference embedding and this face's, by the same model, at least that model's balanced
        verification threshold). Raises ``LIVENESS_SESSION_INVALID`` (422) with the reason;
        nothing is used up unless every check passes.
        """
        snapshot = self._sessions.find(token, caller.tenant_id)
        # (stable reason code, message): clients may switch on the code.
        problem: tuple[str, str] | None = None
        if snapshot.status != "completed":
            problem = ("not_completed", f"the session is {snapshot.status}, not completed")
        elif snapshot.consumed_at is not None:
            problem = ("already_used", "the session was already used")
        elif snapshot.expired(utcnow()):
            problem = ("expired", "the session has expired")
        elif snapshot.external_user_id is not None and snapshot.external_user_id != user_id:
            # Also when the request names no user (verify of image against image2): a session
            # opened for one user vouches only for that user.
            problem = ("other_user", "the session was opened for another user")
        if problem is not None:
            raise errors.LivenessSessionInvalidError(
                f"The liveness session cannot be used: {problem[1]}", reason=problem[0]
            )
        reference = (snapshot.progress.get("engine") or {}).get("reference_embedding")
        model = str(snapshot.progress.get("reference_model") or "")
        pipeline = self._pipeline()
        if not reference or model not in pipeline.embedders:
            raise errors.LivenessSessionInvalidError(
                "The liveness session holds no usable reference of the face", reason="no_reference"
            )
        embedding_model = faces.models.get("embedding")
        if "embedding" in faces.columns and embedding_model is not None and embedding_model.name == model:
            vector = faces.columns["embedding"][0]  # the request already embedded it with that model
        else:
            vector = pipeline.embed(rgb, faces, model).columns["embedding"][0]
        similarity = float(np.dot(np.asarray(reference, np.float32), vector))
        threshold = (
            self._settings.thresholds[model].verify_balanced if model in self._settings.thresholds else 0.9
        )
        progress = dict(snapshot.progress)
        # Used once: the biometric reference is no longer needed.
        progress["engine"] = _without_reference(progress.get("engine") or {})
        if similarity < threshold:
            # Another face presented with a completed session: the session is used up by the
            # attempt, so its holder cannot probe the stored face with image after image (and the
            # similarity is not told).
            self._sessions.consume(snapshot, "refused", progress)
            raise errors.LivenessSessionInvalidError(
                "The face is not the one that completed the liveness session; the session is used up",
                reason="different_face",
            )
        if not self._sessions.consume(snapshot, operation, progress):
            raise errors.LivenessSessionInvalidError(
                "The liveness session cannot be used: it was used or expired meanwhile", reason="already_used"
            )
        return {"session_id": snapshot.session_id, "similarity": round(similarity, 4), "model": model}

    def purge_expired(self) -> int:
        """Retention: delete expired sessions (see :meth:`LivenessSessions.purge_expired`)."""
        return self._sessions.purge_expired()

    def _internal_user(self, tenant_id: uuid.UUID, user_id: uuid.UUID) -> uuid.UUID | None:
        with self._db.session(readonly=True) as session:
            found = session.scalar(
                select(User.user_id).where(
                    User.tenant_id == tenant_id, User.external_id == user_id, User.deleted_at.is_(None)
                )
            )
        return found


def fail(progress: SessionProgress, reason: str) -> SessionProgress:
    """A copy of ``progress`` failed for ``reason`` (a failure the service, not the evaluator, saw)."""
    failed = progress.copy()
    failed.status = "failed"
    failed.failure_reason = reason
    return failed


def _feedback(frame: FrameObservation | None) -> dict[str, Any] | None:
    """What the newest measured frame showed, for a client's prompt ("move into view", ...)."""
    if frame is None:
        return None
    return {
        "timestamp_ms": round(frame.timestamp_ms, 1),
        "face_found": frame.face_count > 0,
        "faces": frame.face_count,
        "yaw": None if frame.yaw is None else round(frame.yaw, 1),
        "pitch": None if frame.pitch is None else round(frame.pitch, 1),
        "eye_openness": None if frame.eye_openness is None else round(frame.eye_openness, 3),
        "mouth_open": None if frame.mouth_open is None else round(frame.mouth_open, 3),
    }


def _timing_detail(times: list[float], now_ms: float) -> str:
    if min(times) < -CLOCK_SLACK_MS:
        return (
            f"the first frame is dated {-min(times):.0f} ms before the session was created: "
            "frames must be captured after the session was created (a clip recorded earlier is refused)"
        )
    return (
        f"a frame is dated {max(times) - now_ms:.0f} ms after it arrived: timestamps run ahead of real time"
    )


def _without_reference(engine: dict[str, Any]) -> dict[str, Any]:
    return {**engine, "reference_embedding": None, "continuity_reference": None}


def _session_times(
    frames: list[InputFrame], state: dict[str, Any], now_ms: float
) -> tuple[list[float], dict[str, Any]]:
    """Session-clock times of ``frames`` (see the module docstring); updates the clock anchor."""
    if frames[0].client_ms is None:
        return [now_ms], state
    client = [float(f.client_ms) for f in frames if f.client_ms is not None]
    if not all(np.isfinite(client)):
        raise errors.InvalidFramesError("timestamps_ms must be finite numbers")
    offset = state.get("clock_offset_ms")
    if offset is None:
        offset = now_ms - max(client)
        state = {**state, "clock_offset_ms": offset}
    times = [c + float(offset) for c in client]
    return times, state


def _outside_session(times: list[float], now_ms: float) -> bool:
    """A frame dated before the session began, or after it arrived (beyond the slack)."""
    return min(times) < -CLOCK_SLACK_MS or max(times) > now_ms + CLOCK_SLACK_MS


def _spoof_type(reason: str | None) -> str | None:
    if reason == "rigid_motion":
        return "photo"
    if reason == "spoof_detected":
        return "photo"
    if reason in ("face_changed", "wrong_challenge"):
        return "video"
    return None
