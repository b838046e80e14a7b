"""A/B experiments over HTTP (``/api/v1/experiments``): real face-detection requests split between
two installed detectors by the callers' API keys, feedback on their outcomes, the results'
tests and conclusion, and the stop that returns the slot to production.

Also: synthetic outcomes with a known difference (0.70 vs 0.80 accuracy, 1500 inferences per arm,
rows written as the router writes them) must come out significant and recommend the challenger;
equal rates must not. The scaled profile (PostgreSQL) runs the same flow.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from facesocial.api.app import create_app
from facesocial.container import Container
from facesocial.domains.registry.routing import inference_row
from facesocial.domains.registry.serving import Arm, InferenceRecord, Serving
from facesocial.jobs.periodic import model_monitoring
from facesocial.store.tables_registry import (
    AbAssignment,
    AbConclusion,
    AbResult,
    ModelComparisonMetric,
    ModelInferenceResult,
)
from facesocial.store.types import utcnow
from tests.integration.conftest import profile

pytestmark = pytest.mark.integration
EXPERIMENTS = "/api/v1/experiments"
DETECT = "/api/v1/face-detection/detect"
SLOT = "face_detection"


class App:
    def __init__(self, client: TestClient, container: Container) -> None:
        self.client, self.container = client, container
        self.operator = {"X-API-Key": container.keys.create("operator", role="operator").secret}
        self.admin = {"X-API-Key": container.keys.create("tenant admin").secret}

    def key(self) -> dict[str, str]:
        return {"X-API-Key": self.container.keys.create(f"caller {uuid.uuid4()}").secret}

    def get(self, path: str, headers: dict[str, str] | None = None) -> Any:
        return self.client.get(path, headers=headers or self.operator)

    def post(self, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        return self.client.post(path, json=body, headers=headers or self.operator)

    def slot(self, slot: str = SLOT) -> dict[str, Any]:
        response = self.get(f"/api/v1/models/{slot}")
        assert response.status_code == 200, response.text
        model: dict[str, Any] = response.json()["model"]
        return model

    def arms(self, slot: str = SLOT) -> tuple[str, str]:
        """(production, another installed version): the baseline and the challenger."""
        model = self.slot(slot)
        production = model["production"]
        others = [v["version"] for v in model["versions"] if v["is_installed"] and v["version"] != production]
        if not others:
            pytest.skip(f"{slot} has one installed version: pull the model pack for a second one")
        # A fast challenger keeps the test short: prefer a pack model over dlib's HOG.
        others.sort(key=lambda tag: tag.startswith("dlib_hog"))
        return production, others[0]

    def create(self, **fields: Any) -> dict[str, Any]:
        response = self.post(EXPERIMENTS, fields)
        assert response.status_code == 201, response.text
        experiment: dict[str, Any] = response.json()["experiment"]
        assert experiment["status"] == "draft"
        return experiment

    def detect(self, headers: dict[str, str], jpeg: bytes) -> dict[str, Any]:
        response = self.client.post(DETECT, files={"image": ("a.jpg", jpeg, "image/jpeg")}, headers=headers)
        assert response.status_code == 200, response.text
        serving: dict[str, Any] = response.json()["serving"]
        return serving


@pytest.fixture(params=["embedded", "scaled"])
def app(request: pytest.FixtureRequest, tmp_path: Path, model_dir: Path) -> Iterator[App]:
    with profile(request.param, tmp_path, model_dir) as settings:
        settings.reconcile.interval_seconds = 0
        container = Container(settings)
        container.prepare()
        with TestClient(create_app(container), raise_server_exceptions=False) as client:
            yield App(client, container)
        container.close()


def error_of(response: Any) -> tuple[int, str]:
    body = response.json()
    assert body["success"] is False, response.text
    return response.status_code, body["error"]["code"]


def test_an_experiment_splits_real_detections_by_caller(app: App, astronaut_jpeg: bytes) -> None:
    baseline, challenger = app.arms()
    experiment = app.create(
        name="faster detector",
        model_id=SLOT,
        baseline_version=baseline,
        challenger_version=challenger,
        traffic_split_percent=50,
        traffic_split_method="user",
        minimum_sample_size=6,
        confidence_level=0.95,
        success_metrics=["accuracy"],
    )
    exp_id = experiment["experiment_id"]
    started = app.post(f"{EXPERIMENTS}/{exp_id}/start")
    assert started.status_code == 200, started.text
    assert started.json()["experiment"]["status"] == "running"
    assert app.slot()["experiment"]["experiment_id"] == exp_id

    # New callers until each arm has three: the stable hash of a caller's key decides its arm
    # (at 50 %, 40 callers all on one arm would be a 1-in-10^11 event).
    callers: dict[str, list[dict[str, str]]] = {"baseline": [], "challenger": []}
    made: list[tuple[str, dict[str, str], str]] = []  # (arm, caller, inference_id) of every request
    for _ in range(40):
        if min(len(c) for c in callers.values()) >= 3:
            break
        headers = app.key()
        serving = app.detect(headers, astronaut_jpeg)
        assert serving["route"] == "experiment" and serving["experiment_id"] == exp_id
        arm = serving["arm"]
        assert serving["version"] == (challenger if arm == "challenger" else baseline)
        callers[arm].append(headers)
        made.append((arm, headers, serving["inference_id"]))
    assert min(len(c) for c in callers.values()) >= 3, callers
    # Each caller keeps its arm over its next requests.
    for arm, headers_list in callers.items():
        for headers in headers_list:
            for _ in range(2):
                serving = app.detect(headers, astronaut_jpeg)
                assert (serving["arm"], serving["route"]) == (arm, "experiment")
                made.append((arm, headers, serving["inference_id"]))
    per_arm = {arm: sum(1 for a, _h, _i in made if a == arm) for arm in callers}

    with app.container.database.session() as session:
        subjects = dict(
            session.execute(
                select(AbAssignment.assigned_group, func.count())
                .where(AbAssignment.experiment_id == exp_id)
                .group_by(AbAssignment.assigned_group)
            ).all()
        )
        rows_per_arm = dict(
            session.execute(
                select(ModelInferenceResult.arm, func.count())
                .where(ModelInferenceResult.experiment_id == exp_id)
                .group_by(ModelInferenceResult.arm)
            ).all()
        )
    assert rows_per_arm == per_arm
    # One assignment per caller (subject), whatever its number of requests.
    assert subjects == {arm: len(c) for arm, c in callers.items()}

    # Outcomes, by each caller on its own inferences: the challenger is always right.
    stranger = app.key()
    for arm, headers, inference_id in made:
        item = {"inference_id": inference_id, "correct": arm == "challenger"}
        refused = app.post(f"{EXPERIMENTS}/{exp_id}/feedback", item, headers=stranger)
        assert error_of(refused) == (404, "INFERENCE_NOT_FOUND")  # another tenant's inference
        response = app.post(f"{EXPERIMENTS}/{exp_id}/feedback", item, headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["recorded"] == 1 and response.json()["items"][0]["arm"] == arm
    _arm, headers, inference_id = made[0]
    again = app.post(
        f"{EXPERIMENTS}/{exp_id}/feedback",
        [{"inference_id": inference_id, "correct": _arm == "challenger"}],
        headers=headers,
    )
    assert again.status_code == 200 and again.json()["duplicates"] == 1 and again.json()["recorded"] == 0
    contradiction = {"inference_id": inference_id, "correct": _arm != "challenger"}
    assert error_of(app.post(f"{EXPERIMENTS}/{exp_id}/feedback", contradiction, headers=headers)) == (
        409,
        "FEEDBACK_CONFLICT",
    )

    results = app.get(f"{EXPERIMENTS}/{exp_id}/results")
    assert results.status_code == 200, results.text
    body = results.json()
    for arm, n in per_arm.items():
        assert body["arms"][arm]["sample_size"] == n
        assert body["arms"][arm]["subjects"] == len(callers[arm])
        assert body["arms"][arm]["feedback"] == n
        assert body["arms"][arm]["metrics"]["latency_ms"]["n"] == n
    assert body["arms"]["challenger"]["metrics"]["accuracy"]["rate"] == 1.0
    assert body["arms"]["baseline"]["metrics"]["accuracy"]["rate"] == 0.0
    accuracy = body["tests"]["accuracy"]
    assert accuracy["test"] == "two_proportion_z" and accuracy["p_value"] < 0.01 and accuracy["significant"]
    assert body["tests"]["latency_ms"]["test"] == "welch_t"
    assert body["conclusion"]["recommendation"] == "deploy_challenger"
    assert body["conclusion"]["winner_version"] == challenger

    stopped = app.post(f"{EXPERIMENTS}/{exp_id}/stop")
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["experiment"]["status"] == "completed"
    assert stopped.json()["conclusion"]["recommendation"] == "deploy_challenger"
    # The slot is back on production at once for every caller.
    for headers in callers["challenger"]:
        serving = app.detect(headers, astronaut_jpeg)
        assert (serving["route"], serving["version"], serving["arm"]) == ("production", baseline, None)
    with app.container.database.session() as session:
        comparison = session.scalar(
            select(ModelComparisonMetric).where(ModelComparisonMetric.experiment_id == exp_id)
        )
        assert comparison is not None and comparison.comparison_status == "completed"
        assert comparison.winner_version == challenger and comparison.is_statistically_significant
        assert comparison.accuracy_improvement == pytest.approx(1.0)
        assert (
            session.scalar(select(func.count()).select_from(AbResult).where(AbResult.experiment_id == exp_id))
            == 4
        )  # two arms × (results call, stop)
        assert (
            session.scalar(
                select(func.count()).select_from(AbConclusion).where(AbConclusion.experiment_id == exp_id)
            )
            == 2
        )
    described = app.get(f"{EXPERIMENTS}/{exp_id}").json()["experiment"]
    assert described["latest_conclusion"]["recommendation"] == "deploy_challenger"


def add_arm_rows(
    app: App,
    experiment: dict[str, Any],
    arm: Arm,
    tenant_id: uuid.UUID,
    n: int,
    rng: np.random.Generator,
) -> list[str]:
    """``n`` inference rows of one arm, written as the router writes a detection it served."""
    version = experiment["challenger_version"] if arm == "challenger" else experiment["baseline_version"]
    rows = []
    for _ in range(n):
        serving = Serving(SLOT, version, "experiment", experiment_id=experiment["experiment_id"], arm=arm)
        rows.append(
            inference_row(
                InferenceRecord(
                    serving=serving,
                    service="face_detection",
                    tenant_id=tenant_id,
                    processing_time_ms=int(rng.normal(40, 5)),
                    result={"faces_detected": 1},
                    confidences=(float(rng.beta(8, 2)),),
                    features={"quality": float(rng.uniform(0.5, 1.0))},
                )
            )
        )
    with app.container.database.session() as session:
        session.add_all(rows)
    return [row.inference_id for row in rows]


def run_synthetic(app: App, rates: tuple[float, float], seed: int) -> dict[str, Any]:
    """An experiment with 1500 inferences per arm whose outcomes are right at ``rates``
    (baseline, challenger) exactly; feedback through the API in batches; its results."""
    baseline, challenger = app.arms()
    experiment = app.create(
        name=f"synthetic {rates}",
        model_id=SLOT,
        baseline_version=baseline,
        challenger_version=challenger,
        minimum_sample_size=1000,
        success_metrics=["accuracy", "latency_ms"],
    )
    exp_id = experiment["experiment_id"]
    assert app.post(f"{EXPERIMENTS}/{exp_id}/start").status_code == 200
    caller = app.key()
    tenant = app.container.keys.authenticate(caller["X-API-Key"]).tenant_id
    rng = np.random.default_rng(seed)
    n = 1500
    arms: tuple[Arm, Arm] = ("baseline", "challenger")
    for arm, rate in zip(arms, rates, strict=True):
        ids = add_arm_rows(app, experiment, arm, tenant, n, rng)
        right = set(rng.choice(n, size=round(rate * n), replace=False).tolist())
        items = [{"inference_id": i, "correct": k in right} for k, i in enumerate(ids)]
        for start in range(0, n, 1000):
            response = app.post(
                f"{EXPERIMENTS}/{exp_id}/feedback", items[start : start + 1000], headers=caller
            )
            assert response.status_code == 200, response.text
    results = app.get(f"{EXPERIMENTS}/{exp_id}/results")
    assert results.status_code == 200, results.text
    stopped = app.post(f"{EXPERIMENTS}/{exp_id}/stop")
    assert stopped.status_code == 200, stopped.text
    body: dict[str, Any] = results.json()
    body["final_status"] = stopped.json()["experiment"]["status"]
    return body


def test_a_known_difference_in_accuracy_is_significant(app: App) -> None:
    body = run_synthetic(app, (0.70, 0.80), seed=31)
    assert body["arms"]["baseline"]["metrics"]["accuracy"]["rate"] == pytest.approx(0.70)
    assert body["arms"]["challenger"]["metrics"]["accuracy"]["rate"] == pytest.approx(0.80)
    accuracy = body["tests"]["accuracy"]
    assert accuracy["p_value"] < 0.01 and accuracy["significant"]
    low, high = accuracy["confidence_interval"]
    assert low < 0.10 < high and low > 0
    assert body["tests"]["latency_ms"]["significant"] is False  # the same latency distribution
    assert body["conclusion"]["recommendation"] == "deploy_challenger"
    assert body["final_status"] == "completed"


def test_equal_accuracy_is_not_significant(app: App) -> None:
    body = run_synthetic(app, (0.75, 0.75), seed=32)
    accuracy = body["tests"]["accuracy"]
    assert accuracy["p_value"] > 0.5 and not accuracy["significant"]
    assert body["conclusion"]["recommendation"] == "run_longer"
    assert body["final_status"] == "stopped"


def test_experiment_errors(app: App, astronaut_jpeg: bytes) -> None:
    baseline, challenger = app.arms()
    good = {"name": "e", "model_id": SLOT, "baseline_version": baseline, "challenger_version": challenger}
    assert error_of(app.post(EXPERIMENTS, good, headers=app.admin)) == (403, "FORBIDDEN")
    assert error_of(app.get(EXPERIMENTS, headers=app.admin)) == (403, "FORBIDDEN")
    for changes, expected in (
        ({"model_id": "no_such_slot"}, (404, "MODEL_NOT_FOUND")),
        ({"challenger_version": "nothing@0"}, (404, "MODEL_VERSION_NOT_FOUND")),
        ({"challenger_version": baseline}, (422, "INVALID_EXPERIMENT")),
        ({"traffic_split_percent": 100}, (422, "VALIDATION_ERROR")),
        ({"traffic_split_method": "cookie"}, (422, "VALIDATION_ERROR")),
        ({"confidence_level": 0.5}, (422, "VALIDATION_ERROR")),
        ({"success_metrics": ["revenue"]}, (422, "VALIDATION_ERROR")),
        ({"success_metrics": []}, (422, "VALIDATION_ERROR")),
        ({"unknown_field": 1}, (422, "VALIDATION_ERROR")),
    ):
        assert error_of(app.post(EXPERIMENTS, {**good, **changes})) == expected, changes
    assert error_of(app.get(f"{EXPERIMENTS}/exp_nothing")) == (404, "EXPERIMENT_NOT_FOUND")
    assert error_of(app.get(f"{EXPERIMENTS}/exp_nothing/results")) == (404, "EXPERIMENT_NOT_FOUND")

    first, second = app.create(**good), app.create(**good)
    assert error_of(app.post(f"{EXPERIMENTS}/{first['experiment_id']}/stop")) == (
        409,
        "INVALID_EXPERIMENT_TRANSITION",
    )
    assert app.post(f"{EXPERIMENTS}/{first['experiment_id']}/start").status_code == 200
    assert error_of(app.post(f"{EXPERIMENTS}/{first['experiment_id']}/start")) == (
        409,
        "INVALID_EXPERIMENT_TRANSITION",
    )
    conflict = app.post(f"{EXPERIMENTS}/{second['experiment_id']}/start")
    assert error_of(conflict) == (409, "EXPERIMENT_CONFLICT")
    assert conflict.json()["error"]["details"]["experiment_id"] == first["experiment_id"]
    listed = app.get(EXPERIMENTS + "?status=running").json()
    assert [e["experiment_id"] for e in listed["experiments"]] == [first["experiment_id"]] and listed[
        "total"
    ] == 1

    # Feedback: unknown inferences, inferences outside the experiment, malformed bodies.
    caller = app.key()
    feedback = f"{EXPERIMENTS}/{first['experiment_id']}/feedback"
    assert error_of(app.post(feedback, {"inference_id": "nope", "correct": True}, headers=caller)) == (
        404,
        "INFERENCE_NOT_FOUND",
    )
    assert error_of(app.post(feedback, {"inference_id": "x"}, headers=caller)) == (422, "VALIDATION_ERROR")
    assert error_of(app.post(feedback, [], headers=caller)) == (422, "VALIDATION_ERROR")
    too_many = [{"inference_id": f"i{k}", "correct": True} for k in range(1001)]
    assert error_of(app.post(feedback, too_many, headers=caller)) == (422, "VALIDATION_ERROR")
    served = app.detect(caller, astronaut_jpeg)
    assert served["experiment_id"] == first["experiment_id"]
    elsewhere = f"{EXPERIMENTS}/{second['experiment_id']}/feedback"
    assert error_of(
        app.post(elsewhere, {"inference_id": served["inference_id"], "correct": True}, headers=caller)
    ) == (
        404,
        "INFERENCE_NOT_FOUND",
    )
    twice = [
        {"inference_id": served["inference_id"], "correct": True},
        {"inference_id": served["inference_id"], "correct": False},
    ]
    assert error_of(app.post(feedback, twice, headers=caller)) == (409, "FEEDBACK_CONFLICT")
    # Nothing of a refused batch was stored: the first outcome can still be given.
    ok = app.post(feedback, {"inference_id": served["inference_id"], "correct": False}, headers=caller)
    assert ok.status_code == 200 and ok.json()["recorded"] == 1


def test_concurrent_starts_and_feedback(app: App, astronaut_jpeg: bytes) -> None:
    """Six drafts on one slot started at once: exactly one runs, the others get 409
    EXPERIMENT_CONFLICT. The same outcome posted by eight threads at once: stored once, every
    request answered 200 (recorded once, duplicate otherwise)."""
    baseline, challenger = app.arms()
    drafts = [
        app.create(name=f"race {i}", model_id=SLOT, baseline_version=baseline, challenger_version=challenger)
        for i in range(6)
    ]
    barrier = threading.Barrier(len(drafts))
    answers: list[tuple[int, str | None]] = []

    def start(experiment_id: str) -> None:
        barrier.wait()
        response = app.post(f"{EXPERIMENTS}/{experiment_id}/start")
        code = None if response.status_code == 200 else response.json()["error"]["code"]
        answers.append((response.status_code, code))

    threads = [threading.Thread(target=start, args=(d["experiment_id"],)) for d in drafts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers, key=str) == sorted([(200, None)] + [(409, "EXPERIMENT_CONFLICT")] * 5, key=str)
    running = app.get(f"{EXPERIMENTS}?status=running").json()["experiments"]
    assert len(running) == 1
    exp_id = running[0]["experiment_id"]

    caller = app.key()
    served = app.detect(caller, astronaut_jpeg)
    assert served["experiment_id"] == exp_id
    item = {"inference_id": served["inference_id"], "correct": True}
    barrier = threading.Barrier(8)
    bodies: list[dict[str, Any]] = []

    def post() -> None:
        barrier.wait()
        response = app.post(f"{EXPERIMENTS}/{exp_id}/feedback", item, headers=caller)
        assert response.status_code == 200, response.text
        bodies.append(response.json())

    threads = [threading.Thread(target=post) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(bodies) == 8
    assert sum(b["recorded"] for b in bodies) == 1 and sum(b["duplicates"] for b in bodies) == 7
    results = app.get(f"{EXPERIMENTS}/{exp_id}/results").json()
    assert sum(arm["feedback"] for arm in results["arms"].values()) == 1


def test_a_session_split_follows_the_session_header(app: App, astronaut_jpeg: bytes) -> None:
    """One API key, several X-Session-Id values: each session keeps one arm; sessions differ."""
    baseline, challenger = app.arms()
    experiment = app.create(
        name="by session",
        model_id=SLOT,
        baseline_version=baseline,
        challenger_version=challenger,
        traffic_split_method="session",
    )
    assert app.post(f"{EXPERIMENTS}/{experiment['experiment_id']}/start").status_code == 200
    key = app.key()
    arms: dict[str, str] = {}
    for i in range(30):
        session = {**key, "X-Session-Id": f"session-{i}"}
        first, second = app.detect(session, astronaut_jpeg), app.detect(session, astronaut_jpeg)
        assert first["arm"] == second["arm"] and first["route"] == "experiment"
        arms[f"session-{i}"] = first["arm"]
        if len(set(arms.values())) == 2 and i >= 3:
            break
    assert set(arms.values()) == {"baseline", "challenger"}, arms
    with app.container.database.session() as session_:
        reasons = set(
            session_.scalars(
                select(AbAssignment.assignment_reason).where(
                    AbAssignment.experiment_id == experiment["experiment_id"]
                )
            ).all()
        )
        subjects = session_.scalar(
            select(func.count())
            .select_from(AbAssignment)
            .where(AbAssignment.experiment_id == experiment["experiment_id"])
        )
    assert reasons == {"session_hash"} and subjects == len(arms)


def test_an_experiment_past_its_duration_is_stopped_by_the_upkeep(app: App) -> None:
    baseline, challenger = app.arms()
    short = app.create(
        name="short", model_id=SLOT, baseline_version=baseline, challenger_version=challenger,
        traffic_split_percent=50, duration_days=1,
    )  # fmt: skip
    assert app.post(f"{EXPERIMENTS}/{short['experiment_id']}/start").status_code == 200
    # Not yet due: still running, still routing.
    assert model_monitoring(app.container)["experiments_stopped"] == []
    assert app.get(f"{EXPERIMENTS}/{short['experiment_id']}").json()["experiment"]["status"] == "running"
    later = utcnow() + timedelta(days=1, minutes=1)
    assert app.container.experiments.expire(later) == [short["experiment_id"]]
    stopped = app.get(f"{EXPERIMENTS}/{short['experiment_id']}").json()["experiment"]
    assert stopped["status"] in ("stopped", "completed") and stopped["end_date"]
    assert app.container.experiments.expire(later) == []


# --- regressions of attacker B's findings (issue 13) ----------------------------------------------


def started_experiment(app: App, **fields: Any) -> dict[str, Any]:
    baseline, challenger = app.arms()
    experiment = app.create(
        name="regression", model_id=SLOT, baseline_version=baseline, challenger_version=challenger, **fields
    )
    started = app.post(f"{EXPERIMENTS}/{experiment['experiment_id']}/start")
    assert started.status_code == 200, started.text
    return experiment


def tenant_of(app: App, headers: dict[str, str]) -> uuid.UUID:
    principal = app.container.keys.authenticate(headers["X-API-Key"])
    assert principal is not None
    return principal.tenant_id


def run_together(n: int, work: Any) -> None:
    """``work(i)`` for i in 0..n-1, each on its own thread, released at once."""
    barrier = threading.Barrier(n)

    def run(i: int) -> None:
        barrier.wait()
        work(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def results_together(app: App, experiment_id: str, n: int) -> list[Any]:
    answers: list[Any] = []
    run_together(n, lambda _i: answers.append(app.get(f"{EXPERIMENTS}/{experiment_id}/results")))
    return answers


def test_concurrent_first_results_calls_share_one_comparison_row(app: App) -> None:
    """Six dashboards read /results of new experiments at once: every call 200 (the comparison row
    is created with ON CONFLICT DO NOTHING, not read-then-insert), one comparison row each."""
    baseline, challenger = app.arms()
    for round_ in range(3):
        fresh = app.create(
            name=f"fresh {round_}", model_id=SLOT, baseline_version=baseline, challenger_version=challenger
        )
        answers = results_together(app, fresh["experiment_id"], 6)
        assert [r.status_code for r in answers] == [200] * 6, [
            r.text for r in answers if r.status_code >= 300
        ]
        with app.container.database.session(readonly=True) as session:
            rows = session.scalar(
                select(func.count())
                .select_from(ModelComparisonMetric)
                .where(ModelComparisonMetric.experiment_id == fresh["experiment_id"])
            )
        assert rows == 1


def test_overlapping_feedback_batches_from_many_threads(app: App) -> None:
    """Twelve clients post overlapping batches (thread i: inferences [5i, 5i + 20), every other
    one in reverse order) at once: every request 200, each inference recorded exactly once across
    the requests, the rest duplicates. A later batch mixing a new outcome with a contradicting one
    is 409 and stores nothing."""
    experiment = started_experiment(app)
    caller = app.key()
    url = f"{EXPERIMENTS}/{experiment['experiment_id']}/feedback"
    rng = np.random.default_rng(5)
    for _round in range(2):
        ids = add_arm_rows(app, experiment, "baseline", tenant_of(app, caller), 80, rng)
        bodies: list[Any] = []

        def post(i: int, ids: list[str] = ids, bodies: list[Any] = bodies) -> None:
            part = ids[5 * i : 5 * i + 20]
            if i % 2:  # opposite orders must not deadlock on PostgreSQL
                part = part[::-1]
            bodies.append(app.post(url, [{"inference_id": x, "correct": True} for x in part], headers=caller))

        run_together(12, post)
        assert [b.status_code for b in bodies] == [200] * 12, [b.text for b in bodies if b.status_code != 200]
        assert sum(b.json()["recorded"] for b in bodies) == 75  # ids[0:75]
        assert sum(b.json()["duplicates"] for b in bodies) == 12 * 20 - 75
    # All or none: ids[79] is new, ids[0] contradicts its stored outcome.
    mixed = [{"inference_id": ids[79], "correct": True}, {"inference_id": ids[0], "correct": False}]
    assert error_of(app.post(url, mixed, headers=caller)) == (409, "FEEDBACK_CONFLICT")
    again = app.post(url, {"inference_id": ids[79], "correct": False}, headers=caller)
    assert again.status_code == 200 and again.json()["recorded"] == 1, again.text


def test_concurrent_starts_of_one_draft_answer_invalid_transition(app: App) -> None:
    """One draft started by six threads: one 200; the others 409 INVALID_EXPERIMENT_TRANSITION
    (not EXPERIMENT_CONFLICT naming the experiment itself)."""
    baseline, challenger = app.arms()
    draft = app.create(name="once", model_id=SLOT, baseline_version=baseline, challenger_version=challenger)
    answers: list[tuple[int, str | None]] = []

    def start(_i: int) -> None:
        response = app.post(f"{EXPERIMENTS}/{draft['experiment_id']}/start")
        answers.append((response.status_code, None if response.status_code == 200 else error_of(response)[1]))

    run_together(6, start)
    assert sorted(answers, key=str) == sorted(
        [(200, None)] + [(409, "INVALID_EXPERIMENT_TRANSITION")] * 5, key=str
    )


def test_a_finished_experiment_keeps_its_verdict(app: App) -> None:
    """After the stop, feedback is 409 INVALID_EXPERIMENT_TRANSITION and /results answers the
    final results (``final: true``, the stop's conclusion and figures) without storing again."""
    experiment = started_experiment(app, minimum_sample_size=5, success_metrics=["accuracy"])
    exp_id = experiment["experiment_id"]
    caller = app.key()
    rng = np.random.default_rng(6)
    base = add_arm_rows(app, experiment, "baseline", tenant_of(app, caller), 40, rng)
    chal = add_arm_rows(app, experiment, "challenger", tenant_of(app, caller), 40, rng)
    url = f"{EXPERIMENTS}/{exp_id}/feedback"
    items = [{"inference_id": i, "correct": True} for i in chal[:20]]
    items += [{"inference_id": i, "correct": False} for i in base[:20]]
    assert app.post(url, items, headers=caller).status_code == 200
    running = app.get(f"{EXPERIMENTS}/{exp_id}/results").json()
    assert running["final"] is False
    stopped = app.post(f"{EXPERIMENTS}/{exp_id}/stop")
    assert stopped.status_code == 200, stopped.text
    final = stopped.json()
    assert final["conclusion"]["recommendation"] == "deploy_challenger"
    assert final["experiment"]["status"] == "completed"

    late = [{"inference_id": i, "correct": False} for i in chal[20:]]
    late += [{"inference_id": i, "correct": True} for i in base[20:]]
    refused = app.post(url, late, headers=caller)
    assert error_of(refused) == (409, "INVALID_EXPERIMENT_TRANSITION")
    assert refused.json()["error"]["details"]["status"] == "completed"
    # Rows an in-flight request writes after the stop do not count either.
    add_arm_rows(app, experiment, "baseline", tenant_of(app, caller), 5, rng)

    with app.container.database.session(readonly=True) as session:
        stored_before = session.scalar(
            select(func.count()).select_from(AbConclusion).where(AbConclusion.experiment_id == exp_id)
        )
    after = app.get(f"{EXPERIMENTS}/{exp_id}/results").json()
    assert after["final"] is True
    assert after["conclusion"]["recommendation"] == "deploy_challenger"
    assert after["conclusion"]["winner_version"] == experiment["challenger_version"]
    assert after["arms"] == final["arms"]
    assert after["tests"] == final["tests"]
    with app.container.database.session(readonly=True) as session:
        stored_after = session.scalar(
            select(func.count()).select_from(AbConclusion).where(AbConclusion.experiment_id == exp_id)
        )
        comparison = session.scalar(
            select(ModelComparisonMetric).where(ModelComparisonMetric.experiment_id == exp_id)
        )
        assert comparison is not None
        assert comparison.comparison_status == "completed"
        assert comparison.winner_version == experiment["challenger_version"]
    assert stored_after == stored_before


def test_archived_versions_cannot_be_arms(app: App) -> None:
    """An archived version is refused as an arm at create and at start (archived after the draft
    was made): 409 ILLEGAL_STAGE_TRANSITION, naming the field; nothing starts routing to it."""
    baseline, challenger = app.arms()
    draft = app.create(name="retire", model_id=SLOT, baseline_version=baseline, challenger_version=challenger)
    archived = app.post(f"/api/v1/models/{SLOT}/versions/{challenger}/stage", {"stage": "archived"})
    assert archived.status_code == 200, archived.text
    refused = app.post(f"{EXPERIMENTS}/{draft['experiment_id']}/start")
    assert error_of(refused) == (409, "ILLEGAL_STAGE_TRANSITION")
    assert refused.json()["error"]["details"]["field"] == "challenger_version"
    assert app.get(f"{EXPERIMENTS}/{draft['experiment_id']}").json()["experiment"]["status"] == "draft"
    assert app.slot()["experiment"] is None
    created = app.post(
        EXPERIMENTS,
        {"name": "revive", "model_id": SLOT, "baseline_version": baseline, "challenger_version": challenger},
    )
    assert error_of(created) == (409, "ILLEGAL_STAGE_TRANSITION")
    assert created.json()["error"]["details"] == {
        "field": "challenger_version",
        "version": challenger,
        "stage": "archived",
    }


def test_feedback_values_at_the_documented_bounds_are_stored(app: App) -> None:
    """value in [-1e8, 1e8] (FeedbackBody) fits ab_testing_feedback.value (NUMERIC(16, 6)) on
    both databases; a repeat is a duplicate, a value beyond the bound is 422."""
    experiment = started_experiment(app)
    caller = app.key()
    ids = add_arm_rows(app, experiment, "baseline", tenant_of(app, caller), 2, np.random.default_rng(7))
    url = f"{EXPERIMENTS}/{experiment['experiment_id']}/feedback"
    for inference_id, value in zip(ids, (1e8, -99_999_999.999999), strict=True):
        item = {"inference_id": inference_id, "correct": True, "value": value}
        first = app.post(url, item, headers=caller)
        assert first.status_code == 200 and first.json()["recorded"] == 1, first.text
        again = app.post(url, item, headers=caller)
        assert again.status_code == 200 and again.json()["duplicates"] == 1, again.text
    beyond = {"inference_id": ids[0], "correct": True, "value": 1.5e8}
    assert error_of(app.post(url, beyond, headers=caller)) == (422, "VALIDATION_ERROR")


def test_an_embedding_experiment_waits_for_the_gallery(app: App, astronaut_jpeg: bytes) -> None:
    """An embedding experiment whose challenger's collection lacks an enrolled user does not start
    (409 GALLERY_NOT_MIGRATED, galleries.require_gallery_coverage) unless ``force``, and the
    forced start names the missing users per arm."""
    slot = "face_embedding"
    model = app.slot(slot)
    production = model["production"]
    name = production.split("@", 1)[0]
    others = [
        v["version"] for v in model["versions"] if v["is_installed"] and v["version"].split("@", 1)[0] != name
    ]
    if not others:
        pytest.skip("one embedding model installed: pull faceres or mobileface for a second")
    owner = app.key()
    registered = app.client.post(
        "/api/v1/face-recognition/register",
        files={"image": ("a.jpg", astronaut_jpeg, "image/jpeg")},
        data={"user_id": str(uuid.uuid4()), "consent": "true"},
        headers=owner,
    )
    assert registered.status_code == 200, registered.text
    draft = app.create(
        name="gallery", model_id=slot, baseline_version=production, challenger_version=others[0]
    )
    start = f"{EXPERIMENTS}/{draft['experiment_id']}/start"
    refused = app.post(start)
    assert error_of(refused) == (409, "GALLERY_NOT_MIGRATED")
    assert refused.json()["error"]["details"]["version"] == others[0]
    assert refused.json()["error"]["details"]["missing_users"] == 1
    assert error_of(app.post(start, {"force": "yes please"})) == (422, "VALIDATION_ERROR")
    forced = app.post(start, {"force": True})
    assert forced.status_code == 200, forced.text
    assert forced.json()["experiment"]["gallery_missing_users"] == {"baseline": 0, "challenger": 1}
    assert forced.json()["experiment"]["status"] == "running"
