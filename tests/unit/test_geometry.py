from __future__ import annotations

import numpy as np
import pytest

from facesocial.vision.geometry import clip_boxes, iou_matrix, l2_normalise, xyxy_to_xywh


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ([0, 0, 10, 10], [0, 0, 10, 10], 1.0),
        ([0, 0, 10, 10], [10, 10, 20, 20], 0.0),
        ([0, 0, 10, 10], [5, 0, 15, 10], 50 / 150),
        ([0, 0, 10, 10], [2, 2, 8, 8], 36 / 100),
    ],
)
def test_iou(a: list[float], b: list[float], expected: float) -> None:
    assert iou_matrix([a], [b])[0, 0] == pytest.approx(expected)


def test_iou_matrix_shape_and_empty() -> None:
    assert iou_matrix(np.zeros((3, 4)), np.zeros((2, 4))).shape == (3, 2)
    assert iou_matrix(np.zeros((0, 4)), np.ones((2, 4))).shape == (0, 2)


def test_l2_normalise_keeps_zero_rows() -> None:
    out = l2_normalise([[3.0, 4.0], [0.0, 0.0]])
    assert out.dtype == np.float32
    assert out[0].tolist() == pytest.approx([0.6, 0.8])
    assert out[1].tolist() == [0.0, 0.0]


def test_xywh_and_clip() -> None:
    assert xyxy_to_xywh([10.4, 20.6, 30.4, 50.6]) == (10, 21, 20, 30)
    clipped = clip_boxes(np.array([[-5, -5, 120, 90]], np.float32), 100, 80)
    assert clipped.tolist() == [[0, 0, 100, 80]]
