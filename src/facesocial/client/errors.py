"""Exceptions of the SDK. Every failure a caller should handle is a ``FaceSocialAPIError``."""

from __future__ import annotations

from typing import Any

import httpx


class FaceSocialAPIError(Exception):
    """An error answer of the server, or a request that could not be completed.

    ``code``: the server's stable error code (docs/api.md "Error codes", e.g. ``NO_FACE_FOUND``,
    ``RATE_LIMITED``); ``HTTP_<status>`` when the answer was not the platform's error JSON
    (e.g. a proxy's 502 page); ``CONNECTION_ERROR`` / ``TIMEOUT`` (status 0) when no answer came.
    ``message``: the server's message; ``status``: the HTTP status; ``details``: the error's
    ``details`` object (``{}`` when none); ``retry_after``: seconds from ``Retry-After`` when given.
    """

    def __init__(
        self,
        code: str,
        message: str,
        status: int,
        details: dict[str, Any] | None = None,
        *,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{code} ({status}): {message}")
        self.code = code
        self.message = message
        self.status = status
        self.details: dict[str, Any] = details or {}
        self.retry_after = retry_after

    @classmethod
    def from_response(cls, response: httpx.Response, retry_after: float | None = None) -> FaceSocialAPIError:
        """The error of a non-2xx answer: the platform's ``{"success": false, "error": {...}}``
        when the body is that, else ``HTTP_<status>`` with the body's start as message."""
        try:
            body = response.json()
        except ValueError:
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and isinstance(error.get("code"), str):
            details = error.get("details")
            return cls(
                error["code"],
                str(error.get("message", "")),
                response.status_code,
                details
                if isinstance(details, dict)
                else ({"items": details} if details is not None else None),
                retry_after=retry_after,
            )
        text = response.text[:500] if response.content else response.reason_phrase
        return cls(f"HTTP_{response.status_code}", text, response.status_code, retry_after=retry_after)


class FaceSocialConnectionError(FaceSocialAPIError):
    """No answer: the connection failed or timed out after the retries allowed (status 0)."""


class JobFailedError(FaceSocialAPIError):
    """A waited-for job ended ``failed`` or ``cancelled``; ``job`` is its last state.

    ``code`` is the job error's code (``JOB_CANCELLED`` for a cancelled job)."""

    def __init__(self, job: Any) -> None:
        error = job.error or {}
        code = str(error.get("code") or ("JOB_CANCELLED" if job.status == "cancelled" else "JOB_FAILED"))
        message = str(error.get("message") or f"job {job.job_id} ended {job.status}")
        super().__init__(code, message, 200, {"job_id": job.job_id, "status": job.status})
        self.job = job


class JobTimeoutError(FaceSocialAPIError):
    """``wait_job`` gave up: the job had not ended within ``timeout`` seconds; ``job`` is its last state."""

    def __init__(self, job: Any, timeout: float) -> None:
        super().__init__(
            "JOB_WAIT_TIMEOUT",
            f"job {job.job_id} still {job.status} ({job.progress_percentage:.0f} %) after {timeout:g} s",
            0,
            {"job_id": job.job_id, "status": job.status, "progress_percentage": job.progress_percentage},
        )
        self.job = job
