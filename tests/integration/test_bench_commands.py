"""`facesocial bench` subcommands on tiny real inputs: structure and sanity of the JSON, no timings.

Speed itself is reported by the commands (docs/benchmarks.md); these tests check that each one
runs the real pipeline, counts what it should and keeps the older ``bench`` forms working.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from facesocial.cli import app
from facesocial.evaluation.bench_api import local_server
from tests.conftest import shared_path

pytestmark = pytest.mark.integration
runner = CliRunner()

LFW = ("lfw_deepfunneled", "lfw-deepfunneled")
# Known images: one face each in the two LFW portraits; 2008_001009 has 2 labelled faces that
# both pipelines find (dlib_faces_detection/training.xml); dogs.jpg has no human face.
KNOWN_FACES = {
    "Aaron_Sorkin_0001.jpg": 1,
    "Abel_Pacheco_0001.jpg": 1,
    "2008_001009.jpg": 2,
    "dogs.jpg": 0,
}


@pytest.fixture
def known_images() -> list[Path]:
    return [
        shared_path(*LFW, "Aaron_Sorkin", "Aaron_Sorkin_0001.jpg"),
        shared_path(*LFW, "Abel_Pacheco", "Abel_Pacheco_0001.jpg"),
        shared_path("dlib_faces_detection", "2008_001009.jpg"),
        shared_path("dlib_faces_detection", "dogs.jpg"),
    ]


@pytest.fixture
def models_env(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The pulled model pack for the command and for the processes it spawns (they inherit it)."""
    monkeypatch.setenv("FACESOCIAL_MODELS__MODEL_DIR", str(model_dir))
    return model_dir


def _image_options(paths: list[Path]) -> list[str]:
    return [arg for path in paths for arg in ("--images", str(path))]


def _json(args: list[str]) -> dict:  # type: ignore[type-arg]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    loaded: dict = json.loads(result.stdout)  # type: ignore[type-arg]
    return loaded


def test_bench_group_keeps_its_options_and_lists_subcommands() -> None:
    result = runner.invoke(app, ["bench", "--help"])
    assert result.exit_code == 0, result.output
    for word in (
        "--image",
        "--runs",
        "--threads",
        "--decode",
        "--video-upload",
        "--video",
        "--deepfake-video",
    ):
        assert word in result.output
    for command in ("pipeline", "compare", "api", "index", "registry", "counting"):
        assert command in result.output


def test_bench_video_form_still_runs() -> None:
    video = shared_path("face_liveness_blink_video", "video.mp4")
    result = runner.invoke(app, ["bench", "--video", str(video), "--sample-fps", "1"])
    assert result.exit_code == 0, result.output
    (report,) = json.loads(result.stdout)
    assert report["file"] == "video.mp4" and report["sampled_frames"] > 0


def test_bench_pipeline_counts_every_face(models_env: Path, known_images: list[Path]) -> None:
    report = _json(["bench", "pipeline", *_image_options(known_images)])
    assert report["images"] == 4 and report["failed"] == {}
    assert report["faces_per_image"] == KNOWN_FACES
    assert report["faces"] == 4
    assert report["images_per_s"] > 0 and report["faces_per_s"] > 0 and report["total_s"] > 0
    stages = report["stages_ms_per_image"]
    assert {"decode", "detect", "landmarks", "quality", "align", "embed", "total"} <= set(stages)
    assert stages["decode"]["n"] == stages["detect"]["n"] == stages["total"]["n"] == 4
    assert stages["embed"]["n"] == 3  # nothing is embedded in the picture without a face
    for stage in stages.values():
        assert 0 <= stage["p50_ms"] <= stage["p95_ms"]
    assert stages["total"]["p50_ms"] >= stages["embed"]["p50_ms"] > 0
    assert report["model_load_s"] > 0 and report["peak_rss_mb"] > 0
    assert report["models"]["embedding"].startswith("dlib_resnet_v1@")


def test_bench_pipeline_runtime_dlib_uses_dlib(models_env: Path, known_images: list[Path]) -> None:
    report = _json(["bench", "pipeline", "--runtime", "dlib", *_image_options(known_images[:1])])
    assert report["runtime"]["embedder_class"] == "DlibResnetEmbedder"
    assert report["faces"] == 1


def test_bench_pipeline_refuses_an_unknown_runtime(known_images: list[Path]) -> None:
    result = runner.invoke(
        app, ["bench", "pipeline", "--runtime", "tensorflow", *_image_options(known_images)]
    )
    assert result.exit_code == 2 and "onnx or dlib" in result.output


def test_bench_compare_against_face_recognition(models_env: Path, known_images: list[Path]) -> None:
    report = _json(["bench", "compare", "--rounds", "2", *_image_options(known_images)])
    assert report["ratio_images_per_s"] > 0
    # Two alternating rounds, the ratio their median (of two: the mean).
    ratios = [r["ratio"] for r in report["rounds"]]
    assert len(ratios) == 2 and all(r > 0 for r in ratios)
    assert abs(report["ratio_images_per_s"] - sum(ratios) / 2) < 0.01
    theirs, ours = report["face_recognition"], report["ours"]
    assert theirs["faces_per_image"] == KNOWN_FACES == ours["faces_per_image"]
    assert report["faces_found"] == {"ours": 4, "face_recognition": 4}
    assert theirs["images"] == ours["images"] == 4
    assert theirs["images_per_s"] > 0 and ours["images_per_s"] > 0
    # Same ResNet: on the library's own boxes and landmarks our descriptor is the same one
    # (exactly with dlib, to float rounding with ONNX); our boxes differ a little.
    assert report["faces_matched"]["count"] == 4
    assert report["descriptor_cosine_same_landmarks"]["n"] == 4
    assert report["descriptor_cosine_same_landmarks"]["min"] >= 0.999
    assert report["descriptor_cosine_matched_faces"]["min"] >= 0.95


def test_bench_api_against_a_started_server(models_env: Path, known_images: list[Path]) -> None:
    with local_server() as server:
        report = _json(
            [
                "bench", "api", "--server", server.base_url, "--api-key", server.api_key,
                "--duration", "2", "--clients", "2", *_image_options(known_images[:2]),
            ]
        )  # fmt: skip
    assert report["images"] == ["Aaron_Sorkin_0001.jpg", "Abel_Pacheco_0001.jpg"]
    phases = report["phases"]
    assert [(p["endpoint"], p["clients"]) for p in phases] == [
        ("detect", 2),
        ("register", 2),
        ("identify", 2),
    ]
    for phase in phases:
        answered = sum(phase["status_codes"].values())
        assert phase["requests"] == answered + sum(phase["transport_errors"].values())
        assert phase["ok"] > 0 and phase["status_codes"].get("200", 0) == phase["ok"]
        assert phase["ok_per_s"] > 0
        latency = phase["latency_ok"]
        assert latency["n"] == phase["ok"] and latency["p50_ms"] <= latency["p95_ms"] <= latency["p99_ms"]
        assert phase["health"]["n"] > 0 and phase["health"]["failures"] == {}


def test_bench_api_needs_key_with_server() -> None:
    result = runner.invoke(app, ["bench", "api", "--server", "http://127.0.0.1:9"])
    assert result.exit_code == 2 and "--api-key" in result.output


def test_bench_index_runs_the_index_bench() -> None:
    pytest.importorskip("facesocial.evaluation.bench_index", reason="the index bench is not in this build")
    report = _json(["bench", "index", "--size", "2000", "--queries", "20", "--k", "5"])
    assert report["size"] == 2000 and report["queries"] == 20 and report["k"] == 5
    assert 0 < report["p50_ms"] <= report["p95_ms"]


def test_bench_registry_times_routing_and_recording() -> None:
    report = _json(["bench", "registry", "--resolves", "200", "--records", "10"])
    assert report["database"] == "sqlite"
    assert report["resolve_us"] > 0 and report["record_ms"] > 0 and report["snapshot_reload_ms"] > 0
