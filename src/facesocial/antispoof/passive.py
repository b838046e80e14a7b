"""Passive liveness (face presentation attack detection from one image) on ONNX Runtime.

The model (``antispoof/weights/liveness_passive.onnx``, trained by
scripts/train/liveness_passive.py; docs/liveness-passive.md) reads the hand-crafted features of
:mod:`facesocial.antispoof.features` and gives P(live), P(photo), P(screen) per face, plus a few
per-cue scores for explanations. The liveness score is P(live); a face is accepted as live when
it is at least :attr:`PassiveLiveness.threshold` (from the manifest: the out-of-fold threshold
with BPCER <= 5 % on the development data). No mask attack was in the training data: a mask is
never predicted as such.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from facesocial import errors
from facesocial.antispoof.features import FEATURE_COUNT, batch_features
from facesocial.metrics import inference_timer
from facesocial.models.manifest import ModelRef
from facesocial.models.packaged import read_packaged

MODEL_NAME = "liveness_passive"
WEIGHTS_PACKAGE = "facesocial.antispoof"
WEIGHTS_FILE = "liveness_passive.onnx"
MANIFEST_FILE = "liveness_passive.manifest.json"


@dataclass(frozen=True, slots=True)
class PassiveScore:
    """One face's scores, each 0..1; ``live_score + photo_score + screen_score`` = 1.

    ``signals``: per cue (texture, frequency, specular, blur, colour), the P(attack) that cue
    alone gives (0 = looks live, 1 = looks like an attack); for explanations, not decisions.
    """

    live_score: float
    photo_score: float
    screen_score: float
    signals: dict[str, float]


class PassiveLiveness:
    """P(live) per face from the packaged model. Thread-safe (one ONNX Runtime session).

    Build with :meth:`default` (the packaged weights) or :meth:`from_bytes`.
    """

    def __init__(self, model_bytes: bytes, manifest: dict[str, Any], *, intra_op_threads: int = 2) -> None:
        """Open ``model_bytes`` after checking their sha256 against ``manifest``.

        Raises ``errors.ModelChecksumError`` on a sha256 mismatch and ``errors.ModelUnavailableError``
        when the model expects another feature layout than this code computes.
        """
        actual = hashlib.sha256(model_bytes).hexdigest()
        expected = str(manifest["sha256"])
        if actual != expected:
            raise errors.ModelChecksumError(
                f"{WEIGHTS_FILE}: sha256 {actual} does not match the manifest's {expected}"
            )
        width = int(manifest["input"]["shape"][1])
        if width != FEATURE_COUNT:
            raise errors.ModelUnavailableError(
                f"{WEIGHTS_FILE} expects {width} features, this code computes {FEATURE_COUNT}"
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(
            model_bytes, sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.manifest = manifest
        self.model = ModelRef(MODEL_NAME, str(manifest["version"]))
        self.sha256 = actual
        self.threshold = float(manifest["threshold"]["default_p_live"])
        self.signal_names: list[str] = [str(n) for n in manifest["output"]["signals"]["names"]]

    @classmethod
    def from_bytes(
        cls, model_bytes: bytes, manifest_text: str, *, intra_op_threads: int = 2
    ) -> PassiveLiveness:
        return cls(model_bytes, json.loads(manifest_text), intra_op_threads=intra_op_threads)

    @classmethod
    def default(cls, *, intra_op_threads: int = 2) -> PassiveLiveness | None:
        """The weights packaged in ``facesocial/antispoof/weights/``, or None when they are absent.

        Raises ``errors.ModelChecksumError`` when the .onnx does not match its manifest.
        """
        packaged = read_packaged(WEIGHTS_PACKAGE, WEIGHTS_FILE, MANIFEST_FILE)
        if packaged is None:
            return None
        return cls.from_bytes(*packaged, intra_op_threads=intra_op_threads)

    def predict(
        self, features: npt.NDArray[np.float32]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """(probabilities (N, 3) [live, photo, screen], signals (N, K)) of (N, FEATURE_COUNT) features."""
        if len(features) == 0:
            return np.zeros((0, 3), np.float32), np.zeros((0, len(self.signal_names)), np.float32)
        probs, signals = self._session.run(
            ["probabilities", "signals"], {"features": np.ascontiguousarray(features, np.float32)}
        )
        return np.asarray(probs, np.float32), np.asarray(signals, np.float32)

    def score(self, rgb: npt.NDArray[np.uint8], boxes: npt.ArrayLike) -> list[PassiveScore]:
        """One :class:`PassiveScore` per face; ``rgb`` (H, W, 3) uint8, ``boxes`` (N, 4) x1, y1, x2, y2 px.

        Any box is accepted (a tiny or out-of-image box is edge-padded into the fixed crop); the
        score of such a crop means little, so callers should pass detector boxes.
        """
        # Timed as one inference: the features are most of the model's cost (the ONNX call
        # itself is ~0.02 ms), and ai_model_inference_duration_seconds should say what it costs.
        with inference_timer(self.model.name):
            probs, signals = self.predict(batch_features(rgb, boxes))
        return [
            PassiveScore(
                live_score=float(p[0]),
                photo_score=float(p[1]),
                screen_score=float(p[2]),
                signals={name: float(v) for name, v in zip(self.signal_names, s, strict=True)},
            )
            for p, s in zip(probs, signals, strict=True)
        ]
