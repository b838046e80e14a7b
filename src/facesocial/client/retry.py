"""When and how long the SDK waits before sending a request again.

Policy (the one AWS's "Exponential Backoff And Jitter" note recommends, "full jitter"): after
the n-th failed attempt (n = 1, 2, ...) wait a uniform random time in
``[0, min(backoff_max, backoff_base * 2 ** (n - 1))]`` seconds, unless the answer carries
``Retry-After`` (RFC 9110 §10.2.3: delay seconds or an HTTP date), which the server sets on its
429 ``RATE_LIMITED`` and 503 ``SERVER_BUSY``/``SERVICE_UNAVAILABLE`` answers: then wait exactly
that long (plus up to ``retry_after_jitter`` of it, so clients told the same time do not all
come back in the same millisecond). A ``Retry-After`` longer than ``max_retry_after`` is not
waited for: the error is raised at once, so a caller is never parked for an hour.

What is retried:

* a 429 or 503 answer, for every method: the server refused the request before doing anything
  (docs/api.md: "A refused request never changes stored faces, users or vectors"), except
  429 ``API_KEY_QUOTA_EXCEEDED`` (the key's request budget is used up; waiting does not help);
* a connection that could not be opened (``httpx.ConnectError``/``ConnectTimeout``): nothing
  was sent, so any method may be retried;
* other transport failures (read timeout, connection reset mid-answer) only for idempotent
  methods (GET, HEAD, OPTIONS, PUT, DELETE; RFC 9110 §9.2.2): a POST may have taken effect.

Attempts are bounded by ``max_attempts`` (the first try included).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# Error codes whose 429/503 answers waiting cannot fix.
NOT_RETRYABLE_CODES = frozenset({"API_KEY_QUOTA_EXCEEDED"})


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header value, or None when absent or malformed.

    ``value`` is either a non-negative integer of seconds (``"7"``) or an IMF-fixdate HTTP date
    (``"Wed, 21 Oct 2015 07:28:00 GMT"``, RFC 9110 §5.6.7); a date in the past gives 0.0.
    ``now`` (timezone-aware; default: the current UTC time) is the clock dates are measured from.
    Anything else (non-ASCII digits such as ``"²"``, a number too large for a float) is malformed.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        try:
            return float(int(text))
        except (OverflowError, ValueError):  # hundreds of digits: no float holds them
            return None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 850 / asctime forms carry no zone: HTTP dates are GMT
        when = when.replace(tzinfo=UTC)
    reference = now or datetime.now(UTC)
    return max(0.0, (when - reference).total_seconds())


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded retries with exponential back-off, full jitter and ``Retry-After``.

    ``max_attempts``: tries in all (1 disables retrying); ``backoff_base``/``backoff_max``:
    seconds of the jittered exponential back-off; ``max_retry_after``: the longest
    ``Retry-After`` (seconds) honoured — longer ones raise at once; ``retry_after_jitter``: the
    share of a ``Retry-After`` added at random (0.1 = up to +10 %); ``statuses``: answers retried.
    ``rng`` draws the jitter (seeded in tests).
    """

    max_attempts: int = 4
    backoff_base: float = 0.5
    backoff_max: float = 20.0
    max_retry_after: float = 120.0
    retry_after_jitter: float = 0.1
    statuses: frozenset[int] = frozenset({429, 503})
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.backoff_base < 0 or self.backoff_max < 0 or self.max_retry_after < 0:
            raise ValueError("delays must not be negative")

    def backoff(self, attempt: int) -> float:
        """Full-jitter delay (seconds) after failed attempt number ``attempt`` (1-based)."""
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** max(0, attempt - 1))
        return self.rng.uniform(0.0, ceiling)

    def delay_for_response(
        self, attempt: int, response: httpx.Response, error_code: str | None
    ) -> float | None:
        """Seconds to wait before retrying after ``response``, or None to give up now.

        None when the status is not retried, ``error_code`` is one waiting cannot fix, the
        attempts are used up, or ``Retry-After`` exceeds ``max_retry_after``.
        """
        if response.status_code not in self.statuses or attempt >= self.max_attempts:
            return None
        if error_code in NOT_RETRYABLE_CODES:
            return None
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if retry_after is None:
            return self.backoff(attempt)
        if retry_after > self.max_retry_after:
            return None
        return retry_after + self.rng.uniform(0.0, retry_after * self.retry_after_jitter)

    def delay_for_exception(self, attempt: int, method: str, exc: httpx.TransportError) -> float | None:
        """Seconds to wait before retrying after a transport failure, or None to give up now."""
        if attempt >= self.max_attempts:
            return None
        unsent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
        if unsent or method.upper() in IDEMPOTENT_METHODS:
            return self.backoff(attempt)
        return None


NO_RETRY = RetryPolicy(max_attempts=1)
