"""Self-blended-image (SBI) deepfake classifier: the shared face crop and the packaged ONNX model.

Method: Shiohara & Yamasaki, "Detecting Deepfakes with Self-Blended Images", CVPR 2022. The
network was trained here from scratch on real faces only; its fakes were made on the fly by
blending each face with a jittered copy of itself through a deformed, blurred face mask
(scripts/train/deepfake_sbi.py, docs/training-deepfake.md). The weights ship inside the package
(``forensics/weights/``) with a manifest giving their sha256, training data and metrics.

:func:`face_crop` is THE crop of this model: training and inference both call it, so a change
here requires retraining. No torch import: inference is ONNX Runtime only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from facesocial import errors
from facesocial.models.manifest import ModelRef
from facesocial.models.packaged import read_packaged
from facesocial.vision.crops import square_crop, square_transform

SBI_INPUT_SIZE = 112
"""Side in px of the square crop the classifier reads (chosen for a few ms per face on 2 CPU cores)."""

SBI_CROP_SCALE = 1.3
"""Crop side = this × max(box width, box height): the face plus the blending boundary around it."""

SBI_MODEL_NAME = "deepfake_sbi"
WEIGHTS_PACKAGE = "facesocial.forensics.weights"
WEIGHTS_FILE = "deepfake_sbi.onnx"
MANIFEST_FILE = "deepfake_sbi.manifest.json"

# Input normalisation (training and inference): x = (rgb / 255 - 0.5) / 0.5, i.e. -1..1, RGB, NCHW.
_MEAN = 0.5
_STD = 0.5
# Faces per ONNX call: bounds the memory of one call (a 112² float crop is 150 kB).
_BATCH = 32

UInt8Array = npt.NDArray[np.uint8]
FloatArray = npt.NDArray[np.float32]


def crop_transform(box: npt.ArrayLike, size: int = SBI_INPUT_SIZE) -> npt.NDArray[np.float64]:
    """Image->crop affine (2, 3) of :func:`face_crop`: map landmarks with it into crop pixels."""
    return square_transform(box, SBI_CROP_SCALE, size)


def face_crop(rgb: UInt8Array, box: npt.ArrayLike, size: int = SBI_INPUT_SIZE) -> UInt8Array:
    """The classifier's crop of one face: (size, size, 3) uint8 RGB.

    A square centred on the box centre, side = 1.3 × max(w, h) of ``box`` (x1, y1, x2, y2 in
    ``rgb``'s pixels), edge-padded where it leaves the image, resized to ``size`` (bilinear, with
    area pre-shrinking for large faces: :func:`facesocial.vision.crops.warp_crop`).
    """
    return square_crop(rgb, np.asarray(box, dtype=np.float64).reshape(4), SBI_CROP_SCALE, size, "edge")


def normalise(crops: UInt8Array) -> FloatArray:
    """(N, S, S, 3) uint8 RGB crops -> (N, 3, S, S) float32 in -1..1, the model's ``input``."""
    x = crops.astype(np.float32).transpose(0, 3, 1, 2) / np.float32(255.0)
    return np.ascontiguousarray((x - np.float32(_MEAN)) / np.float32(_STD), dtype=np.float32)


@dataclass(frozen=True, slots=True)
class SbiManifest:
    """What the classifier needs from ``deepfake_sbi.manifest.json`` (the file says much more)."""

    name: str
    version: str
    sha256: str
    input_size: int
    raw: dict[str, Any]

    @classmethod
    def parse(cls, text: str) -> SbiManifest:
        data = json.loads(text)
        return cls(
            name=str(data["name"]),
            version=str(data["version"]),
            sha256=str(data["sha256"]),
            input_size=int(data["input"]["shape"][2]),
            raw=data,
        )


class SbiClassifier:
    """P(fake) per face from the SBI-trained CNN (0 = looks real, 1 = looks blended).

    Thread-safe (one ONNX Runtime session; ``run`` may be called concurrently). Build with
    :meth:`default` (the packaged weights) or :meth:`from_bytes`.
    """

    def __init__(self, model_bytes: bytes, manifest: SbiManifest, *, intra_op_threads: int = 2) -> None:
        """Open ``model_bytes`` after checking their sha256 against ``manifest``.

        Raises ``errors.ModelChecksumError`` (MODEL_CHECKSUM_MISMATCH, 503) on a mismatch.
        """
        import hashlib

        actual = hashlib.sha256(model_bytes).hexdigest()
        if actual != manifest.sha256:
            raise errors.ModelChecksumError(
                f"{WEIGHTS_FILE}: sha256 {actual} does not match the manifest's {manifest.sha256}"
            )
        if manifest.input_size != SBI_INPUT_SIZE:
            raise errors.ModelUnavailableError(
                f"{WEIGHTS_FILE} expects {manifest.input_size} px crops, this code makes {SBI_INPUT_SIZE}"
            )
        # The project's session settings (facesocial.models.runtime.ModelCache._open), CPU only:
        # a 112 px CNN gains nothing from a GPU round trip.
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(
            model_bytes, sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.manifest = manifest
        self.model = ModelRef(SBI_MODEL_NAME, manifest.version)

    @classmethod
    def from_bytes(
        cls, model_bytes: bytes, manifest_text: str, *, intra_op_threads: int = 2
    ) -> SbiClassifier:
        return cls(model_bytes, SbiManifest.parse(manifest_text), intra_op_threads=intra_op_threads)

    @classmethod
    def default(cls, *, intra_op_threads: int = 2) -> SbiClassifier | None:
        """The weights packaged in ``facesocial/forensics/weights/``, or None when they are absent.

        Raises ``errors.ModelChecksumError`` when the .onnx does not match its manifest.
        """
        packaged = read_packaged("facesocial.forensics", WEIGHTS_FILE, MANIFEST_FILE)
        if packaged is None:
            return None
        return cls.from_bytes(*packaged, intra_op_threads=intra_op_threads)

    def logits(self, crops: UInt8Array) -> FloatArray:
        """(N,) fake logits of (N, S, S, 3) uint8 RGB crops made by :func:`face_crop`."""
        if (
            crops.ndim != 4
            or crops.shape[1:] != (SBI_INPUT_SIZE, SBI_INPUT_SIZE, 3)
            or crops.dtype != np.uint8
        ):
            raise errors.ValidationFailedError(
                f"SBI crops must be (N, {SBI_INPUT_SIZE}, {SBI_INPUT_SIZE}, 3) uint8, "
                f"got {crops.shape} {crops.dtype}"
            )
        out = np.zeros((len(crops),), np.float32)
        for start in range(0, len(crops), _BATCH):
            batch = normalise(crops[start : start + _BATCH])
            out[start : start + len(batch)] = self._session.run(["fake_logit"], {"input": batch})[0][:, 0]
        return out

    def score(self, rgb: UInt8Array, boxes: npt.ArrayLike) -> FloatArray:
        """(N,) float32 P(fake) in 0..1 (sigmoid of the logit), one per box, batched.

        ``rgb``: (H, W, 3) uint8 RGB. ``boxes``: (N, 4) x1, y1, x2, y2 in ``rgb``'s pixels (a
        detector's boxes; the crop is :func:`face_crop`). N = 0 gives an empty array. Raises
        ``errors.ValidationFailedError`` (422) on a wrong shape/dtype or non-finite boxes.
        """
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8 or min(rgb.shape[:2]) < 1:
            raise errors.ValidationFailedError(f"rgb must be (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
        box_array = np.asarray(boxes, dtype=np.float64)
        if box_array.size == 0:
            return np.zeros((0,), np.float32)
        if box_array.ndim != 2 or box_array.shape[1] != 4 or not np.isfinite(box_array).all():
            raise errors.ValidationFailedError(
                f"boxes must be (N, 4) finite x1 y1 x2 y2, got {box_array.shape}"
            )
        crops = np.stack([face_crop(rgb, box) for box in box_array])
        logits = self.logits(crops).astype(np.float64)
        return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)
