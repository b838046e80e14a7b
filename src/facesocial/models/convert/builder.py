"""ONNX graph builder with layout tracking for TF (NHWC) tensors.

Every TF tensor becomes a :class:`Value`.  Its ``shape`` is always the TF
(logical, NHWC) shape, but a 4-D runtime tensor may be *stored* channels
first (``nchw=True``) in the ONNX graph.  Convolutions, pools and resizes
produce NCHW values and element-wise ops keep whatever layout their inputs
have, so a chain of convs runs without a Transpose pair around every op;
ops whose semantics depend on the axis order (Reshape, StridedSlice, MatMul
...) ask for the NHWC form and a Transpose is inserted once and cached.

Values known at conversion time keep their numpy data in ``const`` so that
shape arithmetic is folded instead of exported.  TF int32 tensors are
represented as int64 in ONNX: ONNX shape/index inputs must be int64 and a
single integer type avoids Cast nodes between them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .errors import ConversionError

Shape = tuple[int | None, ...]

TO_NCHW = (0, 3, 1, 2)
TO_NHWC = (0, 2, 3, 1)

_NP_TO_ONNX = {
    np.dtype(np.float32): TensorProto.FLOAT,
    np.dtype(np.int64): TensorProto.INT64,
    np.dtype(np.bool_): TensorProto.BOOL,
}


def normalize_const(arr: np.ndarray) -> np.ndarray:
    """Map numpy data onto the three ONNX dtypes the converter uses."""
    arr = np.asarray(arr)
    if arr.dtype == np.bool_:
        return arr
    if np.issubdtype(arr.dtype, np.integer):
        return arr.astype(np.int64)
    return arr.astype(np.float32)


@dataclass
class Value:
    """A TF tensor as it exists in the ONNX graph being built."""

    shape: Shape | None
    dtype: int = TensorProto.FLOAT
    name: str = ""
    nchw: bool = False
    const: np.ndarray | None = None
    # A zero Pad on H/W not yet emitted: a following conv folds it into its
    # own ``pads`` (one less pass over the activation); anyone else emits it.
    pad_src: Value | None = None
    pad_hw: tuple[int, int, int, int] = (0, 0, 0, 0)
    _alt: dict[str, str] = field(default_factory=dict)

    @property
    def rank(self) -> int | None:
        """Number of dimensions, ``None`` when unknown."""
        return None if self.shape is None else len(self.shape)

    @staticmethod
    def of_const(arr: np.ndarray) -> Value:
        """Wrap a conversion-time constant."""
        arr = normalize_const(arr)
        return Value(shape=tuple(int(d) for d in arr.shape), dtype=_NP_TO_ONNX[arr.dtype], const=arr)


class Builder:
    """Accumulates ONNX nodes and initializers; hands out unique names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._names: set[str] = set()
        self._const_cache: dict[tuple[str, tuple[int, ...], bytes], str] = {}

    def fresh(self, hint: str) -> str:
        """A tensor/node name not used before, derived from ``hint``."""
        base = hint.replace(":", "_") or "t"
        name = base
        n = 1
        while name in self._names:
            name = f"{base}__{n}"
            n += 1
        self._names.add(name)
        return name

    def reserve(self, name: str) -> None:
        """Mark ``name`` as taken (graph inputs / outputs)."""
        if name in self._names:
            raise ConversionError(f"duplicate tensor name {name!r}")
        self._names.add(name)

    def initializer(self, arr: np.ndarray, hint: str = "const") -> str:
        """Add (or reuse an identical) initializer and return its name."""
        arr = normalize_const(arr)
        key = (str(arr.dtype), tuple(arr.shape), arr.tobytes())
        if key in self._const_cache:
            return self._const_cache[key]
        name = self.fresh(hint)
        self.initializers.append(numpy_helper.from_array(arr, name))
        self._const_cache[key] = name
        return name

    def node(self, op: str, inputs: list[str], hint: str, n_out: int = 1, **attrs: Any) -> list[str]:
        """Append an ONNX node; returns its output names."""
        outs = [self.fresh(hint if i == 0 else f"{hint}:{i}") for i in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=self.fresh(f"{hint}/{op}"), **attrs))
        return outs

    def node1(self, op: str, inputs: list[str], hint: str, **attrs: Any) -> str:
        """Single-output :meth:`node`."""
        return self.node(op, inputs, hint, 1, **attrs)[0]

    # ------------------------------------------------------------------ layout
    def materialize(self, v: Value) -> None:
        """Emit a deferred zero Pad so that ``v.name`` exists."""
        if v.name or v.const is not None:
            return
        if v.pad_src is None:
            raise ConversionError("internal: value without a producer")
        src = self.nchw(v.pad_src)
        top, bottom, left, right = v.pad_hw
        pads = self.initializer(np.array([0, 0, top, left, 0, 0, bottom, right], dtype=np.int64), "pads")
        v.name = self.node1("Pad", [src, pads], "pad")
        v.nchw = True

    def nhwc(self, v: Value) -> str:
        """ONNX name of ``v`` in TF axis order."""
        if v.const is not None:
            return v._alt.setdefault("nhwc", self.initializer(v.const))
        self.materialize(v)
        if not v.nchw:
            return v.name
        if "nhwc" not in v._alt:
            v._alt["nhwc"] = self.node1("Transpose", [v.name], v.name + "_nhwc", perm=list(TO_NHWC))
        return v._alt["nhwc"]

    def nchw(self, v: Value) -> str:
        """ONNX name of the 4-D ``v`` in NCHW order."""
        if v.rank != 4:
            raise ConversionError(f"internal: NCHW requested for rank {v.rank}")
        if v.const is not None:
            return v._alt.setdefault("nchw", self.initializer(v.const.transpose(TO_NCHW)))
        self.materialize(v)
        if v.nchw:
            return v.name
        if "nchw" not in v._alt:
            v._alt["nchw"] = self.node1("Transpose", [v.name], v.name + "_nchw", perm=list(TO_NCHW))
        return v._alt["nchw"]

    def as_layout(self, v: Value, nchw: bool) -> str:
        """ONNX name of ``v`` for an element-wise op running in the given layout.

        In NCHW mode a lower-rank constant is first broadcast-aligned to rank 4
        (leading 1s, as TF broadcasting does) and then permuted.
        """
        if not nchw:
            return self.nhwc(v)
        if v.const is not None and v.const.ndim < 4:
            if v.const.ndim == 0:
                return self.nhwc(v)
            c = v.const.reshape((1,) * (4 - v.const.ndim) + v.const.shape)
            return v._alt.setdefault("nchw", self.initializer(c.transpose(TO_NCHW)))
        return self.nchw(v)

    def int64(self, values: list[int] | np.ndarray, hint: str = "ints") -> str:
        """Initializer for an int64 vector (shape / axes inputs)."""
        return self.initializer(np.asarray(values, dtype=np.int64).reshape(-1), hint)

    def scalar_f(self, value: float, hint: str = "scalar") -> str:
        """Float32 scalar initializer."""
        return self.initializer(np.array(value, dtype=np.float32), hint)
