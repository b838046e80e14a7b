"""The FaceSocial Python SDK: typed sync and async clients of the HTTP API (docs/sdk.md).

    from facesocial.client import FaceSocialClient, AsyncFaceSocialClient, FaceSocialAPIError

Uploads take a path, bytes, a binary file, a ``PIL.Image.Image`` or a NumPy array
(``facesocial.client.uploads``); 429/503 answers and failed connections are retried with
back-off honouring ``Retry-After`` (``facesocial.client.retry``); jobs are awaited with a
progress callback (``wait_job``). Every route the SDK calls is declared in
``facesocial.client.calls.ENDPOINTS`` and checked against the server's OpenAPI schema in tests.
"""

from __future__ import annotations

from facesocial.client.aio import AsyncFaceSocialClient
from facesocial.client.errors import (
    FaceSocialAPIError,
    FaceSocialConnectionError,
    JobFailedError,
    JobTimeoutError,
)
from facesocial.client.models import (
    Accepted,
    AiImageResult,
    BBox,
    Candidate,
    DeepfakeResult,
    Demographics,
    DemographicsFace,
    DetectionResult,
    Erasure,
    Face,
    Group,
    Identification,
    Job,
    LivenessSession,
    Registration,
    SpoofCheck,
    Verification,
)
from facesocial.client.retry import NO_RETRY, RetryPolicy, parse_retry_after
from facesocial.client.sync import FaceSocialClient

__all__ = [
    "NO_RETRY",
    "Accepted",
    "AiImageResult",
    "AsyncFaceSocialClient",
    "BBox",
    "Candidate",
    "DeepfakeResult",
    "Demographics",
    "DemographicsFace",
    "DetectionResult",
    "Erasure",
    "Face",
    "FaceSocialAPIError",
    "FaceSocialClient",
    "FaceSocialConnectionError",
    "Group",
    "Identification",
    "Job",
    "JobFailedError",
    "JobTimeoutError",
    "LivenessSession",
    "Registration",
    "RetryPolicy",
    "SpoofCheck",
    "Verification",
    "parse_retry_after",
]
