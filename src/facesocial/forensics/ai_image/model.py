"""SkyGate's learned method: the packaged MLP over :mod:`.features`, in ONNX Runtime.

Trained offline by ``scripts/train/ai_image_model.py`` (its manifest, beside the weights, records
the data, the commit, the metrics and the data's licences). The model's ``p_ai`` is the method's
score.

Explanation (document 003's ``feature_importance``), by occlusion: for each feature group
(:data:`GROUPS`) the group's statistics are set to their training mean and the model run again;
``importance = logit(image) − logit(image without the group)``, in logit units, > 0 when the group
pushed the image towards "AI-generated". All groups run in the same ONNX call as the image itself
(11 rows), so the explanation costs no measurable time.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from facesocial import errors
from facesocial.forensics.ai_image.features import FEATURE_NAMES, features
from facesocial.forensics.ai_image.report import MODEL as METHOD
from facesocial.forensics.ai_image.report import MethodResult
from facesocial.metrics import inference_timer
from facesocial.models.manifest import ModelRef
from facesocial.models.packaged import read_packaged

MODEL = ModelRef("skygate_mlp", "1.0")
MODEL_FILE = "ai_image_mlp.onnx"
MANIFEST_FILE = "ai_image_mlp.manifest.json"
WEIGHTS_PACKAGE = "facesocial.forensics"
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
# Feature groups of the explanation: name -> feature-name prefixes (features.py's module doc).
GROUPS: dict[str, tuple[str, ...]] = {
    "residual_spectrum": ("res_ring_",),
    "residual_statistics": ("res_std", "res_kurtosis", "res_small"),
    "residual_channel_correlation": ("res_corr_",),
    "gradient_energy": ("grad_",),
    "local_variance": ("locvar_",),
    "micro_texture_lbp": ("lbp_",),
    "colour": ("sat_", "val_", "a_std", "b_std"),
    "image_spectrum": ("spec_",),
    "residual_cooccurrence": ("cooc_",),
}


def _group_columns() -> dict[str, list[int]]:
    columns = {
        group: [i for i, n in enumerate(FEATURE_NAMES) if n.startswith(prefixes)]
        for group, prefixes in GROUPS.items()
    }
    covered = sorted(i for cols in columns.values() for i in cols)
    assert covered == list(range(len(FEATURE_NAMES))), "every feature belongs to exactly one group"
    return columns


class AiImageModel:
    """P(AI-generated) of a whole image. Thread-safe (one ONNX Runtime session)."""

    name = METHOD

    def __init__(self, model_bytes: bytes, manifest: dict[str, Any], *, intra_op_threads: int = 1) -> None:
        """Raises ``errors.ModelChecksumError`` when the bytes do not match the manifest's sha256 and
        ``errors.ModelUnavailableError`` when the model expects other features than this code computes."""
        actual = hashlib.sha256(model_bytes).hexdigest()
        if actual != str(manifest["sha256"]):
            raise errors.ModelChecksumError(
                f"{MODEL_FILE}: sha256 {actual} does not match the manifest's {manifest['sha256']}"
            )
        names = list(manifest["input"]["feature_names"])
        if names != list(FEATURE_NAMES):
            raise errors.ModelUnavailableError(f"{MODEL_FILE} expects other features than this code computes")
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(
            model_bytes, sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._mean = np.asarray(manifest["feature_mean"], np.float32)
        self._groups = _group_columns()
        self.manifest = manifest
        self.sha256 = actual
        self.model = ModelRef(MODEL.name, str(manifest["version"]))
        self.version = self.model.tag

    @classmethod
    def packaged(cls, *, intra_op_threads: int = 1) -> AiImageModel | None:
        """The weights in ``facesocial/forensics/weights/``, or None when they are not there."""
        found = read_packaged(WEIGHTS_PACKAGE, MODEL_FILE, MANIFEST_FILE)
        if found is None:
            return None
        blob, text = found
        return cls(blob, json.loads(text), intra_op_threads=intra_op_threads)

    def predict(
        self, vectors: npt.NDArray[np.float32]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """(p_ai (N,) 0..1, logit (N,)) of feature rows (N, 80)."""
        p, logit = self._session.run(
            ["p_ai", "logit"], {"features": np.ascontiguousarray(vectors, np.float32)}
        )
        return np.asarray(p, np.float32)[:, 0], np.asarray(logit, np.float32)[:, 0]

    def analyze(self, rgb: npt.NDArray[np.uint8]) -> MethodResult:
        """The ``model`` method's result for ``rgb`` (H, W, 3 uint8)."""
        started = time.perf_counter()
        vector = features(rgb)
        rows = [vector]
        for columns in self._groups.values():
            occluded = vector.copy()
            occluded[columns] = self._mean[columns]
            rows.append(occluded)
        with inference_timer(self.model.name):
            p, logit = self.predict(np.stack(rows))
        shares = {group: float(logit[0] - logit[k + 1]) for k, group in enumerate(self._groups)}
        importance = {g: round(v, 4) for g, v in sorted(shares.items(), key=lambda gv: -abs(gv[1]))}
        return MethodResult(
            name=METHOD,
            score=float(p[0]),
            processing_time_ms=(time.perf_counter() - started) * 1000.0,
            version=self.version,
            details={
                "model_name": self.model.name,
                "model_version": self.model.version,
                "sha256": self.sha256,
                "p_ai": round(float(p[0]), 4),
                "feature_importance": importance,
                "feature_importance_unit": "logit(image) - logit(group at its training mean); > 0: AI",
            },
        )
