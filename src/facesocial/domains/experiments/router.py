"""``/api/v1/experiments``: A/B experiments between two versions of a model slot.

Creating, starting, stopping and reading experiments and their results is the installation
operator's (an experiment routes every tenant's traffic, and its results count every tenant's
inferences). Feedback is any authenticated caller's, on its own inferences only.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from facesocial import errors
from facesocial.api.deps import CallerDep, ContainerDep, rate_limited
from facesocial.api.openapi import error_responses
from facesocial.api.routing import ApiRoute
from facesocial.domains.experiments.service import ExperimentSpec, FeedbackItem
from facesocial.services.principal import Principal

_MAX_PAGE = 100_000


def require_operator(caller: CallerDep) -> Principal:
    if not caller.is_operator:
        raise errors.ForbiddenError(
            "Experiments route every tenant's traffic and count every tenant's inferences: they need "
            "the operator's API key (`facesocial keys create --role operator`)"
        )
    return caller


_OPERATOR = [Depends(require_operator), Depends(rate_limited("experiments"))]
_NOT_FOUND = error_responses(errors.ForbiddenError, errors.ExperimentNotFoundError)

router = APIRouter(
    prefix="/api/v1/experiments",
    tags=["experiments"],
    route_class=ApiRoute,
    redirect_slashes=False,
)

Metric = Literal["accuracy", "confidence", "latency_ms"]


def _default_metrics() -> list[Metric]:
    return ["accuracy", "latency_ms"]


class ExperimentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    model_id: str = Field(min_length=1, max_length=100, description="The slot, e.g. face_detection")
    baseline_version: str = Field(
        min_length=1, max_length=64, description="Model tag, e.g. retinaface_mnet025@1.0"
    )
    challenger_version: str = Field(min_length=1, max_length=64)
    traffic_split_percent: float = Field(
        default=50.0, ge=1, le=99, allow_inf_nan=False, description="Share of subjects on the challenger"
    )
    traffic_split_method: Literal["random", "user", "session"] = Field(
        default="random",
        description="random: each request; user: the caller's key/account; session: X-Session-Id (then user)",
    )
    minimum_sample_size: int = Field(
        default=1000, ge=1, le=100_000_000, description="Per arm, of the primary metric's observations"
    )
    confidence_level: float = Field(default=0.95, ge=0.8, le=0.999, allow_inf_nan=False)
    success_metrics: list[Metric] = Field(
        default_factory=_default_metrics,
        min_length=1,
        max_length=3,
        description="Ordered; the first with data in both arms is the primary metric",
    )
    success_thresholds: dict[Metric, Annotated[float, Field(ge=0, le=1e6, allow_inf_nan=False)]] = Field(
        default_factory=dict,
        description="Equivalence margins: absolute; latency_ms as a fraction of the baseline",
    )
    duration_days: int = Field(default=7, ge=1, le=365)

    def spec(self) -> ExperimentSpec:
        return ExperimentSpec(
            name=self.name,
            description=self.description,
            model_id=self.model_id,
            baseline_version=self.baseline_version,
            challenger_version=self.challenger_version,
            traffic_split_percent=self.traffic_split_percent,
            traffic_split_method=self.traffic_split_method,
            minimum_sample_size=self.minimum_sample_size,
            confidence_level=self.confidence_level,
            success_metrics=tuple(self.success_metrics),
            success_thresholds={str(k): v for k, v in self.success_thresholds.items()},
            duration_days=self.duration_days,
        )


class StartBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    force: bool = Field(
        default=False,
        description="Start although an arm's gallery lacks enrolled users (else 409 GALLERY_NOT_MIGRATED)",
    )


class FeedbackBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inference_id: str = Field(
        min_length=1, max_length=100, description="serving.inference_id of the response being judged"
    )
    correct: bool | None = Field(default=None, description="Was the answer right?")
    value: float | None = Field(
        default=None, ge=-1e8, le=1e8, allow_inf_nan=False, description="A numeric outcome (optional)"
    )


@router.post(
    "",
    name="create_experiment",
    response_model=None,
    status_code=201,
    dependencies=_OPERATOR,
    responses=error_responses(
        errors.ForbiddenError,
        errors.ModelNotFoundError,
        errors.ModelVersionNotFoundError,
        errors.InvalidExperimentError,
        errors.IllegalStageTransitionError,
    ),
)
def create_experiment(container: ContainerDep, caller: CallerDep, body: ExperimentCreate) -> JSONResponse:
    """A draft experiment on a slot: both versions must be listed in it (GET /api/v1/models) and
    neither archived (409 ILLEGAL_STAGE_TRANSITION)."""
    experiment = container.experiments.create(body.spec(), created_by=caller.account_id)
    return JSONResponse({"success": True, "experiment": experiment}, status_code=201)


@router.get("", name="list_experiments", response_model=None, dependencies=_OPERATOR)
def list_experiments(
    container: ContainerDep,
    page: Annotated[int, Query(ge=1, le=_MAX_PAGE)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
    status: Annotated[Literal["draft", "running", "completed", "stopped"] | None, Query()] = None,
    model_id: Annotated[str | None, Query(max_length=100)] = None,
) -> dict[str, Any]:
    """Experiments newest first (``total`` counts every match of the filters)."""
    return {"success": True, **container.experiments.page(page, page_size, status, model_id)}


@router.get(
    "/{experiment_id}",
    name="get_experiment",
    response_model=None,
    dependencies=_OPERATOR,
    responses=_NOT_FOUND,
)
def get_experiment(container: ContainerDep, experiment_id: str) -> dict[str, Any]:
    """The experiment and its latest stored conclusion."""
    return {"success": True, "experiment": container.experiments.get(experiment_id)}


@router.post(
    "/{experiment_id}/start",
    name="start_experiment",
    response_model=None,
    dependencies=_OPERATOR,
    responses=error_responses(
        errors.ForbiddenError,
        errors.ExperimentNotFoundError,
        errors.InvalidExperimentTransitionError,
        errors.ExperimentConflictError,
        errors.ModelVersionNotInstalledError,
        errors.IllegalStageTransitionError,
        errors.GalleryNotMigratedError,
    ),
)
def start_experiment(
    container: ContainerDep, experiment_id: str, body: StartBody | None = None
) -> dict[str, Any]:
    """draft → running: from now the slot's requests are split between the arms. An embedding
    experiment whose arm's collection lacks enrolled users is 409 GALLERY_NOT_MIGRATED unless
    ``force`` (``facesocial index migrate`` fills it)."""
    force = body.force if body is not None else False
    return {"success": True, "experiment": container.experiments.start(experiment_id, force=force)}


@router.post(
    "/{experiment_id}/stop",
    name="stop_experiment",
    response_model=None,
    dependencies=_OPERATOR,
    responses=error_responses(
        errors.ForbiddenError, errors.ExperimentNotFoundError, errors.InvalidExperimentTransitionError
    ),
)
def stop_experiment(container: ContainerDep, experiment_id: str) -> dict[str, Any]:
    """running → completed (decisive conclusion) or stopped; the final results are returned."""
    return {"success": True, **container.experiments.stop(experiment_id)}


@router.get(
    "/{experiment_id}/results",
    name="experiment_results",
    response_model=None,
    dependencies=_OPERATOR,
    responses=_NOT_FOUND,
)
def experiment_results(container: ContainerDep, experiment_id: str) -> dict[str, Any]:
    """Per arm: sample size, subjects, feedback, metrics with intervals; per metric: the test
    (two-proportion z for accuracy, Welch's t for confidence and latency_ms), difference
    challenger − baseline with its interval, p-value, significance; and the conclusion
    (deploy_challenger | keep_baseline | run_longer). Each call on a draft or running experiment
    is stored; a finished one answers its final results (figures up to its end, the conclusion
    stored at the stop, ``final: true``) and stores nothing."""
    return {"success": True, **container.experiments.results(experiment_id)}


@router.post(
    "/{experiment_id}/feedback",
    name="experiment_feedback",
    response_model=None,
    dependencies=[Depends(rate_limited("experiments"))],
    responses=error_responses(
        errors.ExperimentNotFoundError,
        errors.InferenceNotFoundError,
        errors.FeedbackConflictError,
        errors.InvalidExperimentTransitionError,
        errors.ValidationFailedError,
    ),
)
def experiment_feedback(
    container: ContainerDep,
    caller: CallerDep,
    experiment_id: str,
    body: Annotated[FeedbackBody | list[FeedbackBody], Body()],
) -> dict[str, Any]:
    """Outcomes of the caller's own inferences (one object, or a list of at most 1000): all are
    stored or none. A repeat of a stored outcome is accepted (``duplicate``); a different one is
    409 FEEDBACK_CONFLICT; an inference that is not the caller's or not of this experiment is 404;
    an experiment that is not running (its verdict is final once stopped) is 409
    INVALID_EXPERIMENT_TRANSITION."""
    items = body if isinstance(body, list) else [body]
    feedback = [FeedbackItem(i.inference_id, i.correct, i.value) for i in items]
    return {"success": True, **container.experiments.feedback(experiment_id, feedback, caller.tenant_id)}
