"""``/api/v1/jobs``: the caller's asynchronous jobs (status, progress, result), cancel, callback secret.

Tenants see only their own jobs: another tenant's job id answers 404 ``JOB_NOT_FOUND``, exactly
like an unknown one. States, priorities, retries and callbacks: docs/jobs.md.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import Field

from facesocial import errors
from facesocial.api.deps import CallerDep, ContainerDep, rate_limited
from facesocial.api.openapi import error_responses
from facesocial.api.routing import ApiRoute
from facesocial.api.schemas import Public, Success
from facesocial.jobs.callbacks import JOB_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER

router = APIRouter(
    prefix="/api/v1/jobs",
    tags=["jobs"],
    route_class=ApiRoute,
    redirect_slashes=False,
    dependencies=[Depends(rate_limited("jobs"))],
)

StatusFilter = Literal["pending", "processing", "completed", "failed", "cancelled"]


class JobError(Public):
    code: str = Field(description="A code of the API's error list, or JOB_ABANDONED (its workers died)")
    message: str


class JobCallback(Public):
    url: str
    attempts: int = Field(description="Deliveries tried so far")
    delivered_at: str | None = Field(description="When a 2xx answer came (ISO 8601), or null")


class Job(Public):
    job_id: str = Field(description="job_<32 hex>")
    kind: str = Field(description="e.g. deepfake.video, diagnostics.probe")
    status: StatusFilter
    priority: int = Field(ge=1, le=10, description="10 is the most urgent")
    progress_percentage: float = Field(ge=0, le=100)
    estimated_completion: str | None = Field(description="ISO 8601, while processing")
    created_at: str
    started_at: str | None = Field(description="Start of the current (or last) attempt")
    completed_at: str | None
    attempts: int = Field(description="Runs started so far")
    max_attempts: int
    error: JobError | None
    result: dict[str, Any] | None = Field(description="The kind's result once completed")
    callback: JobCallback | None


class JobResponse(Success):
    job: Job


class JobList(Success):
    total: int = Field(description="The caller's jobs matching the filter, all pages")
    jobs: list[Job]


class CallbackSecret(Success):
    secret: str = Field(description="64 hex characters; the HMAC key is its UTF-8 bytes. Keep it private")
    algorithm: Literal["HMAC-SHA256"] = "HMAC-SHA256"
    signature_header: str
    timestamp_header: str
    job_id_header: str
    signed_payload: str = Field(description="What the HMAC covers: the timestamp header, a dot, the raw body")


@router.get("", name="list_jobs", response_model=None, responses={200: {"model": JobList}})
def list_jobs(
    container: ContainerDep,
    caller: CallerDep,
    status: Annotated[StatusFilter | None, Query(description="Only jobs in this state")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> dict[str, Any]:
    """The caller's jobs, newest first."""
    page = container.job_store.list(caller.tenant_id, status, limit, offset)
    return {"success": True, "total": page.total, "jobs": [view.as_dict() for view in page.jobs]}


# Declared before /{job_id}: "callback-secret" is not a job id.
@router.get(
    "/callback-secret",
    name="callback_secret",
    response_model=None,
    responses={200: {"model": CallbackSecret}},
)
def callback_secret(container: ContainerDep, caller: CallerDep) -> dict[str, Any]:
    """The secret that signs this caller's job callbacks (each API key has its own)."""
    return {
        "success": True,
        "secret": container.callbacks.secret_for(caller.tenant_id, caller.api_key_id),
        "algorithm": "HMAC-SHA256",
        "signature_header": SIGNATURE_HEADER,
        "timestamp_header": TIMESTAMP_HEADER,
        "job_id_header": JOB_ID_HEADER,
        # What the HMAC covers: the timestamp header's value, a dot, then the raw body bytes.
        "signed_payload": "{timestamp}.{body}",
    }


@router.get(
    "/{job_id}",
    name="get_job",
    response_model=None,
    responses={200: {"model": JobResponse}, **error_responses(errors.JobNotFoundError)},
)
def get_job(container: ContainerDep, caller: CallerDep, job_id: str) -> dict[str, Any]:
    """One of the caller's jobs: status, progress, estimated completion, result or error."""
    return {"success": True, "job": container.job_store.view(job_id, caller.tenant_id).as_dict()}


@router.delete(
    "/{job_id}",
    name="cancel_job",
    response_model=None,
    responses={
        200: {"model": JobResponse},
        **error_responses(errors.JobNotFoundError, errors.JobNotCancellableError),
    },
)
def cancel_job(container: ContainerDep, caller: CallerDep, job_id: str) -> dict[str, Any]:
    """Cancel a pending or running job (a running one stops at its next progress report)."""
    return {"success": True, "job": container.job_runner.cancel(job_id, caller.tenant_id).as_dict()}
