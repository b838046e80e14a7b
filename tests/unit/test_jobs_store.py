"""JobStore on a SQLite file: tenant isolation, claiming, leases, retries, the sweep, retention.

Each test uses job kinds of its own, so the claims of one test never see another's jobs in the
shared database. Times are moved by passing ``now`` to the sweep, never by sleeping.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from facesocial import errors
from facesocial.jobs.port import NewJob
from facesocial.jobs.store import ABANDONED, JOB_ID_PATTERN, JobStore
from facesocial.store import migrate
from facesocial.store.db import Database
from facesocial.store.tables import Job
from facesocial.store.types import utcnow

_kinds = itertools.count()


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path_factory.mktemp('jobs') / 'jobs.db'}")
    migrate.upgrade(db)
    yield db
    db.dispose()


@pytest.fixture
def store(database: Database) -> JobStore:
    return JobStore(database)


@pytest.fixture
def kind() -> str:
    return f"test.kind{next(_kinds)}"


def add(
    store: JobStore,
    kind: str,
    tenant: uuid.UUID | None = None,
    *,
    priority: int = 5,
    max_attempts: int = 3,
    callback_url: str | None = None,
) -> str:
    with store._db.session() as session:
        return store.add(
            session,
            NewJob(kind, tenant or uuid.uuid4(), None, {"n": 1}, priority, callback_url),
            max_attempts,
        )


def tenant_of(store: JobStore, job_id: str) -> uuid.UUID:
    with store._db.session(readonly=True) as session:
        return session.scalars(select(Job.tenant_id).where(Job.job_id == job_id)).one()


@pytest.mark.parametrize("priority", [0, 11, -1, True])
def test_add_refuses_priorities_outside_1_to_10(store: JobStore, kind: str, priority: int) -> None:
    with pytest.raises(errors.ValidationFailedError):
        add(store, kind, priority=priority)


def test_add_returns_an_id_and_commits_with_the_callers_session(store: JobStore, kind: str) -> None:
    tenant = uuid.uuid4()
    with store._db.session() as session:
        job_id = store.add(session, NewJob(kind, tenant, None, {"analysis": "x"}, 10), 3)
        session.rollback()  # the caller's transaction decides: nothing was written
    with pytest.raises(errors.JobNotFoundError):
        store.view(job_id, tenant)
    job_id = add(store, kind, tenant, priority=1)
    assert JOB_ID_PATTERN.match(job_id)
    view = store.view(job_id, tenant)
    assert (view.status, view.priority, view.attempts, view.max_attempts) == ("pending", 1, 0, 3)
    assert view.progress_percentage == 0.0 and view.started_at is None


def test_a_tenant_sees_and_cancels_only_its_own_jobs(store: JobStore, kind: str) -> None:
    mine, theirs = uuid.uuid4(), uuid.uuid4()
    job = add(store, kind, mine)
    with pytest.raises(errors.JobNotFoundError) as unknown:
        store.view(f"job_{uuid.uuid4().hex}", theirs)
    with pytest.raises(errors.JobNotFoundError) as foreign:
        store.view(job, theirs)
    assert foreign.value.message == unknown.value.message  # no hint that it exists
    with pytest.raises(errors.JobNotFoundError):
        store.cancel(job, theirs)
    assert store.view(job, mine).status == "pending"
    assert store.list(theirs).total == 0
    page = store.list(mine)
    assert (page.total, [v.job_id for v in page.jobs]) == (1, [job])
    for bad in ("", "job_", "../../etc/passwd", job.upper(), job + "0"):
        with pytest.raises(errors.JobNotFoundError):
            store.view(bad, mine)


def test_list_pages_newest_first_and_filters_by_status(store: JobStore, kind: str) -> None:
    tenant = uuid.uuid4()
    jobs = [add(store, kind, tenant) for _ in range(5)]
    store.cancel(jobs[1], tenant)
    first = store.list(tenant, limit=2)
    second = store.list(tenant, limit=2, offset=2)
    assert first.total == second.total == 5
    assert [v.job_id for v in first.jobs + second.jobs] == jobs[::-1][:4]
    cancelled = store.list(tenant, "cancelled")
    assert (cancelled.total, [v.job_id for v in cancelled.jobs]) == (1, [jobs[1]])
    with pytest.raises(errors.ValidationFailedError):
        store.list(tenant, limit=0)


def test_claims_take_the_most_urgent_then_the_oldest(store: JobStore, kind: str) -> None:
    low = add(store, kind, priority=1)
    mid_old = add(store, kind, priority=5)
    high = add(store, kind, priority=10)
    mid_new = add(store, kind, priority=5)
    other_kind = add(store, kind + "x", priority=10)
    order = []
    while (claimed := store.claim_next("w", 60, [kind])) is not None:
        order.append(claimed.job_id)
        assert claimed.attempt == 1 and claimed.payload == {"n": 1}
    assert order == [high, mid_old, mid_new, low]
    assert store.view(other_kind, tenant_of(store, other_kind)).status == "pending"


def test_concurrent_claims_take_each_job_once(store: JobStore, kind: str) -> None:
    jobs = {add(store, kind) for _ in range(30)}
    taken: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(6)

    def claim_all(name: str) -> None:
        start.wait()
        while (claimed := store.claim_next(name, 60, [kind])) is not None:
            with lock:
                taken.append(claimed.job_id)

    threads = [threading.Thread(target=claim_all, args=(f"w{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(taken) == sorted(jobs)


def test_claim_by_id_only_takes_a_pending_job(store: JobStore, kind: str) -> None:
    job = add(store, kind)
    assert store.claim(job, "w1", 60, ["other.kind"]) is None
    claimed = store.claim(job, "w1", 60, [kind])
    assert claimed is not None and claimed.worker_id == "w1"
    assert store.claim(job, "w2", 60, [kind]) is None  # a duplicate delivery does nothing


def test_only_the_lease_holder_writes(store: JobStore, kind: str) -> None:
    job = add(store, kind)
    tenant = tenant_of(store, job)
    assert store.claim(job, "w1", 1, [kind]) is not None
    assert store.progress(job, "w1", 0.25, 30, 1) is False
    assert store.progress(job, "intruder", 0.9, None, 1) is True
    view = store.view(job, tenant)
    assert view.progress_percentage == 25.0 and view.estimated_completion is not None
    # w1 stops renewing; the sweep gives the job to the queue again and w2 takes it.
    report = store.sweep(now=utcnow() + timedelta(seconds=5))
    assert job in report.requeued
    assert store.claim(job, "w2", 60, [kind]) is not None
    # The zombie w1 wakes up: it may neither report nor finish.
    assert store.progress(job, "w1", 0.5, None, 60) is True
    assert store.complete(job, "w1", {"from": "zombie"}) is None
    assert store.fail(job, "w1", "X", "y") is None
    view = store.view(job, tenant)
    assert (view.status, view.attempts, view.result) == ("processing", 2, None)
    assert store.complete(job, "w2", {"ok": True}) == "completed"
    view = store.view(job, tenant)
    assert (view.status, view.result, view.progress_percentage) == ("completed", {"ok": True}, 100.0)


def test_retry_or_fail_until_max_attempts(store: JobStore, kind: str) -> None:
    job = add(store, kind, max_attempts=2)
    tenant = tenant_of(store, job)
    store.claim(job, "w", 60, [kind])
    assert store.retry_or_fail(job, "w", "INTERNAL_ERROR", "first") == "pending"
    view = store.view(job, tenant)
    assert (view.status, view.error_code, view.attempts) == ("pending", None, 1)
    claimed = store.claim_next("w", 60, [kind])
    assert claimed is not None and claimed.attempt == 2
    assert store.retry_or_fail(job, "w", "INTERNAL_ERROR", "second") == "failed"
    view = store.view(job, tenant)
    assert (view.status, view.error_code, view.error_message, view.attempts) == (
        "failed",
        "INTERNAL_ERROR",
        "second",
        2,
    )


def test_cancel_pending_owes_on_end_at_once(store: JobStore, kind: str) -> None:
    job = add(store, kind)
    tenant = tenant_of(store, job)
    view = store.cancel(job, tenant)
    assert view.status == "cancelled" and view.completed_at is not None
    owed = store.owed_end(job)
    assert owed is not None and (owed.kind, owed.status) == (kind, "cancelled")
    assert store.claim_next("w", 60, [kind]) is None
    store.end_done(job)
    assert store.owed_end(job) is None
    with pytest.raises(errors.JobNotCancellableError):
        store.cancel(job, tenant)


def test_cancel_running_leaves_on_end_to_its_worker(store: JobStore, kind: str) -> None:
    job = add(store, kind)
    tenant = tenant_of(store, job)
    store.claim(job, "w", 60, [kind])
    assert store.cancel(job, tenant).status == "cancelled"
    assert store.owed_end(job) is None  # the worker still holds its lease
    assert store.progress(job, "w", 0.5, None, 60) is True  # its next report stops it
    assert store.complete(job, "w", {"late": True}) == "cancelled"  # it owes on_end, result dropped
    assert store.acknowledge_cancel(job, "w") == "cancelled"
    assert store.acknowledge_cancel(job, "other") is None
    view = store.view(job, tenant)
    assert (view.status, view.result) == ("cancelled", None)
    # Had the worker died instead, the sweep would owe on_end once the lease ran out.
    report = store.sweep(now=utcnow() + timedelta(seconds=120))
    assert [e.job_id for e in report.owed_on_end if e.job_id == job] == [job]


def test_the_sweep_abandons_the_last_attempt(store: JobStore, kind: str) -> None:
    job = add(store, kind, max_attempts=1, callback_url="https://example.org/hook")
    tenant = tenant_of(store, job)
    store.claim(job, "w", 2, [kind])
    assert job not in store.sweep().abandoned  # the lease still runs
    report = store.sweep(now=utcnow() + timedelta(seconds=10))
    assert job in report.abandoned and job not in report.requeued
    view = store.view(job, tenant)
    assert (view.status, view.error_code, view.attempts) == ("failed", ABANDONED, 1)
    assert job in [e.job_id for e in store.sweep(now=utcnow() + timedelta(seconds=10)).owed_on_end]
    assert job in store.due_callbacks(now=utcnow() + timedelta(seconds=20))


def test_the_sweep_announces_unannounced_and_stale_jobs(store: JobStore, kind: str) -> None:
    job = add(store, kind, priority=7)
    later = utcnow() + timedelta(seconds=30)
    assert (job, 7) in store.sweep(now=later).to_dispatch
    assert job not in dict(store.sweep(now=later).to_dispatch)  # announced: not again at once
    stale = later + timedelta(seconds=700)
    assert job in dict(store.sweep(now=stale, redispatch_seconds=600).to_dispatch)
    store.mark_dispatched(job)
    assert job not in dict(store.sweep(now=utcnow() + timedelta(seconds=60)).to_dispatch)
    store.mark_dispatched(job, dispatched=False)  # the broker refused it
    assert job in dict(store.sweep(now=utcnow() + timedelta(seconds=60)).to_dispatch)


def test_purge_removes_only_settled_old_jobs(store: JobStore, kind: str) -> None:
    tenant = uuid.uuid4()
    old_done, old_owing, old_pending, recent_done = (add(store, kind, tenant) for _ in range(4))
    for job in (old_done, old_owing, recent_done):
        store.cancel(job, tenant)
    store.end_done(old_done)
    store.end_done(recent_done)
    with store._db.session() as session:
        long_ago = utcnow() - timedelta(days=40)
        session.execute(
            update(Job)
            .where(Job.job_id.in_([old_done, old_owing, old_pending]))
            .values(completed_at=long_ago, created_at=long_ago)
        )
    assert store.purge(30) == 1
    remaining = {v.job_id for v in store.list(tenant).jobs}
    assert remaining == {old_owing, old_pending, recent_done}


def test_callback_attempts_are_taken_once(store: JobStore, kind: str) -> None:
    job = add(store, kind, callback_url="https://example.org/hook")
    tenant = tenant_of(store, job)
    store.claim(job, "w", 60, [kind])
    store.complete(job, "w", {"answer": 42})
    assert store.due_callbacks().count(job) == 1
    due = store.take_callback(job, hold_seconds=60)
    assert due is not None and (due.attempt, due.status, due.result) == (1, "completed", {"answer": 42})
    assert store.take_callback(job, hold_seconds=60) is None  # held by the first taker
    store.record_callback(job, delivered=False, error="HTTP 500", next_at=utcnow() - timedelta(seconds=1))
    again = store.take_callback(job, hold_seconds=60)
    assert again is not None and again.attempt == 2
    store.record_callback(job, delivered=True, error=None, next_at=None)
    view = store.view(job, tenant)
    assert view.callback_attempts == 2 and view.callback_delivered_at is not None
    assert job not in store.due_callbacks()
