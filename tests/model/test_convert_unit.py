"""Converter unit tests on small synthetic TF.js graph models (no downloads).

Each test writes a ``model.json`` + ``.bin`` by hand, converts it, runs it in
onnxruntime and compares with the plain NumPy TF evaluator
(``facesocial.models.convert.reference``) or with values computed here.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from facesocial.models.convert import ConversionError, convert_tfjs_graph_model, describe_io
from facesocial.models.convert.graph import TensorRef, load_graph
from facesocial.models.convert.reference import run_reference
from facesocial.models.convert.weights import load_weights

ort = pytest.importorskip("onnxruntime")


def _s(text: str) -> dict[str, str]:
    return {"s": base64.b64encode(text.encode()).decode()}


def _ints(*v: int) -> dict[str, Any]:
    return {"list": {"i": [str(x) for x in v]}}


def _node(name: str, op: str, inputs: list[str], **attr: Any) -> dict[str, Any]:
    return {"name": name, "op": op, "input": inputs, "attr": attr}


class _Model:
    """Accumulates nodes and float32/int32 weights, then writes model.json + .bin."""

    def __init__(self, shape: list[int]) -> None:
        dims = [{"size": str(d)} for d in shape]
        self.nodes: list[dict[str, Any]] = [
            _node("x", "Placeholder", [], dtype={"type": "DT_FLOAT"}, shape={"shape": {"dim": dims}})
        ]
        self.weights: list[tuple[str, np.ndarray, dict[str, Any] | None]] = []

    def const(self, name: str, value: np.ndarray, quant: dict[str, Any] | None = None) -> str:
        self.nodes.append(_node(name, "Const", []))
        self.weights.append((name, np.asarray(value), quant))
        return name

    def add(self, name: str, op: str, inputs: list[str], **attr: Any) -> str:
        self.nodes.append(_node(name, op, inputs, **attr))
        return name

    def write(self, folder: Path, outputs: list[str]) -> Path:
        specs, blobs = [], []
        for name, arr, quant in self.weights:
            dtype = "int32" if np.issubdtype(arr.dtype, np.integer) else "float32"
            spec: dict[str, Any] = {"name": name, "shape": list(arr.shape), "dtype": dtype}
            if quant and quant["dtype"] == "uint8":
                lo, hi = float(arr.min()), float(arr.max())
                scale = (hi - lo) / 255 or 1.0
                blobs.append(np.round((arr - lo) / scale).astype(np.uint8).tobytes())
                spec["quantization"] = {"dtype": "uint8", "scale": scale, "min": lo}
            elif quant and quant["dtype"] == "float16":
                blobs.append(arr.astype("<f2").tobytes())
                spec["quantization"] = {"dtype": "float16"}
            else:
                blobs.append(arr.astype("<i4" if dtype == "int32" else "<f4").tobytes())
            specs.append(spec)
        (folder / "m.bin").write_bytes(b"".join(blobs))
        doc = {
            "format": "graph-model",
            "modelTopology": {"node": self.nodes, "library": {}, "versions": {}},
            "weightsManifest": [{"paths": ["m.bin"], "weights": specs}],
            "signature": {
                "inputs": {"x:0": {"name": "x:0", "dtype": "DT_FLOAT"}},
                "outputs": {f"{o}:0": {"name": f"{o}:0", "dtype": "DT_FLOAT"} for o in outputs},
            },
        }
        path = folder / "m.json"
        path.write_text(json.dumps(doc))
        return path


def _check(path: Path, x: np.ndarray, outputs: list[str], tol: float = 1e-4) -> dict[str, np.ndarray]:
    model = convert_tfjs_graph_model(path)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"x": x})
    graph = load_graph(path)
    ref = run_reference(graph, {"x": x}, [TensorRef(o) for o in outputs])
    for name, g, r in zip(outputs, got, ref, strict=True):
        assert g.shape == r.shape, name
        np.testing.assert_allclose(g, r, rtol=tol, atol=tol, err_msg=name)
    return dict(zip(outputs, got, strict=True))


RNG = np.random.default_rng(7)


def _w(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32) * 0.3


def test_convs_pools_and_padding(tmp_path: Path) -> None:
    m = _Model([1, 13, 11, 3])
    m.const("pad", np.array([[0, 0], [1, 2], [2, 1], [0, 0]]))
    m.add("p", "Pad", ["x", "pad"])
    m.const("w1", _w(3, 3, 3, 8), {"dtype": "uint8"})
    m.const("b1", _w(8), {"dtype": "float16"})
    m.const("al", np.abs(_w(1, 1, 8)))
    m.add(
        "c1",
        "_FusedConv2D",
        ["p", "w1", "b1", "al"],
        padding=_s("SAME"),
        strides=_ints(1, 2, 2, 1),
        fused_ops={"list": {"s": [_s("BiasAdd")["s"], _s("Prelu")["s"]]}},
        num_args={"i": "2"},
    )
    m.const("dw", _w(3, 3, 8, 2))
    m.add(
        "d1",
        "DepthwiseConv2dNative",
        ["c1", "dw"],
        padding=_s("SAME"),
        strides=_ints(1, 1, 1, 1),
        dilations=_ints(1, 2, 2, 1),
    )
    m.add("mp", "MaxPool", ["d1"], padding=_s("SAME"), ksize=_ints(1, 3, 3, 1), strides=_ints(1, 2, 2, 1))
    m.add("ap", "AvgPool", ["d1"], padding=_s("SAME"), ksize=_ints(1, 3, 3, 1), strides=_ints(1, 2, 2, 1))
    m.add("sum", "AddV2", ["mp", "ap"])
    m.const("size", np.array([9, 7]))
    m.add("up", "ResizeBilinear", ["sum", "size"], half_pixel_centers={"b": True})
    m.add("d2s", "DepthToSpace", ["up"], block_size={"i": "2"}, data_format=_s("NHWC"))
    m.const("axes", np.array([1, 2]))
    m.add("gap", "Mean", ["d2s", "axes"], keep_dims={"b": False})
    path = m.write(tmp_path, ["d2s", "gap", "mp"])
    _check(path, RNG.random((1, 13, 11, 3), dtype=np.float32), ["d2s", "gap", "mp"])


def test_strided_slice_masks_and_reshape(tmp_path: Path) -> None:
    m = _Model([-1, 6, 5, 4])
    m.const("w", _w(1, 1, 4, 6))
    m.add("c", "Conv2D", ["x", "w"], padding=_s("VALID"), strides=_ints(1, 1, 1, 1))
    for name, (b, e, s), masks in [
        ("s1", ([0, 1, 0], [0, -1, 4], [1, 1, 2]), {"begin_mask": {"i": "1"}, "end_mask": {"i": "1"}}),
        ("s2", ([0, 2], [0, 3], [1, 1]), {"ellipsis_mask": {"i": "1"}, "shrink_axis_mask": {"i": "2"}}),
        (
            "s3",
            ([0, 0, 1], [0, 0, 3], [1, 1, 1]),
            {"begin_mask": {"i": "1"}, "end_mask": {"i": "1"}, "new_axis_mask": {"i": "2"}},
        ),
        ("s4", ([0, -1], [0, 0], [1, -1]), {"begin_mask": {"i": "1"}, "end_mask": {"i": "3"}}),
    ]:
        m.const(name + "/b", np.array(b))
        m.const(name + "/e", np.array(e))
        m.const(name + "/s", np.array(s))
        m.add(name, "StridedSlice", ["c", name + "/b", name + "/e", name + "/s"], **masks)
    m.const("shape", np.array([-1, 30, 6]))
    m.add("r", "Reshape", ["c", "shape"])
    m.const("cax", np.array(-1))
    m.add("cat", "ConcatV2", ["c", "c", "cax"])
    m.add("sm", "Softmax", ["cat"])
    outs = ["s1", "s2", "s3", "s4", "r", "sm"]
    path = m.write(tmp_path, outs)
    _check(path, RNG.random((2, 6, 5, 4), dtype=np.float32), outs)


def test_dense_layers(tmp_path: Path) -> None:
    m = _Model([-1, 4, 4, 2])
    m.const("shape", np.array([-1, 32]))
    m.add("flat", "Reshape", ["x", "shape"])
    m.const("w", _w(32, 5))
    m.const("b", _w(5))
    m.add(
        "fc",
        "_FusedMatMul",
        ["flat", "w", "b"],
        fused_ops={"list": {"s": [_s("BiasAdd")["s"], _s("Relu")["s"]]}},
        num_args={"i": "1"},
    )
    m.const("w2", _w(3, 5))
    m.add("fc2", "MatMul", ["fc", "w2"], transpose_b={"b": True})
    m.add("t", "Tanh", ["fc2"])
    path = m.write(tmp_path, ["t"])
    _check(path, RNG.random((3, 4, 4, 2), dtype=np.float32), ["t"])
    io = describe_io(convert_tfjs_graph_model(path))
    assert io["inputs"] == [{"name": "x", "shape": ["batch", 4, 4, 2], "dtype": "float"}]
    assert io["outputs"][0]["name"] == "t"


def test_uint8_dequantisation(tmp_path: Path) -> None:
    m = _Model([1])
    value = _w(17)
    m.const("q", value, {"dtype": "uint8"})
    m.write(tmp_path, [])
    manifest = json.loads((tmp_path / "m.json").read_text())["weightsManifest"]
    got = load_weights(tmp_path, manifest)["q"]
    assert got.dtype == np.float32
    assert np.abs(got - value).max() <= (value.max() - value.min()) / 255 / 2 + 1e-6


def test_unsupported_op_raises(tmp_path: Path) -> None:
    m = _Model([1, 2])
    m.add("boom", "Cumsum", ["x"])
    path = m.write(tmp_path, ["boom"])
    with pytest.raises(ConversionError, match="Cumsum") as info:
        convert_tfjs_graph_model(path)
    assert info.value.op == "Cumsum" and info.value.node == "boom"
