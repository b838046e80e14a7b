"""Job kinds that ship with the jobs room itself: ``diagnostics.probe``.

The probe is a real job for operators (``facesocial jobs probe``: is a worker running, does it
see the database and the spool folder?) and for the adapters' contract test. It behaves like a
service job: its submitter writes a file into the spool folder (``spool_dir/<job_id>/probe.json``,
as an upload would be) before the commit, the handler checks that the file is there, reports
progress at every step, and the kind's ``on_end`` removes the folder, whatever the end.

Payload: ``steps`` 1..100, ``step_seconds`` 0..10 (a step sleeps that long, then reports),
``fail_code`` an optional code of facesocial/errors.py the probe fails with after its steps.
Result: ``{"steps", "worker_id", "started_at", "attempt"}``.
"""

from __future__ import annotations

import json
import math
import shutil
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facesocial import errors
from facesocial.jobs.port import PRIORITY_DEFAULT, JobContext, JobKind, JobQueue, JobStatus, NewJob
from facesocial.jobs.store import JOB_ID_PATTERN, JobStore
from facesocial.store.db import Database
from facesocial.store.types import utcnow

PROBE = "diagnostics.probe"
PROBE_FILE = "probe.json"
# The tenant of probes submitted from the command line: no API caller has it, so none sees them.
OPERATOR_TENANT = uuid.UUID(int=0)


@dataclass(frozen=True, slots=True)
class ProbeRequest:
    """What a probe does (the ranges are checked by :meth:`payload`)."""

    steps: int = 5
    step_seconds: float = 0.5
    fail_code: str | None = None

    def payload(self) -> dict[str, Any]:
        """The job payload; ValidationFailedError when a value is out of range."""
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or not 1 <= self.steps <= 100:
            raise errors.ValidationFailedError("steps must be an integer from 1 to 100", fields=["steps"])
        if not math.isfinite(self.step_seconds) or not 0 <= self.step_seconds <= 10:
            raise errors.ValidationFailedError("step_seconds must be from 0 to 10", fields=["step_seconds"])
        if self.fail_code is not None:
            _error_class(self.fail_code)
        return {"steps": self.steps, "step_seconds": self.step_seconds, "fail_code": self.fail_code}

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> ProbeRequest:
        request = cls(
            int(payload.get("steps", 5)), float(payload.get("step_seconds", 0.5)), payload.get("fail_code")
        )
        request.payload()  # validates
        return request


def submit_probe(
    database: Database,
    store: JobStore,
    queue: JobQueue,
    spool_dir: Path,
    request: ProbeRequest,
    *,
    tenant_id: uuid.UUID = OPERATOR_TENANT,
    api_key_id: uuid.UUID | None = None,
    priority: int = PRIORITY_DEFAULT,
    callback_url: str | None = None,
    max_attempts: int = 3,
) -> str:
    """Create a probe job (its spool file, its row; one commit), then dispatch it; its ``job_id``.

    ``callback_url`` is taken as given: callers facing clients check it with
    :func:`facesocial.jobs.callbacks.validate_callback_url` first.
    """
    new = NewJob(PROBE, tenant_id, api_key_id, request.payload(), priority, callback_url)
    with database.session() as session:
        job_id = store.add(session, new, max_attempts)
        folder = spool_dir / job_id
        folder.mkdir(parents=True, exist_ok=True)
        (folder / PROBE_FILE).write_text(json.dumps({"job_id": job_id, "created_at": utcnow().isoformat()}))
    queue.dispatch(job_id, priority)
    return job_id


def builtin_kinds(spool_dir: Path | None = None) -> dict[str, JobKind]:
    """The built-in kinds, keyed by name; the composition root adds the services' kinds.

    ``spool_dir``: where probes keep their file (the settings' ``resolved_spool_dir()``). Without
    it a probe neither checks nor removes a file.
    """
    probe = _Probe(spool_dir)
    return {PROBE: JobKind(PROBE, probe.run, probe.on_end)}


class _Probe:
    def __init__(self, spool_dir: Path | None) -> None:
        self._spool_dir = spool_dir

    def run(self, job: JobContext) -> dict[str, Any]:
        request = ProbeRequest.from_payload(job.payload)
        if self._spool_dir is not None and not (self._folder(job.job_id) / PROBE_FILE).is_file():
            raise errors.NotFoundError(
                "The probe's spool file is missing: API and workers must share jobs.spool_dir"
            )
        started_at = utcnow()
        for step in range(request.steps):
            time.sleep(request.step_seconds)
            remaining = (request.steps - step - 1) * request.step_seconds
            job.progress((step + 1) / request.steps, remaining)
        if request.fail_code is not None:
            raise _error_class(request.fail_code)("The probe failed as it was asked to")
        return {
            "steps": request.steps,
            "worker_id": job.worker_id,
            "started_at": started_at.isoformat(),
            "attempt": job.attempt,
        }

    def on_end(self, job_id: str, _status: JobStatus) -> None:
        if self._spool_dir is not None:
            shutil.rmtree(self._folder(job_id), ignore_errors=True)

    def _folder(self, job_id: str) -> Path:
        if self._spool_dir is None or not JOB_ID_PATTERN.match(job_id):
            raise ValueError(f"not a job id: {job_id!r}")
        return self._spool_dir / job_id


def _error_class(code: str) -> type[errors.FaceSocialError]:
    """The error class of facesocial/errors.py with this code; ValidationFailedError if none."""
    for value in vars(errors).values():
        if isinstance(value, type) and issubclass(value, errors.FaceSocialError) and value.code == code:
            return value
    raise errors.ValidationFailedError(
        f"fail_code {code[:60]!r} is not a code of this API", fields=["fail_code"]
    )
