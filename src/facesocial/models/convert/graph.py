"""Parse the TF GraphDef that a TF.js graph model stores as JSON.

``modelTopology.node`` is the protobuf JSON mapping of ``NodeDef``: ``name``,
``op``, ``input`` (``"node"``, ``"node:1"`` or ``"^ctrl"``) and ``attr``
whose values are JSON ``AttrValue`` messages, e.g. ``{"i": "3"}`` (int64s
are strings in proto JSON), ``{"s": <base64>}``, ``{"list": {"i": [...]}}``,
``{"type": "DT_FLOAT"}``.  Const values are not inline: they live in the
weights manifest under the Const node's name.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConversionError
from .weights import load_weights


@dataclass(frozen=True)
class TensorRef:
    """Output ``index`` of node ``node`` (TF's ``node:index``)."""

    node: str
    index: int = 0

    @staticmethod
    def parse(text: str) -> TensorRef:
        """Parse ``"name"`` / ``"name:1"``; a ``^`` control prefix is not allowed here."""
        name, sep, idx = text.rpartition(":")
        if sep and idx.isdigit():
            return TensorRef(name, int(idx))
        return TensorRef(text, 0)


@dataclass
class TfNode:
    """One GraphDef node with decoded accessors for its attributes."""

    name: str
    op: str
    inputs: list[TensorRef]
    attr: Mapping[str, Any] = field(default_factory=dict)

    def _get(self, key: str) -> Any:
        if key not in self.attr:
            raise ConversionError(f"missing attribute {key!r}", op=self.op, node=self.name)
        return self.attr[key]

    def has(self, key: str) -> bool:
        """True when attribute ``key`` is present."""
        return key in self.attr

    def i(self, key: str, default: int | None = None) -> int:
        """Integer attribute (proto JSON encodes int64 as string)."""
        if key not in self.attr and default is not None:
            return default
        return int(self._get(key).get("i", 0))

    def f(self, key: str, default: float | None = None) -> float:
        """Float attribute."""
        if key not in self.attr and default is not None:
            return default
        return float(self._get(key).get("f", 0.0))

    def b(self, key: str, default: bool = False) -> bool:
        """Bool attribute (absent fields mean false in proto3 JSON)."""
        if key not in self.attr:
            return default
        return bool(self.attr[key].get("b", False))

    def s(self, key: str, default: str | None = None) -> str:
        """String attribute, base64-decoded."""
        if key not in self.attr and default is not None:
            return default
        return base64.b64decode(self._get(key).get("s", "")).decode()

    def ints(self, key: str, default: list[int] | None = None) -> list[int]:
        """List-of-int attribute."""
        if key not in self.attr and default is not None:
            return default
        return [int(v) for v in self._get(key).get("list", {}).get("i", [])]

    def strs(self, key: str) -> list[str]:
        """List-of-string attribute, base64-decoded (empty if absent)."""
        if key not in self.attr:
            return []
        return [base64.b64decode(v).decode() for v in self.attr[key].get("list", {}).get("s", [])]

    def type(self, key: str, default: str | None = None) -> str:
        """Type attribute, e.g. ``"DT_FLOAT"``."""
        if key not in self.attr and default is not None:
            return default
        return str(self._get(key).get("type", "DT_FLOAT"))

    def shape(self, key: str) -> list[int] | None:
        """``TensorShapeProto`` attribute (``-1`` = unknown); ``None`` if unknown rank."""
        if key not in self.attr:
            return None
        proto = self.attr[key].get("shape", {})
        if proto.get("unknownRank"):
            return None
        return [int(d.get("size", -1)) for d in proto.get("dim", [])]


@dataclass
class IoSpec:
    """A signature entry: public key, TF tensor, dtype and shape (``-1`` unknown)."""

    key: str
    tensor: TensorRef
    dtype: str
    shape: list[int] | None


@dataclass
class TfGraph:
    """A parsed TF.js graph model: nodes, constant values and signature."""

    nodes: dict[str, TfNode]
    consts: dict[str, np.ndarray]
    inputs: list[IoSpec]
    outputs: list[IoSpec]
    meta: dict[str, str]


def _parse_io(entries: Mapping[str, Any]) -> list[IoSpec]:
    specs = []
    for key, entry in entries.items():
        shape_proto = entry.get("tensorShape")
        shape = None
        if shape_proto is not None and not shape_proto.get("unknownRank"):
            shape = [int(d.get("size", -1)) for d in shape_proto.get("dim", [])]
        specs.append(IoSpec(key, TensorRef.parse(entry.get("name", key)), entry.get("dtype", ""), shape))
    return specs


def _inline_const(node: TfNode) -> np.ndarray | None:
    """Value of a Const whose tensor is written inline (rare in TF.js models)."""
    tensor = node.attr.get("value", {}).get("tensor", {})
    dims = [int(d.get("size", 0)) for d in tensor.get("tensorShape", {}).get("dim", [])]
    for key, dtype in (
        ("floatVal", np.float32),
        ("intVal", np.int32),
        ("int64Val", np.int64),
        ("boolVal", bool),
    ):
        if key in tensor:
            vals = np.array(tensor[key], dtype=dtype)
            size = int(np.prod(dims)) if dims else 1
            return (
                np.broadcast_to(vals, (size,)).reshape(dims).copy() if vals.size == 1 else vals.reshape(dims)
            )
    if "tensorContent" in tensor:
        dt = {"DT_FLOAT": np.float32, "DT_INT32": np.int32, "DT_INT64": np.int64}.get(tensor.get("dtype", ""))
        if dt is not None:
            return np.frombuffer(base64.b64decode(tensor["tensorContent"]), dtype=dt).reshape(dims).copy()
    return None


def load_graph(model_json: Path) -> TfGraph:
    """Read ``model.json`` and its shards into a :class:`TfGraph`."""
    try:
        doc = json.loads(model_json.read_text())
    except (OSError, ValueError) as exc:
        raise ConversionError(f"cannot read {model_json}: {exc}") from exc
    if doc.get("format") not in (None, "graph-model"):
        raise ConversionError(f"{model_json}: format {doc.get('format')!r} is not a graph model")
    topo = doc.get("modelTopology", {})
    if "node" not in topo:
        raise ConversionError(f"{model_json}: modelTopology has no GraphDef nodes")
    nodes: dict[str, TfNode] = {}
    for raw in topo["node"]:
        data_inputs = [TensorRef.parse(t) for t in raw.get("input", []) if not t.startswith("^")]
        nodes[raw["name"]] = TfNode(raw["name"], raw["op"], data_inputs, raw.get("attr", {}))
    if topo.get("library", {}).get("function"):
        raise ConversionError(f"{model_json}: graph functions (control flow) are not supported")
    consts = load_weights(model_json.parent, doc.get("weightsManifest", []))
    for node in nodes.values():
        if node.op == "Const" and node.name not in consts:
            inline = _inline_const(node)
            if inline is not None:
                consts[node.name] = inline
    # The signature sits at the top level in newer files, under
    # userDefinedMetadata in older ones.
    signature = doc.get("signature") or doc.get("userDefinedMetadata", {}).get("signature") or {}
    meta = {k: str(doc[k]) for k in ("generatedBy", "convertedBy", "format") if k in doc}
    return TfGraph(
        nodes=nodes,
        consts=consts,
        inputs=_parse_io(signature.get("inputs", {})),
        outputs=_parse_io(signature.get("outputs", {})),
        meta=meta,
    )
