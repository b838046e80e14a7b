"""Pick the face a recognition request is about, and embed it.

Pure vision: decode → detect → choose → embed. Registration insists on one face (or an explicit
``face_index``); comparisons take the largest face unless told otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from facesocial import errors
from facesocial.settings import ImageLimits
from facesocial.vision.faces import Faces
from facesocial.vision.image import decode_image
from facesocial.vision.pipeline import DetectOptions, FacePipeline, face_to_dict
from facesocial.vision.ports import Embedder


@dataclass(frozen=True, slots=True)
class ProbeFace:
    """The one face of a request image that is compared, with its embedding."""

    image_hash: str
    faces: Faces  # exactly one face, with landmarks, quality and embedding
    faces_detected: int
    face_index: int
    embedder: Embedder
    rgb: npt.NDArray[np.uint8]

    @property
    def embedding(self) -> npt.NDArray[np.float32]:
        """Unit-length float32, shape (dimension,)."""
        vector: npt.NDArray[np.float32] = self.faces.columns["embedding"][0]
        return vector

    def describe(self) -> dict[str, Any]:
        item = face_to_dict(self.faces, 0)
        item["face_index"] = self.face_index
        return item


def probe_face(
    pipeline: FacePipeline,
    data: bytes,
    *,
    limits: ImageLimits,
    options: DetectOptions,
    face_index: int | None,
    require_single: bool,
    model: str | None = None,
) -> ProbeFace:
    """Decode, detect and embed the chosen face of an image.

    With several faces: ``face_index`` picks one (0 = largest); otherwise ``require_single``
    refuses (``MULTIPLE_FACES``, 422) and comparisons use the largest. Raises the decoder's
    errors, ``NO_FACE_FOUND`` (422), ``FACE_INDEX_OUT_OF_RANGE`` (422), ``UNKNOWN_MODEL`` (422).
    """
    embedder = pipeline.embedder_for(model)
    image = decode_image(data, limits)
    faces = pipeline.detect(image.rgb, options)
    if len(faces) == 0:
        raise errors.NoFaceFoundError()
    if face_index is None:
        if require_single and len(faces) > 1:
            raise errors.MultipleFacesError(
                f"{len(faces)} faces were found; choose one with face_index (0 is the largest face)",
                faces_detected=len(faces),
            )
        face_index = 0
    if not 0 <= face_index < len(faces):
        raise errors.FaceIndexOutOfRangeError(
            f"face_index {face_index} is out of range: {len(faces)} face(s) were found",
            faces_detected=len(faces),
        )
    chosen = pipeline.embed(image.rgb, faces[[face_index]], embedder.model.name)
    return ProbeFace(image.sha256, chosen, len(faces), face_index, embedder, image.rgb)
