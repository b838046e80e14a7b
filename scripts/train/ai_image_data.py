"""The development images for the AI-image methods: which files, which label, which split.

Shared by ``scripts/train/ai_image_model.py`` (the learned method) and
``scripts/calibrate_ai_image_methods.py`` (the real-photo reference of the hand-made methods), so
both fit on the same ``train`` part and leave the same ``test`` part unseen.

Labels: ``ai`` = StyleGAN2 and Stable Diffusion 2.1 faces (``ai_generated_images``); ``real`` = the
FFHQ photos of the same folder plus real photos of the other folders (faces, scenes, webcam and
phone frames) and frames of the real videos (street and indoor scenes: :data:`VIDEOS`, 24 frames
each spread over the clip, written once as PNG under ``~/.cache/facesocial/ai_image_frames``), so
that "real" is not one camera, one crop or faces only. The split is by a hash of the file's
identity (LFW: the person; NUAA: the subject), 70 % train / 30 % test, never by size or name
pattern. Per source at most ``cap`` files are taken (sorted, then a hash order), so LFW's 5,373
images do not drown the 350 generated ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Label = Literal["real", "ai"]
Split = Literal["train", "test"]
TEST_FRACTION = 0.30
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


@dataclass(frozen=True, slots=True)
class Sample:
    path: Path
    label: Label
    source: str  # the folder it came from, e.g. "ai_generated_images/stylegan2"
    group: str  # what the split hashes (a person, a subject, or the file)

    @property
    def split(self) -> Split:
        digest = hashlib.sha256(f"{self.source}:{self.group}".encode()).digest()
        return "test" if digest[0] / 256.0 < TEST_FRACTION else "train"


@dataclass(frozen=True, slots=True)
class Source:
    name: str
    label: Label
    folder: str  # under ../shared/data
    pattern: str
    cap: int
    group: Callable[[Path], str]


def _file(path: Path) -> str:
    return path.name


def _parent(path: Path) -> str:
    return path.parent.name


def _nuaa_subject(path: Path) -> str:
    return path.parent.name  # ClientRaw/<subject>/...


SOURCES: tuple[Source, ...] = (
    Source("ffhq_real", "real", "ai_generated_images/faces_ffhq_vs_stylegan2/real", "*.jpg", 400, _file),
    Source("stylegan2", "ai", "ai_generated_images/faces_ffhq_vs_stylegan2/stylegan2", "*.jpg", 400, _file),
    Source("sd21", "ai", "ai_generated_images/faces_stable_diffusion_2_1/sd21", "*.jpg", 400, _file),
    Source("lfw", "real", "lfw_deepfunneled/lfw-deepfunneled", "*/*.jpg", 150, _parent),
    Source("utkface", "real", "utkface_age_gender/images", "*.jpg", 120, _file),
    Source("nuaa_live", "real", "nuaa_antispoof/ClientRaw", "*/*.jpg", 60, _nuaa_subject),
    Source("replay_real", "real", "antispoof_replay/crops/real", "*", 60, _file),
    Source("scenes_voc", "real", "dlib_faces_detection", "*.jpg", 40, _file),
    Source("identities", "real", "face_recognition_identities", "**/*", 40, _file),
)


# Real videos (label "real"; every frame of one video lands in the same split).
VIDEOS: tuple[tuple[str, str], ...] = (
    ("video_pets09", "people_walking/opencv_vtest/vtest.avi"),
    ("video_tud_campus", "people_walking/mot15_gt/TUD-Campus/TUD-Campus.mp4"),
    ("video_hamilton", "face_recognition_identities/examples/short_hamilton_clip.mp4"),
    ("video_selfie_blink", "face_liveness_blink_video/video.mp4"),
    ("video_dfdc_real", "deepfake_samples/icpr2020dfdc_notebook_samples/lynaeydofd.mp4"),
)
FRAMES_PER_VIDEO = 24
FRAME_CACHE = Path.home() / ".cache" / "facesocial" / "ai_image_frames"


def video_frames(data_root: Path, name: str, relative: str) -> list[Path]:
    """PNG files of FRAMES_PER_VIDEO frames spread over the video (made once, then reused)."""
    import av

    folder = FRAME_CACHE / name
    done = sorted(folder.glob("*.png"))
    if len(done) >= FRAMES_PER_VIDEO:
        return done[:FRAMES_PER_VIDEO]
    path = data_root / relative
    if not path.is_file():
        return []
    with av.open(str(path)) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    if not frames:
        return []
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    step = max(1, len(frames) // FRAMES_PER_VIDEO)
    written = []
    for i, index in enumerate(range(0, len(frames), step)):
        if i >= FRAMES_PER_VIDEO:
            break
        target = folder / f"{name}_{index:05d}.png"
        Image.fromarray(frames[index]).save(target)
        written.append(target)
    return written


def _hash_order(path: Path) -> bytes:
    return hashlib.sha256(str(path.name).encode()).digest()


def samples(data_root: Path, sources: tuple[Source, ...] = SOURCES) -> Iterator[Sample]:
    """Every selected image under ``data_root`` (``../shared/data``); missing folders are skipped."""
    for source in sources:
        folder = data_root / source.folder
        if not folder.is_dir():
            continue
        files = sorted(
            p for p in folder.glob(source.pattern) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        for path in sorted(files, key=_hash_order)[: source.cap]:
            yield Sample(path, source.label, source.name, source.group(path))
    for name, relative in VIDEOS:
        for path in video_frames(data_root, name, relative):
            yield Sample(path, "real", name, name)
