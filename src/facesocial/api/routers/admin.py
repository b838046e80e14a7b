"""``/api/v1/admin``: index upkeep inside the running server (admin API keys and tokens only).

The embedded profile's vector index lives in the server's memory, so checking or rebuilding it
must happen in that process; ``facesocial index verify|rebuild --server URL`` calls these.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from facesocial import errors
from facesocial.api.deps import CallerDep, ContainerDep
from facesocial.api.openapi import error_responses
from facesocial.services.index_maintenance import rebuild_index
from facesocial.services.principal import Principal

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])


class VerifyRequest(BaseModel):
    repair: bool = Field(default=False, description="Fix what disagrees")
    grace_seconds: float | None = Field(
        default=None,
        ge=0,
        description="Age at which pending writes count as abandoned (default: the server's)",
    )
    show: int = Field(default=100, ge=0, le=100_000, description="Ids listed per kind of discrepancy")


def _require_admin(caller: Principal) -> None:
    if not caller.is_admin:
        raise errors.ForbiddenError("Index maintenance needs an admin API key or token")


@router.post("/index/verify", name="index_verify", responses=error_responses(errors.ForbiddenError))
def index_verify(container: ContainerDep, caller: CallerDep, body: VerifyRequest) -> dict[str, Any]:
    """Compare SQL with the vector index (orphans both ways); repair on request."""
    _require_admin(caller)
    report = container.reconciler.run(repair=body.repair, grace_seconds=body.grace_seconds)
    if body.repair:
        container.reconcile_loop.record(report)
    return {"success": True, "report": report.as_dict(body.show)}


@router.post("/index/rebuild", name="index_rebuild", responses=error_responses(errors.ForbiddenError))
def index_rebuild(container: ContainerDep, caller: CallerDep) -> dict[str, Any]:
    """Rebuild every collection from SQL; searches use the old vectors until each is swapped in."""
    _require_admin(caller)
    reports = rebuild_index(container.database, container.index)
    return {
        "success": True,
        "collections": [{"collection": r.collection, "vectors": r.vectors} for r in reports],
    }
