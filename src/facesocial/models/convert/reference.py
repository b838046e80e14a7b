"""A slow, plain NumPy evaluator of TF.js graph models, for verification only.

It runs the parsed GraphDef directly with TF semantics (NHWC, TF padding
rules) and shares nothing with the ONNX emitter but the file parsing, so a
layout or padding mistake in the converter shows up as a mismatch.  Used by
the tests for models that have no independent TFLite reference.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np

from .errors import ConversionError
from .graph import TensorRef, TfGraph, TfNode

Arr = np.ndarray


def _same(size: int, k: int, s: int, d: int) -> tuple[int, int]:
    eff = (k - 1) * d + 1
    total = max((math.ceil(size / s) - 1) * s + eff - size, 0)
    return total // 2, total - total // 2


def _pads(
    node: TfNode, x: Arr, kh: int, kw: int, sh: int, sw: int, dh: int, dw: int
) -> list[tuple[int, int]]:
    padding = node.s("padding", "VALID")
    if padding == "SAME":
        return [(0, 0), _same(x.shape[1], kh, sh, dh), _same(x.shape[2], kw, sw, dw), (0, 0)]
    if padding == "EXPLICIT":
        e = node.ints("explicit_paddings")
        return [(e[0], e[1]), (e[2], e[3]), (e[4], e[5]), (e[6], e[7])]
    return [(0, 0)] * 4


def _windows(x: Arr, kh: int, kw: int, sh: int, sw: int, dh: int, dw: int) -> Arr:
    """[N, OH, OW, C, kh, kw] patches of an (already padded) NHWC tensor."""
    eh, ew = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    win = np.lib.stride_tricks.sliding_window_view(x, (eh, ew), axis=(1, 2))
    return win[:, ::sh, ::sw, :, ::dh, ::dw]


def _conv(node: TfNode, x: Arr, w: Arr, depthwise: bool) -> Arr:
    kh, kw, cin, m = w.shape
    _, sh, sw, _ = node.ints("strides", [1, 1, 1, 1])
    _, dh, dw, _ = node.ints("dilations", [1, 1, 1, 1])
    xp = np.pad(x, _pads(node, x, kh, kw, sh, sw, dh, dw))
    win = _windows(xp, kh, kw, sh, sw, dh, dw)
    if depthwise:
        y = np.einsum("nhwckl,klcm->nhwcm", win, w, optimize=True)
        return np.asarray(y).reshape((*y.shape[:3], cin * m))
    return np.tensordot(win, w.transpose(2, 0, 1, 3), axes=([3, 4, 5], [0, 1, 2]))


def _act(node: TfNode, y: Arr, fused: list[str], args: list[Arr]) -> Arr:
    rest = list(args)
    for op in fused:
        if op == "BiasAdd":
            y = y + rest.pop(0)
        elif op == "FusedBatchNorm":
            scale, offset, mean, var = rest[:4]
            rest = rest[4:]
            y = (y - mean) * scale / np.sqrt(var + node.f("epsilon", 1e-3)) + offset
        elif op == "Relu":
            y = np.maximum(y, 0)
        elif op == "Relu6":
            y = np.clip(y, 0, 6)
        elif op == "Prelu":
            y = np.where(y > 0, y, rest.pop(0) * y)
        elif op == "LeakyRelu":
            y = np.where(y > 0, y, node.f("leakyrelu_alpha", 0.2) * y)
        elif op == "Elu":
            y = np.where(y > 0, y, np.exp(np.minimum(y, 0)) - 1)
        elif op == "Sigmoid":
            y = 1 / (1 + np.exp(-y))
        elif op == "Tanh":
            y = np.tanh(y)
        else:
            raise ConversionError(f"reference: fused op {op}", op=node.op, node=node.name)
    return y


def _pool(node: TfNode, x: Arr, is_max: bool) -> Arr:
    _, kh, kw, _ = node.ints("ksize")
    _, sh, sw, _ = node.ints("strides")
    pads = _pads(node, x, kh, kw, sh, sw, 1, 1)
    if is_max:
        win = _windows(np.pad(x, pads, constant_values=-np.inf), kh, kw, sh, sw, 1, 1)
        return np.asarray(win.max(axis=(4, 5)))
    total = _windows(np.pad(x, pads), kh, kw, sh, sw, 1, 1).sum(axis=(4, 5))
    count = _windows(np.pad(np.ones_like(x), pads), kh, kw, sh, sw, 1, 1).sum(axis=(4, 5))
    return np.asarray(total / count)


def _resize_bilinear(node: TfNode, x: Arr, size: Arr) -> Arr:
    oh, ow = (int(v) for v in size)
    _, ih, iw, _ = x.shape
    align, half = node.b("align_corners"), node.b("half_pixel_centers")

    def coords(o: int, i: int) -> tuple[Arr, Arr, Arr]:
        if align and o > 1:
            src = np.arange(o) * (i - 1) / (o - 1)
        elif half:
            src = np.maximum((np.arange(o) + 0.5) * i / o - 0.5, 0)
        else:
            src = np.arange(o) * i / o
        lo = np.minimum(np.floor(src).astype(int), i - 1)
        hi = np.minimum(lo + 1, i - 1)
        return lo, hi, (src - lo).astype(np.float32)

    y0, y1, fy = coords(oh, ih)
    x0, x1, fx = coords(ow, iw)
    top = x[:, y0][:, :, x0] * (1 - fx)[None, None, :, None] + x[:, y0][:, :, x1] * fx[None, None, :, None]
    bot = x[:, y1][:, :, x0] * (1 - fx)[None, None, :, None] + x[:, y1][:, :, x1] * fx[None, None, :, None]
    return np.asarray(top * (1 - fy)[None, :, None, None] + bot * fy[None, :, None, None])


def _strided_slice(node: TfNode, x: Arr, begin: Arr, end: Arr, strides: Arr) -> Arr:
    bm, em = node.i("begin_mask", 0), node.i("end_mask", 0)
    el, na, sh = node.i("ellipsis_mask", 0), node.i("new_axis_mask", 0), node.i("shrink_axis_mask", 0)
    idx: list[object] = []
    for i in range(len(begin)):
        if el & (1 << i):
            idx.append(Ellipsis)
        elif na & (1 << i):
            idx.append(None)
        elif sh & (1 << i):
            idx.append(int(begin[i]))
        else:
            b = None if bm & (1 << i) else int(begin[i])
            e = None if em & (1 << i) else int(end[i])
            idx.append(slice(b, e, int(strides[i])))
    return np.asarray(x[tuple(idx)])  # type: ignore[arg-type]


def _depth_to_space(x: Arr, bs: int) -> Arr:
    n, h, w, c = x.shape
    y = x.reshape(n, h, w, bs, bs, c // (bs * bs)).transpose(0, 1, 3, 2, 4, 5)
    return y.reshape(n, h * bs, w * bs, c // (bs * bs))


def _eval_node(node: TfNode, a: list[Arr]) -> list[Arr]:
    op = node.op
    fused = node.strs("fused_ops")
    simple: Mapping[str, Callable[..., Arr]] = {
        "Identity": lambda x: x,
        "Relu": lambda x: np.maximum(x, 0),
        "Relu6": lambda x: np.clip(x, 0, 6),
        "Sigmoid": lambda x: 1 / (1 + np.exp(-x)),
        "Tanh": np.tanh,
        "Abs": np.abs,
        "Neg": np.negative,
        "Square": np.square,
        "Rsqrt": lambda x: 1 / np.sqrt(x),
        "Sqrt": np.sqrt,
        "Exp": np.exp,
        "Add": np.add,
        "AddV2": np.add,
        "BiasAdd": np.add,
        "Sub": np.subtract,
        "Mul": np.multiply,
        "RealDiv": np.divide,
        "Maximum": np.maximum,
        "Minimum": np.minimum,
        "FloorDiv": np.floor_divide,
        "FloorMod": np.mod,
        "Equal": np.equal,
        "Prelu": lambda x, al: np.where(x > 0, x, al * x),
        "LeakyRelu": lambda x: np.where(x > 0, x, node.f("alpha", 0.2) * x),
    }
    if op in simple:
        return [np.asarray(simple[op](*a))]
    if op in ("Conv2D", "_FusedConv2D", "DepthwiseConv2dNative", "FusedDepthwiseConv2dNative"):
        y = _conv(node, a[0], a[1], depthwise="Depthwise" in op)
        return [_act(node, y, fused, a[2:])]
    if op in ("MatMul", "_FusedMatMul"):
        x = a[0].T if node.b("transpose_a") else a[0]
        w = a[1].T if node.b("transpose_b") else a[1]
        return [_act(node, x @ w, fused, a[2:])]
    if op in ("MaxPool", "AvgPool"):
        return [_pool(node, a[0], op == "MaxPool")]
    if op in ("Mean", "Sum", "Max"):
        axes = tuple(int(v) for v in a[1].reshape(-1))
        keep = node.b("keep_dims")
        if op == "Mean":
            return [np.mean(a[0], axis=axes, keepdims=keep)]
        if op == "Sum":
            return [np.sum(a[0], axis=axes, keepdims=keep)]
        return [np.max(a[0], axis=axes, keepdims=keep)]
    if op in ("Softmax",):
        e = np.exp(a[0] - a[0].max(-1, keepdims=True))
        return [e / e.sum(-1, keepdims=True)]
    if op == "Reshape":
        return [a[0].reshape([int(v) for v in a[1]])]
    if op == "Shape":
        return [np.array(a[0].shape, dtype=np.int32)]
    if op == "Squeeze":
        dims = node.ints("squeeze_dims", [])
        return [np.squeeze(a[0], axis=tuple(dims)) if dims else np.squeeze(a[0])]
    if op == "ExpandDims":
        return [np.expand_dims(a[0], int(a[1].reshape(-1)[0]))]
    if op == "Transpose":
        return [a[0].transpose([int(v) for v in a[1]])]
    if op == "StridedSlice":
        return [_strided_slice(node, *a)]
    if op == "ConcatV2":
        return [np.concatenate(a[:-1], int(a[-1]))]
    if op == "Pack":
        return [np.stack(a, node.i("axis", 0))]
    if op in ("Pad", "PadV2"):
        value = float(a[2]) if op == "PadV2" else 0.0
        return [np.pad(a[0], a[1].astype(int), constant_values=value)]
    if op == "DepthToSpace":
        return [_depth_to_space(a[0], node.i("block_size"))]
    if op == "ResizeBilinear":
        return [_resize_bilinear(node, a[0], a[1])]
    if op == "TopKV2":
        k = int(a[1].reshape(-1)[0])
        idx = np.argsort(-a[0], axis=-1, kind="stable")[..., :k]
        return [np.take_along_axis(a[0], idx, -1), idx]
    if op == "GatherV2":
        return [np.take(a[0], a[1], axis=int(a[2].reshape(-1)[0]))]
    if op == "SplitV":
        sizes = [int(v) for v in a[1].reshape(-1)]
        axis = int(a[2].reshape(-1)[0])
        if -1 in sizes:
            sizes[sizes.index(-1)] = a[0].shape[axis] - sum(v for v in sizes if v != -1)
        return list(np.split(a[0], np.cumsum(sizes)[:-1], axis=axis))
    if op == "SparseToDense":
        out = np.full([int(v) for v in a[1].reshape(-1)], a[3])
        ii = a[0] if a[0].ndim == 2 else a[0][:, None]
        out[tuple(ii.T)] = a[2]
        return [out]
    if op == "Cast":
        return [a[0].astype(np.float32 if node.type("DstT") == "DT_FLOAT" else np.int64)]
    raise ConversionError("reference evaluator: op not implemented", op=op, node=node.name)


def run_reference(graph: TfGraph, feeds: Mapping[str, Arr], outputs: list[TensorRef]) -> list[Arr]:
    """Evaluate ``outputs`` given Placeholder values ``feeds`` (by node name)."""
    cache: dict[TensorRef, Arr] = {}

    def get(ref: TensorRef) -> Arr:
        stack = [ref.node]
        while stack:
            name = stack[-1]
            if TensorRef(name) in cache:
                stack.pop()
                continue
            node = graph.nodes[name]
            if node.op == "Const":
                cache[TensorRef(name)] = graph.consts[name]
                stack.pop()
                continue
            if node.op == "Placeholder":
                cache[TensorRef(name)] = np.asarray(feeds[name], dtype=np.float32)
                stack.pop()
                continue
            missing = [r.node for r in node.inputs if r not in cache and TensorRef(r.node) not in cache]
            if missing:
                stack.extend(missing)
                continue
            stack.pop()
            results = _eval_node(node, [cache[r] for r in node.inputs])
            for i, v in enumerate(results):
                cache[TensorRef(name, i)] = v
        return cache[ref]

    return [get(r) for r in outputs]
