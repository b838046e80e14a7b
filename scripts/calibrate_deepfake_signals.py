"""Measure the deepfake signals on REAL faces only and write their reference quantiles.

    .venv/bin/python scripts/calibrate_deepfake_signals.py [--data ../shared/data] [--max-per-set N]
        [--out src/facesocial/forensics/reference/real_faces.json] [--parts images,sbi,videos,selfblend]
        [--jpeg-check N]

About 15 minutes on 2 cores for everything; ``--parts sbi`` alone (after new SBI weights) about 2.

Images: every LFW deep-funneled image, every UTKFace chip and every FFHQ "real" image of
../shared/data (the largest face of each), plus every 10th frame of the two real face videos below.
Videos (identity drift and landmark jitter, per frame-interval bucket): the real clips
face_recognition_identities/examples/short_hamilton_clip.mp4 and face_liveness_blink_video/video.mp4.
Never anything from deepfake_samples (the evaluation set).

The SBI classifier's reference uses only the faces its trainer held out (scripts/train/sbi_data.py
``is_validation``): the faces it was trained on score lower than unseen real faces would.

The clearing check (``--parts selfblend``): every SBI-held-out face is self-blended
(forensics/selfblend.py) and scored by the ensemble at the basic and standard levels; the quantiles
of those fused scores say how many such fakes would fall in the real band.

``--jpeg-check N`` re-encodes N faces at JPEG quality 95/85/75/60 and prints how far each statistic
and suspicion moves (docs/deepfake.md quotes it); it writes nothing.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts" / "train"))

from facesocial.forensics import blending, frequency  # noqa: E402
from facesocial.forensics.calibration import ReferenceTable, build_reference  # noqa: E402
from facesocial.forensics.face_region import ellipse_from_landmarks  # noqa: E402
from facesocial.forensics.temporal import INTERVAL_BUCKETS_S, consecutive_cosine_distance, landmark_jitter  # noqa: E402
from facesocial.vision.pipeline import DetectOptions, FacePipeline  # noqa: E402

VIDEOS = (
    "face_recognition_identities/examples/short_hamilton_clip.mp4",
    "face_liveness_blink_video/video.mp4",
)
VIDEO_FRAME_STRIDE_FOR_IMAGES = 10
SELFBLEND_KEY = "selfblend_fused"
SELFBLEND_SEED = 20261201
DIRECTIONS = {
    "blend_colour": "upper",
    "blend_noise": "two_sided",
    "blend_boundary": "upper",
    "freq_hf": "two_sided",
    "freq_slope": "two_sided",
    "sbi": "upper",
}
DETECT = DetectOptions(min_face_size=32, max_faces=5, detection_confidence=0.5)


def build_pipeline() -> FacePipeline:
    from facesocial.container import Container
    from facesocial.settings import Settings

    return Container(Settings()).pipeline


def image_sources(data: Path, limit: int) -> list[tuple[str, Path, str]]:
    """(set name, path, SBI group) of every real-face image used."""
    out: list[tuple[str, Path, str]] = []
    lfw = sorted((data / "lfw_deepfunneled" / "lfw-deepfunneled").glob("*/*.jpg"))
    out += [("lfw_deepfunneled", p, f"lfw:{p.parent.name}") for p in lfw]
    utk = sorted((data / "utkface_age_gender" / "images").glob("*.jpg"))
    out += [("utkface_age_gender", p, f"utk:{p.name}") for p in utk]
    ffhq = sorted((data / "ai_generated_images" / "faces_ffhq_vs_stylegan2" / "real").iterdir())
    out += [("ffhq_real", p, f"ffhq:{p.name}") for p in ffhq]
    if limit:
        per_set: dict[str, int] = defaultdict(int)
        kept = []
        for item in out:
            if per_set[item[0]] < limit:
                per_set[item[0]] += 1
                kept.append(item)
        out = kept
    return out


def load_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.ascontiguousarray(np.asarray(im.convert("RGB"), dtype=np.uint8))


def face_statistics(rgb: np.ndarray, box: np.ndarray, landmarks: np.ndarray | None) -> dict[str, float]:
    ellipse = ellipse_from_landmarks(box, landmarks)
    if not ellipse.reliable:
        return {}
    stats: dict[str, float] = {}
    spectrum = frequency.spectrum_stats(rgb, ellipse)
    if spectrum is not None:
        stats["freq_hf"], stats["freq_slope"] = spectrum.hf_deviation, spectrum.slope
    blend = blending.blending_stats(rgb, ellipse)
    stats["blend_colour"], stats["blend_noise"], stats["blend_boundary"] = (
        blend.colour,
        blend.noise,
        blend.boundary,
    )
    return {k: v for k, v in stats.items() if np.isfinite(v)}


def largest_face(pipe: FacePipeline, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray | None] | None:
    faces = pipe.detect(rgb, DETECT)
    if len(faces) == 0:
        return None
    faces = faces.sorted_by_area()
    return faces.boxes[0], None if faces.landmarks is None else faces.landmarks[0]


def video_frames(path: Path) -> tuple[float, list[np.ndarray]]:
    import av

    frames = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or 25)
        for frame in container.decode(stream):
            frames.append(frame.to_ndarray(format="rgb24"))
    return fps, frames


def video_tracks(
    pipe: FacePipeline, frames: list[np.ndarray], fps: float, embedder: str
) -> list[dict[int, tuple[np.ndarray, np.ndarray]]]:
    """Per track: frame index -> (landmarks (5, 2), embedding), tracked as video analysis tracks
    (the same detection options, embedder and :class:`FaceTracker`), on every frame."""
    from facesocial.forensics.ensemble import DEFAULT_DETECT
    from facesocial.video.tracking import FaceTracker

    tracker = FaceTracker()
    tracks: dict[int, dict[int, tuple[np.ndarray, np.ndarray]]] = defaultdict(dict)
    for t, rgb in enumerate(frames):
        faces = pipe.detect(rgb, DEFAULT_DETECT)
        embeddings = None
        if len(faces):
            faces = pipe.embed(rgb, faces, model=embedder)
            embeddings = np.asarray(faces.columns["embedding"], np.float32)
        ids = tracker.update(faces.boxes, round(t * 1000 / fps), embeddings)
        for i, track_id in enumerate(ids):
            assert faces.landmarks is not None and embeddings is not None
            tracks[int(track_id)][t] = (faces.landmarks[i].copy(), embeddings[i])
    return list(tracks.values())


def temporal_samples(
    tracks: list[dict[int, tuple[np.ndarray, np.ndarray]]], fps: float
) -> dict[str, list[float]]:
    """Pair drifts and triplet jitters at every bucket interval, over every start offset."""
    out: dict[str, list[float]] = defaultdict(list)
    for bucket in INTERVAL_BUCKETS_S:
        stride = max(1, round(bucket * fps))
        for track in tracks:
            frames = sorted(track)
            present = set(frames)
            for t in frames:
                if t + stride in present:
                    out[f"identity_drift@{bucket:g}s"] += consecutive_cosine_distance(
                        [track[t][1], track[t + stride][1]]
                    ).tolist()
                if t + stride in present and t + 2 * stride in present:
                    out[f"landmark_jitter@{bucket:g}s"] += landmark_jitter(
                        [track[t][0], track[t + stride][0], track[t + 2 * stride][0]]
                    ).tolist()
    return out


def jpeg_check(pipe: FacePipeline, sources: list[tuple[str, Path, str]], count: int) -> None:
    from facesocial.forensics.calibration import packaged_reference
    from facesocial.forensics.signals import calibrated

    table = packaged_reference()
    rng = np.random.default_rng(0)
    picks = [sources[i] for i in rng.choice(len(sources), size=min(count, len(sources)), replace=False)]
    deltas: dict[tuple[int, str], list[tuple[float, float]]] = defaultdict(list)
    for _, path, _ in picks:
        rgb = load_rgb(path)
        found = largest_face(pipe, rgb)
        if found is None:
            continue
        base = face_statistics(rgb, *found)
        for quality in (95, 85, 75, 60):
            buffer = io.BytesIO()
            Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality)
            again = face_statistics(load_rgb(io.BytesIO(buffer.getvalue())), *found)  # type: ignore[arg-type]
            for name, value in base.items():
                if name in again:
                    before = calibrated(name, value, table).suspicion
                    after = calibrated(name, again[name], table).suspicion
                    ds = float("nan") if before is None or after is None else after - before
                    deltas[(quality, name)].append((again[name] - value, ds))
    print("JPEG re-encoding: median |Δ statistic|, median Δ suspicion, 90th pct |Δ suspicion|")
    for (quality, name), values in sorted(deltas.items()):
        arr = np.asarray(values)
        print(
            f"  q={quality:3d} {name:15s} |Δraw| {np.median(np.abs(arr[:, 0])):.4f}  "
            f"Δsusp {np.nanmedian(arr[:, 1]):+.3f}  p90|Δsusp| {np.nanpercentile(np.abs(arr[:, 1]), 90):.3f}"
        )


def selfblend_references(
    pipe: FacePipeline,
    sbi: Any,
    sources: list[tuple[str, Path, str]],
    is_validation: Callable[[str], bool],
    signals: dict[str, Any],
) -> dict[str, Any]:
    """Fused scores of self-blended SBI-held-out faces at the basic and standard levels (the clearing
    check of forensics/ensemble.py), scored with the reference measured so far."""
    from facesocial.forensics.ensemble import DeepfakeDetector
    from facesocial.forensics.selfblend import self_blend
    from facesocial.settings import DeepfakeSettings

    detector = DeepfakeDetector(
        pipe, sbi, None, DeepfakeSettings(), reference=ReferenceTable.from_dict({"signals": signals})
    )
    rng = np.random.default_rng(SELFBLEND_SEED)
    scores: dict[str, list[float]] = defaultdict(list)
    for _, path, group in sources:
        if not is_validation(group):
            continue
        rgb = load_rgb(path)
        faces = pipe.detect(rgb, DETECT)
        if len(faces) == 0:
            continue
        faces = faces.sorted_by_area()[np.array([0])]
        assert faces.landmarks is not None
        blended = self_blend(rgb, faces.boxes[0], faces.landmarks[0], rng)
        for level in ("basic", "standard"):
            scores[level].append(detector.score_faces(blended, faces, level)[0].score)
    tag = detector.selfblend_tag
    out = {
        f"{SELFBLEND_KEY}@{level}": build_reference(SELFBLEND_KEY, values, "upper", model=tag)
        for level, values in scores.items()
    }
    for key, entry in out.items():
        miss = ReferenceTable.from_dict({"signals": {key: entry}}).get(key)
        assert miss is not None
        print(
            f"{key}: {entry['count']} self-blends, share under 0.35: {miss.percentile(0.35):.3f}", flush=True
        )
    return out


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "src/facesocial/forensics/reference/real_faces.json"
    )
    parser.add_argument(
        "--max-per-set", type=int, default=0, help="at most this many images per data set (0: all)"
    )
    parser.add_argument("--jpeg-check", type=int, default=0, help="only measure JPEG robustness on N faces")
    parser.add_argument(
        "--parts",
        default="images,sbi,videos,selfblend",
        help="what to measure: images (blending and frequency statistics, incl. video frames), sbi "
        "(the SBI classifier on its held-out faces), videos (identity drift, landmark jitter), selfblend "
        "(the ensemble's fused score on self-blended held-out faces: the clearing check); "
        "entries of a part not measured are kept from --out",
    )
    args = parser.parse_args()

    pipe = build_pipeline()
    sources = image_sources(args.data, args.max_per_set)
    if args.jpeg_check:
        jpeg_check(pipe, sources, args.jpeg_check)
        return

    from facesocial.forensics.sbi import SbiClassifier

    sbi = SbiClassifier.default()
    is_validation: Callable[[str], bool] | None = None
    if sbi is not None:
        import sbi_data  # type: ignore[import-not-found]  # scripts/train: the SBI trainer's held-out split

        is_validation = sbi_data.is_validation

    parts = set(args.parts.split(","))
    want_sbi = "sbi" in parts and is_validation is not None
    previous: dict[str, Any] = {}
    if parts != {"images", "sbi", "videos", "selfblend"} and args.out.is_file():
        previous = json.loads(args.out.read_text(encoding="utf-8"))
    samples: dict[str, list[float]] = defaultdict(list)
    counts: dict[str, int] = defaultdict(int)
    sbi_counts: dict[str, int] = defaultdict(int)
    started = time.time()
    for n, (name, path, group) in enumerate(sources):
        held_out = want_sbi and is_validation is not None and is_validation(group)
        if "images" not in parts and not held_out:
            continue
        rgb = load_rgb(path)
        found = largest_face(pipe, rgb)
        if found is None:
            continue
        if "images" in parts:
            counts[name] += 1
            for key, value in face_statistics(rgb, *found).items():
                samples[key].append(value)
        if held_out and sbi is not None:
            samples["sbi"].append(float(sbi.score(rgb, found[0][None, :])[0]))
            sbi_counts[name] += 1
        if n % 500 == 0:
            print(f"{n}/{len(sources)} images ({time.time() - started:.0f} s)", flush=True)

    # The embedder of video analysis (forensics/video_analysis.py track_embedder).
    embedder = "faceres" if "faceres" in pipe.embedders else pipe.default_embedder
    video_counts: dict[str, Any] = {}
    for relative in VIDEOS:
        path = args.data / relative
        if not path.is_file():
            print(f"missing {path}: no temporal reference from it", flush=True)
            continue
        fps, frames = video_frames(path)
        for rgb in frames[::VIDEO_FRAME_STRIDE_FOR_IMAGES] if "images" in parts else []:
            found = largest_face(pipe, rgb)
            if found is not None:
                counts[f"video_frames:{relative}"] += 1
                for key, value in face_statistics(rgb, *found).items():
                    samples[key].append(value)
        if "videos" not in parts:
            continue
        tracks = video_tracks(pipe, frames, fps, embedder)
        for key, values in temporal_samples(tracks, fps).items():
            samples[key].extend(values)
        video_counts[relative] = {"frames": len(frames), "fps": round(fps, 3), "tracks": len(tracks)}
        print(
            f"{relative}: {len(frames)} frames, {len(tracks)} tracks ({time.time() - started:.0f} s)",
            flush=True,
        )

    signals: dict[str, Any] = {}
    for key, values in sorted(samples.items()):
        if key == "sbi":
            assert sbi is not None
            signals[key] = build_reference(key, values, "upper", model=sbi.model.tag)
        elif key.startswith("identity_drift@"):
            if len(values) >= 10:
                signals[key] = build_reference(key, values, "upper", model=embedder)
        elif key.startswith("landmark_jitter@"):
            if len(values) >= 10:
                signals[key] = build_reference(key, values, "upper")
        else:
            signals[key] = build_reference(key, values, DIRECTIONS[key])  # type: ignore[arg-type]
    temporal_prefixes = ("identity_drift@", "landmark_jitter@")
    for key, entry in previous.get("signals", {}).items():
        if key.startswith(SELFBLEND_KEY):
            continue  # handled with the selfblend part
        measured = "videos" if key.startswith(temporal_prefixes) else "sbi" if key == "sbi" else "images"
        if measured not in parts:
            signals[key] = entry
    if "selfblend" in parts and sbi is not None and is_validation is not None:
        signals.update(selfblend_references(pipe, sbi, sources, is_validation, signals))
    elif "selfblend" not in parts:
        signals.update({k: v for k, v in previous.get("signals", {}).items() if k.startswith(SELFBLEND_KEY)})
    old = previous.get("manifest", {}).get("data", {})
    if "images" not in parts:
        counts = defaultdict(int, old.get("images", {}))
    if not want_sbi:
        sbi_counts = defaultdict(int, old.get("sbi_held_out_faces", {}))
    if "videos" not in parts:
        video_counts = old.get("videos", {})
    manifest = {
        "version": datetime.now(UTC).strftime("%Y%m%d"),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "script": "scripts/calibrate_deepfake_signals.py",
        "commit": git_commit(),
        "data": {
            "images": dict(counts),
            "sbi_held_out_faces": dict(sbi_counts),
            "videos": video_counts,
            "root": "../shared/data (real faces only; deepfake_samples never read)",
        },
        "data_summary": "LFW, UTKFace, FFHQ real, 2 real face videos",
        "count": int(sum(counts.values())),
        "detector": type(pipe.detector).__name__,
        "embedder": embedder if "videos" in parts else previous.get("manifest", {}).get("embedder", embedder),
        # When (and at which commit) each part was last measured.
        "parts": {
            **previous.get("manifest", {}).get("parts", {}),
            **{
                part: {"created": datetime.now(UTC).isoformat(timespec="seconds"), "commit": git_commit()}
                for part in sorted(parts)
            },
        },
        "sbi": (sbi.model.tag if sbi is not None else None)
        if want_sbi
        else previous.get("manifest", {}).get("sbi"),
        "method": "per statistic, quantiles of its values on real faces; percentile = empirical CDF "
        "(two-sided: distance from the median); suspicion = -log10(1 - percentile) / 3",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"manifest": manifest, "signals": signals}, indent=1) + "\n", encoding="utf-8"
    )
    ReferenceTable.from_dict(json.loads(args.out.read_text(encoding="utf-8")))  # it loads
    for key, entry in signals.items():
        p1, p50, p99 = (entry["values"][entry["probs"].index(p)] for p in (0.01, 0.5, 0.99))
        print(f"{key:28s} n={entry['count']:5d}  p1 {p1:+.4f}  p50 {p50:+.4f}  p99 {p99:+.4f}")
    print(f"wrote {args.out} ({time.time() - started:.0f} s)")


if __name__ == "__main__":
    main()
