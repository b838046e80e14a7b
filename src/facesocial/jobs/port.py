"""The job port: what services see of asynchronous work, whichever adapter runs it.

A service creates the job row in its own transaction (:meth:`JobStore.add` on the session that
also writes its domain row), commits, and only then calls :meth:`JobQueue.dispatch`: a job is
never announced before it exists, and one that was committed but never announced (a crash in
between) is found by the adapters' sweep (pending jobs are claimable from SQL alone).

Handlers take the job's id and payload (ids only) and reload what they need. They report
progress through :class:`JobContext`, which raises :class:`JobCancelled` once the job has
been cancelled, so a cancelled job stops at its next report.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from facesocial.store.types import iso as _iso

JobStatus = Literal["pending", "processing", "completed", "failed", "cancelled"]

PRIORITY_MIN = 1
PRIORITY_MAX = 10
PRIORITY_DEFAULT = 5


class JobCancelled(Exception):  # noqa: N818 - a signal, not an error
    """Raised inside a handler (by :meth:`JobContext.progress`) once its job was cancelled."""


@dataclass(frozen=True, slots=True)
class JobView:
    """A job as ``GET /api/v1/jobs/{job_id}`` shows it (:meth:`as_dict` is that JSON body's ``job``).

    ``progress_percentage`` is 0..100; times are aware UTC datetimes; ``attempts`` counts the runs
    started so far (1..max_attempts); ``error_code`` is a code of facesocial/errors.py, or
    ``JOB_ABANDONED`` when every attempt's worker stopped responding.
    """

    job_id: str
    kind: str
    status: JobStatus
    priority: int
    progress_percentage: float
    estimated_completion: datetime | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    attempts: int
    max_attempts: int
    error_code: str | None
    error_message: str | None
    result: Mapping[str, Any] | None
    callback_url: str | None
    callback_delivered_at: datetime | None
    callback_attempts: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: datetimes as ISO 8601 strings, ``result`` as a plain dict."""
        return {
            "job_id": self.job_id,
            "kind": self.kind,
            "status": self.status,
            "priority": self.priority,
            "progress_percentage": self.progress_percentage,
            "estimated_completion": _iso(self.estimated_completion),
            "created_at": _iso(self.created_at),
            "started_at": _iso(self.started_at),
            "completed_at": _iso(self.completed_at),
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
            "error": (
                {"code": self.error_code, "message": self.error_message}
                if self.error_code is not None
                else None
            ),
            "result": dict(self.result) if self.result is not None else None,
            "callback": (
                {
                    "url": self.callback_url,
                    "attempts": self.callback_attempts,
                    "delivered_at": _iso(self.callback_delivered_at),
                }
                if self.callback_url is not None
                else None
            ),
        }


class JobContext(Protocol):
    job_id: str
    payload: Mapping[str, Any]
    attempt: int  # 1 on the first run, 2 on the first retry, ...
    worker_id: str  # who holds the job's lease (host:pid/thread), for logs and diagnostics

    def progress(self, fraction: float, eta_seconds: float | None = None) -> None:
        """Record progress (0..1) and renew the lease; raises JobCancelled if the job was cancelled."""
        ...


# A handler returns the job's result (JSON-able; shown on GET /jobs/{id}) or raises.
# A FaceSocialError fails the job with its code and message at once (bad input does not get
# better on retry); any other exception is retried until max_attempts, then fails the job.
JobHandler = Callable[[JobContext], Mapping[str, Any] | None]


@dataclass(frozen=True, slots=True)
class JobKind:
    """A registered kind of job: its handler and what to do when the job ends, whatever the end."""

    name: str
    handler: JobHandler
    # Called once the job is terminal (completed, failed or cancelled), after the status commit:
    # removes temporary files, copies the final status onto the service's own row. Also for a
    # job cancelled while pending and one failed by the sweep (its worker died). At least once:
    # a process that dies during on_end has it run again by the sweep, so it must be idempotent.
    on_end: Callable[[str, JobStatus], None] | None = None


class JobQueue(Protocol):
    """Runs jobs: the in-process adapter (threads) or the Celery adapter (workers on Redis)."""

    def dispatch(self, job_id: str, priority: int) -> None:
        """Announce a committed pending job to the workers (never before the commit).

        Never raises: an announcement that is lost (a broker outage) is made again by the sweep.
        """
        ...

    def start(self) -> None:
        """Start whatever runs here (in-process: worker threads and the sweep; Celery: nothing)."""
        ...

    def stop(self) -> None:
        """Stop threads started by :meth:`start`; running jobs lose their lease and are retried."""
        ...


@dataclass(frozen=True, slots=True)
class NewJob:
    """What a service asks for when it creates a job."""

    kind: str
    tenant_id: uuid.UUID
    api_key_id: uuid.UUID | None
    payload: Mapping[str, Any]
    priority: int = PRIORITY_DEFAULT
    callback_url: str | None = None
