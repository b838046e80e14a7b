"""Opt-in encrypted face chips, and moving a gallery to another embedding model."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from facesocial.container import Container
from facesocial.services.context import RequestContext
from facesocial.services.index_maintenance import migrate_gallery
from facesocial.services.principal import Principal
from facesocial.store.tables import FaceData, User
from tests.integration.conftest import make_settings

pytestmark = pytest.mark.integration
SYSTEM = Principal(kind="api_key", role="admin", tenant_id=uuid.uuid4(), name="test")


def _faces_of(container: Container, user: uuid.UUID) -> list[FaceData]:
    with container.database.session() as session:
        return list(
            session.scalars(
                select(FaceData)
                .join(User, User.user_id == FaceData.user_id)
                .where(User.tenant_id == SYSTEM.tenant_id, User.external_id == user)
            ).all()
        )


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
    chip = _faces_of(keeping, with_chip)[0].face_chip
    assert chip is not None and not chip.startswith(b"\x89PNG")  # encrypted at rest
    assert keeping.chip_vault is not None
    assert keeping.chip_vault.open(chip).startswith(b"\x89PNG")
    assert (tmp_path / "secrets" / "chip.key").stat().st_mode & 0o077 == 0  # owner-only key file

    report = migrate_gallery(
        keeping.database, keeping.index, keeping.pipeline, keeping.chip_vault, "faceres", keeping.face_writer
    )
    assert report.collection == "face_embeddings_1024d_faceres"
    assert report.re_embedded == 1 and report.failed_faces == []
    assert report.users_to_re_enrol == [{"tenant_id": str(SYSTEM.tenant_id), "user_id": str(without_chip)}]
    found = keeping.recognition.identify(astronaut_variant_jpeg, caller=SYSTEM, ctx=ctx, model="faceres")
    assert found.body["candidates"][0]["user_id"] == str(with_chip)
    again = migrate_gallery(
        keeping.database, keeping.index, keeping.pipeline, keeping.chip_vault, "faceres", keeping.face_writer
    )
    assert again.re_embedded == 0 and again.already_enrolled_users == 1

    erased = keeping.users.erase(with_chip, caller=SYSTEM)
    assert erased.body["faces_removed"] == 2 and erased.body["vectors_removed"] == 2
    assert _faces_of(keeping, with_chip) == []
    keeping.close()
