"""The scheduled upkeep, one function per task, shared by Celery beat and the embedded loop.

* :func:`sweep` (every ``jobs.sweep_seconds``): expired leases requeued or abandoned, jobs
  announced again, owed ``on_end`` calls, due callbacks.
* :func:`partitions` (daily): the coming months' audit-log partitions (PostgreSQL; store/maintenance.py).
* :func:`retention` (daily): ended jobs after ``jobs.retention_days`` and deepfake analyses after
  six months (document 000 §7.2), through the container's ``retention()``.
* :func:`rollup` (daily): yesterday's per-service totals (services/rollup.py).
* :func:`attention_rollup` (every ``attention.rollup_interval_seconds``): the 1-minute roll-up of
  the attention time series; :func:`attention_upkeep` (hourly): its coming daily partitions and
  its retention (store/attention_metrics.py; no-ops where TimescaleDB does the work).
* :func:`model_monitoring` (hourly): model versions' performance roll-up and drift checks over
  the inference records (domains/registry/monitoring.py).

Each takes the composition root and returns a JSON-able summary (logged by the callers).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from facesocial.services.rollup import rollup_day
from facesocial.store.maintenance import ensure_log_partitions

if TYPE_CHECKING:
    from facesocial.container import Container
    from facesocial.settings import Settings

log = logging.getLogger(__name__)

DAY_SECONDS = 24 * 3600.0


def sweep(container: Container) -> dict[str, Any]:
    report = container.job_runner.sweep(container.jobs.dispatch)
    return {
        "requeued": report.requeued,
        "abandoned": report.abandoned,
        "dispatched": [job_id for job_id, _priority in report.to_dispatch],
        "on_end": [ended.job_id for ended in report.owed_on_end],
    }


def partitions(container: Container) -> dict[str, Any]:
    return {"partitions_created": ensure_log_partitions(container.database)}


def retention(container: Container) -> dict[str, Any]:
    # The container's own pass covers jobs and every service's data; an older root only jobs.
    whole: Callable[[], dict[str, int]] | None = getattr(container, "retention", None)
    if callable(whole):
        return {"removed": whole()}
    return {"removed": {"jobs": container.job_store.purge(container.settings.jobs.retention_days)}}


def rollup(container: Container, day: date | None = None) -> dict[str, Any]:
    chosen = day or datetime.now(UTC).date() - timedelta(days=1)
    return {"date": chosen.isoformat(), "services": len(rollup_day(container.database, chosen))}


def attention_rollup(container: Container) -> dict[str, Any]:
    return {"buckets": container.attention_metrics.rollup(datetime.now(UTC))}


def attention_upkeep(container: Container) -> dict[str, Any]:
    store = container.attention_metrics
    now = datetime.now(UTC)
    store.ensure_partitions(now)
    return {"backend": store.backend, "rows_removed": store.retention(now)}


def model_monitoring(container: Container) -> dict[str, Any]:
    now = datetime.now(UTC)
    report = container.model_monitoring.upkeep(now)
    # Experiments past their duration stop here (their final results are stored then).
    report["experiments_stopped"] = container.experiments.expire(now)
    return report


def interval_seconds(name: str, settings: Settings) -> float:
    """How often the task ``name`` runs (seconds): its SCHEDULE entry, or the setting it follows."""
    if name == ATTENTION_ROLLUP:
        return settings.attention.rollup_interval_seconds
    interval = SCHEDULE[name][1]
    return interval if interval is not None else settings.jobs.sweep_seconds


ATTENTION_ROLLUP = "facesocial.attention.rollup"
# name → (function, default interval in seconds; None = jobs.sweep_seconds)
SCHEDULE: dict[str, tuple[Callable[[Container], dict[str, Any]], float | None]] = {
    "facesocial.jobs.sweep": (sweep, None),
    "facesocial.maintenance.partitions": (partitions, DAY_SECONDS),
    "facesocial.maintenance.retention": (retention, DAY_SECONDS),
    "facesocial.maintenance.rollup": (rollup, DAY_SECONDS),
    # The interval is attention.rollup_interval_seconds (interval_seconds); 60 is its default.
    ATTENTION_ROLLUP: (attention_rollup, 60.0),
    # Hourly: cheap when there is nothing to do; partitions exist a week ahead anyway.
    "facesocial.attention.upkeep": (attention_upkeep, 3600.0),
    # Hourly: the previous hour's performance roll-up and the last day's drift checks
    # (domains/registry/monitoring.py).
    "facesocial.registry.monitoring": (model_monitoring, 3600.0),
}


def run_logged(name: str, container: Container) -> dict[str, Any] | None:
    """Run one scheduled task by name, logging its summary or its failure (None)."""
    function, _interval = SCHEDULE[name]
    try:
        summary = function(container)
    except Exception:
        log.exception("%s failed; it runs again at its next time", name)
        return None
    quiet = name == "facesocial.jobs.sweep" and not any(summary.values())
    log.log(logging.DEBUG if quiet else logging.INFO, "%s: %s", name, summary)
    return summary
