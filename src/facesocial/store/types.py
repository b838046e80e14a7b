"""Column types that are native on PostgreSQL and portable to SQLite."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Numeric, String
from sqlalchemy.dialects.postgresql import INET, JSONB
from sqlalchemy.types import TypeEngine

JsonB: TypeEngine[Any] = JSON().with_variant(JSONB(), "postgresql")
Inet: TypeEngine[str] = String(45).with_variant(INET(), "postgresql")
TimestampTZ = DateTime(timezone=True)


def score_type() -> Numeric[float]:
    """DECIMAL(5,4) as in the documents, read back as a Python float."""
    return Numeric(5, 4, asdecimal=False)


def utcnow() -> datetime:
    return datetime.now(UTC)
