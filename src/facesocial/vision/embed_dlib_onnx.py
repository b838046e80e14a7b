"""dlib's 128-D face ResNet run by ONNX Runtime, batched over the faces of a call.

The ONNX file is our own conversion of the pinned ``dlib_face_recognition_resnet_model_v1.dat``
(``facesocial models pull``; :mod:`facesocial.models.convert.dlib_graph`). Its descriptors
agree with dlib's ``compute_face_descriptor`` to cosine >= 0.999 (tests/model/test_dlib_onnx.py),
so it keeps dlib's model name, version and vector collection: galleries and thresholds written
by the dlib runtime stay valid. ``runtime`` says which one produced the vectors.
"""

from __future__ import annotations

import logging

import numpy as np
import numpy.typing as npt

from facesocial import errors
from facesocial.models.batcher import CrossRequestBatcher
from facesocial.models.dlib_pack import ONNX_NAME, model_info
from facesocial.models.runtime import ModelCache, OnnxModel
from facesocial.vision.align import DLIB_CHIP_SIZE
from facesocial.vision.embed_dlib import DlibChipEmbedder, DlibResnetEmbedder
from facesocial.vision.geometry import l2_normalise
from facesocial.vision.ports import Embedder

log = logging.getLogger(__name__)


class DlibResnetOnnxEmbedder(DlibChipEmbedder):
    """Same interface and vectors as :class:`DlibResnetEmbedder`; one ORT run per chunk.

    ``max_batch`` caps the chips per ONNX Runtime run (memory: ~0.5 MB of activations per
    chip at the widest layer); a call with more faces runs in chunks of that size.
    """

    runtime = "onnxruntime"

    def __init__(self, onnx_model: OnnxModel, *, max_batch: int = 16, cross_request: bool = True) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self._onnx = onnx_model
        self.max_batch = max_batch
        # Concurrent requests' chips share ONNX Runtime runs (models/batcher.py): one run at a
        # time over everything queued, instead of sessions competing for the same cores.
        self.batcher = CrossRequestBatcher(self._run, max_batch) if cross_request else None
        # dlib's name and version, not the file's: the vectors are the same model's.
        self.model = model_info(ONNX_NAME).ref

    def embed_chips(self, chips: list[npt.NDArray[np.uint8]]) -> npt.NDArray[np.float32]:
        """(N, 128) unit vectors of N aligned 150x150x3 RGB uint8 chips (``dlib_chips``).

        Raises ValueError for a chip of another shape.
        """
        if not chips:
            return np.zeros((0, self.dimension), dtype=np.float32)
        expected = (DLIB_CHIP_SIZE, DLIB_CHIP_SIZE, 3)
        for index, chip in enumerate(chips):
            if chip.shape != expected:
                raise ValueError(f"chip {index} has shape {chip.shape}, expected {expected}")
        rows = np.stack(chips)
        raw = self.batcher(rows) if self.batcher is not None else self._run(rows)
        return l2_normalise(np.asarray(raw, dtype=np.float32))

    def _run(self, rows: npt.NDArray[np.generic]) -> npt.NDArray[np.float32]:
        """Raw (N, 128) descriptors of (N, 150, 150, 3) chips, ``max_batch`` per ORT run."""
        parts = [
            self._onnx.run(np.asarray(rows[start : start + self.max_batch], dtype=np.float32))["descriptor"]
            for start in range(0, len(rows), self.max_batch)
        ]
        return np.concatenate(parts).astype(np.float32, copy=False)


# Raw descriptors of dlib's ResNet have components of about ±0.2; our conversion agrees with dlib
# to ~4e-7 (tests/model/test_dlib_onnx.py). 1e-3 leaves room for other CPUs' float rounding and
# refuses any change of the weights that matters.
SELF_TEST_TOLERANCE = 1e-3


def self_test(onnx_embedder: DlibResnetOnnxEmbedder, reference: DlibResnetEmbedder) -> float:
    """Max |difference| of raw descriptors between the ONNX file and dlib's own model, on two
    fixed synthetic chips (noise and a gradient): one ~80 ms dlib run at start-up.

    The manifest's sha256 only proves that the file is the one the manifest names; this proves
    that it computes dlib's model, whoever wrote both.
    """
    noise = np.random.default_rng(0).integers(0, 256, (DLIB_CHIP_SIZE, DLIB_CHIP_SIZE, 3), dtype=np.uint8)
    ramp = np.linspace(0, 255, DLIB_CHIP_SIZE, dtype=np.float32)
    gradient = np.stack(np.broadcast_arrays(ramp[:, None], ramp[None, :], ramp[::-1, None]), axis=-1)
    chips = [noise, np.ascontiguousarray(gradient.astype(np.uint8))]
    ours = onnx_embedder._run(np.stack(chips))
    return float(np.max(np.abs(ours - reference.raw_descriptors(chips))))


def dlib_resnet_embedder(
    cache: ModelCache, *, runtime: str = "onnx", max_batch: int = 16, cross_request: bool = True
) -> Embedder:
    """The dlib ResNet embedder for ``runtime`` ("onnx" or "dlib").

    "onnx" uses the converted model in ``cache`` and falls back to dlib, with one warning,
    when it is not there (not pulled yet), fails its checksum, or fails the self-test against
    dlib's own model (:func:`self_test`).
    """
    if runtime == "onnx":
        if cache.has(ONNX_NAME):
            try:
                onnx_embedder = DlibResnetOnnxEmbedder(
                    cache.get(ONNX_NAME), max_batch=max_batch, cross_request=cross_request
                )
                reference = DlibResnetEmbedder()
                difference = self_test(onnx_embedder, reference)
                if difference > SELF_TEST_TOLERANCE:
                    log.error(
                        "%s ONNX gives other descriptors than dlib (max |difference| %.2g > %g): the "
                        "file in %s is not our conversion of the pinned model; running it in dlib",
                        ONNX_NAME, difference, SELF_TEST_TOLERANCE, cache.folder,
                    )  # fmt: skip
                    return reference
                return onnx_embedder
            except (errors.ModelUnavailableError, errors.ModelChecksumError) as exc:
                log.warning("%s ONNX unusable (%s): running it in dlib", ONNX_NAME, exc)
        else:
            log.warning(
                "%s ONNX is not in %s (run `facesocial models pull`): running it in dlib",
                ONNX_NAME,
                cache.folder,
            )
    elif runtime != "dlib":
        raise ValueError(f"unknown dlib runtime {runtime!r} (onnx or dlib)")
    return DlibResnetEmbedder()
