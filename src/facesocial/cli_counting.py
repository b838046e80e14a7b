"""``facesocial eval tracking`` and ``facesocial bench counting`` (docs/accuracy.md, "People tracking
and counting"; docs/benchmarks.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from facesocial.evaluation.shared_data import shared_data_dir

DEFAULT_VIDEO = shared_data_dir() / "people_walking" / "opencv_vtest" / "vtest.avi"

# vision.persons is imported only when a command runs: it loads ONNX (seconds), and this module
# is imported by every `facesocial` command.
DetectorOption = Annotated[
    str | None, typer.Option(help="Person detector: nanodet | centernet (default: the platform's default)")
]
SampleFpsOption = Annotated[
    float | None, typer.Option(min=0.1, help="Frames analysed per second of video (default: every frame)")
]


def _detector_name(name: str | None) -> str:
    from facesocial.vision.persons import DEFAULT_PERSON_DETECTOR, PERSON_DETECTORS

    if name is None:
        return DEFAULT_PERSON_DETECTOR
    if name not in PERSON_DETECTORS:
        raise typer.BadParameter(f"one of {', '.join(PERSON_DETECTORS)}", param_hint="--detector")
    return name


def eval_tracking(
    mot: Annotated[
        Path, typer.Option(help="MOTChallenge sequence folder: gt/gt.txt, seqinfo.ini (+ video or img1/)")
    ],
    video: Annotated[Path | None, typer.Option(help="The sequence's video when the folder has none")] = None,
    sample_fps: SampleFpsOption = None,
    detector: DetectorOption = None,
    gt_detections: Annotated[
        bool, typer.Option(help="Track the ground-truth boxes (the tracker and counters alone)")
    ] = False,
    line: Annotated[
        list[str] | None,
        typer.Option(help="An extra counting line NAME:x1,y1,x2,y2 in video pixels; repeatable"),
    ] = None,
    max_frames: Annotated[int | None, typer.Option(min=1, help="Stop after N sampled frames")] = None,
) -> None:
    """MOTA, IDF1, ID switches (motmetrics) and line-counting error against MOT ground truth, as JSON."""
    from facesocial.evaluation.tracking import evaluate_sequence, parse_line
    from facesocial.models.runtime import ModelCache
    from facesocial.settings import Settings
    from facesocial.vision.persons import load_person_detector

    if not (mot / "gt" / "gt.txt").is_file():
        raise typer.BadParameter(f"{mot} has no gt/gt.txt", param_hint="--mot")
    if video is not None and not video.is_file():
        raise typer.BadParameter(f"{video} is not a file", param_hint="--video")
    try:
        extra = [parse_line(text) for text in line or []]
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--line") from exc
    person_detector = (
        None
        if gt_detections
        else load_person_detector(ModelCache(Settings().models.model_dir), _detector_name(detector))
    )
    try:
        report = evaluate_sequence(
            mot,
            video=video,
            sample_fps=sample_fps,
            detector=person_detector,
            lines=extra,
            max_frames=max_frames,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--mot") from exc
    typer.echo(json.dumps(report, indent=2))


def bench_counting(
    video: Annotated[Path, typer.Option(help="The video (default: PETS09-S2L1, vtest.avi)")] = DEFAULT_VIDEO,
    detector: DetectorOption = None,
    sample_fps: SampleFpsOption = None,
    frames: Annotated[int, typer.Option(min=2, help="Frames decoded and timed")] = 200,
) -> None:
    """Frames/s of the person detector, the tracker and the whole counting engine; peak RSS, as JSON."""
    from facesocial.evaluation.bench_counting import run_bench_counting
    from facesocial.settings import Settings

    if not video.is_file():
        raise typer.BadParameter(f"{video} is not a file", param_hint="--video")
    report = run_bench_counting(
        video,
        model_dir=Settings().models.model_dir,
        detector_name=_detector_name(detector),
        sample_fps=sample_fps,
        frames=frames,
    )
    typer.echo(json.dumps(report, indent=2))
