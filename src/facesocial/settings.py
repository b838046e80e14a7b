"""Runtime settings: one nested object, read from ``FACESOCIAL_*`` environment variables.

Nested sections use a double underscore, e.g. ``FACESOCIAL_LIMITS__MAX_IMAGE_BYTES``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field
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
    """Defaults of ``face_detection.detection_requests`` (design document 000)."""

    min_face_size: int = 40
    max_faces: int = 100
    detection_confidence: float = 0.7
    # Upsampling finds faces down to ~40 px with the HOG detector at 4x the cost.
    hog_upsample_small_images: int = 1
    hog_upsample_max_pixels: int = 800_000


class RecognitionThresholds(BaseModel):
    """Cosine-similarity thresholds for dlib_resnet_v1, calibrated on the LFW dev folds.

    ``facesocial eval verification`` on ../shared/data/lfw_deepfunneled (docs/accuracy.md):
    balanced = the accuracy-maximising threshold (0.905, 98.2 % cross-validated accuracy);
    strict and identify = a false-match rate of 1e-3 per comparison, estimated on 7.3 M
    different-person comparisons (0.925, true-accept rate 92.1 %). Identification is
    open-set: a gallery of N people meets a stranger N times, so it needs the strict point.
    """

    verify_balanced: float = 0.905
    verify_strict: float = 0.925
    identify: float = 0.925


class Settings(BaseSettings):
    """Everything configurable. Only :mod:`facesocial.container` turns it into adapters."""

    model_config = SettingsConfigDict(env_prefix="FACESOCIAL_", env_nested_delimiter="__", extra="ignore")

    data_dir: Path = Field(default_factory=_default_data_dir)
    # Empty means: an SQLite file inside data_dir.
    database_url: str = ""
    index_dir: Path | None = None
    model_threads: int = 2
    limits: ImageLimits = ImageLimits()
    detection: DetectionDefaults = DetectionDefaults()
    thresholds: RecognitionThresholds = RecognitionThresholds()
    identify_max_top_k: int = 100

    def resolved_database_url(self) -> str:
        """The SQLAlchemy URL; plain ``postgresql://`` URLs get the psycopg 3 driver."""
        url = self.database_url or f"sqlite:///{self.data_dir / 'facesocial.db'}"
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        return url

    def resolved_index_dir(self) -> Path:
        return self.index_dir or (self.data_dir / "vectors")
