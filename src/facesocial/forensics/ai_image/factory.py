"""Build the SkyGate analyzer from the settings: the shipped model, the user's model, the face method."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from facesocial.forensics.ai_image.analyzer import AiImageAnalyzer, FaceFindings, ImageMethod

if TYPE_CHECKING:
    from facesocial.forensics.ensemble import DeepfakeDetector
    from facesocial.settings import Settings

log = logging.getLogger(__name__)


def build_analyzer(settings: Settings, deepfake_detector: Callable[[], DeepfakeDetector]) -> AiImageAnalyzer:
    """The analyzer with every method this installation has (missing optional parts are logged).

    ``deepfake_detector`` is called on first use of the face method only, so an analysis of an
    image without faces never loads the face models twice.
    """
    from facesocial.forensics.ai_image.reference import packaged_reference

    model: ImageMethod | None = None
    extra: ImageMethod | None = None
    faces: Callable[..., FaceFindings] | None = None
    try:
        from facesocial.forensics.ai_image.model import AiImageModel

        model = AiImageModel.packaged(intra_op_threads=settings.models.intra_op_threads)
    except ImportError:
        log.warning("the AI-image model is not part of this build")
    if settings.ai_detection.extra_model_path is not None:
        from facesocial.forensics.ai_image.extra_model import ExtraImageModel

        extra = ExtraImageModel.load(settings.ai_detection.extra_model_path)
    if model is not None:
        from facesocial.forensics.ai_image.faces import FaceForensics

        # The face method judges each face's square with the same model (faces.py says why).
        faces = FaceForensics(deepfake_detector, model)
    return AiImageAnalyzer(packaged_reference(), model, extra, faces)
