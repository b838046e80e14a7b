"""Images and videos as the SDK accepts them, turned into multipart file parts.

Every input is read into memory once, so a retried request sends the same bytes again (a file
object cannot be rewound reliably: a pipe or socket has no ``seek``).

Accepted ``ImageInput``:

* ``str`` / ``os.PathLike``: a file path, sent as is (the server reads JPEG, PNG, WebP, BMP,
  HEIC/HEIF, AVIF, MPO, GIF, TIFF — docs/api.md);
* ``bytes`` / ``bytearray`` / ``memoryview``: the encoded file, sent as is;
* a binary file object (``read()`` returning bytes), read from its current position;
* a ``PIL.Image.Image``: encoded by Pillow, PNG (lossless) by default, or JPEG (quality 95);
* a ``numpy.ndarray``: ``uint8`` (or ``bool``/float in 0..1, scaled to 0..255) of shape
  ``(H, W)`` grey, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA — channel order RGB as Pillow and
  ``imageio`` read images, *not* OpenCV's BGR (pass ``array[..., ::-1]`` for an OpenCV image) —
  encoded by Pillow like an image.

A video (``VideoInput``) is a path, bytes or a binary file object.
"""

from __future__ import annotations

import io
import mimetypes
import os
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, TypeAlias, cast

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    ImageInput: TypeAlias = (
        str
        | os.PathLike[str]
        | bytes
        | bytearray
        | memoryview
        | IO[bytes]
        | Image.Image
        | np.ndarray[Any, Any]
    )
else:
    ImageInput: TypeAlias = Any

VideoInput: TypeAlias = str | os.PathLike[str] | bytes | bytearray | memoryview | IO[bytes]
ImageFormat = Literal["PNG", "JPEG"]
FilePart: TypeAlias = tuple[str, bytes, str]  # (filename, content, content type), as httpx takes it

_SNIFF: tuple[tuple[bytes, str, str], ...] = (
    (b"\xff\xd8\xff", "image.jpg", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image.png", "image/png"),
    (b"GIF8", "image.gif", "image/gif"),
    (b"BM", "image.bmp", "image/bmp"),
)


def _named(data: bytes, default_name: str, default_type: str) -> FilePart:
    """A part for raw bytes: a name and type from the magic bytes when known (the server sniffs
    the content itself; the name only makes logs readable)."""
    for magic, name, content_type in _SNIFF:
        if data.startswith(magic):
            return name, data, content_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image.webp", data, "image/webp"
    return default_name, data, default_type


def _from_path(path: str | os.PathLike[str]) -> FilePart:
    file = Path(path)
    content_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    return file.name, file.read_bytes(), content_type


def _read(stream: IO[bytes]) -> bytes:
    data = stream.read()
    if not isinstance(data, bytes | bytearray):
        raise TypeError("file objects must be opened in binary mode ('rb')")
    return bytes(data)


def encode_pil(image: Image.Image, fmt: ImageFormat = "PNG") -> FilePart:
    """A Pillow image encoded as PNG or JPEG (quality 95; modes other than RGB/L become RGB)."""
    buffer = io.BytesIO()
    if fmt == "JPEG":
        if image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        image.save(buffer, format="JPEG", quality=95)
        return "image.jpg", buffer.getvalue(), "image/jpeg"
    if image.mode not in ("RGB", "RGBA", "L", "LA", "P", "1", "I;16"):
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    image.save(buffer, format="PNG")
    return "image.png", buffer.getvalue(), "image/png"


def encode_array(array: np.ndarray[Any, Any], fmt: ImageFormat = "PNG") -> FilePart:
    """A NumPy image (see the module docstring for shapes and dtypes) encoded by Pillow.

    Raises ``ValueError`` for another shape (e.g. ``(H, W, 2)`` or 4-D batches).
    """
    import numpy as np
    from PIL import Image

    pixels = np.asarray(array)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    if not (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] in (3, 4))):
        raise ValueError(f"an image array must be (H, W), (H, W, 3) or (H, W, 4), not {pixels.shape}")
    if pixels.dtype == np.bool_:
        pixels = pixels.astype(np.uint8) * 255
    elif np.issubdtype(pixels.dtype, np.floating):
        pixels = (np.clip(pixels, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    elif pixels.dtype != np.uint8:
        if pixels.min(initial=0) < 0 or pixels.max(initial=0) > 255:
            raise ValueError(f"integer image values must be within 0..255 (dtype {pixels.dtype})")
        pixels = pixels.astype(np.uint8)
    return encode_pil(Image.fromarray(np.ascontiguousarray(pixels)), fmt)


def image_part(image: ImageInput, fmt: ImageFormat = "PNG") -> FilePart:
    """The multipart part of one image input; ``fmt`` is used only when the SDK encodes.

    Raises ``TypeError`` for an unsupported type, ``FileNotFoundError`` for a missing path,
    ``ValueError`` for an empty input or a malformed array.
    """
    part: FilePart
    if isinstance(image, str | os.PathLike):
        part = _from_path(image)
    elif isinstance(image, bytes | bytearray | memoryview):
        part = _named(bytes(image), "image", "application/octet-stream")
    elif hasattr(image, "read"):
        part = _named(_read(cast("IO[bytes]", image)), "image", "application/octet-stream")
        name = getattr(image, "name", None)  # an int for os.fdopen files
        if isinstance(name, str) and name:
            part = (os.path.basename(name), part[1], mimetypes.guess_type(name)[0] or part[2])
    else:
        part = _encoded(image, fmt)
    if not part[1]:
        raise ValueError("the image is empty")
    return part


def _encoded(image: Any, fmt: ImageFormat) -> FilePart:
    """PIL and NumPy inputs, imported lazily: neither is needed for path/bytes uploads."""
    from PIL import Image

    if isinstance(image, Image.Image):
        return encode_pil(image, fmt)
    import numpy as np

    if isinstance(image, np.ndarray):
        return encode_array(image, fmt)
    raise TypeError(
        f"unsupported image input {type(image).__name__}: pass a path, bytes, a binary file, "
        "a PIL.Image.Image or a numpy array"
    )


def video_part(video: VideoInput) -> FilePart:
    """The multipart part of a video (path, bytes or binary file); raises like ``image_part``."""
    if isinstance(video, str | os.PathLike):
        name, data, content_type = _from_path(video)
    elif isinstance(video, bytes | bytearray | memoryview):
        name, data, content_type = "video.mp4", bytes(video), "application/octet-stream"
    elif hasattr(video, "read"):
        raw_name = getattr(video, "name", None)
        name = os.path.basename(raw_name) if isinstance(raw_name, str) and raw_name else "video"
        data = _read(video)
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    else:
        raise TypeError(
            f"unsupported video input {type(video).__name__}: pass a path, bytes or a binary file"
        )
    if not data:
        raise ValueError("the video is empty")
    return name, data, content_type
