"""Face recognition use cases: register, verify (1:1), identify (1:N), erase.

Inference runs outside any transaction; SQL is written first and the vector index after the
commit, so a failed request never leaves a vector without its row. The index can always be
rebuilt from ``face_data.embedding``.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from facesocial import errors
from facesocial.services.context import RequestContext
from facesocial.settings import ImageLimits, RecognitionThresholds
from facesocial.store.db import Database
from facesocial.store.tables import FaceData, FaceGroup, FaceGroupMember, RecognitionSession, User
from facesocial.store.types import utcnow
from facesocial.store.vector_index import VectorIndex
from facesocial.vision.faces import Faces
from facesocial.vision.image import decode_image
from facesocial.vision.pipeline import DetectOptions, FacePipeline, face_to_dict

VerifyMode = Literal["balanced", "strict"]


@dataclass(frozen=True, slots=True)
class ProbeFace:
    """The one face of a request image that is compared, with its embedding."""

    image_hash: str
    faces: Faces  # exactly one face, with landmarks, quality and embedding
    faces_detected: int
    face_index: int

    @property
    def embedding(self) -> npt.NDArray[np.float32]:
        vectors: npt.NDArray[np.float32] = self.faces.columns["embedding"][0]
        return vectors

    def describe(self) -> dict[str, Any]:
        item = face_to_dict(self.faces, 0)
        item["face_index"] = self.face_index
        return item


@dataclass(slots=True)
class Outcome:
    """What a use case returns to its caller (the API renders ``body``)."""

    body: dict[str, Any]
    user_id: uuid.UUID | None = None
    confidence: float | None = None
    model_version: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class RecognitionService:
    def __init__(
        self,
        database: Database,
        index: VectorIndex,
        pipeline: FacePipeline,
        limits: ImageLimits,
        thresholds: RecognitionThresholds,
        detect_options: DetectOptions,
    ) -> None:
        self._db = database
        self._index = index
        self._pipeline = pipeline
        self._limits = limits
        self._thresholds = thresholds
        self._detect = detect_options
        embedder = pipeline.embedder
        self.collection = embedder.collection
        self.model = embedder.model
        self._index.ensure_collection(self.collection, embedder.dimension)

    # --- probe ------------------------------------------------------------------------------------
    def probe(self, data: bytes, face_index: int | None, *, require_single: bool) -> ProbeFace:
        """Decode, detect and embed the chosen face of an image.

        With several faces: ``face_index`` picks one (0 = largest); otherwise registration
        refuses (``MULTIPLE_FACES``) and comparisons use the largest face.
        """
        image = decode_image(data, self._limits)
        faces = self._pipeline.detect(image.rgb, self._detect)
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
        chosen = self._pipeline.embed(image.rgb, faces[[face_index]])
        return ProbeFace(image.sha256, chosen, len(faces), face_index)

    # --- register ---------------------------------------------------------------------------------
    def register(
        self,
        user_id: uuid.UUID,
        data: bytes,
        *,
        consent: bool,
        ctx: RequestContext,
        face_index: int | None = None,
        group_id: uuid.UUID | None = None,
        registration_source: str | None = None,
    ) -> Outcome:
        started = time.perf_counter()
        try:
            if not consent:
                raise errors.ConsentRequiredError(
                    "Registration stores a biometric template: send consent=true once the user has agreed"
                )
            if group_id is not None:
                self._require_group(group_id)
            probe = self.probe(data, face_index, require_single=True)
        except errors.FaceSocialError as exc:
            self._log_failure("register", None, data, exc, started, ctx)
            raise
        face_uuid = uuid.uuid4()
        quality = probe.faces.columns["quality"][0]
        with self._db.session() as session:
            user = session.scalar(select(User).where(User.user_id == user_id))
            now = utcnow()
            if user is None:
                user = User(user_id=user_id, face_id=face_uuid, consent_given=True, consent_timestamp=now)
                session.add(user)
            else:
                user.consent_given, user.consent_timestamp, user.deleted_at = True, now, None
                user.face_id = user.face_id or face_uuid
            session.flush()
            face = FaceData(
                id=face_uuid,
                user_id=user_id,
                face_id=str(face_uuid),
                image_hash=probe.image_hash,
                face_quality_score=quality.score,
                face_landmarks=face_to_dict(probe.faces, 0).get("landmarks"),
                face_attributes={"bbox": face_to_dict(probe.faces, 0)["bbox"], "quality": quality.as_dict()},
                embedding_version=self.model.tag,
                embedding_dimension=int(probe.embedding.shape[0]),
                milvus_collection=self.collection,
                embedding=probe.embedding.astype(np.float32).tobytes(),
                registration_source=registration_source or ctx.request_source,
                ip_address=ctx.ip_address,
            )
            session.add(face)
            session.flush()
            if group_id is not None:
                self._add_faces_to_group(session, group_id, [face_uuid], added_by=None)
            session.add(
                self._session_row(
                    "register", user_id, probe.image_hash, "success", started, ctx, matched=face_uuid
                )
            )
        # After the commit: a crash here leaves a row without its vector, which
        # `facesocial index rebuild` repairs; the reverse (an orphan vector) cannot happen.
        self._index.upsert(self.collection, [str(face_uuid)], probe.embedding[None, :])
        body = {
            "user_id": str(user_id),
            "face_id": str(face_uuid),
            "faces_detected": probe.faces_detected,
            "face": probe.describe(),
            "embedding_model": self.model.as_dict(),
            "collection": self.collection,
            "group_id": str(group_id) if group_id else None,
        }
        return Outcome(body, user_id=user_id, confidence=quality.score, model_version=self.model.tag)

    # --- verify -----------------------------------------------------------------------------------
    def verify(
        self,
        data: bytes,
        *,
        ctx: RequestContext,
        user_id: uuid.UUID | None = None,
        other: bytes | None = None,
        mode: VerifyMode = "balanced",
        threshold: float | None = None,
        face_index: int | None = None,
    ) -> Outcome:
        started = time.perf_counter()
        used_threshold = threshold if threshold is not None else self._verify_threshold(mode)
        matched_face: uuid.UUID | None = None
        try:
            if (user_id is None) == (other is None):
                raise errors.ValidationFailedError("Send either user_id or a second image (image2)")
            probe = self.probe(data, face_index, require_single=False)
            if user_id is not None:
                faces = self._user_faces(user_id)
                gallery = np.stack([np.frombuffer(f.embedding, dtype=np.float32) for f in faces])
                scores = gallery @ probe.embedding
                best = int(np.argmax(scores))
                similarity, matched_face = float(scores[best]), faces[best].id
                compared = {"user_id": str(user_id), "faces_compared": len(faces)}
            else:
                assert other is not None
                second = self.probe(other, None, require_single=False)
                similarity = float(np.dot(second.embedding, probe.embedding))
                compared = {"face2": second.describe(), "faces_detected2": second.faces_detected}
        except errors.FaceSocialError as exc:
            self._log_failure(
                "verify", user_id if self._user_exists(user_id) else None, data, exc, started, ctx
            )
            raise
        match = similarity >= used_threshold
        with self._db.session() as session:
            session.add(
                self._session_row(
                    "verify",
                    user_id,
                    probe.image_hash,
                    "success" if match else "failed",
                    started,
                    ctx,
                    matched=matched_face if match else None,
                    similarity=similarity,
                )
            )
            if match and matched_face is not None:
                session.execute(
                    update(FaceData)
                    .where(FaceData.id == matched_face)
                    .values(verification_count=FaceData.verification_count + 1, last_used_at=utcnow())
                )
        body = {
            "match": match,
            "similarity": round(similarity, 4),
            "threshold": used_threshold,
            "threshold_mode": "custom" if threshold is not None else mode,
            "face": probe.describe(),
            "faces_detected": probe.faces_detected,
            "embedding_model": self.model.as_dict(),
            **compared,
        }
        return Outcome(body, user_id=user_id, confidence=similarity, model_version=self.model.tag)

    # --- identify ---------------------------------------------------------------------------------
    def identify(
        self,
        data: bytes,
        *,
        ctx: RequestContext,
        top_k: int = 5,
        group_id: uuid.UUID | None = None,
        threshold: float | None = None,
        face_index: int | None = None,
    ) -> Outcome:
        started = time.perf_counter()
        used_threshold = threshold if threshold is not None else self._thresholds.identify
        try:
            allowed = self._group_face_ids(group_id) if group_id is not None else None
            probe = self.probe(data, face_index, require_single=False)
        except errors.FaceSocialError as exc:
            self._log_failure("identify", None, data, exc, started, ctx)
            raise
        # A person may have several faces: over-fetch, then keep each person's best face.
        hits = self._index.search(self.collection, probe.embedding[None, :], top_k * 5, allowed_ids=allowed)[
            0
        ]
        candidates = self._rank_people(hits, used_threshold, top_k)
        best = candidates[0] if candidates else None
        with self._db.session() as session:
            session.add(
                self._session_row(
                    "identify",
                    uuid.UUID(best["user_id"]) if best else None,
                    probe.image_hash,
                    "success" if best else "failed",
                    started,
                    ctx,
                    matched=uuid.UUID(best["face_id"]) if best else None,
                    similarity=best["similarity"] if best else (hits[0].score if hits else None),
                )
            )
        body = {
            "identified": best is not None,
            "unknown": best is None,
            "candidates": candidates,
            "threshold": used_threshold,
            "top_k": top_k,
            "group_id": str(group_id) if group_id else None,
            "gallery_size": len(allowed) if allowed is not None else self._index.count(self.collection),
            "face": probe.describe(),
            "faces_detected": probe.faces_detected,
            "embedding_model": self.model.as_dict(),
        }
        return Outcome(
            body,
            user_id=uuid.UUID(best["user_id"]) if best else None,
            confidence=best["similarity"] if best else None,
            model_version=self.model.tag,
        )

    def _rank_people(self, hits: Sequence[Any], threshold: float, top_k: int) -> list[dict[str, Any]]:
        passing = [hit for hit in hits if hit.score >= threshold]
        if not passing:
            return []
        face_ids = [uuid.UUID(hit.id) for hit in passing]
        with self._db.session() as session:
            owners = dict(
                session.execute(
                    select(FaceData.id, FaceData.user_id).where(
                        FaceData.id.in_(face_ids), FaceData.status == "active"
                    )
                ).all()
            )
        people: dict[uuid.UUID, dict[str, Any]] = {}
        for hit in passing:  # already best-first
            owner = owners.get(uuid.UUID(hit.id))
            if owner is None or owner in people:
                continue  # a stale vector (row gone) or a weaker face of a listed person
            people[owner] = {
                "rank": len(people) + 1,
                "user_id": str(owner),
                "face_id": hit.id,
                "similarity": round(hit.score, 4),
            }
            if len(people) == top_k:
                break
        return list(people.values())

    # --- users ------------------------------------------------------------------------------------
    def get_user(self, user_id: uuid.UUID) -> dict[str, Any]:
        with self._db.session() as session:
            user = session.scalar(select(User).where(User.user_id == user_id))
            if user is None:
                raise errors.UserNotFoundError(f"No user {user_id}")
            faces = session.scalars(
                select(FaceData).where(FaceData.user_id == user_id).order_by(FaceData.created_at)
            ).all()
            return {
                "user_id": str(user_id),
                "consent_given": user.consent_given,
                "consent_timestamp": user.consent_timestamp.isoformat() if user.consent_timestamp else None,
                "created_at": user.created_at.isoformat(),
                "faces": [
                    {
                        "face_id": str(f.id),
                        "status": f.status,
                        "quality": f.face_quality_score,
                        "embedding_model": f.embedding_version,
                        "created_at": f.created_at.isoformat(),
                    }
                    for f in faces
                ],
            }

    def erase_user(self, user_id: uuid.UUID) -> Outcome:
        """GDPR erasure: the user's rows and every vector of theirs, in every collection."""
        with self._db.session() as session:
            user = session.scalar(select(User).where(User.user_id == user_id))
            if user is None:
                raise errors.UserNotFoundError(f"No user {user_id}")
            faces = session.execute(
                select(FaceData.id, FaceData.milvus_collection).where(FaceData.user_id == user_id)
            ).all()
            face_ids = [face_id for face_id, _ in faces]
            groups = session.scalars(
                select(FaceGroupMember.group_id).where(FaceGroupMember.face_id.in_(face_ids))
            ).all()
            session.execute(delete(FaceGroupMember).where(FaceGroupMember.face_id.in_(face_ids)))
            sessions_removed = session.execute(
                delete(RecognitionSession).where(
                    (RecognitionSession.user_id == user_id) | RecognitionSession.matched_face_id.in_(face_ids)
                )
            ).rowcount  # type: ignore[attr-defined]
            session.execute(delete(FaceData).where(FaceData.user_id == user_id))
            session.execute(update(FaceGroup).where(FaceGroup.user_id == user_id).values(user_id=None))
            session.delete(user)
            session.flush()
            for group_id in set(groups):
                self._refresh_face_count(session, group_id)
        by_collection: dict[str, list[str]] = {}
        for face_id, collection in faces:
            by_collection.setdefault(collection, []).append(str(face_id))
        vectors_removed = sum(self._index.delete(name, ids) for name, ids in by_collection.items())
        body = {
            "user_id": str(user_id),
            "erased": True,
            "faces_removed": len(face_ids),
            "vectors_removed": vectors_removed,
            "recognition_sessions_removed": int(sessions_removed or 0),
        }
        return Outcome(body, user_id=user_id)

    # --- groups -----------------------------------------------------------------------------------
    def create_group(
        self, name: str, *, description: str | None, privacy_level: str, owner: uuid.UUID | None
    ) -> dict[str, Any]:
        with self._db.session() as session:
            if owner is not None and session.scalar(select(User.id).where(User.user_id == owner)) is None:
                raise errors.UserNotFoundError(f"No user {owner} (the group owner)")
            group = FaceGroup(
                group_name=name, description=description, privacy_level=privacy_level, user_id=owner
            )
            session.add(group)
            session.flush()
            return _group_dict(group)

    def list_groups(self) -> list[dict[str, Any]]:
        with self._db.session() as session:
            groups = session.scalars(select(FaceGroup).order_by(FaceGroup.created_at)).all()
            return [_group_dict(g) for g in groups]

    def get_group(self, group_id: uuid.UUID) -> dict[str, Any]:
        with self._db.session() as session:
            group = self._group(session, group_id)
            rows = session.execute(
                select(FaceData.user_id, FaceData.id)
                .join(FaceGroupMember, FaceGroupMember.face_id == FaceData.id)
                .where(FaceGroupMember.group_id == group_id)
                .order_by(FaceGroupMember.created_at)
            )
            members: dict[str, list[str]] = {}
            for owner, face_id in rows:
                members.setdefault(str(owner), []).append(str(face_id))
            return {
                **_group_dict(group),
                "members": [{"user_id": u, "face_ids": f} for u, f in members.items()],
            }

    def delete_group(self, group_id: uuid.UUID) -> None:
        with self._db.session() as session:
            group = self._group(session, group_id)
            session.execute(delete(FaceGroupMember).where(FaceGroupMember.group_id == group_id))
            session.delete(group)

    def add_members(self, group_id: uuid.UUID, user_ids: Sequence[uuid.UUID]) -> dict[str, Any]:
        with self._db.session() as session:
            self._group(session, group_id)
            face_ids: list[uuid.UUID] = []
            for user_id in user_ids:
                found = session.scalars(
                    select(FaceData.id).where(FaceData.user_id == user_id, FaceData.status == "active")
                ).all()
                if not found:
                    raise errors.UserNotFoundError(f"No enrolled user {user_id}")
                face_ids.extend(found)
            self._add_faces_to_group(session, group_id, face_ids, added_by=None)
        return self.get_group(group_id)

    def remove_member(self, group_id: uuid.UUID, user_id: uuid.UUID) -> dict[str, Any]:
        with self._db.session() as session:
            self._group(session, group_id)
            face_ids = select(FaceData.id).where(FaceData.user_id == user_id).scalar_subquery()
            removed = session.execute(
                delete(FaceGroupMember).where(
                    FaceGroupMember.group_id == group_id, FaceGroupMember.face_id.in_(face_ids)
                )
            ).rowcount  # type: ignore[attr-defined]
            if not removed:
                raise errors.UserNotFoundError(f"User {user_id} is not a member of group {group_id}")
            self._refresh_face_count(session, group_id)
        return self.get_group(group_id)

    # --- helpers ----------------------------------------------------------------------------------
    def _verify_threshold(self, mode: VerifyMode) -> float:
        return self._thresholds.verify_strict if mode == "strict" else self._thresholds.verify_balanced

    def _user_faces(self, user_id: uuid.UUID) -> list[FaceData]:
        with self._db.session() as session:
            faces = session.scalars(
                select(FaceData).where(
                    FaceData.user_id == user_id,
                    FaceData.status == "active",
                    FaceData.milvus_collection == self.collection,
                )
            ).all()
        if not faces:
            raise errors.UserNotFoundError(f"No enrolled faces for user {user_id}")
        return list(faces)

    def _user_exists(self, user_id: uuid.UUID | None) -> bool:
        if user_id is None:
            return False
        with self._db.session() as session:
            return session.scalar(select(User.id).where(User.user_id == user_id)) is not None

    def _require_group(self, group_id: uuid.UUID) -> None:
        with self._db.session() as session:
            self._group(session, group_id)

    @staticmethod
    def _group(session: Session, group_id: uuid.UUID) -> FaceGroup:
        group = session.get(FaceGroup, group_id)
        if group is None:
            raise errors.GroupNotFoundError(f"No face group {group_id}")
        return group

    def _group_face_ids(self, group_id: uuid.UUID) -> list[str]:
        with self._db.session() as session:
            self._group(session, group_id)
            ids = session.scalars(
                select(FaceGroupMember.face_id).where(FaceGroupMember.group_id == group_id)
            ).all()
        return [str(i) for i in ids]

    def _add_faces_to_group(
        self, session: Session, group_id: uuid.UUID, face_ids: Sequence[uuid.UUID], added_by: uuid.UUID | None
    ) -> None:
        existing = set(
            session.scalars(select(FaceGroupMember.face_id).where(FaceGroupMember.group_id == group_id)).all()
        )
        for face_id in face_ids:
            if face_id not in existing:
                session.add(FaceGroupMember(group_id=group_id, face_id=face_id, added_by=added_by))
                existing.add(face_id)
        session.flush()
        self._refresh_face_count(session, group_id)

    @staticmethod
    def _refresh_face_count(session: Session, group_id: uuid.UUID) -> None:
        count = len(
            session.scalars(select(FaceGroupMember.id).where(FaceGroupMember.group_id == group_id)).all()
        )
        session.execute(update(FaceGroup).where(FaceGroup.id == group_id).values(face_count=count))

    def _session_row(
        self,
        operation: str,
        user_id: uuid.UUID | None,
        image_hash: str | None,
        result: str,
        started: float,
        ctx: RequestContext,
        *,
        matched: uuid.UUID | None = None,
        similarity: float | None = None,
        steps: dict[str, Any] | None = None,
    ) -> RecognitionSession:
        clipped = None if similarity is None else float(np.clip(similarity, -1.0, 1.0))
        return RecognitionSession(
            session_id=uuid.uuid4().hex,
            user_id=user_id,
            operation_type=operation,
            input_image_hash=image_hash,
            matched_face_id=matched,
            similarity_score=clipped,
            confidence_score=clipped,
            recognition_result=result,
            model_version=self.model.tag,
            processing_time_ms=round((time.perf_counter() - started) * 1000),
            preprocessing_steps=steps,
            request_source=ctx.request_source,
            ip_address=ctx.ip_address,
            user_agent=ctx.user_agent,
        )

    def _log_failure(
        self,
        operation: str,
        user_id: uuid.UUID | None,
        data: bytes,
        exc: errors.FaceSocialError,
        started: float,
        ctx: RequestContext,
    ) -> None:
        row = self._session_row(
            operation,
            user_id,
            hashlib.sha256(data).hexdigest() if data else None,
            "rejected",
            started,
            ctx,
            steps={"error_code": exc.code},
        )
        with self._db.session() as session:
            session.add(row)


def _group_dict(group: FaceGroup) -> dict[str, Any]:
    return {
        "group_id": str(group.id),
        "group_name": group.group_name,
        "description": group.description,
        "privacy_level": group.privacy_level,
        "owner_user_id": str(group.user_id) if group.user_id else None,
        "face_count": group.face_count,
        "created_at": group.created_at.isoformat(),
    }
