"""Column types that are native on PostgreSQL and portable to SQLite."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Dialect, Numeric, String, TypeDecorator
from sqlalchemy.dialects.postgresql import INET, JSONB
from sqlalchemy.types import TypeEngine

JsonB: TypeEngine[Any] = JSON().with_variant(JSONB(), "postgresql")
Inet: TypeEngine[str] = String(45).with_variant(INET(), "postgresql")


class _UtcTimestamp(TypeDecorator[datetime]):
    """TIMESTAMPTZ on PostgreSQL. SQLite has no time zones: values are stored as UTC and read
    back as aware UTC datetimes, so every dialect hands the code the same kind of value."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None and dialect.name == "sqlite":
            return value.astimezone(UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


TimestampTZ = _UtcTimestamp()


def score_type() -> Numeric[float]:
    """DECIMAL(5,4) as in the documents, read back as a Python float."""
    return Numeric(5, 4, asdecimal=False)


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(value: datetime | None) -> str | None:
    """An aware datetime as ISO 8601 text (``2026-12-01T18:00:00+00:00``), None as None: how
    every response writes its times."""
    return value.isoformat() if value is not None else None
