"""Image selection and face matching of the bench commands: deterministic, per folder, greedy IoU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facesocial.evaluation.bench_compare import match_boxes
from facesocial.evaluation.bench_pipeline import image_names, list_images
from facesocial.vision.geometry import iou_matrix


def _touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


def test_list_images_is_sorted_recursive_and_limited_per_folder(tmp_path: Path) -> None:
    people, groups = tmp_path / "people", tmp_path / "groups"
    _touch(people, "b/b_0002.jpg", "b/b_0001.JPG", "a/a_0001.jpg", "a/notes.txt", "c.png")
    _touch(groups, "z.jpeg", "y.webp")
    chosen = list_images([people, groups], limit=3)
    assert [p.relative_to(tmp_path).as_posix() for p in chosen] == [
        "people/a/a_0001.jpg",
        "people/b/b_0001.JPG",
        "people/b/b_0002.jpg",
        "groups/y.webp",
        "groups/z.jpeg",
    ]
    assert list_images([people, groups], limit=3) == chosen  # the same every time
    assert len(list_images([people])) == 4
    assert image_names([people, groups], chosen)[:2] == ["a/a_0001.jpg", "b/b_0001.JPG"]
    single = people / "c.png"
    assert list_images([single], limit=1) == [single]


def test_list_images_refuses_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        list_images([tmp_path / "absent"])


BOX = [0.0, 0.0, 10.0, 10.0]


@pytest.mark.parametrize(
    ("ours", "theirs", "min_iou", "pairs"),
    [
        ([BOX], [BOX], 0.5, [(0, 0)]),
        ([BOX], [[5.0, 0.0, 15.0, 10.0]], 0.5, []),  # IoU 1/3
        ([BOX], [[5.0, 0.0, 15.0, 10.0]], 0.3, [(0, 0)]),
        (
            [BOX, [20.0, 20.0, 30.0, 30.0]],
            [[21.0, 20.0, 31.0, 30.0], [0.0, 1.0, 10.0, 11.0]],
            0.5,
            [(0, 1), (1, 0)],
        ),
        ([BOX, [0.0, 0.0, 10.0, 9.0]], [BOX], 0.5, [(0, 0)]),  # each face used once, best first
        ([], [BOX], 0.5, []),
    ],
    ids=["same", "below", "lower-threshold", "two-crossed", "used-once", "none"],
)
def test_match_boxes(ours: list, theirs: list, min_iou: float, pairs: list) -> None:  # type: ignore[type-arg]
    to_array = lambda boxes: np.asarray(boxes, np.float32).reshape(-1, 4)  # noqa: E731
    assert sorted(match_boxes(to_array(ours), to_array(theirs), min_iou)) == pairs


def test_iou_matrix_values() -> None:
    iou = iou_matrix(np.asarray([BOX], np.float32), np.asarray([BOX, [5.0, 5.0, 15.0, 15.0]], np.float32))
    assert iou.shape == (1, 2)
    assert iou[0, 0] == pytest.approx(1.0) and iou[0, 1] == pytest.approx(25.0 / 175.0)
