"""One tenant's API usage from ``audit.usage_logs`` (GET /api/v1/auth/usage).

Every API call writes one usage row (services/audit.py) naming the caller's tenant, the API key
when a key made the call, the route template (``GET /api/v1/face-detection/detect``), the status
and the processing time. The report covers whole UTC days: today and the ``days − 1`` before
it. Only rows of the caller's tenant are read (``tenant_id`` is in the WHERE clause of the one
query, and in its index), so another tenant's calls can never appear.

The figures are computed in Python over the window's rows, read in batches (the same code on
SQLite and PostgreSQL; percentiles need every time anyway): counts, 4xx and 5xx counts, mean and
95th percentile (linear interpolation, numpy's default) of the processing time in milliseconds.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
from sqlalchemy import select

from facesocial.store.db import Database
from facesocial.store.tables import UsageLog
from facesocial.store.types import utcnow

MIN_DAYS = 1
MAX_DAYS = 90
DEFAULT_DAYS = 7
_BATCH = 5000


@dataclass
class _Tally:
    requests: int = 0
    errors_4xx: int = 0
    errors_5xx: int = 0
    times_ms: list[float] = field(default_factory=list)

    def add(self, status: int, ms: float) -> None:
        self.requests += 1
        if 400 <= status < 500:
            self.errors_4xx += 1
        elif status >= 500:
            self.errors_5xx += 1
        self.times_ms.append(ms)

    def as_dict(self) -> dict[str, Any]:
        times = np.asarray(self.times_ms, dtype=np.float64)
        return {
            "requests": self.requests,
            "errors_4xx": self.errors_4xx,
            "errors_5xx": self.errors_5xx,
            "mean_ms": round(float(times.mean()), 3) if times.size else None,
            "p95_ms": round(float(np.percentile(times, 95)), 3) if times.size else None,
        }


def window(days: int, now: datetime | None = None) -> tuple[datetime, datetime, list[date]]:
    """[start, end) of the report: midnight UTC ``days − 1`` days ago up to now; its days."""
    now = now or utcnow()
    today = now.astimezone(UTC).date()
    first = today - timedelta(days=days - 1)
    start = datetime.combine(first, time.min, tzinfo=UTC)
    return start, now, [first + timedelta(days=i) for i in range(days)]


class UsageService:
    def __init__(self, database: Database) -> None:
        self._db = database

    def report(
        self,
        tenant_id: uuid.UUID,
        *,
        days: int = DEFAULT_DAYS,
        api_key_id: uuid.UUID | None = None,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        """The tenant's usage over the window (only one of its keys with ``api_key_id``)."""
        if not MIN_DAYS <= days <= MAX_DAYS:
            raise ValueError(f"days must be {MIN_DAYS}..{MAX_DAYS}")
        start, end, day_list = window(days, now)
        total = _Tally()
        by_day: dict[date, _Tally] = {d: _Tally() for d in day_list}
        by_endpoint: dict[str, _Tally] = defaultdict(_Tally)
        by_day_endpoint: dict[tuple[date, str], _Tally] = defaultdict(_Tally)
        by_key: dict[str | None, _Tally] = defaultdict(_Tally)
        query = select(
            UsageLog.request_date,
            UsageLog.request_path,
            UsageLog.response_code,
            UsageLog.processing_time,
            UsageLog.api_key_id,
        ).where(
            UsageLog.tenant_id == tenant_id,
            UsageLog.request_date >= start,
            UsageLog.request_date <= end,
        )
        if api_key_id is not None:
            query = query.where(UsageLog.api_key_id == api_key_id)
        with self._db.session(readonly=True) as session:
            for at, path, status, seconds, key in session.execute(query.execution_options(yield_per=_BATCH)):
                day = _utc(at).date()
                ms = float(seconds) * 1000.0
                for tally in (
                    total,
                    by_day.setdefault(day, _Tally()),
                    by_endpoint[path],
                    by_day_endpoint[(day, path)],
                    by_key[str(key) if key else None],
                ):
                    tally.add(status, ms)
        return {
            "days": days,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "api_key_id": str(api_key_id) if api_key_id else None,
            "totals": total.as_dict(),
            "per_day": [{"date": d.isoformat(), **t.as_dict()} for d, t in sorted(by_day.items())],
            "per_endpoint": [
                {"endpoint": e, **t.as_dict()}
                for e, t in sorted(by_endpoint.items(), key=lambda item: (-item[1].requests, item[0]))
            ],
            "per_day_endpoint": [
                {"date": d.isoformat(), "endpoint": e, **t.as_dict()}
                for (d, e), t in sorted(by_day_endpoint.items())
            ],
            "per_key": [
                {"api_key_id": k, **t.as_dict()}
                for k, t in sorted(by_key.items(), key=lambda item: (-item[1].requests, item[0] or ""))
            ],
        }


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes (stored as UTC).
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
