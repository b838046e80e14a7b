from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facesocial.evaluation import metrics
from facesocial.evaluation.lfw import read_pairs


def test_auc_perfect_random_and_ties() -> None:
    assert metrics.roc_auc(np.array([0.9, 0.8]), np.array([0.1, 0.2])) == 1.0
    assert metrics.roc_auc(np.array([0.1]), np.array([0.9])) == 0.0
    assert metrics.roc_auc(np.array([0.5]), np.array([0.5])) == 0.5


def test_best_threshold_separates() -> None:
    threshold, accuracy = metrics.best_threshold(np.array([0.8, 0.9, 0.95]), np.array([0.1, 0.3, 0.85]))
    assert accuracy == pytest.approx(5 / 6)
    assert 0.3 < threshold <= 0.8 or 0.85 < threshold <= 0.9


def test_threshold_at_far_counts_false_accepts() -> None:
    impostor = np.linspace(0, 1, 1000)
    threshold = metrics.threshold_at_far(impostor, 1e-2)
    assert (impostor >= threshold).sum() == 10
    # Below 1/n the threshold sits just above the highest impostor.
    assert (impostor >= metrics.threshold_at_far(impostor, 1e-4)).sum() == 0


def test_cross_validated_accuracy_uses_other_folds() -> None:
    genuine = np.array([0.9, 0.9, 0.6, 0.6])
    impostor = np.array([0.5, 0.5, 0.7, 0.7])
    mean, _ = metrics.cross_validated_accuracy(genuine, impostor, [0, 0, 1, 1], [0, 0, 1, 1])
    # Fold 0 trained on fold 1 (threshold 0.65) misclassifies nothing in fold 0; fold 1
    # trained on fold 0 (threshold ~0.7) rejects its genuine 0.6s and accepts impostors 0.7.
    assert 0.0 < mean < 1.0


def test_read_lfw_pairs_with_folds(tmp_path: Path) -> None:
    pairs_file = tmp_path / "pairs.txt"
    pairs_file.write_text("2\t1\nAnn\t1\t2\nBob\t1\tCid\t3\nDan\t2\t4\nEve\t1\tFay\t1\n")
    pairs = read_pairs(pairs_file, tmp_path)
    assert [p.fold for p in pairs] == [0, 0, 1, 1]
    assert [p.same for p in pairs] == [True, False, True, False]
    assert pairs[1].second == tmp_path / "Cid" / "Cid_0003.jpg"
    pairs_file.write_text("Ann\t1\n")
    with pytest.raises(ValueError, match="3 or 4 fields"):
        read_pairs(pairs_file, tmp_path)
