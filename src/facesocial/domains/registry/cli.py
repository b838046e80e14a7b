"""``facesocial models versions|deploy|canary|promote|rollback|stage|history``: the registry from the
command line, on the installation's database (as ``facesocial keys``).

A running server follows a change within ``registry.refresh_seconds`` (2 s by default): routing
reads the registry from a snapshot each process reloads that often. Output is JSON; a refused
action prints ``error: <message> (<CODE>)`` and exits with status 2.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from facesocial import errors
from facesocial.container import Container
from facesocial.domains.registry.deployments import Actor, DeploymentService
from facesocial.settings import Settings

EXIT_FAILED = 2
CLI_ACTOR = Actor(None, "cli")

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="Data folder (default: FACESOCIAL_DATA_DIR)")
]
Slot = Annotated[str, typer.Argument(help="The slot: face_detection, face_embedding, person_detection, ...")]
VersionArg = Annotated[str, typer.Argument(help="The version's model tag, e.g. retinaface_mnet025@0.1.0")]
Force = Annotated[
    bool,
    typer.Option(
        "--force",
        help="face_embedding: serve the version although its gallery misses enrolled users "
        "(else GALLERY_NOT_MIGRATED; run `facesocial index migrate --to MODEL` first)",
    ),
]


def _print(payload: Any) -> None:
    typer.echo(json.dumps(payload, indent=2, default=str))


def _fail(exc: errors.FaceSocialError) -> NoReturn:
    typer.echo(f"error: {exc.message} ({exc.code})", err=True)
    raise typer.Exit(EXIT_FAILED)


def _run(data_dir: Path | None, action: Callable[[DeploymentService], Any]) -> None:
    container = Container(Settings() if data_dir is None else Settings(data_dir=data_dir))
    try:
        container.prepare()  # migrations and the registry sync, as at a server's start
        _print(action(container.registry))
    except errors.FaceSocialError as exc:
        _fail(exc)
    finally:
        container.close()


def models_versions(
    slot: Annotated[str | None, typer.Argument(help="One slot (default: every slot)")] = None,
    data_dir: DataDir = None,
) -> None:
    """The slots with their production, canary, experiment and versions (stage, installed, sha256)."""
    _run(data_dir, lambda registry: registry.get_model(slot) if slot else registry.list_models())


def models_deploy(
    slot: Slot,
    version: VersionArg,
    canary: Annotated[
        float | None, typer.Option("--canary", min=1, max=99, help="Serve PERCENT of callers only (a canary)")
    ] = None,
    stage: Annotated[
        str | None,
        typer.Option("--stage", help="Only move the version to this stage: development|staging|archived"),
    ] = None,
    force: Force = False,
    data_dir: DataDir = None,
) -> None:
    """Make VERSION production (or a canary with --canary, or move it to --stage)."""
    if canary is not None and stage is not None:
        _fail(errors.ValidationFailedError("give --canary or --stage, not both"))

    def act(registry: DeploymentService) -> Any:
        if canary is not None:
            return registry.set_canary(slot, version, canary, CLI_ACTOR, force=force)
        if stage is not None:
            return registry.set_stage(slot, version, stage, CLI_ACTOR, force=force)
        return registry.deploy(slot, version, CLI_ACTOR, force=force)

    _run(data_dir, act)


def models_stage(
    slot: Slot,
    version: VersionArg,
    stage: Annotated[str, typer.Argument(help="development | staging | production | archived")],
    force: Force = False,
    data_dir: DataDir = None,
) -> None:
    """Move VERSION to STAGE (production: as deploy)."""
    _run(data_dir, lambda registry: registry.set_stage(slot, version, stage, CLI_ACTOR, force=force))


def models_canary(
    slot: Slot,
    version: VersionArg,
    percent: Annotated[float, typer.Argument(min=1, max=99, help="Share of the slot's callers, 1..99")],
    force: Force = False,
    data_dir: DataDir = None,
) -> None:
    """VERSION serves PERCENT of the slot's callers (stable per caller); replaces another canary."""
    _run(data_dir, lambda registry: registry.set_canary(slot, version, percent, CLI_ACTOR, force=force))


def models_promote(slot: Slot, force: Force = False, data_dir: DataDir = None) -> None:
    """The slot's canary becomes production (the previous production goes to staging)."""
    _run(data_dir, lambda registry: registry.promote(slot, CLI_ACTOR, force=force))


def models_canary_end(slot: Slot, data_dir: DataDir = None) -> None:
    """End the slot's canary: production serves every caller again."""
    _run(data_dir, lambda registry: registry.clear_canary(slot, CLI_ACTOR))


def models_rollback(
    slot: Slot,
    version: VersionArg,
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the deployment history)")],
    force: Force = False,
    data_dir: DataDir = None,
) -> None:
    """Serve VERSION again at once (any canary ends); the reason is recorded."""
    _run(data_dir, lambda registry: registry.rollback(slot, version, reason, CLI_ACTOR, force=force))


def models_history(
    slot: Slot,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
    data_dir: DataDir = None,
) -> None:
    """The slot's deployment actions, newest first."""
    _run(data_dir, lambda registry: registry.history(slot, limit=limit))


def register(models_app: typer.Typer) -> None:
    """Add the registry commands to ``facesocial models``."""
    models_app.command("versions")(models_versions)
    models_app.command("deploy")(models_deploy)
    models_app.command("stage")(models_stage)
    models_app.command("canary")(models_canary)
    models_app.command("promote")(models_promote)
    models_app.command("canary-end")(models_canary_end)
    models_app.command("rollback")(models_rollback)
    models_app.command("history")(models_history)
