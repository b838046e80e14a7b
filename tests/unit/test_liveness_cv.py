"""The subject-disjoint cross-validation of the passive liveness recipe (evaluation/liveness_cv.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import approx_fprime

from facesocial.evaluation.liveness_cv import (
    DEFAULT_C,
    cross_validate,
    fit_logistic,
    group_key,
    leave_one_group_out,
    loss_and_gradient,
    out_of_fold_probabilities,
    recipe_c,
    sample_weights,
)


def _blobs(rng: np.random.Generator, n_per_class: int, gap: float) -> tuple[np.ndarray, np.ndarray]:
    """Three Gaussian classes in 5-D, centres ``gap`` apart along different axes."""
    centres = np.zeros((3, 5))
    centres[1, 0] = gap
    centres[2, 1] = gap
    y = np.repeat(np.arange(3), n_per_class)
    x = centres[y] + rng.normal(size=(len(y), 5))
    return x, y


def test_fit_recovers_a_separable_problem() -> None:
    rng = np.random.default_rng(0)
    x, y = _blobs(rng, 60, gap=8.0)
    model = fit_logistic(x, y, 3, c=1.0)
    assert model.converged
    x_new, y_new = _blobs(rng, 60, gap=8.0)
    probs = model.probabilities(x_new)
    assert probs.shape == (180, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-12)
    assert np.mean(probs.argmax(axis=1) == y_new) >= 0.98
    # The signal is on axes 0 and 1: the three noise axes get small weights.
    assert np.abs(model.coef[2:]).max() < 0.2 * np.abs(model.coef[:2]).max()


def test_stronger_regularisation_shrinks_the_weights() -> None:
    x, y = _blobs(np.random.default_rng(1), 40, gap=3.0)
    small_c = fit_logistic(x, y, 3, c=0.001)
    large_c = fit_logistic(x, y, 3, c=1.0)
    assert np.linalg.norm(small_c.coef) < 0.2 * np.linalg.norm(large_c.coef)


def test_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(30, 4))
    y = rng.integers(0, 3, size=30)
    onehot = np.eye(3)[y]
    w = rng.uniform(0.2, 2.0, size=30)
    theta = rng.normal(scale=0.5, size=4 * 3 + 3)
    _loss, grad = loss_and_gradient(theta, x, onehot, w, 0.05)
    numeric = approx_fprime(theta, lambda t: loss_and_gradient(t, x, onehot, w, 0.05)[0], 1e-7)
    np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-6)


def test_fit_rejects_a_missing_class() -> None:
    with pytest.raises(ValueError, match="no training samples"):
        fit_logistic(np.zeros((4, 2)), np.array([0, 0, 1, 1]), 3, c=1.0)


def test_sample_weights_balance_classes_and_damp_big_groups() -> None:
    labels = np.array([0, 0, 0, 0, 1, 1])
    groups = ["a", "a", "a", "b", "a", "b"]
    w = sample_weights(labels, groups)
    assert w[labels == 0].sum() == pytest.approx(w[labels == 1].sum())
    assert w.mean() == pytest.approx(1.0)
    assert w[3] == pytest.approx(np.sqrt(3) * w[0])  # alone in its cell vs one of three


@pytest.mark.parametrize(
    ("folder", "image", "rule", "expected"),
    [
        ("d/nuaa/ClientRaw", "d/nuaa/ClientRaw/0001/a.jpg", "folder", "nuaa/0001"),
        ("d/nuaa/ImposterRaw", "d/nuaa/ImposterRaw/0001/b.jpg", "folder", "nuaa/0001"),
        ("d/nuaa/ClientRaw", "d/nuaa/ClientRaw/0002/x/c.jpg", "folder", "nuaa/0002"),
        ("d/nuaa/phone", "d/nuaa/phone/Alice_1.jpg", "folder", "nuaa/phone"),
        ("d/crops/real", "d/crops/real/Apfol_10.jpg", "prefix", "crops/Apfol"),
        ("d/crops/fake", "d/crops/fake/Apfol_3_x.jpg", "prefix", "crops/Apfol"),
        ("d/crops/fake", "d/crops/fake/noprefix.jpg", "prefix", "crops/noprefix.jpg"),
        ("d/sf/image_T1.jpg", "d/sf/image_T1.jpg", "folder", "d/sf"),
        ("d/sf/image_F1.jpg", "d/sf/image_F1.jpg", "prefix", "d/sf"),
    ],
)
def test_group_key(folder: str, image: str, rule: str, expected: str) -> None:
    assert group_key(Path(folder), Path(image), rule) == expected  # type: ignore[arg-type]


def test_no_group_is_in_train_and_test_of_a_fold() -> None:
    groups = ["a", "b", "a", "c", "b", "c", "c"]
    folds = leave_one_group_out(groups)
    assert [f.group for f in folds] == ["a", "b", "c"]
    tested = np.zeros(len(groups), int)
    for fold in folds:
        train = {g for g, m in zip(groups, fold.train, strict=True) if m}
        test = {g for g, m in zip(groups, fold.test, strict=True) if m}
        assert test == {fold.group}
        assert not train & test
        assert np.all(fold.train ^ fold.test)
        tested += fold.test
    assert np.all(tested == 1)  # every sample is scored exactly once


def test_leave_one_group_out_needs_two_groups() -> None:
    with pytest.raises(ValueError, match="at least 2 groups"):
        leave_one_group_out(["a", "a"])


def test_out_of_fold_scores_come_from_models_fit_without_the_group() -> None:
    """A group whose labels contradict everyone else's is scored wrong out-of-fold, right in-fold."""
    rng = np.random.default_rng(3)
    x, y = _blobs(rng, 30, gap=6.0)
    groups = [f"g{i % 5}" for i in range(len(y))]
    flipped = np.array([g == "g0" for g in groups])
    y_bad = y.copy()
    y_bad[flipped] = (y[flipped] + 1) % 3  # group g0's labels are shifted by one class
    oof, not_converged = out_of_fold_probabilities(x, y_bad, groups, 3, c=1.0)
    assert not_converged == 0
    assert np.mean(oof[flipped].argmax(axis=1) == y_bad[flipped]) < 0.2
    assert np.mean(oof[~flipped].argmax(axis=1) == y_bad[~flipped]) > 0.8


def test_a_class_absent_from_a_training_fold_gets_probability_zero() -> None:
    rng = np.random.default_rng(4)
    x, y = _blobs(rng, 20, gap=6.0)
    groups = ["only_photo" if label == 1 else f"g{i % 3}" for i, label in enumerate(y)]
    oof, _ = out_of_fold_probabilities(x, y, groups, 3, c=1.0)
    assert np.all(oof[y == 1, 1] == 0.0)
    np.testing.assert_allclose(oof.sum(axis=1), 1.0, atol=1e-12)


def test_cross_validate_report() -> None:
    rng = np.random.default_rng(5)
    x, y = _blobs(rng, 40, gap=5.0)
    kinds = [("live", "photo", "screen")[i] for i in y]
    groups = [f"s{i % 4}" for i in range(len(y))]
    report = cross_validate(x, kinds, groups, default_threshold=0.5, c=1.0)
    assert report["classes"] == ["live", "photo", "screen"]
    assert report["folds"] == 4
    at_default = report["at_default_threshold"]["at_threshold"]
    assert at_default["threshold"] == 0.5
    assert set(at_default["apcer"]) == {"photo", "screen"}
    assert report["at_protocol_threshold"]["at_threshold"]["bpcer"] <= 0.05
    assert at_default["acer"] < 0.1  # well separated classes
    row = report["per_group"]["s0"]
    assert row["counts"] == {"live": 10, "photo": 10, "screen": 10}
    assert row["eer"] is not None
    assert set(row["at_protocol_threshold"]["apcer"]) == {"photo", "screen"}


def test_cross_validate_needs_live_and_attacks() -> None:
    with pytest.raises(ValueError, match="live and attack"):
        cross_validate(np.zeros((4, 2)), ["photo"] * 4, ["a", "a", "b", "b"], 0.5, 1.0)


@pytest.mark.parametrize(
    ("manifest", "expected"),
    [
        ({"method": "hand-crafted PAD features + logreg(C=0.003) (scikit-learn)"}, 0.003),
        ({"method": "logreg(C=1e-2)"}, 0.01),
        ({"method": "mlp(h=32,alpha=10.0)"}, DEFAULT_C),
        ({}, DEFAULT_C),
    ],
)
def test_recipe_c(manifest: dict[str, str], expected: float) -> None:
    assert recipe_c(manifest)[0] == pytest.approx(expected)
