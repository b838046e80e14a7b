"""The AI-image eval's own logic: folder labels, the per-folder limit, the equalised copy, the
face composite and the heatmap overlay (no model needed)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facesocial.evaluation.ai_image import EQUAL_SIDE, Labelled, collect, equalise, first_per_folder
from facesocial.evaluation.ai_image_composites import paste_face
from facesocial.forensics.ai_image.anomalies import find, overlay_png


def _write(folder: Path, n: int, size: tuple[int, int] = (64, 48)) -> None:
    folder.mkdir(parents=True)
    for i in range(n):
        Image.new("RGB", size, (i * 20 % 255, 80, 120)).save(folder / f"{i:03d}.png")


def test_collect_labels_by_folder_and_refuses_one_class(tmp_path: Path) -> None:
    _write(tmp_path / "set_a" / "real", 3)
    _write(tmp_path / "set_b" / "real", 2)
    _write(tmp_path / "gen" / "fake", 4)
    found = collect([tmp_path / "set_a" / "real", tmp_path / "set_b" / "real"], [tmp_path / "gen" / "fake"])
    assert {x.folder for x in found} == {"set_a/real", "set_b/real", "gen/fake"}  # not just "real"
    assert sum(x.is_ai for x in found) == 4
    with pytest.raises(ValueError, match="both"):
        collect([tmp_path / "set_a" / "real"], [])
    with pytest.raises(ValueError, match="not a folder"):
        collect([tmp_path / "missing"], [tmp_path / "gen" / "fake"])


def test_the_limit_applies_per_folder_after_filtering(tmp_path: Path) -> None:
    items = [Labelled(tmp_path / f"{i}.png", i % 2 == 0, "even" if i % 2 == 0 else "odd") for i in range(10)]
    kept = first_per_folder(items, 2)
    assert [x.path.name for x in kept] == ["0.png", "1.png", "2.png", "3.png"]
    assert first_per_folder(items, None) == items


def test_equalise_gives_one_size_and_encoding() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (1000, 800), (10, 200, 30)).save(buffer, format="PNG")
    out = Image.open(io.BytesIO(equalise(buffer.getvalue())))
    assert out.format == "JPEG" and min(out.size) == EQUAL_SIDE


def test_paste_face_changes_only_the_face_square() -> None:
    real = np.full((200, 300, 3), 40, np.uint8)
    ai = np.full((100, 100, 3), 220, np.uint8)
    out = paste_face(real, [120, 60, 180, 140], ai, [20, 20, 80, 80])
    assert out.shape == real.shape and out.dtype == np.uint8
    assert out[100, 150].mean() > 150  # the face centre now comes from the AI face
    assert (out[:, :40] == 40).all() and (out[:, 260:] == 40).all()  # far away: untouched


def test_heatmap_over_the_image_is_viewable_rgb() -> None:
    rgb = np.random.default_rng(0).integers(0, 255, (300, 600, 3), dtype=np.uint8)
    _found, png = find({"noise": np.zeros((10, 20), np.float32)}, 300, 600, background=rgb)
    image = Image.open(io.BytesIO(png))
    assert image.mode == "RGB" and image.size == (512, 256)
    values = np.zeros((4, 8), np.float32)
    values[1, 2] = 1.0
    hot = np.asarray(Image.open(io.BytesIO(overlay_png(rgb, values))))
    assert hot.shape == (4, 8, 3)
    assert hot[1, 2, 0] != hot[1, 2, 1] or hot[1, 2, 1] != hot[1, 2, 2]  # coloured where hot
    assert hot[0, 0, 0] == hot[0, 0, 1] == hot[0, 0, 2]  # grey elsewhere
