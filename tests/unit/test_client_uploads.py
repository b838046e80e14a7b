"""Every image input the SDK accepts becomes the bytes the server reads, pixel for pixel."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facesocial.client.uploads import image_part, video_part


def pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


@pytest.fixture
def rgb() -> np.ndarray:
    return np.random.default_rng(5).integers(0, 256, size=(24, 32, 3), dtype=np.uint8)


def test_paths_bytes_and_files_are_sent_unchanged(tmp_path: Path, rgb: np.ndarray) -> None:
    encoded = io.BytesIO()
    Image.fromarray(rgb).save(encoded, format="JPEG", quality=80)
    data = encoded.getvalue()
    path = tmp_path / "face.jpg"
    path.write_bytes(data)
    assert image_part(path) == ("face.jpg", data, "image/jpeg")
    assert image_part(str(path)) == ("face.jpg", data, "image/jpeg")
    assert image_part(data) == ("image.jpg", data, "image/jpeg")  # named from the magic bytes
    assert image_part(bytearray(data))[1] == data
    with path.open("rb") as stream:
        assert image_part(stream) == ("face.jpg", data, "image/jpeg")
    assert image_part(io.BytesIO(data))[1:] == (data, "image/jpeg")


def test_pil_and_numpy_are_encoded_losslessly_as_png(rgb: np.ndarray) -> None:
    name, data, content_type = image_part(Image.fromarray(rgb))
    assert (name, content_type) == ("image.png", "image/png")
    assert np.array_equal(pixels(data), rgb)
    assert np.array_equal(pixels(image_part(rgb)[1]), rgb)
    grey = rgb[:, :, 0]
    assert np.array_equal(pixels(image_part(grey)[1])[:, :, 1], grey)
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    assert np.array_equal(pixels(image_part(rgba)[1]), rgb)
    floats = rgb.astype(np.float32) / 255.0
    assert np.array_equal(pixels(image_part(floats)[1]), rgb)


def test_jpeg_encoding_when_asked() -> None:
    y, x = np.mgrid[0:48, 0:64]
    rgb = np.dstack([x * 4, y * 5, (x + y) * 2]).astype(np.uint8)  # smooth, as photos are
    name, data, content_type = image_part(rgb, "JPEG")
    assert (name, content_type) == ("image.jpg", "image/jpeg") and data[:3] == b"\xff\xd8\xff"
    assert np.abs(pixels(data).astype(int) - rgb.astype(int)).mean() < 3  # lossy, but the same image


def test_bad_inputs_are_refused_before_sending(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must be"):
        image_part(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ValueError, match=r"0\.\.255"):
        image_part(np.full((4, 4), 300, np.int32))
    with pytest.raises(ValueError, match="empty"):
        image_part(b"")
    with pytest.raises(TypeError, match="unsupported image input"):
        image_part(3.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="binary mode"):
        image_part(io.StringIO("text"))  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError):
        image_part(tmp_path / "absent.jpg")
    with pytest.raises(ValueError, match="empty"):
        video_part(b"")
    assert video_part(b"\x00\x00\x00\x18ftypmp42")[0] == "video.mp4"
