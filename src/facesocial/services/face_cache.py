"""``face_cache:{user_id}`` (document 000 §6, 1 h): a user's enrolled embeddings for 1:1 verify.

Verification against a user reads their templates on every call; the cache spares the SQL
round trip. Any change to the user's faces (register, erase, migrate) drops the entry.

An entry is only ever a copy of SQL rows, so losing one costs a query and keeping a wrong one
serves faces a user no longer has. Hence: an unreadable entry is a miss (and is dropped), and
while Redis is down the scaled profile keeps no entries at all and purges Redis's copies when it
answers again (``store.kv.RedisCircuit``), since drops made during the outage never reached them.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import uuid
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from facesocial.store.kv import FACE_CACHE_TTL, KeyValue, face_cache_key

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CachedFace:
    face_id: uuid.UUID
    collection: str
    embedding: npt.NDArray[np.float32]


class FaceCache:
    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv

    def get(self, user_id: uuid.UUID) -> list[CachedFace] | None:
        """The cached templates, or None (a miss: read SQL, then :meth:`put`)."""
        key = face_cache_key(str(user_id))
        raw = self._kv.get(key)
        if raw is None:
            return None
        try:
            return [
                CachedFace(
                    uuid.UUID(item["face_id"]),
                    item["collection"],
                    np.frombuffer(base64.b64decode(item["embedding"], validate=True), dtype=np.float32),
                )
                for item in json.loads(raw)
            ]
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
            # Another version's format or a damaged value: SQL has the truth.
            log.warning("dropping unreadable %s (%s)", key, type(exc).__name__)
            self._kv.delete(key)
            return None

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
