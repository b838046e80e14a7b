"""Decode untrusted image bytes into an RGB array, with limits checked before decoding."""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps, UnidentifiedImageError

from facesocial import errors
from facesocial.settings import ImageLimits

SUPPORTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "BMP"})

# Pillow's own bomb check would fire with its own threshold; ours is applied explicitly below.
Image.MAX_IMAGE_PIXELS = None


@dataclass(frozen=True, slots=True)
class DecodedImage:
    """An upright RGB image and facts about the upload it came from."""

    rgb: npt.NDArray[np.uint8]  # H x W x 3, C-contiguous
    sha256: str
    format: str
    byte_size: int

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    def metadata(self) -> dict[str, object]:
        return {
            "width": self.width,
            "height": self.height,
            "format": self.format,
            "bytes": self.byte_size,
        }


def decode_image(data: bytes, limits: ImageLimits | None = None) -> DecodedImage:
    """Decode JPEG/PNG/WebP/BMP bytes to an upright RGB ``uint8`` array.

    Raises a distinct :class:`~facesocial.errors.FaceSocialError` for an empty upload, too
    many bytes, a header announcing too many pixels (decompression bomb), bytes that are no
    image, an unsupported format, and truncated or corrupt data.

    >>> decode_image(open("face.jpg", "rb").read()).rgb.shape  # doctest: +SKIP
    (480, 640, 3)
    """
    limits = limits or ImageLimits()
    if not data:
        raise errors.EmptyImageError()
    if len(data) > limits.max_image_bytes:
        raise errors.ImageTooLargeError(
            f"The image is {len(data)} bytes; the limit is {limits.max_image_bytes}",
            limit_bytes=limits.max_image_bytes,
        )
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as exc:
        raise errors.NotAnImageError() from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise errors.TruncatedImageError() from exc
    if image.format not in SUPPORTED_FORMATS:
        raise errors.UnsupportedMediaTypeError(
            f"Image format {image.format} is not supported (JPEG, PNG, WebP, BMP are)"
        )
    width, height = image.size
    # The header is all that has been read so far: refuse before allocating pixels.
    if width * height > limits.max_image_pixels:
        raise errors.DecompressionBombError(
            f"The image claims {width}x{height} pixels; the limit is {limits.max_image_pixels}",
            limit_pixels=limits.max_image_pixels,
        )
    if min(width, height) < limits.min_image_side:
        raise errors.ImageTooSmallError(
            f"The image is {width}x{height}; each side must be at least {limits.min_image_side}"
        )
    fmt = image.format
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image.load()
            upright = ImageOps.exif_transpose(image) or image
            rgb = np.asarray(_to_rgb(upright), dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise errors.TruncatedImageError() from exc
    return DecodedImage(
        rgb=np.ascontiguousarray(rgb),
        sha256=hashlib.sha256(data).hexdigest(),
        format=fmt,
        byte_size=len(data),
    )


def _to_rgb(image: Image.Image) -> Image.Image:
    """Flatten alpha onto white (a transparent PNG is usually a cut-out on a light page)."""
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode == "I;16" or image.mode == "I":
        # 16-bit greyscale: scale to 8 bits rather than clip.
        array = np.asarray(image, dtype=np.float64)
        peak = float(array.max()) or 1.0
        return Image.fromarray((array * (255.0 / peak)).astype(np.uint8)).convert("RGB")
    return image.convert("RGB")
