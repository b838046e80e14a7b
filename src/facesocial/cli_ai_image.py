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
    composites: Annotated[
        bool,
        typer.Option(help="Also paste AI faces into the real photos and report how many are caught"),
    ] = False,
) -> None:
    """AUC per method and of the ensemble, accuracy at the default threshold, bands per folder (JSON).

    Images the shipped model was trained on (by sha256, from its manifest) are left out first,
    unless --include-trained; --limit then applies to what is left. --composites adds the
    synthetic-face-in-a-real-photo test. Docs: docs/ai-detection.md, docs/accuracy.md.
    """
    from facesocial.evaluation.ai_image import collect, evaluate, first_per_folder, without_trained

    settings = Settings()
    container = Container(settings)
    analyzer = container.ai_analyzer
    try:
        images = collect(real, ai)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    skipped = 0
    if not include_trained:
        images, skipped = without_trained(images, analyzer)
    images = first_per_folder(images, limit)
    report = evaluate(
        analyzer,
        images,
        ai_threshold=settings.ai_detection.ai_threshold,
        real_below=settings.ai_detection.real_below,
        equalised=equalised,
    )
    report["skipped_training_images"] = skipped
    if composites:
        from facesocial.evaluation.ai_image_composites import evaluate_composites
        from facesocial.forensics.ai_image.ensemble import MethodWeight
        from facesocial.forensics.ai_image.report import DEFAULT_WEIGHTS

        weights = {n: MethodWeight(w) for n, w in DEFAULT_WEIGHTS.items() if n in analyzer.available()}
        report["composites"] = evaluate_composites(
            analyzer,
            container.deepfake_detector,
            [x for x in images if not x.is_ai],
            [x for x in images if x.is_ai],
            weights,
            ai_threshold=settings.ai_detection.ai_threshold,
            real_below=settings.ai_detection.real_below,
        )
    typer.echo(json.dumps(report, indent=2, default=str))
