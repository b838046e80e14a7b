"""Public API: convert a TF.js graph model (``model.json`` + shards) to ONNX.

The ONNX model keeps TF's external layout: inputs are fed NHWC float32 and
outputs have the TF shapes, so callers can use the TF.js pre/post-processing
unchanged.  Internally activations run NCHW (see ``builder.py``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import onnx
from onnx import TensorProto, helper

from .builder import Builder, Value
from .errors import ConversionError
from .graph import IoSpec, TensorRef, TfGraph, TfNode, load_graph
from .ops import HANDLERS

OPSET = 18  # Resize with ``axes`` and reductions with an ``axes`` input need 18.
IR_VERSION = 9  # accepted by every onnxruntime since 1.15


def _onnx_name(text: str) -> str:
    """Public tensor name: the signature key minus a ``:0`` suffix."""
    name = text[:-2] if text.endswith(":0") else text
    return re.sub(r"[^A-Za-z0-9_./-]", "_", name)


def _graph_inputs(graph: TfGraph) -> list[IoSpec]:
    """Signature inputs, else every Placeholder (shape from its attr)."""
    if graph.inputs:
        return graph.inputs
    specs = []
    for node in graph.nodes.values():
        if node.op == "Placeholder":
            specs.append(
                IoSpec(node.name, TensorRef(node.name), node.type("dtype", "DT_FLOAT"), node.shape("shape"))
            )
    return specs


def _graph_outputs(graph: TfGraph) -> list[IoSpec]:
    """Signature outputs, else graph sinks (nodes nobody consumes)."""
    if graph.outputs:
        return graph.outputs
    consumed = {ref.node for n in graph.nodes.values() for ref in n.inputs}
    sinks = [
        n
        for n in graph.nodes.values()
        if n.name not in consumed and n.op not in ("Const", "NoOp", "Placeholder")
    ]
    return [IoSpec(n.name, TensorRef(n.name), "", None) for n in sinks]


def _topo_order(graph: TfGraph, targets: list[str]) -> list[TfNode]:
    """Nodes needed for ``targets`` in dependency order (iterative DFS)."""
    order: list[TfNode] = []
    state: dict[str, int] = {}  # 1 = on stack, 2 = done
    for target in targets:
        stack: list[tuple[str, bool]] = [(target, False)]
        while stack:
            name, expanded = stack.pop()
            if name not in graph.nodes:
                raise ConversionError(f"tensor {name!r} is referenced but not defined")
            if expanded:
                state[name] = 2
                order.append(graph.nodes[name])
                continue
            if state.get(name) == 2:
                continue
            if state.get(name) == 1:
                raise ConversionError(f"cycle in graph at node {name!r}")
            state[name] = 1
            stack.append((name, True))
            for ref in reversed(graph.nodes[name].inputs):
                if state.get(ref.node) != 2:
                    stack.append((ref.node, False))
    return order


def _input_shape(spec: IoSpec, node: TfNode) -> list[int]:
    shape = spec.shape if spec.shape is not None else node.shape("shape")
    if shape is None:
        raise ConversionError(f"input {spec.key!r} has unknown rank", op="Placeholder", node=node.name)
    return shape


def convert_graph(graph: TfGraph) -> onnx.ModelProto:
    """Convert an already parsed :class:`TfGraph`."""
    b = Builder()
    values: dict[TensorRef, Value] = {}
    onnx_inputs = []
    for spec in _graph_inputs(graph):
        node = graph.nodes.get(spec.tensor.node)
        if node is None or node.op != "Placeholder":
            raise ConversionError(f"signature input {spec.key!r} is not a Placeholder")
        shape = _input_shape(spec, node)
        name = _onnx_name(node.name)
        b.reserve(name)
        if node.type("dtype", "DT_FLOAT") != "DT_FLOAT":
            raise ConversionError("only float32 inputs are supported", op="Placeholder", node=node.name)
        dims: list[int | str] = [
            d if d >= 0 else ("batch" if i == 0 else f"d{i}") for i, d in enumerate(shape)
        ]
        onnx_inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, dims))
        values[TensorRef(node.name)] = Value(
            tuple(d if d >= 0 else None for d in shape), TensorProto.FLOAT, name
        )

    outputs = _graph_outputs(graph)
    # Reserve public output names first: they may equal internal node names.
    out_names = [_onnx_name(o.key) for o in outputs]
    for name in out_names:
        b.reserve(name)
    for node in _topo_order(graph, [o.tensor.node for o in outputs]):
        if TensorRef(node.name) in values:
            continue
        if node.op == "Const":
            if node.name not in graph.consts:
                raise ConversionError(
                    "constant value missing from the weights manifest", op=node.op, node=node.name
                )
            values[TensorRef(node.name)] = Value.of_const(graph.consts[node.name])
            continue
        if node.op == "Placeholder":
            raise ConversionError("Placeholder is not a declared input", op=node.op, node=node.name)
        handler = HANDLERS.get(node.op)
        if handler is None:
            raise ConversionError(f"unsupported TF op {node.op!r}", op=node.op, node=node.name)
        ins = []
        for ref in node.inputs:
            if ref not in values:
                raise ConversionError(
                    f"input {ref.node}:{ref.index} not available", op=node.op, node=node.name
                )
            ins.append(values[ref])
        try:
            results = handler(b, node, ins)
        except ConversionError as exc:
            if exc.node is None:
                raise ConversionError(str(exc), op=node.op, node=node.name) from exc
            raise
        except (ValueError, IndexError, KeyError, AssertionError, TypeError) as exc:
            raise ConversionError(f"conversion failed: {exc!r}", op=node.op, node=node.name) from exc
        for i, v in enumerate(results):
            values[TensorRef(node.name, i)] = v

    onnx_outputs = []
    meta: dict[str, str] = {f"tfjs.{k}": v for k, v in graph.meta.items()}
    for spec, name in zip(outputs, out_names, strict=True):
        v = values[spec.tensor]
        b.nodes.append(helper.make_node("Identity", [b.nhwc(v)], [name], name=b.fresh(name + "/out")))
        out_dims: list[int | str] | None = None
        if v.shape is not None:
            out_dims = [
                d if d is not None else ("batch" if i == 0 else f"d{i}") for i, d in enumerate(v.shape)
            ]
        onnx_outputs.append(helper.make_tensor_value_info(name, v.dtype, out_dims))
        meta[f"tfjs.output.{name}"] = f"{spec.tensor.node}:{spec.tensor.index}"

    g = helper.make_graph(b.nodes, "tfjs_graph_model", onnx_inputs, onnx_outputs, b.initializers)
    model = helper.make_model(
        g, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="facesocial.tfjs2onnx"
    )
    model.ir_version = IR_VERSION
    helper.set_model_props(model, meta)
    onnx.checker.check_model(model)
    return model


def convert_tfjs_graph_model(model_json: Path) -> onnx.ModelProto:
    """Convert ``model_json`` (TF.js graph model with its ``.bin`` shards beside it) to ONNX.

    Raises :class:`ConversionError` for unsupported ops (naming op and node)
    or malformed input.
    """
    return convert_graph(load_graph(Path(model_json)))


def _dims(vi: onnx.ValueInfoProto) -> list[int | str | None]:
    t = vi.type.tensor_type
    if not t.HasField("shape"):
        return []
    out: list[int | str | None] = []
    for d in t.shape.dim:
        if d.HasField("dim_value"):
            out.append(d.dim_value)
        elif d.HasField("dim_param"):
            out.append(d.dim_param)
        else:
            out.append(None)
    return out


def describe_io(model: onnx.ModelProto) -> dict[str, Any]:
    """Input/output names, shapes and element types of ``model``.

    ``{"inputs": [{"name", "shape", "dtype"}...], "outputs": [...],
    "tfjs_outputs": {onnx output name: TF tensor}}``; symbolic dims are strings.
    """

    def entry(vi: onnx.ValueInfoProto) -> dict[str, Any]:
        return {
            "name": vi.name,
            "shape": _dims(vi),
            "dtype": TensorProto.DataType.Name(vi.type.tensor_type.elem_type).lower(),
        }

    props = {p.key: p.value for p in model.metadata_props}
    return {
        "inputs": [entry(vi) for vi in model.graph.input],
        "outputs": [entry(vi) for vi in model.graph.output],
        "tfjs_outputs": {
            k.removeprefix("tfjs.output."): v for k, v in props.items() if k.startswith("tfjs.output.")
        },
    }
