"""``ai_detection.detection_methods``: the ensemble's weights, read on every analysis.

No cache: the weights are one small indexed read per analysis, and reading them every time is
what makes an operator's ``PUT /methods`` apply to the very next analysis in every process.
Rows for methods the code knows but the table lacks (a method added after the migration) are
inserted with their default weight the first time they are read.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from facesocial import errors
from facesocial.domains.ai_detection.catalogue import DEFAULT_WEIGHTS, DESCRIPTIONS
from facesocial.forensics.ai_image import report
from facesocial.forensics.ai_image.ensemble import MethodWeight
from facesocial.store.db import Database
from facesocial.store.tables import DetectionMethod
from facesocial.store.types import utcnow


@dataclass(frozen=True, slots=True)
class MethodUpdate:
    """One item of ``PUT /methods``: a field left None keeps its value."""

    method_name: str
    weight: float | None = None
    is_active: bool | None = None


class MethodsRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    def ensure(self) -> None:
        """Insert the rows of :data:`report.METHODS` that are missing (idempotent, race-safe)."""
        with self._db.session(readonly=True) as session:
            present = set(session.scalars(select(DetectionMethod.method_name)))
        for name in report.METHODS:
            if name in present:
                continue
            try:
                with self._db.session() as session:
                    session.add(
                        DetectionMethod(
                            method_id=uuid.uuid4(),
                            method_name=name,
                            description=DESCRIPTIONS.get(name),
                            is_active=True,
                            weight=DEFAULT_WEIGHTS.get(name, 1.0),
                        )
                    )
            except IntegrityError:  # another process inserted it meanwhile
                continue

    def rows(self) -> list[DetectionMethod]:
        """Every method row, in report order (unknown names last), detached from the session."""
        self.ensure()
        order = {name: i for i, name in enumerate(report.METHODS)}
        with self._db.session(readonly=True) as session:
            found = list(session.scalars(select(DetectionMethod)))
            session.expunge_all()
        return sorted(found, key=lambda r: (order.get(r.method_name, len(order)), r.method_name))

    def weights(self) -> dict[str, MethodWeight]:
        """``method_name → MethodWeight`` as stored now."""
        return {r.method_name: MethodWeight(float(r.weight), bool(r.is_active)) for r in self.rows()}

    def update(self, updates: Sequence[MethodUpdate]) -> None:
        """Apply every update in one transaction; none when a name is unknown.

        Raises:
            MethodNotFoundError (404): a ``method_name`` outside :data:`report.METHODS` (checked
                before any SQL) or not a row of the table.
            ValidationFailedError (422): a name given twice.
        """
        names = [u.method_name for u in updates]
        if len(set(names)) != len(names):
            raise errors.ValidationFailedError("each method_name may appear once", fields=["method_name"])
        # The names are a fixed set: anything else is refused before it reaches SQL, where a NUL
        # (PostgreSQL text cannot hold one) would be a driver error instead of this 404.
        foreign = sorted(set(names) - set(report.METHODS))
        if foreign:
            raise errors.MethodNotFoundError(
                f"No detection method {', '.join(map(repr, foreign))}; known: {', '.join(report.METHODS)}",
                unknown=foreign,
            )
        self.ensure()
        with self._db.session() as session:
            rows: Mapping[str, DetectionMethod] = {
                r.method_name: r
                for r in session.scalars(
                    select(DetectionMethod).where(DetectionMethod.method_name.in_(names))
                )
            }
            unknown = sorted(set(names) - set(rows))
            if unknown:
                raise errors.MethodNotFoundError(
                    f"No detection method {', '.join(unknown)}; known: {', '.join(report.METHODS)}",
                    unknown=unknown,
                )
            for update in updates:
                row = rows[update.method_name]
                if update.weight is not None:
                    row.weight = round(update.weight, 2)
                if update.is_active is not None:
                    row.is_active = update.is_active
                row.updated_at = utcnow()
