"""One function per TF op: TF node + input :class:`Value` s -> ONNX nodes.

Handlers are registered in :data:`HANDLERS` (an explicit dict, so that the
supported op set is greppable).  Each returns one :class:`Value` per TF
output.  Shapes are tracked in TF (NHWC) order; see ``builder.py`` for the
layout scheme.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from onnx import TensorProto

from .builder import TO_NCHW, Builder, Shape, Value
from .errors import ConversionError
from .graph import TfNode

Handler = Callable[[Builder, TfNode, list[Value]], list[Value]]

_INT64_MAX = np.iinfo(np.int64).max
_INT64_MIN = np.iinfo(np.int64).min


def _err(node: TfNode, msg: str) -> ConversionError:
    return ConversionError(msg, op=node.op, node=node.name)


def _const(node: TfNode, v: Value, what: str) -> np.ndarray:
    """The conversion-time value of input ``v``; error if it is computed at run time."""
    if v.const is None:
        raise _err(node, f"{what} must be a constant")
    return v.const


def _broadcast(shapes: Sequence[Shape | None]) -> Shape | None:
    """NumPy broadcasting of TF shapes with ``None`` for unknown dims."""
    if any(s is None for s in shapes):
        return None
    rank = max(len(s) for s in shapes if s is not None)
    out: list[int | None] = []
    for i in range(rank):
        dims = [s[len(s) - rank + i] for s in shapes if s is not None and len(s) - rank + i >= 0]
        known = [d for d in dims if d is not None and d != 1]
        if known:
            out.append(known[0])
        elif any(d is None for d in dims):
            out.append(None)
        else:
            out.append(1)
    return tuple(out)


def _dtype_of(tf_type: str) -> int:
    if tf_type in ("DT_FLOAT", "DT_HALF", "DT_DOUBLE"):
        return TensorProto.FLOAT
    if tf_type == "DT_BOOL":
        return TensorProto.BOOL
    if tf_type in ("DT_INT32", "DT_INT64", "DT_INT16", "DT_INT8", "DT_UINT8"):
        return TensorProto.INT64
    raise ConversionError(f"unsupported TF dtype {tf_type}")


_NP_OF: dict[int, type] = {
    TensorProto.FLOAT: np.float32,
    TensorProto.INT64: np.int64,
    TensorProto.BOOL: np.bool_,
}


def _np_of(dtype: int) -> type:
    return _NP_OF[dtype]


# --------------------------------------------------------------- element-wise
def _choose_nchw(vals: Sequence[Value]) -> bool:
    """Run an element-wise op in NCHW when that avoids transposing activations.

    True when some input is stored NCHW and every other input is either a
    constant (broadcast-aligned when permuted) or another 4-D tensor.
    """
    if not any(v.nchw or v.pad_src is not None for v in vals):
        return False
    return all(v.const is not None or v.rank == 4 for v in vals)


_NP_BINARY: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "Add": np.add,
    "Sub": np.subtract,
    "Mul": np.multiply,
    "Div": np.divide,
    "Max": np.maximum,
    "Min": np.minimum,
    "Pow": np.power,
    "Equal": np.equal,
    "Greater": np.greater,
    "Less": np.less,
    "GreaterOrEqual": np.greater_equal,
    "LessOrEqual": np.less_equal,
    "And": np.logical_and,
    "Or": np.logical_or,
}


def _binary(onnx_op: str, out_dtype: int | None = None) -> Handler:
    def handler(b: Builder, node: TfNode, ins: list[Value]) -> list[Value]:
        x, y = ins[0], ins[1]
        if onnx_op in ("Div",) and x.dtype == TensorProto.INT64 and node.op == "RealDiv":
            raise _err(node, "integer RealDiv is not supported")
        dtype = out_dtype if out_dtype is not None else x.dtype
        if x.const is not None and y.const is not None:
            res = _NP_BINARY[onnx_op](x.const, y.const)
            if onnx_op == "Div" and x.dtype == TensorProto.INT64:
                res = np.floor_divide(x.const, y.const)
            return [Value.of_const(res)]
        nchw = _choose_nchw([x, y])
        name = b.node1(onnx_op, [b.as_layout(x, nchw), b.as_layout(y, nchw)], node.name)
        return [Value(_broadcast([x.shape, y.shape]), dtype, name, nchw)]

    return handler


def _nary_layout(vals: Sequence[Value]) -> bool:
    return _choose_nchw(vals)


def _unary(onnx_op: str, np_fn: Callable[[np.ndarray], np.ndarray] | None = None, **attrs: object) -> Handler:
    def handler(b: Builder, node: TfNode, ins: list[Value]) -> list[Value]:
        x = ins[0]
        if x.const is not None and np_fn is not None:
            return [Value.of_const(np_fn(x.const))]
        nchw = _nary_layout([x])
        name = b.node1(onnx_op, [b.as_layout(x, nchw)], node.name, **attrs)
        return [Value(x.shape, x.dtype, name, nchw)]

    return handler


def _relu6(b: Builder, node: TfNode, ins: list[Value]) -> list[Value]:
    x = ins[0]
    nchw = _nary_layout([x])
    name = b.node1("Clip", [b.as_layout(x, nchw), b.scalar_f(0.0), b.scalar_f(6.0)], node.name)
    return [Value(x.shape, x.dtype, name, nchw)]


def _leaky_relu(b: Builder, node: TfNode, ins: list[Value]) -> list[Value]:
    x = ins[0]
    nchw = _nary_layout([x])
    name = b.node1("LeakyRelu", [b.as_layout(x, nchw)], node.name, alpha=node.f("alpha", 0.2))
    return [Value(x.shape, x.dtype, name, nchw)]


def _rsqrt(b: Builder, node: TfNode, ins: list[Value]) -> list[Value]:
    x = ins[0]
    if x.const is not None:
        return [Value.of_const(1.0 / np.sqrt(x.const))]
    nchw = _nary_layout([x])
    s = b.node1("Sqrt", [b.as_layout(x, nchw)], node.name + "/sqrt")
    return [Value(x.shape, x.dtype, b.node1("Reciprocal", [s], node.name), nchw)]


def _square(b: Builder, node: TfNode, ins: list[Value]) -> list[Value]:
    x = ins[0]
    if x.const is not None:
        return [Value.of_const(x.const * x.const)]
    nchw = _nary_layout([x])
    xn = b.as_layout(x, nchw)
    return [Value(x.shape, x.dtype, b.node1("Mul", [xn, xn], node.name), nchw)]


def _squared_difference(b: Builder, node: TfNode, ins: list[Value]) -> list[Value]:
    (d,) = _binary("Sub")(b, node, ins)
    return _square(b, node, [d])


def _prelu_values(b: Builder, x: Value, alpha: Value, hint: str) -> Value:
    """``x if x > 0 else alpha * x`` (TF.js Prelu; alpha is the positive slope)."""
    nchw = _nary_layout([x, alpha])
    slope = b.as_layout(alpha, nchw)
    name = b.node1("PRelu", [b.as_layout(x, nchw), slope], hint)
    return Value(x.shape, x.dtype, name, nchw)


def _prelu(b: Builder, node: TfNode, ins: list[Value]) -> list[Value]:
    return [_prelu_values(b, ins[0], ins[1], node.name)]


def _floor_div(b: Builder, node: TfNode, ins: list[Value]) -> list[Value]:
    x, y = ins
    if x.const is not None and y.const is not None:
        return [Value.of_const(np.floor_divide(x.const, y.const))]
    (q,) = _binary("Div")(b, node, ins)
    if x.dtype == TensorProto.INT64:
        # ONNX integer Div truncates; TF floors.  Equal for the non-negative
        # indices this is used on (CenterNet's top-k decoding).
        return [q]
    return [Value(q.shape, q.dtype, b.node1("Floor", [q.name], node.name + "/floor"), q.nchw)]


def _floor_mod(b: Builder, node: TfNode, ins: list[Value]) -> list[Value]:
    x, y = ins
    if x.const is not None and y.const is not None:
        return [Value.of_const(np.mod(x.const, y.const))]
    nchw = _choose_nchw([x, y])
    fmod = 0 if x.dtype == TensorProto.INT64 else 1
    name = b.node1("Mod", [b.as_layout(x, nchw), b.as_layout(y, nchw)], node.name, fmod=fmod)
    return [Value(_broadcast([x.shape, y.shape]), x.dtype, name, nchw)]


def _identity(b: Builder, node: TfNode, ins: list[Value]) -> list[Value]:
    return [ins[0]]


# -------------------------------------------------------------- convolutions
def _same_pads(size: int | None, k: int, s: int, d: int) -> tuple[int, int]:
    """TF SAME padding (extra pixel at the end, = ONNX SAME_UPPER)."""
    if size is None:
        raise ConversionError("SAME padding needs a static spatial size")
    eff = (k - 1) * d + 1
    out = math.ceil(size / s)
    total = max((out - 1) * s + eff - size, 0)
    return total // 2, total - total // 2


def _out_size(size: int | None, k: int, s: int, d: int, before: int, after: int) -> int | None:
    if size is None:
        return None
    return (size + before + after - ((k - 1) * d + 1)) // s + 1


def _spatial_pads(node: TfNode, x: Value, kh: int, kw: int, sh: int, sw: int, dh: int, dw: int) -> list[int]:
    """[top, left, bottom, right] for the TF padding mode of ``node``."""
    padding = node.s("padding", "VALID")
    if padding == "VALID":
        return [0, 0, 0, 0]
    if padding == "EXPLICIT":
        e = node.ints("explicit_paddings")
        return [e[2], e[4], e[3], e[5]]
    if padding != "SAME":
        raise _err(node, f"padding {padding!r} is not supported")
    assert x.shape is not None
    t, bo = _same_pads(x.shape[1], kh, sh, dh)
    le, r = _same_pads(x.shape[2], kw, sw, dw)
    return [t, le, bo, r]


def _fold_bn(
    node: TfNode, w: np.ndarray, bias: np.ndarray, args: list[Value], eps: float
) -> tuple[np.ndarray, np.ndarray]:
    """Fold FusedBatchNorm(scale, offset, mean, var) into conv weight/bias (out channels first)."""
    scale, offset, mean, var = (_const(node, a, "batch-norm parameter").astype(np.float32) for a in args[:4])
    k = scale / np.sqrt(var + eps)
    w = w * k.reshape((-1,) + (1,) * (w.ndim - 1))
    return w, (bias - mean) * k + offset


def _apply_fused(b: Builder, node: TfNode, y: Value, ops: list[str], extra: list[Value]) -> Value:
    """Apply the activation that a fused TF op carries after its BiasAdd."""
    for op in ops:
        if op == "Relu":
            y = Value(y.shape, y.dtype, b.node1("Relu", [b.as_layout(y, y.nchw)], node.name), y.nchw)
        elif op == "Relu6":
            name = b.node1("Clip", [b.as_layout(y, y.nchw), b.scalar_f(0.0), b.scalar_f(6.0)], node.name)
            y = Value(y.shape, y.dtype, name, y.nchw)
        elif op == "Elu":
            y = Value(y.shape, y.dtype, b.node1("Elu", [b.as_layout(y, y.nchw)], node.name), y.nchw)
        elif op == "Sigmoid":
            y = Value(y.shape, y.dtype, b.node1("Sigmoid", [b.as_layout(y, y.nchw)], node.name), y.nchw)
        elif op == "Tanh":
            y = Value(y.shape, y.dtype, b.node1("Tanh", [b.as_layout(y, y.nchw)], node.name), y.nchw)
        elif op == "LeakyRelu":
            alpha = node.f("leakyrelu_alpha", 0.2)
            y = Value(
                y.shape,
                y.dtype,
                b.node1("LeakyRelu", [b.as_layout(y, y.nchw)], node.name, alpha=alpha),
                y.nchw,
            )
        elif op == "Prelu":
            if not extra:
                raise _err(node, "fused Prelu without alpha argument")
            y = _prelu_values(b, y, extra[0], node.name)
        elif op in ("BiasAdd", "FusedBatchNorm", "Add"):
            continue
        else:
            raise _err(node, f"fused op {op!r} is not supported")
    return y


def _conv(depthwise: bool) -> Handler:
    def handler(b: Builder, node: TfNode, ins: list[Value]) -> list[Value]:
        if node.s("data_format", "NHWC") != "NHWC":
            raise _err(node, "only NHWC convolutions are supported")
        x, wv = ins[0], ins[1]
        w = _const(node, wv, "filter").astype(np.float32)
        if x.rank != 4:
            raise _err(node, f"input rank {x.rank} (need 4)")
        kh, kw, cin, m = w.shape
        _, sh, sw, _ = node.ints("strides", [1, 1, 1, 1])
        _, dh, dw, _ = node.ints("dilations", [1, 1, 1, 1])
        if depthwise:
            # [kh, kw, C, M] -> [C*M, 1, kh, kw]; TF output channel c*M + m
            # is ONNX group c's m-th filter, so a plain reshape keeps order.
            w_onnx = w.reshape(kh, kw, cin * m).transpose(2, 0, 1)[:, None]
            group, cout = cin, cin * m
        else:
            w_onnx = w.transpose(3, 2, 0, 1)
            group, cout = 1, m
            if x.shape is not None and x.shape[3] is not None and x.shape[3] != cin:
                group = x.shape[3] // cin
                if group * cin != x.shape[3]:
                    raise _err(node, "input channels do not match the filter")
        bias = np.zeros(cout, dtype=np.float32)
        fused = node.strs("fused_ops")
        args = ins[2:]
        extra = list(args)
        if fused and fused[0] == "BiasAdd":
            bias = _const(node, args[0], "bias").astype(np.float32).reshape(-1)
            extra = list(args[1:])
        elif fused and fused[0] == "FusedBatchNorm":
            w_onnx, bias = _fold_bn(node, w_onnx, bias, list(args), node.f("epsilon", 1e-3))
            extra = list(args[4:])
        pads = _spatial_pads(node, x, kh, kw, sh, sw, dh, dw)
        src = x
        if x.pad_src is not None:
            # Fold the preceding zero Pad into the conv's own padding.
            t, bo, le, r = x.pad_hw
            pads = [pads[0] + t, pads[1] + le, pads[2] + bo, pads[3] + r]
            src = x.pad_src
        name = b.node1(
            "Conv",
            [b.nchw(src), b.initializer(w_onnx, node.name + "/W"), b.initializer(bias, node.name + "/B")],
            node.name + ("/conv" if fused[1:] else ""),
            kernel_shape=[kh, kw],
            strides=[sh, sw],
            dilations=[dh, dw],
            pads=pads,
            group=group,
        )
        shape: Shape | None = None
        if x.shape is not None:
            shape = (
                x.shape[0],
                _out_size(_dim(x, 1), kh, sh, dh, pads[0] - _padded(x, 0), pads[2] - _padded(x, 1)),
                _out_size(_dim(x, 2), kw, sw, dw, pads[1] - _padded(x, 2), pads[3] - _padded(x, 3)),
                cout,
            )
        y = Value(shape, TensorProto.FLOAT, name, True)
        return [_apply_fused(b, node, y, fused[1:], extra)]

    return handler


def _dim(x: Value, i: int) -> int | None:
    """TF dim ``i`` of ``x`` (after any deferred pad)."""
    assert x.shape is not None
    return x.shape[i]


def _padded(x: Value, i: int) -> int:
    """How much of ``pads`` came from a folded Pad (already in ``x.shape``): t, b, l, r order."""
    if x.pad_src is None:
        return 0
    t, bo, le, r = x.pad_hw
    return (t, bo, le, r)[i]


def _pool(onnx_op: str) -> Handler:
    def handler(b: Builder, node: TfNode, ins: list[Value]) -> list[Value]:
        x = ins[0]
        if node.s("data_format", "NHWC") != "NHWC" or x.rank != 4:
            raise _err(node, "only 4-D NHWC pooling is supported")
        _, kh, kw, _ = node.ints("ksize")
        _, sh, sw, _ = node.ints("strides")
        pads = _spatial_pads(node, x, kh, kw, sh, sw, 1, 1)
        attrs: dict[str, object] = {"kernel_shape": [kh, kw], "strides": [sh, sw], "pads": pads}
        if onnx_op == "AveragePool":
            # TF averages over the valid (unpadded) window only.
            attrs["count_include_pad"] = 0
        name = b.node1(onnx_op, [b.nchw(x)], node.name, **attrs)
        assert x.shape is not None
        shape = (
            x.shape[0],
            _out_size(x.shape[1], kh, sh, 1, pads[0], pads[2]),
            _out_size(x.shape[2], kw, sw, 1, pads[1], pads[3]),
            x.shape[3],
        )
        return [Value(shape, TensorProto.FLOAT, name, True)]

    return handler


def _matmul(b: Builder, node: TfNode, ins: list[Value]) -> list[Value]:
    a, w = ins[0], ins[1]
    ta, tb = node.b("transpose_a"), node.b("transpose_b")
    if a.rank != 2 or w.rank != 2:
        if ta or tb or node.strs("fused_ops"):
            raise _err(node, "batched MatMul with transposes/fusion is not supported")
        name = b.node1("MatMul", [b.nhwc(a), b.nhwc(w)], node.name)
        assert a.shape is not None and w.shape is not None
        return [Value(a.shape[:-1] + w.shape[-1:], TensorProto.FLOAT, name)]
    assert a.shape is not None and w.shape is not None
    n_out = w.shape[0] if tb else w.shape[1]
    fused = node.strs("fused_ops")
    inputs = [b.nhwc(a), b.nhwc(w)]
    extra = ins[2:]
    if fused and fused[0] == "BiasAdd":
        inputs.append(b.nhwc(ins[2]))
        extra = ins[3:]
    hint = node.name + ("/gemm" if fused[1:] else "")
    name = b.node1("Gemm", inputs, hint, transA=int(ta), transB=int(tb))
    y = Value((a.shape[1] if ta else a.shape[0], n_out), TensorProto.FLOAT, name)
    return [_apply_fused(b, node, y, fused[1:], list(extra))]


def _bias_add(b: Builder, node: TfNode, ins: list[Value]) -> list[Value]:
    if node.s("data_format", "NHWC") != "NHWC":
        raise _err(node, "only NHWC BiasAdd is supported")
    return _binary("Add")(b, node, ins)


# ------------------------------------------------------------ shape/reshape
def _reshape(b: Builder, node: TfNode, ins: list[Value]) -> list[Value]:
    x, s = ins
    if s.const is None:
        name = b.node1("Reshape", [b.nhwc(x), b.nhwc(s)], node.name)
        rank = s.shape[0] if s.shape else None
        return [Value(None if rank is None else (None,) * rank, x.dtype, name)]
    target = [int(v) for v in s.const.reshape(-1)]
    if x.const is not None:
        return [Value.of_const(x.const.reshape(target))]
    shape: list[int | None] = [d if d >= 0 else None for d in target]
    if -1 in target and x.shape is not None and all(d is not None for d in x.shape):
        known = int(np.prod([d for d in target if d != -1]))
        total = int(np.prod([d for d in x.shape if d is not None]))
        shape[target.index(-1)] = total // known if known else 0
    if 0 in target:
        raise _err(node, "zero-sized reshape is not supported")
    name = b.node1("Reshape", [b.nhwc(x), b.int64(target, node.name + "/shape")], node.name)
    return [Value(tuple(shape), x.dtype, name)]


def _shape(b: Builder, node: TfNode, ins: list[Value]) -> list[Value]:
    x = ins[0]
    if x.shape is not None and all(d is not None for d in x.shape):
        return [Value.of_const(np.array(x.shape, dtype=np.int64))]
    if x.shape is None:
        raise _err(node, "Shape of a tensor with unknown rank")
    if x.nchw or x.pad_src is not None:
        # Shape of the stored NCHW tensor, permuted back: avoids a Transpose.
        s = b.node1("Shape", [b.nchw(x)], node.name + "/nchw")
        name = b.node1("Gather", [s, b.int64([0, 2, 3, 1], "to_nhwc_idx")], node.name, axis=0)
    else:
        name = b.node1("Shape", [b.nhwc(x)], node.name)
    return [Value((len(x.shape),), TensorProto.INT64, name)]


def _squeeze(b: Builder, node: TfNode, ins: list[Value]) -> list[Value]:
    x = ins[0]
    if x.shape is None:
        raise _err(node, "Squeeze of unknown rank")
    rank = len(x.shape)
    dims = [d % rank for d in node.ints("squeeze_dims", [])]
    if not dims:
        dims = [i for i, d in enumerate(x.shape) if d == 1]
    shape = tuple(d for i, d in enumerate(x.shape) if i not in dims)
    if x.const is not None:
        return [Value.of_const(np.squeeze(x.const, axis=tuple(dims)))]
    name = b.node1("Squeeze", [b.nhwc(x), b.int64(dims)], node.name)
    return [Value(shape, x.dtype, name)]


def _expand_dims(b: Builder, node: TfNode, ins: list[Value]) -> list[Value]:
    x, a = ins
    if x.shape is None:
        raise _err(node, "ExpandDims of unknown rank")
    axis = int(_const(node, a, "axis").reshape(-1)[0])
    if axis < 0:
        axis += len(x.shape) + 1
    if x.const is not None:
        return [Value.of_const(np.expand_dims(x.const, axis))]
    shape = (*x.shape[:axis], 1, *x.shape[axis:])
    return [Value(shape, x.dtype, b.node1("Unsqueeze", [b.nhwc(x), b.int64([axis])], node.name))]


def _transpose(b: Builder, node: TfNode, ins: list[Value]) -> list[Value]:
    x, p = ins
    perm = [int(v) for v in _const(node, p, "perm").reshape(-1)]
    if x.const is not None:
        return [Value.of_const(x.const.transpose(perm))]
    assert x.shape is not None
    shape = tuple(x.shape[i] for i in perm)
    # A TF transpose NCHW->NHWC of a tensor stored as-is *is* our NCHW
    # storage of the result (and vice versa): no data movement needed.
    if perm == [0, 2, 3, 1] and not x.nchw and x.pad_src is None:
        return [Value(shape, x.dtype, x.name, True)]
    if perm == [0, 3, 1, 2] and (x.nchw or x.pad_src is not None):
        return [Value(shape, x.dtype, b.nchw(x), False)]
    return [Value(shape, x.dtype, b.node1("Transpose", [b.nhwc(x)], node.name, perm=perm))]


def _depth_to_space(b: Builder, node: TfNode, ins: list[Value]) -> list[Value]:
    x = ins[0]
    bs = node.i("block_size")
    if node.s("data_format", "NHWC") != "NHWC" or x.shape is None:
        raise _err(node, "only NHWC DepthToSpace is supported")
    # TF's NHWC channel order (by*bs + bx)*C' + c is ONNX's DCR mode.
    name = b.node1("DepthToSpace", [b.nchw(x)], node.name, blocksize=bs, mode="DCR")
    n, h, w, c = x.shape
    shape = (
        n,
        None if h is None else h * bs,
        None if w is None else w * bs,
        None if c is None else c // (bs * bs),
    )
    return [Value(shape, x.dtype, name, True)]


def _resize(mode: str) -> Handler:
    def handler(b: Builder, node: TfNode, ins: list[Value]) -> list[Value]:
        x, sz = ins
        oh, ow = (int(v) for v in _const(node, sz, "size").reshape(-1))
        align, half = node.b("align_corners"), node.b("half_pixel_centers")
        attrs: dict[str, object] = {"mode": mode, "axes": [2, 3]}
        if align:
            attrs["coordinate_transformation_mode"] = "align_corners"
            if mode == "nearest":
                attrs["nearest_mode"] = "round_prefer_ceil"
        elif half:
            attrs["coordinate_transformation_mode"] = (
                "half_pixel" if mode == "linear" else "tf_half_pixel_for_nn"
            )
            if mode == "nearest":
                attrs["nearest_mode"] = "floor"
        else:
            attrs["coordinate_transformation_mode"] = "asymmetric"
            if mode == "nearest":
                attrs["nearest_mode"] = "floor"
        name = b.node1(
            "Resize", [b.nchw(x), "", "", b.int64([oh, ow], node.name + "/sizes")], node.name, **attrs
        )
        assert x.shape is not None
        return [Value((x.shape[0], oh, ow, x.shape[3]), x.dtype, name, True)]

    return handler


def _pad(b: Builder, node: TfNode, ins: list[Value]) -> list[Value]:
    x, p = ins[0], ins[1]
    pads = _const(node, p, "paddings").astype(np.int64).reshape(-1, 2)
    value = 0.0
    if node.op == "PadV2":
        value = float(_const(node, ins[2], "constant value").reshape(-1)[0])
    mode = "constant"
    if node.op == "MirrorPad":
        mode = "reflect" if node.s("mode").upper() == "REFLECT" else "edge"
        if node.s("mode").upper() == "SYMMETRIC":
            raise _err(node, "SYMMETRIC MirrorPad is not supported")
    assert x.shape is not None
    shape = tuple(None if d is None else d + int(a + c) for d, (a, c) in zip(x.shape, pads, strict=True))
    if x.const is not None and mode == "constant":
        return [Value.of_const(np.pad(x.const, pads, constant_values=value))]
    if len(shape) == 4 and mode == "constant" and value == 0.0 and not pads[0].any() and not pads[3].any():
        # Defer: a following Conv absorbs it; see Value.pad_src.
        src = x.pad_src if x.pad_src is not None else x
        t, bo, le, r = x.pad_hw
        hw = (t + int(pads[1][0]), bo + int(pads[1][1]), le + int(pads[2][0]), r + int(pads[2][1]))
        return [Value(shape, x.dtype, nchw=True, pad_src=src, pad_hw=hw)]
    nchw = x.rank == 4 and (x.nchw or x.pad_src is not None)
    order = list(TO_NCHW) if nchw else list(range(len(shape)))
    onnx_pads = [int(pads[i][0]) for i in order] + [int(pads[i][1]) for i in order]
    inputs = [b.nchw(x) if nchw else b.nhwc(x), b.int64(onnx_pads, node.name + "/pads")]
    if mode == "constant" and value != 0.0:
        inputs.append(b.initializer(np.array(value, dtype=_np_of(x.dtype)), node.name + "/value"))
    name = b.node1("Pad", inputs, node.name, mode=mode)
    return [Value(shape, x.dtype, name, nchw)]


def _concat(b: Builder, node: TfNode, ins: list[Value]) -> list[Value]:
    vals, a = ins[:-1], ins[-1]
    axis = int(_const(node, a, "axis").reshape(-1)[0])
    rank = vals[0].rank
    if rank is None:
        raise _err(node, "ConcatV2 of unknown rank")
    axis %= rank
    if all(v.const is not None for v in vals):
        return [Value.of_const(np.concatenate([v.const for v in vals if v.const is not None], axis))]
    shapes = [v.shape for v in vals]
    out: Shape | None = None
    if all(s is not None for s in shapes):
        dims = [s[axis] for s in shapes if s is not None]
        total = None if any(d is None for d in dims) else sum(d for d in dims if d is not None)
        first = shapes[0]
        assert first is not None
        out = (*first[:axis], total, *first[axis + 1 :])
    nchw = rank == 4 and any(v.nchw or v.pad_src is not None for v in vals)
    onnx_axis = TO_NCHW.index(axis) if nchw else axis
    names = [b.nchw(v) if nchw else b.nhwc(v) for v in vals]
    return [Value(out, vals[0].dtype, b.node1("Concat", names, node.name, axis=onnx_axis), nchw)]


def _pack(b: Builder, node: TfNode, ins: list[Value]) -> list[Value]:
    axis = node.i("axis", 0)
    if all(v.const is not None for v in ins):
        return [Value.of_const(np.stack([v.const for v in ins if v.const is not None], axis))]
    rank = ins[0].rank
    if rank is None:
        raise _err(node, "Pack of unknown rank")
    axis %= rank + 1
    dtype = ins[0].dtype
    parts = [b.node1("Unsqueeze", [b.nhwc(v), b.int64([axis])], node.name + "/unsq") for v in ins]
    shape0 = ins[0].shape
    assert shape0 is not None
    shape = (*shape0[:axis], len(ins), *shape0[axis:])
    return [Value(shape, dtype, b.node1("Concat", parts, node.name, axis=axis))]


def _strided_slice(b: Builder, node: TfNode, ins: list[Value]) -> list[Value]:
    x = ins[0]
    begin = [int(v) for v in _const(node, ins[1], "begin").reshape(-1)]
    end = [int(v) for v in _const(node, ins[2], "end").reshape(-1)]
    strides = [int(v) for v in _const(node, ins[3], "strides").reshape(-1)]
    bm, em = node.i("begin_mask", 0), node.i("end_mask", 0)
    ellipsis, new_axis, shrink = (
        node.i("ellipsis_mask", 0),
        node.i("new_axis_mask", 0),
        node.i("shrink_axis_mask", 0),
    )
    if x.shape is None:
        raise _err(node, "StridedSlice of unknown rank")
    rank = len(x.shape)
    n_spec = len(begin)
    # Expand the sparse TF spec to one entry per input dim (+ new axes).
    # kind: "slice" (dim, start, stop, step), "shrink" (dim, idx), "new".
    entries: list[tuple[str, int, int, int, int]] = []
    dim = 0
    real_after_ellipsis = 0
    for i in range(n_spec):
        if ellipsis & (1 << i):
            real_after_ellipsis = sum(1 for j in range(i + 1, n_spec) if not new_axis & (1 << j))
            while dim < rank - real_after_ellipsis:
                entries.append(("slice", dim, 0, _INT64_MAX, 1))
                dim += 1
            continue
        if new_axis & (1 << i):
            entries.append(("new", -1, 0, 0, 0))
            continue
        st = strides[i]
        if shrink & (1 << i):
            entries.append(("shrink", dim, begin[i], 0, 0))
        else:
            start = (0 if st > 0 else _INT64_MAX) if bm & 1 << i else begin[i]
            stop = (_INT64_MAX if st > 0 else _INT64_MIN) if em & 1 << i else end[i]
            entries.append(("slice", dim, start, stop, st))
        dim += 1
    while dim < rank:
        entries.append(("slice", dim, 0, _INT64_MAX, 1))
        dim += 1

    if x.const is not None:
        idx: list[object] = []
        for kind, _d, start, stop, st in entries:
            if kind == "new":
                idx.append(None)
            elif kind == "shrink":
                idx.append(start)
            else:
                idx.append(slice(_clip_none(start), _clip_none(stop), st))
        return [Value.of_const(np.asarray(x.const[tuple(idx)]))]  # type: ignore[arg-type]

    starts, stops, axes, steps = [], [], [], []
    out_shape: list[int | None] = []
    squeeze_axes: list[int] = []
    new_positions: list[int] = []
    for kind, d, start, stop, st in entries:
        if kind == "new":
            new_positions.append(len(out_shape))
            out_shape.append(1)
            continue
        size = x.shape[d]
        if kind == "shrink":
            starts.append(start)
            stops.append(start + 1 if start != -1 else _INT64_MAX)
            axes.append(d)
            steps.append(1)
            squeeze_axes.append(d)
            continue
        if not (start == 0 and stop == _INT64_MAX and st == 1):
            starts.append(start)
            stops.append(stop)
            axes.append(d)
            steps.append(st)
        out_shape.append(
            None if size is None else len(range(size)[slice(_clip_none(start), _clip_none(stop), st)])
        )
    cur = b.nhwc(x)
    if axes:
        cur = b.node1(
            "Slice",
            [cur, b.int64(starts), b.int64(stops), b.int64(axes), b.int64(steps)],
            node.name + ("/slice" if squeeze_axes or new_positions else ""),
        )
    if squeeze_axes:
        cur = b.node1("Squeeze", [cur, b.int64(squeeze_axes)], node.name + ("/sq" if new_positions else ""))
    if new_positions:
        cur = b.node1("Unsqueeze", [cur, b.int64(new_positions)], node.name)
    if cur == b.nhwc(x):
        cur = b.node1("Identity", [cur], node.name)
    return [Value(tuple(out_shape), x.dtype, cur)]


def _clip_none(v: int) -> int | None:
    return None if v in (_INT64_MAX, _INT64_MIN) else v


def _reduce(onnx_op: str, np_fn: Callable[..., np.ndarray]) -> Handler:
    def handler(b: Builder, node: TfNode, ins: list[Value]) -> list[Value]:
        x, a = ins
        if x.shape is None:
            raise _err(node, "reduction of unknown rank")
        rank = len(x.shape)
        axes = sorted({int(v) % rank for v in _const(node, a, "axes").reshape(-1)})
        keep = node.b("keep_dims")
        if x.const is not None:
            return [Value.of_const(np_fn(x.const, axis=tuple(axes), keepdims=keep))]
        shape = tuple((1 if i in axes else d) for i, d in enumerate(x.shape) if keep or i not in axes)
        stored_nchw = x.nchw or x.pad_src is not None
        # NCHW order survives when the kept dims appear in the same relative
        # order in both layouts: keep_dims (stays 4-D), or C reduced, or
        # both H and W reduced.
        nchw = rank == 4 and stored_nchw and (keep or 3 in axes or {1, 2} <= set(axes))
        if nchw:
            src, onnx_axes = b.nchw(x), [TO_NCHW.index(i) for i in axes]
        else:
            src, onnx_axes = b.nhwc(x), axes
        name = b.node1(onnx_op, [src, b.int64(onnx_axes)], node.name, keepdims=int(keep))
        return [Value(shape, x.dtype, name, nchw and keep)]

    return handler


def _softmax(b: Builder, node: TfNode, ins: list[Value]) -> list[Value]:
    x = ins[0]
    nchw = x.rank == 4 and (x.nchw or x.pad_src is not None)
    src = b.nchw(x) if nchw else b.nhwc(x)
    op = "LogSoftmax" if node.op == "LogSoftmax" else "Softmax"
    return [Value(x.shape, x.dtype, b.node1(op, [src], node.name, axis=1 if nchw else -1), nchw)]


def _cast(b: Builder, node: TfNode, ins: list[Value]) -> list[Value]:
    x = ins[0]
    to = _dtype_of(node.type("DstT"))
    if x.const is not None:
        return [Value.of_const(x.const.astype(_np_of(to)))]
    if to == x.dtype:
        return [x]
    nchw = _nary_layout([x])
    return [Value(x.shape, to, b.node1("Cast", [b.as_layout(x, nchw)], node.name, to=to), nchw)]


def _topk(b: Builder, node: TfNode, ins: list[Value]) -> list[Value]:
    x, k = ins
    kk = int(_const(node, k, "k").reshape(-1)[0])
    assert x.shape is not None
    vals, idx = b.node("TopK", [b.nhwc(x), b.int64([kk])], node.name, 2, axis=-1, largest=1, sorted=1)
    shape = (*x.shape[:-1], kk)
    return [Value(shape, x.dtype, vals), Value(shape, TensorProto.INT64, idx)]


def _gather(b: Builder, node: TfNode, ins: list[Value]) -> list[Value]:
    params, indices = ins[0], ins[1]
    axis = int(_const(node, ins[2], "axis").reshape(-1)[0]) if len(ins) > 2 else 0
    if node.i("batch_dims", 0) != 0:
        raise _err(node, "batch_dims != 0 is not supported")
    if params.const is not None and indices.const is not None:
        return [Value.of_const(np.take(params.const, indices.const, axis=axis))]
    assert params.shape is not None and indices.shape is not None
    axis %= len(params.shape)
    shape = params.shape[:axis] + indices.shape + params.shape[axis + 1 :]
    return [
        Value(shape, params.dtype, b.node1("Gather", [b.nhwc(params), b.nhwc(indices)], node.name, axis=axis))
    ]


def _split_v(b: Builder, node: TfNode, ins: list[Value]) -> list[Value]:
    x, sizes_v, a = ins
    sizes = [int(v) for v in _const(node, sizes_v, "size_splits").reshape(-1)]
    assert x.shape is not None
    rank = len(x.shape)
    axis = int(_const(node, a, "axis").reshape(-1)[0]) % rank
    if -1 in sizes:
        total = x.shape[axis]
        if total is None:
            raise _err(node, "SplitV with -1 on an unknown dimension")
        sizes[sizes.index(-1)] = total - sum(s for s in sizes if s != -1)
    nchw = rank == 4 and (x.nchw or x.pad_src is not None)
    src = b.nchw(x) if nchw else b.nhwc(x)
    outs = b.node(
        "Split", [src, b.int64(sizes)], node.name, len(sizes), axis=TO_NCHW.index(axis) if nchw else axis
    )
    res = []
    for s, name in zip(sizes, outs, strict=True):
        shape = (*x.shape[:axis], s, *x.shape[axis + 1 :])
        res.append(Value(shape, x.dtype, name, nchw))
    return res


def _split(b: Builder, node: TfNode, ins: list[Value]) -> list[Value]:
    a, x = ins
    n = node.i("num_split")
    assert x.shape is not None
    axis = int(_const(node, a, "axis").reshape(-1)[0]) % len(x.shape)
    total = x.shape[axis]
    if total is None:
        raise _err(node, "Split on an unknown dimension")
    return _split_v(b, node, [x, Value.of_const(np.full(n, total // n)), Value.of_const(np.array(axis))])


def _sparse_to_dense(b: Builder, node: TfNode, ins: list[Value]) -> list[Value]:
    idx, shp, vals, default = ins
    if all(v.const is not None for v in ins):
        out = np.full(
            [int(s) for s in _const(node, shp, "shape").reshape(-1)], _const(node, default, "default")
        )
        ii = _const(node, idx, "indices")
        vv = np.broadcast_to(_const(node, vals, "values"), ii.shape[:1])
        if ii.ndim == 1:
            out[ii] = vv
        else:
            out[tuple(ii.T)] = vv
        return [Value.of_const(out)]
    raise _err(node, "SparseToDense is only supported on constants")


def _fill(b: Builder, node: TfNode, ins: list[Value]) -> list[Value]:
    dims, value = ins
    shape = [int(v) for v in _const(node, dims, "dims").reshape(-1)]
    return [Value.of_const(np.full(shape, _const(node, value, "value")))]


def _select(b: Builder, node: TfNode, ins: list[Value]) -> list[Value]:
    c, x, y = ins
    nchw = _choose_nchw([c, x, y])
    name = b.node1("Where", [b.as_layout(v, nchw) for v in (c, x, y)], node.name)
    return [Value(_broadcast([c.shape, x.shape, y.shape]), x.dtype, name, nchw)]


def _addn(b: Builder, node: TfNode, ins: list[Value]) -> list[Value]:
    nchw = _choose_nchw(ins)
    name = b.node1("Sum", [b.as_layout(v, nchw) for v in ins], node.name)
    return [Value(_broadcast([v.shape for v in ins]), ins[0].dtype, name, nchw)]


def _fused_batch_norm(b: Builder, node: TfNode, ins: list[Value]) -> list[Value]:
    x = ins[0]
    scale, offset, mean, var = (_const(node, v, "batch-norm parameter").astype(np.float32) for v in ins[1:5])
    k = scale / np.sqrt(var + node.f("epsilon", 1e-3))
    (y,) = _binary("Mul")(b, node, [x, Value.of_const(k)])
    return _binary("Add")(b, node, [y, Value.of_const(offset - mean * k)])


HANDLERS: dict[str, Handler] = {
    # element-wise
    "Add": _binary("Add"),
    "AddV2": _binary("Add"),
    "BiasAdd": _bias_add,
    "Sub": _binary("Sub"),
    "Mul": _binary("Mul"),
    "RealDiv": _binary("Div"),
    "Div": _binary("Div"),
    "Maximum": _binary("Max"),
    "Minimum": _binary("Min"),
    "Pow": _binary("Pow"),
    "SquaredDifference": _squared_difference,
    "FloorDiv": _floor_div,
    "FloorMod": _floor_mod,
    "Equal": _binary("Equal", TensorProto.BOOL),
    "Greater": _binary("Greater", TensorProto.BOOL),
    "Less": _binary("Less", TensorProto.BOOL),
    "GreaterEqual": _binary("GreaterOrEqual", TensorProto.BOOL),
    "LessEqual": _binary("LessOrEqual", TensorProto.BOOL),
    "LogicalAnd": _binary("And", TensorProto.BOOL),
    "LogicalOr": _binary("Or", TensorProto.BOOL),
    "AddN": _addn,
    "Select": _select,
    "SelectV2": _select,
    "Relu": _unary("Relu", lambda a: np.maximum(a, 0)),
    "Relu6": _relu6,
    "Elu": _unary("Elu"),
    "LeakyRelu": _leaky_relu,
    "Prelu": _prelu,
    "Sigmoid": _unary("Sigmoid", lambda a: 1 / (1 + np.exp(-a))),
    "Tanh": _unary("Tanh", np.tanh),
    "Abs": _unary("Abs", np.abs),
    "Neg": _unary("Neg", np.negative),
    "Exp": _unary("Exp", np.exp),
    "Log": _unary("Log", np.log),
    "Sqrt": _unary("Sqrt", np.sqrt),
    "Rsqrt": _rsqrt,
    "Square": _square,
    "Floor": _unary("Floor", np.floor),
    "Reciprocal": _unary("Reciprocal", np.reciprocal),
    "Softplus": _unary("Softplus"),
    "Identity": _identity,
    "StopGradient": _identity,
    "Snapshot": _identity,
    "Cast": _cast,
    # conv / pool / dense
    "Conv2D": _conv(depthwise=False),
    "_FusedConv2D": _conv(depthwise=False),
    "DepthwiseConv2dNative": _conv(depthwise=True),
    "FusedDepthwiseConv2dNative": _conv(depthwise=True),
    "MaxPool": _pool("MaxPool"),
    "AvgPool": _pool("AveragePool"),
    "MatMul": _matmul,
    "_FusedMatMul": _matmul,
    "FusedBatchNorm": _fused_batch_norm,
    "FusedBatchNormV3": _fused_batch_norm,
    "Softmax": _softmax,
    "LogSoftmax": _softmax,
    "DepthToSpace": _depth_to_space,
    "ResizeBilinear": _resize("linear"),
    "ResizeNearestNeighbor": _resize("nearest"),
    # reductions
    "Mean": _reduce("ReduceMean", np.mean),
    "Sum": _reduce("ReduceSum", np.sum),
    "Max": _reduce("ReduceMax", np.max),
    "Min": _reduce("ReduceMin", np.min),
    "Prod": _reduce("ReduceProd", np.prod),
    # shape manipulation
    "Reshape": _reshape,
    "Shape": _shape,
    "Squeeze": _squeeze,
    "ExpandDims": _expand_dims,
    "Transpose": _transpose,
    "StridedSlice": _strided_slice,
    "ConcatV2": _concat,
    "Pack": _pack,
    "Pad": _pad,
    "PadV2": _pad,
    "MirrorPad": _pad,
    "TopKV2": _topk,
    "GatherV2": _gather,
    "SplitV": _split_v,
    "Split": _split,
    "SparseToDense": _sparse_to_dense,
    "Fill": _fill,
}
