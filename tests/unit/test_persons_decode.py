"""Person-detector decoders, input fitting and the detection metrics, on synthetic outputs.

The real models on real frames: tests/model/test_persons.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facesocial import errors
from facesocial.evaluation.persons import FrameTruth, match_frame, read_mot_gt, summarise
from facesocial.models.runtime import ModelCache
from facesocial.vision.persons import PersonBoxes, fit_square, load_person_detector
from facesocial.vision.persons_decode import (
    NANODET_BINS,
    decode_centernet,
    decode_nanodet_level,
    person_nms,
    to_source_pixels,
)


def _bin_logits(distances_in_strides: tuple[int, int, int, int]) -> np.ndarray:
    """44 logits whose softmax puts (almost) all mass on the given bin of each side."""
    logits = np.full((4, NANODET_BINS), -30.0, dtype=np.float32)
    for side, k in enumerate(distances_in_strides):
        logits[side, k] = 30.0
    return logits.reshape(-1)


def test_nanodet_level_decodes_a_box_around_the_cell_centre() -> None:
    stride, size = 16, 416
    side = size // stride  # 26
    cells = side * side
    scores = np.zeros((cells, 80), np.float32)
    regression = np.zeros((cells, 44), np.float32)
    row, col = 5, 7
    cell = row * side + col
    scores[cell, 0] = 0.9
    scores[cell + 1, 3] = 0.95  # a car: never a person
    regression[cell] = _bin_logits((1, 2, 3, 4))
    boxes, kept = decode_nanodet_level(scores, regression, stride, size, 0.3)
    cx, cy = (col + 0.5) * stride, (row + 0.5) * stride
    np.testing.assert_allclose(boxes, [[cx - 16, cy - 32, cx + 48, cy + 64]], atol=1e-3)
    np.testing.assert_allclose(kept, [0.9])


def test_nanodet_distance_is_the_expectation_over_bins() -> None:
    stride, size = 32, 416
    cells = (size // stride) ** 2
    scores = np.zeros((cells, 80), np.float32)
    scores[0, 0] = 0.5
    regression = np.full((cells, 44), -30.0, np.float32)
    regression[0].reshape(4, NANODET_BINS)[:, 2:4] = 30.0  # half on bin 2, half on bin 3 → 2.5
    boxes, _ = decode_nanodet_level(scores, regression, stride, size, 0.1)
    np.testing.assert_allclose(boxes[0], [16 - 80, 16 - 80, 16 + 80, 16 + 80], atol=1e-3)


def test_nanodet_level_below_threshold_and_bad_shapes() -> None:
    cells = 52 * 52
    boxes, scores = decode_nanodet_level(
        np.full((cells, 80), 0.2, np.float32), np.zeros((cells, 44), np.float32), 8, 416, 0.3
    )
    assert boxes.shape == (0, 4) and scores.shape == (0,)
    with pytest.raises(ValueError, match="stride 8"):
        decode_nanodet_level(np.zeros((676, 80), np.float32), np.zeros((676, 44), np.float32), 8, 416, 0.3)


def test_centernet_keeps_local_maxima_of_the_person_channel() -> None:
    heatmap = np.zeros((128, 128, 80), np.float32)
    sizes = np.zeros((128, 128, 4), np.float32)
    heatmap[40, 30, 0] = 0.8
    heatmap[40, 31, 0] = 0.6  # a shoulder of the same peak: not a maximum
    heatmap[90, 100, 0] = 0.5
    heatmap[10, 10, 2] = 0.99  # another class
    sizes[40, 30] = (10, 20, 30, 40)
    sizes[90, 100] = (5, 5, 5, 5)
    boxes, scores = decode_centernet(heatmap, sizes, 0.3)
    order = np.argsort(-scores)
    np.testing.assert_allclose(scores[order], [0.8, 0.5])
    np.testing.assert_allclose(boxes[order], [[110, 140, 150, 200], [395, 355, 405, 365]])
    with pytest.raises(ValueError):
        decode_centernet(heatmap, sizes[:64], 0.3)


@pytest.mark.parametrize(
    ("second", "threshold", "kept"),
    [
        ([0, 0, 10, 12], 0.5, 1),  # IoU 100/120 = 0.83: one person
        ([0, 0, 10, 20], 0.5, 1),  # IoU exactly 0.5: suppressed (≥ threshold)
        ([5, 0, 15, 10], 0.5, 2),  # IoU 50/150 = 0.33
        ([5, 0, 15, 10], 0.3, 1),
        ([20, 20, 30, 30], 0.5, 2),  # apart
    ],
)
def test_person_nms(second: list[float], threshold: float, kept: int) -> None:
    boxes = np.array([[0, 0, 10, 10], second], np.float32)
    scores = np.array([0.6, 0.9], np.float32)
    out_boxes, out_scores = person_nms(boxes, scores, threshold)
    assert len(out_scores) == kept
    assert out_scores[0] == pytest.approx(0.9)  # best first
    np.testing.assert_allclose(out_boxes[0], second)


def test_person_nms_empty() -> None:
    boxes, scores = person_nms(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), 0.5)
    assert boxes.shape == (0, 4) and scores.shape == (0,)


def test_fit_square_letterbox_and_stretch_map_back_to_source() -> None:
    rgb = np.full((360, 480, 3), 200, np.uint8)
    boxed = fit_square(rgb, 416, letterbox=True)
    assert boxed.pixels.shape == (416, 416, 3)
    assert boxed.scale_x == pytest.approx(416 / 480) and boxed.scale_y == pytest.approx(312 / 360)
    assert boxed.pixels[311, 0, 0] == 200 and boxed.pixels[312:, :, :].max() == 0  # padding below
    stretched = fit_square(rgb, 416, letterbox=False)
    assert stretched.scale_x == pytest.approx(416 / 480) and stretched.scale_y == pytest.approx(416 / 360)
    for fitted in (boxed, stretched):
        source = np.array([[48, 36, 240, 180]], np.float32)
        model_box = source * [fitted.scale_x, fitted.scale_y, fitted.scale_x, fitted.scale_y]
        back = to_source_pixels(model_box.astype(np.float32), fitted.scale_x, fitted.scale_y, 480, 360)
        np.testing.assert_allclose(back, source, atol=1e-3)


def test_to_source_pixels_clips_to_the_image() -> None:
    out = to_source_pixels(np.array([[-10, -5, 500, 400]], np.float32), 1.0, 1.0, 480, 360)
    np.testing.assert_allclose(out, [[0, 0, 480, 360]])


def test_person_boxes_above() -> None:
    found = PersonBoxes(np.arange(12, dtype=np.float32).reshape(3, 4), np.array([0.9, 0.5, 0.2], np.float32))
    assert len(found.above(0.5)) == 2 and len(PersonBoxes.empty()) == 0


def test_load_person_detector_errors(tmp_path: Path) -> None:
    cache = ModelCache(tmp_path)
    with pytest.raises(errors.UnknownModelError):
        load_person_detector(cache, "yolo")
    with pytest.raises(errors.ModelUnavailableError):
        load_person_detector(cache, "nanodet")


def test_match_frame_ignores_boxes_flagged_conf_zero() -> None:
    truth = FrameTruth(
        np.array([[0, 0, 10, 20], [50, 0, 60, 20], [100, 0, 110, 20]], np.float64),
        np.array([False, False, True]),
    )
    boxes = np.array(
        [[0, 0, 10, 20], [1, 0, 11, 20], [100, 0, 110, 20], [200, 0, 210, 20]], np.float32
    )  # hit, duplicate of the hit, on the ignored box, background
    scores = np.array([0.9, 0.8, 0.7, 0.6], np.float32)
    matched = match_frame(boxes, scores, truth)
    assert [(round(score, 3), hit) for score, hit in matched] == [(0.9, True), (0.8, False), (0.6, False)]
    metrics = summarise(match_frame(boxes, scores, truth), positives=2, threshold=0.65)
    assert metrics["precision"] == pytest.approx(0.5) and metrics["recall"] == pytest.approx(0.5)
    assert metrics["ap50"] == pytest.approx(0.5)  # one of two found, at precision 1
    assert metrics["best_f1_threshold"] == pytest.approx(0.9)


def test_read_mot_gt_scales_and_flags(tmp_path: Path) -> None:
    gt = tmp_path / "gt.txt"
    gt.write_text("1,9,100,200,40,80,1,-1,-1,-1\n1,3,0,0,10,10,0,-1,-1,-1\n2,9,104,200,40,80,1,-1,-1,-1\n")
    truth = read_mot_gt(gt, 0.5)
    np.testing.assert_allclose(truth[1].boxes[0], [50, 100, 70, 140])
    assert truth[1].ignore.tolist() == [False, True] and len(truth[2].boxes) == 1
