"""Verification metrics over similarity scores (higher = more alike)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

Scores = npt.NDArray[np.float64]


def roc_auc(genuine: Scores, impostor: Scores) -> float:
    """Probability that a random genuine pair outscores a random impostor pair (ties = ½)."""
    if genuine.size == 0 or impostor.size == 0:
        return float("nan")
    scores = np.concatenate([genuine, impostor])
    order = scores.argsort(kind="mergesort")
    ranks = np.empty_like(order, dtype=np.float64)
    sorted_scores = scores[order]
    # Average ranks over ties.
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    average = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(average, counts)
    genuine_rank_sum = ranks[: genuine.size].sum()
    u = genuine_rank_sum - genuine.size * (genuine.size + 1) / 2.0
    return float(u / (genuine.size * impostor.size))


def accuracy_at(genuine: Scores, impostor: Scores, threshold: float) -> float:
    correct = int((genuine >= threshold).sum()) + int((impostor < threshold).sum())
    return correct / max(1, genuine.size + impostor.size)


def best_threshold(genuine: Scores, impostor: Scores) -> tuple[float, float]:
    """The threshold (midpoint between neighbouring scores) with the highest accuracy."""
    candidates = np.unique(np.concatenate([genuine, impostor]))
    if candidates.size == 0:
        return 0.0, float("nan")
    mids = np.concatenate([[candidates[0] - 1e-6], (candidates[1:] + candidates[:-1]) / 2.0])
    # Vectorised count via sorted arrays.
    g = np.sort(genuine)
    i = np.sort(impostor)
    accepted_genuine = g.size - np.searchsorted(g, mids, side="left")
    rejected_impostor = np.searchsorted(i, mids, side="left")
    accuracy = (accepted_genuine + rejected_impostor) / (g.size + i.size)
    best = int(np.argmax(accuracy))
    return float(mids[best]), float(accuracy[best])


def threshold_at_far(impostor: Scores, far: float) -> float:
    """Smallest threshold whose false-accept rate on ``impostor`` is at most ``far``.

    Accept means score >= threshold. With n impostors, rates below 1/n cannot be resolved;
    the threshold then sits just above the highest impostor score.
    """
    if impostor.size == 0:
        return float("nan")
    ordered = np.sort(impostor)[::-1]
    allowed = int(np.floor(far * ordered.size))  # false accepts we may have
    if allowed >= ordered.size:
        return float(ordered[-1])
    return float(np.nextafter(ordered[allowed], np.inf))


def tar_at(genuine: Scores, threshold: float) -> float:
    return float((genuine >= threshold).mean()) if genuine.size else float("nan")


def cross_validated_accuracy(
    genuine: Scores, impostor: Scores, genuine_folds: Sequence[int], impostor_folds: Sequence[int]
) -> tuple[float, float]:
    """LFW protocol: per fold, pick the threshold on the other folds; mean and std of accuracy."""
    g_folds = np.asarray(genuine_folds)
    i_folds = np.asarray(impostor_folds)
    accuracies = []
    if genuine.size == 0 or impostor.size == 0:
        return float("nan"), float("nan")
    for fold in np.unique(np.concatenate([g_folds, i_folds])):
        train_threshold, _ = best_threshold(genuine[g_folds != fold], impostor[i_folds != fold])
        accuracies.append(accuracy_at(genuine[g_folds == fold], impostor[i_folds == fold], train_threshold))
    return float(np.mean(accuracies)), float(np.std(accuracies))
