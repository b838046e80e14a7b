"""``facesocial worker``, ``facesocial beat`` and ``facesocial jobs show|probe`` (docs/jobs.md).

With ``FACESOCIAL_JOBS__BROKER_URL`` set (scaled profile) ``worker`` is a Celery worker and
``beat`` Celery beat; without it (embedded) ``worker`` runs the in-process worker threads on the
configured database and ``beat`` runs the same scheduled upkeep in a loop. Both run in the
foreground until SIGTERM or SIGINT.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer

from facesocial import errors
from facesocial.container import Container
from facesocial.jobs import periodic
from facesocial.jobs.builtin import ProbeRequest, submit_probe
from facesocial.settings import Settings
from facesocial.store.tables import JOB_TERMINAL

log = logging.getLogger(__name__)

# Printed on stderr once the worker takes jobs (scripts and tests wait for it).
READY_LINE = "facesocial worker ready"

jobs_app = typer.Typer(no_args_is_help=True, help="Asynchronous jobs: show one, run a diagnostics probe")

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="Data folder (default: FACESOCIAL_DATA_DIR)")
]
LogLevel = Annotated[str, typer.Option("--loglevel", help="DEBUG, INFO, WARNING or ERROR")]


def _settings(data_dir: Path | None) -> Settings:
    return Settings() if data_dir is None else Settings(data_dir=data_dir)


def _logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s %(processName)s: %(message)s"
    )


def _until_signalled() -> None:
    """Block the main thread until SIGTERM or SIGINT."""
    stop = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda _signum, _frame: stop.set())
    while not stop.wait(1.0):
        pass


def worker(
    concurrency: Annotated[
        int | None,
        typer.Option(min=1, max=64, help="Jobs at once (default: jobs.workers, at least 1)"),
    ] = None,
    loglevel: LogLevel = "INFO",
    pool: Annotated[str, typer.Option(help="Celery pool: prefork, threads or solo")] = "prefork",
    data_dir: DataDir = None,
) -> None:
    """Run jobs until SIGTERM/SIGINT: a Celery worker with a broker, else in-process threads."""
    _logging(loglevel)
    settings = _settings(data_dir)
    count = concurrency or max(1, settings.jobs.workers)
    if settings.jobs.broker_url:
        _celery_worker(settings, count, loglevel, pool)
        return
    settings = settings.model_copy(update={"jobs": settings.jobs.model_copy(update={"workers": count})})
    container = Container(settings)
    container.prepare()
    container.jobs.start()
    typer.echo(f"{READY_LINE}: {count} in-process threads on {_where(settings)}", err=True)
    try:
        _until_signalled()
    finally:
        container.close()


def _celery_worker(settings: Settings, concurrency: int, loglevel: str, pool: str) -> None:
    from celery.signals import worker_ready

    from facesocial.jobs.celery_app import make_celery
    from facesocial.store import migrate

    container = Container(settings)
    try:
        if not migrate.is_current(container.database):
            typer.echo(
                "The database is not at the newest schema: run `facesocial db upgrade` first", err=True
            )
            raise typer.Exit(2)
    finally:
        container.close()
    jobs = settings.jobs

    def ready(**_kwargs: Any) -> None:
        typer.echo(f"{READY_LINE}: Celery, queues {jobs.celery_queue},{jobs.maintenance_queue}", err=True)

    worker_ready.connect(ready, weak=False, dispatch_uid="facesocial-worker-ready")
    app = make_celery(settings)
    app.worker_main(
        [
            "worker",
            f"--concurrency={concurrency}",
            f"--loglevel={loglevel.upper()}",
            f"--queues={jobs.celery_queue},{jobs.maintenance_queue}",
            f"--pool={pool}",
            f"--hostname=facesocial-{uuid.uuid4().hex[:8]}@%h",
            # Cancels and state live in SQL: no worker-to-worker chatter is needed at start.
            "--without-gossip",
            "--without-mingle",
        ]
    )


def beat(loglevel: LogLevel = "INFO", data_dir: DataDir = None) -> None:
    """Send the scheduled upkeep (sweep, partitions, retention, roll-up) until SIGTERM/SIGINT."""
    _logging(loglevel)
    settings = _settings(data_dir)
    if settings.jobs.broker_url:
        from facesocial.jobs.celery_app import make_celery

        settings.data_dir.mkdir(parents=True, exist_ok=True)
        app = make_celery(settings)
        app.Beat(
            schedule=str(settings.data_dir / "celerybeat-schedule"),
            loglevel=loglevel.upper(),
            max_interval=min(60.0, settings.jobs.sweep_seconds),
        ).run()
        return
    container = Container(settings)
    container.prepare()
    stop = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda _signum, _frame: stop.set())
    typer.echo(f"facesocial beat: embedded upkeep on {_where(settings)}", err=True)
    next_run = dict.fromkeys(periodic.SCHEDULE, 0.0)
    try:
        while not stop.is_set():
            now = time.monotonic()
            for name in periodic.SCHEDULE:
                if now >= next_run[name]:
                    periodic.run_logged(name, container)
                    next_run[name] = now + periodic.interval_seconds(name, settings)
            stop.wait(max(0.05, min(next_run.values()) - time.monotonic()))
    finally:
        container.close()


@jobs_app.command("show")
def jobs_show(job_id: str, data_dir: DataDir = None) -> None:
    """Print one job of any tenant as JSON (exit 1 if there is none)."""
    container = Container(_settings(data_dir))
    try:
        view = container.job_store.get(job_id)
    finally:
        container.close()
    if view is None:
        typer.echo(f"{errors.JobNotFoundError.code}: no job {job_id!r}", err=True)
        raise typer.Exit(1)
    typer.echo(json.dumps(view.as_dict(), indent=2))


@jobs_app.command("probe")
def jobs_probe(
    steps: Annotated[int, typer.Option(min=1, max=100, help="Progress reports")] = 3,
    step_seconds: Annotated[float, typer.Option(min=0, max=10, help="Seconds per step")] = 0.5,
    priority: Annotated[int, typer.Option(min=1, max=10, help="1..10, 10 most urgent")] = 5,
    fail_code: Annotated[
        str | None, typer.Option(help="Fail with this error code (tests failure reports)")
    ] = None,
    wait: Annotated[bool, typer.Option(help="Wait for the end and print it")] = True,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the end")] = 60.0,
    data_dir: DataDir = None,
) -> None:
    """Submit a diagnostics probe job and wait for it: exit 0 once a worker completed it."""
    settings = _settings(data_dir)
    container = Container(settings)
    try:
        container.prepare()
        job_id = submit_probe(
            container.database,
            container.job_store,
            container.jobs,
            settings.resolved_spool_dir(),
            ProbeRequest(steps, step_seconds, fail_code),
            priority=priority,
            max_attempts=settings.jobs.max_attempts,
        )
        typer.echo(f"submitted {job_id}", err=True)
        if not wait:
            typer.echo(job_id)
            return
        deadline = time.monotonic() + timeout
        view = container.job_store.get(job_id)
        while view is not None and view.status not in JOB_TERMINAL and time.monotonic() < deadline:
            time.sleep(0.25)
            view = container.job_store.get(job_id)
    finally:
        container.close()
    if view is None:  # pragma: no cover - purged while we waited
        raise typer.Exit(1)
    typer.echo(json.dumps(view.as_dict(), indent=2))
    if view.status not in JOB_TERMINAL:
        typer.echo(
            f"{job_id} is still {view.status} after {timeout:g} s: is a worker running "
            "(`facesocial worker`, or `facesocial serve` with jobs.workers > 0)?",
            err=True,
        )
        raise typer.Exit(1)
    if view.status != "completed":
        raise typer.Exit(1)


def _where(settings: Settings) -> str:
    return settings.resolved_database_url().split("@")[-1]


def main() -> None:  # pragma: no cover - `python -m facesocial.cli_jobs`, before cli.py registers these
    standalone = typer.Typer(no_args_is_help=True, add_completion=False)
    standalone.command()(worker)
    standalone.command()(beat)
    standalone.add_typer(jobs_app, name="jobs")
    standalone()


if __name__ == "__main__":  # pragma: no cover
    main()
