"""Subject-disjoint cross-validation of the passive liveness recipe, without scikit-learn.

``facesocial eval liveness --cross-validate``: the shipped model is fit on all development data,
so scoring that data with it only shows the training fit. This module re-runs the recipe of
scripts/train/liveness_passive.py (+ liveness_model.py) leave-one-group-out: per fold, features
standardised with the training folds' mean/std, an L2-regularised multinomial logistic
regression (scipy L-BFGS-B, analytic gradient) fit with the script's sample weights, the held-out
group scored; the pooled out-of-fold P(live) are reported with :mod:`pad_metrics` (ISO/IEC
30107-3) at the shipped threshold and at the threshold the protocol itself picks (highest with
out-of-fold BPCER <= 5 %, the script's rule).

Groups (:func:`group_key`) are a protocol device only: they decide which images are held out
together and are never a model input.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize

from facesocial.evaluation.pad_metrics import equal_error_rate, pad_report, threshold_for_bpcer

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

GroupRule = Literal["folder", "prefix"]

DEFAULT_C = 0.001
"""Inverse L2 strength used when the manifest does not record it: the winner of
scripts/train/liveness_model.CANDIDATES (manifest ``metrics.candidates``, docs/liveness-passive.md)."""

MAX_BPCER = 0.05
"""The protocol's threshold rule (scripts/train/liveness_passive.py ``MAX_BPCER``)."""

STD_EPS = 1e-6
"""Added to each feature's std before standardising, as in scripts/train/liveness_model.fit."""

_METHOD_C = re.compile(r"logreg\(C=([0-9.eE+-]+)\)")


def group_key(folder: Path, image: Path, rule: GroupRule = "folder") -> str:
    """The protocol group of ``image`` found under the labelled ``folder`` (a folder or one file).

    * ``image`` in a subfolder of ``folder`` (NUAA ``<dir>/<subject>/<file>``): the subject,
      ``"<parent of folder>/<subject>"`` — so ``nuaa/ClientRaw/0001`` and ``nuaa/ImposterRaw/0001``
      (the live and printed presentations of one person) are one group;
    * a flat folder with ``rule="prefix"`` (antispoof_replay ``crops/real``, ``crops/fake``): the
      file name before the first ``_`` (the recording source), ``"<parent of folder>/<prefix>"``;
    * any other flat folder: the folder itself, ``"<parent of folder>/<folder>"`` (e.g. the NUAA
      phone folder, whose subjects are unknown);
    * ``folder`` a single file: its folder, ``"<grandparent>/<parent>"`` (the Silent-Face samples
      given one by one are one group).

    Keys are built from folder names, so two unrelated trees with equal names share a key: that
    only merges groups (more held out together), it never splits a subject across folds.

    >>> group_key(Path("d/nuaa/ClientRaw"), Path("d/nuaa/ClientRaw/0001/a.jpg"))
    'nuaa/0001'
    >>> group_key(Path("d/crops/real"), Path("d/crops/real/Apfol_3.jpg"), "prefix")
    'crops/Apfol'
    """
    if folder == image:
        return f"{image.parent.parent.name}/{image.parent.name}"
    parts = image.relative_to(folder).parts
    if len(parts) > 1:
        return f"{folder.parent.name}/{parts[0]}"
    if rule == "prefix":
        return f"{folder.parent.name}/{image.name.split('_', 1)[0]}"
    return f"{folder.parent.name}/{folder.name}"


def recipe_c(manifest: Mapping[str, Any]) -> tuple[float, str]:
    """(C, where it came from): parsed from the manifest's ``method`` (``"... logreg(C=0.003) ..."``),
    else :data:`DEFAULT_C`."""
    match = _METHOD_C.search(str(manifest.get("method", "")))
    if match:
        return float(match.group(1)), f"manifest method {match.group(0)!r}"
    return DEFAULT_C, "DEFAULT_C (scripts/train/liveness_model.py winner; not in the manifest)"


def sample_weights(labels: IntArray, groups: Sequence[str]) -> FloatArray:
    """(N,) weights ∝ 1/sqrt(images in the sample's (group, class) cell), each present class summing
    to the same total, mean 1 (scripts/train/liveness_model.sample_weights)."""
    keys = [f"{g}|{y}" for g, y in zip(groups, labels, strict=True)]
    counts: dict[str, int] = {}
    for k in keys:
        counts[k] = counts.get(k, 0) + 1
    w = np.asarray([1.0 / np.sqrt(counts[k]) for k in keys], np.float64)
    for c in np.unique(labels):
        w[labels == c] /= w[labels == c].sum()
    return np.asarray(w * len(w) / w.sum(), np.float64)


def _softmax(z: FloatArray) -> FloatArray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True), np.float64)


def loss_and_gradient(
    theta: FloatArray, x: FloatArray, onehot: FloatArray, w: FloatArray, c: float
) -> tuple[float, FloatArray]:
    """Objective and gradient of the L2-regularised multinomial logistic regression.

    ``theta`` = W (D, K) then b (K,) flattened; ``x`` (N, D) standardised features; ``onehot``
    (N, K); ``w`` (N,) sample weights; ``c`` > 0 the inverse L2 strength. The objective is
    ``(Σ w_i · CE_i + ||W||² / (2 C)) / Σ w`` with CE the cross-entropy of the softmax: scikit-learn's
    ``LogisticRegression(C)`` objective ``C Σ w_i CE_i + ||W||²/2`` divided by ``C Σ w`` (its own
    scaling), so the same minimiser; the intercept is not penalised, as there.
    """
    d, k = x.shape[1], onehot.shape[1]
    weights = theta[: d * k].reshape(d, k)
    bias = theta[d * k :]
    logits = x @ weights + bias
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(shifted).sum(axis=1))
    ce = log_norm - (shifted * onehot).sum(axis=1)
    total = float(w.sum())
    loss = (float(w @ ce) + 0.5 * float(np.sum(weights * weights)) / c) / total
    residual = (_softmax(logits) - onehot) * w[:, None]  # d(Σ w CE)/d logits
    grad_w = (x.T @ residual + weights / c) / total
    grad_b = residual.sum(axis=0) / total
    return loss, np.concatenate([grad_w.ravel(), grad_b])


@dataclass(frozen=True, slots=True)
class LogisticModel:
    """Standardisation + multinomial logistic regression.

    P = softmax(((x - mean) / std) @ coef + intercept).
    """

    mean: FloatArray  # (D,)
    std: FloatArray  # (D,) > 0
    coef: FloatArray  # (D, K)
    intercept: FloatArray  # (K,)
    converged: bool

    def probabilities(self, x: npt.ArrayLike) -> FloatArray:
        """(N, K) class probabilities (rows sum to 1) of raw features ``x`` (N, D)."""
        xs = (np.asarray(x, np.float64) - self.mean) / self.std
        return _softmax(xs @ self.coef + self.intercept)


def fit_logistic(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    n_classes: int,
    c: float,
    sample_weight: npt.ArrayLike | None = None,
    max_iter: int = 3000,
) -> LogisticModel:
    """Standardise ``x`` (N, D) and fit the model of :func:`loss_and_gradient` by L-BFGS-B.

    ``y`` (N,) ints in 0..n_classes-1; every class must occur (an absent class's unpenalised
    intercept would run to -inf: ``ValueError``). ``max_iter`` as scikit-learn's default for this
    recipe (liveness_model.fit); the gradient tolerance is tighter than scikit-learn's 1e-4 so the
    optimum, not the stopping rule, decides the scores.
    """
    xa = np.asarray(x, np.float64)
    ya = np.asarray(y, np.int64)
    if xa.ndim != 2 or ya.shape != (len(xa),):
        raise ValueError(f"x must be (N, D) and y (N,), got {xa.shape} and {ya.shape}")
    missing = sorted(set(range(n_classes)) - set(ya.tolist()))
    if missing:
        raise ValueError(f"classes {missing} have no training samples")
    w = np.ones(len(ya)) if sample_weight is None else np.asarray(sample_weight, np.float64)
    mean = xa.mean(axis=0)
    std = xa.std(axis=0) + STD_EPS
    xs = (xa - mean) / std
    onehot = np.eye(n_classes)[ya]
    d = xs.shape[1]
    result = minimize(
        loss_and_gradient,
        np.zeros(d * n_classes + n_classes),
        args=(xs, onehot, w, c),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": max_iter, "gtol": 1e-7, "ftol": 1e-12},
    )
    theta = np.asarray(result.x, np.float64)
    coef = theta[: d * n_classes].reshape(d, n_classes)
    return LogisticModel(mean, std, coef, theta[d * n_classes :], bool(result.success))


@dataclass(frozen=True, slots=True)
class Fold:
    """One leave-one-group-out fold: boolean masks over the N samples."""

    group: str
    train: npt.NDArray[np.bool_]
    test: npt.NDArray[np.bool_]


def leave_one_group_out(groups: Sequence[str]) -> list[Fold]:
    """One fold per distinct group (sorted): that group is the test set, all others train.

    Raises ``ValueError`` with fewer than two groups (nothing to train on).
    """
    garr = np.asarray(groups)
    names = sorted(set(groups))
    if len(names) < 2:
        raise ValueError(f"leave-one-group-out needs at least 2 groups, got {names}")
    return [Fold(name, garr != name, garr == name) for name in names]


def out_of_fold_probabilities(
    x: npt.ArrayLike, y: npt.ArrayLike, groups: Sequence[str], n_classes: int, c: float
) -> tuple[FloatArray, int]:
    """((N, n_classes) out-of-fold probabilities, folds whose optimiser did not converge).

    Each fold fits on the classes present in its training part (weights of
    :func:`sample_weights`); a class absent there gets probability 0 for the held-out group.
    """
    xa = np.asarray(x, np.float64)
    ya = np.asarray(y, np.int64)
    oof = np.zeros((len(ya), n_classes))
    not_converged = 0
    for fold in leave_one_group_out(groups):
        y_train = ya[fold.train]
        present = np.unique(y_train)
        local = np.searchsorted(present, y_train)
        train_groups = [g for g, t in zip(groups, fold.train, strict=True) if t]
        model = fit_logistic(xa[fold.train], local, len(present), c, sample_weights(local, train_groups))
        not_converged += int(not model.converged)
        oof[np.ix_(fold.test, present)] = model.probabilities(xa[fold.test])
    return oof, not_converged


def _split(p_live: FloatArray, kinds: Sequence[str], live: str) -> tuple[FloatArray, dict[str, FloatArray]]:
    karr = np.asarray(kinds)
    attacks = {k: p_live[karr == k] for k in dict.fromkeys(kinds) if k != live}
    return p_live[karr == live], {k: v for k, v in attacks.items() if v.size}


def _group_row(
    p_live: FloatArray, kinds: Sequence[str], live: str, thresholds: Mapping[str, float]
) -> dict[str, Any]:
    bona, attacks = _split(p_live, kinds, live)
    counts = {k: int(np.sum(np.asarray(kinds) == k)) for k in dict.fromkeys(kinds)}
    row: dict[str, Any] = {"counts": counts, "eer": None}
    if bona.size and attacks:
        row["eer"] = equal_error_rate(bona, attacks)[0]
    for name, t in thresholds.items():
        row[name] = {
            "apcer": {k: float(np.mean(v >= t)) for k, v in attacks.items()},
            "bpcer": float(np.mean(bona < t)) if bona.size else None,
        }
    return row


def cross_validate(
    features: npt.ArrayLike,
    kinds: Sequence[str],
    groups: Sequence[str],
    default_threshold: float,
    c: float,
    live: str = "live",
) -> dict[str, Any]:
    """The leave-one-group-out report (JSON-ready) of features (N, D), kinds (N,) and groups (N,).

    Classes are ``live`` then the attack types in order of first appearance (the development data
    gives [live, photo, screen], the shipped model's order); the score is the out-of-fold P(live).
    Figures: :func:`pad_metrics.pad_report` at ``default_threshold`` and at the protocol's own
    threshold (BPCER <= :data:`MAX_BPCER` on the pooled out-of-fold live scores), 3-class accuracy,
    and one row per group (counts, EER when it has live and attack images, APCER/BPCER at both
    thresholds). Raises ``ValueError`` without live or attack samples or with fewer than 2 groups.
    """
    classes = [live, *[k for k in dict.fromkeys(kinds) if k != live]]
    if live not in kinds or len(classes) < 2:
        raise ValueError("cross-validation needs live and attack images")
    index = {k: i for i, k in enumerate(classes)}
    y = np.asarray([index[k] for k in kinds], np.int64)
    oof, not_converged = out_of_fold_probabilities(features, y, groups, len(classes), c)
    p_live = oof[:, 0]
    bona, attacks = _split(p_live, kinds, live)
    protocol_threshold = threshold_for_bpcer(bona, MAX_BPCER)
    thresholds = {
        "at_default_threshold": float(default_threshold),
        "at_protocol_threshold": protocol_threshold,
    }
    garr = np.asarray(groups)
    per_group = {
        g: _group_row(
            p_live[garr == g], [k for k, m in zip(kinds, garr == g, strict=True) if m], live, thresholds
        )
        for g in sorted(set(groups))
    }
    return {
        "protocol": "leave-one-group-out (subject-disjoint); per fold: standardise on the training folds, "
        "L2 multinomial logistic regression (scipy L-BFGS-B), sample weights 1/sqrt(group-class count); "
        "pooled out-of-fold P(live)",
        "c": c,
        "classes": classes,
        "folds": len(per_group),
        "not_converged_folds": not_converged,
        "default_threshold": float(default_threshold),
        "protocol_threshold": protocol_threshold,
        "protocol_threshold_rule": f"highest P(live) threshold with out-of-fold BPCER <= {MAX_BPCER:.0%}",
        "at_default_threshold": pad_report(bona, attacks, default_threshold),
        "at_protocol_threshold": pad_report(bona, attacks, protocol_threshold),
        "class_accuracy": float(np.mean(oof.argmax(axis=1) == y)),
        "mean_p_live": {k: round(float(np.mean(p_live[np.asarray(kinds) == k])), 4) for k in classes},
        "per_group": per_group,
    }
