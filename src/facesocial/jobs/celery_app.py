"""The scaled adapter: Celery workers on Redis; SQL still holds every job's state.

A message carries a job id only (``facesocial.jobs.run(job_id)``); the worker claims the row,
so a duplicate or late delivery does nothing and no result backend is needed. Broker settings:

* late acknowledgement, ``task_reject_on_worker_lost`` and a prefetch of one: a message is
  acknowledged once its job has ended, and a worker holds at most one job it has not started;
* Redis priorities: ``priority_steps`` 0..9 with ``queue_order_strategy: priority`` (on Redis
  0 is the most urgent), so our priorities 10..1 map to 0..9 (:func:`celery_priority`);
* ``visibility_timeout`` (``jobs.broker_visibility_timeout_seconds``): an unacknowledged message
  is delivered again after it; crash recovery does not rely on it (the sweep does that).

Beat (``facesocial beat``) sends the upkeep of :mod:`facesocial.jobs.periodic` to
``jobs.maintenance_queue``: the sweep every ``jobs.sweep_seconds`` (it requeues expired leases
and announces them again through :class:`CeleryJobQueue`), partitions, retention and roll-up daily.
Each worker process builds one :class:`~facesocial.container.Container` at its first task.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from celery import Celery
from celery.schedules import crontab

from facesocial.jobs import periodic
from facesocial.jobs.port import PRIORITY_MAX, PRIORITY_MIN
from facesocial.jobs.store import JobStore
from facesocial.settings import JobSettings, Settings

if TYPE_CHECKING:
    from facesocial.container import Container

log = logging.getLogger(__name__)

RUN_TASK = "facesocial.jobs.run"
SWEEP_TASK = "facesocial.jobs.sweep"
# Daily upkeep, UTC: the roll-up just after midnight (yesterday is complete), the rest at night.
_DAILY = {
    "facesocial.maintenance.partitions": crontab(hour=3, minute=0),
    "facesocial.maintenance.retention": crontab(hour=3, minute=30),
    "facesocial.maintenance.rollup": crontab(hour=0, minute=15),
}
# A request thread must not hang on a broker that is down: the sweep announces the job later.
_PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0.1, "interval_step": 0.2, "interval_max": 0.5}


def celery_priority(priority: int) -> int:
    """Our 1..10 (10 most urgent) as Redis's Celery priority 9..0 (0 most urgent)."""
    if not PRIORITY_MIN <= priority <= PRIORITY_MAX:
        raise ValueError(f"priority {priority} is outside {PRIORITY_MIN}..{PRIORITY_MAX}")
    return PRIORITY_MAX - priority


class _ProcessContainer:
    """One container per worker process, built at its first task (after the pool's fork)."""

    def __init__(self, settings: Settings, factory: Callable[[Settings], Container] | None) -> None:
        self._settings = settings
        self._factory = factory
        self._lock = threading.Lock()
        self._container: Container | None = None
        self._pid = 0

    def get(self) -> Container:
        with self._lock:
            if self._container is None or self._pid != os.getpid():
                self._container = self._build()
                self._pid = os.getpid()
            return self._container

    def _build(self) -> Container:
        if self._factory is not None:
            return self._factory(self._settings)
        from facesocial.container import Container

        return Container(self._settings)


def make_celery(
    settings: Settings, container_factory: Callable[[Settings], Container] | None = None
) -> Celery:
    """The Celery app on ``settings.jobs.broker_url`` with the run task and the upkeep tasks.

    ``container_factory``: how a worker process builds its container (default ``Container``).
    """
    jobs = settings.jobs
    transport: dict[str, Any] = {
        "queue_order_strategy": "priority",
        "priority_steps": list(range(10)),
        "visibility_timeout": jobs.broker_visibility_timeout_seconds,
    }
    if jobs.broker_key_prefix:
        transport["global_keyprefix"] = jobs.broker_key_prefix
    app = Celery("facesocial", broker=jobs.broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options=transport,
        broker_connection_retry_on_startup=True,
        task_default_queue=jobs.celery_queue,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        timezone="UTC",
        enable_utc=True,
        worker_hijack_root_logger=False,
        beat_schedule=_beat_schedule(jobs) | _interval_schedule(settings),
    )
    process = _ProcessContainer(settings, container_factory)

    @app.task(name=RUN_TASK, ignore_result=True)  # type: ignore[untyped-decorator]
    def run(job_id: str) -> bool:
        return bool(process.get().job_runner.run(job_id))

    for name in periodic.SCHEDULE:
        _register_upkeep(app, name, process)
    return app


def _register_upkeep(app: Celery, name: str, process: _ProcessContainer) -> None:
    @app.task(name=name, ignore_result=True)  # type: ignore[untyped-decorator]
    def upkeep() -> dict[str, Any] | None:
        return periodic.run_logged(name, process.get())


def _interval_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """The upkeep that runs every few seconds or minutes (the attention roll-up, its partitions)."""
    schedule: dict[str, dict[str, Any]] = {}
    for name in periodic.SCHEDULE:
        if name == SWEEP_TASK or name in _DAILY:
            continue
        every = periodic.interval_seconds(name, settings)
        schedule[name] = {
            "task": name,
            "schedule": timedelta(seconds=every),
            "options": {"queue": settings.jobs.maintenance_queue, "expires": every, "priority": 0},
        }
    return schedule


def _beat_schedule(jobs: JobSettings) -> dict[str, dict[str, Any]]:
    # Expiry: a message that waited longer than its period is dropped, not run late in a pile.
    schedule: dict[str, dict[str, Any]] = {
        SWEEP_TASK: {
            "task": SWEEP_TASK,
            "schedule": timedelta(seconds=jobs.sweep_seconds),
            "options": {"queue": jobs.maintenance_queue, "expires": jobs.sweep_seconds, "priority": 0},
        }
    }
    for name, when in _DAILY.items():
        schedule[name] = {
            "task": name,
            "schedule": when,
            "options": {"queue": jobs.maintenance_queue, "expires": 6 * 3600, "priority": 0},
        }
    return schedule


class CeleryJobQueue:
    """The Celery :class:`~facesocial.jobs.port.JobQueue` of API processes: publishes run messages.

    ``store``: records when a job was announced, so the sweep announces again only what a broker
    outage kept from the workers (without it the sweep announces each job once more, harmlessly).
    """

    def __init__(self, app: Celery, settings: JobSettings, store: JobStore | None = None) -> None:
        self.app = app
        self._settings = settings
        self._store = store

    def dispatch(self, job_id: str, priority: int) -> None:
        """Publish ``facesocial.jobs.run(job_id)`` at the job's priority; never raises (the sweep retries)."""
        try:
            self.app.send_task(
                RUN_TASK,
                args=[job_id],
                queue=self._settings.celery_queue,
                priority=celery_priority(priority),
                retry=True,
                retry_policy=_PUBLISH_RETRY,
            )
        except Exception:
            log.exception("could not publish job %s; the sweep announces it again", job_id)
            self._mark(job_id, dispatched=False)
            return
        self._mark(job_id, dispatched=True)

    def _mark(self, job_id: str, *, dispatched: bool) -> None:
        if self._store is None:
            return
        try:
            self._store.mark_dispatched(job_id, dispatched)
        except Exception:  # only a hint for the sweep: a failure costs one extra message
            log.warning("could not record the announcement of job %s", job_id, exc_info=True)

    def start(self) -> None:
        """Nothing runs in an API process: the workers are `facesocial worker` processes."""

    def stop(self) -> None:
        """Release the broker connections of this process."""
        pool = getattr(self.app, "_pool", None)
        if pool is not None:
            self.app.close()
