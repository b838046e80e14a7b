"""Claims are atomic across processes: SQLite (BEGIN IMMEDIATE) and PostgreSQL (SKIP LOCKED).

Three processes claim from the same database at once until nothing is left; every job must be
taken exactly once, and the most urgent ones first within each process.
"""

from __future__ import annotations

import multiprocessing
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from facesocial.jobs.port import NewJob
from facesocial.jobs.store import JobStore
from facesocial.store import migrate
from facesocial.store.db import Database
from tests.services import scratch_postgres

pytestmark = pytest.mark.integration

KIND = "test.claims"


def _claim_all(url: str, name: str, start: Any, out: Any) -> None:
    """Runs in a spawned process: claim until nothing is left, report (job_id, priority) in order."""
    database = Database(url)
    store = JobStore(database)
    taken: list[tuple[str, int]] = []
    store.claim_next(name, 60, ["warm.up"])  # connect before the start line, not after it
    start.wait()
    while (claimed := store.claim_next(name, 60, [KIND])) is not None:
        taken.append((claimed.job_id, claimed.priority))
        time.sleep(0.005)  # a little work: the processes' claims interleave
    out.put((name, taken))
    database.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'jobs.db'}"
        return
    with scratch_postgres() as url:
        yield "postgresql+psycopg://" + url.split("://", 1)[1]


def test_each_job_is_claimed_once_across_processes(database_url: str) -> None:
    database = Database(database_url)
    migrate.upgrade(database)
    store = JobStore(database)
    jobs = {}
    with database.session() as session:
        for number in range(45):
            priority = number % 10 + 1
            jobs[store.add(session, NewJob(KIND, uuid.uuid4(), None, {}, priority), 3)] = priority
    database.dispose()

    context = multiprocessing.get_context("spawn")
    start = context.Barrier(3)
    out = context.Queue()
    workers = [context.Process(target=_claim_all, args=(database_url, f"p{i}", start, out)) for i in range(3)]
    for worker in workers:
        worker.start()
    results = dict(out.get(timeout=120) for _ in workers)
    for worker in workers:
        worker.join(30)
        assert worker.exitcode == 0

    taken = [job for claims in results.values() for job, _priority in claims]
    assert sorted(taken) == sorted(jobs)  # all of them, none twice
    assert sum(1 for claims in results.values() if claims) >= 2  # they really competed
    for claims in results.values():
        priorities = [priority for _job, priority in claims]
        assert priorities == sorted(priorities, reverse=True)
