"""FastAPI application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from facesocial import __version__
from facesocial.api import errors, openapi
from facesocial.api.audit_middleware import AuditMiddleware
from facesocial.api.auth_middleware import AuthMiddleware
from facesocial.api.body_limit import BodyLimitMiddleware
from facesocial.api.metrics_middleware import MetricsMiddleware
from facesocial.api.routers import admin, demographics, face_detection, face_recognition, health, jobs
from facesocial.api.routers import auth as auth_router
from facesocial.compat.compreface import router as compreface_router
from facesocial.compat.compreface.errors import CompreFaceErrorMiddleware
from facesocial.compat.rekognition import router as rekognition_router
from facesocial.console import router as console_router
from facesocial.container import Container
from facesocial.domains.ai_detection import router as ai_detection_router
from facesocial.domains.antispoofing import router as antispoofing_router
from facesocial.domains.attention import recordings_router
from facesocial.domains.attention import router as attention_router
from facesocial.domains.attention import ws as attention_ws
from facesocial.domains.counting import router as counting_router
from facesocial.domains.deepfake import router as deepfake_router
from facesocial.domains.experiments import router as experiments_router
from facesocial.domains.registry import monitoring_router
from facesocial.domains.registry import router as registry_router
from facesocial.metrics import IMAGES_IN_FLIGHT, IMAGES_WAITING
from facesocial.settings import Settings
from facesocial.vision.decode_gate import DecodeGate

log = logging.getLogger(__name__)


def create_app(container: Container | None = None) -> FastAPI:
    """Build the app around a container (one is made from the environment if not given)."""
    container = container or Container(Settings())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # SQL and the vector index are compared (and repaired) now and then periodically;
        # /health/ready says not ready until the first pass finds them in agreement.
        if container.settings.reconcile.interval_seconds > 0:
            container.reconcile_loop.start()
        # In-process job threads (embedded); with a broker the workers are `facesocial worker`.
        container.jobs.start()
        # Spooled uploads no running job owns (jobs/spool.py: crash leftovers); also at every sweep.
        try:
            container.sweep_spool()
        except Exception:  # a store down at start-up must not keep the API from starting
            log.warning("spool sweep skipped at start-up", exc_info=True)
        yield
        container.close()

    app = FastAPI(
        title="FaceSocial",
        version=__version__,
        description=(
            "Self-hostable face AI: detection, recognition (1:1, 1:N), groups, demographics, "
            "antispoofing (passive checks, active liveness sessions), deepfake detection (images, and videos "
            "as jobs)."
        ),
        lifespan=lifespan,
        # "/x/" is not "/x": no 307 to the client-sent Host over plain http (a client following it
        # would resend the body and the API key there). An unknown path is 404 NOT_FOUND.
        redirect_slashes=False,
    )
    app.state.container = container
    # One per process: it bounds the images (and pixels) processed at once across all requests.
    gate = DecodeGate.from_limits(container.settings.limits)
    app.state.decode_gate = gate
    IMAGES_IN_FLIGHT.set_function(lambda: gate.images_in_flight)
    IMAGES_WAITING.set_function(lambda: gate.waiting)
    errors.install(app)
    openapi.install(app, container.settings)
    app.include_router(health.router)
    app.include_router(auth_router.router)
    app.include_router(face_detection.router)
    app.include_router(face_recognition.router)
    app.include_router(demographics.router)
    app.include_router(antispoofing_router.router)
    app.include_router(deepfake_router.router)
    app.include_router(ai_detection_router.router)
    app.include_router(attention_router.router)
    app.include_router(attention_ws.router)
    app.include_router(recordings_router.router)
    app.include_router(counting_router.router)
    app.include_router(counting_router.frame_router)
    app.include_router(jobs.router)
    app.include_router(admin.router)
    app.include_router(registry_router.router)
    app.include_router(monitoring_router.router)
    app.include_router(experiments_router.router)
    app.include_router(rekognition_router.router)
    app.include_router(console_router.router)  # the web console's page and assets
    for compreface in compreface_router.routers:  # CompreFace's paths (docs/compreface.md)
        app.include_router(compreface)
    # Outermost last. A request meets: proxy headers (who the client is) -> metrics -> audit (one
    # row per call, refused ones too) -> authentication (headers only) -> body budget -> routes.
    app.add_middleware(BodyLimitMiddleware, default_limit=container.settings.intake.json_body_bytes)
    app.add_middleware(AuthMiddleware, container=container)
    app.add_middleware(AuditMiddleware, audit=container.audit)
    app.add_middleware(MetricsMiddleware)
    # CompreFace's paths answer errors as {"message", "code"} (after audit saw the platform's code).
    app.add_middleware(CompreFaceErrorMiddleware)
    if container.settings.intake.trusted_proxies:
        # scope["client"] becomes the X-Forwarded-For client only when the peer is a trusted
        # proxy; `facesocial serve` turns uvicorn's own copy of this off (it trusts loopback).
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=container.settings.intake.trusted_proxies)
    return app
