"""The Python SDK (``facesocial.client``) against a real ``facesocial serve`` on real photos.

* Drift: every route the SDK calls (``calls.ENDPOINTS``), with every parameter name it may send,
  must exist in the running server's ``/openapi.json`` — path, method, path parameters, query
  parameters, multipart fields and JSON body keys.
* Round trips through the sync and the async client: detect (path, bytes, PIL and NumPy give the
  same face), register → verify → identify, groups, demographics, antispoofing and a liveness
  session, deepfake and AI-image analysis, a counting video job and an AI-image job awaited with a
  progress callback, erasure, stable error codes, and an experiment split by ``X-Session-Id``.
* Retries against the server's real rate limiter: 429 with ``Retry-After`` waited out.

Photos: ../shared/data/face_recognition_identities/examples (obama.jpg, obama2.jpg, biden.jpg);
video: the first seconds of PETS09-S2L1 (people_walking/opencv_vtest/vtest.avi).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import pytest
from PIL import Image

from facesocial.client import (
    NO_RETRY,
    AsyncFaceSocialClient,
    FaceSocialAPIError,
    FaceSocialClient,
    Job,
    RetryPolicy,
)
from facesocial.client.calls import ENDPOINTS, Endpoint
from facesocial.container import Container
from tests.conftest import shared_path
from tests.integration.conftest import RunningServer, make_settings, running_server

pytestmark = [pytest.mark.integration, pytest.mark.model, pytest.mark.shared_data]
EXAMPLES = ("face_recognition_identities", "examples")


@dataclass(frozen=True)
class Server:
    running: RunningServer
    operator_key: str
    other_key: str  # another tenant

    def client(self, key: str | None = None, **options: Any) -> FaceSocialClient:
        return FaceSocialClient(self.running.base, api_key=key or self.running.key, timeout=300, **options)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("sdk")
    container = Container(make_settings(data_dir, model_dir))
    container.prepare()
    operator = container.keys.create("sdk operator", role="operator").secret
    other = container.keys.create("sdk other tenant").secret
    container.close()
    with running_server(data_dir, model_dir, FACESOCIAL_RATE_LIMITS__ENABLED="false") as running:
        yield Server(running, operator, other)


@pytest.fixture(scope="module")
def photos() -> dict[str, Path]:
    return {name: shared_path(*EXAMPLES, f"{name}.jpg") for name in ("obama", "obama2", "biden")}


# --- the SDK and the server's schema -------------------------------------------------------------


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The object schemas a (possibly ``$ref``/``anyOf``/array) body schema allows."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return _resolve(document, document["components"]["schemas"][name])
    if "anyOf" in schema or "oneOf" in schema:
        options = schema.get("anyOf") or schema.get("oneOf") or []
        return [s for option in options for s in _resolve(document, option)]
    if schema.get("type") == "array" and "items" in schema:
        return _resolve(document, schema["items"])
    return [schema] if schema.get("type") == "object" or "properties" in schema else []


def _body_fields(document: dict[str, Any], operation: dict[str, Any], content_type: str) -> set[str]:
    content = operation.get("requestBody", {}).get("content", {})
    if content_type not in content:
        return set()
    return {
        name for s in _resolve(document, content[content_type]["schema"]) for name in s.get("properties", {})
    }


def _mismatches(document: dict[str, Any], name: str, endpoint: Endpoint) -> list[str]:
    item = document["paths"].get(endpoint.path)
    if item is None:
        return [f"{name}: no route {endpoint.path}"]
    operation = item.get(endpoint.method.lower())
    if operation is None:
        return [f"{name}: {endpoint.path} has no {endpoint.method}"]
    problems = []
    parameters = operation.get("parameters", [])
    path_params = {p["name"] for p in parameters if p["in"] == "path"}
    query_params = {p["name"] for p in parameters if p["in"] == "query"}
    if path_params != endpoint.path_params:
        problems.append(f"{name}: path parameters {sorted(endpoint.path_params)} vs {sorted(path_params)}")
    if not endpoint.query <= query_params:
        problems.append(f"{name}: query {sorted(endpoint.query - query_params)} unknown to the server")
    multipart = _body_fields(document, operation, "multipart/form-data")
    if not (endpoint.form | endpoint.files) <= multipart:
        problems.append(f"{name}: multipart {sorted((endpoint.form | endpoint.files) - multipart)} unknown")
    as_json = _body_fields(document, operation, "application/json")
    if not endpoint.json <= as_json:
        problems.append(f"{name}: JSON keys {sorted(endpoint.json - as_json)} unknown")
    if endpoint.json_list:
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        if not any(option.get("type") == "array" for option in schema.get("anyOf", [schema])):
            problems.append(f"{name}: the server takes no JSON array")
    return problems


def test_every_route_and_parameter_the_sdk_sends_is_in_the_servers_openapi(server: Server) -> None:
    document = httpx.get(f"{server.running.base}/openapi.json", timeout=60).json()
    assert len(ENDPOINTS) >= 50
    problems = [p for name, endpoint in ENDPOINTS.items() for p in _mismatches(document, name, endpoint)]
    assert problems == []
    # the check can fail: a renamed field or route is reported
    renamed = Endpoint("POST", ENDPOINTS["detect"].path, files=frozenset({"img"}))
    assert _mismatches(document, "detect", renamed) == ["detect: multipart ['img'] unknown"]
    assert _mismatches(document, "x", Endpoint("GET", "/api/v1/jobz")) == ["x: no route /api/v1/jobz"]


# --- round trips ---------------------------------------------------------------------------------


def test_detect_from_path_bytes_pil_and_numpy_finds_the_same_face(
    server: Server, photos: dict[str, Path]
) -> None:
    path = photos["obama"]
    with Image.open(path) as opened:
        pil = opened.convert("RGB")
    array = np.asarray(pil)
    with server.client() as fs:
        results = [
            fs.detect(path, return_attributes=True),
            fs.detect(path.read_bytes()),
            fs.detect(pil),
            fs.detect(array, image_format="JPEG"),
        ]
        with path.open("rb") as stream:
            results.append(fs.detect(stream))
    boxes = [(r.faces[0].bbox.x, r.faces[0].bbox.y, r.faces[0].bbox.width) for r in results]
    assert all(len(r.faces) == 1 for r in results), [len(r.faces) for r in results]
    reference = np.array(boxes[0], dtype=float)
    for box in boxes[1:]:
        assert np.abs(np.array(box) - reference).max() <= max(4.0, 0.05 * reference[2]), boxes
    face = results[0].faces[0]
    assert 0.5 <= face.confidence <= 1.0 and face.attributes is not None
    assert results[0].raw["success"] is True and results[0].serving["face_detection"]["version"]


def test_register_verify_identify_groups_and_erase(server: Server, photos: dict[str, Path]) -> None:
    obama, biden = str(uuid.uuid4()), str(uuid.uuid4())
    with server.client() as fs:
        registered = fs.register(obama, photos["obama"], consent=True)
        assert registered.user_id == obama and registered.face is not None
        fs.register(biden, photos["biden"], consent=True)

        same = fs.verify(photos["obama2"], user_id=obama)
        other = fs.verify(photos["biden"], user_id=obama)
        assert same.match and not other.match and same.similarity > other.similarity
        pair = fs.verify(photos["obama"], image2=photos["obama2"], mode="strict")
        assert pair.match and pair.threshold_mode == "strict"

        with Image.open(photos["obama2"]) as opened:
            found = fs.identify(np.asarray(opened.convert("RGB")), top_k=3)
        assert found.identified and found.candidates[0].user_id == obama and found.candidates[0].rank == 1

        group = fs.create_group(f"sdk {uuid.uuid4().hex[:8]}", description="SDK test")
        fs.add_group_members(group.group_id, [biden])
        detail = fs.get_group(group.group_id)
        assert [m["user_id"] for m in detail.members or []] == [biden]
        assert group.group_id in {g.group_id for g in fs.list_groups(limit=100)}
        in_group = fs.identify(photos["obama2"], group_id=group.group_id)
        assert obama not in {c.user_id for c in in_group.candidates}  # obama is not a member
        fs.remove_group_member(group.group_id, biden)
        assert fs.delete_group(group.group_id)["deleted"] is True

        erased = fs.erase_user(obama)
        assert erased.faces_removed >= 1 and erased.vectors_removed >= 1
        after = fs.identify(photos["obama2"])
        assert obama not in {c.user_id for c in after.candidates}

    # another tenant sees none of it
    with server.client(server.other_key) as stranger, pytest.raises(FaceSocialAPIError) as caught:
        stranger.get_user(biden)
    assert (caught.value.code, caught.value.status) == ("USER_NOT_FOUND", 404)


def test_errors_carry_the_servers_code_message_status_and_details(
    server: Server, photos: dict[str, Path]
) -> None:
    with server.client() as fs:
        with pytest.raises(FaceSocialAPIError) as caught:
            fs.register(str(uuid.uuid4()), photos["obama"], consent=False)
        assert (caught.value.code, caught.value.status) == ("CONSENT_REQUIRED", 403)
        with pytest.raises(FaceSocialAPIError) as caught:
            fs.detect(b"this is not an image at all, just text")
        assert (caught.value.code, caught.value.status) == ("NOT_AN_IMAGE", 415)
        with pytest.raises(FaceSocialAPIError) as caught:
            fs.get_job("job_" + "0" * 32)
        assert (caught.value.code, caught.value.status) == ("JOB_NOT_FOUND", 404)
        with pytest.raises(FaceSocialAPIError) as caught:
            fs.counting_video(b"not a video" * 100, lines=[{"name": "a", "start": [0, 0], "end": [5, 5]}])
        assert caught.value.status in (415, 422) and caught.value.message
    with server.client("fs_wrong", retry=NO_RETRY) as wrong, pytest.raises(FaceSocialAPIError) as caught:
        wrong.list_jobs()
    assert (caught.value.code, caught.value.status) == ("INVALID_API_KEY", 401)


def test_demographics_antispoofing_liveness_deepfake_and_ai_image(
    server: Server, photos: dict[str, Path]
) -> None:
    with server.client() as fs:
        people = fs.demographics(photos["biden"])
        assert len(people.faces) == 1 and people.faces[0].gender in ("male", "man", "Male")
        assert people.faces[0].estimated_age is not None and 20 <= people.faces[0].estimated_age <= 90

        check = fs.spoof_check(photos["obama"])
        assert isinstance(check.is_live, bool) and check.confidence_score is not None

        session = fs.create_liveness_session(challenges=["turn_left", "blink"])
        assert session.session_token and session.challenges == ["turn_left", "blink"]
        assert session.session_status == "active" and session.current_challenge == "turn_left"
        state = fs.get_liveness_session(session.session_token)
        assert state.session_id == session.session_id and state.session_token is None  # shown once
        with Image.open(photos["obama"]) as opened:
            still = np.asarray(opened.convert("RGB"))
        moved = fs.send_liveness_frames(
            session.session_token, [still, still, still], timestamps_ms=[0, 100, 200]
        )
        # three copies of one photo, stamped 100 ms apart: no head turn, not a live face
        assert moved.session_id == session.session_id and moved.overall_result is not True
        assert (moved.session_status, moved.current_challenge) in {("active", "turn_left"), ("failed", None)}

        deepfake = fs.deepfake(photos["obama"], detection_level="basic", return_heatmap=False)
        assert deepfake.band in ("real", "uncertain", "fake") and deepfake.analysis_id
        assert fs.delete_deepfake_analysis(deepfake.analysis_id)["deleted"] is True

        report = fs.ai_image(photos["obama"], methods=["metadata", "ela"])
        assert report.band is not None and report.result_id
        assert fs.get_ai_image_result(report.result_id).result_id == report.result_id


def test_an_ai_image_job_is_awaited_with_progress(server: Server, photos: dict[str, Path]) -> None:
    seen: list[Job] = []
    with server.client() as fs:
        pending = fs.ai_image(photos["biden"], methods=["metadata", "ela"], run_async=True)
        assert pending.job_id
        job = fs.wait_job(pending.job_id, timeout=240, on_progress=seen.append)
        assert job.status == "completed" and job.progress_percentage == 100
        assert seen[-1].status == "completed" and len(
            {(j.status, j.progress_percentage) for j in seen}
        ) == len(seen)
        assert fs.get_ai_image_result(pending.result_id or "").band is not None


def _clip(target: Path, seconds: int) -> Path:
    """The first ``seconds`` of PETS09-S2L1 (480x360, 10 frames/s) as an H.264 MP4."""
    source = shared_path("people_walking", "opencv_vtest", "vtest.avi")
    with av.open(str(source)) as original, av.open(str(target), "w", format="mp4") as output:
        stream = output.add_stream("libx264", rate=Fraction(10))
        stream.width, stream.height, stream.pix_fmt = 480, 360, "yuv420p"
        for index, frame in enumerate(original.decode(video=0)):
            if index >= seconds * 10:
                break
            picture = av.VideoFrame.from_ndarray(frame.to_ndarray(format="rgb24"), format="rgb24")
            for packet in stream.encode(picture):
                output.mux(packet)
        for packet in stream.encode():
            output.mux(packet)
    return target


def test_a_counting_video_job_reports_progress_to_completion(server: Server, tmp_path: Path) -> None:
    video = _clip(tmp_path / "pets.mp4", seconds=4)
    lines = [{"name": "vertical", "start": [240, 0], "end": [240, 360]}]
    seen: list[tuple[str, float]] = []
    with server.client() as fs:
        accepted = fs.counting_video(video, lines=lines, sample_fps=5)
        assert accepted.resource_id and accepted.job_id
        job = fs.wait_job(
            accepted.job_id,
            timeout=300,
            interval=0.2,
            on_progress=lambda j: seen.append((j.status, j.progress_percentage)),
        )
        assert job.status == "completed" and seen[-1] == ("completed", 100.0)
        progress = [p for _, p in seen]
        assert progress == sorted(progress)  # progress never goes back
        counted = fs.get_counting_video(accepted.resource_id)
        assert [line["name"] for line in counted["lines"]] == ["vertical"]
        assert all(line["in"] >= 0 and line["out"] >= 0 for line in counted["lines"])
        preview = fs.counting_preview(accepted.resource_id)
        assert preview[4:8] == b"ftyp"
        assert fs.delete_counting_video(accepted.resource_id)["deleted"] is True


def test_the_async_client_runs_requests_concurrently(server: Server, photos: dict[str, Path]) -> None:
    async def scenario() -> list[Any]:
        async with AsyncFaceSocialClient(server.running.base, api_key=server.running.key, timeout=300) as fs:
            user = str(uuid.uuid4())
            await fs.register(user, photos["obama"], consent=True)
            with Image.open(photos["obama2"]) as opened:
                pil = opened.convert("RGB")
            detected, found, other = await asyncio.gather(
                fs.detect(photos["biden"]), fs.identify(pil), fs.verify(photos["biden"], user_id=user)
            )
            await fs.erase_user(user)
            with pytest.raises(FaceSocialAPIError) as caught:
                await fs.get_group(str(uuid.uuid4()))
            return [user, detected, found, other, caught.value.code]

    user, detected, found, other, code = asyncio.run(scenario())
    assert len(detected.faces) == 1 and found.candidates[0].user_id == user and not other.match
    assert code == "GROUP_NOT_FOUND"


def test_an_experiment_split_by_session_through_the_operator_calls(
    server: Server, photos: dict[str, Path]
) -> None:
    slot = "face_detection"
    with server.client(server.operator_key) as operator:
        model = operator.get_model(slot)["model"]
        production = model["production"]
        others = [v["version"] for v in model["versions"] if v["is_installed"] and v["version"] != production]
        if not others:
            pytest.skip(f"{slot} has one installed version: pull the model pack for a second one")
        others.sort(key=lambda tag: tag.startswith("dlib_hog"))
        assert slot in json.dumps(operator.list_models())
        experiment = operator.create_experiment(
            f"sdk {uuid.uuid4().hex[:6]}",
            slot,
            production,
            others[0],
            traffic_split_method="session",
            minimum_sample_size=2,
            success_metrics=["accuracy"],
        )["experiment"]
        experiment_id = experiment["experiment_id"]
        operator.start_experiment(experiment_id)
        try:
            arms: dict[str, list[str]] = {"baseline": [], "challenger": []}
            for _ in range(40):  # sessions until each arm served twice (stable hash of the session id)
                if min(len(v) for v in arms.values()) >= 2:
                    break
                with server.client(session_id=uuid.uuid4().hex) as caller:
                    serving = caller.detect(photos["obama"]).serving[slot]
                    again = caller.detect(photos["obama"]).serving[slot]
                assert serving["arm"] == again["arm"]  # one session stays on its arm
                arms[serving["arm"]].append(serving["inference_id"])
            assert min(len(v) for v in arms.values()) >= 2, arms
            with server.client() as caller:
                for ids in arms.values():
                    for inference_id in ids:
                        caller.feedback(experiment_id, inference_id, correct=True)
            results = operator.experiment_results(experiment_id)
            assert {arm: results["arms"][arm]["feedback"] for arm in arms} == {
                a: len(v) for a, v in arms.items()
            }
        finally:
            operator.stop_experiment(experiment_id)
        assert operator.get_experiment(experiment_id)["experiment"]["status"] in ("completed", "stopped")


def test_retries_wait_out_the_real_rate_limiter(tmp_path: Path, model_dir: Path) -> None:
    """A server whose job routes allow 1 request a second: five quick calls all succeed, after
    waits at least as long as the server's Retry-After; without retries the 429 is raised."""
    limits = {"enabled": True, "limits": {"jobs": {"rate_per_second": 1, "burst": 1}}}
    with running_server(tmp_path, model_dir, FACESOCIAL_RATE_LIMITS=json.dumps(limits)) as running:
        waits: list[float] = []

        def sleep(seconds: float) -> None:
            waits.append(seconds)
            time.sleep(seconds)

        with FaceSocialClient(running.base, api_key=running.key, retry=NO_RETRY) as plain:
            plain.list_jobs()
            with pytest.raises(FaceSocialAPIError) as caught:
                plain.list_jobs()
        assert caught.value.code == "RATE_LIMITED" and caught.value.status == 429
        assert caught.value.retry_after is not None and caught.value.retry_after >= 1
        policy = RetryPolicy(max_attempts=5, retry_after_jitter=0.0)
        with FaceSocialClient(running.base, api_key=running.key, retry=policy, sleep=sleep) as fs:
            started = time.monotonic()
            for _ in range(5):
                assert fs.list_jobs()["success"] is True
        assert waits and min(waits) >= 1.0  # the server's whole seconds, not the back-off's fractions
        assert time.monotonic() - started >= 3.0
