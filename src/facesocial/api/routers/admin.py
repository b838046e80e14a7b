"""``/api/v1/admin``: index upkeep inside the running server (operator API keys only).

The embedded profile's vector index lives in the server's memory, so checking or rebuilding it
must happen in that process; ``facesocial index verify|rebuild --server URL`` calls these.

They act on every tenant's faces and vectors (a collection holds all tenants' vectors) and
report face ids of every tenant, so a tenant's own ``admin`` key is refused: only the
installation's operator may call them (the key printed on the first start, or one made with
``facesocial keys create --role operator``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from facesocial import errors
from facesocial.api.deps import CallerDep, ContainerDep, rate_limited
from facesocial.api.forms import Flag
from facesocial.api.openapi import error_responses
from facesocial.api.routing import ApiRoute
from facesocial.services.index_maintenance import rebuild_index
from facesocial.services.principal import Principal
from facesocial.services.reconcile import MAX_GRACE_SECONDS


def require_operator(caller: CallerDep) -> Principal:
    if not caller.is_operator:
        raise errors.ForbiddenError(
            "Index maintenance acts on every tenant and needs the operator's API key: the key printed "
            "on the first start, or one made with `facesocial keys create --role operator`"
        )
    return caller


router = APIRouter(
    prefix="/api/v1/admin",
    tags=["admin"],
    route_class=ApiRoute,
    redirect_slashes=False,
    # The role first: a refused caller never spends the operator's budget. Each pass reads every
    # face row and every vector, so even the operator gets a few per minute (settings "admin").
    dependencies=[Depends(require_operator), Depends(rate_limited("admin"))],
    responses=error_responses(errors.ForbiddenError),
)


class VerifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    repair: Flag = Field(default=False, description="Fix what disagrees")
    grace_seconds: float | None = Field(
        default=None,
        ge=0,
        le=MAX_GRACE_SECONDS,
        allow_inf_nan=False,
        description="Age at which pending writes count as abandoned (default: the server's; at most 30 days)",
    )
    show: int = Field(default=100, ge=0, le=100_000, description="Ids listed per kind of discrepancy")


@router.post("/index/verify", name="index_verify")
def index_verify(container: ContainerDep, body: VerifyRequest) -> dict[str, Any]:
    """Compare SQL with the vector index (orphans both ways, every tenant); repair on request."""
    report = container.reconciler.run(repair=body.repair, grace_seconds=body.grace_seconds)
    if body.repair:
        container.reconcile_loop.record(report)
    return {"success": True, "report": report.as_dict(body.show)}


@router.post("/index/rebuild", name="index_rebuild")
def index_rebuild(container: ContainerDep) -> dict[str, Any]:
    """Rebuild every collection from SQL; searches use the old vectors until each is swapped in."""
    reports = rebuild_index(container.database, container.index)
    return {
        "success": True,
        "collections": [{"collection": r.collection, "vectors": r.vectors} for r in reports],
    }
