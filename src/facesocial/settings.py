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
    # Longest side in px. 16384 keeps every phone photo (8064x6048 is refused by the pixel limit,
    # not by this) and 8:1 panoramas up to 16384x2048; it is also WebP's own maximum (16383).
    max_image_side: int = Field(default=16_384, gt=0)
    # Longest side / shortest side. Phone panoramas reach about 4:1 to 8:1; strips such as
    # 40000x1000 (40:1) or 2,500,000x16 are no photographs and would blow up padding and tiling.
    max_aspect_ratio: float = Field(default=8.0, ge=1.0)
    # Decoded images with a longer side are downsampled to this side (JPEG in the DCT, then area
    # averaging). The default equals max_image_side, so nothing legal is downsampled: lower it to
    # bound memory on a small host, at the cost of small faces in large photos.
    max_decode_side: int = Field(default=16_384, gt=0)
    # Pixels that may be decoded/processed at once (vision/decode_gate.py): two images at the
    # pixel limit. A single larger image still passes when nothing else is in flight.
    decode_pixel_budget: int = Field(default=80_000_000, gt=0)
    # How long a request waits for room under decode_pixel_budget before SERVER_BUSY (503).
    decode_wait_seconds: float = Field(default=10.0, ge=0.0)
    # Images processed at once (decode + models), whatever their size; the rest wait in order
    # (vision/decode_gate.py). Inference is CPU-bound and each ONNX Runtime session already
    # uses intra_op_threads cores: 2 on a 2-core host keeps the cores busy without thrashing
    # (docs/benchmarks.md "API under load"). None: only the pixel budget bounds it.
    max_concurrent_images: int | None = Field(default=2, ge=1)


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
    # HOG (the fallback detector) searches photos above this on a shrunken working copy.
    hog_max_pixels: int = 2_000_000
    # BlazeFace searches tiles for faces down to this fraction of the photo's short side (or
    # min_face_size, whichever is larger): 2 % finds a 90 px face in an 8000x4500 photo.
    small_face_fraction: float = Field(default=0.02, gt=0.0, le=1.0)
    # Faces at any roll: "auto" looks at the whole photo in 4 orientations and at the tiles
    # in a quarter-turned orientation when a face turned that way was found; "always" runs
    # every tile in 4 orientations (~4x the cost); "upright" only upright (docs/accuracy.md).
    rotation: Literal["auto", "always", "upright"] = "auto"
    # Upper bound of any detector working copy (pixels), whatever the photo's shape.
    max_working_pixels: int = Field(default=4_000_000, ge=100_000)


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
    detector: Literal["blazeface_full", "dlib_hog", "retinaface_mnet025"] = "blazeface_full"
    default_embedding: Literal["dlib_resnet_v1", "faceres", "mobileface"] = "dlib_resnet_v1"
    # ONNX Runtime threads per model call (intra: inside an operator; inter: between independent
    # branches, which the face models barely have, so 1). Admission (limits.max_concurrent_images)
    # keeps the product of the two near the core count.
    intra_op_threads: int = Field(default=2, ge=1)
    inter_op_threads: int = Field(default=1, ge=1)
    # ONNX Runtime's worker threads spin while waiting for work by default: on 2 cores shared by
    # concurrent requests, the job queue, or another process, a spinning thread burns the core
    # the other one needs (docs/benchmarks.md "Admission and batching": detection + embedding
    # ~20 % faster without spinning on a loaded machine).
    ort_spin_wait: bool = False
    use_cuda: bool = True
    # Opened at start-up so the first request does not pay for it.
    preload: list[str] = Field(default_factory=lambda: ["blazeface_full"])
    # `facesocial serve` pulls and converts the pack on first start when it is missing.
    auto_pull: bool = True
    # Race estimation is off unless explicitly enabled (docs/models.md explains why).
    enable_race: bool = False
    # dlib_resnet_v1 runs on our ONNX conversion (batched, faster) or in dlib itself; "onnx"
    # falls back to dlib with a warning until `facesocial models pull` has converted it.
    dlib_runtime: Literal["onnx", "dlib"] = "onnx"
    # Most face chips per ONNX Runtime run of an embedder (more faces: several runs).
    embed_max_batch: int = Field(default=16, ge=1)
    # Concurrent requests' face chips share one ONNX Runtime run of the dlib embedder
    # (models/batcher.py; never waits for company, so a lone request pays nothing).
    embed_cross_request_batching: bool = True


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
    # Accounts (services/accounts.py, POST /api/v1/auth/...). Without jwt_secret, login tokens are
    # signed with a per-installation secret kept in data_dir/secrets/jwt.key.
    access_token_ttl_seconds: int = Field(default=3600, ge=60, le=7 * 86400)
    # argon2id cost (argon2-cffi's defaults, RFC 9106's second recommended option: 3 passes over
    # 64 MiB, 4 lanes). Changing them rehashes each password at its next login.
    argon2_time_cost: int = Field(default=3, ge=1, le=20)
    argon2_memory_kib: int = Field(default=65536, ge=1024, le=1048576)
    argon2_parallelism: int = Field(default=4, ge=1, le=16)
    # Largest request_limit an account may give its own keys (document 003's default is 1000);
    # an operator raises it here.
    max_key_request_limit: int = Field(default=1000, ge=1)
    # Active keys one account may hold at once.
    max_keys_per_account: int = Field(default=20, ge=1, le=1000)
    # POST /api/v1/auth/register open to anyone (a public SkyGate-style service). An installation
    # for one organisation sets it false: register then answers 403 REGISTRATION_CLOSED.
    open_registration: bool = True


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
        # AI-image analyses (POST /api/v1/ai-detection/analyze): ~0.2-0.3 s of CPU each, like an
        # upload of document 001's 2 r/s zone.
        "ai_detection": RateLimit(rate_per_second=2, burst=5),
        # Job status polling (/api/v1/jobs): cheap reads, polled by clients while videos run.
        "jobs": RateLimit(rate_per_second=10, burst=50),
        "batch": RateLimit(rate_per_second=2, burst=3),
        # Failed authentications per client address (api/auth_middleware.py): 10 wrong keys at
        # once, then one guess per 6 s — 14,400 a day, hopeless against 256-bit keys, while a
        # client with a typo'd key recovers within seconds of fixing it.
        "auth_failures": RateLimit(rate_per_second=1 / 6, burst=10),
        # Account registrations per client address (POST /api/v1/auth/register): 5 at once, then
        # one a minute. Each costs an argon2 hash (64 MiB, 0.1-0.2 s of CPU) and a row.
        "auth_register": RateLimit(rate_per_second=1 / 60, burst=5),
        # Index upkeep (/api/v1/admin/index/..., operator keys): each call reads every face row
        # and every vector, or rebuilds every collection. 10 at once, then 10 a minute: far more
        # than an operator or a cron job needs, too few to keep the server busy with them.
        "admin": RateLimit(rate_per_second=1 / 6, burst=10),
        # The model registry (/api/v1/models, operator keys): small reads and deployment actions,
        # each one transaction; a dashboard or a rollout script stays far below this.
        "models": RateLimit(rate_per_second=5, burst=30),
        # Meeting REST (/api/v1/attention): cheap row reads and writes, plus identify (one face
        # embedding, like face_recognition's routes); a dashboard polls alerts and metrics.
        "attention": RateLimit(rate_per_second=10, burst=30),
        # Recording uploads (POST /api/v1/attention/videos): document 001's upload zone, 2 r/s,
        # as deepfake videos; each is a job decoding and scoring hundreds of frames.
        "attention_videos": RateLimit(rate_per_second=2, burst=5),
        # People-counting uploads (POST /api/v1/counting/videos): the same upload zone.
        "counting_videos": RateLimit(rate_per_second=2, burst=5),
        # A/B experiments (/api/v1/experiments): operator actions and results (SQL aggregates over
        # an experiment's inferences), and outcome feedback posted by clients (up to 1,000 per call).
        "experiments": RateLimit(rate_per_second=10, burst=50),
    }


class RateLimitSettings(BaseModel):
    enabled: bool = True
    limits: dict[str, RateLimit] = Field(default_factory=_default_limits)


class IntakeSettings(BaseModel):
    """What the API accepts at the door, checked before a request body is read (api/body_limit.py).

    Per-route body limits derive from ``limits.max_image_bytes``: an image route allows its images
    in base64 form (4/3 of the bytes, plus line breaks) and ``field_allowance_bytes`` for the other
    fields, never more than ``max_body_bytes``.
    """

    # Design document 001's gateway: client_max_body_size 100M.
    max_body_bytes: int = 100 * 1024 * 1024
    # Routes without images (groups, members): a JSON body of 1 MiB holds ~25,000 user ids.
    json_body_bytes: int = 1024 * 1024
    # Room for the non-image fields and the multipart framing of an image route; also the
    # largest single text field of a multipart body.
    field_allowance_bytes: int = 64 * 1024
    # Text fields of one multipart body (the widest route has 7); more is not a client of ours.
    max_form_fields: int = 32
    # Proxies whose X-Forwarded-For names the client (IPs or CIDRs, e.g. ["10.0.0.0/8"]). Empty:
    # the socket peer is the client, so nobody can pick the address rate limits and audit see.
    trusted_proxies: list[str] = Field(default_factory=list)


class RegistrySettings(BaseModel):
    """The model registry's router (domains/registry/routing.py, docs/model-registry.md)."""

    # Routing reads the slots' production/canary/experiment from memory, reloaded when older than
    # this (a change made through another process is followed within it; through this one, at once).
    refresh_seconds: float = Field(default=2.0, ge=0.0, le=300.0)
    # model_inference_results older than this are deleted by the daily retention (document 002
    # keeps inference results 90 days); drift baselines and experiment results read these rows,
    # so a baseline window must lie within it. A counting video's row goes with the video.
    inference_retention_days: int = Field(default=90, ge=1, le=3650)


class ReconcileSettings(BaseModel):
    """SQL ↔ vector index reconciliation (services/reconcile.py) inside ``facesocial serve``."""

    # A pass with repair runs at start-up and then this often; 0 turns the loop off.
    interval_seconds: float = 600.0
    # Registrations still "pending" and erasures still unfinished this long after they began
    # are taken to be abandoned by a dead request (a live one takes milliseconds to seconds).
    # At most 30 days (services/reconcile.py MAX_GRACE_SECONDS): the cut-off must stay a date.
    grace_seconds: float = Field(default=120.0, ge=0.0, le=30 * 24 * 3600)


class VectorIndexSettings(BaseModel):
    """The embedded (local) vector index's approximate search (store/local_graphs.py).

    Each (collection, partition) holding at least ``ann_min_vectors`` vectors gets an HNSW
    graph (hnswlib); smaller ones are searched exactly. Scores are always exact cosine
    (graph candidates are reranked with the float32 matrix). Figures: docs/benchmarks.md.
    """

    # False: exact search everywhere (~70 ms p95 per query at 1 M faces on 2 cores).
    ann: bool = True
    # Below this a partition is searched exactly. Measured p50 per query (docs/benchmarks.md,
    # busy machine), exact vs graph: 2 k faces 0.12 vs 0.18 ms, 5 k 0.37 vs 0.27 ms, 10 k
    # 16 vs 0.35 ms (BLAS threads fight for busy cores). Under 10 k a graph is not worth its
    # build time and memory.
    ann_min_vectors: int = Field(default=10_000, ge=1)
    # HNSW links per node (M): more = better recall, more memory and build time. At 1 M faces
    # M=32 with ef_search 256 beat M=16 with 512 on both recall and latency.
    connectivity: int = Field(default=32, ge=4, le=128)
    # Candidate list while inserting (ef_construction) and while searching (ef_search). Faces
    # crowd together (dlib: strangers score 0.84 on average), so the top 10 above the identify
    # threshold need a wide search. At 1 M (M=32): ef_search 128 finds 95.3 % of them, 256
    # 98.7 %, 512 99.7 % (p95 2.4 ms), 768 99.8 % (p95 3.4 ms).
    expansion_add: int = Field(default=128, ge=8, le=4096)
    expansion_search: int = Field(default=512, ge=8, le=4096)
    # Threads of a graph build (searches use the calling thread only).
    build_threads: int = Field(default=2, ge=1, le=256)


class JobSettings(BaseModel):
    """Asynchronous jobs (src/facesocial/jobs/, docs/jobs.md): in-process threads, or Celery when
    ``broker_url`` is set."""

    # Empty: in-process worker threads fed from core.jobs (embedded). A redis:// URL: Celery.
    broker_url: str = ""
    # In-process worker threads inside `facesocial serve` (0: accept jobs, run none here).
    workers: int = Field(default=1, ge=0, le=64)
    # How often an idle in-process worker looks at core.jobs (a new job also wakes it at once).
    poll_seconds: float = Field(default=2.0, gt=0.0)
    # A running job renews its lease at every progress report; a lease that runs out means
    # the worker died, and the job is retried (or failed once max_attempts is reached).
    lease_seconds: float = Field(default=120.0, ge=1.0)
    max_attempts: int = Field(default=3, ge=1, le=20)
    # How often the sweep runs (in-process: a thread of every process that starts the queue;
    # Celery: `facesocial beat`): expired leases, jobs to announce again, due callbacks.
    sweep_seconds: float = Field(default=15.0, gt=0.0)
    # A pending job announced this long ago and still not started is announced again (a broker
    # that lost its message); duplicates are harmless, a job runs once per claim.
    redispatch_seconds: float = Field(default=600.0, gt=0.0)
    # Completion callbacks: attempts, first back-off (doubles each time), timeout per POST.
    callback_attempts: int = Field(default=6, ge=1, le=20)
    callback_backoff_seconds: float = Field(default=5.0, ge=0.0)
    callback_timeout_seconds: float = Field(default=10.0, gt=0.0)
    # Callbacks to loopback, private, link-local and reserved addresses are refused unless
    # this is on (SSRF: a client must not make the server call its own network).
    callback_allow_private: bool = False
    # Master secret of the callback signatures (each API key's secret derives from it). Unset: a
    # key file is created in data_dir/secrets; set it when API and workers do not share data_dir.
    callback_secret: SecretStr | None = None
    # Where uploads of running jobs wait (default: data_dir/jobs); removed when a job ends.
    spool_dir: Path | None = None
    # The spool sweep (jobs/spool.py, at every sweep): a job folder with no pending or processing
    # job goes once untouched this long (a crash between moving an upload in and committing its
    # job; the grace only covers a commit in flight). An incoming/ upload, which may still be
    # streaming from another process sharing the folder, goes once untouched the longer grace.
    orphan_grace_seconds: float = Field(default=300.0, gt=0.0)
    incoming_grace_seconds: float = Field(default=3600.0, gt=0.0)
    # Terminal jobs (and their results) are deleted after this many days by the retention pass.
    retention_days: int = Field(default=30, ge=1)
    # Celery: the broker queue that jobs go to (document 000 §6.1: queue:deepfake_video), and
    # the queue of the scheduled upkeep (sweep, partitions, retention, roll-up).
    celery_queue: str = "deepfake_video"
    maintenance_queue: str = "facesocial_maintenance"
    # Celery on Redis: a message not acknowledged this long after delivery is delivered again
    # (acks are late); a second delivery of a running job does nothing, its claim finds it taken.
    broker_visibility_timeout_seconds: float = Field(default=3600.0, gt=0.0)
    # A prefix for every key the broker writes (several installations on one Redis database).
    broker_key_prefix: str = ""


class VideoLimits(BaseModel):
    """Bounds on video uploads, checked while streaming (bytes) and on probing (the rest)."""

    # Design document 001's gateway: client_max_body_size 500M on the video routes.
    max_video_bytes: int = Field(default=500 * 1024 * 1024, gt=0)
    max_duration_seconds: float = Field(default=600.0, gt=0.0)
    # Longest side; 4096 admits DCI 4K (4096x2160) and portrait 2160x3840.
    max_side: int = Field(default=4096, gt=0)
    max_frames: int = Field(default=108_000, gt=0)  # 60 min at 30 fps: a guard against lying headers
    # Frames analysed per second of video by default, and the most a request may ask for.
    default_sample_fps: float = Field(default=2.0, gt=0.0)
    max_sample_fps: float = Field(default=10.0, gt=0.0)
    # Analysed frames per video at most (the sample rate is lowered to fit).
    max_analyzed_frames: int = Field(default=600, gt=0)


class DeepfakeSettings(BaseModel):
    """Deepfake detection (src/facesocial/forensics/): verdict bands, the optional user model."""

    # Fused score (0..1) at or above which a face/frame/video is "fake"; below real_below it is
    # "real"; between them "uncertain" (docs/deepfake.md says why the band is wide).
    fake_threshold: float = Field(default=0.65, ge=0.0, le=1.0)
    real_below: float = Field(default=0.35, ge=0.0, le=1.0)
    # A user-supplied ONNX classifier joining the ensemble (docs/deepfake.md: input contract).
    extra_model_path: Path | None = None
    extra_model_weight: float = Field(default=1.0, ge=0.0)
    # Cosine similarity of content features above which analysed content counts as the same.
    known_fake_similarity: float = Field(default=0.97, ge=0.0, le=1.0)


class AiDetectionSettings(BaseModel):
    """AI-generated image detection, SkyGate (src/facesocial/forensics/ai_image/, docs/ai-detection.md)."""

    # Ensemble score (0..1) at or above which an image is "ai_generated"; below real_below it is
    # "real"; between them "uncertain". Set on the development train split with out-of-fold scores
    # by scripts/choose_ai_image_thresholds.py: at most 5 % of real photos at or above ai_threshold
    # (0.475), at most 10 % of AI images below real_below (0.199); docs/ai-detection.md.
    ai_threshold: float = Field(default=0.47, ge=0.0, le=1.0)
    real_below: float = Field(default=0.2, ge=0.0, le=1.0)
    # Images with more pixels than this are analysed as a job (202 + job_id) instead of at once.
    sync_max_pixels: int = Field(default=12_000_000, ge=1)
    # A user-supplied ONNX classifier of whole images (docs/ai-detection.md: its input contract).
    extra_model_path: Path | None = None
    # Analyses (their report, thumbnail and report images) are erased after this many days.
    retention_days: int = Field(default=183, ge=1)


class AntispoofSettings(BaseModel):
    """Passive checks and active liveness sessions (src/facesocial/antispoof/, docs/liveness.md)."""

    # P(live) at or above which a face is live; None = the shipped model's own threshold (set
    # for BPCER <= 5 % on the development data; its manifest says how).
    passive_threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    # check-video answers synchronously up to this many seconds of video, else queues a job.
    sync_video_seconds: float = Field(default=5.0, ge=0.0, le=60.0)
    # Frames analysed per second of a check-video clip, and at most per clip.
    video_sample_fps: float = Field(default=5.0, gt=0.0, le=30.0)
    # check-video: the motion cue ``flicker`` (antispoof/motion.py, % of the mean face luma) at or
    # above which a clip is a screen replay whatever the texture says. None: reported, not used
    # (no screen-replay video was available to set it; live clips measured 0.4-0.9 %).
    flicker_threshold: float | None = Field(default=None, ge=0.0)
    # check-video: P(live) is multiplied by this when the face moved like a flat picture
    # (``is_rigid``). Hand-set, not learned: no video attack data was available (docs/liveness.md).
    rigid_motion_factor: float = Field(default=0.5, ge=0.0, le=1.0)
    # Liveness sessions: defaults and bounds of what a caller may ask for.
    session_timeout_seconds: int = Field(default=30, ge=5, le=600)
    session_max_timeout_seconds: int = Field(default=120, ge=5, le=3600)
    session_max_attempts: int = Field(default=3, ge=1, le=10)
    # A completed session may be presented to register/verify (once) for this long.
    completed_session_ttl_seconds: int = Field(default=300, ge=10, le=3600)
    # Frames per POST .../frames request at most (a clip is sampled down to this).
    max_frames_per_request: int = Field(default=150, ge=1, le=1000)
    # Frames of a session's clip analysed per second of video.
    session_video_fps: float = Field(default=15.0, gt=0.0, le=30.0)
    # register refuses without a completed liveness session when true.
    require_liveness_for_registration: bool = False


class AttentionSettings(BaseModel):
    """Meeting attention scoring, PERCLOS and alerts (src/facesocial/analytics/attention/,
    docs/attention.md "Scoring" gives the source of every default)."""

    # Head pose (degrees, the mesh's conventions): full score within the tolerance, 0 at the limit.
    yaw_tolerance_deg: float = Field(default=15.0, ge=0.0, le=90.0)
    yaw_limit_deg: float = Field(default=45.0, gt=0.0, le=180.0)
    pitch_tolerance_deg: float = Field(default=15.0, ge=0.0, le=90.0)
    pitch_limit_deg: float = Field(default=40.0, gt=0.0, le=180.0)
    # The mesh's pitch of a face looking straight at the camera (mesh.py: not 0, see the docs).
    pitch_neutral_deg: float = Field(default=-5.0, ge=-45.0, le=45.0)
    # Iris gaze (-1..1 of the eye's half width / quarter width): full score within, 0 at the limit.
    gaze_h_tolerance: float = Field(default=0.25, ge=0.0, le=1.0)
    gaze_h_limit: float = Field(default=0.7, gt=0.0, le=2.0)
    gaze_v_tolerance: float = Field(default=0.5, ge=0.0, le=1.0)
    gaze_v_limit: float = Field(default=1.0, gt=0.0, le=2.0)
    # Eye openness (mesh 0..1) at or below which the score is 0, at or above which it is 100.
    openness_floor: float = Field(default=0.3, ge=0.0, le=1.0)
    openness_full: float = Field(default=0.7, ge=0.0, le=1.0)
    # attention = head_pose_score x the weighted mean of the gaze and eye-openness scores
    # (weights normalised by their sum): a turned head cannot be made up for by open eyes.
    weight_gaze: float = Field(default=0.6, ge=0.0)
    weight_eye_openness: float = Field(default=0.4, ge=0.0)
    # Looking away: |yaw| or |pitch - neutral| beyond these degrees, or |gaze_h| beyond this.
    looking_away_yaw_deg: float = Field(default=30.0, gt=0.0, le=180.0)
    looking_away_pitch_deg: float = Field(default=25.0, gt=0.0, le=180.0)
    looking_away_gaze_h: float = Field(default=0.6, gt=0.0, le=2.0)
    # Eyes closed (P80-style) when the more open eye's openness drops below closed_openness; open
    # again above open_openness (a band, so noise at the threshold is not a string of blinks).
    closed_openness: float = Field(default=0.3, ge=0.0, le=1.0)
    open_openness: float = Field(default=0.45, ge=0.0, le=1.0)
    # PERCLOS: window, drowsy threshold, part of the window that must be observed, blink length.
    perclos_window_seconds: float = Field(default=60.0, gt=0.0, le=3600.0)
    drowsy_perclos: float = Field(default=0.15, gt=0.0, le=1.0)
    perclos_min_coverage: float = Field(default=0.5, gt=0.0, le=1.0)
    perclos_max_gap_ms: int = Field(default=1000, ge=1)
    blink_max_ms: int = Field(default=500, ge=1)
    # Alerts: open after the condition held this long, close after recovery held this long.
    not_attentive_below: float = Field(default=50.0, ge=0.0, le=100.0)
    not_attentive_clear_above: float = Field(default=65.0, ge=0.0, le=100.0)
    alert_open_seconds: float = Field(default=3.0, ge=0.0)
    alert_close_seconds: float = Field(default=2.0, ge=0.0)
    # Severity by how long an alert has lasted: info, then warning, then critical.
    warning_after_seconds: float = Field(default=10.0, ge=0.0)
    critical_after_seconds: float = Field(default=30.0, ge=0.0)
    # Meeting summaries (domains/attention/summary.py): a minute whose meeting-wide mean score is
    # below this is "low"; maximal runs of low minutes are ``low_attention_segments``. The same
    # value as not_attentive_below by default: a low minute is an inattentive minute on average.
    low_attention_threshold: float = Field(default=50.0, ge=0.0, le=100.0)
    # Faces per frame and their smallest size (pixels) for the live/recording analysis.
    max_faces: int = Field(default=10, ge=1, le=100)
    min_face_size: int = Field(default=40, ge=8)
    # Live WebSocket (domains/attention/ws.py, docs/attention.md "Live"): concurrent sockets per
    # meeting (counted across server processes through the key-value store) and per server
    # process (each socket can keep one core busy), the largest frame, how long the latest scores
    # stay readable in the key-value store (document 004 §4.2: 300 s), and how often a socket
    # writes its metric rows (one row per participant per second is the stored resolution).
    max_sockets_per_meeting: int = Field(default=8, ge=1, le=1000)
    max_sockets: int = Field(default=32, ge=1, le=10000)
    max_frame_bytes: int = Field(default=2 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    live_ttl_seconds: int = Field(default=300, ge=10, le=86400)
    metrics_flush_seconds: float = Field(default=1.0, ge=0.1, le=60.0)
    # Recordings (POST /api/v1/attention/videos): frames analysed per second of video when the
    # request names none. 5/s serves scores, looking-away and PERCLOS (its window is a minute)
    # but counts few blinks (1 of 6 on the blink video; 10/s: 5 of 6, docs/attention.md); still
    # clamped by video.max_sample_fps and video.max_analyzed_frames.
    video_sample_fps: float = Field(default=5.0, gt=0.0, le=30.0)
    # Recordings (their results, timeline and chart data) are erased this many days after upload
    # (document 000 §7.2's six months, as the other analyses).
    recordings_retention_days: int = Field(default=183, ge=1)
    # Time series (store/attention_metrics.py, docs/attention.md "Time series"): raw per-second
    # rows are kept this many days (document 004 §3.3: 90), and the worker rolls them up into
    # 1-minute buckets this often (document 004 §3.4's refresh policy: every minute).
    metrics_retention_days: int = Field(default=90, ge=1, le=3650)
    rollup_interval_seconds: float = Field(default=60.0, ge=5.0, le=3600.0)


class CountingSettings(BaseModel):
    """People counting in uploaded videos (domains/counting/, docs/api.md "People counting").

    The upload limits (bytes, duration, side, frames) are ``video``'s, as for every video route;
    these bound the analysis. Sampling: a person walking at 1.4 m/s crosses a door line within a
    few frames at 5/s, which the tracker (analytics/tracking.py) still associates.
    """

    # Person detector when the registry names none (vision/persons.py PERSON_DETECTORS).
    detector: str = "nanodet"
    default_sample_fps: float = Field(default=5.0, ge=0.5, le=30.0)
    max_sample_fps: float = Field(default=30.0, ge=0.5, le=60.0)
    # Analysed frames per video at most (the sample rate is lowered to fit): 10 min at 5/s.
    max_analyzed_frames: int = Field(default=3000, ge=1, le=100_000)
    max_lines: int = Field(default=16, ge=1, le=256)
    max_zones: int = Field(default=16, ge=1, le=256)
    max_polygon_points: int = Field(default=64, ge=3, le=1024)
    # The annotated preview: its first seconds at the sample rate, long side scaled to at most
    # preview_max_side pixels (H.264, yuv420p needs even sides).
    preview_seconds: float = Field(default=20.0, ge=0.0, le=120.0)
    preview_max_side: int = Field(default=640, ge=64, le=1920)
    # Detection rows kept per video at most (one per box per sampled frame): beyond, the summary
    # and tracks stay complete and the detections are cut (the summary says so).
    max_detection_rows: int = Field(default=200_000, ge=1000)
    retention_days: int = Field(default=183, ge=1)


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
    intake: IntakeSettings = IntakeSettings()
    # Scaled profile: empty means the in-process equivalent (memory cache, local index).
    redis_url: str = ""
    milvus_uri: str = ""
    milvus_token: SecretStr | None = None
    limits: ImageLimits = ImageLimits()
    detection: DetectionDefaults = DetectionDefaults()
    # Per embedding model; override with JSON, e.g. FACESOCIAL_THRESHOLDS='{"dlib_resnet_v1": {...}}'.
    thresholds: dict[str, RecognitionThresholds] = Field(default_factory=_default_thresholds)
    identify_max_top_k: int = 100
    reconcile: ReconcileSettings = ReconcileSettings()
    registry: RegistrySettings = RegistrySettings()
    vector_index: VectorIndexSettings = VectorIndexSettings()
    jobs: JobSettings = JobSettings()
    video: VideoLimits = VideoLimits()
    deepfake: DeepfakeSettings = DeepfakeSettings()
    antispoofing: AntispoofSettings = AntispoofSettings()
    ai_detection: AiDetectionSettings = AiDetectionSettings()
    attention: AttentionSettings = AttentionSettings()
    counting: CountingSettings = CountingSettings()

    def resolved_database_url(self) -> str:
        """The SQLAlchemy URL; plain ``postgresql://`` URLs get the psycopg 3 driver."""
        url = self.database_url or f"sqlite:///{self.data_dir / 'facesocial.db'}"
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        return url

    def resolved_index_dir(self) -> Path:
        return self.index_dir or (self.data_dir / "vectors")

    def resolved_spool_dir(self) -> Path:
        return self.jobs.spool_dir or (self.data_dir / "jobs")
