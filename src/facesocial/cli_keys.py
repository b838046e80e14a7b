"""``facesocial keys ...``: create, list, revoke and expire API keys.

Only the database is touched, so these commands work while servers run; keys are read from SQL
on every request, so a revoked or expired key fails on its very next request.
Exit codes: 0 done, 2 the key reference is unknown or ambiguous, or an option is invalid.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from facesocial import errors
from facesocial.container import Container
from facesocial.services.keys import ROLES, ApiKeyService, KeyInfo
from facesocial.settings import Settings

keys_app = typer.Typer(no_args_is_help=True, help="API keys: create, list, revoke, expire")

EXIT_FAILED = 2

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="Data folder (default: FACESOCIAL_DATA_DIR)")
]
KeyRef = Annotated[
    str,
    typer.Argument(
        metavar="KEY_ID_OR_PREFIX", help="The key's id (or its first 4+ characters) or prefix (fs_...)"
    ),
]

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``15m``, ``45s``, ``2w`` → a timedelta; anything else raises BadParameter."""
    match = _DURATION.match(text.lower())
    if not match or int(match.group(1)) == 0:
        raise typer.BadParameter(f"{text!r} is not a duration like 30d, 12h, 15m, 45s or 2w")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def parse_moment(text: str) -> datetime:
    """ISO 8601 with a timezone (``Z`` or ``+02:00``); a date alone means midnight UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not an ISO 8601 time, e.g. 2027-01-31T12:00:00Z") from None
    if moment.tzinfo is None:
        if "T" in text or " " in text.strip():
            raise typer.BadParameter(f"{text!r} has no timezone: add Z (UTC) or an offset like +02:00")
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _service(data_dir: Path | None) -> tuple[Container, ApiKeyService]:
    container = Container(Settings() if data_dir is None else Settings(data_dir=data_dir))
    container.prepare()
    return container, container.keys


def _fail(exc: errors.FaceSocialError) -> NoReturn:
    typer.echo(f"error: {exc.message} ({exc.code})", err=True)
    raise typer.Exit(EXIT_FAILED)


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"


def _table(keys: list[KeyInfo], now: datetime) -> str:
    header = (
        "ID",
        "PREFIX",
        "NAME",
        "ROLE",
        "TENANT",
        "CREATED",
        "EXPIRES",
        "LAST USED",
        "STATE",
        "REQUESTS",
    )
    rows = [header] + [
        (
            str(k.id),
            k.prefix,
            k.name[:30],
            k.role,
            ("=" if not k.shared_owner else "") + str(k.tenant_id)[:8],
            _when(k.created_at),
            _when(k.expires_at),
            _when(k.last_used_at),
            k.state(now),
            f"{k.requests_made}/{k.request_limit if k.request_limit is not None else '∞'}",
        )
        for k in keys
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option("--name", help="A label for the key")],
    data_dir: DataDir = None,
    role: Annotated[
        str,
        typer.Option(
            help="admin (its tenant's data), user (the same, for client applications) or operator "
            "(also the installation: index upkeep over every tenant, /api/v1/admin/..., `index "
            "verify|rebuild --server`; the model registry /api/v1/models and experiments /api/v1/experiments)"
        ),
    ] = "admin",
    request_limit: Annotated[int | None, typer.Option(help="Requests allowed (default: no limit)")] = None,
    expires_in: Annotated[
        str | None, typer.Option("--expires-in", help="Lifetime, e.g. 30d, 12h, 15m (default: none)")
    ] = None,
    owner: Annotated[
        str | None,
        typer.Option(
            "--owner",
            help="Share a tenant: another key's id or prefix (its tenant), or a tenant UUID "
            "(default: the new key is its own tenant)",
        ),
    ] = None,
) -> None:
    """Create an API key and print it (it is stored only as a hash)."""
    if role not in ROLES:
        raise typer.BadParameter(f"role must be one of {', '.join(ROLES)}")
    if request_limit is not None and request_limit < 1:
        raise typer.BadParameter("request-limit must be at least 1")
    expires_at = datetime.now(UTC) + parse_duration(expires_in) if expires_in else None
    container, keys = _service(data_dir)
    try:
        tenant = keys.tenant_of(owner) if owner else None
        issued = keys.create(
            name, role=role, request_limit=request_limit, expires_at=expires_at, owner_id=tenant
        )
    except (errors.ApiKeyNotFoundError, errors.AmbiguousApiKeyError) as exc:
        _fail(exc)
    finally:
        container.close()
    typer.echo(issued.secret)


@keys_app.command("list")
def keys_list(
    data_dir: DataDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table")] = False,
) -> None:
    """Every key: id, prefix, name, role, tenant, dates, state, requests made/limit (never the secret).

    TENANT shows the first 8 characters of the tenant id, marked ``=`` when the key is its own tenant.
    """
    container, keys = _service(data_dir)
    try:
        listed = keys.list_all()
    finally:
        container.close()
    now = datetime.now(UTC)
    if as_json:
        typer.echo(json.dumps([k.as_dict(now) for k in listed], indent=2))
    else:
        typer.echo(_table(listed, now))


@keys_app.command("revoke")
def keys_revoke(ref: KeyRef, data_dir: DataDir = None) -> None:
    """Deactivate a key: its next request, on any running server, gets 401 INVALID_API_KEY."""
    container, keys = _service(data_dir)
    try:
        info = keys.revoke(ref)
    except (errors.ApiKeyNotFoundError, errors.AmbiguousApiKeyError) as exc:
        _fail(exc)
    finally:
        container.close()
    typer.echo(f"revoked {info.id} ({info.prefix}, {info.name})")


@keys_app.command("expire")
def keys_expire(
    ref: KeyRef,
    data_dir: DataDir = None,
    at: Annotated[str | None, typer.Option("--at", help="ISO 8601 time, e.g. 2027-01-31T00:00:00Z")] = None,
    within: Annotated[str | None, typer.Option("--in", help="From now, e.g. 30d, 12h, 15m")] = None,
    now: Annotated[bool, typer.Option("--now", help="Expire immediately")] = False,
) -> None:
    """Set when a key stops working; past that, requests get 401 API_KEY_EXPIRED."""
    if sum(option is not None and option is not False for option in (at, within, now)) != 1:
        raise typer.BadParameter("give exactly one of --at, --in, --now")
    moment = (
        parse_moment(at) if at else datetime.now(UTC) + (parse_duration(within) if within else timedelta())
    )
    container, keys = _service(data_dir)
    try:
        info = keys.expire(ref, moment)
    except (errors.ApiKeyNotFoundError, errors.AmbiguousApiKeyError) as exc:
        _fail(exc)
    finally:
        container.close()
    typer.echo(f"{info.id} ({info.prefix}, {info.name}) expires at {moment.isoformat()}")
