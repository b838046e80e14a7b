"""Per-user write locks: mutual exclusion with real threads, timeouts, and (PostgreSQL) a lock
that dies with its process."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from facesocial import errors
from facesocial.store.db import Database
from facesocial.store.user_locks import LocalUserLocks, PostgresUserLocks, UserLocks, lock_key
from tests.services import scratch_postgres

pytestmark = pytest.mark.integration


@pytest.fixture(params=["local", "postgres"])
def locks(request: pytest.FixtureRequest) -> Iterator[UserLocks]:
    if request.param == "local":
        yield LocalUserLocks()
        return
    with scratch_postgres() as url:
        database = Database(url.replace("postgresql://", "postgresql+psycopg://", 1))
        yield PostgresUserLocks(database.engine)
        database.dispose()


def test_one_holder_at_a_time_per_user(locks: UserLocks) -> None:
    tenant, user = uuid.uuid4(), uuid.uuid4()
    inside = 0
    most = 0
    guard = threading.Lock()

    def work() -> None:
        nonlocal inside, most
        for _ in range(5):
            with locks.hold(tenant, user):
                with guard:
                    inside += 1
                    most = max(most, inside)
                time.sleep(0.002)
                with guard:
                    inside -= 1

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most == 1 and inside == 0


def test_other_users_and_tenants_do_not_wait(locks: UserLocks) -> None:
    tenant, user = uuid.uuid4(), uuid.uuid4()
    # Same id in another tenant, another id in the same tenant: independent.
    with (
        locks.hold(tenant, user),
        locks.hold(uuid.uuid4(), user, timeout=1),
        locks.hold(tenant, uuid.uuid4(), timeout=1),
    ):
        pass


def test_a_held_lock_times_out_with_server_busy(locks: UserLocks) -> None:
    tenant, user = uuid.uuid4(), uuid.uuid4()
    held = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with locks.hold(tenant, user):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(10)
    with pytest.raises(errors.FaceSocialError) as caught, locks.hold(tenant, user, timeout=0.3):
        pass
    assert caught.value.code == "SERVER_BUSY" and caught.value.status == 503
    release.set()
    thread.join()
    with locks.hold(tenant, user, timeout=1):  # free again
        pass


def test_local_locks_forget_released_keys() -> None:
    locks = LocalUserLocks()
    for _ in range(100):
        with locks.hold(uuid.uuid4(), uuid.uuid4()):
            pass
    assert locks._locks == {}


def test_postgres_lock_is_released_when_its_process_is_killed() -> None:
    tenant, user = uuid.uuid4(), uuid.uuid4()
    with scratch_postgres() as url:
        script = (
            "import sys, time, psycopg\n"
            f"c = psycopg.connect({url!r}, autocommit=True)\n"
            f"c.execute('SELECT pg_advisory_lock(%s)', ({lock_key(tenant, user)},))\n"
            "print('held', flush=True)\n"
            "time.sleep(60)\n"
        )
        child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout is not None and child.stdout.readline().strip() == "held"
            database = Database(url.replace("postgresql://", "postgresql+psycopg://", 1))
            locks = PostgresUserLocks(database.engine)
            with pytest.raises(errors.FaceSocialError), locks.hold(tenant, user, timeout=0.3):
                pass
            child.kill()  # SIGKILL: no unlock is ever sent
            child.wait(10)
            with locks.hold(tenant, user, timeout=10):
                pass
            database.dispose()
        finally:
            child.kill()
            child.wait(10)
