"""``facesocial eval liveness``: ISO/IEC 30107-3 figures of the passive liveness model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from facesocial import errors
from facesocial.container import Container
from facesocial.settings import Settings


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f} %"


def _print_text(report: dict[str, Any]) -> None:
    source = report["threshold_source"]
    typer.echo(f"model {report['model']}  threshold P(live) >= {report['threshold']:.4f} ({source})")
    typer.echo(f"images {report['counts']}  mean P(live) {report['mean_p_live']}")
    no_face = report["no_face"]
    action = "scored on the whole image" if no_face["scored_on_whole_image"] else "left out"
    typer.echo(f"no face found: {no_face['count']} ({action}); unreadable: {len(report['failed'])}")
    metrics = report["metrics"]
    if metrics is None:
        typer.echo(report.get("note", "no metrics"))
        return
    typer.echo(
        "-- the shipped model as is: on images it was trained on (the development data) this is the "
        "training fit; --cross-validate gives the subject-disjoint figures"
    )
    _print_metrics(metrics)
    timing = report["timing_ms_per_image"]
    typer.echo(f"ms per image: detection {timing['detection']}, liveness {timing['liveness']}")


def _print_metrics(metrics: dict[str, Any]) -> None:
    point = metrics["at_threshold"]
    for kind, value in point["apcer"].items():
        typer.echo(f"APCER {kind:<10} {_percent(value)}  (n={point['n_attacks'][kind]})")
    typer.echo(f"APCER (max)      {_percent(point['apcer_max'])}")
    typer.echo(f"BPCER            {_percent(point['bpcer'])}  (n={point['n_bona_fide']})")
    typer.echo(f"ACER             {_percent(point['acer'])}")
    typer.echo(f"EER              {_percent(metrics['eer'])}  at P(live) {metrics['eer_threshold']:.4f}")
    typer.echo(f"BPCER@APCER 1 %  {_percent(metrics['bpcer_at_apcer_1pct'])}")
    typer.echo(f"BPCER@APCER 5 %  {_percent(metrics['bpcer_at_apcer_5pct'])}")


def _rates(point: dict[str, Any]) -> str:
    apcer = " ".join(f"{k} {_percent(v)}" for k, v in point["apcer"].items()) or "-"
    bpcer = "-" if point["bpcer"] is None else _percent(point["bpcer"])
    return f"APCER {apcer}; BPCER {bpcer}"


def _print_cross_validation(report: dict[str, Any]) -> None:
    typer.echo("")
    cv = report.get("cross_validation")
    if cv is None:
        typer.echo(f"cross-validation not possible: {report.get('cross_validation_error')}")
        return
    typer.echo(
        f"subject-disjoint cross-validation: leave-one-group-out, {cv['folds']} groups, "
        f"logistic regression C={cv['c']} ({cv['c_source']}), classes {cv['classes']}"
    )
    if cv["not_converged_folds"]:
        typer.echo(f"warning: the optimiser did not converge in {cv['not_converged_folds']} folds")
    typer.echo(
        f"out-of-fold mean P(live) {cv['mean_p_live']}  3-class accuracy {_percent(cv['class_accuracy'])}"
    )
    typer.echo(f"-- at P(live) >= {cv['default_threshold']:.4f} ({report['threshold_source']})")
    _print_metrics(cv["at_default_threshold"])
    typer.echo(
        f"-- at the protocol's own threshold P(live) >= {cv['protocol_threshold']:.4f} "
        f"({cv['protocol_threshold_rule']})"
    )
    _print_metrics(cv["at_protocol_threshold"])
    typer.echo("-- per held-out group (that threshold | the protocol's own)")
    for group, row in cv["per_group"].items():
        counts = ", ".join(f"{k} {n}" for k, n in row["counts"].items())
        typer.echo(
            f"{group:<42} {counts:<22} EER {_percent(row['eer']):>8}  "
            f"{_rates(row['at_default_threshold'])} | {_rates(row['at_protocol_threshold'])}"
        )


def eval_liveness(
    live: Annotated[
        list[Path] | None,
        typer.Option("--live", help="Folder (or one image) of live (bona fide) images; repeatable"),
    ] = None,
    attack: Annotated[
        list[str] | None,
        typer.Option("--attack", help="TYPE=DIR of attack images (photo, screen, ...); DIR may be one image"),
    ] = None,
    nuaa: Annotated[
        Path | None,
        typer.Option(
            help="NUAA folder: live=ClientRaw, photo=ImposterRaw, screen=ImposterRaw_phone_17phonespoof"
        ),
    ] = None,
    replay: Annotated[
        Path | None, typer.Option(help="Replay folder: live=crops/real, screen=crops/fake")
    ] = None,
    threshold: Annotated[
        float | None, typer.Option(help="P(live) threshold (default: the model manifest's)")
    ] = None,
    skip_no_face: Annotated[
        bool, typer.Option(help="Leave out images with no detected face (default: score the whole image)")
    ] = False,
    cross_validate: Annotated[
        bool,
        typer.Option(
            "--cross-validate",
            help="Also refit the recipe leave-one-group-out (subject-disjoint); report out-of-fold figures",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full report as JSON")] = False,
) -> None:
    """APCER per attack type, BPCER, ACER, EER, BPCER@APCER 1 %/5 % of the passive liveness model.

    The shipped model is fit on all development data, so on that data these figures show the
    training fit. ``--cross-validate`` refits the same recipe leave-one-group-out (groups: NUAA
    subject folder, antispoof_replay source prefix, any other flat folder as one group; see
    facesocial.evaluation.liveness_cv) and reports the pooled out-of-fold figures too.
    """
    from facesocial.antispoof.passive import PassiveLiveness
    from facesocial.evaluation.liveness import evaluate_liveness, folders_from_options

    try:
        folders = folders_from_options(live or [], attack or [], nuaa, replay)
    except errors.FaceSocialError as exc:
        raise typer.BadParameter(exc.message) from exc
    if not folders:
        raise typer.BadParameter("give --live/--attack folders, --nuaa DIR or --replay DIR")
    model = PassiveLiveness.default()
    if model is None:
        typer.echo("the passive liveness weights are not installed (facesocial/antispoof/weights)", err=True)
        raise typer.Exit(1)
    container = Container(Settings())
    report = evaluate_liveness(
        folders, container.pipeline, container.detect_defaults, model, threshold, skip_no_face, cross_validate
    )
    if as_json:
        typer.echo(json.dumps(report, indent=2, default=str))
    else:
        _print_text(report)
        if cross_validate:
            _print_cross_validation(report)
