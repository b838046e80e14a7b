"""Response schemas: the error envelope and the success body of every route.

They document the JSON the services build (``responses={200: {"model": ...}}``); they do not
filter it. Every model allows extra fields so that a new column of a face (a head added to the
pipeline) is never dropped or refused on the way out; tests/integration/test_openapi.py checks
real responses against these models, so a renamed or retyped field fails there.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Public(BaseModel):
    model_config = ConfigDict(extra="allow")


class Success(Public):
    success: Literal[True] = True


# --- errors -----------------------------------------------------------------------------------------


class ErrorBody(BaseModel):
    code: str = Field(description="Stable machine code (errors.py): switch on it, not on the message")
    message: str = Field(description="For people; may change between versions")
    details: dict[str, Any] | list[dict[str, Any]] | None = Field(
        default=None, description="Case-specific facts, e.g. limit_bytes, retry_after, per-field problems"
    )


class ErrorResponse(BaseModel):
    """``{"success": false, "error": {"code", "message", "details"?}}`` — every error, every route."""

    success: Literal[False] = False
    error: ErrorBody


# --- faces ------------------------------------------------------------------------------------------


class ModelRef(Public):
    name: str
    version: str


class EmbeddingModelRef(ModelRef):
    # "onnxruntime", or "dlib" when dlib_resnet_v1 runs in dlib itself (the same vectors).
    runtime: str


class BBox(Public):
    x: int
    y: int
    width: int
    height: int


class Landmark(Public):
    name: str = Field(
        description="left_eye, right_eye, nose, mouth_left, mouth_right (the subject's own sides)"
    )
    x: float
    y: float


class Quality(Public):
    score: float = Field(ge=0, le=1)
    size: float
    sharpness: float
    brightness: float
    frontalness: float


class AgeRange(Public):
    min: int
    max: int


class Attributes(Public):
    estimated_age: float
    age_range: AgeRange
    age_group: str
    gender: str
    gender_confidence: float
    emotion: str
    emotion_confidence: float
    emotions: dict[str, float]


class Face(Public):
    face_index: int = Field(description="0 = the largest face")
    bbox: BBox
    confidence: float
    roll: float | None = Field(
        default=None,
        description="In-plane rotation in degrees, -180..180: 0 upright, positive = turned clockwise",
    )
    quality: Quality | None = None
    landmarks: list[Landmark] | None = Field(
        default=None, description="5 points, unless return_landmarks=false"
    )


class DetectedFace(Face):
    landmarks_68: list[list[float]] | None = Field(default=None, description="landmarks=68: [x, y] pairs")
    mesh: dict[str, Any] | None = Field(
        default=None, description="landmarks=468: points, yaw/pitch/roll, eye openness, blink, gaze, iris"
    )
    attributes: Attributes | None = Field(default=None, description="return_attributes=true")


class ImageInfo(Public):
    width: int
    height: int
    format: str
    bytes: int


# --- routes -----------------------------------------------------------------------------------------


class DetectResponse(Success):
    request_id: str
    image: ImageInfo
    faces_detected: int
    faces: list[DetectedFace]
    model: dict[str, ModelRef] = Field(description="Which model made each part (detector, landmarks, ...)")
    processing_time_ms: int


class LivenessUsed(Public):
    session_id: str
    similarity: float = Field(description="Cosine similarity of this face and the session's face")
    model: str


class RegisterResponse(Success):
    user_id: str
    face_id: str
    faces_detected: int
    face: Face
    embedding_model: EmbeddingModelRef
    collection: str
    group_id: str | None
    face_chip_kept: bool
    liveness: LivenessUsed | None = Field(default=None, description="The liveness session used, if any")


class VerifyResponse(Success):
    match: bool
    similarity: float = Field(description="Cosine similarity, -1..1")
    threshold: float
    threshold_mode: Literal["balanced", "strict", "custom"]
    face: Face
    faces_detected: int
    embedding_model: EmbeddingModelRef
    user_id: str | None = Field(default=None, description="Against a user: the user and faces compared")
    faces_compared: int | None = None
    face2: Face | None = Field(default=None, description="Against image2: its face")
    faces_detected2: int | None = None
    liveness: LivenessUsed | None = Field(default=None, description="The liveness session used, if any")


class Candidate(Public):
    rank: int
    user_id: str
    face_id: str
    similarity: float


class IdentifyResponse(Success):
    identified: bool
    unknown: bool
    candidates: list[Candidate] = Field(description="One per person, best first, above the threshold")
    threshold: float
    top_k: int
    group_id: str | None
    gallery_size: int
    face: Face
    faces_detected: int
    embedding_model: EmbeddingModelRef


class AnalyzedFace(Face, Attributes):
    pass


class AnalyzeResponse(Success):
    request_id: str
    image: ImageInfo
    faces_detected: int
    faces: list[AnalyzedFace]
    models: dict[str, ModelRef]
    processing_time_ms: int


class BatchItem(Public):
    index: int
    filename: str
    success: bool
    error: ErrorBody | None = Field(default=None, description="When this item failed")
    request_id: str | None = Field(default=None, description="When it succeeded: the analyze body's fields")
    faces: list[AnalyzedFace] | None = None


class BatchResponse(Success):
    batch_id: str
    total: int
    succeeded: int = Field(ge=1, description="At least one: a batch where every item failed is BATCH_FAILED")
    failed: int
    max_images: int
    results: list[BatchItem]


class UserFace(Public):
    face_id: str
    status: str = Field(description="active; pending or deleting while a write is under way")
    quality: float | None
    embedding_model: ModelRef
    collection: str | None
    chip_kept: bool
    created_at: str


class UserResponse(Success):
    user_id: str
    consent_given: bool
    consent_timestamp: str | None
    created_at: str
    faces: list[UserFace]


class EraseResponse(Success):
    user_id: str
    erased: bool
    faces_removed: int
    vectors_removed: int
    recognition_sessions_removed: int


class Group(Public):
    group_id: str
    group_name: str
    description: str | None
    privacy_level: Literal["public", "friends", "private"]
    owner_user_id: str | None
    face_count: int
    created_at: str


class GroupMember(Public):
    user_id: str
    face_ids: list[str]


class GroupDetail(Group):
    members: list[GroupMember]


class GroupCreated(Success):
    group: Group


class GroupResponse(Success):
    group: GroupDetail


class GroupList(Success):
    total: int
    groups: list[Group]


class GroupDeleted(Success):
    group_id: str
    deleted: bool
