"""Which image formats an upload may use, and opening one by its header alone.

Only the decoders of accepted formats ever see an upload's pixels: Pillow is asked to open
with those plugins only, so e.g. EPS (which would run Ghostscript on load) or PSD are never
decoded. Other formats are opened (header parse, never ``load()``) just to name them in the
UNSUPPORTED_MEDIA_TYPE message.
"""

from __future__ import annotations

import functools
import io
import struct
from collections.abc import Iterable

import pillow_heif
from PIL import Image, ImageFile, UnidentifiedImageError

from facesocial import errors

# Pillow format name -> the name clients know. MPO (a phone's JPEG with a depth or stereo
# frame appended) is produced by the JPEG opener, so it is no opener of its own.
ACCEPTED_FORMATS: dict[str, str] = {
    "JPEG": "JPEG",
    "MPO": "MPO",
    "PNG": "PNG",
    "WEBP": "WebP",
    "BMP": "BMP",
    "HEIF": "HEIC/HEIF",
    "AVIF": "AVIF",
    "GIF": "GIF",
    "TIFF": "TIFF",
}
# AVIF before HEIF: both claim files branded "mif1"; Pillow's AVIF opener raises SyntaxError
# (Pillow moves on) for a HEVC file, while the HEIF opener would accept an AV1 file it cannot
# decode (libheif here has no AV1 decoder).
_OPENERS = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF", "AVIF", "HEIF")
_PREFIX_BYTES = 16  # what Pillow's accept() functions look at
# Pillow plugins whose opener already decodes pixels (found by reading Pillow 13's plugins).
_DECODE_ON_OPEN = frozenset({"ICO"})

# What Pillow and its plugins raise on malformed data, while parsing a header or decoding.
DECODER_FAILURES: tuple[type[BaseException], ...] = (
    OSError,
    ValueError,
    SyntaxError,
    EOFError,
    RuntimeError,
    struct.error,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
)


def supported_list() -> str:
    """``"JPEG, MPO, PNG, ..."``: the accepted formats as named in error messages."""
    return ", ".join(ACCEPTED_FORMATS.values())


@functools.cache
def register_plugins() -> None:
    """Register the HEIF opener with Pillow once per process (idempotent, cached).

    Pillow's plugin registry is process-wide; this is the one place that changes it.
    pillow-heif applies HEIF's irot/imir transforms while decoding and resets the EXIF
    orientation to 1, so callers may apply EXIF orientation to every format without
    rotating a HEIC twice. AVIF is Pillow's own plugin (it reports irot/imir as EXIF
    orientation and leaves the pixels as stored).
    """
    Image.init()
    # Thumbnails, depth and auxiliary images are never used: do not even index them.
    pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)
    # Pillow's own decompression-bomb guard (warn > 89 Mpx, refuse > 179 Mpx) would override
    # ImageLimits.max_image_pixels; the limits are checked explicitly from the header instead.
    Image.MAX_IMAGE_PIXELS = None


def open_header(data: bytes) -> ImageFile.ImageFile:
    """Open ``data`` with the accepted formats' plugins; nothing is decoded yet.

    The returned image's ``format`` is a key of :data:`ACCEPTED_FORMATS`; the caller closes it.

    Raises:
        NotAnImageError: no Pillow plugin recognises the bytes.
        UnsupportedMediaTypeError: an image in a format that is not accepted (named).
        TruncatedImageError: the bytes start like an accepted format, but its header is
            truncated or corrupt.
    """
    register_plugins()
    try:
        image = Image.open(io.BytesIO(data), formats=_OPENERS)
    except UnidentifiedImageError:
        pass  # not an accepted format, or one whose header would not parse: tell them apart
    except DECODER_FAILURES as exc:
        raise errors.TruncatedImageError() from exc
    else:
        if image.format in ACCEPTED_FORMATS:
            return image
        fmt = image.format  # unreachable with the openers above; kept as a guard
        image.close()
        raise _unsupported(str(fmt))
    claimed = _claimed_format(data[:_PREFIX_BYTES])
    if claimed is not None:
        raise errors.TruncatedImageError(
            f"The data starts as {ACCEPTED_FORMATS[claimed]} but its header is truncated or corrupt"
        )
    other = _other_format(data)
    if other is not None:
        raise _unsupported(other)
    raise errors.NotAnImageError()


def _unsupported(fmt: str) -> errors.FaceSocialError:
    return errors.UnsupportedMediaTypeError(
        f"Image format {fmt} is not supported; supported formats: {supported_list()}", format=fmt
    )


def _claimed_format(prefix: bytes) -> str | None:
    """The accepted format whose magic bytes ``prefix`` carries, if any."""
    return _first_accepting(_OPENERS, prefix)


def _first_accepting(formats: Iterable[str], prefix: bytes) -> str | None:
    for fmt in formats:
        accept = Image.OPEN[fmt][1]
        try:
            if accept is not None and accept(prefix) is True:
                return fmt
        except Exception:
            # A plugin's magic-number test failing on odd bytes just means "not this format".
            continue
    return None


def _other_format(data: bytes) -> str | None:
    """Name the format of an image we refuse, from its header (Pillow's openers never decode,
    except ICO's, which decodes inside ``Image.open``: ICO is named by its magic number alone)."""
    others = [fmt for fmt in Image.ID if fmt not in _OPENERS and fmt not in _DECODE_ON_OPEN]
    try:
        with Image.open(io.BytesIO(data), formats=others) as image:
            return str(image.format)
    except Exception:
        # Any failure of a plugin we will not use anyway just means "not an image we know".
        return _first_accepting(sorted(_DECODE_ON_OPEN), data[:_PREFIX_BYTES])
