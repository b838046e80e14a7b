"""Read the binary weight shards of a TF.js model and dequantise them.

A TF.js ``model.json`` holds a ``weightsManifest``: a list of groups, each
with ``paths`` (shard files, concatenated in order form one byte buffer) and
``weights`` (name, shape, dtype and optional ``quantization``) laid out back
to back in that buffer.  Quantised entries are stored in a smaller dtype:

* ``{"dtype": "float16"}``: IEEE half floats, widened to float32;
* ``{"dtype": "uint8" | "uint16", "scale": s, "min": m}``: affine
  quantisation, ``value = m + q * s`` (the TF.js decoder's formula).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConversionError

# TF.js dtype names -> numpy dtypes of the *stored* bytes (little endian).
_STORED: dict[str, np.dtype[Any]] = {
    "float32": np.dtype("<f4"),
    "float16": np.dtype("<f2"),
    "int32": np.dtype("<i4"),
    "int8": np.dtype("i1"),
    "uint8": np.dtype("u1"),
    "uint16": np.dtype("<u2"),
    "int16": np.dtype("<i2"),
    "bool": np.dtype("u1"),
    "int64": np.dtype("<i8"),
}


def _decode_one(buf: bytes, offset: int, spec: Mapping[str, Any]) -> tuple[np.ndarray, int]:
    """Decode one manifest entry at ``offset``; return (array, new offset)."""
    name = spec["name"]
    shape = [int(d) for d in spec.get("shape", [])]
    dtype = spec["dtype"]
    quant = spec.get("quantization")
    count = int(np.prod(shape)) if shape else 1
    stored_name = quant["dtype"] if quant else dtype
    if stored_name not in _STORED:
        raise ConversionError(f"weight {name!r}: unsupported stored dtype {stored_name!r}")
    stored = _STORED[stored_name]
    nbytes = count * stored.itemsize
    if offset + nbytes > len(buf):
        raise ConversionError(f"weight {name!r}: shard data too short")
    raw = np.frombuffer(buf, dtype=stored, count=count, offset=offset)
    if quant and stored_name in ("uint8", "uint16", "int8", "int16"):
        value = raw.astype(np.float64) * float(quant["scale"]) + float(quant["min"])
        # Quantised integer tensors round back (TF.js does the same).
        arr = np.round(value).astype(np.int32) if dtype == "int32" else value.astype(np.float32)
    elif dtype == "bool":
        arr = raw.astype(bool)
    elif dtype == "float32":
        arr = raw.astype(np.float32)
    else:
        arr = raw.astype(_STORED[dtype]).copy()
    return arr.reshape(shape), offset + nbytes


def load_weights(model_dir: Path, manifest: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """Return every weight in ``manifest`` keyed by its (Const node) name."""
    out: dict[str, np.ndarray] = {}
    for group in manifest:
        buf = b"".join((model_dir / p).read_bytes() for p in group["paths"])
        offset = 0
        for spec in group["weights"]:
            if spec["dtype"] == "string":
                raise ConversionError(f"weight {spec['name']!r}: string tensors are not supported")
            out[spec["name"]], offset = _decode_one(buf, offset, spec)
    return out
