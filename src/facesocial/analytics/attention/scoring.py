"""One face's attention scores (0-100) from the 468-point mesh and the iris.

Three part scores, each 100 inside a tolerance and falling linearly to 0 at a limit
(:func:`ramp`), and their weighted mean:

* ``head_pose_score`` = 100 · ramp(|yaw|) · ramp(|pitch − pitch_neutral|): yaw and pitch in
  degrees from :func:`facesocial.vision.heads.mesh.head_pose`. The mesh's pitch of a face looking
  straight at the camera is not 0 (mesh.py measured −4° on a frontal selfie video), hence
  ``pitch_neutral_deg``.
* ``gaze_score`` = 100 · ramp(|gaze_h|) · ramp(|gaze_v|): the iris centre's offset from the eye
  corners' midpoint (mesh.py's ``Gaze``, −1..1, uncalibrated). It measures the eyes turned within
  the head, not the line of sight: a head turned away with the eyes held on the screen loses on
  the head pose score and gains nothing back here (docs/attention.md, limitations).
* ``eye_openness_score`` = 100 · ramp-up of the more open eye's openness (mesh EAR mapped 0..1)
  between ``openness_floor`` and ``openness_full``. The more open eye, because a turned head
  foreshortens the far eye, and a blink closes both.
* ``attention_score`` = head_pose_score · (w_g · gaze_score + w_e · eye_openness_score) / (w_g + w_e)
  with ``weight_gaze`` 0.6 and ``weight_eye_openness`` 0.4. The head pose multiplies rather than
  adds: whoever has turned away is not watching, however open their eyes (a plain weighted mean
  gave a face turned 50° away 55 points); gaze and eyes then share what the pose allows. A blink
  frame keeps 60 % of the pose's score, far eyes-off-centre 40 %, so neither alone falls below
  the ``not_attentive`` level of 50 from a frontal pose; a turned head does.

``is_looking_away``: |yaw| > ``looking_away_yaw_deg``, or |pitch − neutral| >
``looking_away_pitch_deg``, or |gaze_h| > ``looking_away_gaze_h``.

Every default is in :class:`facesocial.settings.AttentionSettings`; docs/attention.md says where
each came from.
"""

from __future__ import annotations

from dataclasses import dataclass

from facesocial.settings import AttentionSettings
from facesocial.vision.heads.mesh import MeshResult


@dataclass(frozen=True, slots=True)
class FaceScores:
    """Scores of one face in one frame: each 0.0-100.0 (higher = more attentive)."""

    head_pose_score: float
    gaze_score: float
    eye_openness_score: float
    attention_score: float
    is_looking_away: bool


def ramp(value: float, tolerance: float, limit: float) -> float:
    """1.0 for ``value`` ≤ ``tolerance``, 0.0 for ≥ ``limit``, linear between (``value`` ≥ 0)."""
    if value <= tolerance:
        return 1.0
    if value >= limit or limit <= tolerance:
        return 0.0
    return (limit - value) / (limit - tolerance)


def score_values(
    *,
    yaw: float,
    pitch: float,
    gaze_h: float,
    gaze_v: float,
    openness: float,
    settings: AttentionSettings,
) -> FaceScores:
    """Scores from the measured quantities (degrees; gaze −1..1; ``openness`` of the more open eye 0..1)."""
    s = settings
    pitch_off = abs(pitch - s.pitch_neutral_deg)
    head = 100.0 * ramp(abs(yaw), s.yaw_tolerance_deg, s.yaw_limit_deg)
    head *= ramp(pitch_off, s.pitch_tolerance_deg, s.pitch_limit_deg)
    gaze = 100.0 * ramp(abs(gaze_h), s.gaze_h_tolerance, s.gaze_h_limit)
    gaze *= ramp(abs(gaze_v), s.gaze_v_tolerance, s.gaze_v_limit)
    eyes = 100.0 * (1.0 - ramp(openness, s.openness_floor, s.openness_full))  # rises floor -> full
    weights = s.weight_gaze + s.weight_eye_openness
    if weights <= 0:
        raise ValueError("weight_gaze + weight_eye_openness must be > 0")
    attention = head / 100.0 * (s.weight_gaze * gaze + s.weight_eye_openness * eyes) / weights
    away = (
        abs(yaw) > s.looking_away_yaw_deg
        or pitch_off > s.looking_away_pitch_deg
        or abs(gaze_h) > s.looking_away_gaze_h
    )
    return FaceScores(
        head_pose_score=_clip100(head),
        gaze_score=_clip100(gaze),
        eye_openness_score=_clip100(eyes),
        attention_score=_clip100(attention),
        is_looking_away=away,
    )


def score_face(mesh: MeshResult, settings: AttentionSettings) -> FaceScores:
    """Scores of one face from its :class:`MeshResult` (see the module docstring for the method)."""
    return score_values(
        yaw=mesh.yaw,
        pitch=mesh.pitch,
        gaze_h=mesh.gaze.horizontal,
        gaze_v=mesh.gaze.vertical,
        openness=max(mesh.eye_openness_left, mesh.eye_openness_right),
        settings=settings,
    )


def _clip100(value: float) -> float:
    return float(min(100.0, max(0.0, value)))
