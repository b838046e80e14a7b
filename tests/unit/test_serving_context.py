"""Unit tests of the services' routing helpers (services/serving_context.py)."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass, field

import pytest

from facesocial import errors
from facesocial.domains.registry.serving import InferenceRecord, RoutingKey, Serving, StaticRouter
from facesocial.services.principal import Principal
from facesocial.services.serving_context import (
    ServingScope,
    job_scope,
    routing_key,
    serving_from_dict,
    session_key,
)

TENANT = uuid.UUID("00000000-0000-0000-0000-0000000000aa")
KEY_ID = uuid.UUID("00000000-0000-0000-0000-0000000000bb")
ACCOUNT = uuid.UUID("00000000-0000-0000-0000-0000000000cc")


@dataclass
class CountingRouter:
    """Answers ``version`` (or the default), counts resolves, keeps records; may fail."""

    version: str | None = None
    active: tuple[str, ...] = ()
    fail_record: bool = False
    resolves: int = 0
    records: list[InferenceRecord] = field(default_factory=list)

    def resolve(
        self,
        slot: str,
        key: RoutingKey,
        *,
        installed: Collection[str],
        default: str,
        pinned: str | None = None,
    ) -> Serving:
        self.resolves += 1
        if pinned is not None:
            return StaticRouter().resolve(slot, key, installed=installed, default=default, pinned=pinned)
        return Serving(slot, self.version or default, "canary" if self.version else "production")

    def record(self, record: InferenceRecord) -> None:
        if self.fail_record:
            raise RuntimeError("database down")
        self.records.append(record)

    def active_versions(self, slot: str) -> tuple[str, ...]:
        return self.active


@pytest.mark.parametrize(
    ("principal", "user_key"),
    [
        (Principal("api_key", "admin", TENANT, "k", api_key_id=KEY_ID, account_id=ACCOUNT), f"key:{KEY_ID}"),
        (Principal("jwt", "user", TENANT, "t", account_id=ACCOUNT), f"account:{ACCOUNT}"),
        (Principal("jwt", "user", TENANT, "t"), f"tenant:{TENANT}"),
        (None, None),
    ],
)
def test_routing_key_names_the_finest_caller_identity(
    principal: Principal | None, user_key: str | None
) -> None:
    key = routing_key(principal, {"x-session-id": "  s-1  "})
    assert key.user_key == user_key
    assert key.session_id == "s-1"
    assert key.tenant_id == (TENANT if principal else None)
    assert len(key.request_id) == 32 and routing_key(principal).request_id != key.request_id


def test_routing_key_session_header_is_bounded_and_optional() -> None:
    assert routing_key(None, {"x-session-id": "x" * 500}).session_id == "x" * 128
    assert routing_key(None, {"x-session-id": "   "}).session_id is None
    assert routing_key(None, {}).session_id is None
    # An explicit session (a liveness session) wins over the header.
    assert routing_key(None, {"x-session-id": "h"}, session_id="explicit").session_id == "explicit"
    assert session_key(TENANT, KEY_ID, "sess").user_key == f"key:{KEY_ID}"
    assert session_key(TENANT, None, "sess").user_key == f"tenant:{TENANT}"


def test_a_scope_resolves_each_slot_once_and_items_get_fresh_inference_ids() -> None:
    router = CountingRouter(version="b@2")
    scope = ServingScope(router, RoutingKey("r1"))
    first = scope.resolve("face_detection", installed=("a@1", "b@2"), default="a@1")
    again = scope.resolve("face_detection", installed=("a@1", "b@2"), default="a@1")
    assert first is again and router.resolves == 1 and first.version == "b@2"
    item = scope.item()
    assert item.decisions["face_detection"].version == "b@2"
    assert item.decisions["face_detection"].inference_id != first.inference_id
    assert scope.serving_body() == {"face_detection": first.as_dict()}


def test_a_pinned_version_is_resolved_even_after_another_decision() -> None:
    router = CountingRouter(version="b@2")
    scope = ServingScope(router, RoutingKey("r1"))
    scope.resolve("face_embedding", installed=("a@1", "b@2"), default="a@1")
    pinned = scope.resolve("face_embedding", installed=("a@1", "b@2"), default="a@1", pinned="a@1")
    assert (pinned.version, pinned.route) == ("a@1", "pinned")
    with pytest.raises(errors.UnknownModelError):
        ServingScope.static().resolve("face_embedding", installed=("a@1",), default="a@1", pinned="zz@9")


def test_record_clips_confidences_and_never_raises() -> None:
    router = CountingRouter()
    scope = ServingScope(router, RoutingKey("r1", tenant_id=TENANT))
    serving = scope.resolve("liveness", installed=("l@1",), default="l@1")
    scope.record(
        serving, "antispoofing", started=0.0, result={}, confidences=[1.7, -0.2, 0.5], features={"q": 1}
    )
    (record,) = router.records
    assert record.confidences == (1.0, 0.0, 0.5) and record.features == {"q": 1.0}
    assert record.tenant_id == TENANT and record.processing_time_ms >= 0
    broken = ServingScope(CountingRouter(fail_record=True), RoutingKey("r2"))
    broken.record(serving, "antispoofing", started=0.0, result={})  # logged, not raised


def test_serving_versions_lists_this_requests_then_the_installed_active_ones() -> None:
    router = CountingRouter(version="b@2", active=("a@1", "b@2", "c@3"))
    scope = ServingScope(router, RoutingKey("r1"))
    scope.resolve("face_embedding", installed=("a@1", "b@2"), default="a@1")
    # c@3 serves somewhere but is not installed here: it cannot be enrolled in.
    assert scope.serving_versions("face_embedding", ("a@1", "b@2")) == ("b@2", "a@1")
    static = ServingScope.static()
    static.resolve("face_embedding", installed=("a@1",), default="a@1")
    assert static.serving_versions("face_embedding", ("a@1",)) == ("a@1",)


def test_a_job_runs_the_decisions_its_request_made() -> None:
    made = Serving("liveness", "l@1", "experiment", experiment_id="e1", arm="challenger")
    assert serving_from_dict(made.as_dict()) == made
    router = CountingRouter(version="other@9")
    scope = job_scope(router, {"liveness": made.as_dict()}, job_id="job1", tenant_id=TENANT)
    assert scope.resolve("liveness", installed=("l@1",), default="l@1") == made
    assert router.resolves == 0 and scope.key.request_id == "job1"
    fresh = job_scope(router, None, job_id="job2", tenant_id=TENANT)
    assert fresh.resolve("liveness", installed=("l@1",), default="l@1").version == "other@9"
