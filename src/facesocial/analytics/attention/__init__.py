"""Meeting attention: per-face scores, PERCLOS drowsiness, alerts with hysteresis, per-stream sessions.

Pure computation (no HTTP, no storage): :mod:`.scoring` turns one face's mesh into scores,
:mod:`.perclos` keeps the eye-closure window and blinks, :mod:`.alerts` the alert state machines,
:mod:`.session` ties them to detection and tracking for one stream. docs/attention.md explains
the method and every constant.
"""

from facesocial.analytics.attention.alerts import AlertEvent, AlertTracker
from facesocial.analytics.attention.perclos import Perclos
from facesocial.analytics.attention.scoring import FaceScores, score_face
from facesocial.analytics.attention.session import AttentionSession, FaceAttention, FrameAttention

__all__ = [
    "AlertEvent",
    "AlertTracker",
    "AttentionSession",
    "FaceAttention",
    "FaceScores",
    "FrameAttention",
    "Perclos",
    "score_face",
]
