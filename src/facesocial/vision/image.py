"""Decode untrusted image bytes into an upright RGB array, with limits checked before decoding.

Order of checks: bytes (empty, too many) -> format (from the header) -> dimensions from the
header (pixels, longest side, aspect ratio, shortest side) -> decode -> the same dimension
checks on what was actually decoded (a header may lie) -> RGB conversion in bounded memory
(vision/image_pixels.py) -> optional downsampling (``limits.max_decode_side``) -> EXIF
orientation.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import ImageFile

from facesocial import errors
from facesocial.settings import ImageLimits
from facesocial.vision.image_formats import ACCEPTED_FORMATS, DECODER_FAILURES, open_header
from facesocial.vision.image_pixels import downscale, exif_orientation, to_rgb_array, upright

SUPPORTED_FORMATS = frozenset(ACCEPTED_FORMATS)
# Formats whose decoder can scale down in the DCT (1/2, 1/4, 1/8) before allocating pixels.
_DRAFT_FORMATS = frozenset({"JPEG", "MPO"})


@dataclass(frozen=True, slots=True)
class ImageHeader:
    """What an upload's header says, before any pixel is decoded.

    ``format`` is Pillow's name (JPEG, MPO, PNG, WEBP, BMP, HEIF, AVIF, GIF, TIFF); ``width``
    and ``height`` are in px as stored, i.e. before EXIF orientation (HEIF reports its size
    after its own irot transform).
    """

    format: str
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


@dataclass(frozen=True, slots=True)
class DecodedImage:
    """An upright RGB image and facts about the upload it came from."""

    rgb: npt.NDArray[np.uint8]  # H x W x 3, C-contiguous, writeable
    sha256: str
    format: str
    byte_size: int
    # Decoded px per source px: 1.0 unless limits.max_decode_side downsampled the image.
    scale: float = 1.0

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    def metadata(self) -> dict[str, object]:
        meta: dict[str, object] = {
            "width": self.width,
            "height": self.height,
            "format": self.format,
            "bytes": self.byte_size,
        }
        if self.scale != 1.0:
            meta["scale"] = self.scale
        return meta


def probe_image(data: bytes, limits: ImageLimits | None = None) -> ImageHeader:
    """Read only the header of ``data`` and apply every check that needs no pixels.

    Use it to weigh an upload (e.g. for :class:`~facesocial.vision.decode_gate.DecodeGate`)
    before decoding it.

    Raises:
        EmptyImageError (400), ImageTooLargeError (413): no bytes / more than max_image_bytes.
        NotAnImageError (415): no decoder recognises the bytes.
        UnsupportedMediaTypeError (415): a format that is not accepted; the message names it.
        TruncatedImageError (422): an accepted format whose header is truncated or corrupt.
        DecompressionBombError (413): more than max_image_pixels.
        ImageDimensionsUnsupportedError (422): longest side over max_image_side, or longest /
            shortest side over max_aspect_ratio.
        ImageTooSmallError (422): a side under min_image_side.

    >>> probe_image(open("face.jpg", "rb").read())  # doctest: +SKIP
    ImageHeader(format='JPEG', width=640, height=480)
    """
    limits = limits or ImageLimits()
    with _open_checked(data, limits) as image:
        return ImageHeader(str(image.format), image.width, image.height)


def decode_image(data: bytes, limits: ImageLimits | None = None) -> DecodedImage:
    """Decode an accepted image to an upright RGB ``uint8`` array.

    Accepted: JPEG, PNG, WebP, BMP, HEIC/HEIF, AVIF, MPO (its primary JPEG frame), GIF and
    TIFF (first frame or page; also the first frame of animated WebP/AVIF/PNG). EXIF
    orientation is applied for every format that carries it. Peak memory is about 7 bytes per
    decoded pixel (the decoder's image plus the RGB output), e.g. ~280 MB at 40 Mpx.

    Raises everything :func:`probe_image` raises, and:
        TruncatedImageError (422): the pixel data is truncated or corrupt.
        DecompressionBombError / ImageDimensionsUnsupportedError: the decoded size (which a
            lying header may not have announced) breaks the limits.
        UnsupportedMediaTypeError (415): a colour mode that cannot become RGB (e.g. LAB TIFF).

    >>> decode_image(open("face.jpg", "rb").read()).rgb.shape  # doctest: +SKIP
    (480, 640, 3)
    """
    limits = limits or ImageLimits()
    with _open_checked(data, limits) as image:
        fmt = str(image.format)
        source_side = max(image.size)
        try:
            _draft(image, limits.max_decode_side)
            image.load()
        except DECODER_FAILURES as exc:
            raise errors.TruncatedImageError() from exc
        # The decoder may produce another size than the header announced (HEIF may; a draft
        # does by design): the limits hold for what was actually allocated too.
        check_dimensions(image.width, image.height, limits)
        orientation = exif_orientation(image)
        try:
            rgb = to_rgb_array(image)
        except ValueError as exc:
            raise errors.UnsupportedMediaTypeError(
                f"The {fmt} image's colour mode {image.mode} cannot be converted to RGB"
            ) from exc
    # The Pillow image is closed (its pixels freed) before the copies below.
    rgb = upright(downscale(rgb, limits.max_decode_side), orientation)
    return DecodedImage(
        rgb=rgb,
        sha256=hashlib.sha256(data).hexdigest(),
        format=fmt,
        byte_size=len(data),
        scale=max(rgb.shape[:2]) / source_side,
    )


def check_dimensions(width: int, height: int, limits: ImageLimits) -> None:
    """Refuse a ``width`` x ``height`` px image that breaks the limits (see probe_image)."""
    if width * height > limits.max_image_pixels:
        raise errors.DecompressionBombError(
            f"The image claims {width}x{height} pixels; the limit is {limits.max_image_pixels}",
            limit_pixels=limits.max_image_pixels,
        )
    longest, shortest = max(width, height), min(width, height)
    if longest > limits.max_image_side:
        raise errors.ImageDimensionsUnsupportedError(
            f"The image is {width}x{height}; the longest side may be at most {limits.max_image_side} px",
            width=width,
            height=height,
            max_image_side=limits.max_image_side,
        )
    if longest > limits.max_aspect_ratio * max(shortest, 1):
        raise errors.ImageDimensionsUnsupportedError(
            f"The image is {width}x{height} (aspect ratio {longest / max(shortest, 1):.1f}:1); "
            f"the limit is {limits.max_aspect_ratio:g}:1",
            width=width,
            height=height,
            max_aspect_ratio=limits.max_aspect_ratio,
        )
    if shortest < limits.min_image_side:
        raise errors.ImageTooSmallError(
            f"The image is {width}x{height}; each side must be at least {limits.min_image_side}"
        )


def _open_checked(data: bytes, limits: ImageLimits) -> ImageFile.ImageFile:
    if not data:
        raise errors.EmptyImageError()
    if len(data) > limits.max_image_bytes:
        raise errors.ImageTooLargeError(
            f"The image is {len(data)} bytes; the limit is {limits.max_image_bytes}",
            limit_bytes=limits.max_image_bytes,
        )
    image = open_header(data)
    try:
        check_dimensions(image.width, image.height, limits)
    except errors.FaceSocialError:
        image.close()
        raise
    return image


def _draft(image: ImageFile.ImageFile, max_side: int) -> None:
    """Let a JPEG decode at 1/2, 1/4 or 1/8 scale when even that stays >= ``max_side``."""
    width, height = image.size
    longest = max(width, height)
    if image.format not in _DRAFT_FORMATS or longest <= max_side:
        return
    # draft() picks the strongest reduction that keeps at least the requested size.
    shrink = max_side / longest
    image.draft(None, (math.ceil(width * shrink), math.ceil(height * shrink)))
