"""Crop geometry: square crops, padding, similarity alignment, eye crops, the crop cache."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facesocial.models.manifest import ModelRef
from facesocial.vision.crops import (
    ARCFACE_112_4,
    AlignedSpec,
    CropCache,
    SquareSpec,
    aligned_crop_112,
    aligned_transform,
    apply_affine,
    cache_for,
    eye_crops,
    square_crop,
    square_transform,
    umeyama_similarity,
)
from facesocial.vision.faces import Faces

DETECTOR = ModelRef("test", "0")


def coordinate_image(height: int = 200, width: int = 300) -> np.ndarray:
    """R = x, G = y (mod 256), B = 128: every pixel says where it came from."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x % 256, y % 256, np.full_like(x, 128)], axis=-1).astype(np.uint8)


def faces_of(boxes: list[list[float]], keypoints: np.ndarray | None = None) -> Faces:
    faces = Faces(
        boxes=np.array(boxes, np.float32), confidence=np.ones(len(boxes), np.float32), detector=DETECTOR
    )
    return faces if keypoints is None else faces.with_column("keypoints6", keypoints.astype(np.float32))


def test_square_crop_of_an_exact_square_is_the_sub_image() -> None:
    rgb = coordinate_image()
    crop = square_crop(rgb, [50, 40, 114, 104], scale=1.0, size=64)
    np.testing.assert_array_equal(crop, rgb[40:104, 50:114])


def test_square_crop_uses_the_long_side_enlarged_about_the_centre() -> None:
    # Box 40 wide, 80 tall, centre (100, 100); x1.5 -> 120 px square from (40, 40).
    matrix = square_transform([80, 60, 120, 140], scale=1.5, size=60)
    corners = apply_affine(matrix, [[40, 40], [160, 160], [100, 100]])
    np.testing.assert_allclose(corners, [[0, 0], [60, 60], [30, 30]], atol=1e-5)


def test_padding_edge_and_black() -> None:
    rgb = np.full((100, 100, 3), 200, np.uint8)
    box = [-50, -50, 50, 50]  # top-left quarter of the square lies outside the image
    black = square_crop(rgb, box, scale=1.0, size=100, border="black")
    edge = square_crop(rgb, box, scale=1.0, size=100, border="edge")
    assert black[:45, :45].max() == 0 and black[60:, 60:].min() == 200
    assert edge.min() == 200


def test_big_downscale_averages_instead_of_aliasing() -> None:
    # A 1-px checkerboard averages to grey; plain bilinear sampling would keep extremes.
    board = ((np.indices((400, 400)).sum(axis=0) % 2) * 255).astype(np.uint8)
    rgb = np.repeat(board[..., None], 3, axis=2)
    crop = square_crop(rgb, [0, 0, 400, 400], scale=1.0, size=40)
    assert abs(float(crop.mean()) - 127.5) < 3 and crop.std() < 10


def test_umeyama_recovers_a_known_similarity() -> None:
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 100, (6, 2))
    angle, scale, shift = 0.4, 1.7, np.array([12.0, -5.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = src @ (scale * rot).T + shift
    matrix = umeyama_similarity(src, dst)
    np.testing.assert_allclose(matrix[:, :2], scale * rot, atol=1e-9)
    np.testing.assert_allclose(matrix[:, 2], shift, atol=1e-9)


def test_umeyama_never_reflects() -> None:
    src = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    mirrored = src * np.array([-1.0, 1.0])
    assert np.linalg.det(umeyama_similarity(src, mirrored)[:, :2]) > 0


def test_alignment_maps_keypoints_onto_the_template() -> None:
    # Face keypoints = template under a known similarity; the crop must undo it.
    angle, scale, shift = -0.3, 2.2, np.array([90.0, 40.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    points = ARCFACE_112_4 @ (scale * rot).T + shift
    matrix = aligned_transform(points, size=224)
    np.testing.assert_allclose(apply_affine(matrix, points), ARCFACE_112_4 * 2, atol=1e-3)
    # Pixels: white dots at the keypoints land on the template positions of the 112 crop.
    rgb = np.zeros((400, 400, 3), np.uint8)
    for x, y in points:
        cv2.circle(rgb, (round(x), round(y)), 4, (255, 255, 255), -1)
    crop = aligned_crop_112(rgb, points)
    for x, y in ARCFACE_112_4:
        assert crop[round(y), round(x)].min() > 100


def test_aligned_spec_falls_back_to_a_square_crop_without_keypoints() -> None:
    rgb = coordinate_image()
    batch = AlignedSpec(size=112).compute(rgb, faces_of([[100, 50, 170, 120]]))
    np.testing.assert_allclose(batch.transforms[0], square_transform([100, 50, 170, 120], 1.4, 112))


def test_eye_crop_mirrors_and_maps_back() -> None:
    rgb = coordinate_image()
    corners = np.array([[[[100, 100], [140, 100]], [[180, 100], [220, 100]]]], np.float64)
    batch = eye_crops(rgb, corners, scale=2.0, size=64, mirror=(False, True))
    assert batch.images.shape == (2, 64, 64, 3)
    # Unmirrored: image-left corner on the crop's left; mirrored: on the crop's right.
    assert apply_affine(batch.transforms[0], [[100, 100]])[0, 0] < 32
    assert apply_affine(batch.transforms[1], [[180, 100]])[0, 0] > 32
    # The mirrored crop's pixel says (x, y) of the image point it came from.
    x, y = batch.to_image(1, [[10.0, 32.0]])[0]
    pixel = batch.images[1, 32, 10]
    assert abs(int(pixel[0]) - x) <= 2 and abs(int(pixel[1]) - y) <= 2


def test_rotated_upright_crop_levels_the_eyes() -> None:
    # Eyes at 30° in the image: the upright crop puts them on one row.
    eyes = np.array([[100.0, 100.0], [100 + 40 * np.cos(0.5236), 100 + 40 * np.sin(0.5236)]])
    keypoints = np.zeros((1, 6, 2))
    keypoints[0, :2] = eyes
    faces = faces_of([[80, 60, 160, 160]], keypoints)
    batch = SquareSpec(1.5, 192, upright=True).compute(coordinate_image(), faces)
    mapped = apply_affine(batch.transforms[0], eyes)
    assert abs(mapped[0, 1] - mapped[1, 1]) < 1e-3 and mapped[1, 0] > mapped[0, 0]


def test_cache_computes_each_kind_once() -> None:
    rgb = coordinate_image()
    faces = faces_of([[100, 50, 170, 120], [10, 10, 60, 60]])
    cache = CropCache(rgb, faces)
    first = cache.get(SquareSpec(1.4, 224))
    again = cache.get(SquareSpec(1.4, 224))
    other = cache.get(SquareSpec(1.4, 112))
    assert (
        first is again and first.images.shape == (2, 224, 224, 3) and other.images.shape == (2, 112, 112, 3)
    )
    assert len(cache.computed) == 2
    calls: list[int] = []

    def compute() -> int:
        calls.append(1)
        return len(calls) + 4

    assert cache.memo("x", compute) == cache.memo("x", compute) == 5
    assert calls == [1]


def test_cache_refuses_another_image() -> None:
    rgb = coordinate_image()
    faces = faces_of([[0, 0, 10, 10]])
    cache = CropCache(rgb, faces)
    assert cache_for(rgb, faces, cache) is cache
    with pytest.raises(ValueError):
        cache_for(rgb.copy(), faces, cache)


def test_no_faces_gives_empty_batches() -> None:
    faces = Faces.empty(DETECTOR)
    batch = CropCache(coordinate_image(), faces).get(SquareSpec(1.4, 64))
    assert batch.images.shape == (0, 64, 64, 3) and len(batch) == 0
