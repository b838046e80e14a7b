"""Parse a dlib DNN ``.dat`` (e.g. ``dlib_face_recognition_resnet_model_v1.dat``) into layers.

How dlib writes a network (dlib/dnn/core.h): the loss layer first (version 1, its details),
then the network from the OUTPUT down: every ``add_layer``/``add_tag_layer``/``add_skip_layer``
writes its version and then its whole sub-network before its own details. So the file holds
a run of wrapper versions (outermost first), the input layer's details, and then, unwinding
towards the output, each wrapper's details and state:

* ``add_layer`` version 2: layer details (a name such as ``con_4`` and its fields), three
  bools, the tensors ``x_grad``, ``cached_output``, ``params_grad``;
* ``add_layer`` directly on the input layer, version 2 or 3: input details, the layer
  details, three bools, ``x_grad``, ``cached_output``, ``grad_final`` (+ v3: an int);
* ``add_tag_layer`` / ``add_skip_layer``: version 1 and nothing else. Tag ids (``tag1``,
  ``skip1`` ...) are template arguments and are NOT in the file; :mod:`.dlib_graph` resolves
  them with dlib's residual idiom.

The parser is generic over the layer kinds it knows (``con_``, ``affine_``, ``relu_``,
``max_pool_``, ``avg_pool_``, ``add_prev_``, ``fc_``, ``input_rgb_image_sized``,
``loss_metric_``); any other name, version or value raises ConversionError with the byte
offset. Learning-rate multipliers and training state are read and dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from .dlib_serial import DlibReader

# Deepest nesting accepted: the face ResNet has ~150 wrappers; a damaged file must not
# make the parser loop over megabytes of small integers.
_MAX_WRAPPERS = 4096


@dataclass(frozen=True, slots=True)
class DlibLayer:
    """One layer, input to output order.

    ``kind`` is one of ``input``, ``con``, ``affine``, ``relu``, ``max_pool``, ``avg_pool``,
    ``add_prev``, ``fc`` or ``marker`` (a tag or skip wrapper); ``name`` is the version
    string found in the file; ``offset`` is where its details start (bytes).
    """

    kind: str
    name: str
    offset: int
    attrs: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, npt.NDArray[np.float32]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DlibNetwork:
    loss: str
    loss_attrs: dict[str, float]
    layers: list[DlibLayer]


def parse_dlib_dnn(data: bytes) -> DlibNetwork:
    """Parse the bytes of a dlib DNN file; raises ConversionError on anything unexpected."""
    reader = DlibReader(data)
    version = reader.integer()
    if version != 1:
        raise reader.fail(f"add_loss_layer version {version}, expected 1", at=0)
    loss, loss_attrs = _loss(reader)
    wrappers: list[tuple[int, int]] = []
    while reader.peek_name() is None:
        start = reader.offset
        version = reader.integer()
        if not 1 <= version <= 3:
            raise reader.fail(f"layer wrapper version {version}, expected 1..3", at=start)
        wrappers.append((version, start))
        if len(wrappers) > _MAX_WRAPPERS:
            raise reader.fail(f"more than {_MAX_WRAPPERS} nested layers")
    if not wrappers:
        raise reader.fail("the network has no layers below the loss")
    layers = [_input(reader)]
    version, start = wrappers.pop()
    if reader.peek_name() is not None:  # add_layer on the input layer
        layers.append(_details(reader))
        _state(reader, tensors=3)
        if version >= 3:
            reader.integer()  # sample expansion factor
    else:  # add_tag_layer on the input layer
        _state(reader, bools=0, tensors=2)
        reader.flag()
        if version >= 2:
            reader.integer()
        layers.append(DlibLayer("marker", "tag", start))
    while wrappers:
        version, start = wrappers.pop()
        if version == 1:
            layers.append(DlibLayer("marker", "tag_or_skip", start))
        elif version == 2:
            layers.append(_details(reader))
            _state(reader, tensors=3)
        else:
            raise reader.fail(f"add_layer version {version} above the input layer", at=start)
    if reader.remaining:
        raise reader.fail(f"{reader.remaining} unexpected bytes after the network")
    return DlibNetwork(loss, loss_attrs, layers)


def _loss(reader: DlibReader) -> tuple[str, dict[str, float]]:
    start = reader.offset
    name = reader.string()
    if name == "loss_metric_":
        return name, {}
    if name == "loss_metric_2":
        return name, {"margin": reader.number(), "dist_thresh": reader.number()}
    raise reader.fail(f"unsupported loss layer {name!r} (only loss_metric_ is known)", at=start)


def _input(reader: DlibReader) -> DlibLayer:
    start = reader.offset
    name = reader.string()
    if name not in ("input_rgb_image", "input_rgb_image_sized"):
        raise reader.fail(f"unsupported input layer {name!r}", at=start)
    means = [reader.number() for _ in range(3)]
    attrs: dict[str, Any] = {"mean_rgb": means}
    if name == "input_rgb_image_sized":
        attrs["rows"] = reader.count("input rows", limit=1 << 16)
        attrs["cols"] = reader.count("input columns", limit=1 << 16)
    return DlibLayer("input", name, start, attrs)


def _state(reader: DlibReader, *, bools: int = 3, tensors: int) -> None:
    """Training state after a layer's details: read to stay in step, then dropped."""
    for _ in range(bools):
        reader.flag()
    for _ in range(tensors):
        reader.tensor()


def _multipliers(reader: DlibReader, count: int = 4) -> None:
    for _ in range(count):
        reader.number()


def _params_slice(
    reader: DlibReader, params: npt.NDArray[np.float32], start: int, shape: tuple[int, ...], what: str
) -> npt.NDArray[np.float32]:
    size = int(np.prod(shape))
    flat = params.reshape(-1)
    if start + size > flat.size:
        raise reader.fail(f"{what} of shape {shape} does not fit in params of {flat.size} values")
    return flat[start : start + size].reshape(shape).copy()


def _details(reader: DlibReader) -> DlibLayer:
    start = reader.offset
    name = reader.string()
    parser = _PARSERS.get(name)
    if parser is None:
        raise reader.fail(f"unsupported layer {name!r}", at=start)
    return parser(reader, name, start)


def _con(reader: DlibReader, name: str, start: int) -> DlibLayer:
    params = reader.tensor()
    filters = reader.count("num_filters")
    rows, cols = reader.count("kernel rows"), reader.count("kernel cols")
    stride = (reader.count("stride_y"), reader.count("stride_x"))
    padding = (reader.count("padding_y"), reader.count("padding_x"))
    filter_shape = reader.alias_tensor()
    bias_shape = reader.alias_tensor()
    _multipliers(reader)
    use_bias = reader.flag() if name in ("con_5", "con_6") else True
    use_relu = reader.flag() if name == "con_6" else False
    if filter_shape[0] != filters or filter_shape[2:] != (rows, cols):
        raise reader.fail(f"{name}: filters {filter_shape} disagree with {filters}x{rows}x{cols}", at=start)
    weight = _params_slice(reader, params, 0, filter_shape, "filters")
    bias = np.zeros(filters, dtype=np.float32)
    if use_bias:
        bias = _params_slice(reader, params, weight.size, bias_shape, "biases").reshape(-1)
    attrs = {"stride": stride, "padding": padding, "relu": use_relu}
    return DlibLayer("con", name, start, attrs, {"weight": weight, "bias": bias})


def _affine(reader: DlibReader, name: str, start: int) -> DlibLayer:
    if name not in ("affine_", "affine_2"):
        raise reader.fail(f"unsupported layer {name!r}", at=start)
    params = reader.tensor()
    gamma_shape, beta_shape = reader.alias_tensor(), reader.alias_tensor()
    mode = reader.integer()
    disabled = reader.flag() if name == "affine_2" else False
    if mode != 0:
        raise reader.fail(f"{name}: only CONV_MODE (0) affine layers are supported, found mode {mode}")
    gamma = _params_slice(reader, params, 0, gamma_shape, "gamma").reshape(-1)
    beta = _params_slice(reader, params, gamma.size, beta_shape, "beta").reshape(-1)
    if disabled:  # a disabled affine layer passes its input through
        gamma, beta = np.ones_like(gamma), np.zeros_like(beta)
    return DlibLayer("affine", name, start, {}, {"gamma": gamma, "beta": beta})


def _relu(reader: DlibReader, name: str, start: int) -> DlibLayer:
    disabled = reader.flag() if name == "relu_2" else False
    return DlibLayer("relu", name, start, {"disabled": disabled})


def _pool(reader: DlibReader, name: str, start: int) -> DlibLayer:
    window = (reader.count("pool rows"), reader.count("pool cols"))
    stride = (reader.count("stride_y"), reader.count("stride_x"))
    padding = (reader.count("padding_y"), reader.count("padding_x"))
    if 0 in stride:
        raise reader.fail(f"{name}: zero stride", at=start)
    kind = "max_pool" if name.startswith("max") else "avg_pool"
    return DlibLayer(kind, name, start, {"window": window, "stride": stride, "padding": padding})


def _add_prev(reader: DlibReader, name: str, start: int) -> DlibLayer:
    return DlibLayer("add_prev", name, start)


def _fc(reader: DlibReader, name: str, start: int) -> DlibLayer:
    outputs, inputs = reader.count("fc outputs"), reader.count("fc inputs")
    params = reader.tensor()
    weight_shape, bias_shape = reader.alias_tensor(), reader.alias_tensor()
    bias_mode = reader.integer()
    _multipliers(reader)
    use_bias = reader.flag() if name == "fc_3" else True
    if bias_mode not in (0, 1):
        raise reader.fail(f"{name}: unknown bias mode {bias_mode}", at=start)
    weight = _params_slice(reader, params, 0, (inputs, outputs), "fc weights")
    if int(np.prod(weight_shape)) != inputs * outputs:
        raise reader.fail(f"{name}: weights {weight_shape} disagree with {inputs}x{outputs}", at=start)
    weights = {"weight": weight}
    if bias_mode == 0 and use_bias:
        weights["bias"] = _params_slice(reader, params, weight.size, bias_shape, "fc biases").reshape(-1)
    return DlibLayer("fc", name, start, {"inputs": inputs, "outputs": outputs}, weights)


_PARSERS = {
    "con_4": _con,
    "con_5": _con,
    "con_6": _con,
    "affine_": _affine,
    "affine_2": _affine,
    "bn_con2": _affine,  # named so the error says "unsupported" rather than "unknown"
    "relu_": _relu,
    "relu_2": _relu,
    "max_pool_2": _pool,
    "avg_pool_2": _pool,
    "add_prev_": _add_prev,
    "fc_2": _fc,
    "fc_3": _fc,
}
