"""Vector index upkeep: rebuild from SQL (the source of truth), migrate to another model."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select

from facesocial import errors
from facesocial.services.face_cache import FaceCache
from facesocial.services.face_chips import ChipVault
from facesocial.store.db import Database
from facesocial.store.tables import FaceData, FaceGroupMember
from facesocial.store.vector_index import VectorIndex
from facesocial.vision.image import decode_image
from facesocial.vision.pipeline import DetectOptions, FacePipeline

_BATCH = 2000


@dataclass(frozen=True, slots=True)
class RebuildReport:
    collection: str
    vectors: int


def rebuild_index(database: Database, index: VectorIndex) -> list[RebuildReport]:
    """Drop every collection and refill each from ``face_data`` (active faces only)."""
    with database.session() as session:
        layout = session.execute(
            select(FaceData.milvus_collection, FaceData.embedding_dimension).distinct()
        ).all()
    for name in index.collections():
        index.drop(name)
    reports = []
    for collection, dimension in layout:
        index.ensure_collection(collection, dimension)
        total = 0
        with database.session() as session:
            rows = session.execute(
                select(FaceData.face_id, FaceData.embedding)
                .where(FaceData.milvus_collection == collection, FaceData.status == "active")
                .execution_options(yield_per=_BATCH)
            )
            batch_ids: list[str] = []
            batch_vectors: list[np.ndarray] = []
            for face_id, blob in rows:
                batch_ids.append(face_id)
                batch_vectors.append(np.frombuffer(blob, dtype=np.float32))
                if len(batch_ids) == _BATCH:
                    index.upsert(collection, batch_ids, np.stack(batch_vectors))
                    total += len(batch_ids)
                    batch_ids, batch_vectors = [], []
            if batch_ids:
                index.upsert(collection, batch_ids, np.stack(batch_vectors))
                total += len(batch_ids)
        reports.append(RebuildReport(collection, total))
    flush = getattr(index, "flush", None)
    if callable(flush):
        flush()  # milvus-lite indexes only flushed rows
    return reports


@dataclass(frozen=True, slots=True)
class MigrationReport:
    target_model: str
    collection: str
    re_embedded: int
    already_enrolled_users: int
    failed_faces: list[str]
    users_to_re_enrol: list[str]


def migrate_gallery(
    database: Database,
    index: VectorIndex,
    pipeline: FacePipeline,
    vault: ChipVault | None,
    target_model: str,
    face_cache: FaceCache | None = None,
) -> MigrationReport:
    """Enrol every user in ``target_model``'s collection from their kept face chips.

    Users with a face already in the target collection are left alone. Users whose faces
    have no kept chip (chips are opt-in) cannot be re-embedded and are listed: they must
    enrol again. Nothing is deleted: each collection keeps serving its own model.
    """
    embedder = pipeline.embedder_for(target_model)
    index.ensure_collection(embedder.collection, embedder.dimension)
    with database.session() as session:
        done_users = set(
            session.scalars(
                select(FaceData.user_id).where(
                    FaceData.milvus_collection == embedder.collection, FaceData.status == "active"
                )
            ).all()
        )
        sources = session.execute(
            select(FaceData.id, FaceData.user_id, FaceData.face_chip).where(
                FaceData.milvus_collection != embedder.collection, FaceData.status == "active"
            )
        ).all()
    pending = [(fid, uid, chip) for fid, uid, chip in sources if uid not in done_users]
    re_embedded, failed = 0, []
    covered: set[uuid.UUID] = set()
    for face_id, user_id, chip in pending:
        if chip is None or vault is None:
            continue
        try:
            rgb = decode_image(vault.open(chip)).rgb
            faces = pipeline.detect(
                rgb, DetectOptions(min_face_size=20, max_faces=1, detection_confidence=0.5)
            )
            if len(faces) == 0:
                raise errors.NoFaceFoundError()
            vector = pipeline.embed(rgb, faces, target_model).columns["embedding"][0]
        except errors.FaceSocialError:
            failed.append(str(face_id))
            continue
        new_id = uuid.uuid4()
        with database.session() as session:
            session.add(
                FaceData(
                    id=new_id,
                    user_id=user_id,
                    face_id=str(new_id),
                    image_hash=None,
                    face_quality_score=faces.columns["quality"][0].score,
                    embedding_version=embedder.model.tag,
                    embedding_dimension=embedder.dimension,
                    milvus_collection=embedder.collection,
                    embedding=np.asarray(vector, dtype=np.float32).tobytes(),
                    face_chip=chip,
                    registration_source=f"migrated_from:{face_id}",
                )
            )
            for group_id in session.scalars(
                select(FaceGroupMember.group_id).where(FaceGroupMember.face_id == face_id)
            ).all():
                session.add(FaceGroupMember(group_id=group_id, face_id=new_id))
        index.upsert(embedder.collection, [str(new_id)], np.asarray(vector, dtype=np.float32)[None, :])
        re_embedded += 1
        covered.add(user_id)
        if face_cache is not None:
            face_cache.drop(user_id)
    stranded = sorted({str(uid) for _, uid, _ in pending if uid not in covered})
    return MigrationReport(
        target_model=embedder.model.name,
        collection=embedder.collection,
        re_embedded=re_embedded,
        already_enrolled_users=len(done_users),
        failed_faces=failed,
        users_to_re_enrol=stranded,
    )
