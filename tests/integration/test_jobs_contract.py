"""One behavioural contract for both JobQueue adapters, with real worker processes.

* ``inprocess``: a SQLite file; jobs run by ``facesocial worker`` without a broker (the in-process
  runner threads, in a subprocess so that it can be killed).
* ``celery``: a scratch PostgreSQL database, Redis (database 13, keys under a per-run prefix,
  per-run queue names, all deleted afterwards), ``facesocial worker --concurrency 1`` (a Celery
  worker) and ``facesocial beat`` (the sweep every second).

This process plays the API: it creates jobs (``submit_probe``: row + spool file, one commit,
then ``dispatch``), reads them, and cancels them, through the same container classes.

The workers register the built-in kinds only (the ``diagnostics.probe`` job): the service kinds
load models and are beside the point here. Leases are 3 s (FACESOCIAL_JOBS__LEASE_SECONDS), so a
killed worker's job is retried within a few seconds.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from facesocial.container import Container
from facesocial.jobs.builtin import PROBE_FILE, ProbeRequest, builtin_kinds, submit_probe
from facesocial.jobs.port import JobKind, JobView
from facesocial.jobs.store import ABANDONED
from facesocial.settings import Settings
from tests.services import require_postgres, require_redis, scratch_postgres

pytestmark = pytest.mark.integration

REDIS_URL = os.environ.get("FACESOCIAL_TEST_JOBS_REDIS", "redis://127.0.0.1:6379/13")
TENANT = uuid.uuid4()
LEASE_SECONDS = 3.0

# `facesocial worker|beat` with the built-in job kinds only (see the module docstring).
_CLI = """
import sys
from functools import cached_property
from facesocial.container import Container
from facesocial.jobs.builtin import builtin_kinds
kinds = cached_property(lambda self: builtin_kinds(self.settings.resolved_spool_dir()))
kinds.__set_name__(Container, "job_kinds")
Container.job_kinds = kinds
from facesocial.cli_jobs import main
sys.argv = ["facesocial", *sys.argv[1:]]
main()
"""


class ProbeContainer(Container):
    """The API side of the test: the composition root with the built-in kinds only."""

    @cached_property
    def job_kinds(self) -> dict[str, JobKind]:
        return builtin_kinds(self.settings.resolved_spool_dir())


@dataclass
class Harness:
    adapter: str
    env: dict[str, str]
    container: ProbeContainer
    logs: Path
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    others: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def spool(self) -> Path:
        return self.container.settings.resolved_spool_dir()

    def submit(self, steps: int, step_seconds: float, **options: Any) -> str:
        max_attempts = options.pop("max_attempts", 3)
        return submit_probe(
            self.container.database,
            self.container.job_store,
            self.container.jobs,
            self.spool,
            ProbeRequest(steps, step_seconds, options.pop("fail_code", None)),
            tenant_id=TENANT,
            max_attempts=max_attempts,
            **options,
        )

    def view(self, job_id: str) -> JobView:
        return self.container.job_store.view(job_id, TENANT)

    def wait(self, job_id: str, what: Callable[[JobView], bool], timeout: float = 40.0) -> JobView:
        deadline = time.monotonic() + timeout
        view = self.view(job_id)
        while not what(view):
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.adapter}: gave up waiting on {job_id}: {view}")
            self._check_workers()
            time.sleep(0.05)
            view = self.view(job_id)
        return view

    def wait_status(self, job_id: str, status: str, timeout: float = 40.0) -> JobView:
        return self.wait(job_id, lambda v: v.status == status, timeout)

    def wait_running(self, job_id: str, attempt: int = 1) -> JobView:
        """Until the job runs its ``attempt`` and has reported progress (its handler is inside)."""
        return self.wait(
            job_id, lambda v: v.status == "processing" and v.attempts == attempt and v.progress_percentage > 0
        )

    def start_worker(self) -> None:
        log = self.logs / f"worker-{len(self.workers)}.log"
        process = _spawn(["worker", "--concurrency", "1", "--loglevel", "INFO"], self.env, log)
        self.workers.append(process)
        _wait_for_line(process, log, "facesocial worker ready")

    def kill_worker(self) -> None:
        """SIGKILL the worker and its children (the Celery pool): nothing runs its clean-up."""
        process = self.workers[-1]
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)

    def worker_alive(self) -> bool:
        return bool(self.workers) and self.workers[-1].poll() is None

    def _check_workers(self) -> None:
        for process in self.others:
            assert process.poll() is None, f"{self.adapter}: a helper process exited ({process.args})"

    def stop(self) -> None:
        for process in [*self.workers, *self.others]:
            if process.poll() is None:
                with suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(10)


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        # A session of its own: a kill takes the worker and its pool processes at once.
        return subprocess.Popen(
            [sys.executable, "-c", _CLI, *args], env=env, stdout=sink, stderr=sink, start_new_session=True
        )


def _wait_for_line(process: subprocess.Popen[bytes], log: Path, line: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if line in log.read_text(errors="replace"):
            return
        if process.poll() is not None:
            break
        time.sleep(0.1)
    raise AssertionError(f"no {line!r} from {process.args[3:]}:\n{log.read_text(errors='replace')[-3000:]}")


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def _redis_prefix(prefix: str) -> Iterator[None]:
    """Every broker key of this run is under ``prefix``; all of them are deleted afterwards."""
    import redis

    require_redis()
    client = redis.Redis.from_url(REDIS_URL)
    try:
        yield
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
        assert not list(client.scan_iter(match=f"{prefix}*"))
        client.close()


@pytest.fixture(scope="module", params=["inprocess", "celery"])
def harness(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    tmp = tmp_path_factory.mktemp(f"jobs-{request.param}")
    run = uuid.uuid4().hex[:10]
    env = {
        "FACESOCIAL_DATA_DIR": str(tmp / "data"),
        "FACESOCIAL_MODELS__MODEL_DIR": str(tmp / "no-models"),
        "FACESOCIAL_MODELS__AUTO_PULL": "false",
        "FACESOCIAL_RECONCILE__INTERVAL_SECONDS": "0",
        "FACESOCIAL_JOBS__LEASE_SECONDS": str(LEASE_SECONDS),
        "FACESOCIAL_JOBS__POLL_SECONDS": "0.2",
        "FACESOCIAL_JOBS__CALLBACK_ALLOW_PRIVATE": "true",  # the receiver is on loopback
        "FACESOCIAL_JOBS__CALLBACK_BACKOFF_SECONDS": "0.2",
        "FACESOCIAL_JOBS__CALLBACK_TIMEOUT_SECONDS": "5",
    }
    with ExitStack() as stack:
        if request.param == "inprocess":
            env["FACESOCIAL_JOBS__SWEEP_SECONDS"] = "0.5"
        else:
            require_postgres()
            prefix = f"fs_test_{run}:"
            stack.enter_context(_redis_prefix(prefix))
            env |= {
                "FACESOCIAL_DATABASE_URL": stack.enter_context(scratch_postgres()),
                "FACESOCIAL_JOBS__BROKER_URL": REDIS_URL,
                "FACESOCIAL_JOBS__BROKER_KEY_PREFIX": prefix,
                "FACESOCIAL_JOBS__CELERY_QUEUE": f"jobs_{run}",
                "FACESOCIAL_JOBS__MAINTENANCE_QUEUE": f"upkeep_{run}",
                "FACESOCIAL_JOBS__SWEEP_SECONDS": "1",
            }
        with _environment(env):
            settings = Settings()
        container = ProbeContainer(settings)
        container.prepare()
        logs = tmp / "logs"
        logs.mkdir()
        h = Harness(request.param, {**os.environ, **env}, container, logs)
        stack.callback(container.close)
        stack.callback(h.stop)
        if request.param == "celery":
            beat_log = logs / "beat.log"
            h.others.append(_spawn(["beat", "--loglevel", "INFO"], h.env, beat_log))
            _wait_for_line(h.others[-1], beat_log, "beat: Starting")
        h.start_worker()
        yield h


@pytest.fixture
def h(harness: Harness) -> Harness:
    """The adapter with a live worker and no job left running or waiting by an earlier test."""
    if not harness.worker_alive():
        harness.start_worker()
    deadline = time.monotonic() + 40
    store = harness.container.job_store
    while store.list(TENANT, "processing").total + store.list(TENANT, "pending").total:
        assert time.monotonic() < deadline, "jobs of an earlier test never finished"
        time.sleep(0.1)
    return harness


def test_priority_order(h: Harness) -> None:
    """Jobs queued behind a running one start most urgent first, then oldest first."""
    blocker = h.submit(8, 0.25)
    h.wait_running(blocker)
    low = h.submit(1, 0.0, priority=1)
    high = h.submit(1, 0.0, priority=10)
    mid_first = h.submit(1, 0.0, priority=5)
    mid_second = h.submit(1, 0.0, priority=5)
    views = [h.wait_status(job, "completed") for job in (low, high, mid_first, mid_second)]
    started = sorted(views, key=lambda v: v.started_at or datetime.max)
    assert [v.job_id for v in started] == [high, mid_first, mid_second, low]
    assert all(v.attempts == 1 for v in views)
    assert h.wait_status(blocker, "completed").started_at < started[0].started_at  # type: ignore[operator]


def test_progress_and_estimate_visible_while_running(h: Harness) -> None:
    job = h.submit(10, 0.3)
    running = h.wait(job, lambda v: v.status == "processing" and 10 <= v.progress_percentage < 100)
    assert running.estimated_completion is not None and running.started_at is not None
    assert running.estimated_completion > running.started_at
    assert running.result is None and running.completed_at is None
    done = h.wait_status(job, "completed")
    assert done.progress_percentage == 100.0
    assert done.estimated_completion is None
    assert done.result is not None and done.result["steps"] == 10 and done.result["attempt"] == 1
    assert not (h.spool / job).exists()  # on_end ran


def test_cancel_running_job_stops_its_handler(h: Harness) -> None:
    steps, step_seconds = 60, 0.25  # 15 s if it were not stopped
    job = h.submit(steps, step_seconds)
    running = h.wait_running(job)
    cancelled = h.container.job_runner.cancel(job, TENANT)
    assert cancelled.status == "cancelled" and cancelled.completed_at is not None
    # The worker stops at its next report and runs on_end (the probe removes its spool folder).
    h.wait(job, lambda _v: not (h.spool / job).exists(), timeout=10)
    follow_up = h.submit(1, 0.0)
    after = h.wait_status(follow_up, "completed")
    assert after.started_at is not None and running.started_at is not None
    # One worker thread: the follow-up could only start once the cancelled handler had returned.
    assert (after.started_at - running.started_at).total_seconds() < steps * step_seconds / 2
    final = h.view(job)
    assert final.status == "cancelled" and final.result is None and final.attempts == 1
    assert final.progress_percentage < 100


def test_cancel_pending_job(h: Harness) -> None:
    blocker = h.submit(8, 0.25)
    h.wait_running(blocker)
    job = h.submit(1, 0.0)
    assert (h.spool / job / PROBE_FILE).is_file()
    cancelled = h.container.job_runner.cancel(job, TENANT)
    assert cancelled.status == "cancelled"
    assert not (h.spool / job).exists()  # on_end ran at once
    h.wait_status(blocker, "completed")
    later = h.submit(1, 0.0)
    h.wait_status(later, "completed")
    final = h.view(job)
    assert final.status == "cancelled" and final.attempts == 0 and final.started_at is None


def test_failure_with_a_domain_error_is_not_retried(h: Harness) -> None:
    job = h.submit(1, 0.0, fail_code="NO_FACE_FOUND")
    failed = h.wait_status(job, "failed")
    assert (failed.error_code, failed.attempts) == ("NO_FACE_FOUND", 1)
    h.wait(job, lambda _v: not (h.spool / job).exists(), timeout=10)


def test_crash_and_resume(h: Harness) -> None:
    """SIGKILL the worker mid-job; a new worker runs the job again once the lease ran out."""
    job = h.submit(12, 0.25)
    first = h.wait_running(job)
    h.kill_worker()
    assert h.view(job).status == "processing"  # nobody is left to say otherwise
    h.start_worker()
    done = h.wait_status(job, "completed")
    assert done.attempts == 2
    assert done.result is not None and done.result["attempt"] == 2
    assert done.started_at is not None and first.started_at is not None and done.started_at > first.started_at
    assert not (h.spool / job).exists()


def test_attempts_are_bounded(h: Harness) -> None:
    """A job whose worker dies on every attempt ends failed JOB_ABANDONED after max_attempts."""
    job = h.submit(40, 0.25, max_attempts=2)
    h.wait_running(job, attempt=1)
    h.kill_worker()
    h.start_worker()
    h.wait_running(job, attempt=2)
    h.kill_worker()
    h.start_worker()
    failed = h.wait_status(job, "failed")
    assert (failed.error_code, failed.attempts, failed.max_attempts) == (ABANDONED, 2, 2)
    assert failed.result is None
    # on_end ran for the abandoned job too (by the sweep).
    h.wait(job, lambda _v: not (h.spool / job).exists(), timeout=10)


class _Receiver(BaseHTTPRequestHandler):
    answers: list[int]
    received: list[tuple[dict[str, str], bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        status = self.answers.pop(0) if self.answers else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


@contextmanager
def _receiver(answers: list[int]) -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    received: list[tuple[dict[str, str], bytes]] = []
    handler = type("Receiver", (_Receiver,), {"answers": list(answers), "received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks/jobs?src=facesocial", received
    finally:
        server.shutdown()
        server.server_close()


def test_callback_is_signed_and_retried(h: Harness) -> None:
    """500, 500, 200: three deliveries of the same signed body, then delivered."""
    with _receiver([500, 500, 200]) as (url, received):
        job = h.submit(1, 0.0, callback_url=url)
        done = h.wait(job, lambda v: v.callback_delivered_at is not None)
        time.sleep(0.5)  # no fourth delivery may follow
    assert done.status == "completed" and done.callback_attempts == 3
    assert len(received) == 3
    secret = h.container.callbacks.secret_for(TENANT, None)
    bodies = {body for _headers, body in received}
    assert len(bodies) == 1  # each retry sends the same bytes
    for headers, body in received:
        signed = headers["x-facesocial-timestamp"].encode() + b"." + body
        expected = "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["x-facesocial-signature"], expected)
        assert headers["x-facesocial-job-id"] == job
        assert abs(int(headers["x-facesocial-timestamp"]) - time.time()) < 600
        assert headers["content-type"] == "application/json"
    payload = json.loads(received[0][1])
    assert payload["job_id"] == job and payload["kind"] == "diagnostics.probe"
    assert payload["status"] == "completed" and payload["result"]["steps"] == 1
    assert "error" not in payload
    # Another caller's secret does not verify it.
    other = h.container.callbacks.secret_for(uuid.uuid4(), None)
    signed = received[0][0]["x-facesocial-timestamp"].encode() + b"." + received[0][1]
    forged = "sha256=" + hmac.new(other.encode(), signed, hashlib.sha256).hexdigest()
    assert forged != received[0][0]["x-facesocial-signature"]


def test_cli_probe_and_show(h: Harness) -> None:
    """`facesocial jobs probe` waits for a worker to complete a probe; `jobs show` prints it."""
    from typer.testing import CliRunner

    from facesocial.cli_jobs import jobs_app

    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            _CLI,
            "jobs",
            "probe",
            "--steps",
            "2",
            "--step-seconds",
            "0.1",
            "--timeout",
            "150",
        ],
        env=h.env,
        capture_output=True,
        timeout=200,
    )
    assert probe.returncode == 0, probe.stderr.decode()[-2000:]
    shown = json.loads(probe.stdout)
    assert shown["status"] == "completed" and shown["result"]["steps"] == 2
    runner = CliRunner()
    show = runner.invoke(jobs_app, ["show", shown["job_id"]], env=h.env)
    assert show.exit_code == 0 and json.loads(show.stdout)["result"] == shown["result"]
    missing = runner.invoke(jobs_app, ["show", f"job_{uuid.uuid4().hex}"], env=h.env)
    assert missing.exit_code == 1 and "JOB_NOT_FOUND" in missing.stderr
