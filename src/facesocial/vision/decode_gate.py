"""Bound how many images are decoded and processed at once: pixels (memory) and requests (CPU).

A decoded image costs memory in proportion to its pixels (RGB array, detector pyramids,
crops), so the gate counts pixels: many phone selfies may run side by side, two 40 Mpx photos
at most by default. It also bounds how many images are processed at all (``max_in_flight``):
inference is CPU-bound and every ONNX Runtime session already uses the cores, so more
requests in flight than cores only add context switches and memory, while the requests
waiting here hold no model time and the event loop stays free for health checks. Waiters
are admitted strictly in arrival order, so a large image is not starved by a stream of small
ones, and nobody waits longer than the timeout: then
:class:`~facesocial.errors.ServerBusyError` (503, ``retry_after`` seconds).

>>> gate = DecodeGate(pixel_budget=80_000_000, wait_seconds=10.0)  # doctest: +SKIP
>>> with gate.admit(probe_image(data).pixels):  # doctest: +SKIP
...     image = decode_image(data)
...     faces = pipeline.detect(image.rgb)
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from facesocial import errors
from facesocial.settings import ImageLimits


class DecodeGate:
    """A thread-safe counting gate weighted by pixel count, FIFO, with a wait timeout.

    ``pixel_budget``: pixels allowed in flight (> 0). An image larger than the budget is
    admitted alone (counted as the whole budget). ``wait_seconds``: the longest wait for room
    (>= 0; 0 = admit only if room now). ``max_in_flight``: images admitted at once whatever
    their size (>= 1; None = no bound but the pixels). The gate blocks the calling thread:
    call it from worker threads (FastAPI runs sync routes in its thread pool), and never nest
    ``admit`` in one thread (it could wait on itself until the timeout).
    Raises ValueError for a non-positive budget or slot count, or a negative wait.
    """

    def __init__(self, pixel_budget: int, wait_seconds: float, max_in_flight: int | None = None) -> None:
        if pixel_budget <= 0:
            raise ValueError("pixel_budget must be positive")
        if wait_seconds < 0:
            raise ValueError("wait_seconds must not be negative")
        if max_in_flight is not None and max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self._budget = pixel_budget
        self._wait_seconds = wait_seconds
        self._max_in_flight = max_in_flight
        self._in_flight = 0
        self._admitted = 0
        self._queue: deque[object] = deque()
        self._changed = threading.Condition(threading.Lock())

    @classmethod
    def from_limits(cls, limits: ImageLimits) -> DecodeGate:
        """A gate sized by ``limits.decode_pixel_budget``, ``decode_wait_seconds`` and
        ``max_concurrent_images``."""
        return cls(limits.decode_pixel_budget, limits.decode_wait_seconds, limits.max_concurrent_images)

    @property
    def pixel_budget(self) -> int:
        return self._budget

    @property
    def max_in_flight(self) -> int | None:
        return self._max_in_flight

    @property
    def images_in_flight(self) -> int:
        """Images admitted right now."""
        with self._changed:
            return self._admitted

    @property
    def pixels_in_flight(self) -> int:
        """Pixels (as weighed, at most the budget each) of the images admitted right now."""
        with self._changed:
            return self._in_flight

    @property
    def waiting(self) -> int:
        """How many callers are queued for room."""
        with self._changed:
            return len(self._queue)

    @contextmanager
    def admit(self, pixels: int) -> Iterator[None]:
        """Hold ``pixels`` of the budget for the duration of the ``with`` block.

        Raises:
            ServerBusyError (503): no room within ``wait_seconds``; ``details["retry_after"]``
                (whole seconds, >= 1) becomes the HTTP Retry-After header.
        """
        weight = min(max(int(pixels), 1), self._budget)
        self._acquire(weight)
        try:
            yield
        finally:
            with self._changed:
                self._in_flight -= weight
                self._admitted -= 1
                self._changed.notify_all()

    def _acquire(self, weight: int) -> None:
        ticket = object()
        deadline = time.monotonic() + self._wait_seconds
        with self._changed:
            self._queue.append(ticket)
            try:
                while not (self._queue[0] is ticket and self._has_room(weight)):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise self._busy()
                    self._changed.wait(remaining)
                self._in_flight += weight
                self._admitted += 1
            finally:
                self._queue.remove(ticket)
                # The head of the queue may have changed: let the next waiter look again.
                self._changed.notify_all()

    def _has_room(self, weight: int) -> bool:
        slots_free = self._max_in_flight is None or self._admitted < self._max_in_flight
        return slots_free and self._in_flight + weight <= self._budget

    def _busy(self) -> errors.FaceSocialError:
        # The gate found no room for wait_seconds: waiting about as long again is a fair back-off.
        retry_after = max(1, math.ceil(self._wait_seconds))
        return errors.ServerBusyError(
            f"Too many images are being processed; no room for this image within {self._wait_seconds:g} s",
            retry_after=retry_after,
        )
