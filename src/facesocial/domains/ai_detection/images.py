"""The report's images: the thumbnail made here, the ELA and heatmap PNGs the analyzer returns.

They are kept as rows (``ai_detection.report_images``) and served at the URLs the report names
(``/api/v1/ai-detection/results/{id}/thumbnail.jpg``, ``ela.png``, ``heatmap.png``).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image

THUMBNAIL = "thumbnail"
ELA = "ela"
HEATMAP = "heatmap"
# Longest side of a thumbnail, px (document 003 keeps a thumbnail_path per upload).
THUMBNAIL_SIDE = 256
# JPEG quality of thumbnails: a preview, not evidence.
THUMBNAIL_QUALITY = 85
FILE_NAMES = {THUMBNAIL: "thumbnail.jpg", ELA: "ela.png", HEATMAP: "heatmap.png"}
MEDIA_TYPES = {THUMBNAIL: "image/jpeg", ELA: "image/png", HEATMAP: "image/png"}


@dataclass(frozen=True, slots=True)
class ReportImage:
    kind: str  # thumbnail | ela | heatmap
    media_type: str
    width: int
    height: int
    data: bytes


def thumbnail(rgb: npt.NDArray[np.uint8]) -> ReportImage:
    """A JPEG of ``rgb`` (H, W, 3 uint8) whose longest side is at most 256 px, aspect kept."""
    image = Image.fromarray(np.ascontiguousarray(rgb))
    image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=THUMBNAIL_QUALITY, optimize=True)
    return ReportImage(THUMBNAIL, MEDIA_TYPES[THUMBNAIL], image.width, image.height, buffer.getvalue())


def from_png(kind: str, data: bytes | None) -> ReportImage | None:
    """The analyzer's PNG (ELA or heatmap) with its size read from the header; None when absent."""
    if not data:
        return None
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
    return ReportImage(kind, MEDIA_TYPES[kind], width, height, data)


def url(result_id: str, kind: str) -> str:
    return f"/api/v1/ai-detection/results/{result_id}/{FILE_NAMES[kind]}"
