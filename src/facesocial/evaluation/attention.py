"""``facesocial eval attention``: what the attention scoring gets right on ../shared/data.

Three measurements (docs/attention.md reports them):

* **Eye state** on ``eye_state/{open,closed}`` (single-eye close-ups, no face around them, so the
  face mesh cannot run). The same eyelid geometry is measured with the MediaPipe iris model,
  which takes an eye crop alone: each crop is padded square, scaled to 64², run as is and
  mirrored (the model was trained on one side; the crops mix both eyes), and its 71 eye-contour
  points give the eye aspect ratio of the mesh's six eyelid points (:data:`IRIS_EAR`). Reported:
  (a) the shipped decision applied to that EAR (mesh ``openness(EAR) < closed_openness``),
  (b) the threshold-free ROC AUC, (c) 2-fold cross-validated accuracy of the best EAR threshold
  (chosen on one half, counted on the other) — what the geometry could do with its own threshold.
* **Blinks** on ``face_liveness_blink_video/video.mp4``: every frame through
  :class:`AttentionSession`; blinks counted against the hand count in :data:`BLINK_HAND_COUNT`.
* **Pose consistency** on LFW (the first image of every ``people_step``-th person): the mesh's
  yaw on the image and on its mirror image (the sign must flip), and against an independent pose
  from dlib's 68 landmarks with ``cv2.solvePnP`` on a generic 3-D face (:data:`PNP_MODEL`);
  ``head_pose_score`` of faces the reference calls frontal (|yaw| < 10°) vs turned (> 25°).
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

from facesocial.analytics.attention.scoring import score_face
from facesocial.analytics.attention.session import AttentionSession
from facesocial.container import Container
from facesocial.models.runtime import OnnxModel
from facesocial.settings import AttentionSettings, Settings
from facesocial.video.frames import iter_frames
from facesocial.video.probe import probe_video
from facesocial.vision.heads.mesh import EAR_CLOSED, EAR_OPEN, IRIS_SIZE
from facesocial.vision.pipeline import DetectOptions, FacePipeline

# Iris-model eye contour (MediaPipe iris_landmark): points 0-8 the lower lid from one corner (0)
# to the other (8), 9-15 the upper lid; they correspond to mesh 33, 7, 163, 144, 145, 153, 154,
# 155, 133 and 246, 161, 160, 159, 158, 157, 173. EAR order as mesh.RIGHT_EYE_EAR
# (33, 160, 158, 133, 153, 144): corner, upper, upper, corner, lower, lower.
IRIS_EAR = (0, 11, 13, 8, 5, 3)
# Hand count of face_liveness_blink_video/video.mp4 (334 frames, 23.9 fps), read frame by frame
# from eye-region contact sheets (0-based decoded frame indices): six blinks (eyes shut 2-3
# frames) at 10-12, 40-42, 82-84, 111-113, 221-222, 239-241, and two long closures that are not
# blinks, 138-193 (2.3 s) and 263-327 (2.7 s).
BLINK_HAND_COUNT = 6
LONG_CLOSURES_HAND_COUNT = 2
# Generic 3-D face for solvePnP (mm-like units; x right, y up, z toward the camera), the widely
# used set of S. Mallick, "Head Pose Estimation using OpenCV and Dlib" (LearnOpenCV, 2016), with
# the iBUG-68 points nose tip 30, chin 8, eye outer corners 36 and 45, mouth corners 48 and 54.
PNP_POINTS = (30, 8, 36, 45, 48, 54)
PNP_MODEL = np.array(
    [
        (0.0, 0.0, 0.0),
        (0.0, -330.0, -65.0),
        (-225.0, 170.0, -135.0),
        (225.0, 170.0, -135.0),
        (-150.0, -150.0, -125.0),
        (150.0, -150.0, -125.0),
    ]
)
# The same model with its depths x1.5: nose-tip depth / outer-eye-corner width 0.45 instead of
# 0.30, as the mesh's own points give on LFW (median 0.47); the yaw scale of a PnP estimate
# follows that assumed depth (docs/attention.md, "Pose consistency").
PNP_MODEL_DEEP = PNP_MODEL * np.array([1.0, 1.0, 1.5])
FRONTAL_MAX_DEG = 10.0
TURNED_MIN_DEG = 25.0
PNP_BINS = ((0, 10), (10, 25), (25, 40), (40, 90))


def iris_ear(points: npt.NDArray[np.float32]) -> float:
    """EAR of the iris model's eye contour (76, 3) in crop pixels (:data:`IRIS_EAR`)."""
    p = np.asarray(points, dtype=np.float64)[list(IRIS_EAR), :2]
    width = float(np.linalg.norm(p[0] - p[3]))
    if width <= 0:
        return 0.0
    return float((np.linalg.norm(p[1] - p[5]) + np.linalg.norm(p[2] - p[4])) / (2.0 * width))


def eye_crop_ears(iris: OnnxModel, paths: list[Path], batch: int = 64) -> npt.NDArray[np.float64]:
    """Mean EAR of each eye crop as is and mirrored (see the module docstring)."""
    ears: list[float] = []
    for start in range(0, len(paths), batch):
        images = np.stack([_square_64(p) for p in paths[start : start + batch]]).astype(np.float32) / 255.0
        both = np.concatenate([images, images[:, :, ::-1]])
        points = iris.run(both)["Identity"].reshape(len(both), -1, 3)
        values = np.array([iris_ear(p) for p in points]).reshape(2, -1)
        ears += values.mean(axis=0).tolist()
    return np.asarray(ears)


def eye_state_eval(iris: OnnxModel, folder: Path, settings: AttentionSettings) -> dict[str, Any]:
    """Eye state figures on ``folder``/{open,closed}/*.jpg (module docstring)."""
    classes = {name: sorted((folder / name).glob("*.jpg")) for name in ("open", "closed")}
    ears = {name: eye_crop_ears(iris, paths) for name, paths in classes.items()}
    # The shipped rule: openness = (EAR - EAR_CLOSED) / (EAR_OPEN - EAR_CLOSED) < closed_openness.
    ear_threshold = EAR_CLOSED + settings.closed_openness * (EAR_OPEN - EAR_CLOSED)
    shipped = {
        "open": float(np.mean(ears["open"] >= ear_threshold)),
        "closed": float(np.mean(ears["closed"] < ear_threshold)),
    }
    labels = np.concatenate([np.ones(len(ears["open"])), np.zeros(len(ears["closed"]))])
    values = np.concatenate([ears["open"], ears["closed"]])
    return {
        "folder": str(folder),
        "method": "iris-model eye contour EAR (crop padded square, 64 px, mean of as-is and mirrored)",
        "counts": {name: len(paths) for name, paths in classes.items()},
        "ear_quantiles": {
            name: dict(
                zip(("p5", "p50", "p95"), np.percentile(v, [5, 50, 95]).round(3).tolist(), strict=True)
            )
            for name, v in ears.items()
        },
        "shipped_rule": {
            "ear_threshold": round(ear_threshold, 4),
            "accuracy_open": round(shipped["open"], 4),
            "accuracy_closed": round(shipped["closed"], 4),
            "balanced_accuracy": round((shipped["open"] + shipped["closed"]) / 2, 4),
        },
        "roc_auc": round(_auc(values, labels), 4),
        "two_fold_cv": _two_fold(values, labels),
    }


def blink_eval(
    pipeline: FacePipeline, path: Path, settings: Settings, sample_fps: float | None = None
) -> dict[str, Any]:
    """Blinks counted on the frames of ``path`` (every frame, or ``sample_fps`` a second) against
    :data:`BLINK_HAND_COUNT`; frame numbers are of the sampled sequence."""
    info = probe_video(path, settings.video)
    session = AttentionSession(pipeline, settings.attention)
    closed_runs: list[tuple[int, int]] = []
    blink_frames: list[int] = []
    run_start: int | None = None
    frames = faceless = 0
    with iter_frames(path, info, sample_fps or max(info.fps, 1.0), 10_000) as reader:
        for index, frame in enumerate(reader):
            result = session.process(frame.rgb, int(frame.timestamp_ms))
            frames += 1
            if not result.faces:
                faceless += 1
                continue
            face = result.faces[0]
            if face.blink:
                blink_frames.append(index)
            if face.eyes_closed and run_start is None:
                run_start = index
            if not face.eyes_closed and run_start is not None:
                closed_runs.append((run_start, index - 1))
                run_start = None
    if run_start is not None:
        closed_runs.append((run_start, frames - 1))
    counted = len(blink_frames)
    return {
        "video": str(path),
        "sample_fps": sample_fps or "every frame",
        "frames": frames,
        "frames_without_face": faceless,
        "hand_count_blinks": BLINK_HAND_COUNT,
        "hand_count_long_closures": LONG_CLOSURES_HAND_COUNT,
        "counted_blinks": counted,
        "blink_ended_at_frames": blink_frames,
        "closed_runs_frames": [list(r) for r in closed_runs],
        "missed_blinks": max(0, BLINK_HAND_COUNT - counted),
    }


def pose_eval(
    pipeline: FacePipeline, lfw: Path, settings: AttentionSettings, people_step: int
) -> dict[str, Any]:
    """Pose consistency on LFW (module docstring); ``people_step``: every n-th person's first image."""
    people = sorted(p for p in lfw.iterdir() if p.is_dir())[::people_step]
    options = DetectOptions(min_face_size=40, max_faces=5)
    rows: list[dict[str, float]] = []
    for person in people:
        images = sorted(person.glob("*.jpg"))
        if not images:
            continue
        rgb = np.asarray(Image.open(images[0]).convert("RGB"))
        found = _central_face(pipeline, rgb, options)
        flipped = _central_face(pipeline, np.ascontiguousarray(rgb[:, ::-1]), options)
        if found is None or flipped is None:
            continue
        mesh, faces = found
        reference = _pnp_yaw(pipeline, rgb, faces)
        deep = _pnp_yaw(pipeline, rgb, faces, PNP_MODEL_DEEP)
        scores = score_face(mesh, settings)
        rows.append(
            {
                "yaw": mesh.yaw,
                "yaw_flipped": flipped[0].yaw,
                "pitch": mesh.pitch,
                "yaw_pnp": reference,
                "yaw_pnp_deep": deep,
                "head_pose_score": scores.head_pose_score,
                "attention_score": scores.attention_score,
                "gaze_h": mesh.gaze.horizontal,
                "gaze_v": mesh.gaze.vertical,
                "gaze_score": scores.gaze_score,
                "looking_away": float(scores.is_looking_away),
            }
        )
    yaw = np.array([r["yaw"] for r in rows])
    yaw_f = np.array([r["yaw_flipped"] for r in rows])
    pnp = np.array([r["yaw_pnp"] for r in rows])
    head = np.array([r["head_pose_score"] for r in rows])
    turned_mask = np.abs(yaw) > 5.0
    pnp_deep = np.array([r["yaw_pnp_deep"] for r in rows])
    finite, finite_deep = np.isfinite(pnp), np.isfinite(pnp_deep)
    if len(rows) < 3 or finite.sum() < 3 or finite_deep.sum() < 3:
        return {"folder": str(lfw), "images": len(rows), "error": "too few faces"}
    frontal_ref, turned_ref = np.abs(pnp) < FRONTAL_MAX_DEG, np.abs(pnp) > TURNED_MIN_DEG
    return {
        "folder": str(lfw),
        "images": len(rows),
        "people_step": people_step,
        "mirror": {
            "median_abs_yaw_plus_flipped_yaw_deg": round(float(np.median(np.abs(yaw + yaw_f))), 2),
            "sign_flips_where_abs_yaw_gt_5": round(
                float(np.mean(np.sign(yaw_f[turned_mask]) == -np.sign(yaw[turned_mask]))), 4
            )
            if turned_mask.any()
            else None,
            "faces_abs_yaw_gt_5": int(turned_mask.sum()),
        },
        "vs_pnp": {
            "pearson_yaw": round(float(np.corrcoef(yaw[finite], pnp[finite])[0, 1]), 4),
            "spearman_yaw": round(_spearman(yaw, pnp), 4),
            "median_abs_difference_deg": round(float(np.median(np.abs(yaw - pnp)[finite])), 2),
            "median_abs_yaw_mesh_pnp_pnp_deep": [
                round(float(np.median(np.abs(v[np.isfinite(v)]))), 1) for v in (yaw, pnp, pnp_deep)
            ],
            "slope_pnp_on_mesh": round(float(np.polyfit(yaw[finite], pnp[finite], 1)[0]), 3),
            "slope_pnp_deep_on_mesh": round(
                float(np.polyfit(yaw[finite_deep], pnp_deep[finite_deep], 1)[0]), 3
            ),
            "spearman_yaw_deep": round(_spearman(yaw, pnp_deep), 4),
        },
        "pitch_quantiles_deg": dict(
            zip(
                ("p5", "p50", "p95"),
                np.percentile([r["pitch"] for r in rows], [5, 50, 95]).round(1).tolist(),
                strict=True,
            )
        ),
        "abs_yaw_quantiles_deg": dict(
            zip(
                ("p50", "p90", "p99"), np.percentile(np.abs(yaw), [50, 90, 99]).round(1).tolist(), strict=True
            )
        ),
        "gaze_abs_quantiles": {
            name: dict(
                zip(
                    ("p50", "p90", "p95"),
                    np.percentile(np.abs([r[name] for r in rows]), [50, 90, 95]).round(3).tolist(),
                    strict=True,
                )
            )
            for name in ("gaze_h", "gaze_v")
        },
        "gaze_score": _summary(np.array([r["gaze_score"] for r in rows])),
        "attention_score": _summary(np.array([r["attention_score"] for r in rows])),
        "looking_away_rate": round(float(np.mean([r["looking_away"] for r in rows])), 4),
        "head_pose_score": {
            "frontal_by_pnp": _summary(head[frontal_ref]),
            "turned_by_pnp": _summary(head[turned_ref]),
            "by_pnp_abs_yaw": {
                f"{low}-{high}": _summary(head[(np.abs(pnp) >= low) & (np.abs(pnp) < high)])
                for low, high in PNP_BINS
            },
            "all": _summary(head),
        },
        "mesh_abs_yaw_by_pnp_abs_yaw": {
            f"{low}-{high}": _summary(np.abs(yaw)[(np.abs(pnp) >= low) & (np.abs(pnp) < high)])
            for low, high in PNP_BINS
        },
    }


def run_attention_eval(data_root: Path, people_step: int = 10) -> dict[str, Any]:
    """All three measurements on ``data_root`` (../shared/data); a missing folder is reported, not fatal."""
    settings = Settings()
    container = Container(settings)
    report: dict[str, Any] = {"settings": settings.attention.model_dump()}
    eye_folder = data_root / "eye_state"
    report["eye_state"] = (
        eye_state_eval(container.model_cache.get("iris"), eye_folder, settings.attention)
        if eye_folder.is_dir()
        else f"missing: {eye_folder}"
    )
    video = data_root / "face_liveness_blink_video" / "video.mp4"
    report["blinks"] = (
        [blink_eval(container.frame_pipeline, video, settings, fps) for fps in (None, 10.0, 5.0)]
        if video.is_file()
        else f"missing: {video}"
    )
    lfw = data_root / "lfw_deepfunneled" / "lfw-deepfunneled"
    report["pose"] = (
        pose_eval(container.pipeline, lfw, settings.attention, people_step)
        if lfw.is_dir()
        else f"missing: {lfw}"
    )
    return report


# --- helpers ---------------------------------------------------------------------------------------


def _square_64(path: Path) -> npt.NDArray[np.uint8]:
    image = Image.open(path).convert("RGB")
    side = max(image.size)
    square = Image.new("RGB", (side, side))
    square.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
    return np.asarray(square.resize((IRIS_SIZE, IRIS_SIZE), Image.Resampling.BILINEAR))


def _central_face(pipeline: FacePipeline, rgb: npt.NDArray[np.uint8], options: DetectOptions) -> Any:
    """(MeshResult, Faces of one) of the face nearest the image centre (LFW centres its subject)."""
    faces = pipeline.detect(rgb, options)
    if len(faces) == 0:
        return None
    centres = (faces.boxes[:, :2] + faces.boxes[:, 2:]) / 2.0
    target = np.array([rgb.shape[1] / 2.0, rgb.shape[0] / 2.0])
    best = faces[[int(np.argmin(np.linalg.norm(centres - target, axis=1)))]]
    mesh = pipeline.analyze_mesh(rgb, best)[0]
    return (mesh, best) if mesh.is_face else None


def _pnp_yaw(
    pipeline: FacePipeline, rgb: npt.NDArray[np.uint8], faces: Any, model: npt.NDArray[np.float64] = PNP_MODEL
) -> float:
    """Yaw (degrees, the mesh's sign: > 0 = the subject turned to their left) from dlib-68 +
    solvePnP on the 3-D ``model`` (:data:`PNP_POINTS` order); NaN when solvePnP fails."""
    points = pipeline.landmarks68(rgb, faces)[0][list(PNP_POINTS)].astype(np.float64)
    h, w = rgb.shape[:2]
    camera = np.array([[w, 0, w / 2.0], [0, w, h / 2.0], [0, 0, 1]], dtype=np.float64)
    ok, rvec, _ = cv2.solvePnP(model, points, camera, np.zeros(4), flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        return float("nan")
    rotation, _ = cv2.Rodrigues(rvec)
    # The model's +z (out of the face) in camera coordinates (x right, y down, z forward).
    normal = rotation @ np.array([0.0, 0.0, 1.0])
    # Toward the camera the normal has z < 0; a nose moving to the image right has x > 0.
    return float(np.degrees(np.arctan2(normal[0], -normal[2])))


def _auc(values: npt.NDArray[np.float64], labels: npt.NDArray[np.float64]) -> float:
    """P(a random positive scores above a random negative), ties half (Mann-Whitney)."""
    pos, neg = values[labels == 1], values[labels == 0]
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def _best_threshold(values: npt.NDArray[np.float64], labels: npt.NDArray[np.float64]) -> float:
    candidates = np.unique(values)
    accuracy = [((values >= t) == (labels == 1)).mean() for t in candidates]
    return float(candidates[int(np.argmax(accuracy))])


def _two_fold(values: npt.NDArray[np.float64], labels: npt.NDArray[np.float64]) -> dict[str, Any]:
    """Threshold chosen on one half (fixed-seed split), accuracy on the other, both ways."""
    order = np.random.default_rng(0).permutation(len(values))
    halves = (order[: len(order) // 2], order[len(order) // 2 :])
    results = []
    for fit, test in (halves, halves[::-1]):
        t = _best_threshold(values[fit], labels[fit])
        v, y = values[test], labels[test]
        results.append(
            {
                "threshold": round(t, 4),
                "accuracy_open": round(float((v[y == 1] >= t).mean()), 4),
                "accuracy_closed": round(float((v[y == 0] < t).mean()), 4),
            }
        )
    return {"folds": results}


def _spearman(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> float:
    keep = np.isfinite(a) & np.isfinite(b)
    ra = np.argsort(np.argsort(a[keep])).astype(np.float64)
    rb = np.argsort(np.argsort(b[keep])).astype(np.float64)
    return float(np.corrcoef(ra, rb)[0, 1])


def _summary(values: npt.NDArray[np.float64]) -> dict[str, Any]:
    if len(values) == 0:
        return {"n": 0}
    return {
        "n": len(values),
        "median": round(float(statistics.median(values.tolist())), 1),
        "mean": round(float(np.mean(values)), 1),
        "min": round(float(np.min(values)), 1),
    }
