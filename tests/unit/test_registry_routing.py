"""The registry's router and deployment rules on a real (SQLite) registry: route order, fallback to
what this process can run, canary share and stability, snapshot refresh, inference records, the
stage rules, and a sync that never overwrites an operator's decision.

No model runs: the slot ``face_detection`` is given three made-up versions (a@1, b@1, c@1) beside
what the sync found, so every route can be told apart.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from facesocial import errors
from facesocial.domains.registry import routing
from facesocial.domains.registry.deployments import Actor, DeploymentService
from facesocial.domains.registry.routing import DbModelRouter, SlotState
from facesocial.domains.registry.serving import SLOTS, InferenceRecord, RoutingKey, Serving
from facesocial.domains.registry.sync import sync_slots
from facesocial.store import migrate
from facesocial.store.db import Database
from facesocial.store.tables_registry import (
    AbAssignment,
    AbExperiment,
    DeploymentPipeline,
    ModelInferenceResult,
    ModelVersion,
    RegisteredModel,
)
from facesocial.store.types import utcnow

SLOT = "face_detection"
A, B, C = "a@1", "b@1", "c@1"
ALL = frozenset({A, B, C})
DEFAULT = "fallback@0"
ACTOR = Actor(None, "test")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def database(tmp_path: Path) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'registry.db'}")
    migrate.upgrade(db)
    # An empty model folder: only dlib's pip models and the packaged ones are installed.
    sync_slots(db, tmp_path / "no-models", {})
    with db.session() as session:
        session.execute(
            ModelVersion.__table__.update()
            .where(ModelVersion.model_id == SLOT)
            .values(deployment_status="staging", canary_percent=None)
        )
        for tag, stage in ((A, "production"), (B, "staging"), (C, "development")):
            session.add(ModelVersion(model_id=SLOT, version_number=tag, deployment_status=stage))
        session.add(ModelVersion(model_id=SLOT, version_number="gone@1", is_installed=False))
    return db


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def router(database: Database, clock: Clock) -> DbModelRouter:
    return DbModelRouter(database, refresh_seconds=2.0, clock=clock)


@pytest.fixture
def registry(database: Database, router: DbModelRouter) -> DeploymentService:
    return DeploymentService(database, on_change=router.invalidate)


def resolve(router: DbModelRouter, user: str = "u1", installed: frozenset[str] = ALL, **kw: str) -> Serving:
    return router.resolve(
        SLOT, RoutingKey(uuid.uuid4().hex, user_key=user), installed=installed, default=DEFAULT, **kw
    )


def start_experiment(database: Database, challenger_percent: float = 100.0, method: str = "user") -> str:
    experiment_id = f"exp_{uuid.uuid4().hex[:8]}"
    with database.session() as session:
        session.add(
            AbExperiment(
                experiment_id=experiment_id,
                experiment_name="t",
                model_id=SLOT,
                baseline_version=A,
                challenger_version=C,
                traffic_split_percent=challenger_percent,
                traffic_split_method=method,
                hash_salt=uuid.uuid4().hex,
                experiment_status="running",
                start_date=utcnow(),
            )
        )
    return experiment_id


def stop_experiments(database: Database) -> None:
    with database.session() as session:
        session.execute(AbExperiment.__table__.update().values(experiment_status="stopped"))


# --- route order --------------------------------------------------------------------------------


def test_route_order_pinned_then_experiment_then_canary_then_production(
    database: Database, router: DbModelRouter, registry: DeploymentService
) -> None:
    assert (resolve(router).version, resolve(router).route) == (A, "production")

    registry.set_canary(SLOT, B, 99, ACTOR)
    # 99 %: the probability that 20 callers all miss the canary is 1e-40.
    assert {resolve(router, f"user{i}").route for i in range(20)} >= {"canary"}
    assert {resolve(router, f"user{i}").version for i in range(20)} >= {B}

    experiment_id = start_experiment(database)
    router.invalidate()
    served = resolve(router)
    assert (served.version, served.route, served.experiment_id, served.arm) == (
        C,
        "experiment",
        experiment_id,
        "challenger",
    )

    pinned = resolve(router, pinned=B)
    assert (pinned.version, pinned.route, pinned.arm) == (B, "pinned", None)

    stop_experiments(database)
    router.invalidate()
    assert {resolve(router, f"user{i}").version for i in range(20)} >= {B}
    registry.clear_canary(SLOT, ACTOR)
    assert {resolve(router, f"user{i}").version for i in range(20)} == {A}


def test_a_route_to_a_version_this_process_cannot_run_falls_through(
    database: Database, router: DbModelRouter, registry: DeploymentService
) -> None:
    registry.set_canary(SLOT, B, 99, ACTOR)
    start_experiment(database)
    router.invalidate()
    # Neither the experiment's challenger (c) nor the canary (b) runs here: production answers.
    served = resolve(router, installed=frozenset({A}))
    assert (served.version, served.route, served.arm) == (A, "production", None)
    # Production itself not runnable: the caller's default.
    served = resolve(router, installed=frozenset({"other@2"}))
    assert (served.version, served.route) == (DEFAULT, "production")
    with pytest.raises(errors.UnknownModelError):
        resolve(router, pinned="zzz@9")


def test_a_slot_unknown_to_the_registry_serves_the_default(router: DbModelRouter) -> None:
    served = router.resolve("no_such_slot", RoutingKey("r"), installed={"x@1"}, default="x@1")
    assert (served.version, served.route) == ("x@1", "production")


def test_canary_share_is_its_percentage_and_each_caller_keeps_one_version(
    router: DbModelRouter, registry: DeploymentService
) -> None:
    registry.set_canary(SLOT, B, 30, ACTOR)
    callers = 4000
    on_canary = sum(resolve(router, f"caller-{i}").version == B for i in range(callers))
    # Binomial(4000, 0.3): sd = 29; 5 sd either side (a failure here is a broken hash, not luck).
    assert abs(on_canary - 0.3 * callers) < 5 * (callers * 0.3 * 0.7) ** 0.5
    for i in range(20):
        versions = {resolve(router, f"caller-{i}").version for _ in range(25)}
        assert len(versions) == 1
    # Without a caller, the request id is hashed: requests spread over both versions.
    anonymous = {
        router.resolve(SLOT, RoutingKey(uuid.uuid4().hex), installed=ALL, default=DEFAULT).version
        for _ in range(200)
    }
    assert anonymous == {A, B}


# --- snapshot refresh ---------------------------------------------------------------------------


def test_another_process_change_is_followed_after_refresh_seconds(
    database: Database, router: DbModelRouter, clock: Clock
) -> None:
    assert resolve(router).version == A
    # Another process (CLI, another worker): its service does not know this router.
    DeploymentService(database).deploy(SLOT, B, ACTOR)
    clock.now += 1.0
    assert resolve(router).version == A  # the snapshot is 1 s old: still served from memory
    clock.now += 1.5
    assert resolve(router).version == B


def test_a_change_through_this_process_routes_at_once(
    router: DbModelRouter, registry: DeploymentService
) -> None:
    assert resolve(router).version == A
    registry.deploy(SLOT, B, ACTOR)
    assert resolve(router).version == B


def test_the_last_snapshot_serves_while_the_database_is_down(
    router: DbModelRouter, registry: DeploymentService, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.deploy(SLOT, B, ACTOR)
    assert resolve(router).version == B

    def down(_database: Database) -> dict[str, SlotState]:
        raise errors.DatabaseUnavailableError()

    monkeypatch.setattr(routing, "load_states", down)
    clock.now += 10
    assert resolve(router).version == B


def test_active_versions_names_every_version_that_may_serve(
    database: Database, router: DbModelRouter, registry: DeploymentService
) -> None:
    assert router.active_versions(SLOT) == (A,)
    registry.set_canary(SLOT, B, 10, ACTOR)
    assert router.active_versions(SLOT) == (A, B)
    start_experiment(database)
    router.invalidate()
    assert router.active_versions(SLOT) == (A, B, C)


# --- records ------------------------------------------------------------------------------------


def test_record_writes_the_inference_and_the_experiment_assignment(
    database: Database, router: DbModelRouter
) -> None:
    experiment_id = start_experiment(database, method="user")
    router.invalidate()
    tenant = uuid.uuid4()
    for _ in range(3):  # one subject, three requests: three inferences, one assignment
        key = RoutingKey(uuid.uuid4().hex, tenant_id=tenant, user_key="key:1")
        served = router.resolve(SLOT, key, installed=ALL, default=DEFAULT)
        router.record(
            InferenceRecord(
                served,
                "face_detection",
                tenant,
                12,
                {"faces_detected": 1},
                (0.9,),
                {"quality": 0.7, "width": 640},
            )
        )
    with database.session(readonly=True) as session:
        rows = session.scalars(select(ModelInferenceResult)).all()
        assignments = session.scalars(select(AbAssignment)).all()
    assert len(rows) == 3
    assert {(r.model_id, r.model_version, r.route, r.arm, r.experiment_id) for r in rows} == {
        (SLOT, C, "experiment", "challenger", experiment_id)
    }
    assert rows[0].confidence_scores == [0.9] and rows[0].input_metadata == {"quality": 0.7, "width": 640.0}
    assert rows[0].result_quality_score == pytest.approx(0.7) and rows[0].tenant_id == tenant
    assert [(a.subject_key, a.assigned_group, a.assigned_version) for a in assignments] == [
        ("user:key:1", "challenger", C)
    ]


def test_record_keeps_a_row_with_numpy_and_non_finite_values(
    router: DbModelRouter, database: Database
) -> None:
    import numpy as np

    served = resolve(router)
    result = {"score": np.float32(0.25), "boxes": [np.int64(3), float("nan")]}
    router.record(
        InferenceRecord(
            served, "face_detection", None, 4, result, (0.5, float("nan")), {"quality": float("inf")}
        )
    )
    with database.session(readonly=True) as session:
        row = session.scalar(select(ModelInferenceResult))
    assert row is not None
    assert row.inference_results == {"score": 0.25, "boxes": [3.0, None]}
    assert row.confidence_scores == [0.5] and row.input_metadata is None and row.result_quality_score is None


def test_record_never_raises(router: DbModelRouter, database: Database) -> None:
    served = Serving("no_such_slot", "x@1")  # the foreign key to registered_models refuses it
    router.record(InferenceRecord(served, "face_detection", None, 1, {}))
    with database.session(readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(ModelInferenceResult)) == 0


# --- deployment rules ---------------------------------------------------------------------------


def production_of(database: Database) -> list[str]:
    with database.session(readonly=True) as session:
        return list(
            session.scalars(
                select(ModelVersion.version_number).where(
                    ModelVersion.model_id == SLOT, ModelVersion.deployment_status == "production"
                )
            )
        )


@pytest.mark.parametrize(
    ("version", "stage", "code"),
    [
        (A, "staging", "ILLEGAL_STAGE_TRANSITION"),  # production leaves only by another's deploy
        (A, "archived", "ILLEGAL_STAGE_TRANSITION"),
        (B, "staging", "ILLEGAL_STAGE_TRANSITION"),  # already there
        ("gone@1", "production", "MODEL_VERSION_NOT_INSTALLED"),
        ("nope@1", "staging", "MODEL_VERSION_NOT_FOUND"),
        (B, "live", "VALIDATION_ERROR"),
    ],
)
def test_refused_stage_changes(registry: DeploymentService, version: str, stage: str, code: str) -> None:
    with pytest.raises(errors.FaceSocialError) as caught:
        registry.set_stage(SLOT, version, stage, ACTOR)
    assert caught.value.code == code


def test_canary_promote_rollback_keep_one_production_and_a_history(
    database: Database, registry: DeploymentService
) -> None:
    with pytest.raises(errors.NoCanaryError):
        registry.promote(SLOT, ACTOR)
    with pytest.raises(errors.IllegalStageTransitionError):
        registry.set_canary(SLOT, A, 10, ACTOR)  # production cannot be its own canary
    with pytest.raises(errors.ValidationFailedError):
        registry.set_canary(SLOT, B, 100, ACTOR)
    registry.set_canary(SLOT, B, 10, ACTOR)
    registry.set_canary(SLOT, C, 20, ACTOR)  # replaces b's canary; c goes development -> staging
    model = registry.get_model(SLOT)
    assert model["canary"] == {"version": C, "percent": 20.0}

    promoted = registry.promote(SLOT, ACTOR)
    assert (promoted["action"], promoted["version"], promoted["rollback_version"]) == ("promote", C, A)
    assert production_of(database) == [C] and registry.get_model(SLOT)["canary"] is None

    with pytest.raises(errors.ValidationFailedError):
        registry.rollback(SLOT, A, "  ", ACTOR)
    registry.set_canary(SLOT, B, 50, ACTOR)
    back = registry.rollback(SLOT, A, "precision regressed on the door camera", ACTOR)
    assert back["rollback_reason"] == "precision regressed on the door camera"
    assert back["config"]["ended_canaries"] == [B] and back["config"]["previous_version"] == C
    assert production_of(database) == [A]
    versions = {v["version"]: v for v in registry.versions(SLOT)}
    assert versions[C]["stage"] == "staging" and versions[B]["canary_percent"] is None

    history = registry.history(SLOT)
    assert [d["action"] for d in history["deployments"]][:5] == [
        "rollback",
        "canary",
        "promote",
        "canary",
        "canary",
    ]
    with database.session(readonly=True) as session:
        assert (
            session.scalar(
                select(func.count())
                .select_from(DeploymentPipeline)
                .where(DeploymentPipeline.model_id == SLOT)
            )
            == history["total"]
        )


def test_unknown_slot(registry: DeploymentService) -> None:
    with pytest.raises(errors.ModelNotFoundError):
        registry.deploy("no_such_slot", A, ACTOR)
    with pytest.raises(errors.ModelNotFoundError):
        registry.versions("no_such_slot")


# --- sync ---------------------------------------------------------------------------------------


def test_sync_creates_every_slot_and_never_overwrites_a_decision(
    database: Database, registry: DeploymentService, tmp_path: Path
) -> None:
    with database.session(readonly=True) as session:
        assert set(session.scalars(select(RegisteredModel.model_id))) == set(SLOTS)
        hog = session.scalar(
            select(ModelVersion).where(
                ModelVersion.model_id == SLOT, ModelVersion.version_number.like("dlib_hog@%")
            )
        )
    assert hog is not None and hog.is_installed
    # The packaged liveness model is always there: its slot got it as production at the first sync.
    assert registry.get_model("liveness")["production"].startswith("liveness_passive@")

    registry.deploy(SLOT, B, ACTOR)
    registry.set_stage(SLOT, hog.version_number, "archived", ACTOR)
    report = sync_slots(database, tmp_path / "no-models", {SLOT: "dlib_hog"})
    assert report.created == () and SLOT not in report.production_set
    assert production_of(database) == [B]
    stages = {v["version"]: v["stage"] for v in registry.versions(SLOT)}
    assert stages[hog.version_number] == "archived"


def test_every_batch_item_of_an_experiment_arm_records_the_assignment(
    database: Database, router: DbModelRouter
) -> None:
    """ServingScope.item() gives each item a fresh inference id: the assignment travels with the
    decision, so each item's record writes it (once: insert-if-absent) and none is left pending."""
    from facesocial.services.serving_context import ServingScope

    start_experiment(database, method="user")
    router.invalidate()
    scope = ServingScope(router, RoutingKey(uuid.uuid4().hex, tenant_id=uuid.uuid4(), user_key="key:9"))
    served = scope.resolve(SLOT, installed=ALL, default=DEFAULT)
    assert served.route == "experiment"
    items = [scope.item() for _ in range(3)]
    ids = {item.decisions[SLOT].inference_id for item in items} | {served.inference_id}
    assert len(ids) == 4
    for item in items[1:]:  # not in order, and never the batch's own id
        item.record(item.decisions[SLOT], "face_detection", started=0.0, result={})
    with database.session(readonly=True) as session:
        assignments = session.scalars(select(AbAssignment)).all()
    assert [(a.subject_key, a.assigned_group) for a in assignments] == [("user:key:9", "challenger")]
    assert not router._pending  # the batch's own entry went with the first item's record
    items[0].record(items[0].decisions[SLOT], "face_detection", started=0.0, result={})
    with database.session(readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(AbAssignment)) == 1
        assert session.scalar(select(func.count()).select_from(ModelInferenceResult)) == 3
