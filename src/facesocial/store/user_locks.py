"""Per-user write locks: one writer at a time per enrolled person, across threads and processes.

Registration and erasure of one user touch two stores (SQL, then the vector index) in several
steps; two such writers interleaving for the same user is how a register racing an erasure
left a vector whose row was gone, or failed on a row deleted under it. Every write of a user's
face data holds this lock from its first read to its last write.

* PostgreSQL: a session-level advisory lock (``pg_advisory_lock``) on a connection of its own,
  so it spans the several transactions of one write, works across every API process sharing the
  database, and is released by the server if the process dies (a ``kill -9`` strands nothing).
* SQLite (the embedded profile): a lock per key inside the process. The embedded profile is one
  process by construction (its vector index is held by exactly one process), so this is enough.

The key is ``(tenant_id, external user id)``: the names a client can race on.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from facesocial import errors

DEFAULT_TIMEOUT_SECONDS = 30.0


def lock_key(tenant_id: uuid.UUID, external_id: uuid.UUID) -> int:
    """A signed 64-bit key (PostgreSQL advisory locks take a ``bigint``)."""
    digest = hashlib.blake2b(f"user:{tenant_id}:{external_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _busy(timeout: float) -> errors.FaceSocialError:
    return errors.ServerBusyError(
        f"Another request is changing this user's faces; it did not finish within {timeout:g} s",
        retry_after=max(1, round(timeout / 10)),
    )


class UserLocks(Protocol):
    def hold(
        self, tenant_id: uuid.UUID, external_id: uuid.UUID, timeout: float = DEFAULT_TIMEOUT_SECONDS
    ) -> AbstractContextManager[None]:
        """Hold the user's write lock; raises ``SERVER_BUSY`` (503) after ``timeout`` seconds."""
        ...


class LocalUserLocks:
    """Locks inside one process; entries are dropped when nobody holds or waits for them."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[int, tuple[threading.Lock, int]] = {}

    @contextmanager
    def hold(
        self, tenant_id: uuid.UUID, external_id: uuid.UUID, timeout: float = DEFAULT_TIMEOUT_SECONDS
    ) -> Iterator[None]:
        key = lock_key(tenant_id, external_id)
        with self._guard:
            lock, users = self._locks.get(key, (threading.Lock(), 0))
            self._locks[key] = (lock, users + 1)
        try:
            if not lock.acquire(timeout=timeout):
                raise _busy(timeout)
            try:
                yield
            finally:
                lock.release()
        finally:
            with self._guard:
                lock, users = self._locks[key]
                if users == 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, users - 1)


class PostgresUserLocks:
    """``pg_advisory_lock`` held on a dedicated autocommit connection for the whole write."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @contextmanager
    def hold(
        self, tenant_id: uuid.UUID, external_id: uuid.UUID, timeout: float = DEFAULT_TIMEOUT_SECONDS
    ) -> Iterator[None]:
        key = lock_key(tenant_id, external_id)
        # Autocommit: the lock belongs to the session, and no transaction stays open while held.
        with self._engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            try:
                connection.execute(
                    text("SELECT set_config('lock_timeout', :ms, false)"), {"ms": f"{round(timeout * 1000)}"}
                )
                connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
            except DBAPIError as exc:
                _reset_timeout(connection)
                if getattr(exc.orig, "sqlstate", None) == "55P03":  # lock_not_available
                    raise _busy(timeout) from exc
                raise
            _reset_timeout(connection)
            try:
                yield
            finally:
                try:
                    connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                except DBAPIError:
                    # The connection is gone, and the server released the lock with it; never
                    # hand this connection back to the pool.
                    connection.invalidate()


def _reset_timeout(connection: Connection) -> None:
    """Pooled connections are reused: leave no lock_timeout behind for the next user."""
    try:
        connection.execute(text("SELECT set_config('lock_timeout', '0', false)"))
    except DBAPIError:
        connection.invalidate()
