"""``session:{session_id}`` (document 000 §6, 30 min): short-lived state of a multi-step flow.

Active liveness challenges and other multi-request flows keep their progress here, so any
server process can serve the next step (Redis in the scaled profile, memory when embedded).
"""

from __future__ import annotations

import json
from typing import Any

from facesocial.store.kv import SESSION_TTL, KeyValue, session_key


class SessionStore:
    def __init__(self, kv: KeyValue, ttl_seconds: int = SESSION_TTL) -> None:
        self._kv = kv
        self._ttl = ttl_seconds

    def put(self, session_id: str, state: dict[str, Any], ttl_seconds: int | None = None) -> None:
        """Store (or replace) the state; each write restarts the expiry (default: the store's TTL)."""
        ttl = self._ttl if ttl_seconds is None else max(1, min(ttl_seconds, self._ttl))
        self._kv.set(session_key(session_id), json.dumps(state).encode(), ttl)

    def get(self, session_id: str) -> dict[str, Any] | None:
        raw = self._kv.get(session_key(session_id))
        return None if raw is None else dict(json.loads(raw))

    def end(self, session_id: str) -> bool:
        return self._kv.delete(session_key(session_id)) > 0
