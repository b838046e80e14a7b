"""Motion cues over a sequence of observed frames: planar (photo) motion, flicker, blinks.

Rigidity: a flat photo or screen moved, zoomed, rotated or tilted in front of a camera moves
all its points by one plane-to-plane homography per frame pair (a pinhole camera viewing a
plane). A real head turning shows parallax: the nose tip, ~0.5 inter-ocular distances (IOD)
in front of the eye corners, moves further than the cheeks and the face outline. So the
residual of the best homography between two frames' mesh points, in IOD, is ≈ the mesh's
jitter for a photo and grows with the head's rotation for a live face. Only rigid parts of
the face are used (eye corners, brows, nose, cheeks, upper face outline): eyelids, lips and
jaw move in a live face, but also stay put on a photo with cut-out eyes or mouth, so they
prove nothing about depth. Limitation: a video replayed on a screen is planar too, yet shows
a moving 3-D head inside the screen; the homography is of the screen's content, so this cue
does not see a replay (the random challenge order and the passive model do).

Flicker: mean face luma over time, divided by the background luma (the camera's exposure
changes move both), detrended; ``flicker`` is the relative RMS modulation (in %) of the part
above ``FLICKER_MIN_HZ`` and below the Nyquist frequency of the sampling. A live face lit by
daylight or DC LED light is smooth; a screen's backlight PWM and refresh (60-240 Hz) is far
above any frame rate a client sends (5-30 fps), so it is seen only when it aliases to a low
frequency (e.g. 60 Hz PWM sampled at 29.97 fps beats at 0.06 Hz, at 25 fps at 10 Hz, at
10 fps it folds onto 0 Hz and vanishes). The cue can flag a replay but its absence proves
nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from facesocial.vision.heads.mesh import BLINK_OPENNESS

if TYPE_CHECKING:
    from facesocial.antispoof.observe import FrameObservation

# Mesh indices (MediaPipe topology) of rigid face parts. The first two are the outer eye
# corners (33 = subject's right, 263 = left): the IOD scale is read from them.
RIGID_POINTS: tuple[int, ...] = (
    33, 263, 133, 362,  # eye corners
    70, 105, 107, 336, 334, 300,  # brows
    1, 4, 5, 6, 168, 197, 195, 2, 98, 327, 48, 278,  # nose bridge, tip, base, alae
    50, 280, 117, 346, 205, 425,  # cheeks
    10, 338, 297, 332, 284, 251, 389, 356, 454, 109, 67, 103, 54, 21, 162, 127, 234,  # upper outline
)  # fmt: skip
# Below this, motion is planar (a photo). Set from data (docs/liveness-active.md): 4 LFW photos
# slid, zoomed and rotated give 0.009-0.020 IOD; a real talking head turning only ±8°
# (lynaeydofd) 0.032. Photos tilted in perspective reach 0.013-0.032: the mesh bends its 3-D face
# prior onto the tilted picture, so this test does not stop them (their yaw stays < 12°, so they
# do not pass a turn either).
RIGIDITY_THRESHOLD = 0.025
# Below this much landmark motion (IOD, 90th percentile from the first frame) nothing moved:
# rigidity then tells nothing about depth.
MIN_MOTION_IOD = 0.05
FLICKER_MIN_HZ = 1.0
# Pairs compared at most (all pairs of 30 frames = 435): the homography fits are cheap.
MAX_FRAMES = 30
# Blink hysteresis on eye openness (see mesh.BLINK_OPENNESS: EAR 0.163): closed below, open above.
BLINK_CLOSED = BLINK_OPENNESS
BLINK_OPEN = 0.6


def rigid_points(landmarks: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """(len(RIGID_POINTS), 2) rigid-part points of a (468, 2|3) mesh; (K, 2) input is kept as is."""
    p = np.asarray(landmarks, dtype=np.float64)
    if p.shape[0] == 468:
        p = p[list(RIGID_POINTS)]
    return p[:, :2]


def homography_residual(src: npt.NDArray[np.float64], dst: npt.NDArray[np.float64]) -> float:
    """RMS distance (in IOD of ``dst``) between ``dst`` and ``src`` mapped by the least-squares
    homography from ``src`` to ``dst`` (normalised DLT, Hartley & Zisserman 2004, alg. 4.2).

    ``src``, ``dst``: (K, 2) corresponding points, K ≥ 5, the first two the outer eye corners.
    """
    a, ta = _normalise(src)
    b, tb = _normalise(dst)
    rows = []
    for (x, y), (u, v) in zip(a, b, strict=True):
        rows.append([-x, -y, -1.0, 0.0, 0.0, 0.0, u * x, u * y, u])
        rows.append([0.0, 0.0, 0.0, -x, -y, -1.0, v * x, v * y, v])
    _, _, vt = np.linalg.svd(np.asarray(rows))
    h = np.linalg.inv(tb) @ vt[-1].reshape(3, 3) @ ta
    mapped = np.c_[src, np.ones(len(src))] @ h.T
    mapped = mapped[:, :2] / np.where(np.abs(mapped[:, 2:]) < 1e-12, 1e-12, mapped[:, 2:])
    iod = max(float(np.linalg.norm(dst[0] - dst[1])), 1e-6)
    return float(np.sqrt(np.mean(np.sum((mapped - dst) ** 2, axis=1))) / iod)


def _normalise(points: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Points moved to their centroid and scaled to mean distance √2, and that similarity (3, 3)."""
    centre = points.mean(axis=0)
    spread = float(np.mean(np.linalg.norm(points - centre, axis=1)))
    scale = np.sqrt(2.0) / max(spread, 1e-9)
    t = np.array([[scale, 0.0, -scale * centre[0]], [0.0, scale, -scale * centre[1]], [0.0, 0.0, 1.0]])
    return (points - centre) * scale, t


def rigidity(landmark_sets: Sequence[npt.ArrayLike]) -> float:
    """How far the face's motion is from planar: 0 = exactly one homography per frame pair.

    ``landmark_sets``: per frame (468, 2|3) mesh points or (len(RIGID_POINTS), 2) rigid points,
    image pixels. Returns the 90th percentile over frame pairs of :func:`homography_residual`
    (IOD units; moved photos ≈ 0.01-0.02, a real head turning ±8° ≈ 0.03). At most ``MAX_FRAMES``
    frames, evenly spread, are compared. Fewer than 2 frames: 0.0.
    """
    points = [rigid_points(s) for s in landmark_sets]
    if len(points) > MAX_FRAMES:
        keep = np.linspace(0, len(points) - 1, MAX_FRAMES).round().astype(int)
        points = [points[i] for i in keep]
    pairs = [(i, j) for i in range(len(points)) for j in range(i + 1, len(points))]
    residuals = [homography_residual(points[i], points[j]) for i, j in pairs]
    return float(np.percentile(residuals, 90)) if residuals else 0.0


def motion_magnitude(landmark_sets: Sequence[npt.ArrayLike]) -> float:
    """90th percentile over frames of the mean rigid-point displacement from the first frame, in IOD."""
    points = [rigid_points(s) for s in landmark_sets]
    if len(points) < 2:
        return 0.0
    first = points[0]
    iod = max(float(np.linalg.norm(first[0] - first[1])), 1e-6)
    moves = [float(np.mean(np.linalg.norm(p - first, axis=1))) / iod for p in points[1:]]
    return float(np.percentile(moves, 90))


def count_blinks(
    openness: Sequence[float | None], closed: float = BLINK_CLOSED, opened: float = BLINK_OPEN
) -> int:
    """Open → closed → open cycles (hysteresis: below ``closed`` is closed, above ``opened`` open)."""
    count, state = 0, "unknown"
    for value in openness:
        if value is None:
            continue
        if value >= opened:
            if state == "closed":
                count += 1
            state = "open"
        elif value < closed and state == "open":
            state = "closed"
    return count


def flicker(
    times_ms: Sequence[float], face_luma: Sequence[float], background_luma: Sequence[float | None]
) -> float:
    """Relative RMS luma modulation (%) of the face above ``FLICKER_MIN_HZ`` (module docstring).

    The series is resampled to its median frame interval; needs ≥ 8 samples and a Nyquist
    frequency above ``FLICKER_MIN_HZ``, else 0.0.
    """
    t = np.asarray(times_ms, np.float64) / 1000.0
    face = np.asarray(face_luma, np.float64)
    if len(t) < 8:
        return 0.0
    background = np.asarray([np.nan if b is None else b for b in background_luma], np.float64)
    if np.all(np.isfinite(background)) and np.all(background > 1.0):
        face = face / background * float(np.mean(background))
    step = float(np.median(np.diff(t)))
    if step <= 0 or 0.5 / step <= FLICKER_MIN_HZ:
        return 0.0
    grid = np.arange(t[0], t[-1], step)
    series = np.interp(grid, t, face)
    mean = float(np.mean(series))
    series = series - np.polyval(np.polyfit(grid, series, 1), grid)
    spectrum = np.abs(np.fft.rfft(series * np.hanning(len(series)))) ** 2
    freqs = np.fft.rfftfreq(len(series), step)
    # Hann window power gain 3/8: the band's power as the series' mean square.
    band = float(np.sum(spectrum[freqs >= FLICKER_MIN_HZ])) * 2.0 / (len(series) ** 2 * 0.375)
    return 100.0 * float(np.sqrt(band)) / max(mean, 1e-6)


def video_cues(frames: Sequence[FrameObservation]) -> dict[str, float | bool]:
    """Passive video cues for a clip's observations (in time order).

    Returns ``rigidity`` (IOD; 0 = perfectly planar motion), ``motion_magnitude`` (IOD),
    ``pose_range_deg`` (largest of the yaw and pitch ranges), ``flicker`` (% luma modulation),
    ``blink_count``, ``face_frames`` and ``is_rigid``: the face moved (motion_magnitude ≥
    ``MIN_MOTION_IOD``) yet only planarly (rigidity < ``RIGIDITY_THRESHOLD``): a photo's motion.
    A still face is neither rigid nor not: ``is_rigid`` is then False and ``rigidity`` is noise.
    """
    with_face = [f for f in frames if f.face_count > 0]
    marks = [f.landmarks for f in with_face if f.landmarks is not None]
    rigid = rigidity(marks)
    moved = motion_magnitude(marks)
    yaws = [f.yaw for f in with_face if f.yaw is not None]
    pitches = [f.pitch for f in with_face if f.pitch is not None]
    pose_range = max(
        float(np.ptp(yaws)) if yaws else 0.0,
        float(np.ptp(pitches)) if pitches else 0.0,
    )
    lit = [f for f in with_face if f.face_luma is not None]
    flick = flicker(
        [f.timestamp_ms for f in lit],
        [float(f.face_luma) for f in lit if f.face_luma is not None],
        [f.background_luma for f in lit],
    )
    return {
        "rigidity": rigid,
        "motion_magnitude": moved,
        "pose_range_deg": pose_range,
        "flicker": flick,
        "blink_count": float(count_blinks([f.eye_openness for f in with_face])),
        "face_frames": float(len(with_face)),
        "is_rigid": bool(len(marks) >= 2 and moved >= MIN_MOTION_IOD and rigid < RIGIDITY_THRESHOLD),
    }
