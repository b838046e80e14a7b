"""Whether an embedding version's gallery holds every enrolled user.

Galleries are bound to their embedding model: a face is a vector in the collection of the model
that embedded it (``face_data.milvus_collection``, one per model name, vision/ports.py
``collection_name``), and verify/identify routed to a face_embedding version search that
version's collection only (services/recognition.py). Registration fills the collection of every
version serving at that moment (dual enrolment), so a version that starts serving later has none
of the users enrolled before it: routed callers would get 404 USER_NOT_FOUND and
``identified: false`` for every one of them. :func:`require_gallery_coverage` refuses such a
version until ``facesocial index migrate --to <model>`` (services/index_maintenance.py
``migrate_gallery``) has re-embedded their kept face chips into its collection.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from facesocial import errors
from facesocial.store.tables import FACE_ACTIVE, FaceData

EMBEDDING_SLOT = "face_embedding"


def model_name(version: str) -> str:
    """The model name of a version tag ``name@version`` (its collection's suffix)."""
    return version.split("@", 1)[0]


def missing_users(session: Session, version: str) -> int:
    """Users with an active face in some collection but none in ``version``'s model's collection.

    Counted across every tenant (``face_data.user_id`` is unique over the installation); only a
    count leaves this function, never an id. A face belongs to the model whose tag it was
    embedded with (``face_data.embedding_version`` = ``name@version``); every version of one
    model name shares that model's collection.
    """
    covered = (
        select(FaceData.user_id)
        .where(
            FaceData.status == FACE_ACTIVE,
            FaceData.embedding_version.startswith(f"{model_name(version)}@", autoescape=True),
        )
        .scalar_subquery()
    )
    count = session.scalar(
        select(func.count(func.distinct(FaceData.user_id))).where(
            FaceData.status == FACE_ACTIVE, FaceData.user_id.not_in(covered)
        )
    )
    return int(count or 0)


def require_gallery_coverage(session: Session, slot: str, version: str, *, force: bool) -> int:
    """Refuse to route ``slot`` to ``version`` while its gallery misses enrolled users.

    Returns the number of users enrolled in another collection but not in ``version``'s (always
    0 for slots other than ``face_embedding``, whose versions have no gallery). Raises
    ``GALLERY_NOT_MIGRATED`` (409; details ``version``, ``missing_users``, ``command``: the
    ``facesocial index migrate`` that fills the gallery) when that number is above 0, unless
    ``force`` (the caller accepts that routed callers will not find those users; the caller
    records the count). Used by deploy, canary, promote and rollback (deployments.py) and by
    experiment start.
    """
    if slot != EMBEDDING_SLOT:
        return 0
    missing = missing_users(session, version)
    if missing and not force:
        name = model_name(version)
        raise errors.GalleryNotMigratedError(
            f"{missing} enrolled user(s) have no face in {name}'s collection: verify and identify "
            f"routed to {version} would not find them. Run `facesocial index migrate --to {name}` "
            "first (it re-embeds kept face chips), or pass force to accept it",
            version=version,
            missing_users=missing,
            command=f"facesocial index migrate --to {name}",
        )
    return missing
