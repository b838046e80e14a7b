"""The app factory of ``facesocial serve --workers N``: one container per worker process.

uvicorn starts N processes and calls :func:`create_app_from_env` in each (it needs an import
string, so the app cannot be handed over as an object). Every worker reads its settings from the
``FACESOCIAL_*`` environment the parent prepared; the parent has already migrated the database
and created the first (operator) key, once.

Processes share nothing in memory, so several of them are correct only when every store is
shared: see :func:`multi_worker_problems`.
"""

from __future__ import annotations

import logging
import os

from fastapi import FastAPI

from facesocial.api.app import create_app
from facesocial.container import Container
from facesocial.settings import Settings

log = logging.getLogger(__name__)

FACTORY = "facesocial.api.factory:create_app_from_env"

# pymilvus URIs of a Milvus server, as opposed to a milvus-lite file path.
_MILVUS_SERVER_SCHEMES = ("http://", "https://", "tcp://", "grpc://")


def create_app_from_env() -> FastAPI:
    """An app around a new container built from the environment, models loaded before serving."""
    container = Container(Settings())
    _ = container.pipeline  # load the models before this worker accepts traffic
    log.info("worker %d ready", os.getpid())
    return create_app(container)


def multi_worker_problems(settings: Settings) -> list[str]:
    """Why ``settings`` cannot run in several processes (empty: it can).

    Each process would otherwise keep its own copy of state that must be one: the SQLite
    database's per-user write locks live in one process; the local vector index and a milvus-lite
    file are owned by the one process that opened them; the in-memory face cache would go stale
    when another process erases a user, and in-memory rate limits would multiply by N.
    """
    problems = []
    if settings.resolved_database_url().startswith("sqlite"):
        problems.append("the database is SQLite: set FACESOCIAL_DATABASE_URL=postgresql://...")
    if not settings.redis_url:
        problems.append(
            "the cache and rate limits are in process memory: set FACESOCIAL_REDIS_URL=redis://..."
        )
    if not settings.milvus_uri:
        problems.append(
            "the vector index is the local one (one process owns it): set "
            "FACESOCIAL_MILVUS_URI=http://<milvus server>:19530"
        )
    elif not settings.milvus_uri.startswith(_MILVUS_SERVER_SCHEMES):
        problems.append(
            f"the vector index is a milvus-lite file ({settings.milvus_uri}) that one process owns: "
            "set FACESOCIAL_MILVUS_URI=http://<milvus server>:19530"
        )
    return problems
