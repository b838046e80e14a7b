"""JobRunner and the in-process queue with real threads on a SQLite file.

The handlers here are small test kinds (a fake only where the real part, a service's work, is
beside the point): they record what the runner made them see, and their ``on_end`` calls.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from facesocial import errors
from facesocial.jobs.inprocess import InProcessJobQueue
from facesocial.jobs.port import JobContext, JobKind, JobStatus, NewJob
from facesocial.jobs.runner import JobRunner
from facesocial.jobs.store import JobStore
from facesocial.settings import JobSettings
from facesocial.store import migrate
from facesocial.store.db import Database
from facesocial.store.types import utcnow

TENANT = uuid.uuid4()


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path_factory.mktemp('runner') / 'jobs.db'}")
    migrate.upgrade(db)
    yield db
    db.dispose()


@dataclass
class Kit:
    store: JobStore
    runner: JobRunner
    kind: str
    ended: list[tuple[str, JobStatus]] = field(default_factory=list)

    def add(self, priority: int = 5, max_attempts: int = 3) -> str:
        with self.store._db.session() as session:
            return self.store.add(session, NewJob(self.kind, TENANT, None, {}, priority), max_attempts)


_counter = iter(range(10**6))


def kit(
    database: Database, handler: Callable[[JobContext], Mapping[str, Any] | None], **settings: Any
) -> Kit:
    """A runner with one kind of its own (no other test's job is ever claimed by it)."""
    name = f"test.runner{next(_counter)}"
    ended: list[tuple[str, JobStatus]] = []
    kind = JobKind(name, handler, lambda job_id, status: ended.append((job_id, status)))
    store = JobStore(database)
    options = {"lease_seconds": 30.0, "poll_seconds": 0.1, "sweep_seconds": 0.2, **settings}
    runner = JobRunner(store, {name: kind}, None, JobSettings(**options), worker_id="test")
    return Kit(store, runner, name, ended)


def test_a_domain_error_fails_the_job_at_once(database: Database) -> None:
    def handler(_job: JobContext) -> None:
        raise errors.NoFaceFoundError("No face in frame 12")

    k = kit(database, handler)
    job = k.add()
    assert k.runner.run(job) is True
    view = k.store.view(job, TENANT)
    assert (view.status, view.error_code, view.error_message, view.attempts) == (
        "failed",
        "NO_FACE_FOUND",
        "No face in frame 12",
        1,
    )
    assert k.ended == [(job, "failed")]
    assert k.runner.run(job) is False  # ended: nothing to run


def test_other_exceptions_are_retried_then_fail_without_details(database: Database) -> None:
    attempts: list[int] = []

    def handler(job: JobContext) -> None:
        attempts.append(job.attempt)
        raise OSError("/var/lib/facesocial/secret/path: disk quota")

    k = kit(database, handler)
    job = k.add(max_attempts=3)
    while k.runner.run_next():
        pass
    view = k.store.view(job, TENANT)
    assert attempts == [1, 2, 3]
    assert (view.status, view.error_code, view.attempts) == ("failed", "INTERNAL_ERROR", 3)
    assert view.error_message is not None and "OSError" in view.error_message
    assert "/var/lib" not in view.error_message and "quota" not in view.error_message
    assert k.ended == [(job, "failed")]  # once, at the end, not per attempt


def test_a_result_that_is_not_json_fails_the_job(database: Database) -> None:
    k = kit(database, lambda _job: {"when": object()})
    job = k.add()
    k.runner.run(job)
    view = k.store.view(job, TENANT)
    assert (view.status, view.error_code, view.result) == ("failed", "INTERNAL_ERROR", None)


def test_the_context_reports_progress_and_a_cancel_stops_the_handler(database: Database) -> None:
    inside = threading.Event()
    reports: list[float] = []

    def handler(job: JobContext) -> dict[str, Any]:
        step = 0
        while True:  # ends only through JobCancelled
            step += 1
            job.progress(min(0.99, step / 1000))
            reports.append(step)
            inside.set()
            threading.Event().wait(0.01)

    k = kit(database, handler, lease_seconds=4.0)
    job = k.add()
    worker = threading.Thread(target=k.runner.run, args=(job,))
    worker.start()
    assert inside.wait(10)
    running = k.store.view(job, TENANT)
    assert running.status == "processing" and running.progress_percentage > 0
    assert running.estimated_completion is not None  # estimated from the elapsed time
    cancelled = k.runner.cancel(job, TENANT)
    assert cancelled.status == "cancelled"
    worker.join(10)
    assert not worker.is_alive()
    assert k.ended == [(job, "cancelled")]  # by the runner, once the handler stopped
    assert k.store.owed_end(job, now=utcnow() + timedelta(days=1)) is None


def test_cancelling_a_pending_job_runs_on_end_at_once(database: Database) -> None:
    k = kit(database, lambda _job: None)
    job = k.add()
    assert k.runner.cancel(job, TENANT).status == "cancelled"
    assert k.ended == [(job, "cancelled")]
    assert k.runner.run_next() is False


def test_a_failing_on_end_is_run_again_by_the_sweep(database: Database) -> None:
    calls: list[str] = []

    def on_end(job_id: str, status: JobStatus) -> None:
        calls.append(status)
        if len(calls) == 1:
            raise OSError("disk busy")

    k = kit(database, lambda _job: {"ok": True})
    k.runner.kinds[k.kind] = JobKind(k.kind, k.runner.kinds[k.kind].handler, on_end)
    job = k.add()
    k.runner.run(job)
    assert calls == ["completed"]
    k.runner.sweep(now=utcnow() + timedelta(minutes=5))  # its lease has run out
    assert calls == ["completed", "completed"]
    k.runner.sweep(now=utcnow() + timedelta(minutes=5))
    assert len(calls) == 2


def test_the_sweep_runs_on_end_of_abandoned_jobs(database: Database) -> None:
    k = kit(database, lambda _job: None, lease_seconds=1.0)
    job = k.add(max_attempts=1)
    assert k.store.claim(job, "a-worker-that-dies", 1.0, [k.kind]) is not None
    dispatched: list[tuple[str, int]] = []
    report = k.runner.sweep(
        lambda job_id, priority: dispatched.append((job_id, priority)), utcnow() + timedelta(seconds=5)
    )
    assert report.abandoned == [job]
    assert k.ended == [(job, "failed")]
    assert job not in dict(dispatched)


def test_inprocess_queue_runs_jobs_in_priority_order(database: Database) -> None:
    order: list[int] = []
    gate = threading.Event()

    def handler(job: JobContext) -> dict[str, Any]:
        gate.wait(10)
        order.append(int(job.payload.get("priority", 0)))
        return {"worker": job.worker_id}

    k = kit(database, handler, workers=1)
    queue = InProcessJobQueue(k.runner, k.store, k.runner.settings)
    blocker = k.add(priority=5)
    queue.start()
    try:
        _wait(lambda: k.store.view(blocker, TENANT).status == "processing")
        with k.store._db.session() as session:
            jobs = [
                k.store.add(session, NewJob(k.kind, TENANT, None, {"priority": p}, p), 3)
                for p in (2, 9, 4, 7)
            ]
        gate.set()
        _wait(lambda: all(k.store.view(j, TENANT).status == "completed" for j in jobs))
    finally:
        queue.stop()
    assert order == [0, 9, 7, 4, 2]
    assert k.store.view(jobs[0], TENANT).result == {"worker": "test/job-worker-0"}


def test_dispatch_wakes_an_idle_worker(database: Database) -> None:
    """With a poll interval of an hour, only dispatch() can have started the job."""
    done = threading.Event()
    k = kit(database, lambda _job: done.set() or None, workers=2, poll_seconds=3600.0, sweep_seconds=3600.0)
    queue = InProcessJobQueue(k.runner, k.store, k.runner.settings)
    queue.start()
    try:
        _wait(lambda: all(t.is_alive() for t in queue._threads))
        threading.Event().wait(0.3)  # the threads have found nothing and sleep
        job = k.add()
        queue.dispatch(job, 5)
        assert done.wait(10)
    finally:
        threads = list(queue._threads)
        queue.stop()
    assert threads and not any(thread.is_alive() for thread in threads)  # stop() is prompt


def _wait(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    stop = threading.Event()
    for _ in range(int(timeout / 0.02)):
        if condition():
            return
        stop.wait(0.02)
    raise AssertionError("condition not met")
