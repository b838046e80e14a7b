"""SkyGate's pure pieces: JSON cleaning, thumbnails, the methods subset of a request."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image

from facesocial import errors
from facesocial.domains.ai_detection import images
from facesocial.domains.ai_detection.service import _requested
from facesocial.domains.ai_detection.views import jsonable
from facesocial.forensics.ai_image import report


def test_jsonable_makes_numpy_and_non_finite_values_plain() -> None:
    value = {"a": np.float32(0.5), "b": [np.int64(3), math.nan, math.inf], "c": np.arange(2), 4: (True, None)}
    assert jsonable(value) == {"a": 0.5, "b": [3, None, None], "c": [0, 1], "4": [True, None]}


@pytest.mark.parametrize(("height", "width"), [(600, 1000), (1000, 300), (100, 120)])
def test_a_thumbnail_is_a_jpeg_of_at_most_256_px_with_the_aspect_kept(height: int, width: int) -> None:
    rgb = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)
    thumb = images.thumbnail(rgb)
    decoded = Image.open(io.BytesIO(thumb.data))
    assert decoded.format == "JPEG" and decoded.size == (thumb.width, thumb.height)
    assert max(decoded.size) == min(256, max(height, width))
    assert decoded.width / decoded.height == pytest.approx(width / height, rel=0.02)


def test_a_methods_subset_names_known_methods_only() -> None:
    assert _requested(None) is None
    assert _requested([" ela", "metadata ", ""]) == {report.ELA, report.METADATA}
    with pytest.raises(errors.ValidationFailedError):
        _requested(["ela", "astrology"])
    with pytest.raises(errors.ValidationFailedError):
        _requested(["", " "])
