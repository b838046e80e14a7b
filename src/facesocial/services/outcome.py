"""What a use case hands back to the API: the response body plus facts for the audit log."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class Outcome:
    body: dict[str, Any]
    user_id: uuid.UUID | None = None
    confidence: float | None = None
    model_version: str | None = None
