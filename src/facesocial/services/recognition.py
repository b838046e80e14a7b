"""Face recognition use cases: register, verify (1:1), identify (1:N), for one tenant each.

Inference runs outside any transaction. Writes of face data go through
:class:`~facesocial.services.face_writes.FaceWriter`, which orders SQL and the vector index so
that a 200 means stored in both (see that module). A client's ``user_id`` is its own name for a
person, scoped to its tenant (store/recognition_repository.py); another tenant's ids neither
collide nor show.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from facesocial import errors
from facesocial.domains.registry.serving import Serving
from facesocial.services.context import RequestContext
from facesocial.services.face_cache import CachedFace, FaceCache
from facesocial.services.face_chips import ChipVault
from facesocial.services.face_writes import FaceWriter, NewFace
from facesocial.services.outcome import Outcome
from facesocial.services.principal import Principal
from facesocial.services.serving_context import DetectorVariants, ServingScope, scope_or_static
from facesocial.settings import ImageLimits, RecognitionThresholds
from facesocial.store import recognition_repository as repo
from facesocial.store.db import Database
from facesocial.store.tables import FaceData, RecognitionSession
from facesocial.store.types import utcnow
from facesocial.store.vector_index import Hit, VectorIndex
from facesocial.vision.faces import Faces
from facesocial.vision.pipeline import DetectOptions, FacePipeline, face_to_dict
from facesocial.vision.ports import Embedder, embedder_description
from facesocial.vision.probe import ProbeFace, probe_face

VerifyMode = Literal["balanced", "strict"]


class LivenessVouch(Protocol):
    """Uses a completed liveness session once for the probe face (domains/antispoofing/liveness.py)."""

    def vouch(
        self,
        token: str,
        caller: Principal,
        rgb: npt.NDArray[np.uint8],
        faces: Faces,
        user_id: uuid.UUID | None,
        operation: str,
    ) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class LivenessGate:
    """How register/verify treat ``liveness_session``: who checks it, and whether it is required."""

    sessions: Callable[[], LivenessVouch]
    # Read at each registration, so an operator's change of the setting applies at once.
    required_for_registration: Callable[[], bool] = lambda: False

    def check(
        self,
        token: str | None,
        caller: Principal,
        probe: ProbeFace,
        user_id: uuid.UUID | None,
        operation: str,
    ) -> dict[str, Any] | None:
        """The session's summary, or None when none was given and none is required.

        Raises ``LIVENESS_REQUIRED`` (403) or ``LIVENESS_SESSION_INVALID`` (422).
        """
        if token is None:
            if operation == "register" and self.required_for_registration():
                raise errors.LivenessRequiredError(
                    "Registration on this server needs a completed liveness session: send liveness_session"
                )
            return None
        return self.sessions().vouch(token, caller, probe.rgb, probe.faces, user_id, operation)


@dataclass(frozen=True, slots=True)
class Routed:
    """What serves one recognition request: the detector's pipeline view and the embedder."""

    pipeline: FacePipeline
    embedder: Embedder
    detection: Serving
    embedding: Serving
    # Every installed embedder by tag (the face_embedding slot's candidates).
    embedders: dict[str, Embedder]


class RecognitionService:
    def __init__(
        self,
        database: Database,
        index: VectorIndex,
        pipeline: FacePipeline,
        writer: FaceWriter,
        limits: ImageLimits,
        thresholds: dict[str, RecognitionThresholds],
        detect_options: DetectOptions,
        face_cache: FaceCache,
        chip_vault: ChipVault | None = None,
        liveness: LivenessGate | None = None,
        variants: DetectorVariants | None = None,
    ) -> None:
        self._variants = variants if variants is not None else DetectorVariants(pipeline)
        self._liveness = liveness
        self._db = database
        self._index = index
        self._pipeline = pipeline
        self._writer = writer
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

    def route(self, scope: ServingScope, model: str | None) -> Routed:
        """Resolve face_detection and face_embedding for this request (once each per scope).

        ``model`` (a request's ``embedding_model``, by name) pins the embedding version: no
        canary or experiment moves a caller who named its model. Raises ``UNKNOWN_MODEL`` (422).
        """
        variants = self._variants
        detection = scope.resolve("face_detection", installed=variants.installed, default=variants.default)
        pipeline = variants.pipeline(detection.version)
        by_tag = {embedder.model.tag: embedder for embedder in pipeline.embedders.values()}
        pinned = pipeline.embedder_for(model).model.tag if model is not None else None
        embedding = scope.resolve(
            "face_embedding", installed=by_tag, default=pipeline.embedder.model.tag, pinned=pinned
        )
        return Routed(pipeline, by_tag[embedding.version], detection, embedding, by_tag)

    def probe(
        self,
        data: bytes,
        face_index: int | None,
        *,
        require_single: bool,
        model: str | None = None,
        pipeline: FacePipeline | None = None,
    ) -> ProbeFace:
        """The face of ``data`` a request is about, embedded (see vision/probe.py); ``pipeline``:
        the routed detector's view (default: the settings' pipeline)."""
        return probe_face(
            pipeline or self._pipeline,
            data,
            limits=self._limits,
            options=self._detect,
            face_index=face_index,
            require_single=require_single,
            model=model,
        )

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
        liveness_session: str | None = None,
        scope: ServingScope | None = None,
    ) -> Outcome:
        """Enrol one face of the caller's user ``user_id`` (created on first enrolment).

        ``liveness_session``: a completed liveness session of the same face, used up here.
        ``scope``: the request's routing (:meth:`route`). Dual enrolment: galleries are bound
        to their embedding model, so the face is also embedded with every other installed
        version serving face_embedding now (production, canary, running experiment arms) and
        stored in that version's collection (``companion_faces`` in the answer), so that a
        verify or identify routed to any arm finds the user. Costs one more embedding of the
        found face (median 4 ms dlib_resnet_v1, 10 ms faceres, 1 ms mobileface on a 2-core CPU;
        docs/api.md) and one more row and vector per extra version. A pinned ``model`` enrols
        in that model only: the caller chose its gallery.
        """
        started = time.perf_counter()
        scope = scope_or_static(scope)
        try:
            if not consent:
                raise errors.ConsentRequiredError(
                    "Registration stores a biometric template: send consent=true once the user has agreed"
                )
            if group_id is not None:
                with self._db.session(readonly=True) as session:
                    repo.require_group(session, caller.tenant_id, group_id)
            routed = self.route(scope, model)
            probe = self.probe(
                data,
                face_index,
                require_single=True,
                model=routed.embedder.model.name,
                pipeline=routed.pipeline,
            )
            liveness = self._check_liveness(liveness_session, caller, probe, user_id, "register")
        except errors.FaceSocialError as exc:
            self._log_failure("register", None, data, exc, started, ctx)
            raise
        embedder = probe.embedder
        quality = probe.faces.columns["quality"][0]
        described = face_to_dict(probe.faces, 0)
        face = NewFace(
            face_id=uuid.uuid4(),
            collection=embedder.collection,
            embedding=probe.embedding.astype(np.float32),
            model_tag=embedder.model.tag,
            image_hash=probe.image_hash,
            quality_score=quality.score,
            landmarks=described.get("landmarks"),
            attributes={"bbox": described["bbox"], "quality": quality.as_dict()},
            chip=self._vault.seal(probe.rgb, probe.faces.boxes[0]) if self._vault else None,
            registration_source=registration_source or ctx.request_source,
            ip_address=ctx.ip_address,
        )
        companions = [] if model is not None else self._companions(scope, routed, probe, face)
        internal = self._writer.enroll(
            caller.tenant_id, user_id, face, group_id=group_id, companions=[c for c, _ in companions]
        )
        self._report(scope, routed, probe, started, operation="register", user_id=str(user_id))
        self._record(
            self._session_row(
                "register", internal, probe.image_hash, "success", started, ctx, embedder.model.tag,
                matched=face.face_id,
            )
        )  # fmt: skip
        body = {
            "user_id": str(user_id),
            "face_id": str(face.face_id),
            "faces_detected": probe.faces_detected,
            "face": probe.describe(),
            "embedding_model": embedder_description(embedder),
            "collection": embedder.collection,
            "group_id": str(group_id) if group_id else None,
            "face_chip_kept": self._vault is not None,
            "liveness": liveness,
            "companion_faces": [
                {
                    "face_id": str(companion.face_id),
                    "embedding_model": embedder_description(other),
                    "collection": companion.collection,
                }
                for companion, other in companions
            ],
            "serving": scope.serving_body(),
        }
        # The audit log speaks in the tenant's own ids (with its API key beside them).
        return Outcome(body, user_id=user_id, confidence=quality.score, model_version=embedder.model.tag)

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
        liveness_session: str | None = None,
        scope: ServingScope | None = None,
    ) -> Outcome:
        """1:1 against the caller's user ``user_id`` (best of their faces) or a second image.

        ``liveness_session``: a completed liveness session of the probe face, used up here.
        ``scope``: the request's routing; both images run the same detector and embedder, and
        the user's faces are those of the routed embedder's collection.
        """
        started = time.perf_counter()
        scope = scope_or_static(scope)
        matched_face: uuid.UUID | None = None
        internal: uuid.UUID | None = None
        try:
            routed = self.route(scope, model)
            embedder = routed.embedder
            used_threshold = threshold if threshold is not None else self._verify_threshold(embedder, mode)
            if (user_id is None) == (other is None):
                raise errors.ValidationFailedError("Send either user_id or a second image (image2)")
            if user_id is not None:
                internal, gallery = self._user_gallery(caller.tenant_id, user_id, embedder)
            probe = self.probe(
                data, face_index, require_single=False, model=embedder.model.name, pipeline=routed.pipeline
            )
            liveness = self._check_liveness(liveness_session, caller, probe, user_id, "verify")
            if user_id is not None:
                scores = np.stack([face.embedding for face in gallery]) @ probe.embedding
                best = int(np.argmax(scores))
                similarity, matched_face = float(scores[best]), gallery[best].face_id
                compared: dict[str, Any] = {"user_id": str(user_id), "faces_compared": len(gallery)}
            else:
                assert other is not None
                second = self.probe(
                    other, None, require_single=False, model=embedder.model.name, pipeline=routed.pipeline
                )
                similarity = float(np.dot(second.embedding, probe.embedding))
                compared = {"face2": second.describe(), "faces_detected2": second.faces_detected}
        except errors.FaceSocialError as exc:
            self._log_failure("verify", internal, data, exc, started, ctx)
            raise
        match = similarity >= used_threshold
        self._report(scope, routed, probe, started, operation="verify", similarity=similarity, match=match)
        self._record(
            self._session_row(
                "verify", internal, probe.image_hash, "success" if match else "failed", started, ctx,
                embedder.model.tag, matched=matched_face if match else None, similarity=similarity,
            ),
            counted_face=matched_face if match else None,
        )  # fmt: skip
        body = {
            "match": match,
            "similarity": round(similarity, 4),
            "threshold": used_threshold,
            "threshold_mode": "custom" if threshold is not None else mode,
            "face": probe.describe(),
            "faces_detected": probe.faces_detected,
            "embedding_model": embedder_description(embedder),
            "liveness": liveness,
            **compared,
            "serving": scope.serving_body(),
        }
        return Outcome(body, user_id=user_id, confidence=similarity, model_version=embedder.model.tag)

    def _check_liveness(
        self,
        token: str | None,
        caller: Principal,
        probe: ProbeFace,
        user_id: uuid.UUID | None,
        operation: str,
    ) -> dict[str, Any] | None:
        if self._liveness is None:
            if token is not None:
                raise errors.LivenessSessionInvalidError("Liveness sessions are not available on this server")
            return None
        return self._liveness.check(token, caller, probe, user_id, operation)

    def _user_gallery(
        self, tenant_id: uuid.UUID, user_id: uuid.UUID, embedder: Embedder
    ) -> tuple[uuid.UUID, list[CachedFace]]:
        """The internal id and active templates of this model, through ``face_cache:{id}``."""
        with self._db.session(readonly=True) as session:
            internal = repo.require_user(session, tenant_id, user_id).user_id
        faces = self._cache.get(internal)
        if faces is None:
            with self._db.session(readonly=True) as session:
                rows = repo.active_faces(session, internal)
            faces = [CachedFace(fid, coll, np.frombuffer(blob, dtype=np.float32)) for fid, coll, blob in rows]
            self._cache.put(internal, faces)
        mine = [face for face in faces if face.collection == embedder.collection]
        if not mine:
            raise errors.UserNotFoundError(
                f"No faces of user {user_id} are enrolled with {embedder.model.name}"
            )
        return internal, mine

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
        scope: ServingScope | None = None,
    ) -> Outcome:
        """1:N within the caller's tenant (or one of its groups): ranked people, or unknown.

        ``scope``: the request's routing; the routed embedder's collection is searched.
        """
        started = time.perf_counter()
        scope = scope_or_static(scope)
        try:
            routed = self.route(scope, model)
            embedder = routed.embedder
            used_threshold = threshold if threshold is not None else self.thresholds(embedder).identify
            allowed = self._group_faces(embedder, group_id, caller)
            probe = self.probe(
                data, face_index, require_single=False, model=embedder.model.name, pipeline=routed.pipeline
            )
        except errors.FaceSocialError as exc:
            self._log_failure("identify", None, data, exc, started, ctx)
            raise
        # A person may have several faces: over-fetch, then keep each person's best face.
        partition = str(caller.tenant_id)  # the tenant's partition: no other tenant's faces
        hits = self._index.search(
            embedder.collection, probe.embedding[None, :], top_k * 5, allowed, partition=partition
        )[0]
        candidates = self._rank_people(caller.tenant_id, hits, used_threshold, top_k)
        best = candidates[0] if candidates else None
        self._report(
            scope, routed, probe, started, operation="identify",
            similarity=best["similarity"] if best else None, match=best is not None,
        )  # fmt: skip
        self._record(
            self._session_row(
                "identify", None, probe.image_hash,
                "success" if best else "failed", started, ctx, embedder.model.tag,
                matched=uuid.UUID(best["face_id"]) if best else None,
                similarity=best["similarity"] if best else None,
            )
        )  # fmt: skip
        body = {
            "identified": best is not None,
            "unknown": best is None,
            "candidates": candidates,
            "threshold": used_threshold,
            "top_k": top_k,
            "group_id": str(group_id) if group_id else None,
            "gallery_size": self._gallery_size(embedder, allowed, partition),
            "face": probe.describe(),
            "faces_detected": probe.faces_detected,
            "embedding_model": embedder_description(embedder),
            "serving": scope.serving_body(),
        }
        return Outcome(
            body,
            confidence=best["similarity"] if best else None,
            model_version=embedder.model.tag,
        )

    def _group_faces(
        self, embedder: Embedder, group_id: uuid.UUID | None, caller: Principal
    ) -> list[str] | None:
        """The group's face ids when a group is given (None: the whole tenant partition).

        The tenant itself needs no id list: it is the index partition searched. Raises
        GroupNotFoundError for a group that is not the caller tenant's.
        """
        if group_id is None:
            return None
        with self._db.session(readonly=True) as session:
            repo.require_group(session, caller.tenant_id, group_id)
            return repo.group_face_ids(session, group_id, embedder.collection)

    def _gallery_size(self, embedder: Embedder, allowed: list[str] | None, partition: str) -> int:
        if allowed is not None:
            return len(allowed)
        return self._index.count(embedder.collection, partition=partition)

    def _rank_people(
        self, tenant_id: uuid.UUID, hits: Sequence[Hit], threshold: float, top_k: int
    ) -> list[dict[str, Any]]:
        passing = [hit for hit in hits if hit.score >= threshold]
        if not passing:
            return []
        with self._db.session(readonly=True) as session:
            # Only the tenant's active faces: a stale vector, a face still pending or being
            # erased, or one of another tenant is never named.
            owners = repo.face_owners(session, tenant_id, [hit.id for hit in passing])
        people: dict[uuid.UUID, dict[str, Any]] = {}
        for hit in passing:  # already best-first
            owner = owners.get(hit.id)
            if owner is None or owner in people:
                continue  # not the caller's, or a weaker face of a listed person
            people[owner] = {
                "rank": len(people) + 1,
                "user_id": str(owner),
                "face_id": hit.id,
                "similarity": round(hit.score, 4),
            }
            if len(people) == top_k:
                break
        return list(people.values())

    # --- serving ----------------------------------------------------------------------------------
    def _companions(
        self, scope: ServingScope, routed: Routed, probe: ProbeFace, face: NewFace
    ) -> list[tuple[NewFace, Embedder]]:
        """The same face embedded by every other version serving face_embedding now."""
        out: list[tuple[NewFace, Embedder]] = []
        for tag in scope.serving_versions("face_embedding", routed.embedders):
            if tag == routed.embedding.version:
                continue
            other = routed.embedders[tag]  # its collection exists: __init__ ensures every embedder's
            vector = routed.pipeline.embed(probe.rgb, probe.faces, other.model.name).columns["embedding"][0]
            companion = replace(
                face,
                face_id=uuid.uuid4(),
                collection=other.collection,
                embedding=np.asarray(vector, dtype=np.float32),
                model_tag=other.model.tag,
            )
            out.append((companion, other))
        return out

    def _report(
        self,
        scope: ServingScope,
        routed: Routed,
        probe: ProbeFace,
        started: float,
        *,
        operation: str,
        similarity: float | None = None,
        match: bool | None = None,
        user_id: str | None = None,
    ) -> None:
        """Record the request's two inferences: the detector's and the embedder's."""
        quality = float(probe.faces.columns["quality"][0].score)
        height, width = probe.rgb.shape[:2]
        scope.record(
            routed.detection,
            "face_detection",
            started=started,
            result={"operation": operation, "faces_detected": probe.faces_detected},
            confidences=[float(probe.faces.confidence[0])],
            features={
                "faces": float(probe.faces_detected),
                "width": float(width),
                "height": float(height),
                "quality": quality,
            },
            input_hash=probe.image_hash,
        )
        features = {"quality": quality, "embedding_norm": float(np.linalg.norm(probe.embedding))}
        if similarity is not None:
            features["similarity"] = float(similarity)
        result: dict[str, Any] = {"operation": operation}
        if match is not None:
            result["match"] = match
        if user_id is not None:
            result["user_id"] = user_id
        scope.record(
            routed.embedding,
            "face_recognition",
            started=started,
            result=result,
            confidences=[similarity] if similarity is not None else [],
            features=features,
            input_hash=probe.image_hash,
        )

    # --- helpers ----------------------------------------------------------------------------------
    def _verify_threshold(self, embedder: Embedder, mode: VerifyMode) -> float:
        thresholds = self.thresholds(embedder)
        return thresholds.verify_strict if mode == "strict" else thresholds.verify_balanced

    def _record(self, row: RecognitionSession, counted_face: uuid.UUID | None = None) -> None:
        """Write a session row (and count a verification of ``counted_face``).

        The user or face it names may have been erased since the request read them; the row is
        then kept without those links rather than failing a request that was answered.
        """
        try:
            with self._db.session() as session:
                session.add(row)
                if counted_face is not None:
                    session.execute(
                        update(FaceData)
                        .where(FaceData.id == counted_face)
                        .values(verification_count=FaceData.verification_count + 1, last_used_at=utcnow())
                    )
        except IntegrityError:
            row.user_id, row.matched_face_id = None, None
            with self._db.session() as session:
                session.add(row)

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
        self._record(
            self._session_row(
                operation,
                user_id,
                hashlib.sha256(data).hexdigest() if data else None,
                "rejected",
                started,
                ctx,
                None,
                steps={"error_code": exc.code},
            )
        )
