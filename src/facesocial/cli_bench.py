"""``facesocial bench ...``: speed and memory, printed as JSON (tests never assert times).

``facesocial bench`` alone (and its ``--decode``, ``--video``, ... forms) keeps measuring every
stage and model on one photo; the subcommands measure throughput over image sets
(``pipeline``), against the ``face_recognition`` library (``compare``), the HTTP API under
concurrent load (``api``) and the vector index (``index``). The logic lives in
``facesocial.evaluation.bench*``; this module only parses options and prints.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from facesocial.cli_attention import DEFAULT_LFW, bench_attention
from facesocial.cli_counting import bench_counting
from facesocial.settings import Settings

bench_app = typer.Typer(
    invoke_without_command=True,
    no_args_is_help=False,
    help="Latency, throughput and memory (JSON on stdout)",
)

ImagesOption = Annotated[
    list[Path],
    typer.Option(
        "--images",
        help="Folder of images (searched recursively, sorted by path) or one image file; repeatable",
        exists=True,
    ),
]
LimitOption = Annotated[
    int | None, typer.Option(min=1, help="Only the first N images (sorted by path) of EACH --images folder")
]
RuntimeOption = Annotated[
    str | None,
    typer.Option(help="Runtime of dlib's ResNet: onnx or dlib (default: the models.dlib_runtime setting)"),
]


def _print_json(payload: Any) -> None:
    typer.echo(json.dumps(payload, indent=2, default=str))


def _check_runtime(runtime: str | None) -> None:
    if runtime is not None and runtime not in ("onnx", "dlib"):
        raise typer.BadParameter(f"{runtime!r}: choose onnx or dlib", param_hint="--runtime")


@bench_app.callback()
def bench(
    ctx: typer.Context,
    image: Annotated[
        Path | None, typer.Option(help="Photo to use (default: scikit-image's astronaut)")
    ] = None,
    runs: Annotated[int, typer.Option(help="Timed runs per stage")] = 20,
    threads: Annotated[list[int] | None, typer.Option(help="ONNX Runtime threads (repeatable)")] = None,
    decode: Annotated[
        bool,
        typer.Option(
            "--decode",
            help="Instead: decode time and peak memory of the largest legal images (40 Mpx JPEG/PNG, "
            "8000x4500 HEIC/AVIF) and refusal of extreme shapes, each in a fresh process",
        ),
    ] = False,
    video_upload: Annotated[
        int | None,
        typer.Option(
            "--video-upload",
            help="Instead: peak server memory while a multipart video upload of this many MB streams in",
        ),
    ] = None,
    video: Annotated[
        list[Path] | None,
        typer.Option(help="Instead: video decode speed (s per second of video) of these files (repeatable)"),
    ] = None,
    deepfake_video: Annotated[
        list[Path] | None,
        typer.Option(
            "--deepfake-video", help="Instead: deepfake analysis time per second of these videos (repeatable)"
        ),
    ] = None,
    liveness_video: Annotated[
        Path | None,
        typer.Option(
            "--liveness-video", help="Instead: ms per liveness-session frame, stage by stage, on this video"
        ),
    ] = None,
    sample_fps: Annotated[float, typer.Option(help="Frames per second sampled by the video benches")] = 2.0,
) -> None:
    """Latency (median, p95 in ms) of every stage and model, at 1 and 2 threads, and memory.

    Subcommands: pipeline (images/s over image folders), compare (against face_recognition),
    api (the HTTP API under concurrent load), index (vector index build and search).
    """
    if ctx.invoked_subcommand is not None:
        return
    if video_upload is not None:
        from facesocial.evaluation.bench_video import bench_video_upload

        _print_json(bench_video_upload(video_upload))
        return
    if video:
        from facesocial.evaluation.bench_video import bench_decode as bench_video_decode

        _print_json([bench_video_decode(path, sample_fps) for path in video])
        return
    if deepfake_video:
        from facesocial.evaluation.bench_deepfake import bench_deepfake_videos

        _print_json(bench_deepfake_videos(deepfake_video, sample_fps))
        return
    if liveness_video is not None:
        from facesocial.evaluation.bench_liveness import bench_liveness

        _print_json(bench_liveness(liveness_video, sample_fps))
        return
    if decode:
        from facesocial.evaluation.bench_decode import bench_decode

        _print_json(bench_decode())
        return
    from facesocial.evaluation.bench import run_bench

    _print_json(run_bench(image, runs=runs, threads=tuple(threads or [1, 2])))


@bench_app.command("pipeline")
def bench_pipeline(images: ImagesOption, limit: LimitOption = None, runtime: RuntimeOption = None) -> None:
    """Images/s, faces/s and per-stage p50/p95 ms of the default recognition pipeline (decode,
    detect, landmarks, quality, align, embed of every face), model load time, peak RSS."""
    from facesocial.evaluation.bench_pipeline import run_bench_pipeline

    _check_runtime(runtime)
    _print_json(run_bench_pipeline(images, limit=limit, runtime=runtime))


@bench_app.command("compare")
def bench_compare(
    images: ImagesOption,
    limit: LimitOption = None,
    runtime: RuntimeOption = None,
    min_iou: Annotated[float, typer.Option(help="Box IoU for a face both pipelines found")] = 0.5,
    rounds: Annotated[
        int, typer.Option(min=1, help="Rounds of both sides, alternating; the ratio is their median")
    ] = 1,
) -> None:
    """Our pipeline beside face_recognition's (HOG 1 upsample, 5 points, ResNet, 1 jitter), each in
    a fresh process in turn: images/s, faces/s, faces found, the ratio ours/theirs and the cosine
    between both descriptors of the same face."""
    from facesocial.evaluation.bench_compare import run_bench_compare

    _check_runtime(runtime)
    _print_json(run_bench_compare(images, rounds=rounds, limit=limit, runtime=runtime, min_iou=min_iou))


@bench_app.command("api")
def bench_api(
    server: Annotated[
        str | None, typer.Option(help="Base URL of a running server (default: start one here)")
    ] = None,
    api_key: Annotated[str | None, typer.Option("--api-key", help="Its API key (with --server)")] = None,
    clients: Annotated[
        list[int] | None, typer.Option(min=1, help="Concurrent clients (repeatable; default 1, 4, 16)")
    ] = None,
    duration: Annotated[float, typer.Option(min=0.5, help="Seconds per endpoint and client count")] = 10.0,
    images: Annotated[
        list[Path] | None,
        typer.Option(
            "--images", help="Request images: folder or file, repeatable (default: astronaut)", exists=True
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="First N images of each --images folder")] = 50,
) -> None:
    """Requests/s and latency p50/p95/p99 of detect, register and identify with N concurrent
    clients, /health latency under that load, and every status code (429/503 counted)."""
    from facesocial.evaluation.bench_api import load_images, run_bench_api
    from facesocial.evaluation.bench_pipeline import list_images

    if (server is None) != (api_key is None):
        raise typer.BadParameter("--server and --api-key go together", param_hint="--server")
    chosen = load_images(list_images(images, limit)) if images else None
    _print_json(
        run_bench_api(
            server=server,
            api_key=api_key,
            clients=tuple(clients or [1, 4, 16]),
            duration_s=duration,
            images=chosen,
        )
    )


@bench_app.command("index")
def bench_index(
    size: Annotated[int, typer.Option(min=1, help="Faces in the index")],
    queries: Annotated[int, typer.Option(min=1, help="Timed top-k queries")] = 1000,
    k: Annotated[int, typer.Option(min=1, help="Neighbours per query")] = 10,
    samples_per_identity: Annotated[int, typer.Option(min=1, help="Faces per synthetic identity")] = 4,
    seed: Annotated[int, typer.Option(help="Random seed of the synthetic gallery")] = 0,
    threads: Annotated[int, typer.Option(min=1, help="Build and search threads")] = 2,
    tenants: Annotated[
        int, typer.Option(min=1, help="Spread the faces over this many tenant partitions; query the first")
    ] = 1,
    connectivity: Annotated[
        int | None, typer.Option(min=2, help="HNSW M (default: FACESOCIAL_VECTOR_INDEX__CONNECTIVITY)")
    ] = None,
    expansion_search: Annotated[
        int | None, typer.Option(min=1, help="HNSW ef_search (default: ..._EXPANSION_SEARCH)")
    ] = None,
    sweep: Annotated[
        list[int] | None, typer.Option(help="More ef_search values measured on the same graph (repeatable)")
    ] = None,
    exact: Annotated[bool, typer.Option("--exact", help="No graph: exact search, for comparison")] = False,
) -> None:
    """Vector index build time, memory, query p50/p95 and recall at SIZE faces.

    The index settings are the server's (FACESOCIAL_VECTOR_INDEX__*), overridden by the options.
    Prints nothing until done: 1 M faces take about 6 minutes on 2 cores.
    """
    from facesocial.evaluation.bench_index import run_bench_index

    chosen = Settings().vector_index
    overrides: dict[str, object] = {"ann": not exact}
    if connectivity is not None:
        overrides["connectivity"] = connectivity
    if expansion_search is not None:
        overrides["expansion_search"] = expansion_search
    _print_json(
        run_bench_index(
            size,
            queries=queries,
            k=k,
            samples_per_identity=samples_per_identity,
            seed=seed,
            threads=threads,
            settings=chosen.model_copy(update=overrides),
            tenants=tenants,
            sweep=tuple(sweep or ()),
        )
    )


bench_app.command("attention")(bench_attention)
bench_app.command("counting")(bench_counting)


@bench_app.command("registry")
def bench_registry(
    database_url: Annotated[
        str,
        typer.Option(help="A THROW-AWAY database (its registry is changed); default: a scratch SQLite file"),
    ] = "",
    resolves: Annotated[int, typer.Option(min=100, help="Timed routing decisions")] = 20_000,
    records: Annotated[int, typer.Option(min=10, help="Timed inference rows written")] = 300,
) -> None:
    """What the registry costs a request: µs per routing decision (in-memory snapshot, a 30 %
    canary on the slot), ms per recorded inference (one row, one transaction), ms per snapshot
    reload."""
    import tempfile

    from facesocial.domains.registry.bench import run
    from facesocial.store.db import Database

    with tempfile.TemporaryDirectory() as folder:
        database = Database(database_url or f"sqlite:///{folder}/registry.db")
        try:
            _print_json({"database": database.engine.dialect.name, **run(database, resolves, records)})
        finally:
            database.dispose()


@bench_app.command("attention-ws")
def bench_attention_ws(
    lfw: Annotated[Path, typer.Option(help="LFW folder the frames are composed from")] = DEFAULT_LFW,
    frames: Annotated[int, typer.Option(min=5, help="Frames timed per face count (1-4)")] = 60,
    server: Annotated[
        str | None, typer.Option(help="Base URL of a running server (default: start one here)")
    ] = None,
    api_key: Annotated[str | None, typer.Option("--api-key", help="Its API key (with --server)")] = None,
) -> None:
    """Round-trip ms of a 640x480 frame with 1-4 faces over the live attention WebSocket of a real
    server (p50/p95/max, lockstep), as JSON."""
    from facesocial.evaluation.bench_attention_ws import run_bench_attention_ws

    if (server is None) != (api_key is None):
        raise typer.BadParameter("--server and --api-key go together", param_hint="--server")
    if not lfw.is_dir():
        raise typer.BadParameter(f"{lfw} is not a folder", param_hint="--lfw")
    _print_json(run_bench_attention_ws(lfw, frames_per_count=frames, server=server, api_key=api_key))


@bench_app.command("ai-image")
def bench_ai_image(images: ImagesOption, limit: LimitOption = None) -> None:
    """Per-method and whole-analysis ms (mean/p50/p95) of SkyGate's AI-image analysis, images/s, peak RSS."""
    from facesocial.container import Container
    from facesocial.evaluation.bench_ai_image import run_bench_ai_image

    settings = Settings()
    try:
        report = run_bench_ai_image(Container(settings).ai_analyzer, settings, images, limit)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--images") from exc
    _print_json(report)
