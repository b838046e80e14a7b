"""The composition root: the one place that turns settings into adapters and services."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from facesocial import errors
from facesocial.domains.registry.retention import purge_inferences
from facesocial.jobs.builtin import builtin_kinds
from facesocial.jobs.callbacks import CallbackSender
from facesocial.jobs.inprocess import InProcessJobQueue
from facesocial.jobs.port import JobKind, JobQueue
from facesocial.jobs.runner import JobRunner
from facesocial.jobs.spool import sweep_spool
from facesocial.jobs.store import JobStore
from facesocial.models.runtime import ModelCache, RuntimeOptions
from facesocial.services.accounts import AccountService
from facesocial.services.audit import AuditLog
from facesocial.services.demographics import DemographicsService
from facesocial.services.detection import DetectionService
from facesocial.services.face_cache import FaceCache
from facesocial.services.face_chips import ChipVault
from facesocial.services.face_writes import FaceWriter
from facesocial.services.groups import GroupService
from facesocial.services.keys import ApiKeyService
from facesocial.services.model_registry import sync_registry
from facesocial.services.recognition import LivenessGate, RecognitionService
from facesocial.services.reconcile import ReconcileLoop, Reconciler
from facesocial.services.serving_context import DetectorVariants
from facesocial.services.sessions import SessionStore
from facesocial.services.tokens import TokenService, installation_secret
from facesocial.services.users import UserService
from facesocial.settings import Settings
from facesocial.store import migrate
from facesocial.store.attention_metrics import AttentionMetricsStore, open_attention_metrics
from facesocial.store.db import Database
from facesocial.store.kv import (
    KeyValue,
    MemoryKeyValue,
    MemoryRateLimiter,
    RateLimiter,
    RedisCircuit,
    RedisKeyValue,
    RedisRateLimiter,
    ResilientKeyValue,
    ResilientRateLimiter,
    redis_client,
)
from facesocial.store.local_index import LocalVectorIndex
from facesocial.store.maintenance import ensure_log_partitions
from facesocial.store.types import utcnow
from facesocial.store.user_locks import LocalUserLocks, PostgresUserLocks, UserLocks
from facesocial.store.vector_index import VectorIndex
from facesocial.vision.attributes import AttributeAnalyzer
from facesocial.vision.detect_blazeface import BlazeFaceDetector
from facesocial.vision.detect_dlib import DlibHogDetector
from facesocial.vision.detect_multi import SearchSettings
from facesocial.vision.detect_retinaface import RetinaFaceDetector
from facesocial.vision.embed_dlib_onnx import dlib_resnet_embedder
from facesocial.vision.heads.embedding import FaceresEmbedder, MobilefaceEmbedder
from facesocial.vision.heads.mesh import MeshHead
from facesocial.vision.heads.race import GearRaceHead
from facesocial.vision.landmarks import DlibFivePointLandmarker
from facesocial.vision.pipeline import DetectOptions, FacePipeline
from facesocial.vision.ports import Embedder, FaceDetector

if TYPE_CHECKING:
    from facesocial.antispoof.passive import PassiveLiveness
    from facesocial.domains.ai_detection.service import AiDetectionService
    from facesocial.domains.antispoofing.liveness import LivenessService
    from facesocial.domains.antispoofing.service import AntispoofingService
    from facesocial.domains.attention.recordings import RecordingService
    from facesocial.domains.attention.service import MeetingService
    from facesocial.domains.counting.service import CountingService
    from facesocial.domains.deepfake.known_content import KnownContent
    from facesocial.domains.deepfake.service import DeepfakeService
    from facesocial.domains.experiments.service import ExperimentService
    from facesocial.domains.registry.deployments import DeploymentService
    from facesocial.domains.registry.monitoring import ModelMonitoring
    from facesocial.domains.registry.routing import DbModelRouter
    from facesocial.forensics.ai_image.analyzer import AiImageAnalyzer
    from facesocial.forensics.ensemble import DeepfakeDetector

log = logging.getLogger(__name__)


@dataclass
class Container:
    settings: Settings

    @cached_property
    def database(self) -> Database:
        return Database(self.settings.resolved_database_url())

    @cached_property
    def index(self) -> VectorIndex:
        if self.settings.milvus_uri:
            from facesocial.store.milvus_index import MilvusVectorIndex

            token = self.settings.milvus_token.get_secret_value() if self.settings.milvus_token else ""
            index: VectorIndex = MilvusVectorIndex(self.settings.milvus_uri, token=token)
        else:
            index = LocalVectorIndex(self.settings.resolved_index_dir(), settings=self.settings.vector_index)
        self._rebuild_unpartitioned(index)
        return index

    def _rebuild_unpartitioned(self, index: VectorIndex) -> None:
        """Face collections written before tenant partitions existed are refilled from SQL.

        Once per upgrade (then nothing needs it); a failure is logged and retried on the next
        start, since searches of a stale collection only miss faces, never leak them.
        """
        from facesocial.services.index_maintenance import rebuild_unpartitioned

        try:
            for report in rebuild_unpartitioned(self.database, index):
                log.warning(
                    "vector index: rebuilt %s from SQL with tenant partitions (%d vectors)",
                    report.collection,
                    report.vectors,
                )
        except Exception:
            log.exception("vector index: rebuilding collections without partitions failed")

    @cached_property
    def model_cache(self) -> ModelCache:
        models = self.settings.models
        return ModelCache(
            models.model_dir,
            RuntimeOptions(
                intra_op_threads=models.intra_op_threads,
                inter_op_threads=models.inter_op_threads,
                use_cuda=models.use_cuda,
                spin=models.ort_spin_wait,
            ),
        )

    @cached_property
    def pipeline(self) -> FacePipeline:
        """Detector and embedders from the settings; ONNX models only if they are pulled."""
        models = self.settings.models
        cache = self.model_cache
        detection = self.settings.detection
        search = SearchSettings(
            small_face_fraction=detection.small_face_fraction,
            rotation=detection.rotation,
            max_working_pixels=detection.max_working_pixels,
        )
        detector: FaceDetector
        if models.detector == "retinaface_mnet025" and cache.has("retinaface_mnet025"):
            detector = RetinaFaceDetector(cache.get("retinaface_mnet025"), search=search)
        elif models.detector != "dlib_hog" and cache.has("blazeface_full"):
            if models.detector != "blazeface_full":
                log.warning("%s is not in %s: using blazeface_full", models.detector, cache.folder)
            detector = BlazeFaceDetector(cache.get("blazeface_full"), search=search)
        else:
            if models.detector != "dlib_hog":
                log.warning("%s is not in %s: using the dlib HOG detector", models.detector, cache.folder)
            detector = DlibHogDetector(detection.hog_upsample_max_pixels, detection.hog_max_pixels)
        dlib_embedder = dlib_resnet_embedder(
            cache,
            runtime=models.dlib_runtime,
            max_batch=models.embed_max_batch,
            cross_request=models.embed_cross_request_batching,
        )
        embedders: dict[str, Embedder] = {dlib_embedder.model.name: dlib_embedder}
        attributes = mesh = None
        if cache.has("faceres"):
            faceres = FaceresEmbedder(cache.get("faceres"))
            embedders[faceres.model.name] = faceres
        if cache.has("mobileface"):
            mobileface = MobilefaceEmbedder(cache.get("mobileface"))
            embedders[mobileface.model.name] = mobileface
        if cache.has("faceres") and cache.has("emotion"):
            race = None
            if models.enable_race and cache.has("gear"):
                race = GearRaceHead(cache.get("gear"), enabled=True)
            attributes = AttributeAnalyzer(cache.get("faceres"), cache.get("emotion"), race)
        if cache.has("facemesh") and cache.has("iris"):
            mesh = MeshHead(cache.get("facemesh"), cache.get("iris"))
        default: str = models.default_embedding
        if default not in embedders:
            log.warning("%s is not installed: the default embedding model is dlib_resnet_v1", default)
            default = dlib_embedder.model.name
        pipeline = FacePipeline(detector, DlibFivePointLandmarker(), embedders, default, attributes, mesh)
        cache.preload([name for name in models.preload if cache.has(name)])
        return pipeline

    @cached_property
    def frame_pipeline(self) -> FacePipeline:
        """The pipeline for video frames of a person facing a camera (liveness sessions, clips).

        Same models, but the detector makes one upright pass over the whole frame: the search
        for small and rotated faces of photos (4 orientations, tiles) costs ~6x more per frame
        (215 vs 38 ms for a 360x640 selfie frame here) and a liveness subject faces the camera.
        A face turned far out of the upright is then not found, which fails ``face_lost``.
        """
        base = self.pipeline
        search = SearchSettings(
            small_face_fraction=1.0,
            rotation="upright",
            max_working_pixels=self.settings.detection.max_working_pixels,
        )
        detector: FaceDetector = base.detector
        if isinstance(detector, RetinaFaceDetector):
            detector = RetinaFaceDetector(self.model_cache.get("retinaface_mnet025"), search=search)
        elif isinstance(detector, BlazeFaceDetector):
            detector = BlazeFaceDetector(self.model_cache.get("blazeface_full"), search=search)
        return FacePipeline(
            detector, base.landmarker, base.embedders, base.default_embedder, base.attributes, base.mesh
        )

    def face_detector(self, name: str, search: SearchSettings) -> FaceDetector:
        """A face detector by name (``FACE_DETECTORS``): a face_detection version the registry
        may route to; ModelUnavailableError when its model is not pulled."""
        if name == "retinaface_mnet025":
            return RetinaFaceDetector(self.model_cache.get(name), search=search)
        if name == "blazeface_full":
            return BlazeFaceDetector(self.model_cache.get(name), search=search)
        detection = self.settings.detection
        return DlibHogDetector(detection.hog_upsample_max_pixels, detection.hog_max_pixels)

    @cached_property
    def detector_variants(self) -> DetectorVariants:
        """Photo pipelines, one per installed face_detection version (services/serving_context.py)."""
        detection = self.settings.detection
        search = SearchSettings(
            small_face_fraction=detection.small_face_fraction,
            rotation=detection.rotation,
            max_working_pixels=detection.max_working_pixels,
        )
        return DetectorVariants(
            self.pipeline, self.model_cache, lambda name: self.face_detector(name, search)
        )

    @cached_property
    def frame_detector_variants(self) -> DetectorVariants:
        """Video-frame pipelines (one upright pass, see ``frame_pipeline``) per detector version."""
        search = SearchSettings(
            small_face_fraction=1.0,
            rotation="upright",
            max_working_pixels=self.settings.detection.max_working_pixels,
        )
        return DetectorVariants(
            self.frame_pipeline, self.model_cache, lambda name: self.face_detector(name, search)
        )

    @property
    def detect_defaults(self) -> DetectOptions:
        d = self.settings.detection
        return DetectOptions(d.min_face_size, d.max_faces, d.detection_confidence)

    @cached_property
    def redis(self) -> RedisCircuit | None:
        """The Redis client behind its circuit breaker (shared by the cache and the limits)."""
        return RedisCircuit(redis_client(self.settings.redis_url)) if self.settings.redis_url else None

    @cached_property
    def kv(self) -> KeyValue:
        """Redis, falling back to this process's memory while Redis does not answer."""
        if self.redis is None:
            return MemoryKeyValue()
        return ResilientKeyValue(RedisKeyValue(self.redis.client), MemoryKeyValue(), self.redis)

    @cached_property
    def rate_limiter(self) -> RateLimiter:
        """Redis's shared GCRA; a per-process GCRA while Redis does not answer."""
        if self.redis is None:
            return MemoryRateLimiter()
        return ResilientRateLimiter(RedisRateLimiter(self.redis.client), MemoryRateLimiter(), self.redis)

    @cached_property
    def tokens(self) -> TokenService | None:
        auth = self.settings.auth
        if auth.jwt_secret is None:
            return None
        return TokenService(auth.jwt_secret.get_secret_value(), auth.jwt_algorithm, auth.jwt_leeway_seconds)

    @cached_property
    def keys(self) -> ApiKeyService:
        return ApiKeyService(self.database)

    @cached_property
    def account_tokens(self) -> TokenService:
        """Signs and checks login tokens: the configured JWT service, or one keyed with the
        installation's own secret (data_dir/secrets/jwt.key) so login works without settings."""
        if self.tokens is not None:
            return self.tokens
        auth = self.settings.auth
        secret = installation_secret(self.settings.data_dir / "secrets")
        return TokenService(secret, auth.jwt_algorithm, auth.jwt_leeway_seconds)

    @cached_property
    def accounts(self) -> AccountService:
        return AccountService(self.database, self.keys, self.account_tokens, self.settings.auth)

    @cached_property
    def audit(self) -> AuditLog:
        return AuditLog(self.database)

    @cached_property
    def detection(self) -> DetectionService:
        return DetectionService(self.database, self.detector_variants, self.settings.limits)

    @cached_property
    def chip_vault(self) -> ChipVault | None:
        privacy = self.settings.privacy
        if not privacy.keep_face_chips:
            return None
        key = privacy.chip_key.get_secret_value() if privacy.chip_key else None
        return ChipVault.from_settings(key, self.settings.data_dir / "secrets")

    @cached_property
    def user_locks(self) -> UserLocks:
        """Per-user write locks: PostgreSQL advisory locks, or in-process ones on SQLite."""
        if self.database.is_postgres:
            return PostgresUserLocks(self.database.engine)
        return LocalUserLocks()

    @cached_property
    def face_writer(self) -> FaceWriter:
        return FaceWriter(self.database, self.index, self.user_locks, self.face_cache)

    @cached_property
    def reconciler(self) -> Reconciler:
        return Reconciler(self.database, self.index, self.face_writer, self.settings.reconcile.grace_seconds)

    @cached_property
    def reconcile_loop(self) -> ReconcileLoop:
        return ReconcileLoop(self.reconciler, self.settings.reconcile.interval_seconds)

    @cached_property
    def recognition(self) -> RecognitionService:
        return RecognitionService(
            self.database,
            self.index,
            self.pipeline,
            self.face_writer,
            self.settings.limits,
            self.settings.thresholds,
            self.detect_defaults,
            self.face_cache,
            self.chip_vault,
            LivenessGate(
                lambda: self.liveness, lambda: self.settings.antispoofing.require_liveness_for_registration
            ),
            self.detector_variants,
        )

    @cached_property
    def demographics(self) -> DemographicsService:
        return DemographicsService(
            self.database, self.pipeline, self.settings.limits, self.detect_defaults, self.detector_variants
        )

    @cached_property
    def face_cache(self) -> FaceCache:
        return FaceCache(self.kv)

    @cached_property
    def users(self) -> UserService:
        return UserService(self.database, self.face_writer)

    @cached_property
    def groups(self) -> GroupService:
        return GroupService(self.database, self.face_writer)

    # --- model registry (src/facesocial/domains/registry/) ------------------------------------

    @cached_property
    def model_router(self) -> DbModelRouter:
        """Which model version serves each request (production, canary, experiment arm)."""
        from facesocial.domains.registry.routing import DbModelRouter

        return DbModelRouter(self.database, self.settings.registry.refresh_seconds)

    @cached_property
    def registry(self) -> DeploymentService:
        """Slots, versions and deployment actions; a change re-routes this process at once."""
        from facesocial.domains.registry.deployments import DeploymentService

        return DeploymentService(self.database, on_change=lambda: self.model_router.invalidate())

    @cached_property
    def experiments(self) -> ExperimentService:
        """A/B experiments (domains/experiments/); a start or stop re-routes this process at once."""
        from facesocial.domains.experiments.service import ExperimentService

        return ExperimentService(self.database, on_change=lambda: self.model_router.invalidate())

    @cached_property
    def model_monitoring(self) -> ModelMonitoring:
        """Drift checks and performance roll-ups over the inference records (registry/monitoring.py)."""
        from facesocial.domains.registry.monitoring import ModelMonitoring

        return ModelMonitoring(self.database)

    # --- jobs (src/facesocial/jobs/) ---------------------------------------------------------------

    @cached_property
    def job_store(self) -> JobStore:
        return JobStore(self.database)

    @cached_property
    def job_kinds(self) -> dict[str, JobKind]:
        """The explicit map from job kinds to handlers, for every adapter and process alike."""
        from facesocial.domains.antispoofing.service import VIDEO_JOB as CHECK_VIDEO_JOB
        from facesocial.domains.deepfake.service import VIDEO_JOB

        kinds = builtin_kinds(self.settings.resolved_spool_dir())
        kinds[VIDEO_JOB] = JobKind(VIDEO_JOB, self.deepfake.run_video_job, self.deepfake.on_video_job_end)
        kinds[CHECK_VIDEO_JOB] = JobKind(
            CHECK_VIDEO_JOB, self.antispoofing.run_video_job, self.antispoofing.on_video_job_end
        )
        from facesocial.domains.ai_detection.service import IMAGE_JOB as AI_IMAGE_JOB

        kinds[AI_IMAGE_JOB] = JobKind(AI_IMAGE_JOB, self.ai_detection.run_job, self.ai_detection.on_job_end)
        from facesocial.domains.attention.recordings import VIDEO_JOB as RECORDING_JOB

        kinds[RECORDING_JOB] = JobKind(RECORDING_JOB, self.recordings.run_job, self.recordings.on_job_end)
        from facesocial.domains.counting.tasks import COUNTING_JOB

        kinds[COUNTING_JOB] = JobKind(COUNTING_JOB, self.counting.run_job, self.counting.on_job_end)
        return kinds

    @cached_property
    def callbacks(self) -> CallbackSender:
        return CallbackSender.from_settings(self.database, self.settings)

    @cached_property
    def job_runner(self) -> JobRunner:
        return JobRunner(
            self.job_store,
            self.job_kinds,
            self.callbacks,
            self.settings.jobs,
            spool_dir=self.settings.resolved_spool_dir(),
        )

    @cached_property
    def jobs(self) -> JobQueue:
        """Celery on the broker when ``jobs.broker_url`` is set, else worker threads in this process."""
        if self.settings.jobs.broker_url:
            from facesocial.jobs.celery_app import CeleryJobQueue, make_celery

            return CeleryJobQueue(make_celery(self.settings), self.settings.jobs, self.job_store)
        return InProcessJobQueue(self.job_runner, self.job_store, self.settings.jobs)

    # --- deepfake detection (src/facesocial/domains/deepfake/, forensics/) ---------------------------

    @cached_property
    def deepfake_detector(self) -> DeepfakeDetector:
        from facesocial.forensics.ensemble import DeepfakeDetector

        return DeepfakeDetector.from_settings(
            self.pipeline, self.settings.deepfake, intra_op_threads=self.settings.models.intra_op_threads
        )

    @cached_property
    def known_content(self) -> KnownContent:
        from facesocial.domains.deepfake.known_content import KnownContent

        return KnownContent(self.database, lambda: self.index, self.settings.deepfake.known_fake_similarity)

    @cached_property
    def deepfake(self) -> DeepfakeService:
        from facesocial.domains.deepfake.service import DeepfakeService

        # Models and the queue are reached lazily: a worker process that only runs probe jobs,
        # or an API process answering GET /analyses, loads no forensic model.
        return DeepfakeService(
            self.database,
            lambda: self.deepfake_detector,
            self.known_content,
            self.job_store,
            lambda: self.jobs,
            lambda job_id, tenant_id: self.job_runner.cancel(job_id, tenant_id),
            self.settings,
            lambda: self.model_router,
        )

    # --- antispoofing (src/facesocial/domains/antispoofing/, antispoof/) -------------------------------

    @cached_property
    def passive_liveness(self) -> PassiveLiveness:
        """The shipped passive model (ONNX, checksummed); MODEL_UNAVAILABLE if its file is missing."""
        from facesocial.antispoof.passive import PassiveLiveness

        model = PassiveLiveness.default(intra_op_threads=self.settings.models.intra_op_threads)
        if model is None:
            raise errors.ModelUnavailableError("The passive liveness model is not installed with the package")
        return model

    @cached_property
    def antispoofing(self) -> AntispoofingService:
        from facesocial.domains.antispoofing.service import AntispoofingService

        return AntispoofingService(
            self.database,
            lambda: self.pipeline,
            lambda: self.frame_pipeline,
            lambda: self.passive_liveness,
            self.job_store,
            lambda: self.jobs,
            self.settings,
            self.detect_defaults,
            lambda: self.detector_variants,
            lambda: self.frame_detector_variants,
            lambda: self.model_router,
        )

    @cached_property
    def liveness(self) -> LivenessService:
        from facesocial.domains.antispoofing.liveness import LivenessService
        from facesocial.domains.antispoofing.sessions import LivenessSessions

        return LivenessService(
            self.database,
            LivenessSessions(self.database, SessionStore(self.kv)),
            lambda: self.frame_pipeline,
            lambda: self.passive_liveness,
            self.settings,
            lambda: self.antispoofing.threshold,
            self.detect_defaults,
            lambda: self.frame_detector_variants,
            lambda: self.model_router,
        )

    # --- AI-generated image detection (src/facesocial/domains/ai_detection/, forensics/ai_image/) ----

    @cached_property
    def ai_analyzer(self) -> AiImageAnalyzer:
        from facesocial.forensics.ai_image.factory import build_analyzer

        return build_analyzer(self.settings, lambda: self.deepfake_detector)

    @cached_property
    def ai_detection(self) -> AiDetectionService:
        from facesocial.domains.ai_detection.metadata_store import SqlDetectionMetadataStore
        from facesocial.domains.ai_detection.methods_repo import MethodsRepository
        from facesocial.domains.ai_detection.repository import ResultsRepository
        from facesocial.domains.ai_detection.service import AiDetectionService

        # The analyzer and the queue are reached lazily: reading a report loads no model.
        return AiDetectionService(
            self.database,
            ResultsRepository(self.database, SqlDetectionMetadataStore()),
            MethodsRepository(self.database),
            lambda: self.ai_analyzer,
            self.job_store,
            lambda: self.jobs,
            lambda job_id, tenant_id: self.job_runner.cancel(job_id, tenant_id),
            self.settings,
            lambda: self.model_router,
        )

    # --- meeting attention (src/facesocial/domains/attention/) ------------------------------------

    @cached_property
    def meetings(self) -> MeetingService:
        from facesocial.domains.attention.service import MeetingService

        # The metrics backend and the recognition models are reached lazily: listing meetings
        # opens neither.
        return MeetingService(
            self.database,
            lambda: self.attention_metrics,
            lambda: self.recognition,
            self.settings.attention,
        )

    @cached_property
    def attention_metrics(self) -> AttentionMetricsStore:
        """The attention time series; its backend (TimescaleDB, daily partitions, SQLite) is the
        one migration 0012 built, detected on first use (store/attention_metrics.py)."""
        return open_attention_metrics(self.database, self.settings.attention.metrics_retention_days)

    @cached_property
    def recordings(self) -> RecordingService:
        from facesocial.domains.attention.recordings import RecordingService

        # Models and the queue are reached lazily: reading a recording's results loads no model.
        return RecordingService(
            self.database,
            lambda: self.frame_pipeline,
            self.job_store,
            lambda: self.jobs,
            lambda job_id, tenant_id: self.job_runner.cancel(job_id, tenant_id),
            self.settings,
        )

    # --- people counting (src/facesocial/domains/counting/) ----------------------------------------

    @cached_property
    def counting(self) -> CountingService:
        from facesocial.domains.counting.service import CountingService

        # Models, the router and the queue are reached lazily: reading counts loads no model.
        return CountingService(
            self.database,
            lambda: self.model_cache,
            lambda: self.model_router,
            self.job_store,
            lambda: self.jobs,
            lambda job_id, tenant_id: self.job_runner.cancel(job_id, tenant_id),
            self.settings,
        )

    def retention(self) -> dict[str, int]:
        """Scheduled clean-up (``facesocial beat``): old jobs, deepfake and AI-detection analyses."""
        return {
            "jobs": self.job_store.purge(self.settings.jobs.retention_days),
            "deepfake_analyses": self.deepfake.retention(),
            "ai_detection_analyses": self.ai_detection.retention(),
            "attention_recordings": self.recordings.retention(),
            "counting_videos": self.counting.retention(),
            "model_inference_results": purge_inferences(
                self.database, self.settings.registry.inference_retention_days
            ),
            "spool_folders": self.sweep_spool(),
            # Vectors of content features whose rows went (e.g. `db maintain`'s own retention)
            # and rows whose vector a crash lost.
            "content_vectors_repaired": self.known_content.repair(),
            "liveness_sessions": self.liveness.purge_expired(),
        }

    def sweep_spool(self) -> int:
        """Remove spooled uploads no running job owns (jobs/spool.py); returns how many went."""
        return sweep_spool(self.job_store, self.settings.resolved_spool_dir(), self.settings.jobs)

    def prepare(self) -> None:
        """Create the data folder and bring the database to the newest schema."""
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        migrate.upgrade(self.database)
        # PostgreSQL: make sure the coming months' audit-log partitions exist (no-op on SQLite).
        ensure_log_partitions(self.database)
        # And the coming days' attention-metric partitions (no-op on SQLite and TimescaleDB).
        self.attention_metrics.ensure_partitions(utcnow())
        models = self.settings.models
        sync_registry(self.database, models.model_dir, {models.detector, models.default_embedding})
        # The serving slots and their versions (model_registry schema); stages are never overwritten.
        from facesocial.domains.registry.sync import settings_defaults, sync_slots

        sync_slots(self.database, models.model_dir, settings_defaults(self.settings))

    def close(self) -> None:
        """Release connections; safe to call more than once."""
        loop = self.__dict__.get("reconcile_loop")
        if loop is not None:
            loop.stop()
        queue = self.__dict__.get("jobs")
        if queue is not None:
            queue.stop()
        callbacks = self.__dict__.get("callbacks")
        if callbacks is not None:
            callbacks.close()
        if "database" in self.__dict__:
            self.database.dispose()
        index = self.__dict__.pop("index", None)
        close_index = getattr(index, "close", None)
        if callable(close_index):
            close_index()
        client = self.__dict__.pop("redis", None)
        if client is not None:
            client.close()
