"""Engine and session factory. SQLite maps every service schema onto its single database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from facesocial.store.tables import SCHEMAS


def schema_translate_map(url: str) -> dict[str | None, str | None] | None:
    """On SQLite every schema becomes the main database (table names are unique)."""
    return {name: None for name in SCHEMAS} if url.startswith("sqlite") else None


def make_engine(url: str) -> Engine:
    """An engine with the per-dialect settings this project relies on."""
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("sqlite"):
        _ensure_sqlite_dir(url)
        # The API serves requests from a thread pool.
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    elif url.startswith("postgresql"):
        # A server that does not answer must fail a request (503), not hang it.
        kwargs["connect_args"] = {"connect_timeout": 5}
        # A write of face data holds two connections (its user's advisory lock and its work).
        kwargs.update(pool_size=10, max_overflow=20)
    engine = create_engine(url, **kwargs)
    if url.startswith("sqlite"):
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    translate = schema_translate_map(url)
    if translate:
        engine = engine.execution_options(schema_translate_map=translate)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
    # We emit BEGIN ourselves (below); pysqlite's own deferred BEGIN would be too late.
    dbapi_connection.isolation_level = None


def _sqlite_begin(connection: Connection) -> None:
    """Take SQLite's write lock when a transaction starts, not at its first write.

    A deferred transaction that reads and then writes fails at once with "database is locked"
    (SQLITE_BUSY_SNAPSHOT, which the busy timeout does not cover) whenever another connection
    committed in between: under concurrent requests that was a 500. IMMEDIATE waits for the lock
    instead. Sessions opened with ``readonly=True`` stay deferred: WAL readers never block.
    """
    mode = "DEFERRED" if connection.get_execution_options().get("readonly") else "IMMEDIATE"
    connection.exec_driver_sql(f"BEGIN {mode}")


def _ensure_sqlite_dir(url: str) -> None:
    path = url.split("///", 1)[-1] if "///" in url else ""
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


class Database:
    """Owns the engine and hands out unit-of-work sessions."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.is_postgres = self.engine.dialect.name == "postgresql"
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._readonly_sessions = sessionmaker(
            self.engine.execution_options(readonly=True), expire_on_commit=False
        )

    @contextmanager
    def session(self, *, readonly: bool = False) -> Iterator[Session]:
        """A transaction: committed when the block ends normally, rolled back otherwise.

        ``readonly``: a promise that the block only reads (SQLite then does not take the write
        lock; see ``_sqlite_begin``).
        """
        session = (self._readonly_sessions if readonly else self._sessions)()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()
