"""``/api/v1/models/{model_id}/drift`` and ``/performance``: drift checks and performance roll-ups
of a slot's versions (operator only: they read every tenant's inference records).

See :mod:`facesocial.domains.registry.monitoring` for what is computed and
:mod:`facesocial.analytics.drift` for PSI, KS and the severity bands.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from facesocial import errors
from facesocial.analytics.drift import MIN_SAMPLES
from facesocial.api.deps import CallerDep, ContainerDep, rate_limited
from facesocial.api.openapi import error_responses
from facesocial.api.routing import ApiRoute
from facesocial.domains.registry.monitoring import BASELINE_WINDOW, CURRENT_WINDOW, Window
from facesocial.services.principal import Principal
from facesocial.store.types import utcnow


def require_operator(caller: CallerDep) -> Principal:
    if not caller.is_operator:
        raise errors.ForbiddenError(
            "Drift and performance figures cover every tenant's inferences: they need the operator's "
            "API key (`facesocial keys create --role operator`)"
        )
    return caller


router = APIRouter(
    prefix="/api/v1/models",
    tags=["models"],
    route_class=ApiRoute,
    redirect_slashes=False,
    dependencies=[Depends(require_operator), Depends(rate_limited("models"))],
    responses=error_responses(errors.ForbiddenError, errors.ModelNotFoundError),
)


class WindowBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: AwareDatetime
    end: AwareDatetime

    def window(self, name: str) -> Window:
        """The window; 422 VALIDATION_ERROR when end <= start or either lies outside
        1970-01-01 .. 9000-01-01 UTC (monitoring.EARLIEST/LATEST)."""
        return Window(self.start, self.end, name)


class DriftCheckBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str | None = Field(default=None, max_length=64, description="One version (default: all)")
    current: WindowBody | None = Field(default=None, description="Default: the last 24 hours")
    baseline: WindowBody | None = Field(default=None, description="Default: the 7 days before `current`")
    features: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(
        default=None, max_length=64, description="Only these (confidence, quality, width, ...)"
    )
    min_samples: int = Field(
        default=MIN_SAMPLES,
        ge=5,
        le=1_000_000,
        description="Values per window below which a feature is not rated",
    )


@router.post(
    "/{model_id}/drift/check",
    name="check_model_drift",
    response_model=None,
    status_code=201,
    responses=error_responses(errors.ValidationFailedError, errors.ModelVersionNotFoundError),
)
def check_drift(container: ContainerDep, model_id: str, body: DriftCheckBody | None = None) -> JSONResponse:
    """Compare the current window's confidences and input features with the baseline window's
    (PSI over baseline-quantile bins, KS test); store and return the check: per-feature figures,
    severity none|low|medium|high|critical, ``alerted`` (high or worse). 422 VALIDATION_ERROR for
    a window outside 1970..9000 UTC (or end <= start), 404 MODEL_VERSION_NOT_FOUND for a version
    the slot does not list."""
    body = body or DriftCheckBody()
    now = utcnow()
    current = body.current.window("current") if body.current else Window(now - CURRENT_WINDOW, now, "current")
    # current.start is at least EARLIEST (1970), so the subtraction cannot overflow; a baseline
    # reaching before 1970 is refused by Window (422).
    baseline = (
        body.baseline.window("baseline")
        if body.baseline
        else Window(current.start - BASELINE_WINDOW, current.start, "baseline")
    )
    check = container.model_monitoring.check_drift(
        model_id[:100],
        baseline=baseline,
        current=current,
        version=body.version,
        features=body.features,
        min_samples=body.min_samples,
    )
    return JSONResponse({"success": True, "drift": check}, status_code=201)


@router.get("/{model_id}/drift", name="model_drift", response_model=None)
def drift_history(
    container: ContainerDep,
    model_id: str,
    version: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> dict[str, Any]:
    """Stored drift checks (the hourly upkeep's and requested ones), newest first."""
    return {
        "success": True,
        "checks": container.model_monitoring.drift_history(model_id[:100], version, limit),
    }


@router.get("/{model_id}/performance", name="model_performance", response_model=None)
def performance(
    container: ContainerDep,
    model_id: str,
    version: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    window_hours: Annotated[
        float | None, Query(gt=0, le=24 * 90, description="Roll up the last N hours now (stored), then list")
    ] = None,
) -> dict[str, Any]:
    """Stored roll-ups (hourly upkeep): inferences, mean and p95 latency, served rate, accuracy from
    feedback, detection rate; ``window_hours`` first rolls up that many past hours now."""
    monitoring = container.model_monitoring
    computed: list[dict[str, Any]] | None = None
    if window_hours is not None:
        now = utcnow()
        computed = monitoring.rollup_performance(
            Window(now - timedelta(hours=window_hours), now), model_id[:100]
        )
    history = monitoring.performance_history(model_id[:100], version, limit)
    return {"success": True, "computed": computed, "metrics": history}
