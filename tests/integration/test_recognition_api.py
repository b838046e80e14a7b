"""Black-box HTTP tests: register → verify → identify → erase, groups, and bad input."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select

from facesocial.store.tables import AiOperationLog, User
from tests.conftest import shared_path
from tests.integration.conftest import Api
from tests.unit.test_image_decode import png_claiming

pytestmark = pytest.mark.integration
BASE = "/api/v1/face-recognition"


def image(data: bytes, name: str = "face.jpg", mime: str = "image/jpeg") -> dict[str, Any]:
    return {"image": (name, data, mime)}


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body


def register(api: Api, user: uuid.UUID, data: bytes, **form: Any) -> Any:
    return api.post(
        f"{BASE}/register", files=image(data), data={"user_id": str(user), "consent": "true", **form}
    )


def test_health_needs_no_key(api: Api) -> None:
    response = api.client.get("/health")
    assert response.status_code == 200 and response.json()["status"] == "ok"


@pytest.mark.parametrize(
    ("headers", "code"),
    [({}, "MISSING_API_KEY"), ({"X-API-Key": "fs_wrong"}, "INVALID_API_KEY")],
    ids=["missing", "wrong"],
)
def test_api_key_required(api: Api, astronaut_jpeg: bytes, headers: dict[str, str], code: str) -> None:
    before = api.counts()
    response = api.client.post(
        f"{BASE}/register",
        files=image(astronaut_jpeg),
        data={"user_id": str(uuid.uuid4()), "consent": "true"},
        headers=headers,
    )
    assert_error(response, 401, code)
    after = api.counts()
    assert after["faces"] == before["faces"] and after["vectors"] == before["vectors"]
    assert after["audit"] == before["audit"] + 1  # refused calls are audited too


def test_register_verify_identify_erase(
    tenant: Api, astronaut_jpeg: bytes, astronaut_variant_jpeg: bytes
) -> None:
    api = tenant  # identify must find exactly this test's face
    user = uuid.uuid4()
    response = register(api, user, astronaut_jpeg)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] and body["user_id"] == str(user)
    assert body["embedding_model"]["name"] == "dlib_resnet_v1"
    # Which runtime made the vector: our ONNX conversion whenever the model pack is pulled.
    model_pack = api.container.model_cache.has("dlib_resnet_v1")
    assert body["embedding_model"]["runtime"] == ("onnxruntime" if model_pack else "dlib")
    assert body["collection"] == "face_embeddings_128d_dlib_resnet_v1"
    face_id = body["face_id"]

    verified = api.post(
        f"{BASE}/verify", files=image(astronaut_variant_jpeg), data={"user_id": str(user)}
    ).json()
    assert verified["match"] is True
    assert verified["similarity"] >= verified["threshold"]
    assert verified["threshold_mode"] == "balanced"
    strict = api.post(
        f"{BASE}/verify", files=image(astronaut_variant_jpeg), data={"user_id": str(user), "mode": "strict"}
    ).json()
    assert strict["threshold"] >= verified["threshold"]

    pair = api.post(
        f"{BASE}/verify",
        files={
            "image": ("a.jpg", astronaut_jpeg, "image/jpeg"),
            "image2": ("b.jpg", astronaut_variant_jpeg, "image/jpeg"),
        },
    ).json()
    assert pair["match"] is True

    identified = api.post(f"{BASE}/identify", files=image(astronaut_variant_jpeg), data={"top_k": "3"}).json()
    assert identified["identified"] is True
    assert identified["candidates"][0]["user_id"] == str(user)
    assert identified["candidates"][0]["face_id"] == face_id

    profile = api.client.get(f"{BASE}/users/{user}", headers=api.headers()).json()
    assert profile["consent_given"] is True and len(profile["faces"]) == 1

    with api.container.database.session() as session:
        internal = session.scalar(select(User.user_id).where(User.external_id == user))
    assert api.container.kv.get(f"face_cache:{internal}") is not None  # verify filled the cache
    before = api.counts()
    erased = api.client.delete(f"{BASE}/users/{user}", headers=api.headers()).json()
    assert erased["erased"] and erased["faces_removed"] == 1 and erased["vectors_removed"] == 1
    after = api.counts()
    assert after["vectors"] == before["vectors"] - 1
    assert after["users"] == before["users"] - 1
    assert not api.container.index.search(
        api.container.recognition.collection,
        _vector_of(api, astronaut_jpeg)[None, :],
        50,
        allowed_ids={face_id},
    )[0]
    assert_error(
        api.post(f"{BASE}/verify", files=image(astronaut_jpeg), data={"user_id": str(user)}),
        404,
        "USER_NOT_FOUND",
    )
    again = api.post(f"{BASE}/identify", files=image(astronaut_jpeg)).json()
    assert all(c["user_id"] != str(user) for c in again["candidates"])
    assert_error(api.client.delete(f"{BASE}/users/{user}", headers=api.headers()), 404, "USER_NOT_FOUND")
    with api.container.database.session() as session:
        erasures = session.scalars(
            select(AiOperationLog).where(
                AiOperationLog.operation_type == "erase_user", AiOperationLog.user_id == user
            )
        ).all()
    assert [e.operation_result for e in erasures] == ["success"]  # the erasure itself stays on record
    assert api.container.kv.get(f"face_cache:{internal}") is None


def _vector_of(api: Api, data: bytes) -> Any:
    return api.container.recognition.probe(data, None, require_single=False).embedding


def test_register_refused_without_consent_stores_nothing(api: Api, astronaut_jpeg: bytes) -> None:
    before = api.counts()
    response = api.post(f"{BASE}/register", files=image(astronaut_jpeg), data={"user_id": str(uuid.uuid4())})
    assert_error(response, 403, "CONSENT_REQUIRED")
    after = api.counts()
    assert (after["users"], after["faces"], after["vectors"]) == (
        before["users"],
        before["faces"],
        before["vectors"],
    )


BAD_INPUTS = [
    ("empty", lambda f: b"", 400, "EMPTY_IMAGE"),
    (
        "truncated-jpeg",
        lambda f: f["astronaut_jpeg"][: len(f["astronaut_jpeg"]) // 3],
        422,
        "IMAGE_TRUNCATED",
    ),
    ("text-named-jpg", lambda f: b"hello, I am not an image\n" * 4, 415, "NOT_AN_IMAGE"),
    ("png-30000x30000", lambda f: png_claiming(30000, 30000), 413, "DECOMPRESSION_BOMB"),
    ("no-face", lambda f: f["no_face_jpeg"], 422, "NO_FACE_FOUND"),
    ("three-faces", lambda f: f["three_astronauts_jpeg"], 422, "MULTIPLE_FACES"),
]


@pytest.mark.parametrize(("case", "make", "status", "code"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_register_input_has_its_code_and_stores_nothing(
    api: Api, request: pytest.FixtureRequest, case: str, make: Any, status: int, code: str
) -> None:
    fixtures = {
        name: request.getfixturevalue(name)
        for name in ("astronaut_jpeg", "no_face_jpeg", "three_astronauts_jpeg")
    }
    existing = uuid.uuid4()
    assert register(api, existing, fixtures["astronaut_jpeg"]).status_code == 200
    before = api.counts()
    response = register(api, uuid.uuid4(), make(fixtures))
    assert_error(response, status, code)
    after = api.counts()
    assert (after["users"], after["faces"], after["vectors"]) == (
        before["users"],
        before["faces"],
        before["vectors"],
    )
    assert after["sessions"] == before["sessions"] + 1  # the rejected attempt is on record
    # What was stored before is intact and still usable.
    check = api.post(
        f"{BASE}/verify", files=image(fixtures["astronaut_jpeg"]), data={"user_id": str(existing)}
    )
    assert check.json()["match"] is True
    api.client.delete(f"{BASE}/users/{existing}", headers=api.headers())


def test_three_faces_register_with_chosen_face(api: Api, three_astronauts_jpeg: bytes) -> None:
    user = uuid.uuid4()
    response = register(api, user, three_astronauts_jpeg, face_index="2")
    assert response.status_code == 200, response.text
    assert response.json()["faces_detected"] == 3
    assert_error(
        register(api, uuid.uuid4(), three_astronauts_jpeg, face_index="7"), 422, "FACE_INDEX_OUT_OF_RANGE"
    )
    api.client.delete(f"{BASE}/users/{user}", headers=api.headers())


def test_validation_errors_use_the_envelope(api: Api, astronaut_jpeg: bytes) -> None:
    body = assert_error(
        api.post(
            f"{BASE}/register", files=image(astronaut_jpeg), data={"user_id": "not-a-uuid", "consent": "true"}
        ),
        422,
        "VALIDATION_ERROR",
    )
    assert "user_id" in body["error"]["message"]
    assert_error(
        api.post(f"{BASE}/register", data={"user_id": str(uuid.uuid4()), "consent": "true"}),
        422,
        "VALIDATION_ERROR",
    )
    assert_error(
        api.post(f"{BASE}/identify", files=image(astronaut_jpeg), data={"top_k": "0"}),
        422,
        "VALIDATION_ERROR",
    )
    assert_error(api.post(f"{BASE}/verify", files=image(astronaut_jpeg)), 422, "VALIDATION_ERROR")
    assert_error(api.client.get("/api/v1/nothing-here", headers=api.headers()), 404, "NOT_FOUND")


def test_groups_and_identify_within_a_group(
    api: Api, astronaut_jpeg: bytes, astronaut_variant_jpeg: bytes
) -> None:
    user = uuid.uuid4()
    assert register(api, user, astronaut_jpeg).status_code == 200
    created = api.post(f"{BASE}/groups", json={"group_name": "crew", "description": "STS-93"})
    assert created.status_code == 201, created.text
    group_id = created.json()["group"]["group_id"]
    empty_group = api.post(
        f"{BASE}/identify", files=image(astronaut_variant_jpeg), data={"group_id": group_id}
    ).json()
    assert empty_group["unknown"] is True and empty_group["candidates"] == []

    added = api.post(f"{BASE}/groups/{group_id}/members", json={"user_ids": [str(user)]}).json()["group"]
    assert added["face_count"] == 1 and added["members"][0]["user_id"] == str(user)
    in_group = api.post(
        f"{BASE}/identify", files=image(astronaut_variant_jpeg), data={"group_id": group_id}
    ).json()
    assert in_group["identified"] and in_group["candidates"][0]["user_id"] == str(user)
    assert in_group["gallery_size"] == 1

    listed = api.client.get(f"{BASE}/groups", headers=api.headers()).json()
    assert group_id in {g["group_id"] for g in listed["groups"]}
    second = register(api, uuid.uuid4(), astronaut_variant_jpeg, group_id=group_id)
    assert second.status_code == 200
    assert (
        api.client.get(f"{BASE}/groups/{group_id}", headers=api.headers()).json()["group"]["face_count"] == 2
    )

    removed = api.client.delete(f"{BASE}/groups/{group_id}/members/{user}", headers=api.headers()).json()[
        "group"
    ]
    assert removed["face_count"] == 1
    assert api.client.delete(f"{BASE}/groups/{group_id}", headers=api.headers()).json()["deleted"] is True
    assert_error(api.client.get(f"{BASE}/groups/{group_id}", headers=api.headers()), 404, "GROUP_NOT_FOUND")
    api.client.delete(f"{BASE}/users/{user}", headers=api.headers())
    api.client.delete(f"{BASE}/users/{second.json()['user_id']}", headers=api.headers())


def test_unknown_group_id(api: Api, astronaut_jpeg: bytes) -> None:
    missing = str(uuid.uuid4())
    before = api.counts()
    assert_error(
        api.post(f"{BASE}/identify", files=image(astronaut_jpeg), data={"group_id": missing}),
        404,
        "GROUP_NOT_FOUND",
    )
    assert_error(register(api, uuid.uuid4(), astronaut_jpeg, group_id=missing), 404, "GROUP_NOT_FOUND")
    assert_error(
        api.post(f"{BASE}/groups/{missing}/members", json={"user_ids": [str(uuid.uuid4())]}),
        404,
        "GROUP_NOT_FOUND",
    )
    assert_error(api.client.delete(f"{BASE}/groups/{missing}", headers=api.headers()), 404, "GROUP_NOT_FOUND")
    after = api.counts()
    assert (after["users"], after["faces"], after["vectors"]) == (
        before["users"],
        before["faces"],
        before["vectors"],
    )


def test_identify_real_people_and_reject_a_stranger(api: Api) -> None:
    folder = shared_path("face_recognition_identities", "examples", "knn_examples")
    people = {name: uuid.uuid4() for name in ("obama", "biden", "alex_lacamoire")}
    for name, user in people.items():
        enrol = sorted((folder / "train" / name).iterdir())[0]
        assert register(api, user, enrol.read_bytes()).status_code == 200
    probe = api.post(f"{BASE}/identify", files=image((folder / "test" / "obama1.jpg").read_bytes())).json()
    assert probe["identified"] and probe["candidates"][0]["user_id"] == str(people["obama"])
    stranger = api.post(
        f"{BASE}/identify",
        files=image((folder / "test" / "kit_with_rose.jpg").read_bytes()),
        data={"face_index": "0"},
    ).json()
    assert all(c["user_id"] not in {str(u) for u in people.values()} for c in stranger["candidates"])
    for user in people.values():
        api.client.delete(f"{BASE}/users/{user}", headers=api.headers())


def test_quota_is_enforced(api: Api) -> None:
    limited = api.container.keys.create("limited", request_limit=2).secret
    for _ in range(2):
        assert api.client.get(f"{BASE}/groups", headers=api.headers(limited)).status_code == 200
    assert_error(
        api.client.get(f"{BASE}/groups", headers=api.headers(limited)), 429, "API_KEY_QUOTA_EXCEEDED"
    )


def test_index_rebuild_restores_search(
    tenant: Api, astronaut_jpeg: bytes, astronaut_variant_jpeg: bytes
) -> None:
    api = tenant  # identify must find exactly this test's face
    from facesocial.services.index_maintenance import rebuild_index

    user = uuid.uuid4()
    assert register(api, user, astronaut_jpeg).status_code == 200
    collection = api.container.recognition.collection
    api.container.index.drop(collection)
    api.container.index.ensure_collection(collection, 128)
    assert api.post(f"{BASE}/identify", files=image(astronaut_variant_jpeg)).json()["unknown"] is True
    reports = rebuild_index(api.container.database, api.container.index)
    assert any(r.collection == collection and r.vectors >= 1 for r in reports)
    assert api.post(f"{BASE}/identify", files=image(astronaut_variant_jpeg)).json()["candidates"][0][
        "user_id"
    ] == str(user)
    api.client.delete(f"{BASE}/users/{user}", headers=api.headers())
