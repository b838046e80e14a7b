"""PERCLOS (percentage of eyelid closure over time) and blink counting for one face track.

PERCLOS is the fraction of a time window in which the eyes are closed; Wierwille & Ellsworth
(1994) and Dinges & Grace (1998, FHWA-MCRT-98-006) found its "P80" form (eyelids covering at
least 80 % of the pupil) the most reliable camera measure of drowsiness. Here "closed" comes
from the mesh's eye openness (EAR mapped 0..1) below ``closed_openness`` 0.3, with a band up to
``open_openness`` 0.45 before it counts as open again (:class:`EyeClosure`). Why 0.3 for P80:
the mesh never closes the lids fully, so shut eyes read 0.06-0.22 on the blink video (docs), and
20 % of the way from ≈0.15 (shut) to 1.0 (open) is ≈0.32.

Time weighting: frames arrive at any rate, so each sample stands for the interval since the
previous sample (at most ``max_gap_ms``; a longer gap is time nobody saw, counted neither way),
and PERCLOS = closed time / observed time inside the last ``window_seconds``. A track is drowsy
when PERCLOS ≥ ``drowsy_threshold`` and at least ``min_coverage`` of the window was observed
(a few seconds of closed eyes at the start of a track are not a minute of drowsiness).

Blinks: a run of closed samples that ends (the eyes open again) within ``blink_max_ms`` of its
first closed sample. Longer runs are long closures: they count toward PERCLOS, not as blinks.
Spontaneous blinks last about 100-400 ms (Caffier et al. 2003, "Experimental evaluation of
eye-blink parameters as a drowsiness measure"), hence 500 ms.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(slots=True)
class EyeClosure:
    """Closed/open state with a band: closes below ``closed_below``, opens again above ``open_above``."""

    closed_below: float
    open_above: float
    closed: bool = False

    def update(self, openness: float) -> bool:
        """The state after a sample of ``openness`` (0..1 of the more open eye); True = closed."""
        if self.closed:
            self.closed = openness <= self.open_above
        else:
            self.closed = openness < self.closed_below
        return self.closed


class Perclos:
    """Sliding-window PERCLOS and blink count of one face track (see the module docstring).

    Raises ValueError on invalid parameters or a timestamp earlier than the previous one.
    """

    def __init__(
        self,
        window_seconds: float = 60.0,
        *,
        drowsy_threshold: float = 0.15,
        min_coverage: float = 0.5,
        max_gap_ms: int = 1000,
        blink_max_ms: int = 500,
    ) -> None:
        if window_seconds <= 0 or not 0 < drowsy_threshold <= 1 or not 0 < min_coverage <= 1:
            raise ValueError("window_seconds > 0, 0 < drowsy_threshold <= 1 and 0 < min_coverage <= 1")
        if max_gap_ms <= 0 or blink_max_ms <= 0:
            raise ValueError("max_gap_ms and blink_max_ms must be > 0")
        self.window_ms = window_seconds * 1000.0
        self.drowsy_threshold = drowsy_threshold
        self.min_coverage = min_coverage
        self.max_gap_ms = max_gap_ms
        self.blink_max_ms = blink_max_ms
        # (start_ms, end_ms, closed): the interval each sample stands for, oldest first.
        self._spans: deque[tuple[float, float, bool]] = deque()
        self._last_ms: float | None = None
        self._run_start_ms: float | None = None  # first sample of the current closed run
        self.blinks = 0
        self.blink_ended = False  # a blink ended at the latest sample
        self.perclos = 0.0
        self.observed_seconds = 0.0

    def add(self, timestamp_ms: float, eyes_closed: bool) -> float:
        """Record one sample; returns PERCLOS 0..1 over the window ending at ``timestamp_ms``."""
        if self._last_ms is not None and timestamp_ms < self._last_ms:
            raise ValueError(f"timestamp {timestamp_ms} ms precedes the previous sample ({self._last_ms} ms)")
        if self._last_ms is not None:
            start = max(self._last_ms, timestamp_ms - self.max_gap_ms)
            if timestamp_ms > start:
                self._spans.append((start, float(timestamp_ms), eyes_closed))
        self._last_ms = float(timestamp_ms)
        self._count_blink(float(timestamp_ms), eyes_closed)
        window_start = timestamp_ms - self.window_ms
        while self._spans and self._spans[0][1] <= window_start:
            self._spans.popleft()
        observed = closed = 0.0
        for start, end, shut in self._spans:
            length = end - max(start, window_start)
            observed += length
            if shut:
                closed += length
        self.observed_seconds = observed / 1000.0
        self.perclos = closed / observed if observed > 0 else 0.0
        return self.perclos

    @property
    def is_drowsy(self) -> bool:
        """PERCLOS ≥ the threshold over a window observed for at least ``min_coverage`` of its length."""
        full_enough = self.observed_seconds * 1000.0 >= self.min_coverage * self.window_ms
        return full_enough and self.perclos >= self.drowsy_threshold

    def _count_blink(self, timestamp_ms: float, eyes_closed: bool) -> None:
        self.blink_ended = False
        if eyes_closed:
            if self._run_start_ms is None:
                self._run_start_ms = timestamp_ms
            return
        if self._run_start_ms is not None and timestamp_ms - self._run_start_ms <= self.blink_max_ms:
            self.blinks += 1
            self.blink_ended = True
        self._run_start_ms = None
