"""Prometheus metrics named as in design document 001's dashboards."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Gauge, Histogram

# RFC 9110's methods and PATCH. Any other token is a valid method to the HTTP parser, so
# labelling by it would let a client create label values (and series) without end.
STANDARD_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})


def method_label(method: str) -> str:
    """The request method as a metrics label or audit field: a standard one, or ``OTHER``."""
    return method if method in STANDARD_METHODS else "OTHER"


HTTP_REQUESTS = Counter("http_requests_total", "HTTP requests served", ["method", "endpoint", "status"])
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time to serve an HTTP request",
    ["method", "endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
INFERENCE_DURATION = Histogram(
    "ai_model_inference_duration_seconds",
    "Time of one model call (a batch of faces or one image)",
    ["model_name"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)

# Read from the API process's admission gate (vision/decode_gate.py) at scrape time.
IMAGES_IN_FLIGHT = Gauge("facesocial_images_in_flight", "Images being decoded and run through models now")
IMAGES_WAITING = Gauge("facesocial_images_waiting", "Requests queued for room to process their image")


@contextmanager
def inference_timer(model_name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        INFERENCE_DURATION.labels(model_name=model_name).observe(time.perf_counter() - started)
