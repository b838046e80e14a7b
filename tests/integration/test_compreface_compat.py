"""CompreFace-compatible endpoints over plain HTTP, against CompreFace's documented shapes
(docs/Rest-API-description.md of exadel-inc/CompreFace), on real photos and real models."""

from __future__ import annotations

import base64
import io
import uuid
from dataclasses import replace
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import select

from facesocial.store.tables import AiOperationLog, FaceData
from tests.conftest import shared_path
from tests.integration.conftest import Api

pytestmark = pytest.mark.integration
REC = "/api/v1/recognition"
EXAMPLES = ("face_recognition_identities", "examples")


@pytest.fixture(scope="module")
def photos() -> dict[str, bytes]:
    return {name: shared_path(*EXAMPLES, f"{name}.jpg").read_bytes() for name in ("obama", "obama2", "biden")}


@pytest.fixture(scope="module")
def pair(photos: dict[str, bytes]) -> bytes:
    """obama2 (left) and biden (right) side by side: one image with two real faces."""
    left = Image.open(io.BytesIO(photos["obama2"])).convert("RGB")
    right = Image.open(io.BytesIO(photos["biden"])).convert("RGB")
    height = max(left.height, right.height)
    canvas = Image.new("RGB", (left.width + right.width, height), (128, 128, 128))
    canvas.paste(left, (0, 0))
    canvas.paste(right, (left.width, 0))
    out = io.BytesIO()
    canvas.save(out, "JPEG", quality=92)
    return out.getvalue()


def key_headers(api: Api, key: str | None = None) -> dict[str, str]:
    return {"x-api-key": key or api.key}  # CompreFace's spelling of the header


def add_example(api: Api, subject: str, data: bytes, key: str | None = None) -> Any:
    return api.client.post(
        f"{REC}/faces",
        params={"subject": subject},
        files={"file": ("face.jpg", data, "image/jpeg")},
        headers=key_headers(api, key),
    )


def post_file(api: Api, path: str, data: bytes, key: str | None = None, **params: Any) -> Any:
    return api.client.post(
        path, params=params, files={"file": ("face.jpg", data, "image/jpeg")}, headers=key_headers(api, key)
    )


def assert_cf_error(response: Any, status: int, code: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"message", "code"}, body  # CompreFace's error shape, nothing else
    assert body["code"] == code and body["message"]
    return body


def assert_box(box: dict[str, Any], width: int, height: int) -> None:
    assert set(box) == {"probability", "x_max", "y_max", "x_min", "y_min"}
    assert all(isinstance(box[k], int) for k in ("x_max", "y_max", "x_min", "y_min"))
    assert 0 <= box["x_min"] < box["x_max"] <= width + 2 and 0 <= box["y_min"] < box["y_max"] <= height + 2
    assert 0.0 < box["probability"] <= 1.0


def size_of(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


@pytest.fixture
def gallery(tenant: Api, photos: dict[str, bytes]) -> dict[str, str]:
    """A tenant of its own holding two subjects, one example each: subject -> image_id."""
    ids = {}
    for subject, photo in (("Barack Obama", "obama"), ("Joe Biden", "biden")):
        response = add_example(tenant, subject, photos[photo])
        assert response.status_code == 201, response.text
        body = response.json()
        assert set(body) == {"image_id", "subject"} and body["subject"] == subject
        uuid.UUID(body["image_id"])
        ids[subject] = body["image_id"]
    return ids


def test_examples_and_subjects_are_listed(tenant: Api, gallery: dict[str, str]) -> None:
    response = tenant.client.get(f"{REC}/subjects", headers=key_headers(tenant))
    assert response.status_code == 200
    assert response.json() == {"subjects": ["Barack Obama", "Joe Biden"]}
    # The documented list path ends in a slash (docs: GET .../subjects/): both answer.
    assert tenant.client.get(f"{REC}/subjects/", headers=key_headers(tenant)).json() == response.json()

    page = tenant.client.get(
        f"{REC}/faces", params={"page": 0, "size": 1}, headers=key_headers(tenant)
    ).json()
    assert page["page_number"] == 0 and page["page_size"] == 1
    assert page["total_elements"] == 2 and page["total_pages"] == 2
    assert page["faces"] == [{"image_id": gallery["Barack Obama"], "subject": "Barack Obama"}]
    second = tenant.client.get(
        f"{REC}/faces", params={"page": 1, "size": 1}, headers=key_headers(tenant)
    ).json()
    assert second["faces"] == [{"image_id": gallery["Joe Biden"], "subject": "Joe Biden"}]
    only = tenant.client.get(
        f"{REC}/faces", params={"subject": "Joe Biden"}, headers=key_headers(tenant)
    ).json()
    assert [f["image_id"] for f in only["faces"]] == [gallery["Joe Biden"]] and only["page_size"] == 20


def test_recognize_names_the_right_subject(
    tenant: Api, gallery: dict[str, str], photos: dict[str, bytes]
) -> None:
    response = post_file(tenant, f"{REC}/recognize", photos["obama2"], prediction_count=2)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"result"}  # status=false: no execution_time, no plugins_versions
    (face,) = body["result"]
    assert set(face) == {"box", "subjects"}
    assert_box(face["box"], *size_of(photos["obama2"]))
    subjects = face["subjects"]
    assert [s["subject"] for s in subjects] == ["Barack Obama", "Joe Biden"]
    assert 0.0 <= subjects[1]["similarity"] < subjects[0]["similarity"] <= 1.0
    # The same person scores above the platform's strict threshold (dlib 0.925, docs/compreface.md).
    assert subjects[0]["similarity"] >= 0.925

    one = post_file(tenant, f"{REC}/recognize", photos["biden"]).json()["result"][0]["subjects"]
    assert len(one) == 1 and one[0]["subject"] == "Joe Biden"  # prediction_count defaults to 1

    rows = tenant.container.database.session(readonly=True)
    with rows as session:
        ops = session.scalars(
            select(AiOperationLog.operation_type).where(AiOperationLog.service_name == "recognition")
        ).all()
    assert "cf_recognize" in ops and "cf_add_example" in ops  # audited like every /api call


def test_recognize_every_face_with_plugins_and_status(
    tenant: Api, gallery: dict[str, str], pair: bytes
) -> None:
    width, height = size_of(pair)
    response = post_file(
        tenant, f"{REC}/recognize", pair, face_plugins="age,gender,landmarks,calculator,mask", status="true"
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["result"]) == 2
    by_side = sorted(body["result"], key=lambda f: f["box"]["x_min"])
    assert [f["subjects"][0]["subject"] for f in by_side] == ["Barack Obama", "Joe Biden"]
    for face in by_side:
        assert_box(face["box"], width, height)
        assert "mask" not in face  # unsupported plugin: ignored
        assert face["age"]["low"] <= face["age"]["high"] and 0 < face["age"]["probability"] <= 1
        assert face["gender"]["value"] == "male" and 0.5 <= face["gender"]["probability"] <= 1
        box = face["box"]
        assert len(face["landmarks"]) == 5
        for x, y in face["landmarks"]:
            assert box["x_min"] - 5 <= x <= box["x_max"] + 5 and box["y_min"] - 5 <= y <= box["y_max"] + 5
        (left_eye, right_eye, nose, mouth_left, mouth_right) = face["landmarks"]
        assert left_eye[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
        assert max(left_eye[1], right_eye[1]) < nose[1] < max(mouth_left[1], mouth_right[1])
        assert len(face["embedding"]) == 128 and abs(sum(v * v for v in face["embedding"]) - 1.0) < 1e-3
        assert set(face["execution_time"]) == {"detector", "calculator"}
    versions = body["plugins_versions"]
    assert {"detector", "calculator", "age", "gender", "landmarks"} <= set(versions)
    assert "mask" not in versions

    limited = post_file(tenant, f"{REC}/recognize", pair, limit=1).json()["result"]
    assert len(limited) == 1  # the largest face only


def test_verify_against_an_example(tenant: Api, gallery: dict[str, str], photos: dict[str, bytes]) -> None:
    path = f"{REC}/faces/{gallery['Barack Obama']}/verify"
    same = post_file(tenant, path, photos["obama2"]).json()["result"]
    other = post_file(tenant, path, photos["biden"]).json()["result"]
    assert len(same) == 1 and len(other) == 1
    assert set(same[0]) == {"box", "similarity"}
    assert same[0]["similarity"] >= 0.925 > other[0]["similarity"]
    unknown = post_file(tenant, f"{REC}/faces/{uuid.uuid4()}/verify", photos["obama2"])
    assert_cf_error(unknown, 404, 11)


def test_base64_json_bodies(tenant: Api, photos: dict[str, bytes]) -> None:
    encoded = base64.b64encode(photos["obama"]).decode()
    added = tenant.client.post(
        f"{REC}/faces", params={"subject": "json"}, json={"file": encoded}, headers=key_headers(tenant)
    )
    assert added.status_code == 201, added.text
    probe = base64.b64encode(photos["obama2"]).decode()
    found = tenant.client.post(f"{REC}/recognize", json={"file": probe}, headers=key_headers(tenant))
    assert found.json()["result"][0]["subjects"][0]["subject"] == "json"
    pair_body = {"source_image": encoded, "target_image": probe}
    verified = tenant.client.post("/api/v1/verification/verify", json=pair_body, headers=key_headers(tenant))
    assert (
        verified.status_code == 200 and verified.json()["result"][0]["face_matches"][0]["similarity"] >= 0.925
    )


def test_verification_service(tenant: Api, photos: dict[str, bytes], pair: bytes) -> None:
    response = tenant.client.post(
        "/api/v1/verification/verify",
        params={"face_plugins": "gender,pose", "status": "true"},
        files={
            "source_image": ("a.jpg", photos["obama"], "image/jpeg"),
            "target_image": ("b.jpg", pair, "image/jpeg"),
        },
        headers=key_headers(tenant),
    )
    assert response.status_code == 200, response.text
    (result,) = response.json()["result"]
    assert set(result) == {"source_image_face", "face_matches", "plugins_versions"}
    source = result["source_image_face"]
    assert_box(source["box"], *size_of(photos["obama"]))
    assert source["gender"]["value"] == "male" and set(source["pose"]) == {"pitch", "roll", "yaw"}
    matches = result["face_matches"]
    assert len(matches) == 2 and matches[0]["similarity"] > matches[1]["similarity"]
    obama_width = size_of(photos["obama2"])[0]
    assert matches[0]["box"]["x_max"] <= obama_width + 2  # the best match is the left (Obama) face
    assert matches[0]["similarity"] >= 0.925 > matches[1]["similarity"]
    assert {"pose", "gender", "calculator", "detector"} <= set(result["plugins_versions"])


def test_detection_service(tenant: Api, pair: bytes, no_face_jpeg: bytes) -> None:
    response = post_file(
        tenant, "/api/v1/detection/detect", pair, face_plugins="landmarks,pose,age", status=True
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["result"]) == 2
    areas = [
        (f["box"]["x_max"] - f["box"]["x_min"]) * (f["box"]["y_max"] - f["box"]["y_min"])
        for f in body["result"]
    ]
    assert areas == sorted(areas, reverse=True)  # largest first
    for face in body["result"]:
        assert set(face) == {"box", "landmarks", "pose", "age", "execution_time"}
        assert -60 < face["pose"]["yaw"] < 60  # both are near-frontal portraits
    assert {"detector", "landmarks", "pose", "age"} <= set(body["plugins_versions"])
    bare = post_file(tenant, "/api/v1/detection/detect", pair, limit=1).json()
    assert len(bare["result"]) == 1 and set(bare["result"][0]) == {"box"}
    # CompreFace's detection service refuses an image without a face (its issue #1223).
    assert_cf_error(post_file(tenant, "/api/v1/detection/detect", no_face_jpeg), 400, 28)


def test_subject_management(tenant: Api, photos: dict[str, bytes]) -> None:
    created = tenant.client.post(f"{REC}/subjects", json={"subject": "Obama"}, headers=key_headers(tenant))
    assert created.status_code == 201 and created.json() == {"subject": "Obama"}
    first = add_example(tenant, "Obama", photos["obama"]).json()["image_id"]
    second = add_example(tenant, "Barack", photos["obama2"]).json()["image_id"]
    again = tenant.client.post(f"{REC}/subjects", json={"subject": "Obama"}, headers=key_headers(tenant))
    assert_cf_error(again, 400, 43)

    # Rename onto an existing subject merges: Barack's example moves to Obama.
    merged = tenant.client.put(
        f"{REC}/subjects/Barack", json={"subject": "Obama"}, headers=key_headers(tenant)
    )
    assert merged.status_code == 200 and merged.json() == {"updated": True}
    faces = tenant.client.get(f"{REC}/faces", headers=key_headers(tenant)).json()["faces"]
    assert sorted(f["image_id"] for f in faces) == sorted([first, second])
    assert {f["subject"] for f in faces} == {"Obama"}
    renamed = tenant.client.put(f"{REC}/subjects/Obama", json={"subject": "44"}, headers=key_headers(tenant))
    assert renamed.json() == {"updated": True}
    assert tenant.client.get(f"{REC}/subjects", headers=key_headers(tenant)).json() == {"subjects": ["44"]}
    match = post_file(tenant, f"{REC}/recognize", photos["obama2"]).json()["result"][0]["subjects"][0]
    assert match["subject"] == "44"

    deleted = tenant.client.delete(f"{REC}/faces/{second}", headers=key_headers(tenant))
    assert deleted.status_code == 200 and deleted.json() == {"image_id": second, "subject": "44"}
    with tenant.container.database.session(readonly=True) as session:
        assert session.get(FaceData, uuid.UUID(second)) is None
    assert_cf_error(tenant.client.delete(f"{REC}/faces/{second}", headers=key_headers(tenant)), 404, 11)

    assert tenant.client.delete(f"{REC}/subjects/44", headers=key_headers(tenant)).json() == {"subject": "44"}
    assert tenant.client.get(f"{REC}/subjects", headers=key_headers(tenant)).json() == {"subjects": []}
    assert_cf_error(tenant.client.delete(f"{REC}/subjects/44", headers=key_headers(tenant)), 404, 42)
    missing = tenant.client.put(f"{REC}/subjects/nobody", json={"subject": "x"}, headers=key_headers(tenant))
    assert_cf_error(missing, 404, 42)

    add_example(tenant, "a", photos["obama"])
    add_example(tenant, "b", photos["biden"])
    by_subject = tenant.client.delete(f"{REC}/faces", params={"subject": "a"}, headers=key_headers(tenant))
    assert by_subject.json() == {"deleted": 1}
    assert tenant.client.delete(f"{REC}/subjects", headers=key_headers(tenant)).json() == {"deleted": 1}
    assert tenant.client.get(f"{REC}/faces", headers=key_headers(tenant)).json()["total_elements"] == 0


def test_platform_users_are_subjects_named_by_id(tenant: Api, photos: dict[str, bytes]) -> None:
    user = uuid.uuid4()
    registered = tenant.post(
        "/api/v1/face-recognition/register",
        files={"image": ("a.jpg", photos["biden"], "image/jpeg")},
        data={"user_id": str(user), "consent": "true"},
    )
    assert registered.status_code == 200, registered.text
    assert tenant.client.get(f"{REC}/subjects", headers=key_headers(tenant)).json() == {
        "subjects": [str(user)]
    }
    # ... and a subject named by that id adds to the same person.
    assert add_example(tenant, str(user), photos["biden"]).status_code == 201
    detail = tenant.client.get(f"/api/v1/face-recognition/users/{user}", headers=key_headers(tenant)).json()
    assert len(detail["faces"]) >= 2


def test_tenants_do_not_see_each_other(
    tenant: Api, gallery: dict[str, str], photos: dict[str, bytes]
) -> None:
    other = replace(tenant, key=tenant.container.keys.create(f"other {uuid.uuid4()}").secret)
    assert other.client.get(f"{REC}/subjects", headers=key_headers(other)).json() == {"subjects": []}
    assert other.client.get(f"{REC}/faces", headers=key_headers(other)).json()["total_elements"] == 0
    image_id = gallery["Barack Obama"]
    assert_cf_error(other.client.delete(f"{REC}/faces/{image_id}", headers=key_headers(other)), 404, 11)
    assert_cf_error(post_file(other, f"{REC}/faces/{image_id}/verify", photos["obama2"]), 404, 11)
    assert_cf_error(other.client.delete(f"{REC}/subjects/Joe Biden", headers=key_headers(other)), 404, 42)
    found = post_file(other, f"{REC}/recognize", photos["obama2"], prediction_count=5).json()
    assert found["result"][0]["subjects"] == []  # the other tenant's gallery is empty
    # Nothing of the first tenant was touched.
    assert tenant.client.get(f"{REC}/faces", headers=key_headers(tenant)).json()["total_elements"] == 2
    assert other.client.delete(f"{REC}/subjects", headers=key_headers(other)).json() == {"deleted": 0}
    assert tenant.client.get(f"{REC}/subjects", headers=key_headers(tenant)).json()["subjects"] == [
        "Barack Obama",
        "Joe Biden",
    ]


@pytest.mark.parametrize(
    ("call", "status", "code"),
    [
        (lambda api, p: api.client.post(f"{REC}/recognize", files={"file": ("a.jpg", p["obama"])}), 401, 20),
        (
            lambda api, p: api.client.post(
                f"{REC}/recognize", files={"file": ("a.jpg", p["obama"])}, headers={"x-api-key": "fs_wrong"}
            ),
            401,
            10,
        ),
        (lambda api, p: post_file(api, f"{REC}/recognize", p["obama"], prediction_count=0), 400, 26),
        (lambda api, p: post_file(api, f"{REC}/recognize", b"not an image"), 400, 21),
        (lambda api, p: post_file(api, f"{REC}/faces", p["obama"]), 400, 26),  # subject missing
        (lambda api, p: api.client.post(f"{REC}/faces?subject=x", headers=key_headers(api)), 400, 21),
        (
            lambda api, p: api.client.get(f"{REC}/faces", params={"size": 0}, headers=key_headers(api)),
            400,
            26,
        ),
        (lambda api, p: api.client.delete(f"{REC}/faces/not-a-uuid", headers=key_headers(api)), 400, 26),
        (
            lambda api, p: api.client.post(
                f"{REC}/subjects", json={"subject": " "}, headers=key_headers(api)
            ),
            400,
            26,
        ),
    ],
    ids=[
        "no-key",
        "wrong-key",
        "bad-param",
        "not-image",
        "no-subject",
        "no-body",
        "bad-page-size",
        "bad-image-id",
        "blank-subject",
    ],
)
def test_errors_in_compreface_shape(
    tenant: Api, photos: dict[str, bytes], call: Any, status: int, code: int
) -> None:
    assert_cf_error(call(tenant, photos), status, code)


def test_face_errors(tenant: Api, no_face_jpeg: bytes, pair: bytes) -> None:
    assert_cf_error(add_example(tenant, "nobody", no_face_jpeg), 400, 28)  # NO_FACES_FOUND
    assert_cf_error(post_file(tenant, f"{REC}/recognize", no_face_jpeg), 400, 28)
    assert_cf_error(add_example(tenant, "two", pair), 400, 31)  # TOO_MANY_FACES
    assert tenant.client.get(f"{REC}/faces", headers=key_headers(tenant)).json()["total_elements"] == 0


def test_det_prob_threshold(tenant: Api, photos: dict[str, bytes], pair: bytes) -> None:
    # BlazeFace scores these portraits 0.77-0.92: a 0.99 floor leaves no face.
    assert_cf_error(
        tenant.client.post(
            f"{REC}/faces",
            params={"subject": "strict", "det_prob_threshold": "0.99"},
            files={"file": ("a.jpg", photos["obama"], "image/jpeg")},
            headers=key_headers(tenant),
        ),
        400,
        28,
    )
    assert_cf_error(post_file(tenant, "/api/v1/detection/detect", pair, det_prob_threshold=0.99), 400, 28)
    kept = post_file(tenant, "/api/v1/detection/detect", pair, det_prob_threshold=0.6).json()["result"]
    assert len(kept) == 2 and all(face["box"]["probability"] >= 0.6 for face in kept)
    # Below the server's default (0.5) the detector is asked for weaker faces too.
    loose = post_file(tenant, "/api/v1/detection/detect", pair, det_prob_threshold=0.25).json()["result"]
    assert len(loose) >= 2 and all(face["box"]["probability"] >= 0.25 for face in loose)
    added = tenant.client.post(
        f"{REC}/faces",
        params={"subject": "loose", "det_prob_threshold": "0.3"},
        files={"file": ("a.jpg", photos["obama"], "image/jpeg")},
        headers=key_headers(tenant),
    )
    assert added.status_code == 201, added.text


def test_platform_routes_keep_their_own_error_shape(tenant: Api) -> None:
    response = tenant.client.get("/api/v1/face-recognition/users/not-a-uuid", headers=key_headers(tenant))
    assert response.status_code == 422 and response.json()["success"] is False


# --- subject names: compat.compreface_subjects -------------------------------------------------------
def _race(calls: list[Any]) -> list[Any]:
    """Run ``calls`` on real threads released at the same moment; their answers, in order."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    barrier = threading.Barrier(len(calls))

    def run(call: Any) -> Any:
        barrier.wait(timeout=60)
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def _subject_rows(api: Api, name: str | None = None) -> list[tuple[str, uuid.UUID | None]]:
    from facesocial.store.tables_compat import CompreFaceSubject

    tenant_id = api.container.keys.authenticate(api.key).tenant_id  # the key's tenant
    query = select(CompreFaceSubject.subject, CompreFaceSubject.user_id).where(
        CompreFaceSubject.tenant_id == tenant_id
    )
    if name is not None:
        query = query.where(CompreFaceSubject.subject == name)
    with api.container.database.session(readonly=True) as session:
        return [(subject, user_id) for subject, user_id in session.execute(query)]


def test_concurrent_creations_of_one_subject_have_exactly_one_winner(tenant: Api) -> None:
    def create(name: str) -> Any:
        return lambda: tenant.client.post(
            f"{REC}/subjects", json={"subject": name}, headers=key_headers(tenant)
        )

    for round_, threads in enumerate([2, 2, 2, 8]):
        name = f"race {round_}"
        answers = _race([create(name)] * threads)
        created = [a for a in answers if a.status_code == 201]
        assert len(created) == 1, [a.text for a in answers]
        assert created[0].json() == {"subject": name}
        for loser in (a for a in answers if a.status_code != 201):
            assert_cf_error(loser, 400, 43)
        assert _subject_rows(tenant, name) == [(name, None)]  # one row, no example yet
    listed = tenant.client.get(f"{REC}/subjects", headers=key_headers(tenant)).json()["subjects"]
    assert listed == ["race 0", "race 1", "race 2", "race 3"]
    # A subject without examples is deleted like any other, and then it is gone.
    assert tenant.client.delete(f"{REC}/subjects/race 0", headers=key_headers(tenant)).json() == {
        "subject": "race 0"
    }
    assert_cf_error(tenant.client.delete(f"{REC}/subjects/race 0", headers=key_headers(tenant)), 404, 42)
    assert tenant.client.delete(f"{REC}/subjects", headers=key_headers(tenant)).json() == {"deleted": 3}
    assert _subject_rows(tenant) == []


def test_concurrent_renames_onto_one_name_leave_one_subject(tenant: Api, photos: dict[str, bytes]) -> None:
    """Two subjects renamed onto one new name at the same moment: the renames are serialised per
    name, so the first renames and the second merges into it (CompreFace's rename onto an existing
    subject) — or, had a creation of that name won the race, the rename is refused with code 43.
    Either way one row names the subject, and no example is lost or left on a removed subject."""
    image_a = add_example(tenant, "A", photos["obama"]).json()["image_id"]
    image_b = add_example(tenant, "B", photos["biden"]).json()["image_id"]
    before = tenant.counts()

    def rename(old: str, new: str) -> Any:
        return lambda: tenant.client.put(
            f"{REC}/subjects/{old}", json={"subject": new}, headers=key_headers(tenant)
        )

    answers = _race([rename("A", "X"), rename("B", "X")])
    for answer in answers:
        assert answer.status_code == 200 and answer.json() == {"updated": True}, answer.text
    assert tenant.client.get(f"{REC}/subjects", headers=key_headers(tenant)).json() == {"subjects": ["X"]}
    faces = tenant.client.get(f"{REC}/faces", headers=key_headers(tenant)).json()["faces"]
    assert sorted(f["image_id"] for f in faces) == sorted([image_a, image_b])
    assert {f["subject"] for f in faces} == {"X"}
    rows = _subject_rows(tenant)
    assert [name for name, _ in rows] == ["X"] and rows[0][1] is not None
    after = tenant.counts()
    assert after["faces"] == before["faces"] and after["vectors"] == before["vectors"]
    assert after["users"] == before["users"] - 1  # the merged subject's person is gone

    # A rename against a creation of the same name: exactly one of them takes the name.
    add_example(tenant, "C", photos["obama2"])

    def create() -> Any:
        return tenant.client.post(f"{REC}/subjects", json={"subject": "Y"}, headers=key_headers(tenant))

    renamed, created = _race([rename("C", "Y"), create])
    # The rename after the creation merges into it, before it renames (and the creation is refused).
    assert renamed.status_code == 200, renamed.text
    if created.status_code != 201:
        assert_cf_error(created, 400, 43)
    assert [name for name, _ in _subject_rows(tenant, "Y")] == ["Y"]
    assert "C" not in tenant.client.get(f"{REC}/subjects", headers=key_headers(tenant)).json()["subjects"]


def test_erasing_the_person_removes_the_subject(tenant: Api, photos: dict[str, bytes]) -> None:
    from facesocial.compat.compreface.subjects import subject_user_id

    add_example(tenant, "Alice", photos["obama"])
    [(name, user_id)] = _subject_rows(tenant, "Alice")
    assert name == "Alice" and user_id is not None
    # The platform's GDPR erasure of that user (not the CompreFace route) takes the name with it.
    erased = tenant.client.delete(
        f"/api/v1/face-recognition/users/{subject_user_id('Alice')}", headers=key_headers(tenant)
    )
    assert erased.status_code == 200, erased.text
    assert _subject_rows(tenant, "Alice") == []
    assert tenant.client.get(f"{REC}/subjects", headers=key_headers(tenant)).json() == {"subjects": []}
    # The name is free again.
    created = tenant.client.post(f"{REC}/subjects", json={"subject": "Alice"}, headers=key_headers(tenant))
    assert created.status_code == 201, created.text


def test_one_subject_name_in_two_tenants_is_two_independent_subjects(
    tenant: Api, photos: dict[str, bytes]
) -> None:
    other = replace(tenant, key=tenant.container.keys.create(f"other {uuid.uuid4()}").secret)
    mine = add_example(tenant, "Sam", photos["obama"]).json()["image_id"]
    theirs = add_example(other, "Sam", photos["biden"]).json()["image_id"]
    for api in (tenant, other):
        created = api.client.post(f"{REC}/subjects", json={"subject": "Pat"}, headers=key_headers(api))
        assert created.status_code == 201, created.text  # the same name in each tenant
    renamed = tenant.client.put(
        f"{REC}/subjects/Sam", json={"subject": "Samuel"}, headers=key_headers(tenant)
    )
    assert renamed.json() == {"updated": True}
    assert tenant.client.get(f"{REC}/subjects", headers=key_headers(tenant)).json()["subjects"] == [
        "Samuel",
        "Pat",
    ]
    assert other.client.get(f"{REC}/subjects", headers=key_headers(other)).json()["subjects"] == [
        "Sam",
        "Pat",
    ]
    assert other.client.get(f"{REC}/faces", headers=key_headers(other)).json()["faces"] == [
        {"image_id": theirs, "subject": "Sam"}
    ]
    # Deleting in one tenant leaves the other's subject of that name alone.
    assert other.client.delete(f"{REC}/subjects/Sam", headers=key_headers(other)).json() == {"subject": "Sam"}
    assert other.client.delete(f"{REC}/subjects/Pat", headers=key_headers(other)).json() == {"subject": "Pat"}
    assert tenant.client.get(f"{REC}/faces", headers=key_headers(tenant)).json()["faces"] == [
        {"image_id": mine, "subject": "Samuel"}
    ]
    assert tenant.client.get(f"{REC}/subjects", headers=key_headers(tenant)).json()["subjects"] == [
        "Samuel",
        "Pat",
    ]
    assert sorted(name for name, _ in _subject_rows(tenant)) == ["Pat", "Samuel"]
    assert _subject_rows(other) == []


def test_create_rename_and_delete_racing_on_subjects_never_answer_500(tenant: Api) -> None:
    """Creations, renames and deletions of the same few subjects (without examples) from several
    threads: each answers its result or CompreFace's error (42 not found, 43 exists), never a
    500 — a rename that read a subject a concurrent DELETE then removed used to flush an UPDATE
    of a vanished row (StaleDataError) on PostgreSQL. The list ends with no duplicate."""
    import random
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    names = ["Ann", "Ben", "Cy"]
    stop = time.monotonic() + 4
    answers: list[Any] = []
    lock = threading.Lock()

    def loop(seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < stop:
            a, b = rng.sample(names, 2)
            kind = rng.choice(["create", "rename", "delete"])
            if kind == "create":
                r = tenant.client.post(f"{REC}/subjects", json={"subject": a}, headers=key_headers(tenant))
            elif kind == "rename":
                r = tenant.client.put(f"{REC}/subjects/{a}", json={"subject": b}, headers=key_headers(tenant))
            else:
                r = tenant.client.delete(f"{REC}/subjects/{a}", headers=key_headers(tenant))
            with lock:
                answers.append((kind, r.status_code, r.json()))

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(loop, range(6)))
    failures = [a for a in answers if a[1] >= 500]
    assert not failures, failures[:5]
    for kind, status, body in answers:
        if status >= 400:
            assert (status, body.get("code")) in {(404, 42), (400, 43)}, (kind, status, body)
    listed = tenant.client.get(f"{REC}/subjects", headers=key_headers(tenant)).json()["subjects"]
    assert len(listed) == len(set(listed)) and set(listed) <= set(names), listed
    assert sorted(name for name, _ in _subject_rows(tenant)) == sorted(listed)


def test_recognize_leaves_out_a_subject_deleted_during_the_search(
    tenant: Api, photos: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A subject deleted between the search and the naming of its candidates is left out of
    the answer, not reported under its internal user id."""
    from facesocial.compat.compreface.subjects import subject_user_id

    assert add_example(tenant, "Gone", photos["obama"]).status_code == 201
    assert add_example(tenant, "Stays", photos["biden"]).status_code == 201
    recognition = tenant.container.recognition
    identify = recognition.identify
    caller = tenant.container.keys.authenticate(tenant.key)

    def identify_then_delete(*args: Any, **kwargs: Any) -> Any:
        outcome = identify(*args, **kwargs)
        tenant.container.users.erase(subject_user_id("Gone"), caller=caller)
        return outcome

    monkeypatch.setattr(recognition, "identify", identify_then_delete)
    answer = post_file(tenant, f"{REC}/recognize", photos["obama2"], prediction_count=2)
    assert answer.status_code == 200, answer.text
    subjects = [s["subject"] for item in answer.json()["result"] for s in item["subjects"]]
    assert subjects == ["Stays"], subjects


def test_a_first_example_names_its_subject_from_the_start(tenant: Api, photos: dict[str, bytes]) -> None:
    """Between a first example's enrolment and the link of its name the user exists: the name's
    row is reserved before the enrolment, so lists and matches show the name, never the id."""
    from facesocial.compat.compreface.subjects import SubjectStore, subject_user_id

    container = tenant.container
    tenant_id = container.keys.authenticate(tenant.key).tenant_id
    store = SubjectStore(container.database, container.index, container.user_locks, container.face_cache)
    assert store.reserve(tenant_id, "Early") is True
    assert store.reserve(tenant_id, "Early") is False  # reserved already
    external = subject_user_id("Early")
    # The enrolment's user, not linked to the row yet (what add_example's register leaves).
    registered = tenant.client.post(
        "/api/v1/face-recognition/register",
        data={"user_id": str(external), "consent": "true"},
        files={"image": ("f.jpg", photos["obama"], "image/jpeg")},
        headers=tenant.headers(),
    )
    assert registered.status_code in (200, 201), registered.text
    assert store.names(tenant_id, [external]) == {external: "Early"}
    assert store.subjects(tenant_id) == ["Early"]
    answer = post_file(tenant, f"{REC}/recognize", photos["obama2"])
    assert [s["subject"] for s in answer.json()["result"][0]["subjects"]] == ["Early"]
    store.remember(tenant_id, "Early")
    assert _subject_rows(tenant, "Early")[0][1] is not None  # linked now
    assert store.subjects(tenant_id) == ["Early"]
