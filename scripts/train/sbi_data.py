"""Real-face crop cache for SBI training: detect, 68 landmarks, :func:`face_crop`, save as .npz.

Every source image gives at most one face (the largest): its crop (S, S, 3) uint8 and its iBUG-68
landmarks mapped into crop pixels (68, 2). Groups (identity or source file) travel with each crop so
the train/validation split can be made by identity.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True, slots=True)
class Source:
    """One real-face image: its path, the data-set folder it came from and its identity group."""

    path: Path
    dataset: str
    group: str


def real_sources(data: Path) -> list[Source]:
    """Real faces under ``data`` (../shared/data): LFW, UTKFace, FFHQ real, face_recognition examples.

    Never deepfake_samples (the evaluation set). Group = identity (LFW person folder, face_recognition
    name prefix) or the file itself (UTKFace and FFHQ images have no identity label; one face each).
    """
    out: list[Source] = []
    lfw = data / "lfw_deepfunneled" / "lfw-deepfunneled"
    for person in sorted(p for p in lfw.iterdir() if p.is_dir()):
        out += [Source(f, "lfw_deepfunneled", f"lfw:{person.name}") for f in sorted(person.iterdir())]
    utk = data / "utkface_age_gender" / "images"
    out += [Source(f, "utkface_age_gender", f"utk:{f.name}") for f in sorted(utk.glob("*.jpg"))]
    ffhq = data / "ai_generated_images" / "faces_ffhq_vs_stylegan2" / "real"
    out += [
        Source(f, "ai_generated_images/faces_ffhq_vs_stylegan2/real", f"ffhq:{f.name}")
        for f in sorted(ffhq.iterdir())
    ]
    seen: set[str] = set()
    for f in sorted((data / "face_recognition_identities").rglob("*")):
        if f.suffix.lower() not in IMAGE_SUFFIXES or f.name == "32bit.png":
            continue
        digest = hashlib.md5(f.read_bytes()).hexdigest()  # the set holds byte-identical copies
        if digest in seen:
            continue
        seen.add(digest)
        name = (
            re.split(r"[-_\d.]", f.stem)[0]
            if f.parent.name in {"examples", "test_images", "test"}
            else f.parent.name
        )
        out.append(Source(f, "face_recognition_identities", f"frid:{name}"))
    return [s for s in out if s.path.suffix.lower() in IMAGE_SUFFIXES]


def is_validation(group: str, fraction: float = 0.15) -> bool:
    """A stable identity-level split: the group's hash decides (same answer on every run)."""
    h = int(hashlib.sha256(group.encode()).hexdigest()[:8], 16)
    return h / 0xFFFFFFFF < fraction


def load_rgb(path: Path) -> npt.NDArray[np.uint8]:
    with Image.open(path) as im:
        return np.ascontiguousarray(np.asarray(im.convert("RGB"), dtype=np.uint8))


_PIPE = None


def _pipeline():  # type: ignore[no-untyped-def]
    global _PIPE
    if _PIPE is None:
        from facesocial.settings import Settings

        settings = Settings()
        from facesocial.container import Container

        _PIPE = Container(settings).pipeline
    return _PIPE


def crop_one(path: Path, size: int) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float32]] | None:
    """(crop, landmarks68 in crop px) of the largest face, or None when no face is found."""
    from facesocial.forensics.sbi import crop_transform, face_crop
    from facesocial.vision.pipeline import DetectOptions

    pipe = _pipeline()
    rgb = load_rgb(path)
    faces = pipe.detect(rgb, DetectOptions(min_face_size=32, max_faces=5))
    if len(faces) == 0:
        return None
    faces = faces.sorted_by_area()[np.array([0])]
    points = pipe.landmarks68(rgb, faces)[0].astype(np.float64)
    m = crop_transform(faces.boxes[0], size)
    crop_points = points @ m[:, :2].T + m[:, 2]
    return face_crop(rgb, faces.boxes[0], size), crop_points.astype(np.float32)


def _work(
    args: tuple[list[Source], int],
) -> tuple[list[int], list[npt.NDArray[np.uint8]], list[npt.NDArray[np.float32]]]:
    sources, size = args
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    keep, crops, points = [], [], []
    for i, s in enumerate(sources):
        try:
            got = crop_one(s.path, size)
        except Exception as exc:  # an unreadable file must not stop a 10-minute job
            print(f"skip {s.path}: {exc}", flush=True)
            continue
        if got is not None:
            keep.append(i)
            crops.append(got[0])
            points.append(got[1])
    return keep, crops, points


def build_cache(sources: list[Source], size: int, out: Path, workers: int = 2) -> None:
    """Crop every source in ``workers`` processes and save crops/landmarks/groups/datasets to ``out``."""
    chunks = [sources[k::workers] for k in range(workers)]
    keep_all: list[Source] = []
    crops: list[npt.NDArray[np.uint8]] = []
    points: list[npt.NDArray[np.float32]] = []
    with ProcessPoolExecutor(workers) as pool:
        for chunk, (keep, c, p) in zip(chunks, pool.map(_work, [(c, size) for c in chunks]), strict=True):
            keep_all += [chunk[i] for i in keep]
            crops += c
            points += p
    np.savez(
        out,
        crops=np.stack(crops),
        landmarks=np.stack(points),
        groups=np.array([s.group for s in keep_all]),
        datasets=np.array([s.dataset for s in keep_all]),
        paths=np.array([str(s.path) for s in keep_all]),
        size=np.array(size),
    )


def dataset_counts(datasets: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for d in datasets:
        counts[d] = counts.get(d, 0) + 1
    return counts
