"""Engine and session factory. SQLite maps every service schema onto its single database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
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
    engine = create_engine(url, **kwargs)
    translate = schema_translate_map(url)
    if translate:
        engine = engine.execution_options(schema_translate_map=translate)
    if url.startswith("sqlite"):
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _ensure_sqlite_dir(url: str) -> None:
    path = url.split("///", 1)[-1] if "///" in url else ""
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


class Database:
    """Owns the engine and hands out unit-of-work sessions."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed when the block ends normally, rolled back otherwise."""
        session = self._sessions()
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
