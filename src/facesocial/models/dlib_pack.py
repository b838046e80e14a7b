"""The dlib models shipped by the ``face_recognition_models`` PyPI package, checksum-pinned.

dlib itself comes from ``dlib-bin``. The files are loaded from the installed package, never
downloaded; each is verified against the sha256 pinned here before dlib parses it.

``dlib_resnet_v1`` is also converted to ONNX by our own converter
(:mod:`facesocial.models.convert.dlib_graph`) into the model cache (``ensure_resnet_onnx``,
run by ``facesocial models pull`` and serve's auto-pull), where ONNX Runtime runs it batched.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from collections.abc import Callable
from functools import cache
from pathlib import Path

from facesocial import errors
from facesocial.models.cache import Manifest, ManifestEntry, save_onnx, sha256_file
from facesocial.models.convert import describe_io
from facesocial.models.convert.dlib_graph import CONVERTER_VERSION, INPUT_NAME, OUTPUT_NAME, convert_dlib_dnn
from facesocial.models.manifest import ModelInfo

PACKAGE = "face_recognition_models"

# Pinned from face_recognition_models 0.3.0; a different file means a different model.
_PINNED: dict[str, tuple[str, str, str, str]] = {
    # name: (filename, sha256, task, input spec)
    "dlib_resnet_v1": (
        "dlib_face_recognition_resnet_model_v1.dat",
        "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
        "face_embedding",
        "aligned 150x150 RGB uint8 chip (padding 0.25); output 128-D",
    ),
    # Trained on iBUG 300-W, whose terms bar commercial use: only on explicit request
    # (landmarks=68); alignment uses the 5-point model.
    "dlib_shape_68": (
        "shape_predictor_68_face_landmarks.dat",
        "fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f",
        "face_landmarks_68",
        "RGB uint8 image + face box; output 68 points (iBUG 300-W layout)",
    ),
    "dlib_shape_5": (
        "shape_predictor_5_face_landmarks.dat",
        "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
        "face_landmarks_5",
        "RGB uint8 image + face box; output 5 points (eye corners, nose base)",
    ),
}

_HOG_INFO_TASK = "face_detection"

# dlib-models' README (Davis King): the model files are released into the public domain.
# The PyPI package's own metadata says MIT. Training data: VGG-Face, FaceScrub, web images.
_LICENCE = "public domain (dlib-models README, Davis King); face_recognition_models metadata: MIT"

# The ONNX conversion of dlib_resnet_v1 in the model cache (same name: same model, same
# vectors up to float rounding, so galleries and thresholds stay valid).
ONNX_NAME = "dlib_resnet_v1"
ONNX_FILE = "dlib_resnet_v1.onnx"
ONNX_CONVERTER = f"facesocial dlib2onnx v{CONVERTER_VERSION}"


def _package_dir() -> Path:
    try:
        import face_recognition_models
    except ImportError as exc:  # pragma: no cover - a broken install
        raise errors.ModelUnavailableError(
            "The face_recognition_models package is not installed (pip install face_recognition_models)"
        ) from exc
    return Path(face_recognition_models.__file__).parent / "models"


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def model_info(name: str) -> ModelInfo:
    """Describe one of the pinned dlib models (or the HOG detector built into dlib)."""
    if name == "dlib_hog":
        return ModelInfo(
            name="dlib_hog",
            version=_version("dlib-bin"),
            task=_HOG_INFO_TASK,
            source_package="dlib-bin",
            source_version=_version("dlib-bin"),
            licence="BSL-1.0",
            upstream="dlib get_frontal_face_detector (HOG + linear SVM, 5 pose filters)",
            filename="(built into dlib)",
            sha256="",
            input_spec="RGB uint8 image of any size",
        )
    filename, sha256, task, spec = _PINNED[name]
    return ModelInfo(
        name=name,
        version="1.0",
        task=task,
        source_package=PACKAGE,
        source_version=_version(PACKAGE),
        licence=_LICENCE,
        upstream="dlib-models by Davis King",
        filename=filename,
        sha256=sha256,
        input_spec=spec,
    )


def all_model_infos() -> list[ModelInfo]:
    return [model_info("dlib_hog"), *(model_info(name) for name in _PINNED)]


@cache
def verified_path(name: str) -> Path:
    """Path of a pinned model file after its sha256 matched; cached per process."""
    filename, expected, _, _ = _PINNED[name]
    path = _package_dir() / filename
    if not path.is_file():
        raise errors.ModelUnavailableError(f"Model file {filename} is missing from {PACKAGE}")
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != expected:
        raise errors.ModelChecksumError(
            f"{filename}: sha256 {digest.hexdigest()} does not match the pinned {expected}"
        )
    return path


def resnet_onnx_is_current(model_dir: Path) -> bool:
    """The cache holds an ONNX conversion of the pinned .dat by this converter version."""
    manifest = Manifest.load(model_dir)
    entry = manifest.models.get(ONNX_NAME)
    filename, sha256, _, _ = _PINNED[ONNX_NAME]
    return (
        entry is not None
        and manifest.is_complete(model_dir, [ONNX_NAME])
        and entry.converter == ONNX_CONVERTER
        and entry.source_files.get(filename) == sha256
    )


def ensure_resnet_onnx(model_dir: Path, *, log: Callable[[str], None] = lambda _msg: None) -> bool:
    """Convert dlib_resnet_v1 to ``model_dir/dlib_resnet_v1.onnx`` unless it is current.

    Verifies the .dat's pinned sha256 first (ModelChecksumError / ModelUnavailableError),
    converts (ConversionError on a malformed file), writes atomically and records a manifest
    entry with the source package and version, licence, source and ONNX sha256 and the
    converter version. Returns True when it converted, False when it was already current.
    """
    if resnet_onnx_is_current(model_dir):
        return False
    source = verified_path(ONNX_NAME)
    info = model_info(ONNX_NAME)
    log(f"converting {ONNX_NAME} ({source.name}) to ONNX ...")
    model = convert_dlib_dnn(
        source.read_bytes(), doc=f"{ONNX_NAME} from {PACKAGE}=={info.source_version} ({source.name})"
    )
    io = describe_io(model)
    target = model_dir / ONNX_FILE
    save_onnx(model, target)
    manifest = Manifest.load(model_dir)  # re-read: keep whatever else is listed
    manifest.models[ONNX_NAME] = ManifestEntry(
        name=ONNX_NAME,
        version=info.version,  # the version galleries were written with (see vision/ports.py)
        task=info.task,
        file=target.name,
        sha256=sha256_file(target),
        size_bytes=target.stat().st_size,
        source_package=PACKAGE,
        source_version=info.source_version,
        source_files={source.name: info.sha256},
        upstream=f"{info.upstream} (dlib DNN .dat, run by onnxruntime)",
        licence=_LICENCE,
        input_spec=f"{INPUT_NAME}: float32 (N, 150, 150, 3) RGB 0..255 aligned chips (padding 0.25)",
        outputs=f"{OUTPUT_NAME}: float32 (N, 128) raw descriptor (L2-normalise for cosine)",
        inputs=io["inputs"],
        output_tensors=io["outputs"],
        converter=ONNX_CONVERTER,
    )
    manifest.save(model_dir)
    return True
