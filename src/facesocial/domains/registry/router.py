"""``/api/v1/models``: the serving slots, their versions, and deployment actions (operators only).

The registry is the installation's, not a tenant's: a change routes every tenant's requests,
so only the operator's API key may read or change it (a tenant's ``admin`` or ``user`` key:
403 FORBIDDEN). ``{model_id}`` is a slot (``face_detection``, ``face_embedding``, ...; unknown:
404 MODEL_NOT_FOUND); ``{version}`` a model tag such as ``blazeface_full@3.0.4``.
Every change answers ``{"success": true, "deployment": {...}, "model": {...}}``: the pipeline
row it appended and the slot as it now is; this process routes by it at once, other
processes within ``registry.refresh_seconds``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field, StrictFloat

from facesocial import errors
from facesocial.api.deps import CallerDep, ContainerDep, rate_limited
from facesocial.api.openapi import error_responses
from facesocial.api.routing import ApiRoute
from facesocial.domains.registry.deployments import CANARY_MAX, CANARY_MIN, MAX_REASON, Actor
from facesocial.services.principal import Principal


def require_operator(caller: CallerDep) -> Principal:
    """Only the installation's operator key: a deployment changes what serves every tenant."""
    if not caller.is_operator:
        raise errors.ForbiddenError(
            "The model registry routes every tenant's requests and needs the operator's API key: the key "
            "printed on the first start, or one made with `facesocial keys create --role operator`"
        )
    return caller


router = APIRouter(
    prefix="/api/v1/models",
    tags=["models"],
    route_class=ApiRoute,
    redirect_slashes=False,
    dependencies=[Depends(require_operator), Depends(rate_limited("models"))],
    responses=error_responses(errors.ForbiddenError),
)
_SLOT = error_responses(errors.ModelNotFoundError)
_VERSION = error_responses(
    errors.ModelNotFoundError,
    errors.ModelVersionNotFoundError,
    errors.ModelVersionNotInstalledError,
    errors.IllegalStageTransitionError,
    errors.GalleryNotMigratedError,
)
_CANARY = error_responses(
    errors.ModelNotFoundError,
    errors.NoCanaryError,
    errors.ModelVersionNotInstalledError,
    errors.GalleryNotMigratedError,
)
# face_embedding only: route to a version whose gallery misses enrolled users (galleries.py).
_FORCE = Field(
    default=False,
    description="face_embedding: serve the version although its gallery misses enrolled users "
    "(otherwise 409 GALLERY_NOT_MIGRATED; run `facesocial index migrate --to <model>` first). "
    "Recorded in the deployment row with the missing count",
)


class StageRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stage: Literal["development", "staging", "production", "archived"] = Field(
        description="development -> staging -> production; archived retires a version"
    )
    force: bool = _FORCE


class CanaryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str = Field(
        min_length=1, max_length=64, description="The model tag, e.g. retinaface_mnet025@0.1.0"
    )
    # Strict: JSON true is not the number 1, nor "5" a number.
    percent: StrictFloat = Field(
        ge=CANARY_MIN, le=CANARY_MAX, allow_inf_nan=False, description="Share of the slot's callers, 1..99"
    )
    force: bool = _FORCE


class DeployRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str = Field(min_length=1, max_length=64)
    force: bool = _FORCE


class PromoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    force: bool = _FORCE


class RollbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str = Field(min_length=1, max_length=64, description="The version to serve again")
    reason: str = Field(
        min_length=1, max_length=MAX_REASON, description="Why (kept in the deployment history)"
    )
    force: bool = _FORCE


def _actor(caller: Principal) -> Actor:
    return Actor(caller.account_id or caller.api_key_id, caller.name[:100])


def _changed(container: ContainerDep, slot: str, deployment: dict[str, Any]) -> dict[str, Any]:
    return {"success": True, "deployment": deployment, "model": container.registry.get_model(slot)}


@router.get("", name="list_models", response_model=None)
def list_models(container: ContainerDep) -> dict[str, Any]:
    """Every slot: production version, canary {version, percent}, running experiment, versions."""
    return {"success": True, "models": container.registry.list_models()}


@router.get("/{model_id}", name="get_model", response_model=None, responses=_SLOT)
def get_model(container: ContainerDep, model_id: str) -> dict[str, Any]:
    return {"success": True, "model": container.registry.get_model(model_id)}


@router.get("/{model_id}/versions", name="list_model_versions", response_model=None, responses=_SLOT)
def list_versions(container: ContainerDep, model_id: str) -> dict[str, Any]:
    """The slot's versions: stage, canary share, installed, file, size, sha256, source, licence,
    measured validation figures (docs/accuracy.md)."""
    return {"success": True, "model_id": model_id, "versions": container.registry.versions(model_id)}


@router.get("/{model_id}/deployments", name="list_model_deployments", response_model=None, responses=_SLOT)
def list_deployments(
    container: ContainerDep,
    model_id: str,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> dict[str, Any]:
    """The slot's deployment history, newest first."""
    return {
        "success": True,
        "model_id": model_id,
        **container.registry.history(model_id, limit=limit, offset=offset),
    }


@router.post(
    "/{model_id}/versions/{version}/stage", name="set_model_stage", response_model=None, responses=_VERSION
)
def set_stage(
    container: ContainerDep, caller: CallerDep, model_id: str, version: str, body: StageRequest
) -> dict[str, Any]:
    """Move a version between stages; ``production`` deploys it (the old one goes to staging)."""
    deployment = container.registry.set_stage(model_id, version, body.stage, _actor(caller), force=body.force)
    return _changed(container, model_id, deployment)


@router.post("/{model_id}/deploy", name="deploy_model", response_model=None, responses=_VERSION)
def deploy(container: ContainerDep, caller: CallerDep, model_id: str, body: DeployRequest) -> dict[str, Any]:
    """Make a version production now (its canary, if any, ends)."""
    deployment = container.registry.deploy(model_id, body.version, _actor(caller), force=body.force)
    return _changed(container, model_id, deployment)


@router.post("/{model_id}/canary", name="set_model_canary", response_model=None, responses=_VERSION)
def set_canary(
    container: ContainerDep, caller: CallerDep, model_id: str, body: CanaryRequest
) -> dict[str, Any]:
    """A version serves ``percent`` of the slot's callers (stable per caller); replaces a canary."""
    deployment = container.registry.set_canary(
        model_id, body.version, body.percent, _actor(caller), force=body.force
    )
    return _changed(container, model_id, deployment)


@router.delete("/{model_id}/canary", name="end_model_canary", response_model=None, responses=_CANARY)
def end_canary(container: ContainerDep, caller: CallerDep, model_id: str) -> dict[str, Any]:
    """End the canary: production serves everyone again."""
    deployment = container.registry.clear_canary(model_id, _actor(caller))
    return _changed(container, model_id, deployment)


@router.post("/{model_id}/promote", name="promote_model_canary", response_model=None, responses=_CANARY)
def promote(
    container: ContainerDep, caller: CallerDep, model_id: str, body: PromoteRequest | None = None
) -> dict[str, Any]:
    """The canary becomes production; the previous production version goes to staging (the body
    ``{"force": true}`` is optional)."""
    force = body.force if body is not None else False
    deployment = container.registry.promote(model_id, _actor(caller), force=force)
    return _changed(container, model_id, deployment)


@router.post("/{model_id}/rollback", name="rollback_model", response_model=None, responses=_VERSION)
def rollback(
    container: ContainerDep, caller: CallerDep, model_id: str, body: RollbackRequest
) -> dict[str, Any]:
    """Serve a named version again at once, with a reason; any canary ends."""
    deployment = container.registry.rollback(
        model_id, body.version, body.reason, _actor(caller), force=body.force
    )
    return _changed(container, model_id, deployment)
