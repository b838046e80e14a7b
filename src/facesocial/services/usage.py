"""One tenant's API usage from ``audit.usage_logs`` (GET /api/v1/auth/usage).

Every API call writes one usage row (services/audit.py) naming the caller's tenant, the API key
when a key made the call, the route template (``GET /api/v1/face-detection/detect``; every
request that matched no route as the one endpoint ``unmatched``), the status and the processing
time. The report covers whole UTC days: today and the ``days − 1`` before it. Only rows of the
caller's tenant are read (``tenant_id`` is in the WHERE clause of every query, and in its index),
so another tenant's calls can never appear.

The figures are aggregated by the database, in four queries over the window's rows (the rows
themselves never reach Python): the most called endpoints, the most used keys, then requests,
4xx, 5xx and the sum of processing times per (day, endpoint, key) — every list but its p95 is a
sum of these — and the 95th percentile of the processing time of every group of every list
(milliseconds). The percentile is exact, by linear interpolation between the two nearest ranks
(numpy's default): ``percentile_cont(0.95)`` with GROUPING SETS on PostgreSQL; on SQLite, which
has no percentile aggregate, ROW_NUMBER/COUNT OVER each grouping rank the rows (SQLite's sorter,
which spills to disk) and only the (at most three) rows around that rank per group come back.

The answer is bounded whatever the rows hold: at most ``ENDPOINT_LIMIT`` endpoints (and keys)
are listed, the most called first; the rest are summed into one ``other`` entry
(``endpoints_total`` / ``keys_total`` say how many there were).
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Float,
    Integer,
    String,
    and_,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    tuple_,
)
from sqlalchemy.sql.selectable import Subquery

from facesocial.store.db import Database
from facesocial.store.tables import UsageLog
from facesocial.store.types import utcnow

MIN_DAYS = 1
MAX_DAYS = 90
DEFAULT_DAYS = 7
# Endpoints (and keys) listed by name; the others are summed into one OTHER entry.
ENDPOINT_LIMIT = 50
OTHER = "other"
_Q = 0.95


@dataclass(frozen=True)
class _Figures:
    requests: int
    errors_4xx: int
    errors_5xx: int
    mean_ms: float | None
    p95_ms: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors_4xx": self.errors_4xx,
            "errors_5xx": self.errors_5xx,
            "mean_ms": round(self.mean_ms, 3) if self.mean_ms is not None else None,
            "p95_ms": round(self.p95_ms, 3) if self.p95_ms is not None else None,
        }


_EMPTY = _Figures(0, 0, 0, None, None)


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
        where = [
            UsageLog.tenant_id == tenant_id,
            UsageLog.request_date >= start,
            UsageLog.request_date <= end,
        ]
        if api_key_id is not None:
            where.append(UsageLog.api_key_id == api_key_id)
        with self._db.session(readonly=True) as session:
            dialect = session.get_bind().dialect.name
            day = _day(dialect)
            key = cast(UsageLog.api_key_id, String)

            def top(column: Any) -> tuple[list[Any], int]:
                """The ENDPOINT_LIMIT most frequent values of ``column`` and how many there are
                (one scan)."""
                counted = (
                    select(column.label("v"), func.count().label("c"))
                    .where(*where)
                    .group_by(column)
                    .subquery()
                )
                rows = session.execute(
                    select(counted.c.v, func.count().over().label("distinct"))
                    .order_by(counted.c.c.desc(), counted.c.v)
                    .limit(ENDPOINT_LIMIT)
                ).all()
                return [row.v for row in rows], int(rows[0].distinct) if rows else 0

            endpoints, endpoints_total = top(UsageLog.request_path)
            keys, keys_total = top(key)
            # The window's rows with their day, endpoint and key buckets: the queries below group
            # by its columns (a bucket is a CASE with bound values, which PostgreSQL would not
            # recognise as the same expression twice).
            rows = (
                select(
                    day.label("d"),
                    _bucket(UsageLog.request_path, endpoints).label("e"),
                    _bucket(key, keys).label("k"),
                    UsageLog.response_code.label("code"),
                    cast(UsageLog.processing_time, Float).label("secs"),
                )
                .where(*where)
                .subquery()
            )
            sums = _sums(session, rows)
            p95 = (_p95_grouping_sets if dialect == "postgresql" else _p95_by_rank)(session, rows)

        def named(group: tuple[Any, ...], dims: tuple[int, ...]) -> tuple[Any, ...]:
            """(day, endpoint code, key code) → the dimensions ``dims`` with names."""
            full = (group[0], _unbucket(group[1], endpoints), _unbucket(group[2], keys))
            return tuple(full[i] for i in dims)

        def figures(dims: tuple[int, ...]) -> dict[tuple[Any, ...], _Figures]:
            """Sums of the fine groups over the dimensions ``dims`` (of day, endpoint, key)."""
            acc: dict[tuple[Any, ...], list[float]] = defaultdict(lambda: [0, 0, 0, 0.0])
            coded: dict[tuple[Any, ...], tuple[Any, ...]] = {}
            for group, (n, e4, e5, secs) in sums.items():
                label = named(group, dims)
                coded[label] = tuple(group[i] for i in dims)
                tally = acc[label]
                tally[0] += n
                tally[1] += e4
                tally[2] += e5
                tally[3] += secs
            return {
                g: _Figures(int(n), int(e4), int(e5), 1000.0 * secs / n, _ms(p95.get((dims, coded[g]))))
                for g, (n, e4, e5, secs) in acc.items()
            }

        totals = figures(()).get((), _EMPTY)
        by_day = {_as_date(k[0]): f for k, f in figures((0,)).items()}
        by_endpoint = figures((1,))
        by_day_endpoint = figures((0, 1))
        by_key = figures((2,))

        def ranked(items: dict[tuple[Any, ...], _Figures]) -> list[tuple[Any, _Figures]]:
            # The most called first; OTHER last.
            return sorted(
                ((k[0], f) for k, f in items.items()),
                key=lambda item: (item[0] == OTHER, -item[1].requests, item[0] or ""),
            )

        return {
            "days": days,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "api_key_id": str(api_key_id) if api_key_id else None,
            "endpoint_limit": ENDPOINT_LIMIT,
            "endpoints_total": endpoints_total,
            "keys_total": keys_total,
            "totals": totals.as_dict(),
            "per_day": [{"date": d.isoformat(), **by_day.get(d, _EMPTY).as_dict()} for d in day_list],
            "per_endpoint": [{"endpoint": e, **f.as_dict()} for e, f in ranked(by_endpoint)],
            "per_day_endpoint": [
                {"date": _as_date(d).isoformat(), "endpoint": e, **f.as_dict()}
                for (d, e), f in sorted(
                    by_day_endpoint.items(), key=lambda item: (_as_date(item[0][0]), item[0][1])
                )
            ],
            "per_key": [{"api_key_id": _key_id(k), **f.as_dict()} for k, f in ranked(by_key)],
        }


def _day(dialect: str) -> ColumnElement[Any]:
    """The UTC calendar day of a row."""
    if dialect == "postgresql":
        return cast(func.timezone("UTC", UsageLog.request_date), Date)
    # SQLite keeps the UTC time as text ("2026-06-15 11:00:00.000000"): the day as the integer
    # 20260615, which the window functions' sorts handle faster than text.
    column = UsageLog.request_date
    digits = func.substr(column, 1, 4).concat(func.substr(column, 6, 2)).concat(func.substr(column, 9, 2))
    return cast(digits, Integer)


def _bucket(column: Any, listed: Sequence[Any]) -> Any:
    """The index in ``listed`` of the row's ``column`` value, -1 (OTHER) when it is not listed:
    small integers keep the sorts and groups of the queries cheap."""
    named = {value: i for i, value in enumerate(listed) if value is not None}
    other: Any = case(named, value=column, else_=literal(-1)) if named else literal(-1)
    if None in listed:
        return case((column.is_(None), literal(listed.index(None))), else_=other)
    return other


def _unbucket(code: Any, listed: Sequence[Any]) -> Any:
    return OTHER if code is None or int(code) < 0 else listed[int(code)]


# The groupings the report lists, as indexes into (day, endpoint, key).
_GROUPINGS: tuple[tuple[int, ...], ...] = ((), (0,), (1,), (0, 1), (2,))


def _sums(session: Any, rows: Subquery) -> dict[tuple[Any, ...], tuple[int, int, int, float]]:
    """Requests, 4xx, 5xx and the sum of seconds per (day, endpoint, key): one scan; every figure
    but the percentile of a coarser grouping is a sum of these."""
    code = rows.c.code
    query = select(
        rows.c.d,
        rows.c.e,
        rows.c.k,
        func.count(),
        func.sum(case((and_(code >= 400, code < 500), 1), else_=0)),
        func.sum(case((code >= 500, 1), else_=0)),
        func.sum(rows.c.secs),
    ).group_by(rows.c.d, rows.c.e, rows.c.k)
    return {
        (_as_date(d), e, k): (int(n), int(e4 or 0), int(e5 or 0), float(secs or 0.0))
        for d, e, k, n, e4, e5, secs in session.execute(query)
    }


def _p95_grouping_sets(session: Any, rows: Subquery) -> dict[tuple[tuple[int, ...], tuple[Any, ...]], float]:
    """PostgreSQL: ``percentile_cont(0.95)`` of every grouping in one scan (GROUPING SETS)."""
    columns = (rows.c.d, rows.c.e, rows.c.k)
    sets = [tuple_(*[columns[i] for i in dims]) for dims in _GROUPINGS]
    query = select(
        *columns,
        func.grouping(*columns),
        func.percentile_cont(_Q).within_group(rows.c.secs),
    ).group_by(func.grouping_sets(*sets))
    out: dict[tuple[tuple[int, ...], tuple[Any, ...]], float] = {}
    for d, e, k, absent, value in session.execute(query):
        # GROUPING(d, e, k): one bit per column not grouped by, d the highest.
        dims = tuple(i for i in range(3) if not absent & (4 >> i))
        fine = (_as_date(d) if d is not None else None, e, k)
        if value is not None:  # the grand total of no rows
            out[(dims, tuple(fine[i] for i in dims))] = float(value)
    return out


def _p95_by_rank(session: Any, rows: Subquery) -> dict[tuple[tuple[int, ...], tuple[Any, ...]], float]:
    """SQLite, which has no percentile aggregate: every row ranked within its group of every
    grouping (window functions, one scan), only the rows around rank 0.95·(n − 1) sent back and
    interpolated here — at most three rows per group and grouping leave the database."""
    columns = (rows.c.d, rows.c.e, rows.c.k)
    windows: list[Any] = []
    for j, dims in enumerate(_GROUPINGS):
        partition = [columns[i] for i in dims] or None
        windows.append(func.row_number().over(partition_by=partition, order_by=rows.c.secs).label(f"r{j}"))
        windows.append(func.count().over(partition_by=partition).label(f"n{j}"))
    inner = select(*columns, rows.c.secs, *windows).subquery()
    near = []
    for j in range(len(_GROUPINGS)):
        # 1-based ranks floor(0.95·(n − 1)) .. +2 hold the 0-based ranks k and k + 1 (float slack).
        low = cast(_Q * (inner.c[f"n{j}"] - 1), Integer)
        near.append(and_(inner.c[f"r{j}"] >= low, inner.c[f"r{j}"] <= low + 2))
    values: dict[tuple[tuple[int, ...], tuple[Any, ...]], dict[int, float]] = defaultdict(dict)
    sizes: dict[tuple[tuple[int, ...], tuple[Any, ...]], int] = {}
    for row in session.execute(select(inner).where(or_(*near))).mappings():
        fine = (_as_date(row["d"]), row["e"], row["k"])
        for j, dims in enumerate(_GROUPINGS):
            group = (dims, tuple(fine[i] for i in dims))
            values[group][int(row[f"r{j}"]) - 1] = float(row["secs"])
            sizes[group] = int(row[f"n{j}"])
    out: dict[tuple[tuple[int, ...], tuple[Any, ...]], float] = {}
    for group, n in sizes.items():
        position = _Q * (n - 1)
        k = math.floor(position)
        ranks = values[group]
        if k in ranks:
            below = ranks[k]
            above = ranks.get(k + 1, below)
            out[group] = below + (above - below) * (position - k)
    return out


def _ms(seconds: float | None) -> float | None:
    return seconds * 1000.0 if seconds is not None else None


def _as_date(value: Any) -> date:
    if isinstance(value, date):
        return value
    if isinstance(value, int):  # SQLite's 20260615
        return date(value // 10000, value // 100 % 100, value % 100)
    return date.fromisoformat(str(value)[:10])


def _key_id(value: Any) -> str | None:
    """A key's id as text (UUIDs are stored without dashes on SQLite), OTHER or None."""
    if value is None or value == OTHER:
        return value  # type: ignore[no-any-return]
    return str(uuid.UUID(str(value)))
