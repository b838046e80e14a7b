"""Typed results of the SDK: frozen dataclasses over the server's JSON (docs/api.md).

Each result keeps the whole answer in ``raw`` (the parsed JSON object, ``success`` included),
so fields the SDK does not type yet — or the server adds later — stay reachable:
``result.raw["serving"]``. Parsing is lenient on purpose: a missing optional field becomes
``None`` rather than an exception, so an older SDK keeps working against a newer server.
Coordinates are pixels of the upright image, similarities and confidences are 0..1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _serving(raw: JSON) -> JSON:
    """``serving`` as ``{slot: decision}``: detect answers one decision ``{slot, version, ...}``,
    the other routes a mapping of them."""
    serving = raw.get("serving")
    if not isinstance(serving, dict):
        return {}
    if isinstance(serving.get("slot"), str):
        return {serving["slot"]: serving}
    return dict(serving)


class _Served:
    """The ``serving`` view of an inference's answer (a mixin of the result classes that carry one)."""

    __slots__ = ()
    raw: JSON

    @property
    def serving(self) -> JSON:
        """Which model version answered, per slot: ``{slot: {version, route, arm, inference_id, ...}}``
        (docs/api.md "Which model version answered"); ``{}`` when the answer has none. A route
        answering one slot's object (``face-detection/detect``) is given in the same form."""
        return _serving(self.raw)


@dataclass(frozen=True, slots=True)
class BBox:
    """A face box in pixels: top-left ``x``, ``y`` and its ``width``, ``height``."""

    x: int
    y: int
    width: int
    height: int

    @classmethod
    def from_dict(cls, data: JSON) -> BBox:
        return cls(int(data["x"]), int(data["y"]), int(data["width"]), int(data["height"]))


@dataclass(frozen=True, slots=True)
class Face:
    """One detected face: box, detector confidence (0..1), 5 named landmarks ``{name: [x, y]}``
    when asked, ``attributes`` (age, gender, emotion) when asked, and the raw face object."""

    face_index: int
    bbox: BBox
    confidence: float
    landmarks: JSON | None
    attributes: JSON | None
    quality: JSON | None
    raw: JSON = field(repr=False)

    @classmethod
    def from_dict(cls, data: JSON) -> Face:
        return cls(
            face_index=int(data.get("face_index", 0)),
            bbox=BBox.from_dict(data["bbox"]),
            confidence=float(data.get("confidence", 0.0)),
            landmarks=data.get("landmarks"),
            attributes=data.get("attributes"),
            quality=data.get("quality"),
            raw=data,
        )


@dataclass(frozen=True, slots=True)
class DetectionResult(_Served):
    """``POST /api/v1/face-detection/detect``: the faces found, the models used."""

    request_id: str | None
    faces: list[Face]
    model: JSON
    processing_time_ms: int | None
    raw: JSON = field(repr=False)

    @classmethod
    def from_dict(cls, data: JSON) -> DetectionResult:
        return cls(
            request_id=_str(data.get("request_id")),
            faces=[Face.from_dict(face) for face in data.get("faces", [])],
            model=data.get("model") or {},
            processing_time_ms=_int(data.get("processing_time_ms")),
            raw=data,
        )


@dataclass(frozen=True, slots=True)
class Registration(_Served):
    """``POST /api/v1/face-recognition/register``: the stored face and its embedding model."""

    user_id: str
    face_id: str
    face: Face | None
    embedding_model: JSON | None
    raw: JSON = field(repr=False)

    @classmethod
    def from_dict(cls, data: JSON) -> Registration:
        face = data.get("face")
        return cls(
            user_id=str(data["user_id"]),
            face_id=str(data["face_id"]),
            face=Face.from_dict(face) if face else None,
            embedding_model=data.get("embedding_model"),
            raw=data,
        )


@dataclass(frozen=True, slots=True)
class Verification(_Served):
    """``POST /api/v1/face-recognition/verify``: ``match`` when ``similarity >= threshold``."""

    match: bool
    similarity: float
    threshold: float
    threshold_mode: str | None
    raw: JSON = field(repr=False)

    @classmethod
    def from_dict(cls, data: JSON) -> Verification:
        return cls(
            match=bool(data["match"]),
            similarity=float(data["similarity"]),
            threshold=float(data["threshold"]),
            threshold_mode=_str(data.get("threshold_mode")),
            raw=data,
        )


@dataclass(frozen=True, slots=True)
class Candidate:
    """One person of an identification: rank 1 is the most similar."""

    rank: int
    user_id: str
    face_id: str
    similarity: float

    @classmethod
    def from_dict(cls, data: JSON) -> Candidate:
        return cls(int(data["rank"]), str(data["user_id"]), str(data["face_id"]), float(data["similarity"]))


@dataclass(frozen=True, slots=True)
class Identification(_Served):
    """``POST /api/v1/face-recognition/identify``: candidates above the threshold, best first."""

    identified: bool
    unknown: bool
    candidates: list[Candidate]
    threshold: float | None
    gallery_size: int | None
    raw: JSON = field(repr=False)

    @classmethod
    def from_dict(cls, data: JSON) -> Identification:
        return cls(
            identified=bool(data.get("identified")),
            unknown=bool(data.get("unknown")),
            candidates=[Candidate.from_dict(c) for c in data.get("candidates", [])],
            threshold=_float(data.get("threshold")),
            gallery_size=_int(data.get("gallery_size")),
            raw=data,
        )


@dataclass(frozen=True, slots=True)
class Group:
    """A face group of the caller's tenant; ``members`` only from ``get_group``."""

    group_id: str
    group_name: str
    description: str | None
    face_count: int | None
    members: list[JSON] | None
    raw: JSON = field(repr=False)

    @classmethod
    def from_dict(cls, data: JSON) -> Group:
        return cls(
            group_id=str(data["group_id"]),
            group_name=str(data["group_name"]),
            description=_str(data.get("description")),
            face_count=_int(data.get("face_count")),
            members=data.get("members"),
            raw=data,
        )


@dataclass(frozen=True, slots=True)
class Erasure:
    """``DELETE /api/v1/face-recognition/users/{user_id}``: what the GDPR erasure removed."""

    user_id: str
    faces_removed: int
    vectors_removed: int
    raw: JSON = field(repr=False)

    @classmethod
    def from_dict(cls, data: JSON) -> Erasure:
        return cls(
            user_id=str(data.get("user_id", "")),
            faces_removed=int(data.get("faces_removed", 0)),
            vectors_removed=int(data.get("vectors_removed", 0)),
            raw=data,
        )


@dataclass(frozen=True, slots=True)
class DemographicsFace:
    """Age (years), its range, gender and emotion of one face, with their confidences (0..1)."""

    estimated_age: float | None
    age_range: JSON | None
    gender: str | None
    gender_confidence: float | None
    emotion: str | None
    emotion_confidence: float | None
    raw: JSON = field(repr=False)

    @classmethod
    def from_dict(cls, data: JSON) -> DemographicsFace:
        return cls(
            estimated_age=_float(data.get("estimated_age")),
            age_range=data.get("age_range"),
            gender=_str(data.get("gender")),
            gender_confidence=_float(data.get("gender_confidence")),
            emotion=_str(data.get("emotion")),
            emotion_confidence=_float(data.get("emotion_confidence")),
            raw=data,
        )


@dataclass(frozen=True, slots=True)
class Demographics(_Served):
    """``POST /api/v1/demographics/analyze``: one entry per face."""

    faces: list[DemographicsFace]
    raw: JSON = field(repr=False)

    @classmethod
    def from_dict(cls, data: JSON) -> Demographics:
        return cls([DemographicsFace.from_dict(f) for f in data.get("faces", [])], raw=data)


@dataclass(frozen=True, slots=True)
class SpoofCheck(_Served):
    """``POST /api/v1/antispoofing/check``: passive liveness of one face."""

    check_id: str | None
    is_live: bool
    confidence_score: float | None
    spoof_type: str | None
    risk_level: str | None
    raw: JSON = field(repr=False)

    @classmethod
    def from_dict(cls, data: JSON) -> SpoofCheck:
        return cls(
            check_id=_str(data.get("check_id")),
            is_live=bool(data.get("is_live")),
            confidence_score=_float(data.get("confidence_score")),
            spoof_type=_str(data.get("spoof_type")),
            risk_level=_str(data.get("risk_level")),
            raw=data,
        )


@dataclass(frozen=True, slots=True)
class LivenessSession:
    """An active liveness session (docs/liveness.md): its challenges, the one to perform now,
    its state (``session_status`` active/completed/failed/expired), ``overall_result`` (True
    live, False not, None while undecided) and ``failure_reason``.
    ``session_token`` is given only when the session is created (the server shows it once);
    keep it to send frames and to register or verify with ``liveness_session``."""

    session_id: str | None
    session_token: str | None
    session_status: str | None
    challenges: list[str]
    current_challenge: str | None
    overall_result: bool | None
    failure_reason: str | None
    expires_at: str | None
    raw: JSON = field(repr=False)

    @classmethod
    def from_dict(cls, data: JSON) -> LivenessSession:
        return cls(
            session_id=_str(data.get("session_id")),
            session_token=_str(data.get("session_token")),
            session_status=_str(data.get("session_status")),
            challenges=[str(c) for c in data.get("challenges") or []],
            current_challenge=_str(data.get("current_challenge")),
            overall_result=None if data.get("overall_result") is None else bool(data["overall_result"]),
            failure_reason=_str(data.get("failure_reason")),
            expires_at=_str(data.get("expires_at")),
            raw=data,
        )


@dataclass(frozen=True, slots=True)
class DeepfakeResult(_Served):
    """``POST /api/v1/deepfake-detection/analyze``: ``band`` real/uncertain/fake and scores 0..1."""

    analysis_id: str | None
    is_deepfake: bool
    band: str | None
    confidence_score: float | None
    manipulation_score: float | None
    raw: JSON = field(repr=False)

    @classmethod
    def from_dict(cls, data: JSON) -> DeepfakeResult:
        return cls(
            analysis_id=_str(data.get("analysis_id")),
            is_deepfake=bool(data.get("is_deepfake")),
            band=_str(data.get("band")),
            confidence_score=_float(data.get("confidence_score")),
            manipulation_score=_float(data.get("manipulation_score")),
            raw=data,
        )


@dataclass(frozen=True, slots=True)
class AiImageResult(_Served):
    """``POST /api/v1/ai-detection/analyze``: the SkyGate verdict, or (``async``) a pending
    result whose ``job_id`` can be waited for."""

    result_id: str | None
    is_ai_generated: bool | None
    band: str | None
    job_id: str | None
    raw: JSON = field(repr=False)

    @classmethod
    def from_dict(cls, data: JSON) -> AiImageResult:
        flag = data.get("is_ai_generated")
        return cls(
            result_id=_str(data.get("result_id")),
            is_ai_generated=None if flag is None else bool(flag),
            band=_str(data.get("band")),
            job_id=_str(data.get("job_id")),
            raw=data,
        )


@dataclass(frozen=True, slots=True)
class Accepted:
    """A 202 answer of a queued analysis: the resource id (``analysis_id``, ``video_id``,
    ``check_id`` or ``result_id``, in ``resource_id``), its ``job_id`` and ``status_url``."""

    resource_id: str | None
    job_id: str | None
    status_url: str | None
    raw: JSON = field(repr=False)

    @classmethod
    def from_dict(cls, data: JSON) -> Accepted:
        resource = next(
            (
                data[k]
                for k in ("video_id", "analysis_id", "check_id", "result_id", "recording_id")
                if data.get(k)
            ),
            None,
        )
        return cls(_str(resource), _str(data.get("job_id")), _str(data.get("status_url")), raw=data)


TERMINAL_JOB_STATES = frozenset({"completed", "failed", "cancelled"})


@dataclass(frozen=True, slots=True)
class Job:
    """``GET /api/v1/jobs/{job_id}``: status pending/processing/completed/failed/cancelled,
    progress 0..100, the kind's result once completed, the error once failed."""

    job_id: str
    kind: str | None
    status: str
    progress_percentage: float
    estimated_completion: str | None
    result: JSON | None
    error: JSON | None
    raw: JSON = field(repr=False)

    @property
    def done(self) -> bool:
        """True once the job can change no more (completed, failed or cancelled)."""
        return self.status in TERMINAL_JOB_STATES

    @classmethod
    def from_dict(cls, data: JSON) -> Job:
        job = data.get("job", data)
        return cls(
            job_id=str(job["job_id"]),
            kind=_str(job.get("kind")),
            status=str(job["status"]),
            progress_percentage=float(job.get("progress_percentage") or 0.0),
            estimated_completion=_str(job.get("estimated_completion")),
            result=job.get("result"),
            error=job.get("error"),
            raw=data,
        )
