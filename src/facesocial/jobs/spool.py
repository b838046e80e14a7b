"""The spool folder's clean-up: files that no running job will read again are removed.

The spool (``jobs.spool_dir``, default ``data_dir/jobs``) holds two kinds of entries:

* ``job_<hex>/``: the upload of one job, moved there *before* the job row is committed
  (:meth:`JobStore.add_with_file`) and removed by the kind's ``on_end``. A folder stays while its
  job is pending or processing. Without such a job (its row was never committed: a crash between
  the move and the commit; or the job ended and its ``on_end`` could not remove it) the folder is
  an orphan once nothing in it changed for ``jobs.orphan_grace_seconds`` (default 5 minutes: a
  move-then-commit takes milliseconds, the grace only covers a commit still in flight).
* ``incoming/<hex>/``: an upload being received, before its job exists. A video is streamed
  there for minutes, possibly by another process sharing the folder, so such an entry goes only
  when nothing in it changed for ``jobs.incoming_grace_seconds`` (default an hour: a stream in
  progress writes all the time). Anything else in the spool waits for the same long grace.

:func:`sweep_spool` runs at every job sweep (``jobs.sweep_seconds``, in-process or Celery beat),
at the API's start-up and in the daily retention pass.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from facesocial.jobs.store import JOB_ID_PATTERN, JobStore
from facesocial.settings import JobSettings

log = logging.getLogger(__name__)

INCOMING = "incoming"


def sweep_spool(store: JobStore, spool_dir: Path, settings: JobSettings, now: float | None = None) -> int:
    """Remove the spool entries described in the module docstring; returns how many went.

    ``now``: seconds since the epoch (default the clock), compared with file modification times.
    Raises what the job store raises when the database cannot be read (nothing is removed then).
    """
    if not spool_dir.is_dir():
        return 0
    clock = time.time() if now is None else now
    folders = [e for e in spool_dir.iterdir() if JOB_ID_PATTERN.match(e.name)]
    running = store.unfinished([e.name for e in folders])
    due = [e for e in folders if e.name not in running and _idle(e, clock, settings.orphan_grace_seconds)]
    others = [e for e in spool_dir.iterdir() if e.name != INCOMING and not JOB_ID_PATTERN.match(e.name)]
    incoming = spool_dir / INCOMING
    if incoming.is_dir():
        others.extend(incoming.iterdir())
    due += [e for e in others if _idle(e, clock, settings.incoming_grace_seconds)]
    for entry in due:
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
    if due:
        log.info("spool: removed %d entries no running job owns: %s", len(due), [e.name for e in due])
    return len(due)


def _idle(entry: Path, now: float, grace_seconds: float) -> bool:
    return now - _last_change(entry) > grace_seconds


def _last_change(entry: Path) -> float:
    """The newest modification time of ``entry`` or anything in it (0 if it vanished meanwhile)."""
    try:
        newest = entry.stat().st_mtime
        if entry.is_dir():
            for child in entry.rglob("*"):
                newest = max(newest, child.stat().st_mtime)
    except FileNotFoundError:
        # Gone: nothing to remove. A child gone meanwhile: something is at work, keep it for now.
        return 0.0 if not entry.exists() else time.time()
    return newest
