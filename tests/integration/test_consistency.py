"""SQL ↔ vector index consistency, per-user serialisation and tenant-scoped ids, over HTTP.

Both profiles (SQLite + local index, PostgreSQL + Redis + milvus-lite), real threads.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select, update

from facesocial import errors
from facesocial.store.tables import FACE_PENDING, FaceData, User
from facesocial.store.types import utcnow
from tests.integration.conftest import Api

pytestmark = pytest.mark.integration
BASE = "/api/v1/face-recognition"


def _register(api: Api, user: uuid.UUID, data: bytes, key: str | None = None) -> Any:
    return api.post(
        f"{BASE}/register",
        files={"image": ("a.jpg", data, "image/jpeg")},
        data={"user_id": str(user), "consent": "true"},
        key=key,
    )


def _in_threads(*jobs: Callable[[], None]) -> None:
    failures: list[BaseException] = []

    def run(job: Callable[[], None]) -> None:
        try:
            job()
        except BaseException as exc:  # collected and re-raised in the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert not failures, failures


def _vectors_present(api: Api, face_ids: list[str]) -> set[str]:
    collection = api.container.recognition.collection
    return {i for i in api.container.index.ids(collection) if i in set(face_ids)}


def _consistent(api: Api) -> dict[str, Any]:
    report = api.container.reconciler.run(repair=False, grace_seconds=0).as_dict()
    assert report["consistent"], report
    return report


@contextmanager
def _failing(api: Api, method: str, times: int = 1) -> Iterator[list[int]]:
    """Make the index's ``method`` fail like an unreachable Milvus ``times`` times."""
    index = api.container.index
    original = getattr(index, method)
    calls = [0]

    def broken(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] <= times:
            raise errors.VectorIndexUnavailableError("injected: the vector index does not answer")
        return original(*args, **kwargs)

    setattr(index, method, broken)
    try:
        yield calls
    finally:
        setattr(index, method, original)


def test_two_tenants_register_the_same_new_user_id_at_once(tenant: Api, astronaut_jpeg: bytes) -> None:
    api = tenant
    key_a = api.container.keys.create("tenant a", role="user").secret
    key_b = api.container.keys.create("tenant b", role="user").secret
    for _ in range(3):
        person = uuid.uuid4()
        answers: dict[str, Any] = {}

        def enrol(name: str, key: str, person: uuid.UUID = person, answers: dict[str, Any] = answers) -> None:
            answers[name] = _register(api, person, astronaut_jpeg, key=key)

        _in_threads(lambda: enrol("a", key_a), lambda: enrol("b", key_b))
        assert answers["a"].status_code == 200, answers["a"].text
        assert answers["b"].status_code == 200, answers["b"].text
        for name, key in (("a", key_a), ("b", key_b)):
            profile = api.client.get(f"{BASE}/users/{person}", headers=api.headers(key)).json()
            # Each tenant's user holds exactly its own face: nothing landed in the other's.
            assert [f["face_id"] for f in profile["faces"]] == [answers[name].json()["face_id"]]
    _consistent(api)


def test_register_racing_erase_of_the_same_user(tenant: Api, astronaut_jpeg: bytes) -> None:
    api = tenant
    person = uuid.uuid4()
    registered: list[str] = []
    statuses: list[int] = []

    def keep_registering() -> None:
        for _ in range(6):
            response = _register(api, person, astronaut_jpeg)
            statuses.append(response.status_code)
            if response.status_code == 200:
                registered.append(response.json()["face_id"])

    def keep_erasing() -> None:
        for _ in range(6):
            statuses.append(api.client.delete(f"{BASE}/users/{person}", headers=api.headers()).status_code)

    _in_threads(keep_registering, keep_erasing, keep_registering)
    assert set(statuses) <= {200, 404}, statuses  # never a 500, never a stale row
    assert registered
    api.client.delete(f"{BASE}/users/{person}", headers=api.headers())
    # Erasure leaves no vector of any face this user ever had, and no row.
    assert _vectors_present(api, registered) == set()
    with api.container.database.session() as session:
        assert (
            session.scalar(select(func.count()).select_from(FaceData).where(FaceData.face_id.in_(registered)))
            == 0
        )
    _consistent(api)


def test_an_index_failure_during_registration_leaves_nothing(tenant: Api, astronaut_jpeg: bytes) -> None:
    api = tenant
    before = api.counts()
    person = uuid.uuid4()
    with _failing(api, "upsert"):
        response = _register(api, person, astronaut_jpeg)
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    after = api.counts()
    assert (after["users"], after["faces"], after["vectors"]) == (
        before["users"],
        before["faces"],
        before["vectors"],
    )
    assert api.client.get(f"{BASE}/users/{person}", headers=api.headers()).status_code == 404
    assert _register(api, person, astronaut_jpeg).status_code == 200  # the retry works
    _consistent(api)


def test_an_index_failure_during_erasure_hides_the_user_and_the_retry_finishes(
    tenant: Api, astronaut_jpeg: bytes, astronaut_variant_jpeg: bytes
) -> None:
    api = tenant
    person = uuid.uuid4()
    face = _register(api, person, astronaut_jpeg).json()["face_id"]
    with _failing(api, "delete"):
        failed = api.client.delete(f"{BASE}/users/{person}", headers=api.headers())
    assert failed.status_code == 503 and failed.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    # The erasure has begun: the user is gone for every read at once ...
    assert api.client.get(f"{BASE}/users/{person}", headers=api.headers()).status_code == 404
    verify = api.post(
        f"{BASE}/verify",
        files={"image": ("b.jpg", astronaut_variant_jpeg, "image/jpeg")},
        data={"user_id": str(person)},
    )
    assert verify.status_code == 404
    found = api.post(
        f"{BASE}/identify", files={"image": ("b.jpg", astronaut_variant_jpeg, "image/jpeg")}
    ).json()
    assert face not in {c["face_id"] for c in found["candidates"]}
    # ... and the retry (or the reconciler) finishes it: no row, no vector.
    again = api.client.delete(f"{BASE}/users/{person}", headers=api.headers())
    assert again.status_code == 200 and again.json()["vectors_removed"] == 1
    assert _vectors_present(api, [face]) == set()
    _consistent(api)


def test_the_reconciler_lists_and_repairs_every_kind_of_discrepancy(
    tenant: Api, astronaut_jpeg: bytes, astronaut_variant_jpeg: bytes
) -> None:
    api = tenant
    container = api.container
    collection = container.recognition.collection
    lost_owner = uuid.uuid4()
    lost = _register(api, lost_owner, astronaut_jpeg).json()["face_id"]
    stranded_owner = uuid.uuid4()
    stranded = _register(api, stranded_owner, astronaut_variant_jpeg).json()["face_id"]
    orphan = str(uuid.uuid4())
    # What a crash leaves: a vector lost after its 200, a vector whose row is gone, and a
    # registration that stopped between its steps (row pending, vector written) long ago.
    container.index.delete(collection, [lost])
    container.index.upsert(collection, [orphan], np.eye(1, 128, dtype=np.float32))
    with container.database.session() as session:
        session.execute(
            update(FaceData)
            .where(FaceData.face_id == stranded)
            .values(status=FACE_PENDING, updated_at=utcnow() - timedelta(hours=1))
        )

    check = container.reconciler.run(repair=False).as_dict()
    assert check["consistent"] is False
    mine = next(c for c in check["collections"] if c["collection"] == collection)
    assert lost in mine["missing_vector_ids"]
    assert orphan in mine["orphan_vector_ids"]
    assert stranded in mine["stranded_pending_ids"]

    repaired = container.reconciler.run(repair=True).as_dict()
    assert repaired["consistent"] is True
    assert repaired["repaired"]["vectors_restored"] >= 1
    assert repaired["repaired"]["orphans_deleted"] >= 1
    assert repaired["repaired"]["pending_rolled_back"] >= 1
    present = set(container.index.ids(collection))
    assert lost in present and orphan not in present and stranded not in present
    with container.database.session() as session:
        # The rolled-back registration created its user: the user goes with it.
        assert (
            session.scalar(select(func.count()).select_from(User).where(User.external_id == stranded_owner))
            == 0
        )
    identified = api.post(f"{BASE}/identify", files={"image": ("a.jpg", astronaut_jpeg, "image/jpeg")}).json()
    assert lost in {c["face_id"] for c in identified["candidates"]}
    _consistent(api)


def test_admin_index_routes(tenant: Api) -> None:
    api = tenant
    operator = api.headers(api.container.keys.create("operator", role="operator").secret)
    verified = api.client.post("/api/v1/admin/index/verify", json={"repair": True}, headers=operator)
    assert verified.status_code == 200, verified.text
    assert verified.json()["report"]["consistent"] is True
    # A tenant's admin (the fixture's key) and user keys act on their own tenant only: the index
    # routes span every tenant, so both are refused.
    user_key = api.container.keys.create("not an admin", role="user").secret
    for key in (api.key, user_key):
        for path, body in (("verify", {}), ("rebuild", None)):
            refused = api.client.post(f"/api/v1/admin/index/{path}", json=body, headers=api.headers(key))
            assert refused.status_code == 403 and refused.json()["error"]["code"] == "FORBIDDEN"
            assert "--role operator" in refused.json()["error"]["message"]
    rebuilt = api.client.post("/api/v1/admin/index/rebuild", headers=operator)
    assert rebuilt.status_code == 200, rebuilt.text
    collection = api.container.recognition.collection
    with api.container.database.session() as session:
        active = session.scalar(
            select(func.count())
            .select_from(FaceData)
            .where(FaceData.milvus_collection == collection, FaceData.status == "active")
        )
    assert {c["collection"]: c["vectors"] for c in rebuilt.json()["collections"]}[collection] == active
    assert api.container.index.count(collection) == active
    _consistent(api)
