"""Writes ``audit.ai_operations_log`` and ``audit.usage_logs``: one row each per API call."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from facesocial.services.context import RequestContext
from facesocial.store.db import Database
from facesocial.store.tables import AiOperationLog, UsageLog


@dataclass(slots=True)
class OperationRecord:
    service_name: str
    operation_type: str
    endpoint: str
    processing_time_ms: int
    request_size_bytes: int | None = None
    response_size_bytes: int | None = None
    operation_result: str = "success"
    error_code: str | None = None
    error_message: str | None = None
    confidence_score: float | None = None
    model_version: str | None = None
    user_id: uuid.UUID | None = None
    status_code: int = 200
    api_key_uuid: uuid.UUID | None = None  # set when an API key authenticated the call
    tenant_id: uuid.UUID | None = None  # the authenticated caller's tenant (usage accounting)
    # The method and route template ("GET /api/v1/jobs/{job_id}") when ``endpoint`` holds the raw
    # path, UNMATCHED when the request matched no route; None: ``endpoint`` is the route already.
    route: str | None = None


# Error messages can quote client input (a validation message names the fields sent, and a
# multipart field name may be 64 KiB long): the stored message is cut here.
MAX_ERROR_MESSAGE = 1024
MAX_USER_AGENT = 512
# usage_logs.request_path (and request_type) of every request that matched no route: a client
# asking for random unknown paths adds rows, never new endpoints to its tenant's usage report.
UNMATCHED = "unmatched"


def _cut(text: str | None, limit: int) -> str | None:
    return text[:limit] if text is not None else None


class AuditLog:
    def __init__(self, database: Database) -> None:
        self._db = database

    def record(self, record: OperationRecord, ctx: RequestContext) -> None:
        confidence = record.confidence_score
        if confidence is not None:
            confidence = max(-9.9999, min(9.9999, confidence))  # fits DECIMAL(5,4)
        with self._db.session() as session:
            session.add(
                AiOperationLog(
                    operation_id=uuid.uuid4().hex,
                    user_id=record.user_id,
                    service_name=record.service_name,
                    operation_type=record.operation_type,
                    endpoint=record.endpoint[:100],
                    request_size_bytes=record.request_size_bytes,
                    response_size_bytes=record.response_size_bytes,
                    processing_time_ms=record.processing_time_ms,
                    operation_result=record.operation_result,
                    confidence_score=confidence,
                    error_code=record.error_code,
                    error_message=_cut(record.error_message, MAX_ERROR_MESSAGE),
                    model_version=record.model_version,
                    ip_address=ctx.ip_address,
                    user_agent=_cut(ctx.user_agent, MAX_USER_AGENT),
                    api_key_id=ctx.api_key_id,
                    request_source=ctx.request_source,
                )
            )
            # Document 003's per-request usage accounting (billing, quotas, abuse review).
            session.add(
                UsageLog(
                    api_key_id=record.api_key_uuid,
                    tenant_id=record.tenant_id,
                    # The route, never the raw path: usage is reported per route (the audit
                    # row above keeps what was asked for).
                    request_type=(
                        UNMATCHED
                        if record.route == UNMATCHED
                        else f"{record.service_name}.{record.operation_type}"[:50]
                    ),
                    request_path=(record.route or record.endpoint)[:255],
                    response_code=record.status_code,
                    processing_time=record.processing_time_ms / 1000.0,
                    ip_address=ctx.ip_address,
                    user_agent=_cut(ctx.user_agent, MAX_USER_AGENT),
                )
            )
