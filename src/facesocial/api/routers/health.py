"""Liveness (no auth)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from facesocial import __version__

router = APIRouter(tags=["health"])


@router.get("/health", name="health")
def health() -> dict[str, Any]:
    return {"status": "ok", "version": __version__}
