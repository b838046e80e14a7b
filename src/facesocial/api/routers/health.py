"""Liveness, readiness (no auth) and Prometheus metrics."""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from facesocial import __version__
from facesocial.api.deps import ContainerDep
from facesocial.api.errors import describe
from facesocial.api.routing import ApiRoute
from facesocial.container import Container
from facesocial.services.index_maintenance import unpartitioned_face_collections
from facesocial.vision.ports import embedder_description

router = APIRouter(tags=["health"], route_class=ApiRoute, redirect_slashes=False)

# A dependency that has not answered in this time counts as down: a dead store must not make the
# probe itself hang (Kubernetes' default probe timeout is 1 s; ours is generous but bounded).
CHECK_TIMEOUT_SECONDS = 3.0


@dataclass(frozen=True, slots=True)
class ReadinessCheck:
    """One dependency of ``/health/ready``.

    ``run`` returns the entry's body: at least ``{"status": "ok" | "degraded" | "error"}``; it may
    raise, which reports ``error`` with the exception's class and first line. ``required``: when
    it fails the server is not ready (503); otherwise it only makes the status ``degraded``.
    ``timeout_seconds=None`` runs the check inline (no network, e.g. loading models).
    """

    name: str
    run: Callable[[], dict[str, Any]]
    required: bool = True
    timeout_seconds: float | None = CHECK_TIMEOUT_SECONDS


def readiness_checks(container: Container) -> list[ReadinessCheck]:
    """The dependencies readiness reports; add an entry here for a new one."""
    return [
        ReadinessCheck("database", lambda: _database(container)),
        ReadinessCheck("cache", lambda: container.kv.health().as_dict(), required=False),
        ReadinessCheck("vector_index", lambda: _vector_index(container)),
        ReadinessCheck("models", lambda: _models(container), timeout_seconds=None),
        ReadinessCheck("index_consistency", lambda: _consistency(container), timeout_seconds=None),
        ReadinessCheck("attention_metrics", lambda: _attention_metrics(container), required=False),
    ]


@router.get("/health", name="health")
async def health() -> dict[str, Any]:
    """Alive: the process answers (``pid`` tells server processes apart behind one port).

    Answered on the event loop, never in the worker-thread pool: requests queued for model time
    (vision/decode_gate.py) hold pool threads, and liveness must not wait behind them.
    """
    return {"status": "ok", "version": __version__, "pid": os.getpid()}


@router.get("/health/ready", name="ready")
def ready(container: ContainerDep) -> JSONResponse:
    """Ready: every required dependency answers.

    200 ``ready``; 200 ``degraded`` when only an optional one (the Redis cache, served from local
    memory meanwhile) is down; 503 ``not_ready`` when the database, the vector index or the models
    are. Each entry: ``{"status": "ok" | "degraded" | "error", "required": bool, ...}``, with a
    ``reason`` (exception class and first line) when failing.
    """
    checks = readiness_checks(container)
    results = _run_all(checks)
    failed_required = any(r["status"] == "error" for c, r in zip(checks, results, strict=True) if c.required)
    if failed_required:
        status, code = "not_ready", 503
    elif any(r["status"] != "ok" for r in results):
        status, code = "degraded", 200
    else:
        status, code = "ready", 200
    body = {
        "status": status,
        "checks": {c.name: {**r, "required": c.required} for c, r in zip(checks, results, strict=True)},
    }
    return JSONResponse(body, status_code=code)


@router.get("/metrics", name="metrics", include_in_schema=False)
async def metrics() -> Response:
    # On the event loop for the same reason as /health: a scrape under load must not queue.
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


# --- checks ---------------------------------------------------------------------------------------


def _database(container: Container) -> dict[str, Any]:
    with container.database.engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    return {"status": "ok", "dialect": container.database.engine.dialect.name}


def _attention_metrics(container: Container) -> dict[str, Any]:
    # The time-series backend chosen at start-up: "timescaledb", "postgres_partitions" or "sqlite".
    return {"status": "ok", "backend": container.attention_metrics.backend}


def _vector_index(container: Container) -> dict[str, Any]:
    index = container.index
    index.ping()
    body: dict[str, Any] = {"status": "ok", "backend": type(index).__name__}
    damaged = getattr(index, "damaged", None)  # the local index: collections quarantined on load
    if damaged:
        body["damaged_on_load"] = list(damaged)
    # Face collections still without tenant partitions (the start-up rebuild failed): their
    # faces are invisible to identify until `facesocial index rebuild` or the next start.
    stale = unpartitioned_face_collections(index)
    if stale:
        body["status"] = "degraded"
        body["needs_partition_rebuild"] = stale
    return body


def _models(container: Container) -> dict[str, Any]:
    # Imported here: the counting job module pulls in the person detectors' code.
    from facesocial.domains.counting.tasks import detector_versions

    pipeline = container.pipeline
    return {
        "status": "ok",
        "detector": pipeline.detector.model.tag,
        "embedders": sorted(e.model.tag for e in pipeline.embedders.values()),
        # Which runtime each embedder runs on (dlib_resnet_v1: our ONNX conversion, or dlib).
        "embedder_runtimes": {
            e.model.name: embedder_description(e)["runtime"] for e in pipeline.embedders.values()
        },
        # Packaged with the code and checksummed on load: a mismatch makes the check fail.
        "liveness": container.passive_liveness.model.tag,
        # People counting's person detectors that are pulled (loaded by a counting job on use).
        "person_detectors": sorted(detector_versions(container.model_cache)),
    }


def _consistency(container: Container) -> dict[str, Any]:
    """SQL and the vector index agree (services/reconcile.py): ``error`` until a pass says so."""
    if container.settings.reconcile.interval_seconds <= 0:
        return {"status": "ok", "reconcile": "disabled (FACESOCIAL_RECONCILE__INTERVAL_SECONDS=0)"}
    state = container.reconcile_loop.state.as_dict()
    # "state": pending (no pass completed since start-up), ok, or inconsistent.
    return {**state, "state": state["status"], "status": "ok" if state["status"] == "ok" else "error"}


def _run_all(checks: list[ReadinessCheck]) -> list[dict[str, Any]]:
    """Run the network checks side by side in daemon threads, each bounded by its timeout.

    A check still blocked at its deadline is reported as an error and left to finish on its own
    (its driver's timeout ends it); readiness answers either way.
    """
    results: list[dict[str, Any] | None] = [None] * len(checks)

    def run(i: int) -> None:
        results[i] = _guarded(checks[i])

    started = time.monotonic()
    threads: list[tuple[int, threading.Thread]] = []
    for i, check in enumerate(checks):
        if check.timeout_seconds is None:
            continue
        thread = threading.Thread(target=run, args=(i,), name=f"ready-{check.name}", daemon=True)
        thread.start()
        threads.append((i, thread))
    for i, check in enumerate(checks):
        if check.timeout_seconds is None:
            run(i)
    for i, thread in threads:
        thread.join(max(0.0, started + (checks[i].timeout_seconds or 0.0) - time.monotonic()))
    return [
        result
        if result is not None
        else {
            "status": "error",
            "reason": f"TimeoutError: no answer within {checks[i].timeout_seconds:g} s",
        }
        for i, result in enumerate(results)
    ]


def _guarded(check: ReadinessCheck) -> dict[str, Any]:
    try:
        return check.run()
    except Exception as exc:  # readiness reports failures; it never raises them
        return {"status": "error", "reason": redact_url(describe(exc))}


_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):[^@\s]*@", re.IGNORECASE)


def redact_url(text_with_urls: str) -> str:
    """Hide passwords in URLs: ``postgresql://u:secret@h/db`` becomes ``postgresql://u:***@h/db``."""
    return _CREDENTIALS.sub(r"\g<scheme>\g<user>:***@", text_with_urls)
