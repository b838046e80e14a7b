"""The deepfake ensemble: per-face signals, their weighted fusion, the image verdict.

Signals per face, by level (docs/deepfake.md):

| level | signals |
|---|---|
| basic | ``sbi`` (learned, :mod:`.sbi`), ``extra_model`` (if configured), ``freq_hf``, ``freq_slope`` |
| standard | basic + ``blend_colour``, ``blend_noise``, ``blend_boundary`` |
| advanced | standard + a finer heatmap and the inconsistency hot spots as areas (video: + blinks) |

Fused face score = weighted mean of the available suspicions (:data:`SIGNAL_WEIGHTS`). Why these
weights: SBI is the only signal trained on blending artefacts and the one published to transfer
across data sets (Shiohara & Yamasaki 2022), so it weighs as much as the hand-made signals together
at the standard level; the noise seam and noise mismatch are the hand-made signals with physical
grounds in every pasted face (1 each); colour and the two spectral statistics vary a lot on real
faces (lighting, make-up, compression), so each counts half. The user model weighs
``settings.deepfake.extra_model_weight``. No weight was fitted to any deepfake data.

The clearing check (:meth:`DeepfakeDetector.clears`): a face is called ``real`` only when a learned
classifier scored it AND at most ``MAX_CLEARING_MISS_RATE`` (10 %) of self-blended held-out real
faces (:mod:`.selfblend`) score in the real band at this level — measured by
``scripts/calibrate_deepfake_signals.py --parts selfblend`` for this ensemble and SBI version and
stored in the reference table. Otherwise such a face is ``uncertain`` (:mod:`.verdict`).

Image score = the highest face score (one swapped face makes a manipulated image). An image with no
face is not an error: the result has ``faces_analyzed`` 0, band ``uncertain``, confidence 0 and
``reason`` "no_face" — nothing can be said about face manipulation, and the content fingerprint
is still worth storing.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import numpy.typing as npt

from facesocial import errors
from facesocial.forensics import blending, frequency
from facesocial.forensics.calibration import ReferenceTable, packaged_reference
from facesocial.forensics.extra_model import ExtraModel, load_extra_model
from facesocial.forensics.face_region import FaceEllipse, ellipse_from_landmarks
from facesocial.forensics.heatmap import FaceInconsistency, HeatFace, heatmap_png
from facesocial.forensics.image_verdict import FaceScore, ImageVerdict, inconsistency_areas
from facesocial.forensics.sbi import SbiClassifier
from facesocial.forensics.signals import SignalValue, calibrated
from facesocial.forensics.verdict import LEVELS, Level, band_of, verdict_confidence, weighted_mean
from facesocial.models.manifest import ModelRef
from facesocial.settings import DeepfakeSettings
from facesocial.vision.faces import Faces
from facesocial.vision.pipeline import DetectOptions, FacePipeline

__all__ = ["DeepfakeDetector", "FaceScore", "ImageVerdict", "inconsistency_areas"]

log = logging.getLogger(__name__)

UInt8Array = npt.NDArray[np.uint8]
FloatArray = npt.NDArray[np.float32]

ENSEMBLE = ModelRef("deepfake_ensemble", "1.0")
SIGNAL_WEIGHTS: dict[str, float] = {
    "sbi": 3.0,
    "blend_boundary": 1.0,
    "blend_noise": 1.0,
    "blend_colour": 0.5,
    "freq_hf": 0.5,
    "freq_slope": 0.5,
}
EXTRA_SIGNAL = "extra_model"
# Signals that can vouch for a real face (verdict.py: clearing needs a learned classifier).
LEARNED_SIGNALS = ("sbi", EXTRA_SIGNAL)
# The clearing check: the real band is used only while at most this fraction of self-blended faces
# (selfblend.py; measured by scripts/calibrate_deepfake_signals.py) would fall in it.
MAX_CLEARING_MISS_RATE = 0.10
SELFBLEND_KEY = "selfblend_fused"
# What a strong signal indicates. These are indications, not a classification of the method.
SIGNAL_TYPE = {
    "sbi": "face_swap",
    "blend_boundary": "face_swap",
    "blend_noise": "face_swap",
    "blend_colour": "face_swap",
    "freq_hf": "gan_artifacts",
    "freq_slope": "gan_artifacts",
}
SIGNAL_REASON = {
    "sbi": "learned blending-artefact classifier (SBI)",
    "extra_model": "user-supplied classifier",
    "blend_boundary": "noise seam along the face boundary",
    "blend_noise": "noise level of the face differs from its surround",
    "blend_colour": "colour of the face differs from its surround",
    "freq_hf": "unusual high-frequency spectrum of the face",
    "freq_slope": "unusual spectral slope of the face",
}
# A signal this suspicious counts as "pointing at" a manipulation type or a reason.
STRONG_SUSPICION = 0.5
HEATMAP_SIDE = {"basic": 512, "standard": 512, "advanced": 1024}
# Faces under 64 px carry too few pixels for the pixel statistics (eye distance ≥ 20 px) and cost
# the detector most of its time (tiles for small faces: 0.77 s instead of 0.27 s on a 1080p frame).
DEFAULT_DETECT = DetectOptions(min_face_size=64, max_faces=20, detection_confidence=0.5)


def _check_rgb(rgb: UInt8Array) -> None:
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise errors.ValidationFailedError("The image must be an (H, W, 3) uint8 RGB array")


def _check_level(level: str) -> Level:
    if level not in LEVELS:
        raise errors.ValidationFailedError(
            f"detection level must be one of {', '.join(LEVELS)}, got {level!r}"
        )
    return level


class DeepfakeDetector:
    """Scores faces and images. Stateless between calls and thread-safe (ONNX sessions are).

    ``sbi`` and ``extra`` may be None (not installed / not configured); the ensemble then fuses
    what it has and its ``components`` say so. ``reference`` defaults to the packaged real-face
    calibration (:mod:`.calibration`).
    """

    def __init__(
        self,
        pipeline: FacePipeline,
        sbi: SbiClassifier | None,
        extra: ExtraModel | None,
        settings: DeepfakeSettings,
        *,
        reference: ReferenceTable | None = None,
        detect_options: DetectOptions = DEFAULT_DETECT,
    ) -> None:
        self.pipeline = pipeline
        self.sbi = sbi
        self.extra = extra
        self.settings = settings
        self.reference = reference if reference is not None else packaged_reference()
        self.detect_options = detect_options
        sbi_reference = self.reference.get("sbi")
        # The SBI table is valid only for the model version it was measured with.
        self.sbi_calibrated = (
            sbi is not None and sbi_reference is not None and sbi_reference.model == sbi.model.tag
        )
        if sbi is not None and not self.sbi_calibrated:
            log.warning(
                "no real-face calibration for %s: its probability is used as its suspicion", sbi.model.tag
            )

    @classmethod
    def from_settings(
        cls, pipeline: FacePipeline, settings: DeepfakeSettings, *, intra_op_threads: int = 2
    ) -> DeepfakeDetector:
        """The packaged SBI model (None if its weights are absent) and the configured user model.

        Raises ``MODEL_UNAVAILABLE`` when ``settings.extra_model_path`` names a file that is missing or
        breaks the contract (:mod:`.extra_model`), ``MODEL_CHECKSUM_MISMATCH`` when the SBI weights do
        not match their manifest.
        """
        sbi = SbiClassifier.default(intra_op_threads=intra_op_threads)
        if sbi is None:
            log.warning("the SBI deepfake classifier's weights are not installed: hand-made signals only")
        extra = load_extra_model(settings.extra_model_path, intra_op_threads=intra_op_threads)
        return cls(pipeline, sbi, extra, settings)

    def with_detect_options(self, options: DetectOptions) -> DeepfakeDetector:
        """The same detector finding faces with other options (evaluation of tight face crops)."""
        return DeepfakeDetector(
            self.pipeline,
            self.sbi,
            self.extra,
            self.settings,
            reference=self.reference,
            detect_options=options,
        )

    # --- the clearing check -------------------------------------------------------------------------

    @property
    def selfblend_tag(self) -> str | None:
        """The ensemble + SBI version a self-blend measurement must come from to apply here."""
        return None if self.sbi is None else f"{ENSEMBLE.tag}+{self.sbi.model.tag}"

    def clearing_miss_rate(self, level: Level) -> float | None:
        """Fraction of self-blended held-out faces whose fused score at ``level`` falls under
        ``real_below`` (the real band), or None when not measured for this ensemble and SBI."""
        reference = self.reference.get(f"{SELFBLEND_KEY}@{'basic' if level == 'basic' else 'standard'}")
        if reference is None or reference.model is None or reference.model != self.selfblend_tag:
            return None
        return reference.percentile(self.settings.real_below)

    def clears(self, level: Level) -> bool:
        """Whether the real band is open at ``level`` (module doc of :mod:`.verdict`; docs/deepfake.md)."""
        miss = self.clearing_miss_rate(level)
        return miss is not None and miss <= MAX_CLEARING_MISS_RATE

    # --- identity ---------------------------------------------------------------------------------

    @property
    def model_version(self) -> str:
        """``deepfake_ensemble@1.0[+deepfake_sbi@<v>][+extra_onnx@<sha256[:8]>]`` (≤ 64 chars)."""
        parts = [ENSEMBLE.tag]
        if self.sbi is not None:
            parts.append(self.sbi.model.tag)
        if self.extra is not None:
            parts.append(f"{self.extra.model.name}@{self.extra.sha256[:8]}")
        return "+".join(parts)[:64]

    def components(self, level: Level = "standard") -> list[dict[str, Any]]:
        """Every part of the ensemble with its version, weight and whether it ran at ``level``."""
        manifest = self.reference.manifest
        calibration = {
            "data": manifest.get("data_summary", manifest.get("data")),
            "count": manifest.get("count"),
            "commit": manifest.get("commit"),
        }
        out: list[dict[str, Any]] = [
            {
                "name": "deepfake_sbi",
                "version": self.sbi.model.version if self.sbi else None,
                "kind": "learned classifier (self-blended images)",
                "available": self.sbi is not None,
                "calibrated_on_real_faces": self.sbi_calibrated,
                "weight": SIGNAL_WEIGHTS["sbi"],
                "used": self.sbi is not None,
            },
            {
                "name": "frequency",
                "version": "1.0",
                "kind": "spectral statistics of the face",
                "available": True,
                "weight": SIGNAL_WEIGHTS["freq_hf"] + SIGNAL_WEIGHTS["freq_slope"],
                "used": True,
            },
            {
                "name": "blending",
                "version": "1.0",
                "kind": "colour/noise mismatch and boundary seam",
                "available": True,
                "weight": sum(SIGNAL_WEIGHTS[n] for n in blending.SIGNALS),
                "used": level != "basic",
            },
        ]
        if self.extra is not None:
            out.append(
                {
                    "name": self.extra.model.name,
                    "version": self.extra.sha256[:12],
                    "sha256": self.extra.sha256,
                    "kind": "user-supplied ONNX classifier",
                    "available": True,
                    "weight": self.settings.extra_model_weight,
                    "used": True,
                }
            )
        out.append({"name": "real_face_calibration", "version": manifest.get("version"), **calibration})
        miss = self.clearing_miss_rate(level)
        out.append(
            {
                "name": "clearing_check",
                "kind": "share of self-blended real faces the ensemble would call real",
                "miss_rate": None if miss is None else round(miss, 4),
                "max_miss_rate": MAX_CLEARING_MISS_RATE,
                "real_band_open": self.clears(level),
            }
        )
        return out

    # --- faces ------------------------------------------------------------------------------------

    def detect(self, rgb: UInt8Array) -> Faces:
        """Faces (with 5-point landmarks) the ensemble judges, largest first."""
        _check_rgb(rgb)
        return self.pipeline.detect(rgb, self.detect_options)

    def score_faces(self, rgb: UInt8Array, faces: Faces, level: Level = "standard") -> list[FaceScore]:
        """One :class:`FaceScore` per face of ``faces`` (same order). ``rgb``: (H, W, 3) uint8 RGB."""
        return [face for face, _ in self._score(rgb, faces, level)]

    def _score(self, rgb: UInt8Array, faces: Faces, level: Level) -> list[tuple[FaceScore, HeatFace]]:
        """Scores with what the heatmap needs (the ellipse and noise map stay out of :class:`FaceScore`)."""
        _check_rgb(rgb)
        level = _check_level(level)
        n = len(faces)
        if n == 0:
            return []
        boxes = np.asarray(faces.boxes, dtype=np.float32)
        sbi_scores = self.sbi.score(rgb, boxes) if self.sbi is not None else None
        extra_scores = self.extra.score(rgb, boxes) if self.extra is not None else None
        results = []
        for i in range(n):
            landmarks = None if faces.landmarks is None else faces.landmarks[i]
            ellipse = ellipse_from_landmarks(boxes[i], landmarks)
            signals: dict[str, SignalValue] = {}
            notes: list[str] = []
            if sbi_scores is not None:
                signals["sbi"] = self._sbi_signal(float(sbi_scores[i]))
            if extra_scores is not None:
                p = float(extra_scores[i])
                signals[EXTRA_SIGNAL] = SignalValue(EXTRA_SIGNAL, p, None, p, {"unit": "probability"})
            inconsistency = None
            if not ellipse.reliable:
                notes.append(
                    f"face too small for pixel statistics (eye distance {ellipse.eye_distance:.0f} px < 20)"
                )
            else:
                spectrum = frequency.spectrum_stats(rgb, ellipse)
                if spectrum is not None:
                    signals.update({s.name: s for s in frequency.frequency_signals(spectrum, self.reference)})
                if level != "basic":
                    stats = blending.blending_stats(rgb, ellipse)
                    signals.update({s.name: s for s in blending.blending_signals(stats, self.reference)})
                    patch = stats.patch
                    inconsistency = FaceInconsistency(
                        blending.inconsistency_map(stats), patch.x0, patch.y0, patch.scale
                    )
            face = self._fuse(boxes[i], float(faces.confidence[i]), ellipse, signals, notes, level)
            results.append((face, HeatFace(face.score, ellipse, inconsistency)))
        return results

    def _sbi_signal(self, probability: float) -> SignalValue:
        if self.sbi_calibrated:
            return calibrated("sbi", probability, self.reference, unit="probability")
        return SignalValue(
            "sbi", probability, None, probability, {"unit": "probability", "uncalibrated": True}
        )

    def why_not_cleared(self, level: Level, learned: bool) -> str:
        """The note of a face (or person) that scores in the real band but is not cleared."""
        if not learned:
            return "no learned classifier scored this face: the hand-made signals cannot clear it"
        miss = self.clearing_miss_rate(level)
        if miss is None:
            return "the ensemble's miss rate on self-blended faces was not measured for this SBI version"
        return (
            f"the ensemble lets {miss:.0%} of self-blended faces through at this level "
            f"(at most {MAX_CLEARING_MISS_RATE:.0%} allowed): it does not vouch for real faces"
        )

    def weight_of(self, name: str) -> float:
        if name == EXTRA_SIGNAL:
            return float(self.settings.extra_model_weight)
        return SIGNAL_WEIGHTS.get(name, 0.0)

    def _fuse(
        self,
        box: FloatArray,
        detector_confidence: float,
        ellipse: FaceEllipse,
        signals: dict[str, SignalValue],
        notes: list[str],
        level: Level,
    ) -> FaceScore:
        weights = {name: self.weight_of(name) for name in signals if signals[name].suspicion is not None}
        fused = weighted_mean((signals[n].suspicion or 0.0, w) for n, w in weights.items())
        if fused is None:
            notes = [*notes, "no signal could be measured: the face sits in the middle of the uncertain band"]
            fused = (self.settings.real_below + self.settings.fake_threshold) / 2.0
        # Clearing a face needs a learned classifier and a passed clearing check (verdict.py).
        learned = any(name in LEARNED_SIGNALS for name in weights)
        can_clear = learned and self.clears(level)
        if fused < self.settings.real_below and not can_clear:
            notes = [*notes, self.why_not_cleared(level, learned)]
        band = band_of(fused, self.settings, can_clear=can_clear)
        strong = sorted(
            (n for n in weights if (signals[n].suspicion or 0.0) >= STRONG_SUSPICION and weights[n] > 0),
            key=lambda n: -(signals[n].suspicion or 0.0) * weights[n],
        )
        types: list[str] = []
        if fused >= self.settings.real_below:  # suspicious enough to point at something
            types = sorted({SIGNAL_TYPE[n] for n in strong if n in SIGNAL_TYPE})
            if band == "fake" and not types:
                types = ["unspecified"]
        return FaceScore(
            box=np.asarray(box, np.float32),
            detector_confidence=detector_confidence,
            score=float(fused),
            band=band,
            confidence=verdict_confidence(fused, self.settings, can_clear=can_clear),
            signals=signals,
            weights=weights,
            manipulation_types=types,
            reasons=[SIGNAL_REASON.get(n, n) for n in strong],
            notes=notes,
            eye_distance_px=round(ellipse.eye_distance, 1),
        )

    # --- images -----------------------------------------------------------------------------------

    def analyze_image(self, rgb: UInt8Array, level: Level = "standard") -> ImageVerdict:
        """Detect faces, score each, fuse: the image's verdict (module doc).

        Raises ``errors.ValidationFailedError`` (422) for a malformed array or level;
        ``MODEL_UNAVAILABLE`` only if the detector itself is missing.
        """
        _check_rgb(rgb)
        level = _check_level(level)
        faces = self.detect(rgb)
        scored = self._score(rgb, faces, level)
        scores = [face for face, _ in scored]
        heat = [h for _, h in scored]
        thresholds = {"fake_threshold": self.settings.fake_threshold, "real_below": self.settings.real_below}
        if not scores:
            return ImageVerdict(
                is_deepfake=False,
                band="uncertain",
                confidence_score=0.0,
                manipulation_score=0.0,
                manipulation_types=[],
                inconsistency_areas=[],
                heatmap_png=heatmap_png(rgb.shape[0], rgb.shape[1], [], HEATMAP_SIDE[level]),
                faces=[],
                faces_analyzed=0,
                level=level,
                model_version=self.model_version,
                components=self.components(level),
                reason="no_face",
                thresholds=thresholds,
            )
        top = max(scores, key=lambda f: f.score)
        band = top.band
        types = sorted({t for f in scores for t in f.manipulation_types})
        return ImageVerdict(
            is_deepfake=band == "fake",
            band=band,
            confidence_score=top.confidence,
            manipulation_score=top.score,
            manipulation_types=types,
            inconsistency_areas=inconsistency_areas(
                scores, self.settings.real_below, heat if level == "advanced" else None
            ),
            heatmap_png=heatmap_png(rgb.shape[0], rgb.shape[1], heat, HEATMAP_SIDE[level]),
            faces=scores,
            faces_analyzed=len(scores),
            level=level,
            model_version=self.model_version,
            components=self.components(level),
            thresholds=thresholds,
        )
