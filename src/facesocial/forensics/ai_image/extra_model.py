"""A user-supplied ONNX classifier of whole images (``settings.ai_detection.extra_model_path``).

The same contract as the deepfake slot (:mod:`facesocial.forensics.extra_model`: one float32 input
(N, 3, S, S) RGB 0..1 channels first, output (N, 1) logits / (N, 2) [real, ai], or probabilities
when the ONNX metadata says ``facesocial.output = probabilities``), except for the crop: here it is
the whole image's centre square at side S (:func:`.features.working_image`: shorter side resized to
S, centre square). Its P(AI) is the method's score unchanged — the model's author answers for its
calibration; its sha256 is in the version (``extra_onnx@<12 hex>``).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

from facesocial.forensics.ai_image.features import working_image
from facesocial.forensics.ai_image.report import EXTRA_MODEL, MethodResult
from facesocial.forensics.extra_model import ExtraModel


class ExtraImageModel:
    """Thread-safe wrapper of a loaded user model."""

    name = EXTRA_MODEL

    def __init__(self, model: ExtraModel) -> None:
        self._model = model
        self.version = model.model.tag

    @classmethod
    def load(cls, path: Path, *, intra_op_threads: int = 1) -> ExtraImageModel:
        """Raises ``errors.ModelUnavailableError`` (503) when the file is missing or breaks the contract."""
        return cls(ExtraModel(path, intra_op_threads=intra_op_threads))

    def analyze(self, rgb: npt.NDArray[np.uint8]) -> MethodResult:
        started = time.perf_counter()
        crop = working_image(rgb, self._model.size)
        p = float(self._model.probabilities(crop[None, ...])[0])
        return MethodResult(
            name=EXTRA_MODEL,
            score=p,
            processing_time_ms=(time.perf_counter() - started) * 1000.0,
            version=self.version,
            details={"p_ai": round(p, 4), "sha256": self._model.sha256, "input_side": self._model.size},
        )
