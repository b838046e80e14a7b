"""Models trained by this project and shipped inside the package (``<package>/weights/``).

Each is an ``.onnx`` file beside a ``.manifest.json`` (name, version, sha256, data, metrics,
licence); its loader checks the sha256. Packages holding such weights: :data:`PACKAGES`.
"""

from __future__ import annotations

import json
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

PACKAGES = ("facesocial.forensics", "facesocial.antispoof")


def weights_folder(package: str) -> Traversable:
    return resources.files(package).joinpath("weights")


def read_packaged(package: str, weights: str, manifest: str) -> tuple[bytes, str] | None:
    """(model bytes, manifest text) of ``<package>/weights/{weights,manifest}``; None if either is absent."""
    folder = weights_folder(package)
    onnx_file, manifest_file = folder.joinpath(weights), folder.joinpath(manifest)
    if not (onnx_file.is_file() and manifest_file.is_file()):
        return None
    return onnx_file.read_bytes(), manifest_file.read_text(encoding="utf-8")


def packaged_manifests() -> list[tuple[Traversable, dict[str, Any]]]:
    """(weights file, parsed manifest) of every packaged model, in a stable order."""
    found = []
    for package in PACKAGES:
        folder = weights_folder(package)
        for item in sorted(folder.iterdir(), key=lambda i: i.name):
            if item.name.endswith(".manifest.json"):
                meta = json.loads(item.read_text(encoding="utf-8"))
                found.append((folder.joinpath(meta["file"]), meta))
    return found
