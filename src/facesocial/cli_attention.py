"""``facesocial eval attention`` and ``facesocial bench attention`` (docs/attention.md, "Scoring")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from facesocial.evaluation.shared_data import shared_data_dir

DEFAULT_DATA = shared_data_dir()
DEFAULT_LFW = DEFAULT_DATA / "lfw_deepfunneled" / "lfw-deepfunneled"


def eval_attention(
    data: Annotated[Path, typer.Option(help="The evaluation data folder (../shared/data)")] = DEFAULT_DATA,
    people_step: Annotated[
        int, typer.Option(min=1, help="Pose check: the first LFW image of every n-th person")
    ] = 10,
) -> None:
    """Eye state (eye_state), blinks (blink video vs a hand count), pose consistency (LFW), as JSON."""
    from facesocial.evaluation.attention import run_attention_eval

    if not data.is_dir():
        raise typer.BadParameter(f"{data} is not a folder", param_hint="--data")
    typer.echo(json.dumps(run_attention_eval(data, people_step=people_step), indent=2))


def bench_attention(
    lfw: Annotated[Path, typer.Option(help="LFW folder the frames are composed from")] = DEFAULT_LFW,
    frames: Annotated[int, typer.Option(min=5, help="Frames timed per face count (1-4)")] = 60,
) -> None:
    """ms per 640x480 attention frame with 1-4 faces (p50/p95, stage by stage), as JSON."""
    from facesocial.evaluation.bench_attention import bench_attention as run

    if not lfw.is_dir():
        raise typer.BadParameter(f"{lfw} is not a folder", param_hint="--lfw")
    typer.echo(json.dumps(run(lfw, frames_per_count=frames), indent=2))
