"""``facesocial eval tracking`` on a tiny synthetic MOTChallenge sequence (img1/ frames + gt.txt)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facesocial.evaluation.tracking import evaluate_sequence, parse_line, read_mot_tracks

FRAMES = 12


def write_sequence(folder: Path, *, ignore_second: bool = False) -> Path:
    """Two people 20 frames/s at 200×100 GT size: A walks right across the centre, B stands."""
    (folder / "gt").mkdir(parents=True)
    (folder / "img1").mkdir()
    (folder / "seqinfo.ini").write_text(
        "[Sequence]\nname=toy\nimDir=img1\nframeRate=20\nseqLength=12\nimWidth=200\nimHeight=100\nimExt=.png\n"
    )
    rows = []
    for frame in range(1, FRAMES + 1):
        rows.append(f"{frame},1,{40 + 10 * frame},20,20,60,1,-1,-1,-1")
        rows.append(f"{frame},2,20,30,20,60,{0 if ignore_second else 1},-1,-1,-1")
        # Frames at half the GT's size: the boxes must be scaled by 100 / 200.
        Image.fromarray(np.full((50, 100, 3), 128, np.uint8)).save(folder / "img1" / f"{frame:06d}.png")
    (folder / "gt" / "gt.txt").write_text("\n".join(rows) + "\n")
    return folder


def test_ground_truth_tracks_score_perfectly_and_count_the_crossing(tmp_path: Path) -> None:
    report = evaluate_sequence(write_sequence(tmp_path / "toy"), lines=[parse_line("mid:50,0,50,50")])
    assert report["frames"] == FRAMES and report["size"] == [100, 50] and report["gt_scale"] == 0.5
    tracking = report["tracking"]
    assert tracking["mota"] == 1.0 and tracking["idf1"] == 1.0 and tracking["num_switches"] == 0
    assert tracking["num_unique_objects"] == 2 and tracking["predicted_tracks"] == 2
    lines = {line["name"]: line for line in report["counting"]["lines"]}
    # A's feet go from x=30 to x=85 (scaled): across v_centre (x=50, bottom→top: in = rightwards)
    # and the user line (top→bottom: in = leftwards, so A goes out).
    assert lines["v_centre"]["true"] == lines["v_centre"]["predicted"] == {"in": 1, "out": 0}
    assert lines["mid"]["true"] == lines["mid"]["predicted"] == {"in": 0, "out": 1}
    assert report["counting"]["abs_error"] == 0


def test_sampling_keeps_every_other_frame(tmp_path: Path) -> None:
    report = evaluate_sequence(write_sequence(tmp_path / "toy"), sample_fps=10.0)
    assert report["frames"] == FRAMES // 2 and report["sample_fps"] == 10.0


def test_ignore_boxes_are_neither_hits_nor_misses(tmp_path: Path) -> None:
    folder = write_sequence(tmp_path / "toy", ignore_second=True)
    truth = read_mot_tracks(folder / "gt" / "gt.txt", 0.5)
    assert truth[1].ignore.tolist() == [False, True]
    report = evaluate_sequence(folder)  # B's boxes are tracked (they are fed), then dropped
    tracking = report["tracking"]
    assert tracking["num_false_positives"] == 0 and tracking["num_misses"] == 0
    assert tracking["num_unique_objects"] == 1


@pytest.mark.parametrize("text", ["mid", "mid:1,2,3", ":1,2,3,4", "mid:1,2,1,2", "mid:a,b,c,d"])
def test_bad_lines_are_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        parse_line(text)


def test_a_folder_without_video_or_frames_is_rejected(tmp_path: Path) -> None:
    folder = write_sequence(tmp_path / "toy")
    for frame in (folder / "img1").iterdir():
        frame.unlink()
    (folder / "img1").rmdir()
    with pytest.raises(ValueError, match="--video"):
        evaluate_sequence(folder)


def test_the_cli_prints_the_report(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from facesocial.cli import app

    folder = write_sequence(tmp_path / "toy")
    result = CliRunner().invoke(
        app, ["eval", "tracking", "--mot", str(folder), "--gt-detections", "--line", "mid:50,0,50,50"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["detections"] == "ground truth" and report["tracking"]["mota"] == 1.0
    assert [line["name"] for line in report["counting"]["lines"]] == ["v_centre", "h_centre", "mid"]
    command = ["eval", "tracking", "--mot", str(folder), "--gt-detections"]
    bad = CliRunner().invoke(app, [*command, "--line", "a"])
    assert bad.exit_code != 0 and "NAME:x1,y1,x2,y2" in bad.output
    missing = CliRunner().invoke(app, ["eval", "tracking", "--mot", str(tmp_path)])
    assert missing.exit_code != 0 and "gt/gt.txt" in missing.output
