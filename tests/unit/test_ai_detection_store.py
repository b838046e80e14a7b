"""SkyGate's storage on a migrated SQLite: the migration, the weights table, the metadata document port."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import delete, inspect, select

from facesocial import errors
from facesocial.domains.ai_detection.catalogue import DEFAULT_WEIGHTS, DESCRIPTIONS
from facesocial.domains.ai_detection.metadata_store import SqlDetectionMetadataStore
from facesocial.domains.ai_detection.methods_repo import MethodsRepository, MethodUpdate
from facesocial.forensics.ai_image import report
from facesocial.store import migrate
from facesocial.store.db import Database
from facesocial.store.tables import AiDetectionResult, AiUpload, DetectionMetadata, DetectionMethod
from facesocial.store.types import utcnow

TABLES = {
    "uploads",
    "detection_results",
    "detection_methods",
    "method_results",
    "detection_metadata",
    "report_images",
}


@pytest.fixture
def database(tmp_path: Path) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'sky.db'}")
    migrate.upgrade(db)
    return db


def test_the_migration_creates_and_the_service_seeds_and_it_goes_down_cleanly(database: Database) -> None:
    assert set(inspect(database.engine).get_table_names()) >= TABLES
    MethodsRepository(database).ensure()
    with database.session(readonly=True) as session:
        rows = list(session.scalars(select(DetectionMethod)))
    assert {r.method_name: float(r.weight) for r in rows} == DEFAULT_WEIGHTS
    assert {r.method_name: r.description for r in rows} == DESCRIPTIONS
    assert {r.method_name for r in rows} == set(report.METHODS)
    migrate.downgrade(database, "0010_accounts")
    assert not TABLES & set(inspect(database.engine).get_table_names())
    migrate.upgrade(database)
    assert set(inspect(database.engine).get_table_names()) >= TABLES


def test_weights_are_updated_all_or_nothing(database: Database) -> None:
    methods = MethodsRepository(database)
    before = methods.weights()
    with pytest.raises(errors.MethodNotFoundError):
        methods.update([MethodUpdate(report.ELA, weight=0.0), MethodUpdate("astrology", weight=1.0)])
    assert methods.weights() == before
    with pytest.raises(errors.ValidationFailedError):
        methods.update([MethodUpdate(report.ELA, weight=1.0), MethodUpdate(report.ELA, weight=2.0)])
    methods.update([MethodUpdate(report.ELA, weight=1.234), MethodUpdate(report.NOISE, is_active=False)])
    after = methods.weights()
    assert after[report.ELA].weight == 1.23 and after[report.ELA].is_active
    assert not after[report.NOISE].is_active and after[report.NOISE].weight == before[report.NOISE].weight


def test_missing_method_rows_are_seeded_again(database: Database) -> None:
    with database.session() as session:
        session.execute(delete(DetectionMethod).where(DetectionMethod.method_name == report.FACES))
    methods = MethodsRepository(database)
    assert methods.weights()[report.FACES].weight == DEFAULT_WEIGHTS[report.FACES]
    methods.ensure()  # idempotent
    with database.session(readonly=True) as session:
        assert len(list(session.scalars(select(DetectionMethod)))) == len(report.METHODS)


def test_the_metadata_document_round_trips_in_the_callers_transaction(database: Database) -> None:
    store = SqlDetectionMetadataStore()
    upload_id = uuid.uuid4()
    document = {
        "file_info": {"dimensions": {"width": 3, "height": 2}},
        "model_results": [],
        "nested": {"a": [1, None]},
    }
    with database.session() as session:
        session.add(
            AiUpload(
                upload_id=upload_id,
                tenant_id=uuid.uuid4(),
                file_name="x.png",
                original_file_name="x.png",
                file_size=1,
                file_type="PNG",
                mime_type="image/png",
                upload_date=utcnow(),
                status="completed",
            )
        )
        session.flush()
        session.add(
            AiDetectionResult(
                result_id=upload_id,
                upload_id=upload_id,
                is_ai_generated=False,
                confidence_score=0.1,
                band="real",
                processing_time=0.1,
                algorithm_version="skygate@1.0",
            )
        )
        session.flush()
        store.put(session, upload_id, document)
    # A failed transaction leaves the stored document as it was.
    with pytest.raises(RuntimeError), database.session() as session:
        store.put(session, upload_id, {"replaced": True})
        raise RuntimeError
    with database.session(readonly=True) as session:
        assert store.get(session, upload_id) == document
    with database.session() as session:
        store.put(session, upload_id, {"replaced": True})
    with database.session() as session:
        assert store.get(session, upload_id) == {"replaced": True}
        store.delete(session, upload_id)
    with database.session(readonly=True) as session:
        assert store.get(session, upload_id) is None
        assert session.scalar(select(DetectionMetadata)) is None
