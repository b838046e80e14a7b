"""The authenticated caller, whichever credential it presented."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

# operator: the installation's operator (index upkeep over every tenant, /api/v1/admin/...);
# only an API key can carry it (the first-start key, or `keys create --role operator`).
# admin: a tenant's own administrator. user: a client application.
Role = Literal["operator", "admin", "user"]


@dataclass(frozen=True, slots=True)
class Principal:
    kind: Literal["api_key", "jwt"]
    role: Role
    # Whose data the caller may see and change through the normal routes: only this tenant's,
    # whatever the role (an operator too). Only the operator's index upkeep spans tenants.
    tenant_id: uuid.UUID
    name: str
    api_key_id: uuid.UUID | None = None
    # The account (core.accounts) behind the call: a login token's, or the key's owner. Its id is
    # also ``tenant_id``. None for keys made on the server and for shared-secret tokens.
    account_id: uuid.UUID | None = None

    @property
    def is_admin(self) -> bool:
        """Administers its tenant (the operator is an admin of its own tenant too)."""
        return self.role in ("operator", "admin")

    @property
    def is_operator(self) -> bool:
        """Runs the installation: the admin routes act on every tenant's faces and vectors."""
        return self.role == "operator"

    @property
    def rate_key(self) -> str:
        """Rate limits count per API key, or per token subject."""
        return f"key:{self.api_key_id}" if self.api_key_id else f"jwt:{self.tenant_id}"
