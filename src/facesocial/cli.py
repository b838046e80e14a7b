"""``facesocial`` command line: serve | keys | analyze | db | index | eval | bench."""

from __future__ import annotations

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
app.add_typer(keys_app, name="keys")
app.add_typer(db_app, name="db")
app.add_typer(index_app, name="index")
app.add_typer(eval_app, name="eval")

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="Data folder (default: FACESOCIAL_DATA_DIR)")
]


def _container(data_dir: Path | None) -> Container:
    settings = Settings() if data_dir is None else Settings(data_dir=data_dir)
    return Container(settings)


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
    container.prepare()
    if container.keys.count() == 0:
        issued = container.keys.create("admin (first start)", role="admin")
        typer.echo(
            f"First start: admin API key (shown once, store it now):\n  {issued.secret}\n",
            err=True,
        )
    typer.echo(f"Data in {container.settings.data_dir}; loading models ...", err=True)
    _ = container.pipeline  # load models before accepting traffic
    typer.echo(f"Serving on http://{host}:{port} (OpenAPI at /docs)", err=True)
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
    detection_confidence: float = 0.7,
) -> None:
    """Detect and describe faces in images; JSON on stdout, no server or database."""
    from facesocial import errors
    from facesocial.vision.image import decode_image
    from facesocial.vision.pipeline import DetectOptions, FacePipeline, face_to_dict

    settings = Settings()
    pipeline = FacePipeline.load(settings.detection.hog_upsample_max_pixels)
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
) -> None:
    """1:1 verification accuracy on LFW-format pairs (JSON on stdout)."""
    from facesocial.evaluation.verification import run_verification_eval

    _print_json(run_verification_eval(pairs, images, workers=workers, limit=limit))


@app.command()
def bench(
    image: Annotated[
        Path | None, typer.Option(help="Photo to use (default: scikit-image's astronaut)")
    ] = None,
    runs: Annotated[int, typer.Option(help="Timed runs per stage")] = 20,
    threads: Annotated[int, typer.Option(help="Threads for the models")] = 2,
) -> None:
    """Per-stage latency (median, p95 in ms) of decode, detect, landmarks, embed, pipeline."""
    from facesocial.evaluation.bench import run_bench

    _print_json(run_bench(image, runs=runs, threads=threads))


def main() -> None:  # pragma: no cover - console entry point
    app()
