"""Liveness, readiness (no auth) and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from facesocial import __version__
from facesocial.api.deps import ContainerDep

router = APIRouter(tags=["health"])


@router.get("/health", name="health")
def health() -> dict[str, Any]:
    """Alive: the process answers."""
    return {"status": "ok", "version": __version__}


@router.get("/health/ready", name="ready")
def ready(container: ContainerDep) -> JSONResponse:
    """Ready: database, cache, vector index and models all answer (503 otherwise)."""
    checks: dict[str, Any] = {}
    try:
        with container.database.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # readiness reports failures; it never raises them
        checks["database"] = f"error: {type(exc).__name__}"
    checks["cache"] = "ok" if container.kv.ping() else "error: no answer"
    try:
        container.index.collections()
        checks["vector_index"] = "ok"
    except Exception as exc:
        checks["vector_index"] = f"error: {type(exc).__name__}"
    try:
        pipeline = container.pipeline
        checks["models"] = {
            "detector": pipeline.detector.model.tag,
            "embedders": sorted(e.model.tag for e in pipeline.embedders.values()),
        }
    except Exception as exc:
        checks["models"] = f"error: {type(exc).__name__}"
    healthy = all(not (isinstance(v, str) and v.startswith("error")) for v in checks.values())
    return JSONResponse(
        {"status": "ready" if healthy else "not_ready", "checks": checks}, status_code=200 if healthy else 503
    )


@router.get("/metrics", name="metrics", include_in_schema=False)
def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
