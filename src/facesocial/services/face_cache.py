"""``face_cache:{user_id}`` (document 000 §6, 1 h): a user's enrolled embeddings for 1:1 verify.

Verification against a user reads their templates on every call; the cache spares the SQL
round trip. Any change to the user's faces (register, erase, migrate) drops the entry.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from facesocial.store.kv import FACE_CACHE_TTL, KeyValue, face_cache_key


@dataclass(frozen=True, slots=True)
class CachedFace:
    face_id: uuid.UUID
    collection: str
    embedding: npt.NDArray[np.float32]


class FaceCache:
    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv

    def get(self, user_id: uuid.UUID) -> list[CachedFace] | None:
        raw = self._kv.get(face_cache_key(str(user_id)))
        if raw is None:
            return None
        return [
            CachedFace(
                uuid.UUID(item["face_id"]),
                item["collection"],
                np.frombuffer(base64.b64decode(item["embedding"]), dtype=np.float32),
            )
            for item in json.loads(raw)
        ]

    def put(self, user_id: uuid.UUID, faces: list[CachedFace]) -> None:
        payload = [
            {
                "face_id": str(face.face_id),
                "collection": face.collection,
                "embedding": base64.b64encode(face.embedding.astype(np.float32).tobytes()).decode(),
            }
            for face in faces
        ]
        self._kv.set(face_cache_key(str(user_id)), json.dumps(payload).encode(), FACE_CACHE_TTL)

    def drop(self, user_id: uuid.UUID) -> None:
        self._kv.delete(face_cache_key(str(user_id)))
