"""The composition root: the one place that turns settings into adapters and services."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from facesocial.services.audit import AuditLog
from facesocial.services.detection import DetectionService
from facesocial.services.keys import ApiKeyService
from facesocial.services.recognition import RecognitionService
from facesocial.settings import Settings
from facesocial.store import migrate
from facesocial.store.db import Database
from facesocial.store.local_index import LocalVectorIndex
from facesocial.store.vector_index import VectorIndex
from facesocial.vision.pipeline import DetectOptions, FacePipeline


@dataclass
class Container:
    settings: Settings

    @cached_property
    def database(self) -> Database:
        return Database(self.settings.resolved_database_url())

    @cached_property
    def index(self) -> VectorIndex:
        return LocalVectorIndex(self.settings.resolved_index_dir())

    @cached_property
    def pipeline(self) -> FacePipeline:
        return FacePipeline.load(self.settings.detection.hog_upsample_max_pixels)

    @property
    def detect_defaults(self) -> DetectOptions:
        d = self.settings.detection
        return DetectOptions(d.min_face_size, d.max_faces, d.detection_confidence)

    @cached_property
    def keys(self) -> ApiKeyService:
        return ApiKeyService(self.database)

    @cached_property
    def audit(self) -> AuditLog:
        return AuditLog(self.database)

    @cached_property
    def detection(self) -> DetectionService:
        return DetectionService(self.database, self.pipeline, self.settings.limits)

    @cached_property
    def recognition(self) -> RecognitionService:
        return RecognitionService(
            self.database,
            self.index,
            self.pipeline,
            self.settings.limits,
            self.settings.thresholds,
            self.detect_defaults,
        )

    def prepare(self) -> None:
        """Create the data folder and bring the database to the newest schema."""
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        migrate.upgrade(self.database)

    def close(self) -> None:
        if "database" in self.__dict__:
            self.database.dispose()
