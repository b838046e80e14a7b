"""FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from facesocial import __version__
from facesocial.api import errors
from facesocial.api.audit_middleware import AuditMiddleware
from facesocial.api.metrics_middleware import MetricsMiddleware
from facesocial.api.routers import demographics, face_detection, face_recognition, health
from facesocial.container import Container
from facesocial.settings import Settings


def create_app(container: Container | None = None) -> FastAPI:
    """Build the app around a container (one is made from the environment if not given)."""
    container = container or Container(Settings())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        container.close()

    app = FastAPI(
        title="FaceSocial",
        version=__version__,
        description="Self-hostable face AI: detection, recognition (1:1, 1:N), groups, demographics.",
        lifespan=lifespan,
    )
    app.state.container = container
    errors.install(app)
    app.include_router(health.router)
    app.include_router(face_detection.router)
    app.include_router(face_recognition.router)
    app.include_router(demographics.router)
    app.add_middleware(AuditMiddleware, audit=container.audit)
    app.add_middleware(MetricsMiddleware)
    return app
