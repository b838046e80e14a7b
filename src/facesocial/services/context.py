"""Who is calling and from where: passed from the API (or CLI) into every use case."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RequestContext:
    ip_address: str | None = None
    user_agent: str | None = None
    api_key_id: str | None = None
    request_source: str | None = None
