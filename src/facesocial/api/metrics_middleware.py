"""Counts and times every HTTP request for Prometheus (labelled by route, not raw path)."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from facesocial.metrics import HTTP_DURATION, HTTP_REQUESTS, method_label


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
            # The route template and a fixed set of methods keep label cardinality bounded (no
            # ids, no raw paths, no made-up methods in labels): every unknown path is "unmatched".
            endpoint = getattr(route, "path", None) or "unmatched"
            method = method_label(scope["method"])
            HTTP_REQUESTS.labels(method, endpoint, str(status["code"])).inc()
            HTTP_DURATION.labels(method, endpoint).observe(time.perf_counter() - started)
