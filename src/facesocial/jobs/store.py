"""``core.jobs``: the one source of truth of every job, on SQLite and PostgreSQL alike.

Every state change is one short transaction whose ``WHERE`` names the state it expects, so two
workers, a worker and the API, or a worker and the sweep never both win: a claim takes a
*pending* job, a worker's writes need *its* lease (``worker_id``) on a *processing* job, and the
sweep only moves jobs whose lease has run out. PostgreSQL additionally claims with
``SELECT ... FOR UPDATE SKIP LOCKED``; SQLite serialises writers (``BEGIN IMMEDIATE``, see
store/db.py), and the conditional ``UPDATE``'s row count is checked on both.

A terminal job whose ``lease_expires_at`` is still set has not had its kind's ``on_end`` yet:
the runner clears it after ``on_end``; if the runner died first, the sweep finds it once the
lease has run out (a job cancelled while pending owes it at once).

Times are this process's UTC clock (:func:`facesocial.store.types.utcnow`): hosts running
workers must keep their clocks in step (NTP) to within a small part of ``lease_seconds``.
"""

from __future__ import annotations

import builtins
import json
import math
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import ColumnElement, and_, case, delete, func, or_, select, update
from sqlalchemy.orm import Session

from facesocial import errors
from facesocial.jobs.port import PRIORITY_MAX, PRIORITY_MIN, JobStatus, JobView, NewJob
from facesocial.store.db import Database
from facesocial.store.tables import (
    JOB_CANCELLED,
    JOB_COMPLETED,
    JOB_FAILED,
    JOB_PENDING,
    JOB_PROCESSING,
    JOB_TERMINAL,
    Job,
)
from facesocial.store.types import utcnow

# error_code of a job whose every attempt's worker stopped renewing its lease (died, hung).
ABANDONED = "JOB_ABANDONED"
# error_code of a job whose handler raised something other than a FaceSocialError max_attempts times.
INTERNAL_ERROR = "INTERNAL_ERROR"
JOB_ID_PATTERN = re.compile(r"^job_[0-9a-f]{32}$")
MAX_CALLBACK_URL = 2048
# A job committed this recently and never announced is probably being announced right now.
_ANNOUNCE_GRACE = timedelta(seconds=5)
# Ids per ``IN (...)`` list: well under SQLite's bound parameter limit.
_IN_CHUNK = 500


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    """A job this worker now holds the lease of (``attempt`` is 1 on the first run)."""

    job_id: str
    kind: str
    payload: Mapping[str, Any]
    priority: int
    attempt: int
    max_attempts: int
    worker_id: str


@dataclass(frozen=True, slots=True)
class EndedJob:
    """A terminal job whose kind's ``on_end`` is still owed."""

    job_id: str
    kind: str
    status: JobStatus


@dataclass(frozen=True, slots=True)
class SweepReport:
    """What one :meth:`JobStore.sweep` did and what its caller still has to do."""

    requeued: list[str]  # expired leases given back to the queue
    abandoned: list[str]  # expired leases on the last attempt: failed JOB_ABANDONED
    to_dispatch: list[tuple[str, int]]  # (job_id, priority) to announce (again) to the workers
    owed_on_end: list[EndedJob]  # terminal jobs whose on_end is due


@dataclass(frozen=True, slots=True)
class JobPage:
    jobs: list[JobView]
    total: int  # jobs matching the filter, all pages


@dataclass(frozen=True, slots=True)
class CallbackDue:
    """A completion callback this process has taken the next delivery attempt of."""

    job_id: str
    kind: str
    status: JobStatus
    result: Mapping[str, Any] | None
    error_code: str | None
    error_message: str | None
    completed_at: datetime | None
    url: str
    tenant_id: uuid.UUID
    api_key_id: uuid.UUID | None
    attempt: int  # 1 for the first delivery


class JobStore:
    """All reads and writes of ``core.jobs``.

    Raises:
        ValidationFailedError: :meth:`add` with a priority outside 1..10 or a bad kind/payload.
        JobNotFoundError: :meth:`view`/:meth:`cancel` of an unknown job or another tenant's.
        JobNotCancellableError: :meth:`cancel` of a job that has already ended (HTTP 409).
    """

    def __init__(self, database: Database) -> None:
        self._db = database

    # --- submitting and reading ---------------------------------------------------------------

    def add_with_file(
        self, session: Session, job: NewJob, max_attempts: int, spool_dir: Path, upload: Path, name: str
    ) -> str:
        """:meth:`add`, and move ``upload`` to ``spool_dir/<job_id>/<name>`` before the caller commits.

        The file is under the job's folder before the commit: a crash right after the commit
        leaves a runnable job; a crash before it leaves a folder that no job row names, which the
        spool sweep (jobs/spool.py) removes once ``jobs.orphan_grace_seconds`` have passed.
        Raises what :meth:`add` raises, and ``OSError`` if the move fails.
        """
        job_id = self.add(session, job, max_attempts)
        folder = spool_dir / job_id
        folder.mkdir(parents=True, exist_ok=False)
        upload.replace(folder / name)
        return job_id

    def add(self, session: Session, job: NewJob, max_attempts: int) -> str:
        """Add a pending job to ``session`` (the caller commits, then dispatches); its ``job_id``."""
        if isinstance(job.priority, bool) or not PRIORITY_MIN <= job.priority <= PRIORITY_MAX:
            raise errors.ValidationFailedError(
                f"priority must be an integer from {PRIORITY_MIN} to {PRIORITY_MAX} (higher is more urgent)",
                fields=["priority"],
            )
        if not job.kind or len(job.kind) > 50:
            raise errors.ValidationFailedError("a job kind is 1 to 50 characters", fields=["kind"])
        if not 1 <= max_attempts <= 20:
            raise errors.ValidationFailedError("max_attempts must be from 1 to 20", fields=["max_attempts"])
        if job.callback_url is not None and len(job.callback_url) > MAX_CALLBACK_URL:
            raise errors.InvalidCallbackUrlError(f"callback_url is longer than {MAX_CALLBACK_URL} characters")
        try:
            payload = json.loads(json.dumps(dict(job.payload), allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise errors.ValidationFailedError("a job payload must be plain JSON (ids, numbers)") from exc
        job_id = f"job_{uuid.uuid4().hex}"
        session.add(
            Job(
                job_id=job_id,
                tenant_id=job.tenant_id,
                api_key_id=job.api_key_id,
                kind=job.kind,
                status=JOB_PENDING,
                priority=job.priority,
                payload=payload,
                progress_percentage=0.0,
                attempts=0,
                max_attempts=max_attempts,
                callback_url=job.callback_url,
                callback_attempts=0,
            )
        )
        return job_id

    def view(self, job_id: str, tenant_id: uuid.UUID) -> JobView:
        """The job, if it belongs to ``tenant_id``; JobNotFoundError otherwise (even if it exists)."""
        with self._db.session(readonly=True) as session:
            row = _tenant_row(session, job_id, tenant_id)
            if row is None:
                raise errors.JobNotFoundError()
            return _view(row)

    def get(self, job_id: str) -> JobView | None:
        """Any tenant's job (operators: ``facesocial jobs show``); None when unknown."""
        if not JOB_ID_PATTERN.match(job_id):
            return None
        with self._db.session(readonly=True) as session:
            row = session.scalar(select(Job).where(Job.job_id == job_id))
            return _view(row) if row is not None else None

    def list(
        self, tenant_id: uuid.UUID, status: JobStatus | None = None, limit: int = 50, offset: int = 0
    ) -> JobPage:
        """This tenant's jobs, newest first; ``limit`` 1..1000, ``offset`` >= 0."""
        if not 1 <= limit <= 1000 or offset < 0:
            raise errors.ValidationFailedError("limit is 1..1000 and offset >= 0", fields=["limit", "offset"])
        where: list[ColumnElement[bool]] = [Job.tenant_id == tenant_id]
        if status is not None:
            where.append(Job.status == status)
        with self._db.session(readonly=True) as session:
            total = int(session.scalar(select(func.count()).select_from(Job).where(*where)) or 0)
            rows = session.scalars(
                select(Job).where(*where).order_by(Job.created_at.desc(), Job.id).limit(limit).offset(offset)
            ).all()
            return JobPage([_view(row) for row in rows], total)

    def cancel(self, job_id: str, tenant_id: uuid.UUID) -> JobView:
        """Cancel this tenant's job: pending → cancelled at once; processing → cancelled, and its
        handler stops at its next progress report; ended → JobNotCancellableError (409)."""
        now = utcnow()
        with self._db.session() as session:
            row = _tenant_row(session, job_id, tenant_id, lock=True)
            if row is None:
                raise errors.JobNotFoundError()
            if row.status in JOB_TERMINAL:
                raise errors.JobNotCancellableError(f"The job has already ended ({row.status})")
            values: dict[str, Any] = {
                "status": JOB_CANCELLED,
                "completed_at": now,
                "estimated_completion": None,
                "callback_next_at": now if row.callback_url else None,
            }
            if row.status == JOB_PENDING:
                # Nothing runs it: its on_end is owed now (the runner or the next sweep runs it).
                values["lease_expires_at"] = now
            # processing: the worker keeps its lease, sees the cancel at its next report and then
            # runs on_end itself; if it died, the sweep does once the lease has run out.
            changed = _rowcount(
                session.execute(
                    update(Job).where(Job.id == row.id, Job.status == row.status).values(**values)
                )
            )
            if changed != 1:  # pragma: no cover - the row lock / write lock rules this out
                raise errors.ServiceUnavailableError("The job changed while it was being cancelled; retry")
            session.flush()
            session.refresh(row)
            return _view(row)

    # --- workers ------------------------------------------------------------------------------

    def claim_next(self, worker_id: str, lease_seconds: float, kinds: Sequence[str]) -> ClaimedJob | None:
        """Take the most urgent pending job (highest priority, then oldest) of one of ``kinds``."""
        if not kinds:
            return None
        query = (
            select(Job.id)
            .where(Job.status == JOB_PENDING, Job.kind.in_(list(kinds)))
            .order_by(Job.priority.desc(), Job.created_at, Job.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        with self._db.session() as session:
            pk = session.scalar(query)
            return self._take(session, pk, worker_id, lease_seconds) if pk is not None else None

    def claim(
        self, job_id: str, worker_id: str, lease_seconds: float, kinds: Sequence[str]
    ) -> ClaimedJob | None:
        """Take this job if it is still pending (a duplicate or late delivery gets None)."""
        if not kinds or not JOB_ID_PATTERN.match(job_id):
            return None
        query = (
            select(Job.id)
            .where(Job.job_id == job_id, Job.status == JOB_PENDING, Job.kind.in_(list(kinds)))
            # Wait for the row, never skip it: the API marks a job dispatched (a short UPDATE)
            # right after sending its message, so a fast worker meets that lock; skipping would
            # leave the job pending until the sweep announced it again, minutes later.
            .with_for_update()
        )
        with self._db.session() as session:
            pk = session.scalar(query)
            return self._take(session, pk, worker_id, lease_seconds) if pk is not None else None

    @staticmethod
    def _take(session: Session, pk: uuid.UUID, worker_id: str, lease_seconds: float) -> ClaimedJob | None:
        now = utcnow()
        changed = _rowcount(
            session.execute(
                update(Job)
                .where(Job.id == pk, Job.status == JOB_PENDING)
                .values(
                    status=JOB_PROCESSING,
                    attempts=Job.attempts + 1,
                    worker_id=worker_id[:100],
                    started_at=now,
                    lease_expires_at=now + timedelta(seconds=lease_seconds),
                    progress_percentage=0.0,
                    estimated_completion=None,
                )
            )
        )
        if changed != 1:
            return None
        row = session.execute(
            select(Job.job_id, Job.kind, Job.payload, Job.priority, Job.attempts, Job.max_attempts).where(
                Job.id == pk
            )
        ).one()
        return ClaimedJob(
            row.job_id,
            row.kind,
            row.payload or {},
            row.priority,
            row.attempts,
            row.max_attempts,
            worker_id[:100],
        )

    def progress(
        self,
        job_id: str,
        worker_id: str,
        fraction: float,
        eta_seconds: float | None,
        lease_seconds: float,
    ) -> bool:
        """Record progress (``fraction`` 0..1, ``eta_seconds`` >= 0 or None) and renew the lease.

        Returns True when the handler must stop: the job was cancelled, or its lease ran out and
        it was given to another worker (a late write of this one must not clobber that run).
        """
        now = utcnow()
        fraction = min(1.0, max(0.0, fraction)) if math.isfinite(fraction) else 0.0
        eta = None
        if eta_seconds is not None and math.isfinite(eta_seconds) and eta_seconds >= 0:
            eta = now + timedelta(seconds=min(eta_seconds, 366 * 24 * 3600.0))
        with self._db.session() as session:
            changed = _rowcount(
                session.execute(
                    update(Job)
                    .where(_held_by(job_id, worker_id))
                    .values(
                        progress_percentage=round(fraction * 100.0, 2),
                        estimated_completion=eta,
                        lease_expires_at=now + timedelta(seconds=lease_seconds),
                    )
                )
            )
        return changed != 1

    def complete(self, job_id: str, worker_id: str, result: Mapping[str, Any] | None) -> JobStatus | None:
        """Mark this worker's job completed with ``result`` (JSON-able).

        Returns the status whose ``on_end`` this worker now owes: ``completed``, ``cancelled`` (it
        was cancelled while it ran), or None when the job is no longer this worker's.
        """
        return self._finish(
            job_id,
            worker_id,
            status=JOB_COMPLETED,
            result=dict(result) if result is not None else None,
            progress_percentage=100.0,
            error_code=None,
            error_message=None,
        )

    def fail(self, job_id: str, worker_id: str, code: str, message: str) -> JobStatus | None:
        """Mark this worker's job failed with an error code and message (see :meth:`complete`)."""
        return self._finish(job_id, worker_id, status=JOB_FAILED, error_code=code[:50], error_message=message)

    def retry_or_fail(self, job_id: str, worker_id: str, code: str, message: str) -> JobStatus | None:
        """Give the job back to the queue if it has attempts left (returns ``pending``), else fail it.

        A requeued job is announced again by the next sweep (Celery) or found by the polling
        workers (in-process).
        """
        with self._db.session() as session:
            changed = _rowcount(
                session.execute(
                    update(Job)
                    .where(_held_by(job_id, worker_id), Job.attempts < Job.max_attempts)
                    .values(_requeue_values())
                )
            )
        if changed == 1:
            return "pending"
        return self.fail(job_id, worker_id, code, message)

    def acknowledge_cancel(self, job_id: str, worker_id: str) -> JobStatus | None:
        """The handler stopped on a cancel: ``cancelled`` if its on_end is this worker's to run."""
        with self._db.session(readonly=True) as session:
            row = session.execute(
                select(Job.status, Job.worker_id, Job.lease_expires_at).where(Job.job_id == job_id)
            ).first()
        if row is None or row.status != JOB_CANCELLED or row.worker_id != worker_id:
            return None
        return "cancelled" if row.lease_expires_at is not None else None

    def _finish(self, job_id: str, worker_id: str, *, status: str, **values: Any) -> JobStatus | None:
        now = utcnow()
        with self._db.session() as session:
            changed = _rowcount(
                session.execute(
                    update(Job)
                    .where(_held_by(job_id, worker_id))
                    .values(
                        status=status,
                        completed_at=now,
                        estimated_completion=None,
                        # The lease stays until on_end has run (end_done clears it).
                        callback_next_at=case((Job.callback_url.is_not(None), now), else_=None),
                        **values,
                    )
                )
            )
        if changed == 1:
            return cast(JobStatus, status)
        return self.acknowledge_cancel(job_id, worker_id)

    def end_done(self, job_id: str) -> None:
        """The kind's on_end has run for this terminal job: nothing is owed any more."""
        with self._db.session() as session:
            session.execute(
                update(Job)
                .where(Job.job_id == job_id, Job.status.in_(JOB_TERMINAL), Job.lease_expires_at.is_not(None))
                .values(lease_expires_at=None)
            )

    def owed_end(self, job_id: str, now: datetime | None = None) -> EndedJob | None:
        """This job, if it is terminal and its on_end is due (cancelled while pending, say)."""
        now = now or utcnow()
        with self._db.session(readonly=True) as session:
            row = session.execute(
                select(Job.job_id, Job.kind, Job.status).where(Job.job_id == job_id, _owes_end(now))
            ).first()
        return EndedJob(row.job_id, row.kind, cast(JobStatus, row.status)) if row is not None else None

    # --- the sweep and retention -------------------------------------------------------------

    def sweep(
        self, now: datetime | None = None, redispatch_seconds: float = 600.0, limit: int = 500
    ) -> SweepReport:
        """Requeue (or fail ``JOB_ABANDONED``) processing jobs whose lease ran out; list what to announce.

        ``to_dispatch``: pending jobs never announced (older than a few seconds), requeued ones,
        and ones announced more than ``redispatch_seconds`` ago (a lost broker message); they are
        marked announced now. ``owed_on_end``: terminal jobs whose on_end is due.
        """
        now = now or utcnow()
        requeued: list[str] = []
        abandoned: list[str] = []
        with self._db.session() as session:
            expired = session.execute(
                select(Job.id, Job.job_id, Job.attempts, Job.max_attempts)
                .where(Job.status == JOB_PROCESSING, Job.lease_expires_at < now)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            for row in expired:
                # Not renewed meanwhile by a worker that was only slow.
                still_expired = and_(
                    Job.id == row.id, Job.status == JOB_PROCESSING, Job.lease_expires_at < now
                )
                if row.attempts < row.max_attempts:
                    if _rowcount(session.execute(update(Job).where(still_expired).values(_requeue_values()))):
                        requeued.append(row.job_id)
                    continue
                message = (
                    f"The worker running the job stopped responding on each of its {row.attempts} attempts"
                )
                values = {
                    "status": JOB_FAILED,
                    "error_code": ABANDONED,
                    "error_message": message,
                    "completed_at": now,
                    "estimated_completion": None,
                    "lease_expires_at": now,  # its on_end is owed now
                    "callback_next_at": case((Job.callback_url.is_not(None), now), else_=None),
                }
                if _rowcount(session.execute(update(Job).where(still_expired).values(values))):
                    abandoned.append(row.job_id)
        with self._db.session() as session:
            stale = now - timedelta(seconds=redispatch_seconds)
            due = session.execute(
                select(Job.id, Job.job_id, Job.priority)
                .where(
                    Job.status == JOB_PENDING,
                    or_(
                        and_(Job.dispatched_at.is_(None), Job.created_at < now - _ANNOUNCE_GRACE),
                        Job.dispatched_at < stale,
                        # requeued: dispatched_at was cleared, created_at may be recent
                        and_(Job.dispatched_at.is_(None), Job.attempts > 0),
                    ),
                )
                .order_by(Job.priority.desc(), Job.created_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            if due:
                session.execute(update(Job).where(Job.id.in_([r.id for r in due])).values(dispatched_at=now))
            to_dispatch = [(r.job_id, r.priority) for r in due]
        with self._db.session(readonly=True) as session:
            owed = session.execute(
                select(Job.job_id, Job.kind, Job.status).where(_owes_end(now)).limit(limit)
            ).all()
        return SweepReport(
            requeued,
            abandoned,
            to_dispatch,
            [EndedJob(r.job_id, r.kind, cast(JobStatus, r.status)) for r in owed],
        )

    def mark_dispatched(self, job_id: str, dispatched: bool = True) -> None:
        """Record that the job was announced to the broker (or that announcing it failed)."""
        with self._db.session() as session:
            session.execute(
                update(Job)
                .where(Job.job_id == job_id, Job.status == JOB_PENDING)
                .values(dispatched_at=utcnow() if dispatched else None)
            )

    def unfinished(self, job_ids: Sequence[str]) -> builtins.set[str]:
        """Those of ``job_ids`` that name a pending or processing job (the spool sweep keeps their
        folders); ids that are not job ids, unknown jobs and ended ones are left out."""
        wanted = sorted({j for j in job_ids if JOB_ID_PATTERN.match(j)})
        found: builtins.set[str] = builtins.set()
        with self._db.session(readonly=True) as session:
            for start in range(0, len(wanted), _IN_CHUNK):
                chunk = wanted[start : start + _IN_CHUNK]
                found.update(
                    session.scalars(
                        select(Job.job_id).where(Job.job_id.in_(chunk), Job.status.not_in(JOB_TERMINAL))
                    )
                )
        return found

    def purge(self, older_than_days: int, now: datetime | None = None) -> int:
        """Delete jobs that ended more than ``older_than_days`` ago (on_end and callback settled)."""
        if older_than_days < 1:
            raise ValueError("older_than_days must be at least 1")
        cutoff = (now or utcnow()) - timedelta(days=older_than_days)
        with self._db.session() as session:
            return _rowcount(
                session.execute(
                    delete(Job).where(
                        Job.status.in_(JOB_TERMINAL),
                        Job.completed_at < cutoff,
                        Job.lease_expires_at.is_(None),
                        Job.callback_next_at.is_(None),
                    )
                )
            )

    # --- completion callbacks (jobs/callbacks.py) ---------------------------------------------

    def due_callbacks(self, now: datetime | None = None, limit: int = 100) -> builtins.list[str]:
        """Jobs whose callback delivery is due (first try or a retry after its back-off)."""
        now = now or utcnow()
        with self._db.session(readonly=True) as session:
            return list(
                session.scalars(
                    select(Job.job_id)
                    .where(Job.callback_next_at <= now, Job.callback_delivered_at.is_(None))
                    .order_by(Job.callback_next_at)
                    .limit(limit)
                )
            )

    def take_callback(self, job_id: str, hold_seconds: float) -> CallbackDue | None:
        """Take the due delivery attempt of this job's callback (None: not due, or taken elsewhere).

        The attempt is held for ``hold_seconds`` (longer than one POST may take): another
        deliverer sees it as not yet due, and a crash mid-POST leaves it due again afterwards.
        """
        now = utcnow()
        with self._db.session() as session:
            changed = _rowcount(
                session.execute(
                    update(Job)
                    .where(
                        Job.job_id == job_id,
                        Job.callback_next_at <= now,
                        Job.callback_delivered_at.is_(None),
                        Job.callback_url.is_not(None),
                    )
                    .values(callback_next_at=now + timedelta(seconds=hold_seconds))
                )
            )
            if changed != 1:
                return None
            row = session.scalars(select(Job).where(Job.job_id == job_id)).one()
            return CallbackDue(
                row.job_id,
                row.kind,
                cast(JobStatus, row.status),
                row.result,
                row.error_code,
                row.error_message,
                row.completed_at,
                str(row.callback_url),
                row.tenant_id,
                row.api_key_id,
                row.callback_attempts + 1,
            )

    def record_callback(
        self, job_id: str, *, delivered: bool, error: str | None, next_at: datetime | None
    ) -> None:
        """Record one delivery attempt: delivered, or failed with a retry at ``next_at`` (None: gave up)."""
        now = utcnow()
        values: dict[str, Any] = {"callback_attempts": Job.callback_attempts + 1, "callback_error": error}
        values.update(
            {"callback_delivered_at": now, "callback_next_at": None}
            if delivered
            else {"callback_next_at": next_at}
        )
        with self._db.session() as session:
            session.execute(update(Job).where(Job.job_id == job_id).values(values))


# --- helpers -------------------------------------------------------------------------------------


def _tenant_row(session: Session, job_id: str, tenant_id: uuid.UUID, *, lock: bool = False) -> Job | None:
    if not JOB_ID_PATTERN.match(job_id):
        return None
    query = select(Job).where(Job.job_id == job_id, Job.tenant_id == tenant_id)
    if lock:
        query = query.with_for_update()
    return session.scalar(query)


def _held_by(job_id: str, worker_id: str) -> ColumnElement[bool]:
    """The job is running under this worker's lease."""
    return and_(Job.job_id == job_id, Job.worker_id == worker_id[:100], Job.status == JOB_PROCESSING)


def _owes_end(now: datetime) -> ColumnElement[bool]:
    return and_(Job.status.in_(JOB_TERMINAL), Job.lease_expires_at.is_not(None), Job.lease_expires_at <= now)


def _requeue_values() -> dict[str, Any]:
    # Error fields are cleared: a pending job shows no error (the last one was logged).
    return {
        "status": JOB_PENDING,
        "worker_id": None,
        "lease_expires_at": None,
        "dispatched_at": None,
        "progress_percentage": 0.0,
        "estimated_completion": None,
        "error_code": None,
        "error_message": None,
    }


def _rowcount(result: Any) -> int:
    return int(result.rowcount)


def _view(row: Job) -> JobView:
    return JobView(
        job_id=row.job_id,
        kind=row.kind,
        status=cast(JobStatus, row.status),
        priority=row.priority,
        progress_percentage=float(row.progress_percentage or 0.0),
        estimated_completion=row.estimated_completion,
        created_at=row.created_at,
        started_at=row.started_at,
        completed_at=row.completed_at,
        attempts=row.attempts,
        max_attempts=row.max_attempts,
        error_code=row.error_code,
        error_message=row.error_message,
        result=row.result,
        callback_url=row.callback_url,
        callback_delivered_at=row.callback_delivered_at,
        callback_attempts=row.callback_attempts,
    )
