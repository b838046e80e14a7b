"""The embedded adapter: worker threads in this process, fed from ``core.jobs``.

``settings.workers`` threads each run the most urgent pending job, then the next; an idle thread
sleeps until :meth:`InProcessJobQueue.dispatch` wakes it or ``poll_seconds`` pass (other
processes on the same database, a ``facesocial worker`` beside ``facesocial serve``, add jobs
too). One more thread sweeps every ``sweep_seconds``: expired leases, owed ``on_end`` calls, due
callbacks.

Nothing lives only in memory: a job accepted with 202 is a committed row, so after a kill the
next process's sweep finds its lease run out, gives it back to the queue, and a thread runs it
again (attempt 2). :meth:`stop` is prompt: the threads are daemons, and a job still running
simply loses its lease.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from facesocial.jobs.runner import JobRunner
from facesocial.jobs.store import JobStore
from facesocial.settings import JobSettings

log = logging.getLogger(__name__)

# How long a thread waits after a store error before it tries again (a database restart).
_ERROR_PAUSE_SECONDS = 2.0
# stop() waits this long in all for idle threads to end; busy ones are left to their lease.
_STOP_WAIT_SECONDS = 1.0


class InProcessJobQueue:
    """The in-process :class:`~facesocial.jobs.port.JobQueue`."""

    def __init__(self, runner: JobRunner, store: JobStore, settings: JobSettings) -> None:
        self._runner = runner
        self._store = store
        self._settings = settings
        self._wake = threading.Condition()
        self._signals = 0
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def dispatch(self, job_id: str, priority: int) -> None:
        """Wake one idle worker thread (the job itself is found in SQL, most urgent first)."""
        with self._wake:
            # More signals than threads would only make idle threads poll again at once.
            self._signals = min(self._signals + 1, max(1, self._settings.workers))
            self._wake.notify()

    def start(self) -> None:
        """Start ``settings.workers`` worker threads and the sweep thread (once)."""
        if self._threads:
            return
        self._stopping.clear()
        for number in range(self._settings.workers):
            self._spawn(self._work, f"job-worker-{number}")
        self._spawn(self._sweep_loop, "job-sweep")
        log.info("in-process jobs: %d worker threads", self._settings.workers)

    def stop(self) -> None:
        """Stop the threads: idle ones at once; a running job's lease runs out and it is retried."""
        self._stopping.set()
        with self._wake:
            self._wake.notify_all()
        deadline = time.monotonic() + _STOP_WAIT_SECONDS
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self._threads = []

    def sweep_once(self) -> None:
        """One sweep: expired leases, owed on_end calls, due callbacks (see JobRunner.sweep)."""
        self._runner.sweep(self.dispatch)

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _work(self) -> None:
        while not self._stopping.is_set():
            try:
                if self._runner.run_next():
                    continue
            except Exception:
                log.exception("job worker: store error; retrying shortly")
                self._stopping.wait(_ERROR_PAUSE_SECONDS)
                continue
            with self._wake:
                if self._signals == 0 and not self._stopping.is_set():
                    self._wake.wait(self._settings.poll_seconds)
                self._signals = max(0, self._signals - 1)

    def _sweep_loop(self) -> None:
        # At once first: callbacks and on_end calls a previous process left due are not kept waiting.
        while not self._stopping.is_set():
            try:
                self.sweep_once()
            except Exception:
                log.exception("job sweep failed; retrying at the next interval")
            self._stopping.wait(self._settings.sweep_seconds)
