"""``facesocial index ...``: verify, repair, rebuild and migrate the vector index.

The embedded profile's index (and a milvus-lite file) belongs to one process: while a server
runs, these commands refuse to open it and say so; ``--server URL`` runs them inside that
server instead, with the operator's API key (``--api-key`` or ``FACESOCIAL_API_KEY``): the key
printed on the first start, or one made with ``facesocial keys create --role operator``. A
tenant's admin key is refused (403): these act on every tenant's faces.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from facesocial import errors
from facesocial.container import Container
from facesocial.services.reconcile import MAX_GRACE_SECONDS
from facesocial.settings import Settings

index_app = typer.Typer(no_args_is_help=True, help="Vector index: verify, repair, rebuild, migrate")

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="Data folder (default: FACESOCIAL_DATA_DIR)")
]
Server = Annotated[
    str | None,
    typer.Option(
        "--server",
        help="Run inside a running server, e.g. http://127.0.0.1:8000 (needed while it holds the index)",
    ),
]
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="FACESOCIAL_API_KEY",
        help="Operator API key for --server (the first-start key, or `keys create --role operator`)",
    ),
]

# Exit codes: 0 consistent / done, 1 discrepancies remain, 2 could not run.
EXIT_INCONSISTENT = 1
EXIT_FAILED = 2


def _print_json(payload: Any) -> None:
    typer.echo(json.dumps(payload, indent=2, default=str))


def _fail(message: str) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(EXIT_FAILED)


def _local(data_dir: Path | None) -> Container:
    settings = Settings() if data_dir is None else Settings(data_dir=data_dir)
    container = Container(settings)
    container.prepare()
    try:
        _ = container.index
    except errors.FaceSocialError as exc:
        _fail(
            f"{exc.code}: {exc.message}\nThe vector index is held by a running server: run this command "
            "with --server http://HOST:PORT (and the operator's --api-key), or stop the server first."
        )
    return container


def _remote(server: str, api_key: str | None, path: str, body: dict[str, Any]) -> dict[str, Any]:
    import httpx

    if not api_key:
        _fail(
            "--server needs the operator's API key (--api-key or FACESOCIAL_API_KEY): the key printed "
            "on the first start, or one made with `facesocial keys create --role operator`"
        )
    try:
        response = httpx.post(
            f"{server.rstrip('/')}/api/v1/admin/index/{path}",
            json=body,
            headers={"X-API-Key": api_key},
            timeout=None,  # a repair or rebuild of a large gallery takes as long as it takes
        )
    except httpx.HTTPError as exc:
        _fail(f"cannot reach {server}: {exc}")
    payload: dict[str, Any] = response.json()
    if response.status_code != 200:
        error = payload.get("error", {})
        _fail(f"{error.get('code', response.status_code)}: {error.get('message', response.text)}")
    return payload


@index_app.command("verify")
def index_verify(
    repair: Annotated[bool, typer.Option("--repair", help="Fix what disagrees")] = False,
    grace_seconds: Annotated[
        float | None,
        typer.Option(
            min=0,
            max=MAX_GRACE_SECONDS,
            help="Age in seconds (at most 30 days) after which a pending registration or erasure "
            "counts as abandoned",
        ),
    ] = None,
    show: Annotated[int, typer.Option(help="Ids listed per kind of discrepancy")] = 100,
    data_dir: DataDir = None,
    server: Server = None,
    api_key: ApiKey = None,
) -> None:
    """Compare SQL (the source of truth) with the vector index, listing orphans both ways.

    Missing vectors (a face row without its vector), orphan vectors (a vector without a row),
    registrations left pending and erasures left unfinished by a crash. Exit code 0 when
    consistent (after the repairs, with --repair), 1 when not, 2 when it could not run.
    """
    body = {"repair": repair, "grace_seconds": grace_seconds, "show": show}
    if server:
        payload = _remote(server, api_key, "verify", body)
        report = payload["report"]
    else:
        container = _local(data_dir)
        try:
            result = container.reconciler.run(repair=repair, grace_seconds=grace_seconds)
        except errors.FaceSocialError as exc:
            _fail(f"{exc.code}: {exc.message}")
        finally:
            container.close()
        report = result.as_dict(show)
    _print_json(report)
    if not report["consistent"]:
        raise typer.Exit(EXIT_INCONSISTENT)


@index_app.command("rebuild")
def index_rebuild(data_dir: DataDir = None, server: Server = None, api_key: ApiKey = None) -> None:
    """Rebuild every vector collection from the embeddings stored in SQL.

    The new content is built beside the old and swapped in whole, so a running server (with
    --server) keeps answering from the old vectors until the new ones are complete.
    """
    from facesocial.services.index_maintenance import rebuild_index

    if server:
        _print_json(_remote(server, api_key, "rebuild", {})["collections"])
        return
    container = _local(data_dir)
    try:
        reports = rebuild_index(container.database, container.index)
    except errors.FaceSocialError as exc:
        _fail(f"{exc.code}: {exc.message}")
    finally:
        container.close()
    _print_json([{"collection": r.collection, "vectors": r.vectors} for r in reports])


@index_app.command("migrate")
def index_migrate(
    to: Annotated[str, typer.Option("--to", help="Target embedding model, e.g. faceres")],
    data_dir: DataDir = None,
) -> None:
    """Enrol every user in another model's collection from kept face chips.

    Lists the users who have no kept chip (privacy.keep_face_chips was off) and must enrol again.
    """
    from facesocial.services.index_maintenance import migrate_gallery

    container = _local(data_dir)
    try:
        report = migrate_gallery(
            container.database,
            container.index,
            container.pipeline,
            container.chip_vault,
            to,
            container.face_writer,
        )
    finally:
        container.close()
    _print_json(dataclasses.asdict(report))
