"""A decoded Pillow image of any mode -> an upright RGB ``uint8`` array, in bounded memory.

Pillow keeps RGB at 4 bytes per pixel; converting a whole image (``convert``, ``np.asarray``,
``ImageOps.exif_transpose``) makes further full-size copies. Here the output array is allocated
once (3 bytes per pixel) and filled strip by strip, so decoding peaks at about the Pillow image
plus the output (~7 bytes per pixel for RGB), never whole-image float copies.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

RgbArray = npt.NDArray[np.uint8]
_StripConverter = Callable[[Image.Image], npt.NDArray[np.uint8]]

# ~1 Mpx per strip: a few MB of temporaries whatever the image size; 40 strips at 40 Mpx.
_STRIP_PIXELS = 1 << 20
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "PA"})
_EXIF_ORIENTATION = 0x0112

# EXIF orientation -> the numpy view that shows the stored pixels upright; the same
# transposes as Pillow's ImageOps.exif_transpose (checked against it in the unit tests).
_ORIENT: dict[int, Callable[[RgbArray], RgbArray]] = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    8: lambda a: np.rot90(a, 1),
}


def exif_orientation(image: Image.Image) -> int:
    """EXIF (or XMP) orientation 1..8 of a loaded image; 1 when absent, invalid or unreadable.

    Pillow reads it from JPEG/MPO APP1, PNG eXIf, WebP EXIF, TIFF tag 274 and AVIF (irot/imir
    reported as orientation). pillow-heif has already applied HEIF's transforms and reports 1.
    """
    try:
        value = image.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:
        # A malformed EXIF block should not cost the user the photo: show it as stored.
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def to_rgb_array(image: Image.Image) -> RgbArray:
    """Convert a loaded image of any Pillow mode to an ``H x W x 3`` ``uint8`` array.

    Alpha (RGBA, LA, PA, P or L/RGB with a transparent colour) is flattened onto white: a
    transparent PNG is usually a cut-out on a light page. 16/32-bit integer and float images
    are scaled linearly from ``min(0, lowest)`` .. highest to 0..255 (scaled to the peak, not
    clipped at 255); NaN becomes black.

    Raises:
        ValueError: a mode Pillow cannot convert to RGB (e.g. LAB).
    """
    width, height = image.size
    rows = max(1, _STRIP_PIXELS // max(width, 1))
    convert = _strip_converter(image, rows)
    out = np.empty((height, width, 3), np.uint8)
    for top in range(0, height, rows):
        bottom = min(height, top + rows)
        out[top:bottom] = convert(image.crop((0, top, width, bottom)))
    return out


def upright(rgb: RgbArray, orientation: int) -> RgbArray:
    """Apply an EXIF orientation; returns a C-contiguous array (a copy unless orientation 1)."""
    transform = _ORIENT.get(orientation)
    return np.ascontiguousarray(rgb if transform is None else transform(rgb))


def downscale(rgb: RgbArray, max_side: int) -> RgbArray:
    """Shrink by area averaging so the longest side is ``max_side`` px; unchanged if it fits."""
    height, width = rgb.shape[:2]
    if max(height, width) <= max_side:
        return rgb
    if width >= height:
        size = (max_side, max(1, round(height * max_side / width)))
    else:
        size = (max(1, round(width * max_side / height)), max_side)
    return np.asarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)


def _strip_converter(image: Image.Image, rows: int) -> _StripConverter:
    mode = image.mode
    if mode == "RGB" and "transparency" not in image.info:
        return np.asarray
    if mode == "F" or mode.startswith("I"):
        low, high = _value_range(image, rows)
        return lambda strip: _scaled_grey(strip, low, high)
    if mode in _ALPHA_MODES or "transparency" in image.info:
        return _flattened
    return lambda strip: np.asarray(strip.convert("RGB"))


def _flattened(strip: Image.Image) -> npt.NDArray[np.uint8]:
    # Pillow's compositing in C: about twice as fast as the same integer formula in numpy.
    white = Image.new("RGBA", strip.size, (255, 255, 255, 255))
    return np.asarray(Image.alpha_composite(white, strip.convert("RGBA")).convert("RGB"))


def _value_range(image: Image.Image, rows: int) -> tuple[float, float]:
    """(min(0, lowest), highest) over the finite values, one strip at a time."""
    width, height = image.size
    low, high = 0.0, 0.0
    for top in range(0, height, rows):
        values = np.asarray(image.crop((0, top, width, min(height, top + rows))))
        if values.dtype.kind == "f":
            values = values[np.isfinite(values)]
        if values.size:
            low = min(low, float(values.min()))
            high = max(high, float(values.max()))
    return low, high


def _scaled_grey(strip: Image.Image, low: float, high: float) -> npt.NDArray[np.uint8]:
    values = np.array(strip, dtype=np.float32)  # a writeable copy of one strip; then in place
    scale = 255.0 / (high - low) if high > low else 0.0
    values -= np.float32(low)
    values *= np.float32(scale)
    np.nan_to_num(values, copy=False, nan=0.0, posinf=255.0, neginf=0.0)
    np.rint(values, out=values)
    np.clip(values, 0, 255, out=values)
    return values.astype(np.uint8)[..., None]  # broadcast to the three channels on assignment
