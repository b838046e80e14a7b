"""What routing costs a request: ``facesocial bench registry [--database-url URL]``.

Prints JSON: microseconds per :meth:`DbModelRouter.resolve` (from the in-memory snapshot, with
a 30 % canary on the slot), milliseconds per :meth:`~DbModelRouter.record` (one
``model_inference_results`` row, one transaction) and per snapshot reload (two indexed reads).
A scratch SQLite database in a temporary folder unless ``--database-url`` names another (its
registry is changed: use a throw-away database).
"""

from __future__ import annotations

import tempfile
import time
import uuid
from pathlib import Path

from facesocial.domains.registry.deployments import Actor, DeploymentService
from facesocial.domains.registry.routing import DbModelRouter
from facesocial.domains.registry.serving import InferenceRecord, RoutingKey
from facesocial.domains.registry.sync import sync_slots
from facesocial.store import migrate
from facesocial.store.db import Database

SLOT = "face_detection"
INSTALLED = frozenset({"a@1", "b@1"})


def run(database: Database, resolves: int = 20_000, records: int = 300) -> dict[str, float]:
    from facesocial.store.tables_registry import ModelVersion

    migrate.upgrade(database)
    sync_slots(database, Path(tempfile.gettempdir()) / "no-models", {})
    with database.session() as session:
        for tag in INSTALLED:
            if session.get(ModelVersion, uuid.uuid5(uuid.NAMESPACE_URL, tag)) is None:
                session.add(
                    ModelVersion(id=uuid.uuid5(uuid.NAMESPACE_URL, tag), model_id=SLOT, version_number=tag)
                )
    router = DbModelRouter(database, 2.0)
    registry = DeploymentService(database, router.invalidate)
    registry.deploy(SLOT, "a@1", Actor(None, "bench"))
    registry.set_canary(SLOT, "b@1", 30, Actor(None, "bench"))
    keys = [RoutingKey(uuid.uuid4().hex, user_key=f"key:{i}") for i in range(resolves)]
    router.resolve(SLOT, keys[0], installed=INSTALLED, default="a@1")
    started = time.perf_counter()
    for key in keys:
        router.resolve(SLOT, key, installed=INSTALLED, default="a@1")
    resolve_us = (time.perf_counter() - started) / resolves * 1e6
    started = time.perf_counter()
    for key in keys[:records]:
        serving = router.resolve(SLOT, key, installed=INSTALLED, default="a@1")
        router.record(
            InferenceRecord(serving, "bench", None, 1, {"faces_detected": 1}, (0.9,), {"quality": 0.5})
        )
    record_ms = (time.perf_counter() - started) / records * 1e3
    started = time.perf_counter()
    for _ in range(50):
        router.invalidate()
        router.states()
    reload_ms = (time.perf_counter() - started) / 50 * 1e3
    return {
        "resolve_us": round(resolve_us, 1),
        "record_ms": round(record_ms, 2),
        "snapshot_reload_ms": round(reload_ms, 2),
    }
