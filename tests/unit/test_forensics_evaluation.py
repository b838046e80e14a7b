"""Deepfake evaluation: labels from DFDC metadata and FF++ folders, metrics over rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from facesocial import errors
from facesocial.evaluation.deepfake import _dfdc_labels, _metrics, video_label


def test_labels_from_ffpp_folders_and_merged_dfdc_metadata(tmp_path: Path) -> None:
    (tmp_path / "ffpp/original_sequences/youtube/c23/videos").mkdir(parents=True)
    (tmp_path / "ffpp/manipulated_sequences/Face2Face/c23/videos").mkdir(parents=True)
    (tmp_path / "dfdc/a").mkdir(parents=True)
    (tmp_path / "dfdc/b").mkdir(parents=True)
    (tmp_path / "dfdc/a/metadata.json").write_text(
        json.dumps({"x.mp4": {"label": "FAKE", "original": "y.mp4"}})
    )
    (tmp_path / "dfdc/b/metadata.json").write_text(
        json.dumps({"y.mp4": {"label": "REAL"}, "z.mp4": {"oops": 1}})
    )
    extra = tmp_path / "labels.json"
    extra.write_text(json.dumps({"w.mp4": {"label": "real"}}))
    dfdc = _dfdc_labels(tmp_path, extra)
    assert set(dfdc) == {"x.mp4", "y.mp4", "w.mp4"}
    assert video_label(tmp_path / "ffpp/original_sequences/youtube/c23/videos/004.mp4", dfdc) == (
        "real",
        "original",
    )
    assert video_label(tmp_path / "ffpp/manipulated_sequences/Face2Face/c23/videos/750_743.mp4", dfdc) == (
        "fake",
        "Face2Face",
    )
    assert video_label(tmp_path / "dfdc/a/x.mp4", dfdc) == ("fake", "dfdc")
    assert video_label(tmp_path / "elsewhere/y.mp4", dfdc) == ("real", "original")
    assert video_label(tmp_path / "dfdc/b/z.mp4", dfdc) is None  # no usable label: not guessed
    assert video_label(tmp_path / "n.mp4", dfdc) is None


def test_unreadable_metadata_is_a_validation_error(tmp_path: Path) -> None:
    (tmp_path / "metadata.json").write_text("{not json")
    with pytest.raises(errors.ValidationFailedError):
        _dfdc_labels(tmp_path, None)


def test_metrics_auc_accuracy_and_band_counts() -> None:
    rows = [
        {"label": "fake", "type": "dfdc", "score": 0.9, "band": "fake", "is_deepfake": True},
        {"label": "fake", "type": "Face2Face", "score": 0.4, "band": "uncertain", "is_deepfake": False},
        {"label": "real", "type": "original", "score": 0.1, "band": "real", "is_deepfake": False},
        {"label": "real", "type": "original", "score": 0.5, "band": "uncertain", "is_deepfake": False},
    ]
    m = _metrics(rows, "score")
    # Fake scores {0.9, 0.4} vs real {0.1, 0.5}: 3 of 4 pairs ordered right.
    assert m["auc"] == pytest.approx(0.75)
    assert m["accuracy_at_threshold"] == pytest.approx(0.75)
    assert m["count"] == {"real": 2, "fake": 2}
    assert m["bands_by_label"] == {"real": {"real": 1, "uncertain": 1}, "fake": {"fake": 1, "uncertain": 1}}
    assert m["bands_by_type"]["Face2Face"] == {"uncertain": 1}
    assert _metrics([], "score")["auc"] is None
