"""Classifier recipes of the passive liveness model, grouped cross-validation and ONNX export.

A recipe = features standardised with the training mean/std, then a scikit-learn classifier
(multinomial logistic regression or a one-hidden-layer ReLU MLP), fit with sample weights that
balance the three classes and damp the large groups (weight ∝ 1/sqrt(images in the same group
and class), so one big source does not decide the model). The ONNX graph is written with
``onnx.helper`` (skl2onnx is not available): (x - mean) / std -> [MatMul, Add, Relu] -> MatMul,
Add -> Softmax = ``probabilities`` (N, 3) [live, photo, screen]; and the cue scores
``signals`` (N, K) = sigmoid of one binary logistic regression per feature group (attack vs live
on that group's columns alone).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

# The weighting the package's cross-validation uses too (facesocial eval liveness --cross-validate).
from facesocial.evaluation.liveness_cv import sample_weights

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Recipe:
    """One candidate classifier: ``kind`` "logreg" (C = inverse L2 strength) or "mlp" (hidden, alpha)."""

    kind: str
    c: float = 1.0
    hidden: int = 32
    alpha: float = 1e-2

    @property
    def label(self) -> str:
        return f"logreg(C={self.c})" if self.kind == "logreg" else f"mlp(h={self.hidden},alpha={self.alpha})"


CANDIDATES = (
    Recipe("logreg", c=0.001),
    Recipe("logreg", c=0.003),
    Recipe("logreg", c=0.01),
)
"""Compared by default (C = 0.1 and 1 were worse out-of-fold: ACER 0.083 and 0.094)."""

MLP_CANDIDATES = (
    Recipe("mlp", hidden=32, alpha=1.0),
    Recipe("mlp", hidden=32, alpha=10.0),
)
"""Compared with ``--with-mlp`` (minutes per candidate on 2 CPU cores)."""


@dataclass
class Fitted:
    """A fitted recipe: standardisation and the classifier's layers (numpy, for ONNX and checks)."""

    mean: FloatArray
    std: FloatArray
    layers: list[tuple[FloatArray, FloatArray]]  # (W (in, out), b (out,)); ReLU between layers

    def probabilities(self, x: FloatArray) -> FloatArray:
        h = (x - self.mean) / self.std
        for i, (w, b) in enumerate(self.layers):
            h = h @ w + b
            if i < len(self.layers) - 1:
                h = np.maximum(h, 0.0)
        h = h - h.max(axis=1, keepdims=True)
        e = np.exp(h)
        return np.asarray(e / e.sum(axis=1, keepdims=True), np.float64)


def fit(recipe: Recipe, x: FloatArray, y: IntArray, w: FloatArray, seed: int = 0) -> Fitted:
    """Fit ``recipe`` on features ``x`` (N, D), labels ``y`` (N,) in 0..2, weights ``w`` (N,)."""
    mean = x.mean(axis=0)
    std = x.std(axis=0) + 1e-6
    xs = (x - mean) / std
    if recipe.kind == "logreg":
        model = LogisticRegression(C=recipe.c, max_iter=3000)
        model.fit(xs, y, sample_weight=w)
        return Fitted(mean, std, [(model.coef_.T.copy(), model.intercept_.copy())])
    # MLPClassifier has no sample weights: resample by weight (deterministic with the seed).
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(y), size=4 * len(y), replace=True, p=w / w.sum())
    mlp = MLPClassifier(
        hidden_layer_sizes=(recipe.hidden,),
        alpha=recipe.alpha,
        max_iter=400,
        early_stopping=False,
        random_state=seed,
    )
    mlp.fit(xs[idx], y[idx])
    layers = [(c.copy(), b.copy()) for c, b in zip(mlp.coefs_, mlp.intercepts_, strict=True)]
    return Fitted(mean, std, layers)


def fit_signals(
    x: FloatArray, y: IntArray, w: FloatArray, groups: dict[str, tuple[int, int]]
) -> tuple[FloatArray, FloatArray]:
    """(W (D, K), b (K,)) on standardised features: P(attack) from each feature group alone."""
    mean = x.mean(axis=0)
    std = x.std(axis=0) + 1e-6
    xs = (x - mean) / std
    attack = (y != 0).astype(np.int64)
    weights = np.zeros((x.shape[1], len(groups)))
    bias = np.zeros(len(groups))
    for k, (start, stop) in enumerate(groups.values()):
        model = LogisticRegression(C=0.1, max_iter=3000)
        model.fit(xs[:, start:stop], attack, sample_weight=w)
        weights[start:stop, k] = model.coef_[0]
        bias[k] = model.intercept_[0]
    return weights, bias


def leave_one_group_out(
    recipe: Recipe, x: FloatArray, y: IntArray, groups: list[str]
) -> tuple[FloatArray, dict[str, Any]]:
    """Out-of-fold class probabilities (N, 3): each group scored by a model fit without it."""
    names = sorted(set(groups))
    garr = np.asarray(groups)
    oof = np.zeros((len(y), 3))
    for name in names:
        test = garr == name
        train = ~test
        w = sample_weights(y[train], [g for g, t in zip(groups, train, strict=True) if t])
        model = fit(recipe, x[train], y[train], w)
        oof[test] = model.probabilities(x[test])
    return oof, {"folds": len(names)}


def to_onnx(
    fitted: Fitted, signal_w: FloatArray, signal_b: FloatArray, signal_names: list[str], doc: str
) -> bytes:
    """The serialised ONNX model (opset 13): input ``features`` (N, D) float32; outputs
    ``probabilities`` (N, 3) and ``signals`` (N, K)."""
    d = fitted.mean.size
    f32 = np.float32
    inits = [
        numpy_helper.from_array(fitted.mean.astype(f32), "mean"),
        numpy_helper.from_array(fitted.std.astype(f32), "std"),
        numpy_helper.from_array(signal_w.astype(f32), "signal_w"),
        numpy_helper.from_array(signal_b.astype(f32), "signal_b"),
    ]
    nodes = [
        helper.make_node("Sub", ["features", "mean"], ["centred"]),
        helper.make_node("Div", ["centred", "std"], ["z"]),
    ]
    h = "z"
    for i, (w, b) in enumerate(fitted.layers):
        inits += [
            numpy_helper.from_array(w.astype(f32), f"w{i}"),
            numpy_helper.from_array(b.astype(f32), f"b{i}"),
        ]
        nodes += [
            helper.make_node("MatMul", [h, f"w{i}"], [f"mm{i}"]),
            helper.make_node("Add", [f"mm{i}", f"b{i}"], [f"a{i}"]),
        ]
        h = f"a{i}"
        if i < len(fitted.layers) - 1:
            nodes.append(helper.make_node("Relu", [h], [f"r{i}"]))
            h = f"r{i}"
    nodes.append(helper.make_node("Softmax", [h], ["probabilities"], axis=1))
    nodes += [
        helper.make_node("MatMul", ["z", "signal_w"], ["signal_mm"]),
        helper.make_node("Add", ["signal_mm", "signal_b"], ["signal_logits"]),
        helper.make_node("Sigmoid", ["signal_logits"], ["signals"]),
    ]
    graph = helper.make_graph(
        nodes,
        "liveness_passive",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", d])],
        [
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 3]),
            helper.make_tensor_value_info("signals", TensorProto.FLOAT, ["N", len(signal_names)]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="facesocial")
    model.ir_version = 8
    model.doc_string = doc
    onnx.checker.check_model(model)
    return model.SerializeToString()
