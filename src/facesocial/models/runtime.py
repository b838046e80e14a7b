"""ONNX Runtime sessions: loaded lazily, checksum-verified, one per model, shared by heads.

CPU by default; the CUDA provider is used when onnxruntime offers it and the settings allow.
Thread counts come from the settings (2 cores here: intra-op threads matter, inter-op not).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from facesocial import errors
from facesocial.metrics import inference_timer
from facesocial.models.cache import Manifest, ManifestEntry, sha256_file
from facesocial.models.manifest import ModelRef


@dataclass(frozen=True, slots=True)
class RuntimeOptions:
    intra_op_threads: int = 2
    inter_op_threads: int = 1
    use_cuda: bool = True
    # False: intra-op threads sleep instead of spinning while they wait (shared cores).
    spin: bool = True


class OnnxModel:
    """One loaded model: run by input array, outputs by name."""

    def __init__(self, entry: ManifestEntry, session: ort.InferenceSession) -> None:
        self.entry = entry
        self.ref = ModelRef(entry.name, entry.version)
        self._session = session
        self.input_name = session.get_inputs()[0].name
        self.output_names = [o.name for o in session.get_outputs()]
        self.providers = session.get_providers()

    def run(self, batch: npt.NDArray[np.float32]) -> dict[str, npt.NDArray[np.float32]]:
        with inference_timer(self.ref.name):
            outputs = self._session.run(
                None, {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)}
            )
        return {name: np.asarray(value) for name, value in zip(self.output_names, outputs, strict=True)}


class ModelCache:
    """Lazily opens models from the cache folder; ``preload`` opens a list up front."""

    def __init__(self, folder: Path, options: RuntimeOptions | None = None) -> None:
        self.folder = folder
        self.options = options or RuntimeOptions()
        self._manifest = Manifest.load(folder)
        self._models: dict[str, OnnxModel] = {}
        self._lock = threading.Lock()

    def available(self) -> list[str]:
        return sorted(
            n for n in self._manifest.models if (self.folder / self._manifest.models[n].file).exists()
        )

    def has(self, name: str) -> bool:
        return name in self.available()

    def entry(self, name: str) -> ManifestEntry:
        entry = self._manifest.models.get(name)
        if entry is None:
            raise errors.ModelUnavailableError(
                f"Model {name} is not in {self.folder}: run `facesocial models pull`"
            )
        return entry

    def get(self, name: str) -> OnnxModel:
        with self._lock:
            model = self._models.get(name)
            if model is None:
                model = self._open(self.entry(name))
                self._models[name] = model
            return model

    def preload(self, names: list[str]) -> None:
        for name in names:
            self.get(name)

    def providers(self) -> list[str]:
        available = ort.get_available_providers()
        if self.options.use_cuda and "CUDAExecutionProvider" in available:
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]
        return ["CPUExecutionProvider"]

    def _open(self, entry: ManifestEntry) -> OnnxModel:
        path = self.folder / entry.file
        if not path.exists():
            raise errors.ModelUnavailableError(f"{path} is missing: run `facesocial models pull`")
        actual = sha256_file(path)
        if actual != entry.sha256:
            raise errors.ModelChecksumError(
                f"{entry.file}: sha256 {actual} does not match the manifest's {entry.sha256}"
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.options.intra_op_threads
        options.inter_op_num_threads = self.options.inter_op_threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if not self.options.spin:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(str(path), sess_options=options, providers=self.providers())
        return OnnxModel(entry, session)
