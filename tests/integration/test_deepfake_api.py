"""Deepfake detection over HTTP on both profiles: images now, videos as jobs (202 → progress → done).

embedded: SQLite + local index + in-process job threads. scaled: PostgreSQL + Redis + milvus-lite,
the jobs run by a real ``facesocial worker`` subprocess (Celery on Redis). Real models, real
clips of ../shared/data/deepfake_samples, and bad videos made here with PyAV.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select

from facesocial.container import Container
from facesocial.store.tables import ContentFeature, DeepfakeAnalysis, FrameAnalysis
from tests.conftest import shared_path
from tests.integration.conftest import jobs_app

pytestmark = [pytest.mark.integration, pytest.mark.model]

REDIS_BROKER_DB = 11
CLIP = ("deepfake_samples", "icpr2020dfdc_notebook_samples", "lynaeydofd.mp4")


@dataclass
class Deepfake:
    client: TestClient
    container: Container
    key: str
    other_key: str
    profile: str

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"X-API-Key": key or self.key}

    def analyses(self) -> int:
        with self.container.database.session(readonly=True) as session:
            return int(session.scalar(select(func.count()).select_from(DeepfakeAnalysis)) or 0)

    def spooled(self) -> list[Path]:
        spool = self.container.settings.resolved_spool_dir()
        return [p for p in spool.rglob("*") if p.is_file()] if spool.exists() else []


@pytest.fixture(scope="module", params=["embedded", "scaled"])
def deepfake(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, model_dir: Path
) -> Iterator[Deepfake]:
    with jobs_app(
        request.param,
        tmp_path_factory.mktemp("deepfake"),
        model_dir,
        broker_db=REDIS_BROKER_DB,
        max_video_seconds=30.0,
    ) as app:
        yield Deepfake(app.client, app.container, app.key, app.other_key, request.param)


def _png(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def _face_jpeg() -> bytes:
    folder = shared_path("lfw_deepfunneled", "lfw-deepfunneled")
    return next(iter(sorted(folder.glob("*/*_0001.jpg")))).read_bytes()


# --- images --------------------------------------------------------------------------------------


def test_an_image_gets_a_verdict_areas_a_heatmap_and_the_model_version(deepfake: Deepfake) -> None:
    response = deepfake.client.post(
        "/api/v1/deepfake-detection/analyze",
        files={"image": ("face.jpg", _face_jpeg(), "image/jpeg")},
        data={"detection_level": "advanced"},
        headers=deepfake.headers(),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["band"] in ("real", "uncertain", "fake")
    assert body["is_deepfake"] == (body["band"] == "fake")
    assert 0.0 <= body["confidence_score"] <= 1.0
    assert 0.0 <= body["manipulation_score"] <= 1.0
    assert isinstance(body["manipulation_types"], list)
    assert isinstance(body["inconsistency_areas"], list)
    assert body["model_version"]
    heatmap = Image.open(io.BytesIO(base64.b64decode(body["heatmap_png_base64"])))
    assert heatmap.format == "PNG" and heatmap.width > 0
    # Stored (without the image) and readable by its tenant only.
    stored = deepfake.client.get(
        f"/api/v1/deepfake-detection/analyses/{body['analysis_id']}", headers=deepfake.headers()
    )
    assert stored.status_code == 200
    assert stored.json()["status"] == "completed"
    assert stored.json()["manipulation_score"] == pytest.approx(body["manipulation_score"], abs=1e-4)
    foreign = deepfake.client.get(
        f"/api/v1/deepfake-detection/analyses/{body['analysis_id']}",
        headers=deepfake.headers(deepfake.other_key),
    )
    assert foreign.status_code == 404 and foreign.json()["error"]["code"] == "ANALYSIS_NOT_FOUND"
    # Erasure takes the row and its content features.
    gone = deepfake.client.delete(
        f"/api/v1/deepfake-detection/analyses/{body['analysis_id']}", headers=deepfake.headers()
    )
    assert gone.status_code == 200
    again = deepfake.client.get(
        f"/api/v1/deepfake-detection/analyses/{body['analysis_id']}", headers=deepfake.headers()
    )
    assert again.status_code == 404
    with deepfake.container.database.session(readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(ContentFeature)) == 0


def test_the_base64_json_form_gives_the_same_answer(deepfake: Deepfake) -> None:
    data = _face_jpeg()
    as_json = deepfake.client.post(
        "/api/v1/deepfake-detection/analyze",
        json={"image": base64.b64encode(data).decode(), "detection_level": "basic", "return_heatmap": False},
        headers=deepfake.headers(),
    )
    as_form = deepfake.client.post(
        "/api/v1/deepfake-detection/analyze",
        files={"image": ("face.jpg", data, "image/jpeg")},
        data={"detection_level": "basic", "return_heatmap": "false"},
        headers=deepfake.headers(),
    )
    assert as_json.status_code == 200 and as_form.status_code == 200
    assert "heatmap_png_base64" not in as_json.json()
    assert as_json.json()["manipulation_score"] == pytest.approx(
        as_form.json()["manipulation_score"], abs=1e-6
    )


def test_bad_image_requests_get_their_codes(deepfake: Deepfake) -> None:
    post = deepfake.client.post
    not_image = post(
        "/api/v1/deepfake-detection/analyze",
        files={"image": ("x.jpg", b"hello, not an image", "image/jpeg")},
        headers=deepfake.headers(),
    )
    assert not_image.status_code in (415, 422) and not_image.json()["success"] is False
    level = post(
        "/api/v1/deepfake-detection/analyze",
        files={"image": ("face.jpg", _face_jpeg(), "image/jpeg")},
        data={"detection_level": "extreme"},
        headers=deepfake.headers(),
    )
    assert level.status_code == 422 and level.json()["error"]["code"] == "VALIDATION_ERROR"


# --- videos --------------------------------------------------------------------------------------


def _wait(deepfake: Deepfake, analysis_id: str, timeout: float = 600.0) -> tuple[dict[str, Any], list[float]]:
    seen: list[float] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = deepfake.client.get(
            f"/api/v1/deepfake-detection/analyses/{analysis_id}", headers=deepfake.headers()
        )
        assert response.status_code == 200, response.text
        body = response.json()
        seen.append(float(body["progress_percentage"]))
        if body["status"] in ("completed", "failed", "cancelled"):
            return body, seen
        time.sleep(0.5)
    raise AssertionError(f"analysis {analysis_id} did not end; progress seen {seen[-5:]}")


def test_a_video_round_trips_202_progress_completed(deepfake: Deepfake) -> None:
    clip = shared_path(*CLIP)
    with clip.open("rb") as handle:
        response = deepfake.client.post(
            "/api/v1/deepfake-detection/analyze-video",
            files={"video": (clip.name, handle, "video/mp4")},
            data={"priority": "7", "sample_fps": "1", "detection_level": "standard"},
            headers=deepfake.headers(),
        )
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["analysis_id"] and accepted["job_id"]
    body, seen = _wait(deepfake, accepted["analysis_id"])
    assert body["status"] == "completed", body
    assert body["progress_percentage"] == 100.0
    assert seen == sorted(seen)  # progress never goes back
    assert body["total_frames"] >= 250  # 10 s at 30 fps
    assert 5 <= body["analyzed_frames"] <= 12  # ~1 per second
    assert body["band"] in ("real", "uncertain", "fake")
    assert 0.0 <= body["consistency_score"] <= 1.0
    assert body["persons"], "the speaker is tracked"
    frames = body["frame_analyses"]
    assert frames["total"] == body["analyzed_frames"]
    assert [f["frame_number"] for f in frames["items"]] == sorted(f["frame_number"] for f in frames["items"])
    assert all(face["track_id"] is not None for f in frames["items"] for face in f["faces"])
    page = deepfake.client.get(
        f"/api/v1/deepfake-detection/analyses/{accepted['analysis_id']}?frames_offset=2&frames_limit=2",
        headers=deepfake.headers(),
    ).json()["frame_analyses"]
    assert [f["frame_number"] for f in page["items"]] == [f["frame_number"] for f in frames["items"][2:4]]
    job = deepfake.client.get(f"/api/v1/jobs/{accepted['job_id']}", headers=deepfake.headers())
    assert job.status_code == 200 and job.json()["job"]["status"] == "completed"
    # The spooled upload is gone once the job ended; another tenant learns nothing of the job.
    assert not (deepfake.container.settings.resolved_spool_dir() / accepted["job_id"]).exists()
    foreign = deepfake.client.get(
        f"/api/v1/jobs/{accepted['job_id']}", headers=deepfake.headers(deepfake.other_key)
    )
    assert foreign.status_code == 404
    # DELETE erases the analysis and its frames.
    assert (
        deepfake.client.delete(
            f"/api/v1/deepfake-detection/analyses/{accepted['analysis_id']}", headers=deepfake.headers()
        ).status_code
        == 200
    )
    with deepfake.container.database.session(readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(FrameAnalysis)) == 0


def _synthetic_video(path: Path, seconds: float, fps: int = 10, size: int = 64) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(int(seconds * fps)):
            rgb = np.full((size, size, 3), (i * 7) % 255, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        stream.layout = "mono"
        samples = (np.sin(np.arange(16000 * 2) / 10) * 3000).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = 16000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_bad_videos_get_their_codes_and_leave_nothing(deepfake: Deepfake, tmp_path: Path) -> None:
    clip = shared_path(*CLIP).read_bytes()
    long_video = _synthetic_video(tmp_path / "long.mp4", seconds=40, fps=2).read_bytes()
    cases = {
        "truncated.mp4": (clip[: len(clip) // 2], {"VIDEO_TRUNCATED", "UNSUPPORTED_VIDEO"}),
        "notes.txt": (b"this is a text file, not a video\n" * 50, {"UNSUPPORTED_VIDEO"}),
        "empty.mp4": (b"", {"EMPTY_VIDEO"}),
        "sound.m4a": (_audio_only(tmp_path / "sound.m4a").read_bytes(), {"NO_VIDEO_STREAM"}),
        "long.mp4": (long_video, {"VIDEO_TOO_LONG"}),
    }
    before = deepfake.analyses()
    for name, (data, codes) in cases.items():
        response = deepfake.client.post(
            "/api/v1/deepfake-detection/analyze-video",
            files={"video": (name, data, "video/mp4")},
            headers=deepfake.headers(),
        )
        assert 400 <= response.status_code < 500, (name, response.status_code, response.text)
        assert response.json()["error"]["code"] in codes, (name, response.json())
    assert deepfake.analyses() == before
    assert deepfake.spooled() == []


def test_bad_video_fields_are_refused_before_anything_is_stored(deepfake: Deepfake, tmp_path: Path) -> None:
    video = _synthetic_video(tmp_path / "ok.mp4", seconds=2).read_bytes()
    for fields, code in (
        ({"priority": "11"}, "VALIDATION_ERROR"),
        ({"priority": "high"}, "VALIDATION_ERROR"),
        ({"sample_fps": "-1"}, "VALIDATION_ERROR"),
        ({"callback_url": "http://127.0.0.1:9/hook"}, "INVALID_CALLBACK_URL"),
        ({"callback_url": "file:///etc/passwd"}, "INVALID_CALLBACK_URL"),
        ({"unknown": "x"}, "VALIDATION_ERROR"),
    ):
        response = deepfake.client.post(
            "/api/v1/deepfake-detection/analyze-video",
            files={"video": ("ok.mp4", video, "video/mp4")},
            data=fields,
            headers=deepfake.headers(),
        )
        assert response.status_code == 422 and response.json()["error"]["code"] == code, (
            fields,
            response.text,
        )
    missing = deepfake.client.post(
        "/api/v1/deepfake-detection/analyze-video", data={"priority": "5"}, headers=deepfake.headers()
    )
    assert missing.status_code == 422
    assert deepfake.spooled() == []


def test_deleting_a_queued_analysis_cancels_its_job_and_removes_its_file(
    deepfake: Deepfake, tmp_path: Path
) -> None:
    video = _synthetic_video(tmp_path / "short.mp4", seconds=3).read_bytes()
    # A blocker at top priority keeps the single worker busy while the second job waits.
    first = deepfake.client.post(
        "/api/v1/deepfake-detection/analyze-video",
        files={"video": ("a.mp4", shared_path(*CLIP).read_bytes(), "video/mp4")},
        data={"priority": "10", "sample_fps": "2"},
        headers=deepfake.headers(),
    ).json()
    second = deepfake.client.post(
        "/api/v1/deepfake-detection/analyze-video",
        files={"video": ("b.mp4", video, "video/mp4")},
        data={"priority": "1"},
        headers=deepfake.headers(),
    ).json()
    gone = deepfake.client.delete(
        f"/api/v1/deepfake-detection/analyses/{second['analysis_id']}", headers=deepfake.headers()
    )
    assert gone.status_code == 200
    job = deepfake.client.get(f"/api/v1/jobs/{second['job_id']}", headers=deepfake.headers()).json()
    assert job["job"]["status"] == "cancelled"
    assert not (deepfake.container.settings.resolved_spool_dir() / second["job_id"]).exists()
    body, _ = _wait(deepfake, first["analysis_id"])
    assert body["status"] == "completed"
    shutil.rmtree(tmp_path, ignore_errors=True)


def _recompressed(data: bytes, quality: int = 70) -> bytes:
    buffer = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def test_known_fake_content_is_recognised_within_its_tenant_only(deepfake: Deepfake) -> None:
    from facesocial.domains.deepfake.known_content import COLLECTION

    data = _face_jpeg()
    first = deepfake.client.post(
        "/api/v1/deepfake-detection/analyze",
        files={"image": ("face.jpg", data, "image/jpeg")},
        data={"detection_level": "basic", "return_heatmap": "false"},
        headers=deepfake.headers(),
    ).json()
    # Label the stored content as fake (as a fake verdict would have), then re-upload it re-encoded.
    with deepfake.container.database.session() as session:
        row = session.scalar(
            select(DeepfakeAnalysis).where(DeepfakeAnalysis.analysis_id == first["analysis_id"])
        )
        assert row is not None
        feature = session.scalar(select(ContentFeature).where(ContentFeature.analysis_id == row.id))
        assert feature is not None
        feature.is_deepfake = True
    again = deepfake.client.post(
        "/api/v1/deepfake-detection/analyze",
        files={"image": ("again.jpg", _recompressed(data), "image/jpeg")},
        data={"detection_level": "basic", "return_heatmap": "false"},
        headers=deepfake.headers(),
    ).json()
    assert again["known_fake_match"] is not None
    assert again["known_fake_match"]["analysis_id"] == first["analysis_id"]
    assert (
        again["known_fake_match"]["similarity"] >= deepfake.container.settings.deepfake.known_fake_similarity
    )
    other = deepfake.client.post(
        "/api/v1/deepfake-detection/analyze",
        files={"image": ("again.jpg", data, "image/jpeg")},
        data={"detection_level": "basic", "return_heatmap": "false"},
        headers=deepfake.headers(deepfake.other_key),
    ).json()
    assert other["known_fake_match"] is None
    # The face-index reconciler leaves these vectors alone (they have no face rows).
    vectors = deepfake.container.index.count(COLLECTION)
    assert vectors >= 3
    deepfake.container.reconciler.run(repair=True, grace_seconds=0)
    assert deepfake.container.index.count(COLLECTION) == vectors
    for body in (first, again, other):
        key = deepfake.other_key if body is other else deepfake.key
        deepfake.client.delete(
            f"/api/v1/deepfake-detection/analyses/{body['analysis_id']}", headers=deepfake.headers(key)
        )


def test_huge_page_offsets_are_refused_not_a_500(deepfake: Deepfake) -> None:
    for path in (
        "/api/v1/jobs?offset=9223372036854775808",
        "/api/v1/deepfake-detection/analyses/dfa_x?frames_offset=99999999999999999999",
    ):
        response = deepfake.client.get(path, headers=deepfake.headers())
        assert response.status_code == 422 and response.json()["error"]["code"] == "VALIDATION_ERROR"


def test_the_spool_sweep_removes_crash_leftovers_but_not_live_uploads(deepfake: Deepfake) -> None:
    spool = deepfake.container.settings.resolved_spool_dir()
    stale = spool / "incoming" / "stale"
    live = spool / "incoming" / "live"
    orphan = spool / "job_deadbeef"
    for folder in (stale, live, orphan):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "video").write_bytes(b"x" * 10)
    old = time.time() - 7200
    for path in (stale, stale / "video", orphan, orphan / "video"):
        os.utime(path, (old, old))
    assert deepfake.container.deepfake.sweep_spool(older_than_seconds=3600) == 2
    assert not stale.exists() and not orphan.exists() and live.exists()
    shutil.rmtree(live)
