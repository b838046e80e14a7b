"""``facesocial eval persons``: person detectors against MOTChallenge ground-truth boxes.

Each sequence is a video plus a MOTChallenge ``gt.txt`` (``frame, id, left, top, width, height,
conf, ...``, frame 1 = the first decoded frame) and ``seqinfo.ini``; the boxes are scaled by
video width / ``imWidth`` (PETS09-S2L1's GT is at 768×576, OpenCV's vtest.avi copy at 480×360).
GT boxes with ``conf`` = 0 are MOT's "ignore" boxes: a detection on one is neither a true nor a
false positive, and missing one is no miss.

Figures per sequence: AP at IoU 0.5 (VOC all-point interpolation over every detection scored
≥ ``SCORE_FLOOR``, greedy matching best score first), precision / recall / F1 at the operating
threshold, and the latency of ``detect`` per frame (ms, median and p90, after one warm-up
frame; pre-processing, model and decoding included).
"""

from __future__ import annotations

import configparser
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt

from facesocial.evaluation.detection import average_precision
from facesocial.vision.geometry import iou_matrix
from facesocial.vision.persons import PersonDetector

FloatArray = npt.NDArray[np.float32]
# Detections below this score are not scored at all: the AP curve's tail below it is flat.
SCORE_FLOOR = 0.05


@dataclass(frozen=True, slots=True)
class MotSequence:
    """One labelled sequence: ``video`` decoded in order, ``mot_dir`` with gt/gt.txt + seqinfo.ini."""

    name: str
    mot_dir: Path
    video: Path


@dataclass(frozen=True, slots=True)
class FrameTruth:
    """GT of one frame: ``boxes`` (K, 4) xyxy in video pixels, ``ignore`` (K,) bool (conf = 0)."""

    boxes: npt.NDArray[np.float64]
    ignore: npt.NDArray[np.bool_]


def people_walking_sequences(folder: Path) -> list[MotSequence]:
    """The two reported sequences of ../shared/data/people_walking that are present in ``folder``."""
    candidates = [
        MotSequence(
            "PETS09-S2L1", folder / "mot15_gt" / "PETS09-S2L1", folder / "opencv_vtest" / "vtest.avi"
        ),
        MotSequence(
            "TUD-Campus",
            folder / "mot15_gt" / "TUD-Campus",
            folder / "mot15_gt" / "TUD-Campus" / "TUD-Campus.mp4",
        ),
    ]
    return [s for s in candidates if (s.mot_dir / "gt" / "gt.txt").is_file() and s.video.is_file()]


def read_seqinfo(mot_dir: Path) -> dict[str, str]:
    """The ``[Sequence]`` section of ``seqinfo.ini`` (keys lower-cased by configparser)."""
    parser = configparser.ConfigParser()
    parser.read(mot_dir / "seqinfo.ini")
    return dict(parser["Sequence"])


def read_mot_gt(gt_file: Path, scale: float) -> dict[int, FrameTruth]:
    """GT boxes per 1-based frame number, scaled by ``scale`` (video width / seqinfo imWidth)."""
    rows: dict[int, list[tuple[float, float, float, float, bool]]] = {}
    for line in gt_file.read_text().splitlines():
        fields = line.split(",")
        if len(fields) < 7:
            continue
        frame = int(float(fields[0]))
        left, top, width, height = (float(v) * scale for v in fields[2:6])
        rows.setdefault(frame, []).append((left, top, left + width, top + height, float(fields[6]) == 0.0))
    return {
        frame: FrameTruth(
            np.array([r[:4] for r in items], dtype=np.float64).reshape(-1, 4),
            np.array([r[4] for r in items], dtype=bool),
        )
        for frame, items in rows.items()
    }


def iter_rgb_frames(video: Path, step: int = 1) -> Iterator[tuple[int, npt.NDArray[np.uint8]]]:
    """(1-based frame number, RGB frame) of every ``step``-th decoded frame, in decode order."""
    with av.open(str(video)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index % step == 0:
                yield index + 1, np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)


def match_frame(
    boxes: FloatArray, scores: FloatArray, truth: FrameTruth, iou: float = 0.5
) -> list[tuple[float, bool]]:
    """(score, true positive?) per detection that counts; detections on ignore boxes are left out.

    Greedy, best score first: a detection is a true positive when its best overlap among the
    still unmatched counted GT boxes is ≥ ``iou``; otherwise, if it overlaps an ignore box by
    ≥ ``iou``, it is dropped; otherwise it is a false positive.
    """
    order = np.argsort(-scores, kind="stable")
    counted = ~truth.ignore
    overlaps = iou_matrix(boxes[order], truth.boxes) if len(truth.boxes) else np.zeros((len(order), 0))
    matched = np.zeros(len(truth.boxes), dtype=bool)
    results: list[tuple[float, bool]] = []
    for row, index in enumerate(order):
        candidates = np.where(counted & ~matched, overlaps[row], -1.0)
        best = int(np.argmax(candidates)) if candidates.size else -1
        if best >= 0 and candidates[best] >= iou:
            matched[best] = True
            results.append((float(scores[index]), True))
        elif truth.ignore.any() and float(overlaps[row][truth.ignore].max()) >= iou:
            continue
        else:
            results.append((float(scores[index]), False))
    return results


def summarise(scored: list[tuple[float, bool]], positives: int, threshold: float) -> dict[str, float]:
    """AP over all ``scored`` detections, and precision/recall/F1 of those ≥ ``threshold``."""
    if not scored or positives == 0:
        return {
            "ap50": 0.0,
            "precision": 0.0,
            "recall": 0.0,
            "f1": 0.0,
            "best_f1": 0.0,
            "best_f1_threshold": 1.0,
        }
    ranked = sorted(scored, key=lambda item: -item[0])
    hits = np.array([tp for _, tp in ranked], dtype=np.float64)
    tp_cum = np.cumsum(hits)
    precision_curve = tp_cum / np.arange(1, len(hits) + 1)
    recall_curve = tp_cum / positives
    ap = average_precision(recall_curve, precision_curve)
    above = [tp for score, tp in ranked if score >= threshold]
    tp = float(sum(above))
    precision = tp / len(above) if above else 0.0
    recall = tp / positives
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    f1_curve = 2 * precision_curve * recall_curve / np.maximum(precision_curve + recall_curve, 1e-12)
    best = int(np.argmax(f1_curve))
    return {
        "ap50": round(ap, 4),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        # The score threshold that maximises F1 here (a tuning aid: the curve's best point).
        "best_f1": round(float(f1_curve[best]), 4),
        "best_f1_threshold": round(ranked[best][0], 3),
    }


def evaluate_sequence(
    detector: PersonDetector,
    sequence: MotSequence,
    *,
    step: int = 1,
    iou: float = 0.5,
    threshold: float = 0.3,
    max_frames: int | None = None,
) -> dict[str, Any]:
    """Accuracy and latency of ``detector`` on every ``step``-th frame of ``sequence`` (a JSON-able dict)."""
    seqinfo = read_seqinfo(sequence.mot_dir)
    with av.open(str(sequence.video)) as container:
        video_width = container.streams.video[0].codec_context.width
    scale = video_width / float(seqinfo["imwidth"])
    truth = read_mot_gt(sequence.mot_dir / "gt" / "gt.txt", scale)
    empty = FrameTruth(np.zeros((0, 4)), np.zeros((0,), dtype=bool))
    scored: list[tuple[float, bool]] = []
    positives = 0
    latencies: list[float] = []
    frames = 0
    warmed = False
    for number, rgb in iter_rgb_frames(sequence.video, step):
        if max_frames is not None and frames >= max_frames:
            break
        if not warmed:  # the first run allocates the runtime's buffers
            detector.detect(rgb, min_confidence=SCORE_FLOOR)
            warmed = True
        started = time.perf_counter()
        found = detector.detect(rgb, min_confidence=SCORE_FLOOR)
        latencies.append((time.perf_counter() - started) * 1000.0)
        frame_truth = truth.get(number, empty)
        positives += int((~frame_truth.ignore).sum())
        scored.extend(match_frame(found.boxes, found.scores, frame_truth, iou))
        frames += 1
    latencies.sort()
    return {
        "sequence": sequence.name,
        "video": str(sequence.video),
        "frames": frames,
        "step": step,
        "gt_scale": round(scale, 4),
        "gt_boxes": positives,
        "threshold": threshold,
        **summarise(scored, positives, threshold),
        "ms_per_frame_p50": round(statistics.median(latencies), 1) if latencies else None,
        "ms_per_frame_p90": round(latencies[int(0.9 * (len(latencies) - 1))], 1) if latencies else None,
    }


def interleaved_latency(
    detectors: dict[str, PersonDetector], video: Path, frames: int = 60, step: int = 13
) -> dict[str, dict[str, float]]:
    """ms per ``detect`` call of each detector on the same frames, the detectors taking turns
    frame by frame so that a load change on a shared machine affects them alike.

    Every ``step``-th frame of ``video``, at most ``frames`` frames; one warm-up call each.
    Returns ``{name: {"p50": ms, "p90": ms, "mean": ms}}``.
    """
    samples: dict[str, list[float]] = {name: [] for name in detectors}
    for count, (_, rgb) in enumerate(iter_rgb_frames(video, step)):
        if count >= frames:
            break
        for name, detector in detectors.items():
            if count == 0:
                detector.detect(rgb, min_confidence=0.3)
            started = time.perf_counter()
            detector.detect(rgb, min_confidence=0.3)
            samples[name].append((time.perf_counter() - started) * 1000.0)
    result = {}
    for name, values in samples.items():
        values.sort()
        if values:
            result[name] = {
                "p50": round(statistics.median(values), 1),
                "p90": round(values[int(0.9 * (len(values) - 1))], 1),
                "mean": round(statistics.fmean(values), 1),
            }
    return result


def run_persons_eval(
    folder: Path,
    detectors: list[str],
    *,
    model_dir: Path,
    step: int = 1,
    threshold: float = 0.3,
    nms_iou: float | None = None,
    letterbox: bool | None = None,
    max_frames: int | None = None,
    latency_frames: int = 60,
) -> dict[str, Any]:
    """``facesocial eval persons``: every named detector on every sequence present in ``folder``.

    ``nms_iou`` / ``letterbox`` override the detector's defaults (:data:`DEFAULT_OPTIONS`).
    ``latency_frames`` > 0 adds the detectors' latency measured taking turns on the first
    sequence's frames (:func:`interleaved_latency`), the fair comparison on a shared machine.
    """
    from facesocial.models.runtime import ModelCache
    from facesocial.vision.persons import DEFAULT_OPTIONS, PersonDetectorOptions, load_person_detector

    cache = ModelCache(model_dir)
    sequences = people_walking_sequences(folder)
    report: dict[str, Any] = {"data": str(folder), "iou": 0.5, "detectors": {}}
    loaded: dict[str, PersonDetector] = {}
    for name in detectors:
        default = DEFAULT_OPTIONS[name]
        options = PersonDetectorOptions(
            nms_iou=default.nms_iou if nms_iou is None else nms_iou,
            letterbox=default.letterbox if letterbox is None else letterbox,
        )
        detector = load_person_detector(cache, name, options=options)
        loaded[name] = detector
        report["detectors"][name] = {
            "model": detector.model.tag,
            "nms_iou": options.nms_iou,
            "letterbox": options.letterbox,
            "sequences": [
                evaluate_sequence(detector, s, step=step, threshold=threshold, max_frames=max_frames)
                for s in sequences
            ],
        }
    if sequences and latency_frames > 0:
        report["latency_interleaved"] = {
            "video": str(sequences[0].video),
            "frames": latency_frames,
            "ms_per_frame": interleaved_latency(loaded, sequences[0].video, latency_frames),
        }
    return report
