"""The authenticated caller, whichever credential it presented."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

Role = Literal["admin", "user"]


@dataclass(frozen=True, slots=True)
class Principal:
    kind: Literal["api_key", "jwt"]
    role: Role
    # Whose data the caller may see and change: admins see every tenant.
    tenant_id: uuid.UUID
    name: str
    api_key_id: uuid.UUID | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def rate_key(self) -> str:
        """Rate limits count per API key, or per token subject."""
        return f"key:{self.api_key_id}" if self.api_key_id else f"jwt:{self.tenant_id}"
