"""ONNX graph of a parsed dlib DNN (:mod:`.dlib_dnn`), e.g. dlib's 128-D face ResNet.

Graph contract (the one :class:`~facesocial.vision.embed_dlib_onnx.DlibResnetOnnxEmbedder`
relies on):

* input ``chips``: float32 (N, rows, cols, 3), RGB values 0..255 as read from uint8 chips
  (NHWC: how chips come out of numpy, so the caller only stacks them); N is dynamic. The
  graph transposes to NCHW and applies dlib's input transform ``(x - mean_rgb) / 256``.
* output ``descriptor``: float32 (N, 128), the raw descriptor, NOT L2-normalised (dlib's
  ``compute_face_descriptor`` returns it unnormalised too).

Each ``affine_`` layer that follows a ``con_`` is folded into that convolution (w * gamma,
b * gamma + beta): exact up to float rounding and one pass over the activation less.

Tags and skips: the file does not say which tag a skip or an ``add_prev`` refers to (the
ids are template arguments). They are resolved with the idiom of dlib's residual blocks
(``residual`` = add_prev1<block<tag1<x>>>, ``residual_down`` =
add_prev2<avg_pool<skip1<tag2<block<tag1<x>>>>>>): a marker after a layer is a tag; a
marker right after a marker is a skip back to the tag before the latest one; ``add_prev``
adds the latest tag and closes the block. Any other pattern raises ConversionError.

``add_prev`` of tensors of different shapes follows dlib's ``tt::add`` (cpu_dlib.cpp): the
result has the larger size on every axis, each input adds where it exists and counts as zero
elsewhere (top-left aligned). In the face ResNet this happens in every down-sampling block
(channels double) and in ``alevel1`` (3x3 conv branch + 4x4 pooled shortcut).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

from .dlib_dnn import DlibLayer, DlibNetwork, parse_dlib_dnn
from .errors import ConversionError

OPSET = 17
IR_VERSION = 9  # accepted by every onnxruntime since 1.15
INPUT_NAME = "chips"
OUTPUT_NAME = "descriptor"
# Bump when the graph written for the same .dat changes (the manifest records it).
CONVERTER_VERSION = "1"

Shape = tuple[int, int, int]  # (channels, rows, cols) of one sample


@dataclass(frozen=True, slots=True)
class _Tensor:
    name: str
    shape: Shape


@dataclass
class _PendingConv:
    """A convolution not yet emitted, so a following affine can fold into it."""

    source: _Tensor
    weight: npt.NDArray[np.float32]
    bias: npt.NDArray[np.float32]
    layer: DlibLayer


class _GraphWriter:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def name(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def const(self, stem: str, value: npt.NDArray[np.generic]) -> str:
        name = self.name(stem)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], stem: str, **attrs: Any) -> str:
        out = self.name(stem)
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out


def _fail(layer: DlibLayer, message: str) -> ConversionError:
    return ConversionError(f"dlib .dat, byte offset {layer.offset} ({layer.name}): {message}")


def build_onnx(network: DlibNetwork, *, doc: str = "") -> onnx.ModelProto:
    """The ONNX model of ``network``; raises ConversionError on an unsupported topology."""
    layers = network.layers
    if not layers or layers[0].kind != "input" or "rows" not in layers[0].attrs:
        raise ConversionError("dlib network: the first layer must be input_rgb_image_sized")
    first = layers[0]
    rows, cols = int(first.attrs["rows"]), int(first.attrs["cols"])
    writer = _GraphWriter()
    nchw = writer.node("Transpose", [INPUT_NAME], "nchw", perm=[0, 3, 1, 2])
    mean = np.asarray(first.attrs["mean_rgb"], dtype=np.float32).reshape(1, 3, 1, 1)
    centred = writer.node("Sub", [nchw, writer.const("mean_rgb", mean)], "centred")
    scaled = writer.node(
        "Mul", [centred, writer.const("scale", np.asarray(1 / 256, dtype=np.float32))], "scaled"
    )
    current = _Tensor(scaled, (3, rows, cols))
    pending: _PendingConv | None = None
    tags: list[_Tensor] = []
    previous_kind = first.kind
    for layer in layers[1:]:
        if layer.kind == "affine" and pending is not None:
            gamma, beta = layer.weights["gamma"], layer.weights["beta"]
            if gamma.size != pending.weight.shape[0]:
                raise _fail(layer, f"{gamma.size} channels after a conv of {pending.weight.shape[0]}")
            pending.weight = pending.weight * gamma.reshape(-1, 1, 1, 1)
            pending.bias = pending.bias * gamma + beta
            previous_kind = layer.kind
            continue
        if pending is not None:
            current = _emit_conv(writer, pending)
            pending = None
        if layer.kind == "con":
            weight, bias = layer.weights["weight"], layer.weights["bias"]
            if weight.shape[1] != current.shape[0]:
                raise _fail(layer, f"filters of {weight.shape[1]} channels on {current.shape[0]}")
            pending = _PendingConv(current, weight, bias, layer)
        elif layer.kind == "marker":
            if previous_kind == "marker":  # a skip: back to the tag before the latest one
                if len(tags) < 2:
                    raise _fail(layer, "a skip with no earlier tag to return to")
                current = tags[-2]
            else:
                tags.append(current)
        elif layer.kind == "add_prev":
            if not tags:
                raise _fail(layer, "add_prev with no tag before it")
            current = _add_overlap(writer, current, tags[-1])
            tags = []
        else:
            current = _simple(writer, layer, current)
        previous_kind = layer.kind
    if pending is not None:
        current = _emit_conv(writer, pending)
    return _model(writer, rows, cols, current, doc)


def _emit_conv(writer: _GraphWriter, conv: _PendingConv) -> _Tensor:
    layer = conv.layer
    stride_y, stride_x = layer.attrs["stride"]
    pad_y, pad_x = layer.attrs["padding"]
    filters, _, kernel_y, kernel_x = conv.weight.shape
    _, rows, cols = conv.source.shape
    out_rows = 1 + (rows + 2 * pad_y - kernel_y) // stride_y
    out_cols = 1 + (cols + 2 * pad_x - kernel_x) // stride_x
    if out_rows < 1 or out_cols < 1:
        raise _fail(layer, f"a {kernel_y}x{kernel_x} kernel on a {rows}x{cols} input")
    out = writer.node(
        "Conv",
        [
            conv.source.name,
            writer.const("conv_w", conv.weight.astype(np.float32)),
            writer.const("conv_b", conv.bias.astype(np.float32)),
        ],
        "conv",
        kernel_shape=[kernel_y, kernel_x],
        strides=[stride_y, stride_x],
        pads=[pad_y, pad_x, pad_y, pad_x],
    )
    if layer.attrs.get("relu"):
        out = writer.node("Relu", [out], "relu")
    return _Tensor(out, (filters, out_rows, out_cols))


def _simple(writer: _GraphWriter, layer: DlibLayer, current: _Tensor) -> _Tensor:
    channels, rows, cols = current.shape
    if layer.kind == "relu":
        if layer.attrs.get("disabled"):
            return current
        return _Tensor(writer.node("Relu", [current.name], "relu"), current.shape)
    if layer.kind == "affine":  # not after a conv: per-channel multiply-add
        gamma = layer.weights["gamma"].reshape(1, -1, 1, 1)
        beta = layer.weights["beta"].reshape(1, -1, 1, 1)
        if gamma.size != channels:
            raise _fail(layer, f"{gamma.size} channels on a tensor of {channels}")
        scaled = writer.node("Mul", [current.name, writer.const("gamma", gamma)], "affine_mul")
        return _Tensor(writer.node("Add", [scaled, writer.const("beta", beta)], "affine"), current.shape)
    if layer.kind in ("max_pool", "avg_pool"):
        window_y, window_x = layer.attrs["window"]
        if window_y == 0 and window_x == 0:  # dlib's avg_pool_everything / max_pool_everything
            op = "GlobalMaxPool" if layer.kind == "max_pool" else "GlobalAveragePool"
            return _Tensor(writer.node(op, [current.name], "gpool"), (channels, 1, 1))
        stride_y, stride_x = layer.attrs["stride"]
        pad_y, pad_x = layer.attrs["padding"]
        window_y, window_x = window_y or rows, window_x or cols
        out_rows = 1 + (rows + 2 * pad_y - window_y) // stride_y
        out_cols = 1 + (cols + 2 * pad_x - window_x) // stride_x
        if out_rows < 1 or out_cols < 1:
            raise _fail(layer, f"a {window_y}x{window_x} window on a {rows}x{cols} input")
        op = "MaxPool" if layer.kind == "max_pool" else "AveragePool"
        out = writer.node(
            op,
            [current.name],
            "pool",
            kernel_shape=[window_y, window_x],
            strides=[stride_y, stride_x],
            pads=[pad_y, pad_x, pad_y, pad_x],
        )
        return _Tensor(out, (channels, out_rows, out_cols))
    if layer.kind == "fc":
        inputs = int(layer.attrs["inputs"])
        if inputs != channels * rows * cols:
            raise _fail(layer, f"{inputs} inputs on a tensor of {channels}x{rows}x{cols}")
        flat = writer.node("Flatten", [current.name], "flatten", axis=1)
        out = writer.node("MatMul", [flat, writer.const("fc_w", layer.weights["weight"])], "fc")
        if "bias" in layer.weights:
            out = writer.node("Add", [out, writer.const("fc_b", layer.weights["bias"])], "fc_bias")
        return _Tensor(out, (int(layer.attrs["outputs"]), 0, 0))
    raise _fail(layer, f"no ONNX mapping for layer kind {layer.kind!r}")


def _add_overlap(writer: _GraphWriter, left: _Tensor, right: _Tensor) -> _Tensor:
    """dlib's add of two shapes: zero-extend each to the larger size on every axis, add."""
    target: Shape = (
        max(left.shape[0], right.shape[0]),
        max(left.shape[1], right.shape[1]),
        max(left.shape[2], right.shape[2]),
    )

    def extended(value: _Tensor) -> str:
        grow = [t - s for t, s in zip(target, value.shape, strict=True)]
        if not any(grow):
            return value.name
        pads = np.asarray([0, 0, 0, 0, 0, *grow], dtype=np.int64)  # begins N,C,H,W then ends
        return writer.node("Pad", [value.name, writer.const("pads", pads)], "extend", mode="constant")

    return _Tensor(writer.node("Add", [extended(left), extended(right)], "add_prev"), target)


def _model(writer: _GraphWriter, rows: int, cols: int, output: _Tensor, doc: str) -> onnx.ModelProto:
    if output.shape[1:] != (0, 0):
        raise ConversionError(f"dlib network: the last layer must be fc, found a {output.shape} tensor")
    writer.nodes.append(helper.make_node("Identity", [output.name], [OUTPUT_NAME], name=OUTPUT_NAME))
    graph = helper.make_graph(
        writer.nodes,
        "dlib_dnn",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", rows, cols, 3])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", output.shape[0]])],
        initializer=writer.initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="facesocial.dlib2onnx",
        producer_version=CONVERTER_VERSION,
        doc_string=doc,
    )
    model.ir_version = IR_VERSION
    return model


def convert_dlib_dnn(data: bytes, *, doc: str = "") -> onnx.ModelProto:
    """Parse a dlib DNN ``.dat`` and write its ONNX graph (see the module doc for I/O).

    Example::

        model = convert_dlib_dnn(Path("dlib_face_recognition_resnet_model_v1.dat").read_bytes())
        onnx.save(model, "dlib_resnet_v1.onnx")
    """
    return build_onnx(parse_dlib_dnn(data), doc=doc)
