"""Black-box tests: every inference path runs the version the router names, and says so.

A scripted router (the registry's decisions are beside the point here: its own tests cover
canary, rollback and experiments) sends each slot to a chosen installed version; the response's
``serving``, the model that really ran, the audit row and the recorded inference must all name
that version.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from facesocial import errors
from facesocial.api.app import create_app
from facesocial.container import Container
from facesocial.domains.registry.serving import InferenceRecord, RoutingKey, Serving, StaticRouter
from facesocial.store.tables import AiOperationLog
from facesocial.store.tables_registry import ModelInferenceResult
from tests.integration.conftest import Api, make_settings

pytestmark = pytest.mark.integration
DETECT = "/api/v1/face-detection/detect"
RECOGNITION = "/api/v1/face-recognition"


@dataclass
class ScriptedRouter:
    """Routes each slot to ``choice[slot]`` when installed, else the default; keeps every
    routing key and record it sees."""

    choice: dict[str, str] = field(default_factory=dict)
    # What active_versions() answers per slot (production + canary + experiment arms).
    active: dict[str, tuple[str, ...]] = field(default_factory=dict)
    keys: list[RoutingKey] = field(default_factory=list)
    records: list[InferenceRecord] = field(default_factory=list)
    installed_seen: dict[str, tuple[str, ...]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def resolve(
        self,
        slot: str,
        key: RoutingKey,
        *,
        installed: Collection[str],
        default: str,
        pinned: str | None = None,
    ) -> Serving:
        with self.lock:
            self.keys.append(key)
            self.installed_seen[slot] = tuple(installed)
        if pinned is not None:
            return StaticRouter().resolve(slot, key, installed=installed, default=default, pinned=pinned)
        wanted = self.choice.get(slot)
        if wanted is not None and wanted in installed:
            return Serving(slot, wanted, "canary")
        return Serving(slot, default, "production")

    def record(self, record: InferenceRecord) -> None:
        with self.lock:
            self.records.append(record)

    def active_versions(self, slot: str) -> tuple[str, ...]:
        return self.active.get(slot, ())

    def recorded(self, inference_id: str) -> InferenceRecord:
        found = [r for r in self.records if r.serving.inference_id == inference_id]
        assert len(found) == 1, f"{len(found)} records of inference {inference_id}"
        return found[0]


@pytest.fixture
def router(api: Api) -> Iterator[ScriptedRouter]:
    """The suite's app with a scripted router for the length of one test."""
    scripted = ScriptedRouter()
    container = api.container
    saved = container.__dict__.get("model_router")
    container.__dict__["model_router"] = scripted
    try:
        yield scripted
    finally:
        if saved is None:
            container.__dict__.pop("model_router", None)
        else:
            container.__dict__["model_router"] = saved


def _last_audit(api: Api, operation: str, service: str) -> AiOperationLog:
    with api.container.database.session() as session:
        rows = session.scalars(
            select(AiOperationLog)
            .where(AiOperationLog.operation_type == operation, AiOperationLog.service_name == service)
            .order_by(AiOperationLog.created_at)
        ).all()
        assert rows, f"no audit row for {operation}"
        session.expunge_all()
        return rows[-1]


def _jpeg(data: bytes) -> dict[str, Any]:
    return {"image": ("a.jpg", data, "image/jpeg")}


def test_detection_runs_the_routed_detector(api: Api, router: ScriptedRouter, astronaut_jpeg: bytes) -> None:
    variants = api.container.detector_variants
    installed = variants.installed
    assert variants.default in installed and any(tag.startswith("dlib_hog@") for tag in installed)
    for tag in installed:
        router.choice["face_detection"] = tag
        response = api.post(DETECT, files=_jpeg(astronaut_jpeg), key=api.key)
        assert response.status_code == 200, response.text
        body = response.json()
        serving = body["serving"]
        assert serving["slot"] == "face_detection" and serving["version"] == tag
        assert serving["route"] == "canary" and len(serving["inference_id"]) == 32
        # The detector that really ran is the routed one, not the settings' choice.
        assert "{name}@{version}".format(**body["model"]["detector"]) == tag
        assert body["faces_detected"] == 1, (tag, body["faces_detected"])
        audit = _last_audit(api, "detect", "face_detection")
        assert audit.model_version == tag and audit.operation_result == "success"
        record = router.recorded(serving["inference_id"])
        assert record.service == "face_detection" and record.serving.version == tag
        assert len(record.confidences) == 1 and 0 < record.confidences[0] <= 1
        assert record.features["width"] == 512 and record.features["faces"] == 1
        assert 0 < record.features["quality"] <= 1
        assert record.tenant_id is not None
    assert router.installed_seen["face_detection"] == installed


def test_routing_key_names_the_caller_and_session(
    api: Api, router: ScriptedRouter, astronaut_jpeg: bytes
) -> None:
    headers = {**api.headers(), "X-Session-Id": "session-42"}
    response = api.client.post(DETECT, files=_jpeg(astronaut_jpeg), headers=headers)
    assert response.status_code == 200, response.text
    first = router.keys[-1]
    assert first.session_id == "session-42" and first.user_key and first.user_key.startswith("key:")
    api.post(DETECT, files=_jpeg(astronaut_jpeg))
    second = router.keys[-1]
    # The same caller has the same user key (a user split is stable); each request its own id.
    assert second.user_key == first.user_key and second.request_id != first.request_id
    assert second.session_id is None
    other = api.container.keys.create(f"other {uuid.uuid4()}").secret
    api.post(DETECT, files=_jpeg(astronaut_jpeg), key=other)
    assert router.keys[-1].user_key != first.user_key
    assert router.keys[-1].tenant_id != first.tenant_id


def test_a_failed_request_records_no_inference(api: Api, router: ScriptedRouter) -> None:
    response = api.post(DETECT, files={"image": ("x.jpg", b"not an image", "image/jpeg")})
    assert response.status_code == 415
    assert router.records == []


def _embedding_tags(api: Api) -> dict[str, str]:
    return {name: embedder.model.tag for name, embedder in api.container.pipeline.embedders.items()}


def test_dual_enrolment_lets_every_arm_find_the_user(
    tenant: Api, router: ScriptedRouter, astronaut_jpeg: bytes, astronaut_variant_jpeg: bytes
) -> None:
    tags = _embedding_tags(tenant)
    if "faceres" not in tags:
        pytest.skip("faceres is not installed: dual enrolment needs two embedding models")
    baseline, challenger = tags[tenant.container.pipeline.default_embedder], tags["faceres"]
    assert baseline != challenger
    router.active["face_embedding"] = (baseline, challenger)
    user = uuid.uuid4()
    router.choice["face_embedding"] = baseline
    response = tenant.post(
        f"{RECOGNITION}/register", files=_jpeg(astronaut_jpeg), data={"user_id": str(user), "consent": "true"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["serving"]["face_embedding"]["version"] == baseline
    assert body["serving"]["face_detection"]["version"] == tenant.container.detector_variants.default
    companions = body["companion_faces"]
    assert [c["embedding_model"]["name"] for c in companions] == ["faceres"]
    assert companions[0]["collection"] != body["collection"]
    assert _last_audit(tenant, "register", "face_recognition").model_version == baseline
    profile = tenant.client.get(f"{RECOGNITION}/users/{user}", headers=tenant.headers()).json()
    assert len(profile["faces"]) == 2
    # Each arm searches its own collection, and finds the user there.
    for tag in (baseline, challenger):
        router.choice["face_embedding"] = tag
        found = tenant.post(f"{RECOGNITION}/identify", files=_jpeg(astronaut_variant_jpeg))
        assert found.status_code == 200, found.text
        result = found.json()
        assert result["serving"]["face_embedding"]["version"] == tag
        assert "{name}@{version}".format(**result["embedding_model"]) == tag
        assert result["identified"] and result["candidates"][0]["user_id"] == str(user), tag
        record = router.recorded(result["serving"]["face_embedding"]["inference_id"])
        assert record.service == "face_recognition"
        assert record.confidences == (pytest.approx(result["candidates"][0]["similarity"], abs=1e-4),)
        assert record.features["embedding_norm"] == pytest.approx(1.0, abs=1e-3)
        assert _last_audit(tenant, "identify", "face_recognition").model_version == tag
        verified = tenant.post(
            f"{RECOGNITION}/verify", files=_jpeg(astronaut_variant_jpeg), data={"user_id": str(user)}
        ).json()
        assert verified["match"] is True and verified["serving"]["face_embedding"]["version"] == tag
    # Erasure removes every collection's vector.
    erased = tenant.client.delete(f"{RECOGNITION}/users/{user}", headers=tenant.headers()).json()
    assert erased["faces_removed"] == 2 and erased["vectors_removed"] == 2


def test_without_other_serving_versions_register_enrols_once(
    tenant: Api, router: ScriptedRouter, astronaut_jpeg: bytes
) -> None:
    user = uuid.uuid4()
    response = tenant.post(
        f"{RECOGNITION}/register", files=_jpeg(astronaut_jpeg), data={"user_id": str(user), "consent": "true"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["companion_faces"] == []


def test_a_pinned_embedding_model_is_not_routed_or_doubled(
    tenant: Api, router: ScriptedRouter, astronaut_jpeg: bytes
) -> None:
    tags = _embedding_tags(tenant)
    if "faceres" not in tags:
        pytest.skip("faceres is not installed")
    default = tags[tenant.container.pipeline.default_embedder]
    router.choice["face_embedding"] = tags["faceres"]
    router.active["face_embedding"] = (default, tags["faceres"])
    name = tenant.container.pipeline.default_embedder
    response = tenant.post(
        f"{RECOGNITION}/register",
        files=_jpeg(astronaut_jpeg),
        data={"user_id": str(uuid.uuid4()), "consent": "true", "embedding_model": name},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["serving"]["face_embedding"]["route"] == "pinned"
    assert body["serving"]["face_embedding"]["version"] == default
    assert body["companion_faces"] == []
    unknown = tenant.post(
        f"{RECOGNITION}/identify", files=_jpeg(astronaut_jpeg), data={"embedding_model": "no_such_model"}
    )
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "UNKNOWN_MODEL"


def test_demographics_names_both_slots(api: Api, router: ScriptedRouter, astronaut_jpeg: bytes) -> None:
    attributes = api.container.pipeline.attributes
    if attributes is None:
        pytest.skip("the age/gender models are not installed")
    hog = next(tag for tag in api.container.detector_variants.installed if tag.startswith("dlib_hog@"))
    router.choice["face_detection"] = hog
    response = api.post("/api/v1/demographics/analyze", files=_jpeg(astronaut_jpeg))
    assert response.status_code == 200, response.text
    body = response.json()
    age_gender = attributes.models["age_gender"].tag
    assert body["serving"]["demographics"]["version"] == age_gender
    assert body["serving"]["face_detection"]["version"] == hog
    assert "{name}@{version}".format(**body["models"]["detector"]) == hog
    assert _last_audit(api, "analyze", "demographics").model_version == age_gender
    record = router.recorded(body["serving"]["demographics"]["inference_id"])
    assert record.service == "demographics"
    assert record.confidences == (pytest.approx(body["faces"][0]["gender_confidence"], abs=1e-4),)
    assert 0 < record.features["age"] < 100

    batch = api.post(
        "/api/v1/demographics/batch",
        files=[
            ("images", ("a.jpg", astronaut_jpeg, "image/jpeg")),
            ("images", ("b.jpg", astronaut_jpeg, "image/jpeg")),
        ],  # type: ignore[arg-type]
    )
    assert batch.status_code == 200, batch.text
    items = batch.json()["results"]
    ids = [item["serving"]["demographics"]["inference_id"] for item in items]
    # One version for the whole batch, one inference per image.
    assert len(set(ids)) == 2
    assert {item["serving"]["demographics"]["version"] for item in items} == {age_gender}
    assert all(router.recorded(i).service == "demographics" for i in ids)


def test_passive_liveness_names_detector_and_liveness(
    api: Api, router: ScriptedRouter, astronaut_jpeg: bytes
) -> None:
    hog = next(tag for tag in api.container.detector_variants.installed if tag.startswith("dlib_hog@"))
    router.choice["face_detection"] = hog
    response = api.post("/api/v1/antispoofing/check", files=_jpeg(astronaut_jpeg))
    assert response.status_code == 200, response.text
    body = response.json()
    liveness = body["serving"]["liveness"]
    assert liveness["version"] == body["model_version"] and liveness["version"].startswith(
        "liveness_passive@"
    )
    assert body["serving"]["face_detection"]["version"] == hog
    assert body["analysis_details"]["serving"] == body["serving"]
    assert _last_audit(api, "antispoofing_check", "antispoofing").model_version == liveness["version"]
    record = router.recorded(liveness["inference_id"])
    assert record.service == "antispoofing"
    assert record.confidences == (pytest.approx(body["analysis_details"]["scores"]["live"], abs=1e-3),)
    assert router.recorded(body["serving"]["face_detection"]["inference_id"]).features["faces"] == 1


def test_deepfake_image_names_the_learned_model(
    api: Api, router: ScriptedRouter, astronaut_jpeg: bytes
) -> None:
    response = api.post(
        "/api/v1/deepfake-detection/analyze", files=_jpeg(astronaut_jpeg), data={"detection_level": "basic"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    serving = body["serving"]["deepfake"]
    # The slot's version is the learned model inside the ensemble the body names.
    assert serving["version"] in body["model_version"].split("+")
    assert _last_audit(api, "analyze", "deepfake_detection").model_version == serving["version"]
    record = router.recorded(serving["inference_id"])
    assert record.service == "deepfake_detection"
    assert record.confidences == (pytest.approx(body["confidence_score"], abs=1e-4),)
    assert record.features["manipulation_score"] == pytest.approx(body["manipulation_score"], abs=1e-4)
    stored = api.client.get(
        f"/api/v1/deepfake-detection/analyses/{body['analysis_id']}", headers=api.headers()
    ).json()
    assert stored["model_version"] == body["model_version"]


def test_ai_image_now_and_as_a_job(api: Api, router: ScriptedRouter, astronaut_jpeg: bytes) -> None:
    response = api.post("/api/v1/ai-detection/analyze", files=_jpeg(astronaut_jpeg))
    assert response.status_code == 200, response.text
    body = response.json()
    serving = body["serving"]["ai_image"]
    assert _last_audit(api, "analyze", "ai_detection").model_version == serving["version"]
    record = router.recorded(serving["inference_id"])
    assert record.service == "ai_detection" and record.serving.version == serving["version"]
    assert record.confidences == (pytest.approx(body["confidence_score"], abs=1e-4),)
    caller_key = router.keys[-1].user_key
    # A job routes where it runs, with the key of the request that queued it.
    queued = api.post("/api/v1/ai-detection/analyze", files=_jpeg(astronaut_jpeg), data={"async": "true"})
    assert queued.status_code == 202, queued.text
    result_id = queued.json()["result_id"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = api.client.get(f"/api/v1/ai-detection/results/{result_id}", headers=api.headers()).json()
        if status.get("status") in ("completed", "failed") or "confidence_score" in status:
            break
        time.sleep(0.2)
    jobs = [
        r for r in router.records if r.service == "ai_detection" and r.result.get("result_id") == result_id
    ]
    assert len(jobs) == 1, status
    assert jobs[0].serving.version == serving["version"]
    assert router.keys[-1].user_key == caller_key


def test_a_liveness_session_keeps_its_versions(api: Api, router: ScriptedRouter) -> None:
    from tests.integration.test_antispoofing_api import SESSIONS, as_jpegs, blink_frames

    frames = as_jpegs(blink_frames(0.0, 1.0, fps=6.0))
    created = api.client.post(SESSIONS, json={}, headers=api.headers())
    assert created.status_code in (200, 201), created.text
    token = created.json()["session_token"]
    time.sleep(0.5)  # the frames span 333 ms of client time: none may predate the session
    first = api.client.post(
        f"{SESSIONS}/{token}/frames",
        files=[("frames", (f"f{i}.jpg", data, "image/jpeg")) for i, (_, data) in enumerate(frames[:3])],
        data={"timestamps_ms": ",".join(f"{t:.1f}" for t, _ in frames[:3])},
        headers=api.headers(),
    )
    assert first.status_code == 200, first.text
    assert first.json()["session_status"] == "active", first.json()
    serving = first.json()["serving"]
    detector = serving["face_detection"]["version"]
    assert serving["liveness"]["version"].startswith("liveness_passive@")
    # The session is the split subject of its frames.
    assert router.keys[-1].session_id == first.json()["session_id"]
    records = [r for r in router.records if r.serving.inference_id == serving["liveness"]["inference_id"]]
    assert len(records) == 1 and len(records[0].confidences) >= 1
    # A later routing change does not move a running session to another detector (the pause
    # keeps the next frames' client times in the past of the session clock).
    time.sleep(0.6)
    router.choice["face_detection"] = next(
        t for t in api.container.detector_variants.installed if t != detector
    )
    second = api.client.post(
        f"{SESSIONS}/{token}/frames",
        files=[("frames", (f"g{i}.jpg", data, "image/jpeg")) for i, (_, data) in enumerate(frames[3:5])],
        data={"timestamps_ms": ",".join(f"{t:.1f}" for t, _ in frames[3:5])},
        headers=api.headers(),
    )
    assert second.status_code == 200, second.text
    again = second.json()["serving"]
    assert again["face_detection"]["version"] == detector
    assert again["liveness"]["inference_id"] != serving["liveness"]["inference_id"]
    status = api.client.get(f"{SESSIONS}/{token}", headers=api.headers()).json()
    assert status["serving"]["face_detection"]["version"] == detector


def test_an_embedding_canary_through_the_registry(
    tmp_path: Path, model_dir: Path, astronaut_jpeg: bytes, astronaut_variant_jpeg: bytes
) -> None:
    """The registry's own router: a 50 % canary of another embedder makes registration enrol in
    both collections, and every caller identifies the user on the arm it is kept on."""
    settings = make_settings(tmp_path, model_dir)
    settings.reconcile.interval_seconds = 0
    container = Container(settings)
    container.prepare()
    try:
        with TestClient(create_app(container), raise_server_exceptions=False) as client:
            tags = {name: e.model.tag for name, e in container.pipeline.embedders.items()}
            if "faceres" not in tags:
                pytest.skip("faceres is not installed")
            production, canary = tags[container.pipeline.default_embedder], tags["faceres"]
            operator = {"X-API-Key": container.keys.create("operator", role="operator").secret}
            owner = container.keys.create("owner")
            callers = [{"X-API-Key": owner.secret}] + [
                {"X-API-Key": container.keys.create(f"caller {i}", owner_id=owner.id).secret}
                for i in range(23)
            ]
            started = client.post(
                "/api/v1/models/face_embedding/canary",
                json={"version": canary, "percent": 50},
                headers=operator,
            )
            assert started.status_code == 200, started.text
            user = uuid.uuid4()
            registered = client.post(
                f"{RECOGNITION}/register",
                files=_jpeg(astronaut_jpeg),
                data={"user_id": str(user), "consent": "true"},
                headers=callers[0],
            )
            assert registered.status_code == 200, registered.text
            body = registered.json()
            enrolled = {body["serving"]["face_embedding"]["version"]} | {
                "{name}@{version}".format(**c["embedding_model"]) for c in body["companion_faces"]
            }
            assert enrolled == {production, canary}
            seen: dict[str, str] = {}
            for caller in callers:
                for _ in range(2):  # the same caller stays on its arm
                    found = client.post(
                        f"{RECOGNITION}/identify", files=_jpeg(astronaut_variant_jpeg), headers=caller
                    )
                    assert found.status_code == 200, found.text
                    result = found.json()
                    serving = result["serving"]["face_embedding"]
                    assert seen.setdefault(caller["X-API-Key"], serving["version"]) == serving["version"]
                    assert serving["route"] == ("canary" if serving["version"] == canary else "production")
                    assert result["identified"] and result["candidates"][0]["user_id"] == str(user)
                    with container.database.session(readonly=True) as session:
                        row = session.scalar(
                            select(ModelInferenceResult).where(
                                ModelInferenceResult.inference_id == serving["inference_id"]
                            )
                        )
                    assert row is not None and (row.model_version, row.route) == (
                        serving["version"],
                        serving["route"],
                    )
            # 24 callers all on one arm: probability 2 * 0.5**24.
            assert set(seen.values()) == {production, canary}, seen
            ended = client.delete("/api/v1/models/face_embedding/canary", headers=operator)
            assert ended.status_code == 200, ended.text
            alone = client.post(
                f"{RECOGNITION}/register",
                files=_jpeg(astronaut_jpeg),
                data={"user_id": str(uuid.uuid4()), "consent": "true"},
                headers=callers[0],
            ).json()
            assert alone["companion_faces"] == []
            assert alone["serving"]["face_embedding"]["version"] == production
    finally:
        container.close()


def test_a_failed_companion_write_stores_nothing(
    tenant: Api, router: ScriptedRouter, astronaut_jpeg: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = tenant.container.pipeline
    if "faceres" not in pipeline.embedders:
        pytest.skip("faceres is not installed")
    baseline, challenger = pipeline.embedder, pipeline.embedders["faceres"]
    router.active["face_embedding"] = (baseline.model.tag, challenger.model.tag)
    index = tenant.container.index
    real_upsert = index.upsert

    def failing_upsert(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == challenger.collection:  # the companion's collection: after the first vector
            raise errors.ServiceUnavailableError("The vector index is not answering")
        return real_upsert(name, *args, **kwargs)

    before = {c: index.count(c) for c in (baseline.collection, challenger.collection)}
    faces_before = tenant.counts()["faces"]
    monkeypatch.setattr(index, "upsert", failing_upsert)
    user = uuid.uuid4()
    response = tenant.post(
        f"{RECOGNITION}/register", files=_jpeg(astronaut_jpeg), data={"user_id": str(user), "consent": "true"}
    )
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    monkeypatch.undo()
    # The first vector was taken back and no row of either face is left: a 503 stored nothing.
    assert {c: index.count(c) for c in before} == before
    assert tenant.counts()["faces"] == faces_before
    assert tenant.client.get(f"{RECOGNITION}/users/{user}", headers=tenant.headers()).status_code == 404
