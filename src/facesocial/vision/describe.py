"""Per-face extras asked for by a request: 68/468 landmarks, mesh (pose, eyes, gaze), attributes.

One ``CropCache`` per image, so heads needing the same crop (or the same faceres pass) share it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from facesocial.models.dlib_pack import model_info
from facesocial.models.manifest import ModelRef
from facesocial.vision.attributes import FaceAttributes
from facesocial.vision.crops import CropCache
from facesocial.vision.faces import Faces
from facesocial.vision.pipeline import FacePipeline

LandmarkSet = Literal["5", "68", "468"]


@dataclass(frozen=True, slots=True)
class Extras:
    """Per face: extra JSON fields, attributes (for storage), and the models that made them."""

    fields: list[dict[str, Any]]
    attributes: list[FaceAttributes] | None
    models: dict[str, ModelRef]


def describe_faces(
    pipeline: FacePipeline,
    rgb: npt.NDArray[np.uint8],
    faces: Faces,
    *,
    landmarks: LandmarkSet = "5",
    attributes: bool = False,
) -> Extras:
    fields: list[dict[str, Any]] = [{} for _ in range(len(faces))]
    models: dict[str, ModelRef] = {}
    found: list[FaceAttributes] | None = None
    if len(faces) == 0:
        return Extras(fields, [] if attributes else None, models)
    cache = CropCache(rgb, faces)
    if landmarks == "68":
        points = pipeline.landmarks68(rgb, faces)
        for item, face_points in zip(fields, points, strict=True):
            item["landmarks_68"] = [[round(float(x), 1), round(float(y), 1)] for x, y in face_points]
        models["landmarks_68"] = model_info("dlib_shape_68").ref
    elif landmarks == "468":
        for item, mesh in zip(fields, pipeline.analyze_mesh(rgb, faces, cache), strict=True):
            item["mesh"] = mesh.as_dict()
        assert pipeline.mesh is not None
        models["mesh"] = pipeline.mesh.model
        models["iris"] = pipeline.mesh.iris_model
    if attributes:
        found = pipeline.analyze_attributes(rgb, faces, cache)
        for item, attribute in zip(fields, found, strict=True):
            item["attributes"] = attribute.as_dict()
        assert pipeline.attributes is not None
        models.update(pipeline.attributes.models)
    return Extras(fields, found, models)
