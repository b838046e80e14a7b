"""Read LFW-format ``pairs.txt`` files (official View 2 layout, any number of folds)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Pair:
    fold: int
    first: Path
    second: Path
    same: bool


def image_path(root: Path, name: str, index: str) -> Path:
    return root / name / f"{name}_{int(index):04d}.jpg"


def read_pairs(pairs_file: Path, images: Path) -> list[Pair]:
    """Pairs with their fold. A header ``folds<TAB>n`` gives 2·n pairs per fold."""
    lines = [line.strip() for line in pairs_file.read_text().splitlines() if line.strip()]
    per_fold = 0
    header = lines[0].split()
    if len(header) == 2 and all(part.isdigit() for part in header):
        per_fold = 2 * int(header[1])
        lines = lines[1:]
    pairs = []
    for number, line in enumerate(lines):
        fields = line.split("\t") if "\t" in line else line.split()
        fold = number // per_fold if per_fold else 0
        if len(fields) == 3:
            pairs.append(
                Pair(
                    fold,
                    image_path(images, fields[0], fields[1]),
                    image_path(images, fields[0], fields[2]),
                    True,
                )
            )
        elif len(fields) == 4:
            pairs.append(
                Pair(
                    fold,
                    image_path(images, fields[0], fields[1]),
                    image_path(images, fields[2], fields[3]),
                    False,
                )
            )
        else:
            raise ValueError(f"{pairs_file}:{number + 2}: expected 3 or 4 fields, got {len(fields)}")
    return pairs
