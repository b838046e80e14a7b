"""Per-face heads on ONNX models: embeddings, age/gender, emotion, age group, race, mesh/pose.

Each head names the crop it needs (a ``CropSpec`` from ``vision.crops``), the model it runs
(``model: ModelRef``) and returns typed per-face results, one model call per image for all
faces. Heads take an optional ``CropCache`` so a pipeline running several heads on the same
image computes every crop (and the shared faceres forward pass) once.

The race head (``heads.race``) is deliberately not imported here: it must be constructed
explicitly (see its module docstring).
"""

from facesocial.vision.heads.age_group import AGE_GROUPS, AgeGroup, age_group
from facesocial.vision.heads.embedding import FaceresEmbedder, MobilefaceEmbedder, OnnxEmbedder
from facesocial.vision.heads.emotion import EMOTIONS, EmotionHead, EmotionResult
from facesocial.vision.heads.faceres_attributes import AgeGender, FaceresAttributes, age_from_bins
from facesocial.vision.heads.mesh import MeshHead, MeshResult

__all__ = [
    "AGE_GROUPS",
    "EMOTIONS",
    "AgeGender",
    "AgeGroup",
    "EmotionHead",
    "EmotionResult",
    "FaceresAttributes",
    "FaceresEmbedder",
    "MeshHead",
    "MeshResult",
    "MobilefaceEmbedder",
    "OnnxEmbedder",
    "age_from_bins",
    "age_group",
]
