"""Counts and times every HTTP request for Prometheus (labelled by route, not raw path)."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from facesocial.metrics import HTTP_DURATION, HTTP_REQUESTS


class MetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = scope.get("route")
            # The route template keeps label cardinality bounded (no ids in labels).
            endpoint = getattr(route, "path", None) or "unmatched"
            HTTP_REQUESTS.labels(scope["method"], endpoint, str(status["code"])).inc()
            HTTP_DURATION.labels(scope["method"], endpoint).observe(time.perf_counter() - started)
