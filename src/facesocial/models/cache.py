"""The on-disk model cache: converted ONNX files plus ``manifest.json`` describing each."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import onnx

MANIFEST = "manifest.json"


def save_onnx(model: onnx.ModelProto, target: Path) -> None:
    """Write ``model`` to ``target`` whole or not at all (temporary file, then rename), creating
    the folder: an interrupted conversion never leaves a half-written model under its name."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(".onnx.tmp")
    onnx.save(model, temporary)
    temporary.replace(target)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    name: str
    version: str
    task: str
    file: str
    sha256: str
    size_bytes: int
    source_package: str
    source_version: str
    source_files: dict[str, str]  # file name -> sha256
    upstream: str
    licence: str
    input_spec: str
    outputs: str
    inputs: list[dict[str, Any]] = field(default_factory=list)
    output_tensors: list[dict[str, Any]] = field(default_factory=list)
    converter: str = ""


@dataclass
class Manifest:
    pack: dict[str, str]
    models: dict[str, ManifestEntry]

    @classmethod
    def load(cls, folder: Path) -> Manifest:
        path = folder / MANIFEST
        if not path.exists():
            return cls(pack={}, models={})
        data = json.loads(path.read_text())
        return cls(
            pack=dict(data.get("pack", {})),
            models={name: ManifestEntry(**entry) for name, entry in data.get("models", {}).items()},
        )

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        payload = {"pack": self.pack, "models": {n: asdict(e) for n, e in sorted(self.models.items())}}
        temporary = folder / (MANIFEST + ".tmp")
        temporary.write_text(json.dumps(payload, indent=2) + "\n")
        os.replace(temporary, folder / MANIFEST)

    def is_complete(self, folder: Path, names: list[str]) -> bool:
        """Every named model is listed and its file is present with the recorded size."""
        for name in names:
            entry = self.models.get(name)
            if entry is None:
                return False
            path = folder / entry.file
            if not path.exists() or path.stat().st_size != entry.size_bytes:
                return False
        return True
