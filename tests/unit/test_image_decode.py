"""Decoding untrusted bytes: each kind of bad input has its own error."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from facesocial import errors
from facesocial.settings import ImageLimits
from facesocial.vision.image import decode_image
from tests.conftest import encode


def png_claiming(width: int, height: int) -> bytes:
    """A valid PNG header announcing huge dimensions, with almost no pixel data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 10))
        + chunk(b"IEND", b"")
    )


def small_rgb() -> np.ndarray:
    return (np.arange(64 * 48 * 3) % 251).astype(np.uint8).reshape(48, 64, 3)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"", errors.EmptyImageError),
        (b"this is a text file, not a picture\n" * 3, errors.NotAnImageError),
        (png_claiming(30000, 30000), errors.DecompressionBombError),
        (encode(small_rgb(), "JPEG")[:300], errors.TruncatedImageError),
        (encode(small_rgb(), "GIF"), errors.UnsupportedMediaTypeError),
        (encode(small_rgb()[:8, :8], "PNG"), errors.ImageTooSmallError),
    ],
    ids=["empty", "text", "png-30000x30000", "truncated-jpeg", "gif", "8x8"],
)
def test_bad_input_has_its_own_error(payload: bytes, expected: type[errors.FaceSocialError]) -> None:
    with pytest.raises(expected) as caught:
        decode_image(payload)
    assert 400 <= caught.value.status < 500
    assert caught.value.code == expected.code


def test_byte_limit_is_checked_before_decoding() -> None:
    data = encode(small_rgb(), "PNG")
    with pytest.raises(errors.ImageTooLargeError):
        decode_image(data, ImageLimits(max_image_bytes=len(data) - 1))


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP"])
def test_supported_formats_decode_to_rgb(fmt: str) -> None:
    image = decode_image(encode(small_rgb(), fmt))
    assert image.rgb.shape == (48, 64, 3)
    assert image.rgb.dtype == np.uint8
    assert image.format == fmt
    assert len(image.sha256) == 64


def test_exif_orientation_is_applied() -> None:
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    Image.fromarray(small_rgb()).save(buffer, format="JPEG", exif=exif)
    image = decode_image(buffer.getvalue())
    assert (image.width, image.height) == (48, 64)


def test_alpha_is_flattened_onto_white() -> None:
    rgba = np.zeros((32, 32, 4), np.uint8)  # fully transparent black
    image = decode_image(encode(rgba, "PNG"))
    assert image.rgb.shape == (32, 32, 3)
    assert int(image.rgb.min()) == 255


def test_greyscale_becomes_three_channels() -> None:
    grey = np.full((32, 32), 77, np.uint8)
    image = decode_image(encode(grey, "PNG"))
    assert image.rgb.shape == (32, 32, 3)
    assert int(image.rgb[0, 0, 1]) == 77
