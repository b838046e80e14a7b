"""Face recognition use cases: register, verify (1:1), identify (1:N).

Inference runs outside any transaction; SQL is written first and the vector index after the
commit, so a failed request never leaves a vector without its row. The index can always be
rebuilt from ``face_data.embedding``. Every use case is scoped to the caller's tenant.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from facesocial import errors
from facesocial.services.context import RequestContext
from facesocial.services.face_cache import CachedFace, FaceCache
from facesocial.services.face_chips import ChipVault
from facesocial.services.groups import add_faces_to_group, group_face_ids
from facesocial.services.outcome import Outcome
from facesocial.services.principal import Principal
from facesocial.services.tenancy import require_group, require_user, visible_face_ids
from facesocial.settings import ImageLimits, RecognitionThresholds
from facesocial.store.db import Database
from facesocial.store.tables import FaceData, RecognitionSession, User
from facesocial.store.types import utcnow
from facesocial.store.vector_index import Hit, VectorIndex
from facesocial.vision.faces import Faces
from facesocial.vision.image import decode_image
from facesocial.vision.pipeline import DetectOptions, FacePipeline, face_to_dict
from facesocial.vision.ports import Embedder
from facesocial.vision.quality import FaceQuality

VerifyMode = Literal["balanced", "strict"]


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
        vectors: npt.NDArray[np.float32] = self.faces.columns["embedding"][0]
        return vectors

    def describe(self) -> dict[str, Any]:
        item = face_to_dict(self.faces, 0)
        item["face_index"] = self.face_index
        return item


class RecognitionService:
    def __init__(
        self,
        database: Database,
        index: VectorIndex,
        pipeline: FacePipeline,
        limits: ImageLimits,
        thresholds: dict[str, RecognitionThresholds],
        detect_options: DetectOptions,
        face_cache: FaceCache,
        chip_vault: ChipVault | None = None,
    ) -> None:
        self._db = database
        self._index = index
        self._pipeline = pipeline
        self._limits = limits
        self._thresholds = thresholds
        self._detect = detect_options
        self._cache = face_cache
        self._vault = chip_vault
        # Galleries are bound to their model: one collection per embedder, never mixed.
        for embedder in pipeline.embedders.values():
            self._index.ensure_collection(embedder.collection, embedder.dimension)

    @property
    def collection(self) -> str:
        """The default embedding model's collection."""
        return self._pipeline.embedder.collection

    def embedder(self, model: str | None) -> Embedder:
        return self._pipeline.embedder_for(model)

    def thresholds(self, embedder: Embedder) -> RecognitionThresholds:
        found = self._thresholds.get(embedder.model.name)
        if found is None:
            raise errors.ModelUnavailableError(
                f"No calibrated thresholds for {embedder.model.name}: run `facesocial eval verification`"
            )
        return found

    # --- probe ------------------------------------------------------------------------------------
    def probe(
        self, data: bytes, face_index: int | None, *, require_single: bool, model: str | None = None
    ) -> ProbeFace:
        """Decode, detect and embed the chosen face of an image.

        With several faces: ``face_index`` picks one (0 = largest); otherwise registration
        refuses (``MULTIPLE_FACES``) and comparisons use the largest face.
        """
        embedder = self.embedder(model)
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
        chosen = self._pipeline.embed(image.rgb, faces[[face_index]], embedder.model.name)
        return ProbeFace(image.sha256, chosen, len(faces), face_index, embedder, image.rgb)

    # --- register ---------------------------------------------------------------------------------
    def register(
        self,
        user_id: uuid.UUID,
        data: bytes,
        *,
        consent: bool,
        caller: Principal,
        ctx: RequestContext,
        face_index: int | None = None,
        group_id: uuid.UUID | None = None,
        registration_source: str | None = None,
        model: str | None = None,
    ) -> Outcome:
        started = time.perf_counter()
        try:
            if not consent:
                raise errors.ConsentRequiredError(
                    "Registration stores a biometric template: send consent=true once the user has agreed"
                )
            self._check_register_scope(user_id, group_id, caller)
            probe = self.probe(data, face_index, require_single=True, model=model)
        except errors.FaceSocialError as exc:
            self._log_failure("register", None, data, exc, started, ctx)
            raise
        face_uuid = uuid.uuid4()
        embedder = probe.embedder
        quality = probe.faces.columns["quality"][0]
        described = face_to_dict(probe.faces, 0)
        try:
            self._store_registration(
                user_id,
                face_uuid,
                probe,
                quality,
                described,
                caller,
                ctx,
                group_id,
                registration_source,
                started,
            )
        except IntegrityError as exc:
            # Another tenant enrolled the same user_id between the check and this commit.
            raise errors.UserIdConflictError(f"user_id {user_id} is enrolled by another tenant") from exc
        # After the commit: a crash here leaves a row without its vector, which
        # `facesocial index rebuild` repairs; the reverse (an orphan vector) cannot happen.
        self._index.upsert(embedder.collection, [str(face_uuid)], probe.embedding[None, :])
        self._cache.drop(user_id)
        body = {
            "user_id": str(user_id),
            "face_id": str(face_uuid),
            "faces_detected": probe.faces_detected,
            "face": probe.describe(),
            "embedding_model": embedder.model.as_dict(),
            "collection": embedder.collection,
            "group_id": str(group_id) if group_id else None,
            "face_chip_kept": self._vault is not None,
        }
        return Outcome(body, user_id=user_id, confidence=quality.score, model_version=embedder.model.tag)

    def _store_registration(
        self,
        user_id: uuid.UUID,
        face_uuid: uuid.UUID,
        probe: ProbeFace,
        quality: FaceQuality,
        described: dict[str, Any],
        caller: Principal,
        ctx: RequestContext,
        group_id: uuid.UUID | None,
        registration_source: str | None,
        started: float,
    ) -> None:
        embedder = probe.embedder
        with self._db.session() as session:
            user = session.scalar(select(User).where(User.user_id == user_id))
            now = utcnow()
            if user is None:
                user = User(
                    user_id=user_id,
                    face_id=face_uuid,
                    consent_given=True,
                    consent_timestamp=now,
                    tenant_id=caller.tenant_id,
                )
                session.add(user)
            else:
                user.consent_given, user.consent_timestamp, user.deleted_at = True, now, None
                user.face_id = user.face_id or face_uuid
            session.flush()
            session.add(
                FaceData(
                    id=face_uuid,
                    user_id=user_id,
                    face_id=str(face_uuid),
                    image_hash=probe.image_hash,
                    face_quality_score=quality.score,
                    face_landmarks=described.get("landmarks"),
                    face_attributes={"bbox": described["bbox"], "quality": quality.as_dict()},
                    embedding_version=embedder.model.tag,
                    embedding_dimension=int(probe.embedding.shape[0]),
                    milvus_collection=embedder.collection,
                    embedding=probe.embedding.astype(np.float32).tobytes(),
                    face_chip=self._vault.seal(probe.rgb, probe.faces.boxes[0]) if self._vault else None,
                    registration_source=registration_source or ctx.request_source,
                    ip_address=ctx.ip_address,
                )
            )
            session.flush()
            if group_id is not None:
                add_faces_to_group(session, group_id, [face_uuid])
            session.add(
                self._session_row(
                    "register", user_id, probe.image_hash, "success", started, ctx, embedder.model.tag,
                    matched=face_uuid,
                )
            )  # fmt: skip

    def _check_register_scope(
        self, user_id: uuid.UUID, group_id: uuid.UUID | None, caller: Principal
    ) -> None:
        with self._db.session() as session:
            existing = session.execute(select(User.tenant_id).where(User.user_id == user_id)).first()
            if existing is not None and not caller.is_admin and existing.tenant_id != caller.tenant_id:
                raise errors.UserIdConflictError(f"user_id {user_id} is enrolled by another tenant")
            if group_id is not None:
                require_group(session, group_id, caller)

    # --- verify -----------------------------------------------------------------------------------
    def verify(
        self,
        data: bytes,
        *,
        caller: Principal,
        ctx: RequestContext,
        user_id: uuid.UUID | None = None,
        other: bytes | None = None,
        mode: VerifyMode = "balanced",
        threshold: float | None = None,
        face_index: int | None = None,
        model: str | None = None,
    ) -> Outcome:
        started = time.perf_counter()
        matched_face: uuid.UUID | None = None
        try:
            embedder = self.embedder(model)
            used_threshold = threshold if threshold is not None else self._verify_threshold(embedder, mode)
            if (user_id is None) == (other is None):
                raise errors.ValidationFailedError("Send either user_id or a second image (image2)")
            if user_id is not None:
                gallery = self._user_gallery(user_id, embedder, caller)
            probe = self.probe(data, face_index, require_single=False, model=model)
            if user_id is not None:
                scores = np.stack([face.embedding for face in gallery]) @ probe.embedding
                best = int(np.argmax(scores))
                similarity, matched_face = float(scores[best]), gallery[best].face_id
                compared: dict[str, Any] = {"user_id": str(user_id), "faces_compared": len(gallery)}
            else:
                assert other is not None
                second = self.probe(other, None, require_single=False, model=model)
                similarity = float(np.dot(second.embedding, probe.embedding))
                compared = {"face2": second.describe(), "faces_detected2": second.faces_detected}
        except errors.FaceSocialError as exc:
            known = user_id if user_id is not None and self._user_visible(user_id, caller) else None
            self._log_failure("verify", known, data, exc, started, ctx)
            raise
        match = similarity >= used_threshold
        with self._db.session() as session:
            session.add(
                self._session_row(
                    "verify", user_id, probe.image_hash, "success" if match else "failed", started, ctx,
                    embedder.model.tag, matched=matched_face if match else None, similarity=similarity,
                )
            )  # fmt: skip
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
            "embedding_model": embedder.model.as_dict(),
            **compared,
        }
        return Outcome(body, user_id=user_id, confidence=similarity, model_version=embedder.model.tag)

    def _user_gallery(self, user_id: uuid.UUID, embedder: Embedder, caller: Principal) -> list[CachedFace]:
        """The user's active templates of this model, through ``face_cache:{user_id}``."""
        with self._db.session() as session:
            require_user(session, user_id, caller)
        faces = self._cache.get(user_id)
        if faces is None:
            with self._db.session() as session:
                rows = session.execute(
                    select(FaceData.id, FaceData.milvus_collection, FaceData.embedding).where(
                        FaceData.user_id == user_id, FaceData.status == "active"
                    )
                ).all()
            faces = [CachedFace(fid, coll, np.frombuffer(blob, dtype=np.float32)) for fid, coll, blob in rows]
            self._cache.put(user_id, faces)
        mine = [face for face in faces if face.collection == embedder.collection]
        if not mine:
            raise errors.UserNotFoundError(
                f"No faces of user {user_id} are enrolled with {embedder.model.name}"
            )
        return mine

    # --- identify ---------------------------------------------------------------------------------
    def identify(
        self,
        data: bytes,
        *,
        caller: Principal,
        ctx: RequestContext,
        top_k: int = 5,
        group_id: uuid.UUID | None = None,
        threshold: float | None = None,
        face_index: int | None = None,
        model: str | None = None,
    ) -> Outcome:
        started = time.perf_counter()
        try:
            embedder = self.embedder(model)
            used_threshold = threshold if threshold is not None else self.thresholds(embedder).identify
            allowed = self._searchable(embedder, group_id, caller)
            probe = self.probe(data, face_index, require_single=False, model=model)
        except errors.FaceSocialError as exc:
            self._log_failure("identify", None, data, exc, started, ctx)
            raise
        # A person may have several faces: over-fetch, then keep each person's best face.
        hits = self._index.search(embedder.collection, probe.embedding[None, :], top_k * 5, allowed)[0]
        candidates = self._rank_people(hits, used_threshold, top_k)
        best = candidates[0] if candidates else None
        with self._db.session() as session:
            session.add(
                self._session_row(
                    "identify", uuid.UUID(best["user_id"]) if best else None, probe.image_hash,
                    "success" if best else "failed", started, ctx, embedder.model.tag,
                    matched=uuid.UUID(best["face_id"]) if best else None,
                    similarity=best["similarity"] if best else (hits[0].score if hits else None),
                )
            )  # fmt: skip
        body = {
            "identified": best is not None,
            "unknown": best is None,
            "candidates": candidates,
            "threshold": used_threshold,
            "top_k": top_k,
            "group_id": str(group_id) if group_id else None,
            "gallery_size": len(allowed) if allowed is not None else self._index.count(embedder.collection),
            "face": probe.describe(),
            "faces_detected": probe.faces_detected,
            "embedding_model": embedder.model.as_dict(),
        }
        return Outcome(
            body,
            user_id=uuid.UUID(best["user_id"]) if best else None,
            confidence=best["similarity"] if best else None,
            model_version=embedder.model.tag,
        )

    def _searchable(
        self, embedder: Embedder, group_id: uuid.UUID | None, caller: Principal
    ) -> list[str] | None:
        """Face ids the search may return: the caller's tenant, narrowed to a group if given."""
        with self._db.session() as session:
            tenant = visible_face_ids(session, caller, embedder.collection)
            if group_id is None:
                return tenant
            require_group(session, group_id, caller)
            members = group_face_ids(session, group_id, embedder.collection)
        return members if tenant is None else sorted(set(members) & set(tenant))

    def _rank_people(self, hits: Sequence[Hit], threshold: float, top_k: int) -> list[dict[str, Any]]:
        passing = [hit for hit in hits if hit.score >= threshold]
        if not passing:
            return []
        with self._db.session() as session:
            owners = dict(
                session.execute(
                    select(FaceData.face_id, FaceData.user_id).where(
                        FaceData.face_id.in_([hit.id for hit in passing]), FaceData.status == "active"
                    )
                ).all()
            )
        people: dict[uuid.UUID, dict[str, Any]] = {}
        for hit in passing:  # already best-first
            owner = owners.get(hit.id)
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

    # --- helpers ----------------------------------------------------------------------------------
    def _verify_threshold(self, embedder: Embedder, mode: VerifyMode) -> float:
        thresholds = self.thresholds(embedder)
        return thresholds.verify_strict if mode == "strict" else thresholds.verify_balanced

    def _user_visible(self, user_id: uuid.UUID, caller: Principal) -> bool:
        with self._db.session() as session:
            try:
                require_user(session, user_id, caller)
            except errors.UserNotFoundError:
                return False
            return True

    def _session_row(
        self,
        operation: str,
        user_id: uuid.UUID | None,
        image_hash: str | None,
        result: str,
        started: float,
        ctx: RequestContext,
        model_tag: str | None,
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
            model_version=model_tag,
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
            None,
            steps={"error_code": exc.code},
        )
        with self._db.session() as session:
            session.add(row)
