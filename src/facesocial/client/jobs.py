"""Waiting for a job (``GET /api/v1/jobs/{job_id}``) with a progress callback.

The poll interval starts at ``interval`` seconds and grows by half each poll up to
``max_interval`` (a long video job need not be asked every second; a short one answers soon),
and never sleeps past the deadline. The callback gets the ``Job`` each time its status or
progress changed (and once for the first state), so a progress bar moves without repeats.

Every decision of a wait lives here, free of I/O: ``Poller.step(job)`` says whether to report
the job, whether the wait is over and how long to sleep before the next poll. The sync and the
async client differ only in how they fetch the job, call the callback and sleep::

    poller = Poller(timeout, interval, max_interval, raise_on_failure)
    while True:
        step = poller.step(fetch(job_id))
        if step.report and on_progress is not None:
            on_progress(step.job)
        if step.sleep is None:
            return step.outcome()
        sleep(step.sleep)
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from facesocial.client.errors import JobFailedError, JobTimeoutError
from facesocial.client.models import Job

ProgressCallback = Callable[[Job], None]
AsyncProgressCallback = Callable[[Job], Awaitable[None] | None]


@dataclass(frozen=True, slots=True)
class PollStep:
    """What to do after one poll: ``report`` the job to the progress callback (its status or
    progress changed); then sleep ``sleep`` seconds and poll again, or, when ``sleep`` is None,
    end the wait with ``outcome()``."""

    job: Job
    report: bool
    sleep: float | None
    error: Exception | None = None

    def outcome(self) -> Job:
        """The final job, or the ``JobFailedError``/``JobTimeoutError`` the wait ends with."""
        if self.sleep is not None:
            raise RuntimeError("the wait is not over: sleep and poll again")
        if self.error is not None:
            raise self.error
        return self.job


@dataclass(slots=True)
class Poller:
    """The state of one wait: ``timeout`` (seconds in all, from the poller's creation),
    ``interval``/``max_interval`` (seconds between polls), ``raise_on_failure`` (raise
    ``JobFailedError`` for a failed or cancelled job instead of returning it); ``clock`` the
    monotonic clock the deadline is measured on (tests pass a fake)."""

    timeout: float = 600.0
    interval: float = 0.5
    max_interval: float = 5.0
    raise_on_failure: bool = True
    clock: Callable[[], float] = time.monotonic
    _last: tuple[str, float] | None = None
    _deadline: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        if any(math.isnan(v) for v in (self.timeout, self.interval, self.max_interval)):
            raise ValueError("timeout, interval and max_interval must be numbers (not NaN)")
        if self.timeout <= 0 or self.interval <= 0 or self.max_interval < self.interval:
            raise ValueError("timeout and interval must be positive, max_interval >= interval")
        self._deadline = self.clock() + self.timeout

    def remaining(self) -> float:
        """Seconds left until the deadline (negative once past it). The clients pass it to the
        poll's request, whose retries never sleep past it."""
        return self._deadline - self.clock()

    def step(self, job: Job) -> PollStep:
        """The decision after polling ``job``: report it?, stop (completed, failed, cancelled,
        or out of time)?, else how long to sleep."""
        report = self.changed(job)
        if job.done:
            failed = job.status != "completed" and self.raise_on_failure
            return PollStep(job, report, None, JobFailedError(job) if failed else None)
        remaining = self.remaining()
        if remaining <= 0:
            return PollStep(job, report, None, JobTimeoutError(job, self.timeout))
        return PollStep(job, report, self.next_sleep(remaining))

    def changed(self, job: Job) -> bool:
        """True when ``job``'s status or progress differs from the last one seen."""
        state = (job.status, job.progress_percentage)
        if state == self._last:
            return False
        self._last = state
        return True

    def next_sleep(self, remaining: float) -> float:
        """Seconds to sleep before the next poll (never past the deadline); the interval grows."""
        sleep = min(self.interval, remaining)
        self.interval = min(self.max_interval, self.interval * 1.5)
        return sleep
