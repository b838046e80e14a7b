"""Every Pillow mode an accepted file can decode to becomes the right RGB, strip by strip."""

from __future__ import annotations

import io
import tracemalloc
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image

from facesocial.vision import image_pixels
from facesocial.vision.image import decode_image
from facesocial.vision.image_pixels import to_rgb_array


def save(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def reference_rgb(image: Image.Image) -> np.ndarray:
    """Whole-image conversion with Pillow: alpha composited onto white, then RGB."""
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
    return np.asarray(image.convert("RGB"))


def gradient(width: int = 37, height: int = 23) -> np.ndarray:
    x = np.linspace(0, 255, width)
    y = np.linspace(0, 255, height)[:, None]
    return np.stack([x + 0 * y, y + 0 * x, (x + y) / 2], axis=-1).astype(np.uint8)


def paletted_with_transparency() -> Image.Image:
    image = Image.fromarray(gradient()).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    image.info["transparency"] = 3
    return image


def rgb_with_transparent_colour() -> Image.Image:
    rgb = gradient()
    rgb[5:9, 5:9] = (0, 0, 0)
    image = Image.fromarray(rgb)
    image.info["transparency"] = (0, 0, 0)
    return image


def half_transparent() -> Image.Image:
    rgba = np.dstack([gradient(), np.tile(np.linspace(0, 255, 37), (23, 1)).astype(np.uint8)])
    return Image.fromarray(rgba)


# (id, the image as an accepted encoder writes it, format): decoding must equal Pillow's own
# whole-image conversion, with strips of 64 pixels so that many strip borders are crossed.
MODES: list[tuple[str, Callable[[], Image.Image], str]] = [
    ("RGB", lambda: Image.fromarray(gradient()), "PNG"),
    ("RGBA", half_transparent, "PNG"),
    ("LA", lambda: half_transparent().convert("LA"), "PNG"),
    ("L", lambda: Image.fromarray(gradient()).convert("L"), "PNG"),
    ("1", lambda: Image.fromarray(gradient()).convert("1"), "PNG"),
    ("P", lambda: Image.fromarray(gradient()).convert("P"), "PNG"),
    ("P+transparency", paletted_with_transparency, "PNG"),
    ("P+transparency-gif", paletted_with_transparency, "GIF"),
    ("RGB+tRNS", rgb_with_transparent_colour, "PNG"),
    ("CMYK-jpeg", lambda: Image.fromarray(gradient()).convert("CMYK"), "JPEG"),
    ("CMYK-tiff", lambda: Image.fromarray(gradient()).convert("CMYK"), "TIFF"),
    ("RGBA-tiff", half_transparent, "TIFF"),
    ("RGBA-webp", half_transparent, "WEBP"),
]


@pytest.mark.parametrize(("make", "fmt"), [(m, f) for _, m, f in MODES], ids=[i for i, _, _ in MODES])
def test_strip_conversion_equals_whole_image_conversion(
    make: Callable[[], Image.Image], fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = save(make(), fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    with Image.open(io.BytesIO(data)) as decoded:
        decoded.load()
        expected = reference_rgb(decoded)
    monkeypatch.setattr(image_pixels, "_STRIP_PIXELS", 64)
    rgb = decode_image(data).rgb
    assert rgb.shape == expected.shape
    # Pillow composites with its own rounding; ours is exact rounding of the same formula.
    assert int(np.abs(rgb.astype(int) - expected.astype(int)).max()) <= 1


def test_transparent_pixels_become_white_and_opaque_ones_keep_their_colour() -> None:
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[:, :10] = (10, 20, 30, 255)  # opaque left half
    rgb = decode_image(save(Image.fromarray(rgba), "PNG")).rgb
    assert (rgb[:, :10] == (10, 20, 30)).all()
    assert (rgb[:, 10:] == 255).all()


def columns(values: list[float], dtype: type | np.dtype) -> np.ndarray:
    """16x16 px: four bands of four columns, one value each."""
    return np.tile(np.repeat(np.array(values, dtype), 4), (16, 1))


HIGH_BIT: list[tuple[str, Callable[[], Image.Image], str, list[int]]] = [
    # 16-bit greyscale PNG: scaled to its peak, not clipped at 255 as Pillow's convert() does.
    ("I;16-png", lambda: Image.fromarray(columns([0, 250, 500, 1000], np.uint16)), "PNG", [0, 64, 128, 255]),
    (
        "I;16B-tiff",
        lambda: Image.frombytes("I;16B", (16, 16), columns([0, 250, 500, 1000], np.dtype(">u2")).tobytes()),
        "TIFF",
        [0, 64, 128, 255],
    ),
    # 32-bit signed: the range starts at the lowest value when that is negative.
    ("I-tiff", lambda: Image.fromarray(columns([-100, 0, 100, 155], np.int32)), "TIFF", [0, 100, 200, 255]),
    # Float: NaN is black; 0..1 covers the range.
    (
        "F-tiff",
        lambda: Image.fromarray(columns([0.0, 0.5, 1.0, np.nan], np.float32)),
        "TIFF",
        [0, 128, 255, 0],
    ),
]


@pytest.mark.parametrize(
    ("make", "fmt", "expected"), [(m, f, e) for _, m, f, e in HIGH_BIT], ids=[i for i, _, _, _ in HIGH_BIT]
)
def test_high_bit_depth_is_scaled_to_eight_bits(
    make: Callable[[], Image.Image], fmt: str, expected: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = save(make(), fmt)
    monkeypatch.setattr(image_pixels, "_STRIP_PIXELS", 32)  # two rows per strip: the range is global
    rgb = decode_image(data).rgb
    assert rgb.shape == (16, 16, 3)
    assert (rgb == rgb[..., :1]).all()  # grey in three equal channels
    assert rgb[7, ::4, 0].tolist() == expected


def test_sixteen_bit_png_makes_no_whole_image_float_copy() -> None:
    """The old path held float64 copies (8 bytes/px each); now only strips are widened."""
    values = (np.arange(4096 * 2048, dtype=np.uint32) % 60_000).astype(np.uint16).reshape(2048, 4096)
    data = save(Image.fromarray(values), "PNG")
    tracemalloc.start()
    try:
        rgb = decode_image(data).rgb
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert rgb.shape == (2048, 4096, 3)
    # The output (3 bytes/px) plus about one 4 Mpx strip; the old code peaked at 5.7x the output.
    assert peak < 3 * rgb.nbytes


def test_unconvertible_mode_is_a_value_error() -> None:
    image = Image.new("La", (4, 4))
    with pytest.raises(ValueError):
        to_rgb_array(image)
