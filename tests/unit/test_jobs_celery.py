"""The Celery app's configuration and the priority mapping (no broker is contacted).

That the broker really orders and redelivers jobs this way is the contract test's part
(tests/integration/test_jobs_contract.py, ``celery``).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from facesocial.jobs import periodic
from facesocial.jobs.celery_app import RUN_TASK, CeleryJobQueue, celery_priority, make_celery
from facesocial.settings import JobSettings, Settings


@pytest.mark.parametrize(("ours", "celery"), [(10, 0), (9, 1), (5, 5), (1, 9)])
def test_priorities_map_onto_redis_order(ours: int, celery: int) -> None:
    assert celery_priority(ours) == celery


@pytest.mark.parametrize("bad", [0, 11])
def test_priorities_outside_the_range_are_refused(bad: int) -> None:
    with pytest.raises(ValueError):
        celery_priority(bad)


def _settings() -> Settings:
    jobs = JobSettings(
        broker_url="redis://127.0.0.1:6379/15",
        celery_queue="videos",
        maintenance_queue="upkeep",
        sweep_seconds=7.0,
        broker_visibility_timeout_seconds=900.0,
        broker_key_prefix="site-a:",
    )
    return Settings(jobs=jobs)


def test_the_app_acknowledges_late_and_prefetches_one() -> None:
    app = make_celery(_settings())
    conf = app.conf
    assert (conf.task_acks_late, conf.task_reject_on_worker_lost, conf.worker_prefetch_multiplier) == (
        True,
        True,
        1,
    )
    assert conf.broker_transport_options == {
        "queue_order_strategy": "priority",
        "priority_steps": list(range(10)),
        "visibility_timeout": 900.0,
        "global_keyprefix": "site-a:",
    }
    assert conf.task_default_queue == "videos"
    assert RUN_TASK in app.tasks and set(periodic.SCHEDULE) <= set(app.tasks)


def test_beat_sends_the_upkeep_to_the_maintenance_queue() -> None:
    schedule = make_celery(_settings()).conf.beat_schedule
    assert set(schedule) == set(periodic.SCHEDULE)
    sweep = schedule["facesocial.jobs.sweep"]
    assert sweep["schedule"] == timedelta(seconds=7)
    assert sweep["options"]["queue"] == "upkeep" and sweep["options"]["expires"] == 7.0
    assert all(entry["options"]["queue"] == "upkeep" for entry in schedule.values())


def test_dispatch_never_raises_when_the_broker_is_down(caplog: pytest.LogCaptureFixture) -> None:
    """Port 1 refuses connections: the job stays pending for the sweep to announce later."""
    settings = _settings()
    settings.jobs.broker_url = "redis://127.0.0.1:1/0"
    queue = CeleryJobQueue(make_celery(settings), settings.jobs)
    job_id = "job_" + "0" * 32
    queue.dispatch(job_id, 5)
    queue.stop()
    assert any(f"could not publish job {job_id}" in record.getMessage() for record in caplog.records)
