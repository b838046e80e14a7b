"""TF.js graph model -> ONNX converter (needs only ``onnx`` and ``numpy``).

Usage::

    from facesocial.models.convert import convert_tfjs_graph_model, describe_io
    model = convert_tfjs_graph_model(Path("models/facemesh.json"))
    onnx.save(model, "facemesh.onnx")

See ``NOTES.md`` in this folder for the I/O layout of the Human models.
"""

from .convert import convert_tfjs_graph_model, describe_io
from .errors import ConversionError

__all__ = ["ConversionError", "convert_tfjs_graph_model", "describe_io"]
