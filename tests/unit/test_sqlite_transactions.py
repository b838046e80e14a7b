"""SQLite transactions that read and then write must wait for each other, never fail.

Deferred transactions fail at once with "database is locked" (SQLITE_BUSY_SNAPSHOT) when another
connection commits between their read and their write; store/db.py begins them IMMEDIATE.
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

from sqlalchemy import func, select, update

from facesocial.store import migrate
from facesocial.store.db import Database
from facesocial.store.tables import ApiKey


def test_concurrent_read_then_write_transactions_all_commit(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'c.db'}")
    migrate.upgrade(database)
    key_id = uuid.uuid4()
    with database.session() as session:
        session.add(ApiKey(id=key_id, key_prefix="fs_x", key_hash="h" * 64, key_name="k", requests_made=0))
    failures: list[BaseException] = []

    def count_requests() -> None:
        for _ in range(40):
            try:
                with database.session() as session:
                    # Read, then write from what was read: the pattern of every use case.
                    made = session.scalar(select(ApiKey.requests_made).where(ApiKey.id == key_id))
                    session.execute(
                        update(ApiKey).where(ApiKey.id == key_id).values(requests_made=int(made or 0) + 1)
                    )
            except BaseException as exc:  # the test collects every failure
                failures.append(exc)

    threads = [threading.Thread(target=count_requests) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    with database.session(readonly=True) as session:
        # IMMEDIATE also serialises the read-modify-write: no update is lost.
        assert session.scalar(select(func.sum(ApiKey.requests_made))) == 6 * 40
    database.dispose()


def test_readonly_sessions_do_not_wait_for_a_writer(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'r.db'}")
    migrate.upgrade(database)
    with database.session() as writer:
        writer.add(ApiKey(key_prefix="fs_y", key_hash="y" * 64, key_name="k", requests_made=0))
        writer.flush()
        done = threading.Event()

        def read() -> None:
            with database.session(readonly=True) as session:
                session.scalar(select(func.count()).select_from(ApiKey))
            done.set()

        reader = threading.Thread(target=read)
        reader.start()
        # WAL: the reader sees the last commit while the writer still holds its lock.
        assert done.wait(5)
        reader.join()
    database.dispose()
