"""``facesocial eval tracking``: people tracking and line counting against MOTChallenge ground truth.

A sequence is a folder with ``gt/gt.txt`` (``frame, id, left, top, width, height, conf, ...``;
frame 1 = the first decoded frame) and ``seqinfo.ini``, plus its video (a video file in the folder,
or ``--video``) or its ``img1/`` frames. Ground-truth boxes are scaled by video width / seqinfo
``imWidth`` (PETS09-S2L1's GT is at 768×576; OpenCV's vtest.avi copy of it is 480×360).

The video is sampled at ``sample_fps`` (default: every frame; by decode position, see
:func:`sampled_video`) and run through :class:`~facesocial.analytics.people_counting.CountingEngine`
— with a person detector, or with ``gt_detections`` on the ground-truth boxes themselves (score 1),
which measures the tracker and counters alone. On the sampled frames only:

* **tracking**: ``motmetrics`` (py-motmetrics; Bernardin & Stiefelhagen 2008 for CLEAR MOT,
  Ristani et al. 2016 for IDF1) accumulates each frame's GT ids against the confirmed track ids
  with distance ``1 − IoU`` and a match at IoU ≥ 0.5 (the MOTChallenge rule). GT boxes with
  ``conf`` = 0 are MOT's "ignore" boxes: they are not objects to find, and a track box that
  overlaps one (IoU ≥ 0.5) more than any counted GT box is removed before the frame is scored
  (neither a false positive nor a hit). Reported: MOTA, IDF1, ID switches, MOTP (as
  ``1 − mean IoU`` of matches, motmetrics' convention: lower is better), false positives, misses,
  precision, recall, mostly tracked / lost, GT ids and predicted tracks.
* **counting**: virtual lines — ``v_centre`` (bottom to top through the frame centre: ``in`` =
  walking right) and ``h_centre`` (left to right through the centre: ``in`` = walking down), plus
  any ``lines`` given. The true crossings come from the GT tracks through the same
  :class:`~facesocial.analytics.counting.LineCounter` with the same time debounce but no band
  (annotated boxes do not jitter), fed every GT box
  (ignore boxes too: they are people) on the same sampled frames, each track ending after its last
  box. Reported per line: true and predicted in/out and the absolute error
  ``|Δin| + |Δout|``; overall the sum of absolute errors over the sum of true crossings; and the
  mean absolute error of the number of people in view per frame (confirmed tracks vs GT boxes,
  ignore boxes included: they are people, mostly occluded ones).
"""

from __future__ import annotations

import configparser
import dataclasses
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from facesocial.analytics.counting import CountingLine, Debounce, LineCounter
from facesocial.analytics.people_counting import (
    BoxDetector,
    CountingEngine,
    CountingOutcome,
    CountingSettings,
    FrameTracks,
    bottom_centre,
)
from facesocial.settings import VideoLimits
from facesocial.video.probe import open_container, probe_video
from facesocial.vision.geometry import iou_matrix

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm")
# MOTChallenge's match rule: IoU ≥ 0.5 (motmetrics' distance 1 − IoU ≤ 0.5).
MATCH_IOU = 0.5
TRACKING_METRICS = (
    "mota",
    "idf1",
    "num_switches",
    "motp",
    "num_false_positives",
    "num_misses",
    "precision",
    "recall",
    "mostly_tracked",
    "mostly_lost",
    "num_unique_objects",
)
COUNT_METRICS = frozenset(
    (
        "num_switches",
        "num_false_positives",
        "num_misses",
        "mostly_tracked",
        "mostly_lost",
        "num_unique_objects",
    )
)


@dataclass(frozen=True, slots=True)
class GtFrame:
    """One frame's ground truth: ``ids`` (N,) int64, ``boxes`` (N, 4) xyxy video pixels,
    ``ignore`` (N,) bool (``conf`` = 0)."""

    ids: npt.NDArray[np.int64]
    boxes: npt.NDArray[np.float64]
    ignore: npt.NDArray[np.bool_]


EMPTY_GT = GtFrame(np.zeros(0, np.int64), np.zeros((0, 4)), np.zeros(0, bool))


def read_seqinfo(mot_dir: Path) -> dict[str, str]:
    """The ``[Sequence]`` section of ``mot_dir/seqinfo.ini`` (keys lower-case). KeyError if absent."""
    parser = configparser.ConfigParser()
    parser.read(mot_dir / "seqinfo.ini")
    return dict(parser["Sequence"])


def read_mot_tracks(gt_file: Path, scale: float) -> dict[int, GtFrame]:
    """MOTChallenge ``gt.txt`` as 1-based frame number → :class:`GtFrame`, boxes × ``scale``.

    Rows with fewer than 7 fields are skipped; ``conf`` (7th field) 0 marks an ignore box.
    """
    rows: dict[int, list[tuple[int, float, float, float, float, bool]]] = {}
    for line in gt_file.read_text().splitlines():
        fields = line.split(",")
        if len(fields) < 7:
            continue
        frame, track = int(float(fields[0])), int(float(fields[1]))
        left, top, width, height = (float(v) * scale for v in fields[2:6])
        rows.setdefault(frame, []).append(
            (track, left, top, left + width, top + height, float(fields[6]) == 0.0)
        )
    return {
        frame: GtFrame(
            np.array([r[0] for r in items], dtype=np.int64),
            np.array([r[1:5] for r in items], dtype=np.float64).reshape(-1, 4),
            np.array([r[5] for r in items], dtype=bool),
        )
        for frame, items in rows.items()
    }


def find_video(mot_dir: Path) -> Path | None:
    """The first video file directly in ``mot_dir`` (by name), or None."""
    videos = sorted(p for p in mot_dir.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
    return videos[0] if videos else None


def centre_lines(width: int, height: int) -> list[CountingLine]:
    """The two virtual lines through the frame centre (module docstring)."""
    return [
        CountingLine("v_centre", (width / 2.0, float(height)), (width / 2.0, 0.0)),
        CountingLine("h_centre", (0.0, height / 2.0), (float(width), height / 2.0)),
    ]


def parse_line(text: str) -> CountingLine:
    """``NAME:x1,y1,x2,y2`` (video pixels) → a line. Raises ValueError on another shape."""
    name, _, coordinates = text.partition(":")
    values = [float(v) for v in coordinates.split(",")] if coordinates else []
    if not name or len(values) != 4:
        raise ValueError(f"expected NAME:x1,y1,x2,y2, got {text!r}")
    return CountingLine(name, (values[0], values[1]), (values[2], values[3]))


@dataclass(frozen=True, slots=True)
class Sampled:
    """One sampled frame: ``frame_number`` 1-based (the GT's numbering), ``timestamp_ms`` from the
    decode position at the stream's frame rate, ``rgb`` (H, W, 3) uint8."""

    frame_number: int
    timestamp_ms: int
    rgb: npt.NDArray[np.uint8]


def sampled_video(video: Path, sample_fps: float | None) -> tuple[Iterator[Sampled], float, int, int]:
    """Frames of ``video`` at ``sample_fps`` (None: all), the rate used, width and height.

    Frames are numbered and timed by their decode position at the probed frame rate, not by
    their presentation timestamps: OpenCV's vtest.avi (H.264 with B-frames in AVI, which has no
    presentation times) carries scrambled ones (1, 4, 3, 5, 2, … in frame periods), and
    :mod:`facesocial.video.frames` — which samples by timestamp — keeps 421 of its 795 frames.
    Both MOT sequences have a constant frame rate, and their GT numbers frames by decode position.
    """
    # The API's limits guard uploads; an evaluation reads a known file.
    info = probe_video(video, VideoLimits(max_sample_fps=1000.0, max_duration_seconds=86_400.0))
    rate = info.fps if sample_fps is None else min(sample_fps, info.fps)

    def frames() -> Iterator[Sampled]:
        last_slot = -1
        with open_container(video) as container:
            for index, frame in enumerate(container.decode(video=info.stream_index)):
                seconds = index / info.fps
                slot = math.floor(seconds * rate + 1e-6)
                if slot <= last_slot:
                    continue
                last_slot = slot
                rgb = frame.to_ndarray(format="rgb24", width=info.width, height=info.height).astype(
                    np.uint8, copy=False
                )
                yield Sampled(index + 1, round(seconds * 1000), rgb)

    return frames(), rate, info.width, info.height


def _sampled_images(
    folder: Path, fps: float, sample_fps: float | None
) -> tuple[Iterator[Sampled], float, int, int]:
    """``img1/*.jpg`` frames (numbered by sorted name, timed by seqinfo ``frameRate``)."""
    from PIL import Image

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not files:
        raise ValueError(f"{folder} holds no frames")
    with Image.open(files[0]) as first:
        width, height = first.size
    rate = fps if sample_fps is None else min(sample_fps, fps)

    def frames() -> Iterator[Sampled]:
        last_slot = -1
        for number, path in enumerate(files, start=1):
            seconds = (number - 1) / fps
            slot = math.floor(seconds * rate + 1e-6)
            if slot <= last_slot:
                continue
            last_slot = slot
            with Image.open(path) as image:
                rgb: npt.NDArray[np.uint8] = np.asarray(image.convert("RGB")).astype(np.uint8, copy=False)
            yield Sampled(number, round(seconds * 1000), rgb)

    return frames(), rate, width, height


def _score_frame(accumulator: Any, truth: GtFrame, frame: FrameTracks, number: int) -> None:
    """Add one frame to the motmetrics accumulator (ignore boxes handled as the docstring says)."""
    keep = frame.track_ids > 0
    boxes = frame.boxes[keep].astype(np.float64)
    ids = frame.track_ids[keep]
    counted = ~truth.ignore
    if truth.ignore.any() and len(boxes):
        to_ignored = iou_matrix(boxes, truth.boxes[truth.ignore]).max(axis=1)
        to_counted = (
            iou_matrix(boxes, truth.boxes[counted]).max(axis=1) if counted.any() else np.zeros(len(boxes))
        )
        drop = (to_ignored >= MATCH_IOU) & (to_ignored > to_counted)
        boxes, ids = boxes[~drop], ids[~drop]
    gt_boxes = truth.boxes[counted]
    distances = 1.0 - iou_matrix(gt_boxes, boxes)
    distances = np.where(distances <= 1.0 - MATCH_IOU, distances, np.nan)
    accumulator.update(truth.ids[counted].tolist(), ids.tolist(), distances, frameid=number)


def _true_crossings(
    truth: dict[int, GtFrame],
    sampled: Sequence[tuple[int, int]],
    lines: Sequence[CountingLine],
    debounce: Debounce,
) -> list[LineCounter]:
    """The GT tracks through one LineCounter per line on the sampled (frame number, ms) pairs."""
    # No band for the truth: annotated boxes do not jitter, and the band is there for detector
    # noise; a person whose GT track starts or ends inside it still crossed where they crossed.
    exact = dataclasses.replace(debounce, margin=0.0, relative_margin=0.0)
    counters = [LineCounter(line, exact) for line in lines]
    last_seen: dict[int, int] = {}
    for position, (number, _) in enumerate(sampled):
        for track in truth.get(number, EMPTY_GT).ids:
            last_seen[int(track)] = position
    for position, (number, timestamp_ms) in enumerate(sampled):
        frame = truth.get(number, EMPTY_GT)
        for track, box in zip(frame.ids, frame.boxes, strict=True):
            for counter in counters:
                counter.update(int(track), bottom_centre(box), timestamp_ms, number - 1, box[3] - box[1])
        for track, last in last_seen.items():
            if last == position:
                for counter in counters:
                    counter.end_track(track)
    return counters


def evaluate_sequence(
    mot_dir: Path,
    *,
    video: Path | None = None,
    sample_fps: float | None = None,
    detector: BoxDetector | None = None,
    settings: CountingSettings | None = None,
    lines: Sequence[CountingLine] = (),
    max_frames: int | None = None,
) -> dict[str, Any]:
    """Tracking and counting figures of one sequence (module docstring) as a JSON-able dict.

    ``detector`` (a person detector) or None to track the GT boxes themselves. ``max_frames``
    stops after that many sampled frames (quick runs). Raises ValueError when the folder holds
    no ground truth, video or frames.
    """
    import motmetrics  # type: ignore[import-untyped, unused-ignore]

    gt_file = mot_dir / "gt" / "gt.txt"
    if not gt_file.is_file():
        raise ValueError(f"{gt_file} does not exist")
    seqinfo = read_seqinfo(mot_dir)
    source = video if video is not None else find_video(mot_dir)
    if source is not None:
        frames, rate, width, height = sampled_video(source, sample_fps)
    elif (mot_dir / seqinfo.get("imdir", "img1")).is_dir():
        frames, rate, width, height = _sampled_images(
            mot_dir / seqinfo.get("imdir", "img1"), float(seqinfo["framerate"]), sample_fps
        )
    else:
        raise ValueError(f"{mot_dir} holds no video and no frames: pass --video")
    scale = width / float(seqinfo["imwidth"])
    truth = read_mot_tracks(gt_file, scale)
    settings = settings if settings is not None else CountingSettings()
    all_lines = [*centre_lines(width, height), *lines]
    engine = CountingEngine(detector, all_lines, (), settings)
    sampled: list[tuple[int, int]] = []
    started = time.perf_counter()
    for sample in frames:
        if max_frames is not None and len(sampled) >= max_frames:
            break
        sampled.append((sample.frame_number, sample.timestamp_ms))
        if detector is None:
            gt = truth.get(sample.frame_number, EMPTY_GT)
            engine.feed_detections(
                gt.boxes, np.ones(len(gt.boxes)), sample.timestamp_ms, sample.frame_number - 1
            )
        else:
            engine.feed(sample.rgb, sample.timestamp_ms, sample.frame_number - 1)
    outcome = engine.finish()
    wall_ms = (time.perf_counter() - started) * 1000.0

    accumulator = motmetrics.MOTAccumulator(auto_id=False)
    people_errors = []
    for frame in outcome.frames:
        number = frame.frame_index + 1
        gt = truth.get(number, EMPTY_GT)
        _score_frame(accumulator, gt, frame, number)
        people_errors.append(abs(int(np.count_nonzero(frame.track_ids)) - len(gt.ids)))
    host = motmetrics.metrics.create()
    table = host.compute(accumulator, metrics=list(TRACKING_METRICS), name="sequence")
    tracking: dict[str, float | int] = {
        name: int(table[name].iloc[0]) if name in COUNT_METRICS else round(float(table[name].iloc[0]), 4)
        for name in TRACKING_METRICS
    }
    tracking["predicted_tracks"] = len(outcome.tracks)
    return {
        "sequence": seqinfo.get("name", mot_dir.name),
        "source": str(source if source is not None else mot_dir / seqinfo.get("imdir", "img1")),
        "frames": len(sampled),
        "sample_fps": round(rate, 3),
        "size": [width, height],
        "gt_scale": round(scale, 4),
        "detections": "ground truth" if detector is None else detector.model.tag,
        "tracking": tracking,
        "counting": _counting(outcome, truth, sampled, all_lines, settings.line_debounce, people_errors),
        "ms_per_frame": {
            stage: round(total / max(1, len(sampled)), 2) for stage, total in outcome.stage_ms.items()
        }
        | {"total": round(wall_ms / max(1, len(sampled)), 2)},
    }


def _counting(
    outcome: CountingOutcome,
    truth: dict[int, GtFrame],
    sampled: Sequence[tuple[int, int]],
    lines: Sequence[CountingLine],
    debounce: Debounce,
    people_errors: Sequence[int],
) -> dict[str, Any]:
    true_counters = _true_crossings(truth, sampled, lines, debounce)
    per_line = []
    errors = true_total = 0
    for predicted, actual in zip(outcome.lines, true_counters, strict=True):
        error = abs(predicted.count_in - actual.count_in) + abs(predicted.count_out - actual.count_out)
        errors += error
        true_total += actual.count_in + actual.count_out
        per_line.append(
            {
                "name": predicted.name,
                "true": {"in": actual.count_in, "out": actual.count_out},
                "predicted": {"in": predicted.count_in, "out": predicted.count_out},
                "abs_error": error,
            }
        )
    return {
        "lines": per_line,
        "abs_error": errors,
        "true_crossings": true_total,
        "relative_error": round(errors / true_total, 4) if true_total else None,
        "people_in_view_mae": round(float(np.mean(people_errors)), 3) if people_errors else None,
    }
