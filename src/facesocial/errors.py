"""One error base with a stable machine code and an HTTP status; one subclass per case.

Inference and service code raise these; only the API layer turns them into responses, as
``{"success": false, "error": {"code": ..., "message": ...}}``.
"""

from __future__ import annotations

from typing import Any, ClassVar


class FaceSocialError(Exception):
    """Base of every expected failure. ``code`` is stable: clients may switch on it."""

    code: ClassVar[str] = "INTERNAL_ERROR"
    status: ClassVar[int] = 500
    default_message: ClassVar[str] = "Internal error"

    def __init__(self, message: str | None = None, **details: Any) -> None:
        self.message = message or self.default_message
        self.details = details
        super().__init__(self.message)

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


def _error(code: str, status: int, message: str) -> type[FaceSocialError]:
    """Declare a subclass in one line; the class name is the code in CamelCase."""
    name = "".join(part.capitalize() for part in code.split("_")) + "Error"
    return type(name, (FaceSocialError,), {"code": code, "status": status, "default_message": message})


# --- input images ---------------------------------------------------------------------------
EmptyImageError = _error("EMPTY_IMAGE", 400, "The image is empty")
ImageTooLargeError = _error("IMAGE_TOO_LARGE", 413, "The image exceeds the byte limit")
DecompressionBombError = _error("DECOMPRESSION_BOMB", 413, "The image dimensions exceed the pixel limit")
ImageTooSmallError = _error("IMAGE_TOO_SMALL", 422, "The image is too small to contain a face")
ImageDimensionsUnsupportedError = _error(
    "IMAGE_DIMENSIONS_UNSUPPORTED", 422, "The image's longest side or aspect ratio exceeds the limit"
)
NotAnImageError = _error("NOT_AN_IMAGE", 415, "The upload is not a recognised image")
UnsupportedMediaTypeError = _error(
    "UNSUPPORTED_MEDIA_TYPE",
    415,
    "Image format not supported (JPEG, PNG, WebP, BMP, HEIC/HEIF, AVIF, MPO, GIF, TIFF are)",
)
TruncatedImageError = _error("IMAGE_TRUNCATED", 422, "The image data is truncated or corrupt")
# Too many images (or pixels) in process at once (vision/decode_gate.py); carries retry_after.
ServerBusyError = _error("SERVER_BUSY", 503, "The server is busy with other images; retry later")

# --- faces ----------------------------------------------------------------------------------
NoFaceFoundError = _error("NO_FACE_FOUND", 422, "No face was found in the image")
MultipleFacesError = _error("MULTIPLE_FACES", 422, "Several faces were found; choose one with face_index")
FaceIndexOutOfRangeError = _error("FACE_INDEX_OUT_OF_RANGE", 422, "face_index names no face")

# --- requests and resources -------------------------------------------------------------------
ValidationFailedError = _error("VALIDATION_ERROR", 422, "The request is invalid")
ConsentRequiredError = _error(
    "CONSENT_REQUIRED", 403, "Biometric enrolment needs the user's explicit consent"
)
UserNotFoundError = _error("USER_NOT_FOUND", 404, "No such user")
GroupNotFoundError = _error("GROUP_NOT_FOUND", 404, "No such face group")
FaceNotFoundError = _error("FACE_NOT_FOUND", 404, "No such face")
NotFoundError = _error("NOT_FOUND", 404, "No such resource")
MethodNotAllowedError = _error("METHOD_NOT_ALLOWED", 405, "Method not allowed")
PayloadTooLargeError = _error("PAYLOAD_TOO_LARGE", 413, "The request body is too large")
ForbiddenError = _error("FORBIDDEN", 403, "This caller may not do that")
# The client closed the connection mid-request: nobody reads the answer, but the audit row and
# the metrics record a client error (400), not a 500.
ClientDisconnectedError = _error(
    "CLIENT_DISCONNECTED", 400, "The client closed the connection before the request body was complete"
)

# --- auth -------------------------------------------------------------------------------------
MissingApiKeyError = _error("MISSING_API_KEY", 401, "An X-API-Key header is required")
# JWT errors: codes and messages of design document 001's gateway.
MissingTokenError = _error("MISSING_TOKEN", 401, "Authorization header required")
InvalidTokenFormatError = _error("INVALID_TOKEN_FORMAT", 401, "Invalid authorization format")
InvalidTokenError = _error("INVALID_TOKEN", 401, "Invalid or expired token")
InvalidApiKeyError = _error("INVALID_API_KEY", 401, "The API key is not valid")
ApiKeyExpiredError = _error("API_KEY_EXPIRED", 401, "The API key has expired")
ApiKeyQuotaExceededError = _error("API_KEY_QUOTA_EXCEEDED", 429, "The API key has used its request limit")

RateLimitedError = _error("RATE_LIMITED", 429, "Too many requests")

# --- API intake (api/image_input.py, api/body_limit.py) ---------------------------------------------
InvalidBase64Error = _error("INVALID_BASE64", 422, "The image is not valid base64")
BatchFailedError = _error("BATCH_FAILED", 422, "Every image of the batch failed; see details.results")

# --- models -----------------------------------------------------------------------------------
ModelUnavailableError = _error("MODEL_UNAVAILABLE", 503, "A required model is not available")
ModelChecksumError = _error("MODEL_CHECKSUM_MISMATCH", 503, "A model file failed its checksum")
UnknownModelError = _error("UNKNOWN_MODEL", 422, "No such model")
ModelPullFailedError = _error("MODEL_PULL_FAILED", 503, "The model pack could not be obtained")
RaceDisabledError = _error(
    "RACE_ESTIMATION_DISABLED", 403, "Race estimation is disabled; it must be enabled explicitly"
)
ChipKeyError = _error(
    "CHIP_KEY_MISMATCH", 500, "A kept face chip cannot be decrypted with the configured key"
)

# --- stores -----------------------------------------------------------------------------------
# Connection-level failures of the SQL database (lost, refused, pool exhausted, SQLite locked):
# the API answers 503 with Retry-After (api/errors.py), never 500.
DatabaseUnavailableError = _error("SERVICE_UNAVAILABLE", 503, "The database is not answering; retry shortly")
# The vector index (Milvus unreachable or timing out; the local index's disk failing on write).
VectorIndexUnavailableError = _error(
    "SERVICE_UNAVAILABLE", 503, "The vector index is not answering; retry shortly"
)
# The local index lives in one process's memory: a second process on the same folder is refused.
IndexInUseError = _error("INDEX_IN_USE", 409, "The local vector index is in use by another process")

# --- accounts (services/accounts.py, /api/v1/auth) --------------------------------------------------
# One code and one message whether the username/email is unknown or the password wrong.
InvalidCredentialsError = _error("INVALID_CREDENTIALS", 401, "The username or password is wrong")
# A suspended or deleted account: its login, tokens and keys are refused.
AccountDisabledError = _error("ACCOUNT_DISABLED", 403, "The account is suspended or deleted")
# Registration: the username (compared case-insensitively) or the email is taken; which one is
# not said.
AccountExistsError = _error("ACCOUNT_EXISTS", 409, "An account with this username or email already exists")
WeakPasswordError = _error("WEAK_PASSWORD", 422, "The password is too weak")
# auth.open_registration is false: accounts are made by the operator, not by anyone who asks.
RegistrationClosedError = _error("REGISTRATION_CLOSED", 403, "This server does not accept new accounts")
TooManyApiKeysError = _error("TOO_MANY_API_KEYS", 409, "The account holds the most active API keys allowed")

# --- API key management -------------------------------------------------------------------------
ApiKeyNotFoundError = _error("API_KEY_NOT_FOUND", 404, "No API key has this id or prefix")
AmbiguousApiKeyError = _error("AMBIGUOUS_API_KEY", 409, "Several API keys match; give more characters")

# --- face data consistency (services/face_writes.py) -----------------------------------------------
ServiceUnavailableError = _error(
    "SERVICE_UNAVAILABLE", 503, "A store did not complete the operation; nothing was half-written, retry"
)

# --- video (src/facesocial/video/) -----------------------------------------------------------------
EmptyVideoError = _error("EMPTY_VIDEO", 400, "The video upload is empty")
VideoTooLargeError = _error("VIDEO_TOO_LARGE", 413, "The video exceeds the byte limit")
UnsupportedVideoError = _error(
    "UNSUPPORTED_VIDEO", 415, "Not a video that can be decoded (MP4, MOV, WebM, MKV, AVI, MPEG-TS, Ogg)"
)
NoVideoStreamError = _error("NO_VIDEO_STREAM", 422, "The file holds no video stream (audio only?)")
VideoTruncatedError = _error("VIDEO_TRUNCATED", 422, "The video data is truncated or corrupt")
VideoTooLongError = _error("VIDEO_TOO_LONG", 422, "The video is longer than the duration limit")
VideoResolutionUnsupportedError = _error(
    "VIDEO_RESOLUTION_UNSUPPORTED", 422, "The video's frame size exceeds the resolution limit"
)
VideoTooManyFramesError = _error("VIDEO_TOO_MANY_FRAMES", 422, "The video has more frames than the limit")

# --- jobs (src/facesocial/jobs/) ---------------------------------------------------------------------
JobNotFoundError = _error("JOB_NOT_FOUND", 404, "No such job")
# Set on a job (not an HTTP answer) whose worker died on every one of its max_attempts.
JobAbandonedError = _error("JOB_ABANDONED", 500, "The job's worker stopped answering on every attempt")
JobNotCancellableError = _error("JOB_NOT_CANCELLABLE", 409, "The job has already ended")
InvalidCallbackUrlError = _error("INVALID_CALLBACK_URL", 422, "callback_url is not an acceptable http(s) URL")
AnalysisNotFoundError = _error("ANALYSIS_NOT_FOUND", 404, "No such analysis")
AnalysisNotReadyError = _error("ANALYSIS_NOT_READY", 409, "The analysis has not completed yet")

# --- AI-generated image detection (src/facesocial/domains/ai_detection/) ------------------------------
# An unknown result id, a malformed one, and another tenant's are all answered this way.
AiResultNotFoundError = _error("AI_RESULT_NOT_FOUND", 404, "No such AI-detection result")
# A report image (ELA, heatmap, thumbnail) the result does not have (yet, or at all).
ReportImageNotFoundError = _error("REPORT_IMAGE_NOT_FOUND", 404, "This result has no such image")
MethodNotFoundError = _error("METHOD_NOT_FOUND", 404, "No such detection method")

# --- antispoofing (src/facesocial/domains/antispoofing/) ----------------------------------------------
CheckNotFoundError = _error("CHECK_NOT_FOUND", 404, "No such antispoofing check")
LivenessSessionNotFoundError = _error("LIVENESS_SESSION_NOT_FOUND", 404, "No such liveness session")
LivenessSessionExpiredError = _error("LIVENESS_SESSION_EXPIRED", 410, "The liveness session has expired")
LivenessSessionClosedError = _error(
    "LIVENESS_SESSION_CLOSED", 409, "The liveness session has ended and accepts no more frames"
)
LivenessSessionBusyError = _error(
    "LIVENESS_SESSION_BUSY", 409, "Other frames of this session are being processed; send them in order"
)
InvalidChallengesError = _error("INVALID_CHALLENGES", 422, "The challenge list is not acceptable")
InvalidFramesError = _error("INVALID_FRAMES", 422, "The frames or their timestamps are not acceptable")
TooManyFramesError = _error("TOO_MANY_FRAMES", 413, "Too many frames in one request")
LivenessRequiredError = _error(
    "LIVENESS_REQUIRED", 403, "This operation needs a completed liveness session (liveness_session)"
)
LivenessSessionInvalidError = _error(
    "LIVENESS_SESSION_INVALID", 422, "The liveness session cannot vouch for this request"
)

# --- meeting attention (src/facesocial/domains/attention/) -------------------------------------------
# An unknown id, a malformed one, and another tenant's are all answered with these 404s.
MeetingNotFoundError = _error("MEETING_NOT_FOUND", 404, "No such meeting")
ParticipantNotFoundError = _error("PARTICIPANT_NOT_FOUND", 404, "No such participant in this meeting")
AlertNotFoundError = _error("ALERT_NOT_FOUND", 404, "No such alert in this meeting")
# start on a meeting that is not scheduled, end on one that is not active (details: status).
InvalidMeetingTransitionError = _error(
    "INVALID_MEETING_TRANSITION", 409, "The meeting's status does not allow this transition"
)
MeetingEndedError = _error("MEETING_ENDED", 409, "The meeting has ended and accepts no participants")
# The live WebSocket of a meeting that is not active (details: status), and a socket over the
# per-meeting or per-process socket limit (settings.attention.max_sockets_per_meeting, max_sockets).
MeetingNotActiveError = _error("MEETING_NOT_ACTIVE", 409, "The meeting is not active")
TooManyStreamsError = _error("TOO_MANY_STREAMS", 429, "Too many live sockets; retry later")
ParticipantNotActiveError = _error("PARTICIPANT_NOT_ACTIVE", 409, "The participant has already left")
AlertAlreadyResolvedError = _error("ALERT_ALREADY_RESOLVED", 409, "The alert is already resolved")
RecordingNotFoundError = _error("RECORDING_NOT_FOUND", 404, "No such recording")
# The chart of a recording whose analysis has not completed (details: status).
RecordingNotReadyError = _error("RECORDING_NOT_READY", 409, "The recording's analysis has not completed yet")

# --- model registry and deployments (domains/registry/) ---------------------------------------
ModelNotFoundError = _error("MODEL_NOT_FOUND", 404, "No such model slot")
ModelVersionNotFoundError = _error("MODEL_VERSION_NOT_FOUND", 404, "The slot has no such version")
# Production and canaries need the file on this server (`facesocial models pull`).
ModelVersionNotInstalledError = _error(
    "MODEL_VERSION_NOT_INSTALLED", 409, "The version's model file is not installed on this server"
)
# A stage change outside development -> staging -> production / archived (details: stage, allowed).
IllegalStageTransitionError = _error(
    "ILLEGAL_STAGE_TRANSITION", 409, "The version's stage does not allow this change"
)
NoCanaryError = _error("NO_CANARY", 409, "The slot has no canary")
# An embedding version whose vector collection lacks users enrolled in another one: verify and
# identify routed to it would not find them (details: version, missing_users, command).
GalleryNotMigratedError = _error(
    "GALLERY_NOT_MIGRATED", 409, "The embedding version's gallery does not hold every enrolled user"
)

# --- A/B experiments (domains/experiments/) -----------------------------------------------------
ExperimentNotFoundError = _error("EXPERIMENT_NOT_FOUND", 404, "No such experiment")
# Both arms of one slot; details name the field (e.g. baseline and challenger are one version).
InvalidExperimentError = _error("INVALID_EXPERIMENT", 422, "The experiment is not acceptable")
# start on an experiment that is not a draft, stop on one that is not running (details: status).
InvalidExperimentTransitionError = _error(
    "INVALID_EXPERIMENT_TRANSITION", 409, "The experiment's status does not allow this transition"
)
# One running experiment per slot (details: experiment_id of the running one).
ExperimentConflictError = _error(
    "EXPERIMENT_CONFLICT", 409, "Another experiment is already running on this model slot"
)
# Feedback on an inference that is unknown, another tenant's, or not of this experiment: all 404.
InferenceNotFoundError = _error("INFERENCE_NOT_FOUND", 404, "No such inference in this experiment")
# Feedback that contradicts the outcome already recorded for an inference (a repeat is accepted).
FeedbackConflictError = _error(
    "FEEDBACK_CONFLICT", 409, "A different outcome was already recorded for this inference"
)

# --- people counting (domains/counting/) ------------------------------------------------------
CountingVideoNotFoundError = _error("COUNTING_VIDEO_NOT_FOUND", 404, "No such counting video")
# The preview or results of a counting video whose job has not completed (details: status).
CountingNotReadyError = _error("COUNTING_NOT_READY", 409, "The counting video has not been processed yet")
# Lines/zones JSON not acceptable (details: field, index, reason).
InvalidCountingLinesError = _error("INVALID_COUNTING_LINES", 422, "The counting lines are not acceptable")
InvalidCountingZonesError = _error("INVALID_COUNTING_ZONES", 422, "The counting zones are not acceptable")
