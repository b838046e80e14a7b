"""Reconcile SQL (the source of truth) with the vector index, and repair what disagrees.

What a crash between the steps of services/face_writes.py can leave, and the repair of each:

* ``missing``: an active face row whose vector is absent (e.g. milvus-lite lost unflushed rows to
  a ``kill -9``) → the vector is written again from ``face_data.embedding``.
* ``orphans``: a vector with no face row at all → deleted.
* ``stranded pending``: a registration that never reached "active" within the grace period (its
  request died, and no 200 was given) → the row is rolled back, then its vector.
* ``unfinished erasures``: users marked for erasure longer than the grace period → the erasure
  is finished (vectors, then rows).

No lock is needed: each repair is conditional or idempotent and re-reads SQL after the index.
Ids are listed from the index *before* SQL is read, and a face row is always written before its
vector and deleted after it, so a vector seen in the listing has a row unless it really is an
orphan. A vector written again for a face that an erasure marked meanwhile is deleted again by
the check that follows the write.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import and_, select

from facesocial import errors
from facesocial.services.face_writes import FaceWriter, delete_face_rows, drop_faceless_users
from facesocial.store.db import Database
from facesocial.store.tables import FACE_ACTIVE, FACE_PENDING, FaceData, User
from facesocial.store.types import utcnow
from facesocial.store.vector_index import VectorIndex

log = logging.getLogger(__name__)

_BATCH = 1000
# The largest grace period a pass accepts. A write pending for 30 days is long dead, and the
# cut-off date (now - grace) must stay a representable date: 1e12 s or infinity overflowed.
MAX_GRACE_SECONDS = 30 * 24 * 3600
# Collections whose rows are not face rows: another owner keeps them in step with SQL
# (deepfake_features: domains/deepfake/known_content.py KnownContent.repair). Checking them here
# would take every one of their vectors for an orphan and delete it.
NOT_FACE_COLLECTIONS = frozenset({"deepfake_features"})


@dataclass(slots=True)
class CollectionCheck:
    """One collection's comparison; the id lists name every discrepancy found."""

    collection: str
    active_rows: int = 0
    vectors: int = 0
    missing: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    stranded_pending: list[str] = field(default_factory=list)

    @property
    def discrepancies(self) -> int:
        return len(self.missing) + len(self.orphans) + len(self.stranded_pending)

    def as_dict(self, show: int) -> dict[str, Any]:
        return {
            "collection": self.collection,
            "active_rows": self.active_rows,
            "vectors": self.vectors,
            "missing_vectors": len(self.missing),
            "orphan_vectors": len(self.orphans),
            "stranded_pending": len(self.stranded_pending),
            "missing_vector_ids": self.missing[:show],
            "orphan_vector_ids": self.orphans[:show],
            "stranded_pending_ids": self.stranded_pending[:show],
        }


@dataclass(slots=True)
class ReconcileReport:
    """A pass over every collection; ``consistent`` when nothing is (left) out of step."""

    started_at: datetime
    repair: bool
    collections: list[CollectionCheck] = field(default_factory=list)
    unfinished_erasures: list[str] = field(default_factory=list)  # internal user ids
    repaired: dict[str, int] = field(default_factory=dict)
    failed_repairs: int = 0
    finished_at: datetime | None = None

    @property
    def found(self) -> int:
        return sum(c.discrepancies for c in self.collections) + len(self.unfinished_erasures)

    @property
    def consistent(self) -> bool:
        """True when SQL and the index agree now (after the repairs, when repairing)."""
        if self.repair:
            return self.failed_repairs == 0
        return self.found == 0

    def as_dict(self, show: int = 100) -> dict[str, Any]:
        return {
            "consistent": self.consistent,
            "repair": self.repair,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "discrepancies_found": self.found,
            "repaired": self.repaired,
            "failed_repairs": self.failed_repairs,
            "unfinished_erasures": len(self.unfinished_erasures),
            "collections": [c.as_dict(show) for c in self.collections],
        }


class Reconciler:
    """Compares and repairs; ``grace_seconds`` protects writes still in flight."""

    def __init__(
        self, database: Database, index: VectorIndex, writer: FaceWriter, grace_seconds: float = 120.0
    ) -> None:
        self._db = database
        self._index = index
        self._writer = writer
        self.grace_seconds = grace_seconds

    def run(self, *, repair: bool, grace_seconds: float | None = None) -> ReconcileReport:
        """Check every collection (and repair if asked). Store errors propagate to the caller."""
        grace = self.grace_seconds if grace_seconds is None else grace_seconds
        if not 0 <= grace <= MAX_GRACE_SECONDS:  # NaN fails this too
            raise errors.ValidationFailedError(
                f"grace_seconds must be between 0 and {MAX_GRACE_SECONDS} (30 days), got {grace}",
                fields=["grace_seconds"],
            )
        report = ReconcileReport(started_at=utcnow(), repair=repair)
        cutoff = report.started_at - timedelta(seconds=grace)
        report.unfinished_erasures = self._erasures_before(cutoff)
        if repair:
            self._count(report, "erasures_finished", self._finish_erasures(report.unfinished_erasures))
        for name in self._collection_names():
            check = self._check(name, cutoff)
            report.collections.append(check)
            if repair:
                self._repair(check, cutoff, report)
        report.finished_at = utcnow()
        if report.found:
            log.warning(
                "index reconcile: %d discrepancies (%s), repaired %s, %d failed",
                report.found,
                ", ".join(f"{c.collection}: {c.discrepancies}" for c in report.collections),
                report.repaired,
                report.failed_repairs,
            )
        return report

    # --- checks -------------------------------------------------------------------------------------
    def _collection_names(self) -> list[str]:
        with self._db.session() as session:
            in_sql = set(session.scalars(select(FaceData.milvus_collection).distinct()).all())
        return sorted((in_sql | set(self._index.collections())) - NOT_FACE_COLLECTIONS)

    def _check(self, name: str, cutoff: datetime) -> CollectionCheck:
        check = CollectionCheck(name)
        # The index first: see the module docstring for why the order matters.
        in_index = set(self._index.ids(name)) if name in self._index.collections() else set()
        check.vectors = len(in_index)
        with self._db.session() as session:
            rows = session.execute(
                select(FaceData.face_id, FaceData.status, FaceData.updated_at).where(
                    FaceData.milvus_collection == name
                )
            ).all()
        known: set[str] = set()
        for face_id, status, updated_at in rows:
            known.add(face_id)
            if status == FACE_ACTIVE:
                check.active_rows += 1
                if face_id not in in_index:
                    check.missing.append(face_id)
            elif status == FACE_PENDING and updated_at < cutoff:
                check.stranded_pending.append(face_id)
        check.orphans = sorted(in_index - known)
        check.missing.sort()
        check.stranded_pending.sort()
        return check

    def _erasures_before(self, cutoff: datetime) -> list[str]:
        with self._db.session() as session:
            users = session.scalars(
                select(User.user_id).where(and_(User.deleted_at.is_not(None), User.deleted_at < cutoff))
            ).all()
        return [str(u) for u in users]

    # --- repairs ------------------------------------------------------------------------------------
    def _repair(self, check: CollectionCheck, cutoff: datetime, report: ReconcileReport) -> None:
        name = check.collection
        repairs: list[tuple[str, Callable[[], int]]] = [
            ("pending_rolled_back", lambda: self._rollback(name, check, cutoff)),
            ("vectors_restored", lambda: self._restore(name, check.missing)),
            ("orphans_deleted", lambda: self._drop_orphans(name, check.orphans)),
        ]
        for key, action in repairs:
            self._count(report, key, self._attempt(report, action))

    def _attempt(self, report: ReconcileReport, action: Callable[[], int]) -> int:
        try:
            return action()
        except Exception:
            report.failed_repairs += 1
            log.exception("index reconcile: a repair failed; the next pass retries it")
            return 0

    @staticmethod
    def _count(report: ReconcileReport, key: str, value: int) -> None:
        report.repaired[key] = report.repaired.get(key, 0) + value

    def _finish_erasures(self, users: Sequence[str]) -> int:
        for user in users:
            self._writer.finish_erasure(uuid.UUID(user))
        return len(users)

    def _rollback(self, name: str, check: CollectionCheck, cutoff: datetime) -> int:
        """Row first (only if still pending and old), then its vector: see face_writes."""
        rolled: list[str] = []
        for chunk in _chunks(check.stranded_pending):
            with self._db.session() as session:
                # FOR UPDATE: a late activation of one of these waits, then finds it gone.
                still = session.execute(
                    select(FaceData.id, FaceData.user_id)
                    .where(
                        FaceData.face_id.in_(chunk),
                        FaceData.status == FACE_PENDING,
                        FaceData.updated_at < cutoff,
                    )
                    .with_for_update()
                ).all()
                delete_face_rows(session, [face_id for face_id, _ in still])
                drop_faceless_users(session, list({user_id for _, user_id in still}))
            rolled.extend(str(face_id) for face_id, _ in still)
        if rolled:
            self._index.delete(name, rolled)
        return len(rolled)

    def _restore(self, name: str, missing: Sequence[str]) -> int:
        restored = 0
        for chunk in _chunks(missing):
            with self._db.session() as session:
                rows = session.execute(
                    select(
                        FaceData.face_id, FaceData.embedding, FaceData.embedding_dimension, FaceData.tenant_id
                    ).where(FaceData.face_id.in_(chunk), FaceData.status == FACE_ACTIVE)
                ).all()
            if not rows:
                continue
            dimension = int(rows[0].embedding_dimension)
            self._index.ensure_collection(name, dimension)
            ids = [row.face_id for row in rows]
            vectors = np.stack([np.frombuffer(row.embedding, dtype=np.float32) for row in rows])
            self._index.upsert(name, ids, vectors, partitions=[str(row.tenant_id) for row in rows])
            # An erasure may have marked some of these between our read and our write.
            with self._db.session() as session:
                still_active = set(
                    session.scalars(
                        select(FaceData.face_id).where(
                            FaceData.face_id.in_(ids), FaceData.status == FACE_ACTIVE
                        )
                    ).all()
                )
            gone = [face_id for face_id in ids if face_id not in still_active]
            if gone:
                self._index.delete(name, gone)
            restored += len(ids) - len(gone)
        return restored

    def _drop_orphans(self, name: str, orphans: Sequence[str]) -> int:
        dropped = 0
        for chunk in _chunks(orphans):
            with self._db.session(readonly=True) as session:
                have_rows = set(
                    session.scalars(select(FaceData.face_id).where(FaceData.face_id.in_(chunk))).all()
                )
            dropped += self._index.delete(name, [face_id for face_id in chunk if face_id not in have_rows])
        return dropped


@dataclass(slots=True)
class ConsistencyState:
    """What /health/ready reports about SQL and the index.

    ``ok`` only once a pass has completed and left nothing out of step. A pass that could not run
    (a store down: its own readiness check says so) keeps the last completed verdict — an outage
    does not put the stores out of step, since every write fails cleanly — but until a first pass
    has completed after start-up (a crash may have left repairs to do) the status is ``pending``.
    """

    last: ReconcileReport | None = None
    last_error: str | None = None
    attempted_at: datetime | None = None

    @property
    def status(self) -> str:
        if self.last is None:
            return "pending"
        return "ok" if self.last.consistent else "inconsistent"

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": self.status}
        if self.last is not None:
            body["checked_at"] = (self.last.finished_at or self.last.started_at).isoformat()
            body["discrepancies_found"] = self.last.found
            body["repaired"] = self.last.repaired
            body["failed_repairs"] = self.last.failed_repairs
        if self.last_error:
            body["last_error"] = self.last_error
            if self.attempted_at:
                body["last_attempt_at"] = self.attempted_at.isoformat()
        return body


class ReconcileLoop:
    """Reconciles (with repair) at start-up and then every ``interval_seconds`` in a thread."""

    def __init__(self, reconciler: Reconciler, interval_seconds: float, retry_seconds: float = 15.0) -> None:
        self._reconciler = reconciler
        self._interval = interval_seconds
        self._retry = retry_seconds
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.state = ConsistencyState()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="index-reconcile", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def run_once(self) -> ReconcileReport | None:
        """One pass with repair; the state records its outcome (errors included)."""
        try:
            report = self._reconciler.run(repair=True)
        except Exception as exc:
            log.warning("index reconcile could not run: %s", exc)
            self.state = ConsistencyState(self.state.last, f"{type(exc).__name__}: {exc}"[:300], utcnow())
            return None
        self.record(report)
        return report

    def record(self, report: ReconcileReport) -> None:
        """Make a completed pass (also one run elsewhere, e.g. the admin route) the verdict."""
        self.state = ConsistencyState(report, None, report.finished_at or utcnow())

    def _loop(self) -> None:
        while not self._stop.is_set():
            report = self.run_once()
            wait = self._interval if report is not None and report.consistent else self._retry
            self._wake.wait(wait)
            self._wake.clear()


def _chunks(items: Sequence[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), _BATCH):
        yield list(items[start : start + _BATCH])
