"""Request models: the fields of each image route (multipart or JSON) and the JSON bodies.

Free text (group names, descriptions, registration sources, model names) is stripped of
surrounding whitespace and refused with 422 ``VALIDATION_ERROR`` when it is blank or holds
control characters (Unicode category Cc; lone surrogates, Cs, which no UTF-8 column can store,
too) or characters that change how text is shown without being seen (bidi embeddings,
overrides and isolates; a byte-order mark; in one-line text also the zero-width space); a
description may hold tabs and line breaks. Booleans are true or false (JSON booleans, or the
text in any case), nothing else. Options that contradict each other are refused by
``check_consistency`` with a message naming both fields, never silently dropped.
"""

from __future__ import annotations

import unicodedata
import uuid
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints
from pydantic_core import PydanticCustomError

from facesocial import errors
from facesocial.api.image_input import ImageForm, ImageUpload
from facesocial.services.demographics import BATCH_MAX_IMAGES

_REFUSED_CATEGORIES = frozenset({"Cc", "Cs"})
# Format characters that make text display as something else: a right-to-left override turns
# "staff\u202egnp.exe" into "staffexe.png" on screen (bidi embeddings, overrides and isolates,
# U+202A-U+202E and U+2066-U+2069); a byte-order mark inside text is invisible, so two names
# that look the same differ.
_DISPLAY_SPOOFING = frozenset(
    {*(chr(c) for c in range(0x202A, 0x202F)), *(chr(c) for c in range(0x2066, 0x206A)), "\ufeff"}
)
# ... and the zero-width space, in names and other one-line text. A description may keep it:
# Thai, Khmer and Lao text uses it to mark word breaks.
_ONE_LINE_SPOOFING = _DISPLAY_SPOOFING | {"\u200b"}


def _text_rule(allowed: str, invisible: frozenset[str]) -> AfterValidator:
    def check(value: str) -> str:
        for char in value:
            if char not in allowed and unicodedata.category(char) in _REFUSED_CATEGORIES:
                raise PydanticCustomError(
                    "control_character",
                    "must not contain control characters (found U+{code})",
                    {"code": f"{ord(char):04X}"},
                )
            if char in invisible:
                raise PydanticCustomError(
                    "format_character",
                    "must not contain invisible or text-direction characters (found U+{code})",
                    {"code": f"{ord(char):04X}"},
                )
        if not value:
            raise PydanticCustomError("blank", "must not be empty or only whitespace")
        return value

    return AfterValidator(check)


_ONE_LINE = _text_rule("", _ONE_LINE_SPOOFING)
_MULTILINE = _text_rule("\t\n\r", _DISPLAY_SPOOFING)
# The one-line rule, for the request models of other modules (api/routers/auth.py).
ONE_LINE_TEXT = _ONE_LINE

GroupName = Annotated[str, StringConstraints(strip_whitespace=True, max_length=100), _ONE_LINE]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000), _MULTILINE]
RegistrationSource = Annotated[str, StringConstraints(strip_whitespace=True, max_length=50), _ONE_LINE]
ModelName = Annotated[str, StringConstraints(strip_whitespace=True, max_length=64), _ONE_LINE]


def _number_as_text(value: object) -> object:
    # JSON clients send 68 as a number; the form sends "68".
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


LandmarkSet = Annotated[Literal["5", "68", "468"], BeforeValidator(_number_as_text)]


def _true_or_false(value: object) -> object:
    # pydantic's lax bool also takes "yes", "on", "1", 1 ...: consent must be an unmistakable
    # true, and one spelling per value keeps what a proxy or log reads equal to what we read.
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise PydanticCustomError("bool_type", "must be true or false")


# A boolean field: JSON true/false, or the text "true"/"false" in any case (multipart).
Flag = Annotated[bool, BeforeValidator(_true_or_false)]

_IMAGE_HELP = (
    "JPEG, PNG, WebP, BMP, HEIC/HEIF, AVIF, MPO, GIF or TIFF (first frame), EXIF orientation applied; "
    "up to limits.max_image_bytes (20 MiB by default)"
)
_LANDMARKS_HELP = (
    "5 (default), 68 (dlib iBUG: its training data bars commercial use) or 468 (mesh, with pose, "
    "eye openness and gaze); 68 and 468 need return_landmarks=true"
)
_FACE_INDEX_HELP = (
    "Which detected face to use (0 = largest). Needed at registration when the image holds several faces."
)
_MODEL_HELP = "Embedding model (default: the configured one); a gallery is bound to its model"
_THRESHOLD_HELP = "Override the calibrated cosine threshold"


def _contradiction(first: str, second: str, message: str) -> errors.FaceSocialError:
    return errors.ValidationFailedError(message, fields=[first, second])


# --- image routes ------------------------------------------------------------------------------------


class DetectForm(ImageForm):
    image: ImageUpload = Field(description=_IMAGE_HELP)
    min_face_size: int = Field(default=40, ge=8, le=4096, description="Smallest face side, px")
    max_faces: int = Field(default=100, ge=1, le=1000)
    # At least 0.2: below it BlazeFace's detections are almost never faces (every labelled face
    # of dlib_faces_detection scores >= 0.55, docs/accuracy.md), yet each one costs a second
    # look: confidence 0 made one request ~25x dearer than the default.
    detection_confidence: float | None = Field(
        default=None, ge=0.2, le=1.0, description="0.2-1.0; default: the server's setting (0.5)"
    )
    return_landmarks: Flag = True
    landmarks: LandmarkSet = Field(default="5", description=_LANDMARKS_HELP)
    return_attributes: Flag = Field(default=False, description="Age, gender, emotion per face")

    def check_consistency(self) -> None:
        if not self.return_landmarks and self.landmarks != "5":
            raise _contradiction(
                "landmarks",
                "return_landmarks",
                f"landmarks={self.landmarks} asks for landmarks that return_landmarks=false refuses: "
                "send one of the two",
            )


# A liveness session token (token_urlsafe: letters, digits, "-" and "_").
LivenessToken = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")]
_LIVENESS_HELP = (
    "The session_token of a completed liveness session for this face (used once; "
    "POST /api/v1/antispoofing/liveness/sessions)"
)


class RegisterForm(ImageForm):
    user_id: uuid.UUID
    image: ImageUpload = Field(description=_IMAGE_HELP)
    consent: Flag = Field(default=False, description="The user agreed to biometric enrolment")
    face_index: int | None = Field(default=None, ge=0, description=_FACE_INDEX_HELP)
    group_id: uuid.UUID | None = None
    registration_source: RegistrationSource | None = None
    embedding_model: ModelName | None = Field(default=None, description=_MODEL_HELP)
    liveness_session: LivenessToken | None = Field(default=None, description=_LIVENESS_HELP)


class VerifyForm(ImageForm):
    max_images: ClassVar[int] = 2

    image: ImageUpload = Field(description=_IMAGE_HELP)
    user_id: uuid.UUID | None = Field(default=None, description="Compare with this user's enrolled faces")
    image2: ImageUpload | None = Field(default=None, description="... or with the face in this image")
    mode: Literal["balanced", "strict"] | None = Field(
        default=None, description="Calibrated threshold to use (default balanced); not with threshold"
    )
    threshold: float | None = Field(
        default=None, ge=-1.0, le=1.0, description=f"{_THRESHOLD_HELP}; not with mode"
    )
    face_index: int | None = Field(default=None, ge=0, description=_FACE_INDEX_HELP)
    embedding_model: ModelName | None = Field(default=None, description=_MODEL_HELP)
    liveness_session: LivenessToken | None = Field(default=None, description=_LIVENESS_HELP)

    def check_consistency(self) -> None:
        if self.user_id is not None and self.image2 is not None:
            raise _contradiction(
                "user_id", "image2", "Send either user_id or a second image (image2), not both"
            )
        if self.user_id is None and self.image2 is None:
            raise errors.ValidationFailedError(
                "Send either user_id or a second image (image2)", fields=["user_id", "image2"]
            )
        if self.mode is not None and self.threshold is not None:
            raise _contradiction(
                "mode",
                "threshold",
                f"mode={self.mode} picks a calibrated threshold and threshold={self.threshold:g} "
                "overrides it: send one of the two",
            )


class IdentifyForm(ImageForm):
    image: ImageUpload = Field(description=_IMAGE_HELP)
    top_k: int = Field(default=5, ge=1, le=100, description="Candidates returned at most (one per person)")
    group_id: uuid.UUID | None = Field(default=None, description="Search only this face group")
    threshold: float | None = Field(default=None, ge=-1.0, le=1.0, description=_THRESHOLD_HELP)
    face_index: int | None = Field(default=None, ge=0, description=_FACE_INDEX_HELP)
    embedding_model: ModelName | None = Field(default=None, description=_MODEL_HELP)


class AnalyzeForm(ImageForm):
    image: ImageUpload = Field(description=_IMAGE_HELP)


class BatchForm(ImageForm):
    max_images: ClassVar[int] = BATCH_MAX_IMAGES
    images_in_memory: ClassVar[Literal["sum", "largest"]] = "largest"  # analysed one after another
    per_item_errors: ClassVar[bool] = True

    images: list[ImageUpload] = Field(
        min_length=1, max_length=BATCH_MAX_IMAGES, description=f"1 to {BATCH_MAX_IMAGES} images"
    )


# --- JSON bodies -------------------------------------------------------------------------------------


class GroupCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    group_name: GroupName
    description: Description | None = None
    privacy_level: Literal["public", "friends", "private"] = "private"
    user_id: uuid.UUID | None = Field(default=None, description="Owner (an enrolled user)")


class MembersAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_ids: list[uuid.UUID] = Field(min_length=1, max_length=1000)
