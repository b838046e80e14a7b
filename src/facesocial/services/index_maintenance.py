"""Vector index upkeep: rebuild from SQL (the source of truth), migrate to another model.

Checking and repairing SQL against the index is services/reconcile.py."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sqlalchemy import select

from facesocial import errors
from facesocial.services.face_chips import ChipVault
from facesocial.services.face_writes import FaceWriter, NewFace
from facesocial.services.reconcile import NOT_FACE_COLLECTIONS
from facesocial.store.db import Database
from facesocial.store.tables import FACE_ACTIVE, FaceData, User
from facesocial.store.vector_index import VectorIndex
from facesocial.vision.image import decode_image
from facesocial.vision.pipeline import DetectOptions, FacePipeline

_BATCH = 2000


@dataclass(frozen=True, slots=True)
class RebuildReport:
    collection: str
    vectors: int


def rebuild_index(
    database: Database, index: VectorIndex, only: Collection[str] | None = None
) -> list[RebuildReport]:
    """Refill every collection from ``face_data`` (active faces), without reading the old vectors.

    Each collection is replaced as a whole (``VectorIndex.replace_collection``): searches see the
    old content until the new one is complete. Collections no face row names are emptied.
    ``only``: these collections alone (the others are left as they are).
    """
    with database.session(readonly=True) as session:
        layout = [
            (str(collection), int(dimension))
            for collection, dimension in session.execute(
                select(FaceData.milvus_collection, FaceData.embedding_dimension).distinct()
            )
            if only is None or collection in only
        ]
    wanted = {collection for collection, _ in layout}
    for name in index.collections():
        if only is not None and name not in only:
            continue
        # Not face collections: their owner refills them from its own rows (reconcile.py).
        if name not in wanted and name not in NOT_FACE_COLLECTIONS:
            # No face row names it: empty it, but keep it (a running server's embedders write to
            # their collections without creating them again).
            index.delete(name, list(index.ids(name)))
    reports = []
    for collection, dimension in layout:
        counter = _Counter()
        index.replace_collection(collection, dimension, counter.wrap(_active_batches(database, collection)))
        reports.append(RebuildReport(collection, counter.rows))
    return reports


def unpartitioned_face_collections(index: VectorIndex) -> list[str]:
    """Face collections an older version wrote without tenant partitions (not yet rebuilt)."""
    return [
        name
        for name in index.collections()
        if name not in NOT_FACE_COLLECTIONS and index.needs_partition_rebuild(name)
    ]


def rebuild_unpartitioned(database: Database, index: VectorIndex) -> list[RebuildReport]:
    """Rebuild from SQL each face collection an older version wrote without partitions.

    Run at start-up (container.py): until then a tenant's partitioned search would not find
    that collection's faces. Collections no active face names are emptied instead. Returns one
    report per collection rebuilt; none when everything is partitioned already (the usual case).
    """
    stale = unpartitioned_face_collections(index)
    if not stale:
        return []
    reports = rebuild_index(database, index, only=stale)
    rebuilt = {report.collection for report in reports}
    # Emptied, not rebuilt: no active face names them.
    return reports + [RebuildReport(name, 0) for name in stale if name not in rebuilt]


# (face ids, their (n, dimension) embeddings, each face's tenant id as text: its partition)
Batch = tuple[list[str], npt.NDArray[np.float32], list[str]]


class _Counter:
    def __init__(self) -> None:
        self.rows = 0

    def wrap(self, batches: Iterator[Batch]) -> Iterator[Batch]:
        for ids, vectors, partitions in batches:
            self.rows += len(ids)
            yield ids, vectors, partitions


def _active_batches(database: Database, collection: str) -> Iterator[Batch]:
    with database.session(readonly=True) as session:
        rows = session.execute(
            select(FaceData.face_id, FaceData.embedding, FaceData.tenant_id)
            .where(FaceData.milvus_collection == collection, FaceData.status == FACE_ACTIVE)
            .execution_options(yield_per=_BATCH)
        )
        batch_ids: list[str] = []
        batch_vectors: list[npt.NDArray[np.float32]] = []
        batch_tenants: list[str] = []
        for face_id, blob, tenant_id in rows:
            batch_ids.append(face_id)
            batch_vectors.append(np.frombuffer(blob, dtype=np.float32))
            batch_tenants.append(str(tenant_id))
            if len(batch_ids) == _BATCH:
                yield batch_ids, np.stack(batch_vectors), batch_tenants
                batch_ids, batch_vectors, batch_tenants = [], [], []
        if batch_ids:
            yield batch_ids, np.stack(batch_vectors), batch_tenants


@dataclass(frozen=True, slots=True)
class MigrationReport:
    target_model: str
    collection: str
    re_embedded: int
    already_enrolled_users: int
    failed_faces: list[str]
    users_to_re_enrol: list[dict[str, str]]  # tenant_id and the tenant's user_id


def migrate_gallery(
    database: Database,
    index: VectorIndex,
    pipeline: FacePipeline,
    vault: ChipVault | None,
    target_model: str,
    writer: FaceWriter,
) -> MigrationReport:
    """Enrol every user in ``target_model``'s collection from their kept face chips.

    Users with a face already in the target collection are left alone. Users whose faces
    have no kept chip (chips are opt-in) cannot be re-embedded and are listed: they must
    enrol again. Nothing is deleted: each collection keeps serving its own model. New faces
    go through the same write path as registrations (services/face_writes.py).
    """
    embedder = pipeline.embedder_for(target_model)
    index.ensure_collection(embedder.collection, embedder.dimension)
    with database.session(readonly=True) as session:
        done_users = set(
            session.scalars(
                select(FaceData.user_id).where(
                    FaceData.milvus_collection == embedder.collection, FaceData.status == FACE_ACTIVE
                )
            ).all()
        )
        sources = session.execute(
            select(FaceData.id, FaceData.user_id, FaceData.face_chip).where(
                FaceData.milvus_collection != embedder.collection, FaceData.status == FACE_ACTIVE
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
            new_id = uuid.uuid4()
            writer.add_face(
                user_id,
                NewFace(
                    face_id=new_id,
                    collection=embedder.collection,
                    embedding=np.asarray(vector, dtype=np.float32),
                    model_tag=embedder.model.tag,
                    quality_score=faces.columns["quality"][0].score,
                    chip=chip,
                    registration_source=f"migrated_from:{face_id}",
                ),
            )
        except errors.FaceSocialError:
            failed.append(str(face_id))
            continue
        re_embedded += 1
        covered.add(user_id)
    stranded_ids = {uid for _, uid, _ in pending if uid not in covered}
    with database.session(readonly=True) as session:
        names = session.execute(
            select(User.tenant_id, User.external_id).where(User.user_id.in_(stranded_ids))
        ).all()
    stranded = [{"tenant_id": str(t), "user_id": str(e)} for t, e in sorted(names, key=lambda n: str(n[1]))]
    return MigrationReport(
        target_model=embedder.model.name,
        collection=embedder.collection,
        re_embedded=re_embedded,
        already_enrolled_users=len(done_users),
        failed_faces=failed,
        users_to_re_enrol=stranded,
    )
