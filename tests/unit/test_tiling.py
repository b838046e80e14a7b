"""Search planning and quarter-turn geometry (pure arithmetic, no models)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from facesocial.vision.detect_blazeface import BLAZEFACE_TILES
from facesocial.vision.rotation import (
    quarter_turns,
    roll_degrees,
    rotate_view,
    unrotate_boxes,
    unrotate_points,
    upright_transform,
)
from facesocial.vision.tiling import axis_starts, plan_search, target_face_size

SHAPES = [(512, 512), (640, 480), (1920, 1080), (4000, 3000), (6000, 4000), (8000, 4500), (9000, 3000)]
EXTREME = [(40000, 1000), (300, 8000), (12000, 3000)]


@pytest.mark.parametrize(("width", "height"), SHAPES + EXTREME)
def test_every_face_from_the_target_size_up_is_some_pass_s_job(width: int, height: int) -> None:
    g = BLAZEFACE_TILES
    target = target_face_size(width, height, 40, 0.02)
    plan = plan_search(width, height, target, g, 4_000_000)
    whole = g.side / max(width, height)
    # The finest level puts a target face at ≥ min_face pixels (unless capped by memory), and
    # consecutive passes cover adjacent face-size ranges without a gap.
    scales = [level.scale for level in plan.levels]
    if scales:
        capped = math.sqrt(4_000_000 / (width * height))
        assert scales[0] * target >= g.min_face - 1e-6 or scales[0] == pytest.approx(capped, rel=1e-3)
        for finer, coarser in zip(scales, [*scales[1:], whole], strict=True):
            assert g.min_face * g.ratio / finer >= g.min_face / coarser / 1.25 - 1e-6
    else:
        assert target * whole >= g.min_face / 1.25
    for level in plan.levels:
        assert level.pixels <= 4_000_000 * 1.01
        assert level.width == round(width * level.scale) and level.height == round(height * level.scale)


@pytest.mark.parametrize(
    ("length", "side", "overlap"), [(100, 192, 56), (192, 192, 56), (193, 192, 56), (1422, 192, 56)]
)
def test_tiles_cover_the_axis_with_the_overlap(length: int, side: int, overlap: int) -> None:
    starts = axis_starts(length, side, overlap)
    assert starts[0] == 0 and min(starts[-1] + side, length) == length
    for a, b in itertools.pairwise(starts):
        assert a + side - b >= overlap  # any span ≤ overlap lies wholly in one tile


def test_small_photos_need_only_the_whole_photo_pass() -> None:
    plan = plan_search(512, 512, 40.0, BLAZEFACE_TILES, 4_000_000)
    assert plan.levels == ()


@pytest.mark.parametrize("turns", [0, 1, 2, 3])
def test_points_map_back_from_a_quarter_turned_view(turns: int) -> None:
    image = np.zeros((30, 50, 3), np.uint8)
    image[7, 11] = 255  # the pixel spanning x 11..12, y 7..8
    view = rotate_view(image, turns)
    ys, xs = np.nonzero(view[..., 0])
    centre_in_view = np.array([[xs[0] + 0.5, ys[0] + 0.5]])
    assert unrotate_points(centre_in_view, turns, 50, 30)[0] == pytest.approx([11.5, 7.5])
    box = unrotate_boxes([[xs[0], ys[0], xs[0] + 1, ys[0] + 1]], turns, 50, 30)[0]
    assert box == pytest.approx([11, 7, 12, 8])


@pytest.mark.parametrize(("angle", "expected"), [(0, 0), (30, 30), (90, 90), (-90, -90), (180, 180)])
def test_roll_is_positive_clockwise_as_seen(angle: float, expected: float) -> None:
    # The subject's right eye is on the image's left; turning the face clockwise by θ on
    # screen (y down) moves the eye-to-eye vector (1, 0) to (cos θ, sin θ).
    theta = math.radians(angle)
    roll = float(roll_degrees([[0.0, 0.0]], [[math.cos(theta), math.sin(theta)]])[0])
    assert abs((roll - expected + 180) % 360 - 180) < 1e-4
    assert quarter_turns([roll])[0] == round(expected / 90) % 4


def test_upright_transform_turns_a_rolled_face_upright() -> None:
    # A face rolled +90° (turned clockwise): its right eye is above its left eye.
    right_eye, left_eye = np.array([100.0, 50.0]), np.array([100.0, 90.0])
    matrix = upright_transform((100.0, 70.0), 90.0, 2.0, 200)
    a, b = (matrix[:, :2] @ p + matrix[:, 2] for p in (right_eye, left_eye))
    assert a[1] == pytest.approx(b[1]) and b[0] - a[0] == pytest.approx(80.0)
