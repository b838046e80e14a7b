"""Exception type raised by the TF.js graph-model to ONNX converter."""

from __future__ import annotations


class ConversionError(RuntimeError):
    """A model cannot be converted (unsupported op, malformed file, ...).

    The message always names the offending TF op and node when there is one,
    so that a failure on a new model points straight at what to implement.
    """

    def __init__(self, message: str, *, op: str | None = None, node: str | None = None) -> None:
        self.op = op
        self.node = node
        where = ""
        if op is not None or node is not None:
            where = f" [op={op!r}, node={node!r}]"
        super().__init__(message + where)
