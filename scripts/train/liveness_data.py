"""Development data of the passive liveness model: labelled images, their groups and face boxes.

Groups (the unit of the subject-disjoint protocol; no subject appears in two groups):

* ``nuaa:<subject>`` — NUAA ``ClientRaw/<subject>`` (live) and ``ImposterRaw/<subject>`` (photo);
* ``nuaa:phone`` — ``ImposterRaw_phone_17phonespoof`` (screen), one group (its subjects are unknown);
* ``replay:<source>`` — antispoof_replay ``crops/real`` (live) / ``crops/fake`` (screen), the file
  name prefix before the first ``_`` (each source a handful of subjects, no subject shared);
* ``silentface`` — silent_face_antispoof_samples image_T1 (live), image_F1 (photo), image_F2 (screen).

Boxes come from the project's own detector through the composition root; when it finds no face
in an image that is already a face crop, the whole image is the box (counted as a fallback).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

CLASSES = ("live", "photo", "screen")
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})


@dataclass(frozen=True, slots=True)
class Sample:
    """One labelled development image (``path`` absolute; ``label`` an index into :data:`CLASSES`)."""

    path: str
    label: int
    group: str
    source: str  # the dataset folder, for the manifest's counts


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def list_samples(data: Path) -> list[Sample]:
    """Every development image under ``data`` (the shared data root), in a stable order."""
    out: list[Sample] = []
    nuaa = data / "nuaa_antispoof"
    for folder, label in (("ClientRaw", 0), ("ImposterRaw", 1)):
        for subject in sorted(p for p in (nuaa / folder).iterdir() if p.is_dir()):
            for path in _images(subject):
                out.append(Sample(str(path), label, f"nuaa:{subject.name}", f"nuaa_antispoof/{folder}"))
    phone = nuaa / "ImposterRaw_phone_17phonespoof"
    out += [
        Sample(str(p), 2, "nuaa:phone", "nuaa_antispoof/ImposterRaw_phone_17phonespoof")
        for p in _images(phone)
    ]
    replay = data / "antispoof_replay" / "crops"
    for folder, label in (("real", 0), ("fake", 2)):
        for path in _images(replay / folder):
            source = path.name.split("_", 1)[0]
            out.append(Sample(str(path), label, f"replay:{source}", f"antispoof_replay/crops/{folder}"))
    silent = data / "silent_face_antispoof_samples"
    for name, label in (("image_T1.jpg", 0), ("image_F1.jpg", 1), ("image_F2.jpg", 2)):
        if (silent / name).is_file():
            out.append(Sample(str(silent / name), label, "silentface", "silent_face_antispoof_samples"))
    return out


def load_rgb(path: str) -> np.ndarray:
    """(H, W, 3) uint8 RGB, upright: the service's own decoder, EXIF orientation applied, so that
    training sees the pixels the API sees (three Silent-Face samples carry an EXIF rotation)."""
    from facesocial.vision.image import decode_image

    with open(path, "rb") as handle:
        return decode_image(handle.read()).rgb


def detect_boxes(samples: list[Sample], cache: Path) -> dict[str, tuple[list[float], bool]]:
    """Path -> (largest face box x1, y1, x2, y2 px, whether the whole image was used instead).

    Cached as JSON in ``cache`` (keyed by path), so re-running the training skips the detector.
    """
    boxes: dict[str, tuple[list[float], bool]] = {}
    if cache.is_file():
        boxes = {k: (v[0], bool(v[1])) for k, v in json.loads(cache.read_text()).items()}
    todo = [s for s in samples if s.path not in boxes]
    if todo:
        from facesocial.container import Container
        from facesocial.settings import Settings

        container = Container(Settings())
        pipeline, options = container.pipeline, container.detect_defaults
        for i, sample in enumerate(todo):
            rgb = load_rgb(sample.path)
            faces = pipeline.detect(rgb, options)
            if len(faces):
                boxes[sample.path] = ([float(v) for v in faces.boxes[0]], False)
            else:
                h, w = rgb.shape[:2]
                boxes[sample.path] = ([0.0, 0.0, float(w), float(h)], True)
            if (i + 1) % 100 == 0:
                print(f"detected {i + 1}/{len(todo)}", flush=True)
                cache.write_text(json.dumps(boxes))
        cache.write_text(json.dumps(boxes))
    return boxes


def sample_dicts(samples: list[Sample]) -> list[dict[str, object]]:
    return [asdict(s) for s in samples]
