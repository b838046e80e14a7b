"""``facesocial deepfake FILE...`` and ``facesocial eval deepfake``: forensics without a server."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from facesocial import errors
from facesocial.container import Container
from facesocial.settings import Settings

_VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".3gp"})
Level = Literal["basic", "standard", "advanced"]


def deepfake(
    files: Annotated[list[Path], typer.Argument(help="Images or videos", exists=True, dir_okay=False)],
    level: Annotated[str, typer.Option(help="basic, standard or advanced")] = "standard",
    sample_fps: Annotated[float | None, typer.Option(help="Video frames analysed per second")] = None,
    frames: Annotated[bool, typer.Option(help="Include per-frame rows of videos")] = False,
) -> None:
    """Judge images and videos (verdict band, scores, model version); JSON on stdout.

    Videos show a progress bar on stderr. Exit status 1 when a file could not be analysed.
    """
    from facesocial.domains.deepfake import views
    from facesocial.forensics.video_analysis import analyze_video
    from facesocial.vision.image import decode_image

    if level not in ("basic", "standard", "advanced"):
        raise typer.BadParameter("basic, standard or advanced", param_hint="--level")
    chosen: Level = level  # type: ignore[assignment]
    settings = Settings()
    detector = Container(settings).deepfake_detector
    results: list[dict[str, Any]] = []
    failed = False
    for path in files:
        try:
            if path.suffix.lower() in _VIDEO_SUFFIXES:
                with typer.progressbar(length=1000, label=path.name, file=sys.stderr) as bar:
                    done = [0]

                    def report(
                        fraction: float, _eta: float | None, bar: Any = bar, done: list[int] = done
                    ) -> None:
                        step = int(fraction * 1000)
                        bar.update(max(0, step - done[0]))
                        done[0] = max(done[0], step)

                    verdict = analyze_video(
                        path, detector, settings.video, sample_fps, chosen, progress=report
                    )
                body = views.video_body(verdict)
                if frames:
                    body["frame_analyses"] = views.frame_rows(verdict)
            else:
                image = decode_image(path.read_bytes(), settings.limits)
                image_verdict = detector.analyze_image(image.rgb, chosen)
                body = views.image_body(image_verdict, None, image.metadata(), 0)
                body.pop("processing_time_ms", None)
            results.append({"file": str(path), **body})
        except errors.FaceSocialError as exc:
            results.append({"file": str(path), "error": exc.to_dict()})
            failed = True
    typer.echo(json.dumps(results, indent=2, default=str))
    if failed:
        sys.exit(1)


def eval_deepfake(
    videos: Annotated[
        Path | None,
        typer.Option(help="Folder of videos (searched recursively)", exists=True, file_okay=False),
    ] = None,
    labels: Annotated[
        Path | None,
        typer.Option(help="DFDC metadata.json (default: every metadata.json under --videos)", exists=True),
    ] = None,
    frames: Annotated[
        Path | None,
        typer.Option(help="Folder with real/ and fake/ face images", exists=True, file_okay=False),
    ] = None,
    sample_fps: Annotated[float | None, typer.Option(help="Video frames analysed per second")] = None,
    level: Annotated[str, typer.Option(help="basic, standard or advanced")] = "standard",
    frames_min_face_size: Annotated[
        int | None, typer.Option(help="Smallest face (px) in --frames images (default: the detector's 64)")
    ] = None,
) -> None:
    """Video- and frame-level AUC, accuracy at the default threshold, confusion per manipulation type."""
    from facesocial.evaluation.deepfake import evaluate_frames, evaluate_videos

    if videos is None and frames is None:
        raise typer.BadParameter("give --videos DIR and/or --frames DIR")
    if level not in ("basic", "standard", "advanced"):
        raise typer.BadParameter("basic, standard or advanced", param_hint="--level")
    chosen: Level = level  # type: ignore[assignment]
    settings = Settings()
    detector = Container(settings).deepfake_detector
    report: dict[str, Any] = {}
    if videos is not None:
        report["videos"] = evaluate_videos(detector, videos, labels, settings.video, sample_fps, chosen)
    if frames is not None:
        report["frames"] = evaluate_frames(detector, frames, chosen, frames_min_face_size)
    typer.echo(json.dumps(report, indent=2, default=str))
