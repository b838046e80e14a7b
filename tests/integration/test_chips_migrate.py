"""Opt-in encrypted face chips, and moving a gallery to another embedding model."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from facesocial.container import Container
from facesocial.services.context import RequestContext
from facesocial.services.index_maintenance import migrate_gallery
from facesocial.services.tenancy import SYSTEM
from facesocial.store.tables import FaceData
from tests.integration.conftest import make_settings

pytestmark = pytest.mark.integration


def test_chips_are_encrypted_and_let_a_gallery_move_to_another_model(
    tmp_path: Path, model_dir: Path, astronaut_jpeg: bytes, astronaut_variant_jpeg: bytes
) -> None:
    ctx = RequestContext()
    plain = Container(make_settings(tmp_path, model_dir))
    plain.prepare()
    without_chip = uuid.uuid4()
    plain.recognition.register(without_chip, astronaut_variant_jpeg, consent=True, caller=SYSTEM, ctx=ctx)
    plain.close()

    settings = make_settings(tmp_path, model_dir)
    settings.privacy.keep_face_chips = True
    keeping = Container(settings)
    keeping.prepare()
    with_chip = uuid.uuid4()
    keeping.recognition.register(with_chip, astronaut_jpeg, consent=True, caller=SYSTEM, ctx=ctx)
    with keeping.database.session() as session:
        chip = session.scalar(select(FaceData.face_chip).where(FaceData.user_id == with_chip))
    assert chip is not None and not chip.startswith(b"\x89PNG")  # encrypted at rest
    assert keeping.chip_vault is not None
    assert keeping.chip_vault.open(chip).startswith(b"\x89PNG")
    assert (tmp_path / "secrets" / "chip.key").stat().st_mode & 0o077 == 0  # owner-only key file

    report = migrate_gallery(
        keeping.database, keeping.index, keeping.pipeline, keeping.chip_vault, "faceres", keeping.face_cache
    )
    assert report.collection == "face_embeddings_1024d_faceres"
    assert report.re_embedded == 1 and report.failed_faces == []
    assert report.users_to_re_enrol == [str(without_chip)]
    found = keeping.recognition.identify(astronaut_variant_jpeg, caller=SYSTEM, ctx=ctx, model="faceres")
    assert found.body["candidates"][0]["user_id"] == str(with_chip)
    again = migrate_gallery(keeping.database, keeping.index, keeping.pipeline, keeping.chip_vault, "faceres")
    assert again.re_embedded == 0 and again.already_enrolled_users == 1

    erased = keeping.users.erase(with_chip, caller=SYSTEM)
    assert erased.body["faces_removed"] == 2 and erased.body["vectors_removed"] == 2
    with keeping.database.session() as session:
        assert session.scalars(select(FaceData).where(FaceData.user_id == with_chip)).all() == []
    keeping.close()
