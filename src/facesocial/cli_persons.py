"""``facesocial eval persons``: person detectors against MOT ground truth (docs/models.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from facesocial.evaluation.shared_data import shared_data_dir

DEFAULT_PEOPLE_WALKING = shared_data_dir() / "people_walking"


def eval_persons(
    data: Annotated[
        Path, typer.Option(help="The people_walking folder (../shared/data/people_walking)")
    ] = DEFAULT_PEOPLE_WALKING,
    detector: Annotated[
        list[str] | None, typer.Option(help="nanodet and/or centernet (repeat; default both)")
    ] = None,
    step: Annotated[int, typer.Option(min=1, help="Evaluate every n-th frame")] = 1,
    threshold: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Operating score threshold for precision/recall")
    ] = 0.3,
    nms_iou: Annotated[
        float | None, typer.Option(min=0.05, max=0.95, help="Override the detectors' NMS IoU")
    ] = None,
    letterbox: Annotated[
        bool | None, typer.Option("--letterbox/--stretch", help="Override how frames fit the input")
    ] = None,
    latency_frames: Annotated[
        int, typer.Option(min=0, help="Frames timed with the detectors taking turns (0: skip)")
    ] = 60,
) -> None:
    """AP50, precision/recall and ms per frame of the person detectors on PETS09-S2L1 and
    TUD-Campus (MOTChallenge boxes; conf=0 boxes ignored), as JSON."""
    from facesocial.evaluation.persons import people_walking_sequences, run_persons_eval
    from facesocial.settings import Settings
    from facesocial.vision.persons import PERSON_DETECTORS

    names = detector or list(PERSON_DETECTORS)
    unknown = [n for n in names if n not in PERSON_DETECTORS]
    if unknown:
        raise typer.BadParameter(
            f"unknown {unknown}; choose from {PERSON_DETECTORS}", param_hint="--detector"
        )
    if not people_walking_sequences(data):
        raise typer.BadParameter(f"{data} holds neither PETS09-S2L1 nor TUD-Campus", param_hint="--data")
    report = run_persons_eval(
        data,
        names,
        model_dir=Settings().models.model_dir,
        step=step,
        threshold=threshold,
        nms_iou=nms_iou,
        letterbox=letterbox,
        latency_frames=latency_frames,
    )
    typer.echo(json.dumps(report, indent=2))
