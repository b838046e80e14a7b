"""Kept face chips: an encrypted crop per enrolled face, only when the operator opts in.

Why keep anything: embeddings of one model cannot be converted into another's, so changing
the recognition model otherwise means every user enrols again. Why encrypt: a face crop is
biometric data; at rest it is only readable with the key (Fernet: AES-128-CBC + HMAC-SHA256).
"""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path

import numpy as np
import numpy.typing as npt
from cryptography.fernet import Fernet, InvalidToken
from PIL import Image

from facesocial import errors
from facesocial.vision.crops import square_crop

log = logging.getLogger(__name__)

CHIP_SIZE = 256
# Generous context around the box, so any model's own crop (x1.4 ... x2.0) fits inside.
CHIP_SCALE = 2.0


class ChipVault:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    @classmethod
    def from_settings(cls, key: str | None, secrets_dir: Path) -> ChipVault:
        if key:
            return cls(key.encode())
        path = secrets_dir / "chip.key"
        if not path.exists():
            secrets_dir.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(Fernet.generate_key())
            log.warning(
                "created %s to encrypt kept face chips; keep it apart from backups of the data "
                "(or set FACESOCIAL_PRIVACY__CHIP_KEY)",
                path,
            )
        return cls(path.read_bytes().strip())

    def seal(self, rgb: npt.NDArray[np.uint8], box: npt.NDArray[np.float32]) -> bytes:
        """Crop the face with context, encode it losslessly, encrypt it."""
        chip = square_crop(rgb, box, CHIP_SCALE, CHIP_SIZE)
        buffer = io.BytesIO()
        Image.fromarray(chip).save(buffer, format="PNG")
        return self._fernet.encrypt(buffer.getvalue())

    def open(self, token: bytes) -> bytes:
        """The chip as PNG bytes (decode it like any upload)."""
        try:
            return self._fernet.decrypt(token)
        except InvalidToken as exc:
            raise errors.ChipKeyError() from exc
