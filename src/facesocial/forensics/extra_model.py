"""A user-supplied ONNX deepfake classifier that joins the ensemble (``settings.deepfake.extra_model_path``).

Input contract (docs/deepfake.md repeats it for model authors):

* one input, float32, shape ``(N, 3, S, S)``: RGB (not BGR), channels first, values in 0..1
  (pixel / 255, no mean/std normalisation — put any normalisation inside the model). ``S`` is read
  from the model's declared input shape (the last dimension; it must be a fixed integer, 16..1024);
  ``N`` may be fixed to 1 or dynamic (faces are then sent one by one or in batches of ≤ 32).
* the crop is :func:`facesocial.forensics.sbi.face_crop` at side ``S``: a square centred on the
  detector's face box, side 1.3 × the box's longer side, edge-padded, resized bilinearly.
* the first output, float32, shape ``(N, 1)`` or ``(N, 2)``:

  - ``(N, 1)``: a fake score per face;
  - ``(N, 2)``: scores for (real, fake), in that order.

  By default the scores are logits: P(fake) = sigmoid(x) for ``(N, 1)``, softmax(row)[1] for
  ``(N, 2)``. A model whose last layer is already a sigmoid/softmax declares it with the ONNX
  metadata property ``facesocial.output = probabilities``; its values are then used as given
  (``(N, 2)``: the second column), clipped to 0..1.

The model's P(fake) enters the ensemble as its suspicion, unchanged: the project cannot calibrate a
model it has never seen on real faces, so the model's author answers for its calibration. Its
sha256 is part of the version string (``extra_onnx@<first 12 hex of sha256>``), so every stored
result names the exact file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from facesocial import errors
from facesocial.forensics.sbi import face_crop
from facesocial.models.manifest import ModelRef

FloatArray = npt.NDArray[np.float32]
UInt8Array = npt.NDArray[np.uint8]

MODEL_NAME = "extra_onnx"
OUTPUT_METADATA_KEY = "facesocial.output"
_BATCH = 32
_MIN_SIDE, _MAX_SIDE = 16, 1024


class ExtraModel:
    """A loaded user model (module doc). Thread-safe: ONNX Runtime sessions may run concurrently."""

    def __init__(self, path: Path, *, intra_op_threads: int = 2) -> None:
        """Open ``path``. Raises ``errors.ModelUnavailableError`` (503) when the file is missing,
        is not an ONNX model, or does not meet the input/output contract."""
        if not path.is_file():
            raise errors.ModelUnavailableError(f"extra deepfake model {path} does not exist")
        data = path.read_bytes()
        self.sha256 = hashlib.sha256(data).hexdigest()
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(
                data, sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types for invalid models
            raise errors.ModelUnavailableError(
                f"extra deepfake model {path} cannot be loaded: {exc}"
            ) from exc
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1 or not outputs:
            raise errors.ModelUnavailableError(
                "extra deepfake model: exactly one input and ≥ 1 output needed"
            )
        shape = list(inputs[0].shape)
        if len(shape) != 4 or shape[1] != 3 or not isinstance(shape[3], int) or shape[2] != shape[3]:
            raise errors.ModelUnavailableError(
                f"extra deepfake model: input must be (N, 3, S, S) with a fixed S, got {shape}"
            )
        if not _MIN_SIDE <= shape[3] <= _MAX_SIDE:
            raise errors.ModelUnavailableError(f"extra deepfake model: S = {shape[3]} is outside 16..1024")
        if inputs[0].type != "tensor(float)":
            raise errors.ModelUnavailableError(
                f"extra deepfake model: input must be float32, got {inputs[0].type}"
            )
        self.input_name = inputs[0].name
        self.output_name = outputs[0].name
        self.size = int(shape[3])
        self.batch = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else _BATCH
        meta = self._session.get_modelmeta().custom_metadata_map
        self.outputs_probabilities = (
            meta.get(OUTPUT_METADATA_KEY, "logits").strip().lower() == "probabilities"
        )
        self.model = ModelRef(MODEL_NAME, self.sha256[:12])

    def probabilities(self, crops: UInt8Array) -> FloatArray:
        """(N,) P(fake) of (N, S, S, 3) uint8 RGB crops. Raises ``errors.ModelUnavailableError`` when the
        model's output breaks the contract (shape or non-finite values)."""
        out = np.zeros((len(crops),), np.float32)
        for start in range(0, len(crops), self.batch):
            chunk = crops[start : start + self.batch]
            x = np.ascontiguousarray(chunk.astype(np.float32).transpose(0, 3, 1, 2) / np.float32(255.0))
            if len(chunk) < self.batch and self.batch != _BATCH:  # a fixed batch size: pad the last call
                x = np.concatenate([x, np.zeros((self.batch - len(chunk), *x.shape[1:]), np.float32)])
            raw = np.asarray(self._session.run([self.output_name], {self.input_name: x})[0], dtype=np.float64)
            raw = raw[: len(chunk)]
            out[start : start + len(chunk)] = self._to_probability(raw)
        return out

    def _to_probability(self, raw: npt.NDArray[np.float64]) -> FloatArray:
        if raw.ndim != 2 or raw.shape[1] not in (1, 2) or not np.isfinite(raw).all():
            raise errors.ModelUnavailableError(
                f"extra deepfake model: output must be finite (N, 1) or (N, 2), got {raw.shape}"
            )
        if self.outputs_probabilities:
            return np.clip(raw[:, -1], 0.0, 1.0).astype(np.float32)
        if raw.shape[1] == 1:
            return (1.0 / (1.0 + np.exp(-raw[:, 0]))).astype(np.float32)
        shifted = raw - raw.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        return np.asarray(exp[:, 1] / exp.sum(axis=1), dtype=np.float32)

    def score(self, rgb: UInt8Array, boxes: npt.ArrayLike) -> FloatArray:
        """(N,) P(fake) in 0..1 for (N, 4) x1, y1, x2, y2 boxes of ``rgb`` ((H, W, 3) uint8 RGB)."""
        box_array = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        if len(box_array) == 0:
            return np.zeros((0,), np.float32)
        crops = np.stack([face_crop(rgb, box, self.size) for box in box_array])
        return self.probabilities(crops)


def load_extra_model(path: Path | None, *, intra_op_threads: int = 2) -> ExtraModel | None:
    """The configured model, or None when ``path`` is None (the default: no extra model)."""
    return None if path is None else ExtraModel(path, intra_op_threads=intra_op_threads)
