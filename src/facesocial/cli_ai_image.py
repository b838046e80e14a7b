"""``facesocial eval ai-image``: SkyGate's accuracy on folders of real and AI-generated images."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from facesocial.container import Container
from facesocial.settings import Settings


def eval_ai_image(
    real: Annotated[list[Path], typer.Option("--real", help="Folder of real photos (repeatable)")],
    ai: Annotated[list[Path], typer.Option("--ai", help="Folder of AI-generated images (repeatable)")],
    limit: Annotated[int | None, typer.Option(help="At most this many images per folder", min=1)] = None,
    equalised: Annotated[
        bool, typer.Option(help="Also run on copies at one size and JPEG quality (both classes alike)")
    ] = True,
    include_trained: Annotated[
        bool, typer.Option(help="Keep images the shipped model was trained on (inflates its figures)")
    ] = False,
) -> None:
    """AUC per method and of the ensemble, accuracy at the default threshold, bands per folder (JSON).

    Images whose sha256 is in the shipped model's training list are left out unless
    ``--include-trained`` (their number is reported), so figures are on unseen images only.
    """
    from facesocial.evaluation.ai_image import collect, evaluate, without_trained

    settings = Settings()
    container = Container(settings)
    analyzer = container.ai_analyzer
    try:
        images = collect(real, ai, limit)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    skipped = 0
    if not include_trained:
        images, skipped = without_trained(images, analyzer)
    report = evaluate(
        analyzer,
        images,
        ai_threshold=settings.ai_detection.ai_threshold,
        real_below=settings.ai_detection.real_below,
        equalised=equalised,
    )
    report["skipped_training_images"] = skipped
    typer.echo(json.dumps(report, indent=2, default=str))
