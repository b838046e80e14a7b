"""Face mesh (468 points) + iris -> head pose, eye openness, blink, gaze.

Models: MediaPipe ``facemesh`` on the box x1.5 square crop at 192² (rotated upright by the
BlazeFace eye line, as MediaPipe's ROI), RGB 0..1; MediaPipe ``iris`` on 64² eye crops of
side 2.3 x the eye-corner distance; the subject's left eye (mesh 263/362, image right) is
mirrored, as MediaPipe and Human do, because the model was trained on the other side.

Conventions (all angles in degrees, "left/right" are the subject's own):

* ``yaw`` > 0: the subject turns their head to their left (the nose moves toward the image
  right in an unmirrored camera image). Flipping the image horizontally negates yaw.
* ``pitch`` > 0: the subject looks up. ``roll`` > 0: the head tilts toward the subject's left
  shoulder (their left eye, on the image right, is lower).
* Pose is a geometric estimate from the mesh's own 3-D points (x, y in image pixels, z on
  the same scale; smaller z = closer to the camera): the face's x axis runs from the right
  eye's outer corner to the left eye's, its up axis from chin to forehead; the face normal
  gives yaw and pitch. No camera intrinsics are needed. Pitch is relative to the
  forehead(10)-chin(152) line, not to a calibrated "straight ahead": a frontal selfie
  video gives a median of -4°, the astronaut -13° (``PITCH_OFFSET_DEG`` is left at 0 until
  faces with pitch ground truth are available).
* Eye openness: eye aspect ratio (EAR, Soukupová & Čech 2016) of 6 mesh eyelid points,
  mapped linearly from ``EAR_CLOSED`` (0) to ``EAR_OPEN`` (1) and clipped; ``blink`` when
  both eyes' openness is below ``BLINK_OPENNESS``.
* Gaze: iris centre (iris model) relative to the midpoint of the eye corners, along the
  corner line (horizontal, / half the eye width) and across it (vertical, / a quarter of
  the eye width), clipped to -1..1; > 0 = toward the image right / up. Uncalibrated: it
  tells left/centre/right, not an angle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from facesocial.models.manifest import ModelRef
from facesocial.models.runtime import OnnxModel
from facesocial.vision.crops import CropCache, CropSpec, SquareSpec, cache_for, eye_crops
from facesocial.vision.faces import Faces

FloatArray = npt.NDArray[np.float32]
MESH_CROP = SquareSpec(scale=1.5, size=192, upright=True)
MESH_POINTS = 468
IRIS_SIZE = 64
IRIS_SCALE = 2.3
FACE_FLAG_MIN = 0.5

# Mesh indices (MediaPipe topology). Right = the subject's right eye (image left).
RIGHT_EYE_CORNERS = (33, 133)  # outer, inner
LEFT_EYE_CORNERS = (263, 362)  # outer, inner
# EAR order p1..p6: corner, upper, upper, corner, lower, lower.
RIGHT_EYE_EAR = (33, 160, 158, 133, 153, 144)
LEFT_EYE_EAR = (362, 385, 387, 263, 373, 380)
FOREHEAD, CHIN = 10, 152
IRIS_CENTRE = 71  # first of the 5 iris points after 71 eye-contour points

# Set from face_liveness_blink_video (one subject; 334 frames): open eyes EAR 0.26-0.29,
# closed 0.11-0.13 (the mesh never closes the lids fully). openness 0.35 = EAR 0.163.
EAR_CLOSED = 0.10
EAR_OPEN = 0.28
BLINK_OPENNESS = 0.35
PITCH_OFFSET_DEG = 0.0


@dataclass(frozen=True, slots=True)
class Gaze:
    horizontal: float  # -1..1, > 0 = iris toward the image right
    vertical: float  # -1..1, > 0 = up


@dataclass(frozen=True, slots=True)
class MeshResult:
    landmarks: FloatArray  # (468, 3) x, y in image pixels, z on the same scale
    face_score: float  # facemesh face flag (probability the crop holds a face)
    yaw: float
    pitch: float
    roll: float
    eye_openness_left: float  # 0 closed .. 1 open (subject's left eye)
    eye_openness_right: float
    ear_left: float  # raw eye aspect ratios
    ear_right: float
    blink: bool
    gaze: Gaze
    iris_left: FloatArray  # (2,) iris centre in image pixels
    iris_right: FloatArray

    @property
    def is_face(self) -> bool:
        return self.face_score >= FACE_FLAG_MIN

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "face_score": round(self.face_score, 4),
            "yaw": round(self.yaw, 2),
            "pitch": round(self.pitch, 2),
            "roll": round(self.roll, 2),
            "eye_openness": {
                "left": round(self.eye_openness_left, 3),
                "right": round(self.eye_openness_right, 3),
            },
            "blink": self.blink,
            "gaze": {"horizontal": round(self.gaze.horizontal, 3), "vertical": round(self.gaze.vertical, 3)},
            "iris": {"left": self.iris_left.round(1).tolist(), "right": self.iris_right.round(1).tolist()},
            "landmarks": self.landmarks.round(2).tolist(),
        }


def eye_aspect_ratio(points: npt.ArrayLike, indices: tuple[int, ...]) -> float:
    """(|p2-p6| + |p3-p5|) / (2 |p1-p4|) on x, y."""
    p = np.asarray(points, dtype=np.float64)[list(indices), :2]
    width = np.linalg.norm(p[0] - p[3])
    if width <= 0:
        return 0.0
    return float((np.linalg.norm(p[1] - p[5]) + np.linalg.norm(p[2] - p[4])) / (2.0 * width))


def openness(ear: float) -> float:
    return float(np.clip((ear - EAR_CLOSED) / (EAR_OPEN - EAR_CLOSED), 0.0, 1.0))


def head_pose(landmarks: npt.ArrayLike) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees from (468, 3) image-space mesh points (see module doc)."""
    p = np.asarray(landmarks, dtype=np.float64)
    # Camera frame: X right, Y up, Z toward the viewer.
    cam = np.stack([p[:, 0], -p[:, 1], -p[:, 2]], axis=1)
    x_axis = cam[LEFT_EYE_CORNERS[0]] - cam[RIGHT_EYE_CORNERS[0]]
    x_axis /= max(float(np.linalg.norm(x_axis)), 1e-9)
    up = cam[FOREHEAD] - cam[CHIN]
    up -= x_axis * float(up @ x_axis)
    up /= max(float(np.linalg.norm(up)), 1e-9)
    normal = np.cross(x_axis, up)  # out of the face, toward the viewer when frontal
    yaw = np.degrees(np.arctan2(normal[0], normal[2]))
    pitch = np.degrees(np.arctan2(normal[1], np.hypot(normal[0], normal[2]))) - PITCH_OFFSET_DEG
    roll = np.degrees(np.arctan2(-x_axis[1], x_axis[0]))
    return float(yaw), float(pitch), float(roll)


def gaze_of_eye(corner_a: npt.ArrayLike, corner_b: npt.ArrayLike, iris: npt.ArrayLike) -> tuple[float, float]:
    a, b = np.asarray(corner_a, dtype=np.float64)[:2], np.asarray(corner_b, dtype=np.float64)[:2]
    left, right = (a, b) if a[0] <= b[0] else (b, a)
    width = float(np.linalg.norm(right - left))
    if width <= 0:
        return 0.0, 0.0
    along = (right - left) / width
    up = np.array([along[1], -along[0]])  # image y points down
    offset = np.asarray(iris, dtype=np.float64)[:2] - (left + right) / 2.0
    horizontal = float(np.clip(offset @ along / (width / 2.0), -1.0, 1.0))
    vertical = float(np.clip(offset @ up / (width / 4.0), -1.0, 1.0))
    return horizontal, vertical


class MeshHead:
    """facemesh + iris for every face of an image: two batched model calls."""

    name = "mesh"

    def __init__(self, facemesh: OnnxModel, iris: OnnxModel, crop: CropSpec = MESH_CROP) -> None:
        self._mesh = facemesh
        self._iris = iris
        self.model: ModelRef = facemesh.ref
        self.iris_model: ModelRef = iris.ref
        self.crop = crop

    def landmarks(
        self, rgb: npt.NDArray[np.uint8], faces: Faces, cache: CropCache | None = None
    ) -> tuple[FloatArray, FloatArray]:
        """(N, 468, 3) image-space mesh points and (N,) face flags."""
        crops = cache_for(rgb, faces, cache).get(self.crop)
        if len(crops) == 0:
            return np.zeros((0, MESH_POINTS, 3), np.float32), np.zeros((0,), np.float32)
        out = self._mesh.run(crops.images.astype(np.float32) / 255.0)
        mesh = out["output_mesh"].reshape(-1, MESH_POINTS, 3).astype(np.float64)
        points = np.empty_like(mesh)
        for i in range(len(mesh)):
            scale = float(np.sqrt(abs(np.linalg.det(crops.transforms[i][:, :2]))))
            points[i, :, :2] = crops.to_image(i, mesh[i, :, :2])
            points[i, :, 2] = mesh[i, :, 2] / scale  # crop pixels -> image pixels
        return points.astype(np.float32), out["output_faceflag"].reshape(-1).astype(np.float32)

    def iris_centres(self, rgb: npt.NDArray[np.uint8], meshes: FloatArray) -> FloatArray:
        """(N, 2, 2): per face, the right then left iris centre in image pixels."""
        if len(meshes) == 0:
            return np.zeros((0, 2, 2), np.float32)
        corners = np.stack(
            [np.stack([m[list(RIGHT_EYE_CORNERS), :2], m[list(LEFT_EYE_CORNERS), :2]]) for m in meshes]
        )  # (N, 2 eyes, 2 corners, 2)
        crops = eye_crops(rgb, corners, IRIS_SCALE, IRIS_SIZE, mirror=(False, True))
        raw = self._iris.run(crops.images.astype(np.float32) / 255.0)["Identity"].reshape(len(crops), -1, 3)
        centres = np.stack([crops.to_image(k, raw[k, IRIS_CENTRE, :2]) for k in range(len(crops))])
        return centres.reshape(len(meshes), 2, 2).astype(np.float32)

    def run(
        self, rgb: npt.NDArray[np.uint8], faces: Faces, cache: CropCache | None = None
    ) -> list[MeshResult]:
        meshes, flags = self.landmarks(rgb, faces, cache)
        irises = self.iris_centres(rgb, meshes)
        results = []
        for mesh, flag, iris in zip(meshes, flags, irises, strict=True):
            yaw, pitch, roll = head_pose(mesh)
            ear_r, ear_l = eye_aspect_ratio(mesh, RIGHT_EYE_EAR), eye_aspect_ratio(mesh, LEFT_EYE_EAR)
            open_r, open_l = openness(ear_r), openness(ear_l)
            gaze_r = gaze_of_eye(mesh[RIGHT_EYE_CORNERS[0]], mesh[RIGHT_EYE_CORNERS[1]], iris[0])
            gaze_l = gaze_of_eye(mesh[LEFT_EYE_CORNERS[0]], mesh[LEFT_EYE_CORNERS[1]], iris[1])
            results.append(
                MeshResult(
                    landmarks=mesh,
                    face_score=float(flag),
                    yaw=yaw,
                    pitch=pitch,
                    roll=roll,
                    eye_openness_left=open_l,
                    eye_openness_right=open_r,
                    ear_left=ear_l,
                    ear_right=ear_r,
                    blink=max(open_l, open_r) < BLINK_OPENNESS,
                    gaze=Gaze((gaze_r[0] + gaze_l[0]) / 2.0, (gaze_r[1] + gaze_l[1]) / 2.0),
                    iris_left=iris[1],
                    iris_right=iris[0],
                )
            )
        return results
