"""Runtime settings: one nested object, read from ``FACESOCIAL_*`` environment variables.

Nested sections use a double underscore, e.g. ``FACESOCIAL_LIMITS__MAX_IMAGE_BYTES``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "facesocial"


class ImageLimits(BaseModel):
    """Bounds applied before any pixel is decoded (defence against large or hostile uploads)."""

    max_image_bytes: int = 20 * 1024 * 1024
    # 40 Mpx: a 48 Mpx phone photo is refused, an 8K frame (33 Mpx) passes.
    max_image_pixels: int = 40_000_000
    min_image_side: int = 16


class DetectionDefaults(BaseModel):
    """Detection defaults (the columns of ``face_detection.detection_requests``)."""

    min_face_size: int = 40
    max_faces: int = 100
    # MediaPipe's own cut-off for BlazeFace (document 000 suggests 0.7): on
    # ../shared/data/dlib_faces_detection every labelled face scores >= 0.55 and every false
    # detection <= 0.26 (docs/accuracy.md), while 0.7 loses small faces.
    detection_confidence: float = 0.5
    # Upsampling finds faces down to ~40 px with the HOG detector at 4x the cost.
    hog_upsample_small_images: int = 1
    hog_upsample_max_pixels: int = 800_000


class RecognitionThresholds(BaseModel):
    """Cosine-similarity thresholds of one embedding model, calibrated on the LFW dev folds.

    For dlib_resnet_v1:

    ``facesocial eval verification`` on ../shared/data/lfw_deepfunneled (docs/accuracy.md),
    with the default BlazeFace detector: balanced = the accuracy-maximising threshold (0.911;
    98.1 % cross-validated accuracy); strict and identify = a false-match rate of 1e-3 per
    comparison, estimated on 7.3 M different-person comparisons (0.925, true-accept rate
    92.5 %). Identification is open-set: a gallery of N people meets a stranger N times, so it
    needs the strict point.
    """

    verify_balanced: float
    verify_strict: float
    identify: float


def _default_thresholds() -> dict[str, RecognitionThresholds]:
    # One calibration per embedding model; see docs/accuracy.md for each figure.
    return {
        "dlib_resnet_v1": RecognitionThresholds(verify_balanced=0.91, verify_strict=0.925, identify=0.925),
        # LFW dev, BlazeFace: 95.8 % CV accuracy at 0.519; FMR 1e-3 at 0.6315 (TAR 71.7 %).
        "faceres": RecognitionThresholds(verify_balanced=0.52, verify_strict=0.63, identify=0.63),
        # LFW dev, BlazeFace: 88.9 % CV accuracy at 0.170; FMR 1e-3 at 0.4046 (TAR 40.1 %): weak.
        "mobileface": RecognitionThresholds(verify_balanced=0.17, verify_strict=0.405, identify=0.405),
    }


def _default_model_dir() -> Path:
    return Path.home() / ".cache" / "facesocial" / "models"


class ModelSettings(BaseModel):
    """Which models run, where converted models are cached, how ONNX Runtime is set up."""

    # Converted ONNX models + manifest.json (`facesocial models pull` fills it).
    model_dir: Path = Field(default_factory=_default_model_dir)
    # BlazeFace full-range (ONNX, ~4 ms) by default; dlib HOG (~90 ms) is the fallback.
    detector: Literal["blazeface_full", "dlib_hog"] = "blazeface_full"
    default_embedding: Literal["dlib_resnet_v1", "faceres", "mobileface"] = "dlib_resnet_v1"
    intra_op_threads: int = 2
    use_cuda: bool = True
    # Opened at start-up so the first request does not pay for it.
    preload: list[str] = Field(default_factory=lambda: ["blazeface_full"])
    # `facesocial serve` pulls and converts the pack on first start when it is missing.
    auto_pull: bool = True
    # Race estimation is off unless explicitly enabled (docs/models.md explains why).
    enable_race: bool = False


class PrivacySettings(BaseModel):
    """Biometric data kept beyond the template itself (GDPR data minimisation: off by default)."""

    # Keep an encrypted face crop per enrolment so a model change can re-embed
    # (`facesocial index migrate`) without asking every user to enrol again.
    keep_face_chips: bool = False
    # Fernet key (urlsafe base64, 32 bytes). Unset: a key file is created in data_dir/secrets.
    chip_key: SecretStr | None = None


class AuthSettings(BaseModel):
    """JWT bearer tokens (document 001) beside API keys. No secret: JWT is off."""

    jwt_secret: SecretStr | None = None
    jwt_algorithm: Literal["HS256"] = "HS256"
    # Clock skew tolerated on `exp` between the token issuer and this server.
    jwt_leeway_seconds: int = 30


class RateLimit(BaseModel):
    rate_per_second: float
    burst: int


def _default_limits() -> dict[str, RateLimit]:
    # Document 001's nginx zones: api 10 r/s with per-route bursts, uploads 2 r/s, batch 2 r/s.
    return {
        "face_recognition": RateLimit(rate_per_second=10, burst=20),
        "antispoofing": RateLimit(rate_per_second=10, burst=15),
        "face_detection": RateLimit(rate_per_second=10, burst=30),
        "demographics": RateLimit(rate_per_second=10, burst=25),
        "deepfake_detection": RateLimit(rate_per_second=2, burst=5),
        "batch": RateLimit(rate_per_second=2, burst=3),
    }


class RateLimitSettings(BaseModel):
    enabled: bool = True
    limits: dict[str, RateLimit] = Field(default_factory=_default_limits)


class Settings(BaseSettings):
    """Everything configurable. Only :mod:`facesocial.container` turns it into adapters."""

    model_config = SettingsConfigDict(env_prefix="FACESOCIAL_", env_nested_delimiter="__", extra="ignore")

    data_dir: Path = Field(default_factory=_default_data_dir)
    # Empty means: an SQLite file inside data_dir.
    database_url: str = ""
    index_dir: Path | None = None
    models: ModelSettings = ModelSettings()
    privacy: PrivacySettings = PrivacySettings()
    auth: AuthSettings = AuthSettings()
    rate_limits: RateLimitSettings = RateLimitSettings()
    # Scaled profile: empty means the in-process equivalent (memory cache, local index).
    redis_url: str = ""
    milvus_uri: str = ""
    milvus_token: SecretStr | None = None
    limits: ImageLimits = ImageLimits()
    detection: DetectionDefaults = DetectionDefaults()
    # Per embedding model; override with JSON, e.g. FACESOCIAL_THRESHOLDS='{"dlib_resnet_v1": {...}}'.
    thresholds: dict[str, RecognitionThresholds] = Field(default_factory=_default_thresholds)
    identify_max_top_k: int = 100

    def resolved_database_url(self) -> str:
        """The SQLAlchemy URL; plain ``postgresql://`` URLs get the psycopg 3 driver."""
        url = self.database_url or f"sqlite:///{self.data_dir / 'facesocial.db'}"
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        return url

    def resolved_index_dir(self) -> Path:
        return self.index_dir or (self.data_dir / "vectors")
