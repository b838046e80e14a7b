"""The ensemble's band logic, fusion, no-face result, heatmap and the user-model contract.

The face detector is replaced by a stub returning fixed faces, and SBI by a stub with a fixed
probability: the claims here are about fusion and verdicts, not about detection or the network.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from PIL import Image

from facesocial import errors
from facesocial.forensics.calibration import ReferenceTable, build_reference
from facesocial.forensics.ensemble import SIGNAL_WEIGHTS, DeepfakeDetector, inconsistency_areas
from facesocial.forensics.extra_model import OUTPUT_METADATA_KEY, ExtraModel, load_extra_model
from facesocial.forensics.verdict import band_of, verdict_confidence, weighted_mean
from facesocial.models.manifest import ModelRef
from facesocial.settings import DeepfakeSettings
from facesocial.vision.faces import Faces
from tests.unit.test_forensics_signals import BOX, LANDMARKS, pasted, textured_scene

SETTINGS = DeepfakeSettings()


class StubPipeline:
    """Returns the given faces for any image (the detector is beside the point here)."""

    def __init__(self, faces: Faces) -> None:
        self.faces = faces
        self.embedders: dict[str, Any] = {}
        self.default_embedder = "none"
        self.mesh = None

    def detect(self, rgb: np.ndarray, options: Any) -> Faces:
        return self.faces


class StubSbi:
    def __init__(self, probability: float) -> None:
        self.probability = probability
        self.model = ModelRef("deepfake_sbi", "9.9")

    def score(self, rgb: np.ndarray, boxes: Any) -> np.ndarray:
        return np.full((len(np.asarray(boxes).reshape(-1, 4)),), self.probability, np.float32)


def one_face() -> Faces:
    return Faces(
        boxes=BOX[None, :].copy(),
        confidence=np.array([0.9], np.float32),
        detector=ModelRef("stub", "0"),
        landmarks=LANDMARKS[None, :, :].copy(),
    )


def with_clearing_check(
    table: ReferenceTable, blend_scores: np.ndarray, sbi_version: str = "9.9"
) -> ReferenceTable:
    """``table`` plus a self-blend measurement for the stub SBI (the clearing check)."""
    entries = {
        f"selfblend_fused@{level}": build_reference(
            "selfblend_fused",
            blend_scores,
            "upper",
            model=f"deepfake_ensemble@1.0+deepfake_sbi@{sbi_version}",
        )
        for level in ("basic", "standard")
    }
    return ReferenceTable({**table.signals, **ReferenceTable.from_dict({"signals": entries}).signals})


# Self-blends all score 0.5..1: none would fall in the real band, the check passes.
OPEN = with_clearing_check(ReferenceTable({}), np.linspace(0.5, 1.0, 100))


def detector(
    faces: Faces | None = None, sbi: StubSbi | None = None, reference: ReferenceTable | None = None
) -> DeepfakeDetector:
    return DeepfakeDetector(
        StubPipeline(one_face() if faces is None else faces),  # type: ignore[arg-type]
        sbi,  # type: ignore[arg-type]
        None,
        SETTINGS,
        reference=reference if reference is not None else OPEN,
    )


# --- bands and confidence ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("score", "band", "confidence"),
    [
        (0.0, "real", 1.0),
        (0.175, "real", 0.75),
        (0.3499, "real", 0.5),
        (0.35, "uncertain", 0.49),
        (0.5, "uncertain", 0.0),
        (0.6, "uncertain", 1 / 3),
        (0.65, "fake", 0.5),
        (0.825, "fake", 0.75),
        (1.0, "fake", 1.0),
    ],
)
def test_bands_and_confidence_in_the_verdict(score: float, band: str, confidence: float) -> None:
    assert band_of(score, SETTINGS) == band
    assert verdict_confidence(score, SETTINGS) == pytest.approx(confidence, abs=2e-3)


def test_without_a_learned_classifier_nothing_is_cleared() -> None:
    assert band_of(0.1, SETTINGS, can_clear=False) == "uncertain"
    assert band_of(0.9, SETTINGS, can_clear=False) == "fake"
    assert verdict_confidence(0.1, SETTINGS, can_clear=False) == pytest.approx(0.49)
    rng = np.random.default_rng(0)
    reference = ReferenceTable.from_dict(
        {
            "signals": {
                name: build_reference(name, rng.normal(0, 100, 1000), "two_sided") for name in SIGNAL_WEIGHTS
            }
        }
    )
    # Every hand-made statistic is typical for a real face (the reference is very wide) ...
    face = detector(reference=reference).score_faces(textured_scene(), one_face(), "standard")[0]
    assert face.score < SETTINGS.real_below
    # ... yet without SBI the face is not called real.
    assert face.band == "uncertain" and face.confidence < 0.5
    assert any("cannot clear" in note for note in face.notes)
    cleared = detector(sbi=StubSbi(0.01), reference=with_clearing_check(reference, np.linspace(0.5, 1, 100)))
    assert cleared.score_faces(textured_scene(), one_face(), "standard")[0].band == "real"


def test_the_real_band_closes_when_self_blends_slip_through() -> None:
    # Half of the self-blends score under real_below: the ensemble cannot vouch for real faces.
    leaky = with_clearing_check(ReferenceTable({}), np.linspace(0.0, 0.7, 100))
    d = detector(sbi=StubSbi(0.01), reference=leaky)
    assert d.clearing_miss_rate("standard") == pytest.approx(0.5, abs=0.02)
    assert not d.clears("standard")
    face = d.score_faces(textured_scene(), one_face(), "standard")[0]
    assert face.score < SETTINGS.real_below and face.band == "uncertain"
    assert any("self-blended" in note for note in face.notes)
    check = {c["name"]: c for c in d.components("standard")}["clearing_check"]
    assert check["real_band_open"] is False and check["miss_rate"] == pytest.approx(0.5, abs=0.02)
    # A measurement made with another SBI version does not apply.
    other = detector(
        sbi=StubSbi(0.01), reference=with_clearing_check(ReferenceTable({}), np.ones(50), "1.0.0")
    )
    assert other.clearing_miss_rate("standard") is None and not other.clears("standard")


def test_weighted_mean_ignores_zero_weights() -> None:
    assert weighted_mean([(1.0, 3.0), (0.0, 1.0)]) == pytest.approx(0.75)
    assert weighted_mean([(1.0, 0.0)]) is None
    assert weighted_mean([]) is None


# --- fusion --------------------------------------------------------------------------------------------


def test_a_confident_sbi_alone_makes_a_fake_and_names_face_swap() -> None:
    verdict = detector(sbi=StubSbi(0.99)).analyze_image(textured_scene(), "basic")
    face = verdict.faces[0]
    # Without a reference table only SBI (uncalibrated: its probability) has a suspicion.
    assert set(face.weights) == {"sbi"}
    assert face.signals["sbi"].details["uncalibrated"] is True
    assert verdict.band == "fake" and verdict.is_deepfake
    assert verdict.manipulation_score == pytest.approx(0.99, abs=1e-6)
    assert verdict.confidence_score == pytest.approx(verdict_confidence(0.99, SETTINGS))
    assert verdict.manipulation_types == ["face_swap"]
    assert verdict.inconsistency_areas[0]["reason"].startswith("learned blending-artefact classifier")
    assert verdict.model_version == "deepfake_ensemble@1.0+deepfake_sbi@9.9"


def test_a_low_sbi_makes_a_real_verdict_without_types() -> None:
    verdict = detector(sbi=StubSbi(0.02)).analyze_image(textured_scene(), "standard")
    assert verdict.band == "real" and not verdict.is_deepfake
    assert verdict.manipulation_types == [] and verdict.inconsistency_areas == []


def test_fused_score_is_the_documented_weighted_mean() -> None:
    rng = np.random.default_rng(0)
    reference = ReferenceTable.from_dict(
        {
            "signals": {
                name: build_reference(name, rng.normal(0, 1, 1000), "two_sided")
                for name in ("blend_colour", "blend_noise", "blend_boundary", "freq_hf", "freq_slope")
            }
        }
    )
    face = detector(sbi=StubSbi(0.8), reference=reference).score_faces(
        textured_scene(), one_face(), "standard"
    )[0]
    assert set(face.weights) == set(SIGNAL_WEIGHTS)
    pairs = [(face.signals[n].suspicion or 0.0, w) for n, w in face.weights.items()]
    expected = sum(s * w for s, w in pairs) / sum(w for _, w in pairs)
    assert face.score == pytest.approx(expected)
    assert face.weights["sbi"] == max(face.weights.values())


def test_basic_level_skips_blending() -> None:
    faces = detector(sbi=StubSbi(0.5)).score_faces(textured_scene(), one_face(), "basic")
    assert not any(name.startswith("blend_") for name in faces[0].signals)
    assert faces[0].eye_distance_px == pytest.approx(64.0)
    standard = detector(sbi=StubSbi(0.5)).score_faces(textured_scene(), one_face(), "standard")
    assert {"blend_colour", "blend_noise", "blend_boundary"} <= set(standard[0].signals)
    heat = detector(sbi=StubSbi(0.5))._score(textured_scene(), one_face(), "standard")[0][1]
    assert heat.inconsistency is not None and heat.inconsistency.map.shape[0] > 50


def test_unknown_level_and_bad_arrays_are_validation_errors() -> None:
    d = detector(sbi=StubSbi(0.5))
    with pytest.raises(errors.ValidationFailedError):
        d.analyze_image(textured_scene(), "paranoid")  # type: ignore[arg-type]
    with pytest.raises(errors.ValidationFailedError):
        d.analyze_image(np.zeros((10, 10), np.uint8), "basic")


def test_no_face_is_an_uncertain_result_not_an_error() -> None:
    empty = Faces.empty(ModelRef("stub", "0"))
    verdict = detector(faces=empty, sbi=StubSbi(0.99)).analyze_image(textured_scene(), "standard")
    assert verdict.faces_analyzed == 0
    assert verdict.band == "uncertain" and not verdict.is_deepfake
    assert verdict.confidence_score == 0.0 and verdict.reason == "no_face"
    assert verdict.as_dict()["faces"] == []


def test_a_face_without_any_signal_sits_mid_band_with_zero_confidence() -> None:
    tiny = Faces(
        boxes=np.array([[10, 10, 30, 30]], np.float32),
        confidence=np.array([0.9], np.float32),
        detector=ModelRef("stub", "0"),
        landmarks=np.array([[[24, 16], [22, 16], [14, 16], [16, 16], [19, 21]]], np.float32),
    )
    face = detector(faces=tiny).score_faces(textured_scene(), tiny, "standard")[0]
    assert face.band == "uncertain" and face.confidence == pytest.approx(0.0)
    assert any("too small" in note for note in face.notes)


def test_components_list_versions_and_availability() -> None:
    components = {c["name"]: c for c in detector(sbi=StubSbi(0.5)).components("basic")}
    assert components["deepfake_sbi"]["version"] == "9.9" and components["deepfake_sbi"]["available"]
    assert components["blending"]["used"] is False
    missing = {c["name"]: c for c in detector().components("standard")}
    assert missing["deepfake_sbi"]["available"] is False and missing["blending"]["used"] is True


# --- heatmap and areas ---------------------------------------------------------------------------------


def test_heatmap_is_an_rgba_png_hot_on_the_suspicious_face() -> None:
    scene = pasted(textured_scene())
    verdict = detector(sbi=StubSbi(0.95)).analyze_image(scene, "advanced")
    assert verdict.heatmap_png is not None
    image = Image.open(io.BytesIO(verdict.heatmap_png))
    assert image.mode == "RGBA" and image.size == (256, 256)
    alpha = np.asarray(image)[..., 3].astype(float)
    assert alpha[130:170, 110:150].mean() > 100  # inside the face
    assert alpha[:20, :20].max() == 0  # far from it
    kinds = {area["kind"] for area in verdict.inconsistency_areas}
    assert "face" in kinds


def test_heatmap_of_a_large_image_is_bounded() -> None:
    big = np.zeros((1200, 2400, 3), np.uint8)
    verdict = detector(faces=Faces.empty(ModelRef("s", "0"))).analyze_image(big, "standard")
    assert verdict.heatmap_png is not None
    assert Image.open(io.BytesIO(verdict.heatmap_png)).size == (512, 256)


def test_real_faces_give_no_inconsistency_areas() -> None:
    faces = detector(sbi=StubSbi(0.01)).score_faces(textured_scene(), one_face(), "advanced")
    assert inconsistency_areas(faces, SETTINGS.real_below) == []


# --- user-supplied ONNX model ----------------------------------------------------------------------------


def _mean_model(
    path: Path, side: int = 32, outputs: int = 1, probabilities: bool = False, channels: int = 3
) -> Path:
    """A model whose output is the mean red value (minus 0.5) per face, repeated ``outputs`` times."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", channels, side, side])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", outputs])
    axes = helper.make_tensor("axes", TensorProto.INT64, [3], [1, 2, 3])
    half = helper.make_tensor("half", TensorProto.FLOAT, [], [0.5])
    repeats = helper.make_tensor("reps", TensorProto.INT64, [2], [1, outputs])
    nodes = [
        helper.make_node("Slice", ["x", "s0", "s1", "ax"], ["red"]),
        helper.make_node("ReduceMean", ["red", "axes"], ["m"], keepdims=0),
        helper.make_node("Sub", ["m", "half"], ["c"]),
        helper.make_node("Unsqueeze", ["c", "one"], ["c1"]),
        helper.make_node("Tile", ["c1", "reps"], ["y"]),
    ]
    inits = [
        axes,
        half,
        repeats,
        helper.make_tensor("s0", TensorProto.INT64, [1], [0]),
        helper.make_tensor("s1", TensorProto.INT64, [1], [1]),
        helper.make_tensor("ax", TensorProto.INT64, [1], [1]),
        helper.make_tensor("one", TensorProto.INT64, [1], [1]),
    ]
    graph = helper.make_graph(nodes, "mean_red", [x], [y], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    if probabilities:
        helper.set_model_props(model, {OUTPUT_METADATA_KEY: "probabilities"})
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def _red_image(value: int) -> np.ndarray:
    img = np.zeros((64, 64, 3), np.uint8)
    img[..., 0] = value
    return img


def test_extra_model_logits_follow_the_contract(tmp_path: Path) -> None:
    model = ExtraModel(_mean_model(tmp_path / "m.onnx", side=32))
    assert model.size == 32 and model.model.name == "extra_onnx" and len(model.model.version) == 12
    box = [[8, 8, 56, 56]]
    # Red 255 -> mean 1.0 -> logit 0.5 -> sigmoid 0.622; red 0 -> logit -0.5 -> 0.378.
    assert model.score(_red_image(255), box)[0] == pytest.approx(1 / (1 + np.exp(-0.5)), abs=1e-4)
    assert model.score(_red_image(0), box)[0] == pytest.approx(1 / (1 + np.exp(0.5)), abs=1e-4)
    assert model.score(_red_image(0), np.zeros((0, 4))).shape == (0,)


def test_extra_model_two_logits_are_softmaxed_and_probabilities_kept(tmp_path: Path) -> None:
    two = ExtraModel(_mean_model(tmp_path / "two.onnx", outputs=2))
    # Equal logits for (real, fake) -> 0.5.
    assert two.score(_red_image(255), [[8, 8, 56, 56]])[0] == pytest.approx(0.5, abs=1e-6)
    probs = ExtraModel(_mean_model(tmp_path / "p.onnx", probabilities=True))
    assert probs.score(_red_image(255), [[8, 8, 56, 56]])[0] == pytest.approx(0.5, abs=1e-4)
    assert probs.score(_red_image(0), [[8, 8, 56, 56]])[0] == pytest.approx(0.0, abs=1e-6)  # -0.5 clipped


def test_extra_model_contract_violations_are_model_unavailable(tmp_path: Path) -> None:
    with pytest.raises(errors.ModelUnavailableError):
        ExtraModel(tmp_path / "absent.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(errors.ModelUnavailableError):
        ExtraModel(tmp_path / "junk.onnx")
    with pytest.raises(errors.ModelUnavailableError, match=r"\(N, 3, S, S\)"):
        ExtraModel(_mean_model(tmp_path / "grey.onnx", channels=1))
    assert load_extra_model(None) is None


def test_extra_model_joins_the_ensemble_with_its_weight(tmp_path: Path) -> None:
    extra = ExtraModel(_mean_model(tmp_path / "m.onnx"))
    settings = DeepfakeSettings(extra_model_weight=2.0)
    stub_pipeline: Any = StubPipeline(one_face())
    stub_sbi: Any = StubSbi(0.1)
    d = DeepfakeDetector(stub_pipeline, stub_sbi, extra, settings, reference=OPEN)
    face = d.score_faces(textured_scene(), one_face(), "basic")[0]
    assert face.weights == {"sbi": 3.0, "extra_model": 2.0}
    p = face.signals["extra_model"].suspicion
    assert p is not None and face.score == pytest.approx((3.0 * 0.1 + 2.0 * p) / 5.0, abs=1e-6)
    assert d.model_version == f"deepfake_ensemble@1.0+deepfake_sbi@9.9+extra_onnx@{extra.sha256[:8]}"
    assert len(d.model_version) <= 64


def test_from_settings_loads_the_user_model_and_refuses_a_broken_one(tmp_path: Path) -> None:
    stub_pipeline: Any = StubPipeline(one_face())
    path = _mean_model(tmp_path / "m.onnx")
    d = DeepfakeDetector.from_settings(stub_pipeline, DeepfakeSettings(extra_model_path=path))
    assert d.extra is not None and d.extra.size == 32
    assert DeepfakeDetector.from_settings(stub_pipeline, DeepfakeSettings()).extra is None
    with pytest.raises(errors.ModelUnavailableError):
        DeepfakeDetector.from_settings(
            stub_pipeline, DeepfakeSettings(extra_model_path=tmp_path / "none.onnx")
        )
