"""Waiting for a job (``GET /api/v1/jobs/{job_id}``) with a progress callback.

The poll interval starts at ``interval`` seconds and grows by half each poll up to
``max_interval`` (a long video job need not be asked every second; a short one answers soon),
and never sleeps past the deadline. The callback gets the ``Job`` each time its status or
progress changed (and once for the first state), so a progress bar moves without repeats.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from facesocial.client.errors import JobFailedError, JobTimeoutError
from facesocial.client.models import Job

ProgressCallback = Callable[[Job], None]
AsyncProgressCallback = Callable[[Job], Awaitable[None] | None]


@dataclass(slots=True)
class Poller:
    """The state of one wait: ``timeout`` (seconds in all), ``interval``/``max_interval``
    (seconds between polls), ``raise_on_failure`` (raise ``JobFailedError`` for a failed or
    cancelled job instead of returning it)."""

    timeout: float = 600.0
    interval: float = 0.5
    max_interval: float = 5.0
    raise_on_failure: bool = True
    _last: tuple[str, float] | None = None

    def __post_init__(self) -> None:
        if self.timeout <= 0 or self.interval <= 0 or self.max_interval < self.interval:
            raise ValueError("timeout and interval must be positive, max_interval >= interval")

    def changed(self, job: Job) -> bool:
        """True when ``job``'s status or progress differs from the last one seen."""
        state = (job.status, job.progress_percentage)
        if state == self._last:
            return False
        self._last = state
        return True

    def finish(self, job: Job) -> Job:
        """``job`` when completed (or when failures are returned), else ``JobFailedError``."""
        if job.status != "completed" and self.raise_on_failure:
            raise JobFailedError(job)
        return job

    def next_sleep(self, job: Job, remaining: float) -> float:
        """Seconds to sleep before the next poll; raises ``JobTimeoutError`` when none remain."""
        if remaining <= 0:
            raise JobTimeoutError(job, self.timeout)
        sleep = min(self.interval, remaining)
        self.interval = min(self.max_interval, self.interval * 1.5)
        return sleep
