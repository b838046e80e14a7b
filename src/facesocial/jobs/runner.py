"""Runs one job: claim it, call its kind's handler with a :class:`JobContext`, record the end.

The same runner serves both adapters: the in-process threads call :meth:`JobRunner.run_next`,
the Celery task calls :meth:`JobRunner.run` with the id it was sent. How a run ends:

* the handler returns → ``completed`` with its result;
* it raises a :class:`~facesocial.errors.FaceSocialError` → ``failed`` at once with that code and
  message (bad input does not get better on retry);
* it raises anything else → logged with its traceback, and the job goes back to the queue until
  ``max_attempts``, then ``failed`` ``INTERNAL_ERROR`` with the exception's class name only (a
  message could carry paths or SQL: it stays in the log);
* :class:`JobCancelled` (its progress report found it cancelled) → stays ``cancelled``.

After the terminal commit the kind's ``on_end`` runs (whatever the end), then the completion
callback is scheduled. A job cancelled while pending, or failed by the sweep, gets its ``on_end``
from :meth:`JobRunner.cancel` and :meth:`JobRunner.sweep`.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from facesocial import errors
from facesocial.jobs.callbacks import CallbackSender
from facesocial.jobs.port import JobCancelled, JobKind, JobStatus, JobView
from facesocial.jobs.spool import sweep_spool
from facesocial.jobs.store import INTERNAL_ERROR, ClaimedJob, EndedJob, JobStore, SweepReport
from facesocial.settings import JobSettings

log = logging.getLogger(__name__)


class _Context:
    """The :class:`~facesocial.jobs.port.JobContext` of one claimed run."""

    def __init__(self, store: JobStore, claimed: ClaimedJob, lease_seconds: float) -> None:
        self.job_id = claimed.job_id
        self.payload: Mapping[str, Any] = claimed.payload
        self.attempt = claimed.attempt
        self.worker_id = claimed.worker_id
        self._store = store
        self._lease_seconds = lease_seconds
        # Reports closer together than this are not written (a handler may report per frame);
        # the lease is still renewed well before it runs out.
        self._min_interval = min(1.0, lease_seconds / 4)
        self._started = time.monotonic()
        self._last_write = float("-inf")

    def progress(self, fraction: float, eta_seconds: float | None = None) -> None:
        """Record progress (0..1) and renew the lease; raises JobCancelled once the job was cancelled."""
        now = time.monotonic()
        if fraction < 1.0 and now - self._last_write < self._min_interval:
            return
        self._last_write = now
        if eta_seconds is None and 0.0 < fraction < 1.0:
            eta_seconds = (now - self._started) * (1.0 - fraction) / fraction
        if self._store.progress(self.job_id, self.worker_id, fraction, eta_seconds, self._lease_seconds):
            raise JobCancelled(self.job_id)


class JobRunner:
    """Claims and runs jobs of the registered ``kinds`` (see the module docstring).

    ``worker_id``: the prefix of the ids this runner claims under (default ``host:pid``, taken at
    claim time so that a forked process gets its own); each thread adds its name.
    ``spool_dir``: when given, every :meth:`sweep` also sweeps it (jobs/spool.py).
    """

    def __init__(
        self,
        store: JobStore,
        kinds: Mapping[str, JobKind],
        callbacks: CallbackSender | None,
        settings: JobSettings,
        worker_id: str | None = None,
        spool_dir: Path | None = None,
    ) -> None:
        self.store = store
        self.spool_dir = spool_dir
        self.kinds = dict(kinds)
        self.callbacks = callbacks
        self.settings = settings
        self._worker_prefix = worker_id

    def worker_id(self) -> str:
        """This thread's worker id: ``host:pid/thread-name`` (at most 100 characters)."""
        prefix = self._worker_prefix or f"{socket.gethostname()}:{os.getpid()}"
        return f"{prefix}/{threading.current_thread().name}"[:100]

    def run(self, job_id: str) -> bool:
        """Run this job if it is still pending (the Celery task); False when it was not."""
        claimed = self.store.claim(job_id, self.worker_id(), self.settings.lease_seconds, list(self.kinds))
        if claimed is None:
            return False
        self._execute(claimed)
        return True

    def run_next(self) -> bool:
        """Run the most urgent pending job, if any (the in-process threads); False when none."""
        claimed = self.store.claim_next(self.worker_id(), self.settings.lease_seconds, list(self.kinds))
        if claimed is None:
            return False
        self._execute(claimed)
        return True

    def _execute(self, claimed: ClaimedJob) -> None:
        job_id, worker = claimed.job_id, claimed.worker_id
        kind = self.kinds[claimed.kind]
        context = _Context(self.store, claimed, self.settings.lease_seconds)
        log.info(
            "job %s (%s) attempt %d/%d on %s",
            job_id,
            kind.name,
            claimed.attempt,
            claimed.max_attempts,
            worker,
        )
        ended: JobStatus | None
        try:
            is_json, stored = _json_result(kind.handler(context))
        except JobCancelled:
            log.info("job %s stopped: cancelled (or its lease passed to another worker)", job_id)
            ended = self.store.acknowledge_cancel(job_id, worker)
        except errors.FaceSocialError as exc:
            log.info("job %s failed: %s %s", job_id, exc.code, exc.message)
            ended = self.store.fail(job_id, worker, exc.code, exc.message)
        except Exception as exc:
            log.exception("job %s (%s) attempt %d raised", job_id, kind.name, claimed.attempt)
            message = (
                f"The job stopped on an internal error ({type(exc).__name__}) on attempt "
                f"{claimed.attempt} of {claimed.max_attempts}"
            )
            ended = self.store.retry_or_fail(job_id, worker, INTERNAL_ERROR, message)
        else:
            if is_json:
                ended = self.store.complete(job_id, worker, stored)
            else:
                log.error("job %s (%s) returned a result that is not JSON", job_id, kind.name)
                ended = self.store.fail(
                    job_id, worker, INTERNAL_ERROR, "The job's result could not be stored"
                )
        if ended is not None and ended != "pending":
            self._end(EndedJob(job_id, kind.name, ended))

    def _end(self, ended: EndedJob) -> None:
        """The job is terminal: its on_end (whatever the end), then its callback."""
        kind = self.kinds.get(ended.kind)
        if kind is None:
            log.warning(
                "job %s ended but its kind %r is not registered here: no on_end", ended.job_id, ended.kind
            )
        elif kind.on_end is not None:
            try:
                kind.on_end(ended.job_id, ended.status)
            except Exception:
                # Left owed: the sweep calls it again once the lease has run out.
                log.exception("on_end of job %s (%s) raised", ended.job_id, ended.kind)
                return
        self.store.end_done(ended.job_id)
        if self.callbacks is not None:
            self.callbacks.schedule(ended.job_id)

    def cancel(self, job_id: str, tenant_id: uuid.UUID) -> JobView:
        """Cancel this tenant's job (see :meth:`JobStore.cancel`); a pending one gets its on_end now."""
        view = self.store.cancel(job_id, tenant_id)
        owed = self.store.owed_end(job_id)
        if owed is not None:
            self._end(owed)
        elif self.callbacks is not None and view.callback_url is not None:
            self.callbacks.schedule(job_id)
        return view

    def sweep(
        self, dispatch: Callable[[str, int], None] | None = None, now: datetime | None = None
    ) -> SweepReport:
        """The periodic upkeep: requeue or abandon expired leases, announce what needs announcing
        (``dispatch(job_id, priority)``, the queue's), run owed on_end calls, and hand due callbacks
        to the sender's background threads."""
        report = self.store.sweep(now, self.settings.redispatch_seconds)
        if report.requeued:
            log.warning(
                "requeued %d jobs whose worker stopped responding: %s", len(report.requeued), report.requeued
            )
        if report.abandoned:
            log.warning(
                "abandoned %d jobs after their last attempt: %s", len(report.abandoned), report.abandoned
            )
        if dispatch is not None:
            for job_id, priority in report.to_dispatch:
                dispatch(job_id, priority)
        for ended in report.owed_on_end:
            self._end(ended)
        if self.callbacks is not None:
            self.callbacks.schedule_due()
        if self.spool_dir is not None:
            try:
                sweep_spool(self.store, self.spool_dir, self.settings)
            except Exception:  # the spool is only upkeep: the jobs' own sweep has been done
                log.exception("spool sweep failed; retrying at the next sweep")
        return report


def _json_result(result: Mapping[str, Any] | None) -> tuple[bool, dict[str, Any] | None]:
    """(is it JSON, the result as a plain dict or None)."""
    if result is None:
        return True, None
    try:
        plain: dict[str, Any] = json.loads(json.dumps(dict(result), allow_nan=False))
    except (TypeError, ValueError):
        return False, None
    return True, plain
