"""Measure the AI-image pixel methods on REAL photos and write their reference quantiles.

    .venv/bin/python scripts/calibrate_ai_image_methods.py [--data ../shared/data]
        [--out src/facesocial/forensics/reference/real_images.json] [--no-write]

Images: scripts/train/ai_image_data.py (read its docstring): the reference quantiles come from the
REAL images of its ``train`` split only; nothing generated enters the table. Then every statistic
and every method score is measured on the ``test`` split and the script prints the ROC AUC of
real-vs-AI per AI source (stylegan2, sd21) and for all AI images (facesocial.evaluation.metrics.roc_auc;
the AI image is the "genuine" side: AUC > 0.5 = AI images score higher), and StyleGAN2 against
the FFHQ photos of its own folder alone (same size and encoding: column ``sg2/ffhq``). Nothing is tuned to
files: directions are fixed in the method modules (three of them — noise_channel_corr,
spectrum_slope, and texture_smoothness/lbp made two-sided — were set after looking at the TRAIN
split's real-vs-AI AUC; their docstrings say so), and no file size, resolution, name or watermark
is read (the methods see decoded pixels only).

The data are research/evaluation-only sets (FFHQ, StyleGAN2, Stable Diffusion 2.1 faces, LFW,
UTKFace, NUAA, Replay-Attack crops, VOC scenes): the table holds quantiles of statistics, no image.
About 3 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts" / "train"))

from ai_image_data import Sample, samples  # noqa: E402

from facesocial.evaluation.metrics import roc_auc  # noqa: E402
from facesocial.forensics.ai_image import ela, noise, spectrum, texture  # noqa: E402
from facesocial.forensics.ai_image.reference import score_statistics  # noqa: E402
from facesocial.forensics.calibration import Direction, ReferenceTable, build_reference  # noqa: E402

Measure = Callable[[np.ndarray], dict[str, float]]
METHODS: dict[str, tuple[Measure, dict[str, Direction]]] = {
    "ela": (lambda rgb: ela.measure(rgb)[0], ela.STATISTICS),
    "noise": (lambda rgb: noise.measure(rgb)[0], noise.STATISTICS),
    "texture": (lambda rgb: texture.measure(rgb)[0], texture.STATISTICS),
    "frequency": (spectrum.measure, spectrum.STATISTICS),
}
AI_SOURCES = ("stylegan2", "sd21")


def load_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), np.uint8)


def measure_all(items: list[Sample]) -> list[dict[str, float]]:
    rows = []
    for i, sample in enumerate(items):
        rgb = load_rgb(sample.path)
        row: dict[str, float] = {}
        for measure, _ in METHODS.values():
            row.update(measure(rgb))
        rows.append(row)
        if (i + 1) % 200 == 0:
            print(f"  {i + 1}/{len(items)}", file=sys.stderr)
    return rows


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def auc_table(test: list[Sample], rows: list[dict[str, float]], table: ReferenceTable) -> list[str]:
    """Lines of the AUC table: per statistic (raw, in its suspicious direction) and per method score."""
    columns: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        for method, (_, stats) in METHODS.items():
            score, _ = score_statistics({k: row[k] for k in stats}, table)
            columns[f"{method} (score)"].append(np.nan if score is None else score)
            for name, direction in stats.items():
                raw = row[name]
                if direction == "two_sided":
                    ref = table.get(name)
                    raw = abs(raw - ref.median) if ref is not None else raw
                columns[f"  {name}"].append(raw)
    is_real = np.array([s.label == "real" for s in test])
    groups = {src: np.array([s.source == src for s in test]) for src in AI_SOURCES}
    groups["all_ai"] = ~is_real
    # The equal-size, equal-encoding pair: StyleGAN2 vs the FFHQ photos of the same folder.
    ffhq = np.array([s.source == "ffhq_real" for s in test])
    lines = [f"{'statistic / method':32s}" + "".join(f"{g:>10s}" for g in groups) + f"{'sg2/ffhq':>10s}"]
    for key, values in columns.items():
        v = np.asarray(values, np.float64)
        v = np.where(np.isfinite(v), v, np.nanmedian(v))
        cells = [roc_auc(v[mask], v[is_real]) for mask in groups.values()]
        cells.append(roc_auc(v[groups["stylegan2"]], v[ffhq]))
        lines.append(f"{key:32s}" + "".join(f"{c:10.3f}" for c in cells))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "src/facesocial/forensics/reference/real_images.json"
    )
    parser.add_argument("--no-write", action="store_true", help="print the AUC table only")
    args = parser.parse_args()

    everything = list(samples(args.data))
    if not everything:
        sys.exit(f"no images under {args.data}")
    train_real = [s for s in everything if s.split == "train" and s.label == "real"]
    test = [s for s in everything if s.split == "test"]
    start = time.perf_counter()
    print(f"measuring {len(train_real)} real train images", file=sys.stderr)
    train_rows = measure_all(train_real)
    signals: dict[str, Any] = {}
    for _, stats in METHODS.values():
        for name, direction in stats.items():
            signals[name] = build_reference(name, [row[name] for row in train_rows], direction)
    manifest = {
        "script": "scripts/calibrate_ai_image_methods.py",
        "commit": git_commit(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "split": "train split of scripts/train/ai_image_data.py, REAL images only",
        "counts": dict(sorted(Counter(s.source for s in train_real).items())),
        "licences": "research/evaluation-only data sets; the table holds statistics' quantiles, no image",
        "versions": {
            "ela": ela.VERSION,
            "noise": noise.VERSION,
            "texture": texture.VERSION,
            "frequency": spectrum.VERSION,
        },
    }
    document = {"manifest": manifest, "signals": signals}
    table = ReferenceTable.from_dict(document)
    if not args.no_write:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)

    print(f"measuring {len(test)} test images", file=sys.stderr)
    test_rows = measure_all(test)
    counts = Counter((s.source, s.label) for s in test)
    print("test split:", ", ".join(f"{src}={n}" for (src, _), n in sorted(counts.items())))
    print("ROC AUC, AI (per source) vs all real test images; two-sided statistics as |x - real median|")
    for line in auc_table(test, test_rows, table):
        print(line)
    print(f"({time.perf_counter() - start:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
