"""The hand-made AI-image methods on real data: the TEST split of scripts/train/ai_image_data.py
(never used by the calibration, which reads the train split's real photos only).

Measured on 2026-12-01 with the packaged reference (scripts/calibrate_ai_image_methods.py):
SD 2.1 vs all real test photos, ROC AUC of the frequency method's score 0.70 and of the noise
method's score 0.69. The assertions below are those figures minus a 0.08 margin, so a change that
loses most of the separation fails while re-running on the same data passes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facesocial.evaluation.metrics import roc_auc
from facesocial.forensics.ai_image import noise, spectrum
from facesocial.forensics.ai_image.reference import packaged_reference
from tests.conftest import shared_path

pytestmark = [pytest.mark.model, pytest.mark.shared_data]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def test_split() -> list[tuple[str, Path]]:
    """(source, path) of the real and SD 2.1 images of the test split."""
    data = shared_path("ai_generated_images").parent
    sys.path.insert(0, str(ROOT / "scripts" / "train"))
    try:
        from ai_image_data import samples
    finally:
        sys.path.remove(str(ROOT / "scripts" / "train"))
    chosen = [
        (s.source, s.path)
        for s in samples(data)
        if s.split == "test" and (s.label == "real" or s.source == "sd21")
    ]
    if sum(1 for src, _ in chosen if src == "sd21") < 30:
        pytest.skip("fewer than 30 SD 2.1 test images under ../shared/data")
    return chosen


def test_frequency_and_noise_separate_sd21_from_real(test_split: list[tuple[str, Path]]) -> None:
    table = packaged_reference()
    assert table.get("spectrum_slope") is not None, "packaged real_images.json is missing"
    freq, noi, is_ai = [], [], []
    for source, path in test_split:
        with Image.open(path) as image:
            rgb = np.asarray(image.convert("RGB"), np.uint8)
        f = spectrum.analyze(rgb, table).score
        n = noise.analyze(rgb, table)[0].score
        freq.append(np.nan if f is None else f)
        noi.append(np.nan if n is None else n)
        is_ai.append(source == "sd21")
    ai = np.asarray(is_ai)
    for name, values, floor in (("frequency", freq, 0.62), ("noise", noi, 0.61)):
        v = np.asarray(values, np.float64)
        v = np.where(np.isfinite(v), v, 0.5)
        auc = roc_auc(v[ai], v[~ai])
        assert auc > floor, f"{name}: AUC {auc:.3f} (measured 0.70 / 0.69 on 2026-12-01)"
