"""Daily roll-up of ``audit.ai_operations_log`` into ``audit.performance_metrics``.

Computed in Python over one day's rows so it runs the same on SQLite and PostgreSQL; a day
is re-computed from scratch, so running it twice gives the same rows.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
from sqlalchemy import delete, select

from facesocial.store.db import Database
from facesocial.store.tables import AiOperationLog, PerformanceMetric

# Confidence buckets of the dashboards: high ≥ 0.8, medium 0.5–0.8, low < 0.5.
HIGH, MEDIUM = 0.8, 0.5


def rollup_day(database: Database, day: date) -> list[dict[str, Any]]:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    end = start + timedelta(days=1)
    with database.session() as session:
        rows = session.execute(
            select(
                AiOperationLog.service_name,
                AiOperationLog.operation_result,
                AiOperationLog.processing_time_ms,
                AiOperationLog.confidence_score,
                AiOperationLog.error_code,
            ).where(AiOperationLog.created_at >= start, AiOperationLog.created_at < end)
        ).all()
        by_service: dict[str, list[Any]] = {}
        for row in rows:
            by_service.setdefault(row.service_name, []).append(row)
        session.execute(delete(PerformanceMetric).where(PerformanceMetric.metric_date == day))
        summaries = []
        for service, items in sorted(by_service.items()):
            summary = _summarise(items)
            session.add(PerformanceMetric(metric_date=day, service_name=service, **summary))
            summaries.append({"service_name": service, "metric_date": day.isoformat(), **summary})
    return summaries


def _summarise(items: list[Any]) -> dict[str, Any]:
    total = len(items)
    failed = sum(1 for r in items if r.operation_result != "success")
    times = np.array([r.processing_time_ms for r in items if r.processing_time_ms is not None], float)
    scores = np.array([r.confidence_score for r in items if r.confidence_score is not None], float)
    codes = [r.error_code or "" for r in items]
    return {
        "total_requests": total,
        "successful_requests": total - failed,
        "failed_requests": failed,
        "avg_response_time_ms": round(float(times.mean()), 2) if times.size else None,
        "p95_response_time_ms": round(float(np.percentile(times, 95)), 2) if times.size else None,
        "p99_response_time_ms": round(float(np.percentile(times, 99)), 2) if times.size else None,
        "avg_confidence_score": round(float(np.clip(scores.mean(), -9.9999, 9.9999)), 4)
        if scores.size
        else None,
        "high_confidence_count": int((scores >= HIGH).sum()),
        "medium_confidence_count": int(((scores >= MEDIUM) & (scores < HIGH)).sum()),
        "low_confidence_count": int((scores < MEDIUM).sum()),
        "error_rate": round(failed / total, 4) if total else None,
        "timeout_count": sum(1 for c in codes if "TIMEOUT" in c),
        "model_error_count": sum(1 for c in codes if c.startswith("MODEL_")),
    }
