"""The SDK's job-wait decisions (``facesocial.client.jobs.Poller``), without any I/O.

The sync and async clients only fetch, report and sleep as ``Poller.step`` says; these tests
drive the poller with a fake clock, so every sleep, report and ending is asserted exactly.
"""

from __future__ import annotations

from typing import Any

import pytest

from facesocial.client import Job, JobFailedError, JobTimeoutError
from facesocial.client.jobs import Poller, PollStep


def job(status: str, progress: float, **extra: Any) -> Job:
    body = {"job_id": "job_1", "kind": "counting.video", "status": status, "progress_percentage": progress}
    body.update({"estimated_completion": None, "result": None, "error": None, **extra})
    return Job.from_dict({"success": True, "job": body})


class Clock:
    """A monotonic clock the test moves: each sleep the poller asks for is taken in full."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def run(poller: Poller, clock: Clock, states: list[Job]) -> tuple[list[PollStep], list[float]]:
    """Drive ``poller`` as a client does; the steps taken and the sleeps slept."""
    steps: list[PollStep] = []
    sleeps: list[float] = []
    for state in states:
        step = poller.step(state)
        steps.append(step)
        if step.sleep is None:
            break
        sleeps.append(step.sleep)
        clock.now += step.sleep
    return steps, sleeps


def test_each_change_is_reported_once_and_the_interval_grows_to_its_cap() -> None:
    clock = Clock()
    poller = Poller(timeout=60, interval=0.2, max_interval=0.5, clock=clock)
    states = [job("pending", 0), job("pending", 0), job("processing", 40), job("processing", 40)]
    states.append(job("completed", 100, result={"n": 3}))
    steps, sleeps = run(poller, clock, states)
    assert [s.report for s in steps] == [True, False, True, False, True]
    assert sleeps == pytest.approx([0.2, 0.3, 0.45, 0.5])
    assert steps[-1].sleep is None and steps[-1].outcome().result == {"n": 3}


def test_a_failed_or_cancelled_job_ends_the_wait_with_an_error_unless_asked_not_to() -> None:
    failed = job("failed", 60, error={"code": "VIDEO_TRUNCATED", "message": "cut short"})
    step = Poller(clock=Clock()).step(failed)
    assert step.report and step.sleep is None
    with pytest.raises(JobFailedError) as caught:
        step.outcome()
    assert caught.value.code == "VIDEO_TRUNCATED"
    cancelled = Poller(raise_on_failure=False, clock=Clock()).step(job("cancelled", 10))
    assert cancelled.sleep is None and cancelled.outcome().status == "cancelled"


def test_the_last_sleep_stops_at_the_deadline_and_the_next_poll_times_out() -> None:
    clock = Clock()
    poller = Poller(timeout=1.0, interval=0.4, max_interval=0.6, clock=clock)
    steps, sleeps = run(poller, clock, [job("processing", 10)] * 10)
    assert sleeps == pytest.approx([0.4, 0.6])  # 1.0 s in all: the second sleep is cut to fit
    assert len(steps) == 3 and steps[-1].sleep is None
    assert [s.report for s in steps] == [True, False, False]
    with pytest.raises(JobTimeoutError) as caught:
        steps[-1].outcome()
    assert caught.value.job.status == "processing" and caught.value.code == "JOB_WAIT_TIMEOUT"


def test_a_job_that_ends_at_the_deadline_is_returned_not_timed_out() -> None:
    clock = Clock()
    poller = Poller(timeout=0.5, interval=0.5, clock=clock)
    clock.now += 10  # the client's request took far longer than the timeout
    assert poller.step(job("completed", 100)).outcome().status == "completed"


def test_the_outcome_of_an_unfinished_wait_is_refused_and_bad_settings_are_rejected() -> None:
    step = Poller(clock=Clock()).step(job("processing", 5))
    assert step.sleep == pytest.approx(0.5)
    with pytest.raises(RuntimeError):
        step.outcome()
    nan = float("nan")
    for bad in (
        {"timeout": 0},
        {"interval": 0},
        {"interval": 2.0, "max_interval": 1.0},
        # NaN passes every "<= 0" test: it would poll forever or hand sleep() a NaN.
        {"timeout": nan},
        {"interval": nan},
        {"max_interval": nan},
    ):
        with pytest.raises(ValueError):
            Poller(**bad)
