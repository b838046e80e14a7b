"""``/rekognition`` driven by an unmodified boto3 client against a live ``facesocial serve``.

The AWS SDK signs every request with SigV4 (access key id and secret both a platform API key)
and parses Rekognition's shapes and errors itself, so a passing round trip means code written
for Rekognition runs here unchanged: collection -> index (real photos) -> list -> search by
image -> search by face -> compare -> detect -> delete faces -> delete collection; wrong
secrets, unknown keys, unsupported actions and another tenant are refused with Rekognition's
error codes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import shared_path
from tests.integration.conftest import RunningServer, running_server

boto3 = pytest.importorskip("boto3", reason="boto3 (dev extra) is the client under test")
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.model, pytest.mark.shared_data]

EXAMPLES = ("face_recognition_identities", "examples")
# Rekognition's landmark names (API reference, data type Landmark) this endpoint reports.
LANDMARKS = {
    "eyeLeft", "eyeRight", "nose", "mouthLeft", "mouthRight", "leftEyeBrowLeft", "leftEyeBrowRight",
    "leftEyeBrowUp", "rightEyeBrowLeft", "rightEyeBrowRight", "rightEyeBrowUp", "leftEyeLeft",
    "leftEyeRight", "leftEyeUp", "leftEyeDown", "rightEyeLeft", "rightEyeRight", "rightEyeUp",
    "rightEyeDown", "noseLeft", "noseRight", "mouthUp", "mouthDown", "leftPupil", "rightPupil",
    "upperJawlineLeft", "midJawlineLeft", "chinBottom", "midJawlineRight", "upperJawlineRight",
}  # fmt: skip
EMOTIONS = {"HAPPY", "SAD", "ANGRY", "CONFUSED", "DISGUSTED", "SURPRISED", "CALM", "UNKNOWN", "FEAR"}


def _photo(name: str) -> bytes:
    return shared_path(*EXAMPLES, name).read_bytes()


def _client(server: RunningServer, key: str, secret: str | None = None) -> Any:
    return boto3.client(
        "rekognition",
        endpoint_url=f"{server.base}/rekognition",
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret if secret is not None else key,
        # CPU inference on a shared 2-core machine: longer reads, and no silent retries.
        config=Config(read_timeout=300, retries={"max_attempts": 1}),
    )


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def _other_tenant_key(server: RunningServer) -> str:
    """An API key of a tenant of its own: a new account's key (POST /api/v1/auth/api-keys)."""
    auth = f"{server.base}/api/v1/auth"
    account = {
        "username": "rekognition_other",
        "email": "rk-other@example.org",
        "password": "a long password 1",
    }
    assert httpx.post(f"{auth}/register", json=account, timeout=60).status_code == 201
    token = httpx.post(f"{auth}/login", json=account | {"email": None}, timeout=60).json()["access_token"]
    reply = httpx.post(
        f"{auth}/api-keys", json={"name": "rk"}, headers={"Authorization": f"Bearer {token}"}, timeout=60
    )
    assert reply.status_code == 201, reply.text
    return str(reply.json()["api_key"])


@pytest.fixture(scope="module", params=["embedded", "scaled"])
def profile_name(request: pytest.FixtureRequest) -> str:
    """Each test runs on the embedded profile (SQLite, local index) and on the scaled one
    (PostgreSQL, Redis, milvus-lite): the collection names' uniqueness is the database's."""
    return str(request.param)


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, model_dir: Path, profile_name: str
) -> Iterator[RunningServer]:
    with running_server(
        tmp_path_factory.mktemp(f"rekognition-{profile_name}"), model_dir, profile_name=profile_name
    ) as running:
        yield running


def _ratio_box(box: dict[str, float]) -> None:
    assert set(box) == {"Width", "Height", "Left", "Top"}
    assert 0 < box["Width"] <= 1 and 0 < box["Height"] <= 1
    assert -0.1 < box["Left"] < 1 and -0.1 < box["Top"] < 1


def test_round_trip_with_an_unmodified_boto3_client(server: RunningServer) -> None:
    client = _client(server, server.key)
    created = client.create_collection(CollectionId="people")
    assert created["StatusCode"] == 200 and created["CollectionArn"].endswith(":collection/people")
    with pytest.raises(ClientError) as again:
        client.create_collection(CollectionId="people")
    assert _code(again) == "ResourceAlreadyExistsException"
    assert "people" in client.list_collections()["CollectionIds"]

    ids: dict[str, str] = {}
    for name in ("obama", "biden"):
        indexed = client.index_faces(
            CollectionId="people", Image={"Bytes": _photo(f"{name}.jpg")}, ExternalImageId=name
        )
        assert len(indexed["FaceRecords"]) == 1, indexed
        face = indexed["FaceRecords"][0]["Face"]
        assert face["ExternalImageId"] == name and 0 < face["Confidence"] <= 100
        _ratio_box(face["BoundingBox"])
        ids[name] = face["FaceId"]
    listed = client.list_faces(CollectionId="people")["Faces"]
    assert {f["FaceId"]: f["ExternalImageId"] for f in listed} == {v: k for k, v in ids.items()}
    assert client.describe_collection(CollectionId="people")["FaceCount"] == 2

    # Another photo of Obama finds Obama, above Rekognition's default threshold (80), not Biden.
    found = client.search_faces_by_image(CollectionId="people", Image={"Bytes": _photo("obama2.jpg")})
    assert [m["Face"]["FaceId"] for m in found["FaceMatches"]] == [ids["obama"]], found["FaceMatches"]
    assert 80 <= found["FaceMatches"][0]["Similarity"] <= 100
    assert found["FaceMatches"][0]["Face"]["ExternalImageId"] == "obama"
    _ratio_box(found["SearchedFaceBoundingBox"])
    # With no threshold, Biden is listed too, below Obama.
    loose = client.search_faces_by_image(
        CollectionId="people", Image={"Bytes": _photo("obama2.jpg")}, FaceMatchThreshold=0
    )
    ranked = [m["Face"]["FaceId"] for m in loose["FaceMatches"]]
    assert ranked[0] == ids["obama"]
    if len(ranked) > 1:
        assert loose["FaceMatches"][1]["Similarity"] < 80

    ids["obama2"] = client.index_faces(
        CollectionId="people", Image={"Bytes": _photo("obama2.jpg")}, ExternalImageId="obama2"
    )["FaceRecords"][0]["Face"]["FaceId"]
    by_face = client.search_faces(CollectionId="people", FaceId=ids["obama"])
    assert by_face["SearchedFaceId"] == ids["obama"]
    assert [m["Face"]["FaceId"] for m in by_face["FaceMatches"]] == [ids["obama2"]]

    same = client.compare_faces(
        SourceImage={"Bytes": _photo("obama.jpg")}, TargetImage={"Bytes": _photo("obama2.jpg")}
    )
    assert len(same["FaceMatches"]) == 1 and same["FaceMatches"][0]["Similarity"] >= 80
    assert same["UnmatchedFaces"] == []
    _ratio_box(same["SourceImageFace"]["BoundingBox"])
    other = client.compare_faces(
        SourceImage={"Bytes": _photo("obama.jpg")}, TargetImage={"Bytes": _photo("biden.jpg")}
    )
    assert other["FaceMatches"] == [] and len(other["UnmatchedFaces"]) == 1
    # SimilarityThreshold 0 lists every target face as a match, Biden well below Obama's score.
    every = client.compare_faces(
        SourceImage={"Bytes": _photo("obama.jpg")},
        TargetImage={"Bytes": _photo("biden.jpg")},
        SimilarityThreshold=0,
    )
    assert len(every["FaceMatches"]) == 1 and every["UnmatchedFaces"] == []
    assert every["FaceMatches"][0]["Similarity"] < same["FaceMatches"][0]["Similarity"] - 20

    deleted = client.delete_faces(
        CollectionId="people", FaceIds=[ids["obama2"], "00000000-0000-4000-8000-000000000000"]
    )
    assert deleted["DeletedFaces"] == [ids["obama2"]]
    assert deleted["UnsuccessfulFaceDeletions"][0]["Reasons"] == ["FACE_NOT_FOUND"]
    assert {f["FaceId"] for f in client.list_faces(CollectionId="people")["Faces"]} == {
        ids["obama"],
        ids["biden"],
    }

    assert client.delete_collection(CollectionId="people")["StatusCode"] == 200
    with pytest.raises(ClientError) as gone:
        client.describe_collection(CollectionId="people")
    assert _code(gone) == "ResourceNotFoundException"
    # The biometric data went with the collection: the platform's own 1:N finds nobody.
    identify = httpx.post(
        f"{server.base}/api/v1/face-recognition/identify",
        headers={"X-API-Key": server.key},
        files={"image": ("obama.jpg", _photo("obama.jpg"), "image/jpeg")},
        timeout=300,
    )
    assert identify.status_code == 200 and identify.json()["candidates"] == []


def test_detect_faces_in_rekognition_shapes(server: RunningServer) -> None:
    client = _client(server, server.key)
    default = client.detect_faces(Image={"Bytes": _photo("obama.jpg")})["FaceDetails"]
    assert len(default) == 1
    assert "AgeRange" not in default[0] and "Emotions" not in default[0]
    detail = client.detect_faces(Image={"Bytes": _photo("obama.jpg")}, Attributes=["ALL"])["FaceDetails"][0]
    _ratio_box(detail["BoundingBox"])
    assert 50 < detail["Confidence"] <= 100
    points = {p["Type"]: (p["X"], p["Y"]) for p in detail["Landmarks"]}
    assert set(points) == LANDMARKS
    box = detail["BoundingBox"]
    for x, y in points.values():  # every landmark on (or just around) the face
        assert box["Left"] - 0.1 * box["Width"] < x < box["Left"] + 1.1 * box["Width"]
        assert box["Top"] - 0.1 * box["Height"] < y < box["Top"] + 1.2 * box["Height"]
    assert points["eyeLeft"][0] < points["nose"][0] < points["eyeRight"][0]
    assert points["mouthLeft"][0] < points["mouthRight"][0]
    assert points["eyeLeft"][1] < points["nose"][1] < points["mouthUp"][1] < points["chinBottom"][1]
    # The mesh's eye centres agree with the platform's own 5-point landmarks (dlib's shape
    # predictor, an independent model) to within 3 % of the face's width.
    reply = httpx.post(
        f"{server.base}/api/v1/face-detection/detect",
        headers={"X-API-Key": server.key},
        files={"image": ("obama.jpg", _photo("obama.jpg"), "image/jpeg")},
        timeout=300,
    )
    assert reply.status_code == 200, reply.text
    five = {p["name"]: (p["x"], p["y"]) for p in reply.json()["faces"][0]["landmarks"]}
    width, height = reply.json()["image"]["width"], reply.json()["image"]["height"]
    for name, side in (("eyeLeft", "right"), ("eyeRight", "left")):  # dlib names the subject's side
        x = (five[f"{side}_eye_outer"][0] + five[f"{side}_eye_inner"][0]) / 2 / width
        y = (five[f"{side}_eye_outer"][1] + five[f"{side}_eye_inner"][1]) / 2 / height
        assert abs(points[name][0] - x) < 0.03 * box["Width"], (name, points[name], x)
        assert abs(points[name][1] - y) < 0.03 * box["Width"] * width / height, (name, points[name], y)
    assert set(detail["Pose"]) == {"Roll", "Yaw", "Pitch"}
    assert all(abs(v) < 30 for v in detail["Pose"].values())  # a frontal portrait
    assert set(detail["Quality"]) == {"Brightness", "Sharpness"}
    assert all(0 <= v <= 100 for v in detail["Quality"].values())
    assert detail["Gender"]["Value"] == "Male" and 50 <= detail["Gender"]["Confidence"] <= 100
    assert 0 <= detail["AgeRange"]["Low"] <= detail["AgeRange"]["High"] <= 100
    assert {e["Type"] for e in detail["Emotions"]} <= EMOTIONS
    assert all(0 <= e["Confidence"] <= 100 for e in detail["Emotions"])


def test_credentials_are_checked_with_rekognition_errors(server: RunningServer) -> None:
    with pytest.raises(ClientError) as wrong_secret:
        _client(server, server.key, secret="not the key").list_collections()
    assert _code(wrong_secret) == "InvalidSignatureException"
    assert wrong_secret.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as unknown:
        _client(server, "fs_" + "x" * 43).list_collections()
    assert _code(unknown) == "UnrecognizedClientException"
    unsigned = httpx.post(
        f"{server.base}/rekognition",
        headers={
            "X-Amz-Target": "RekognitionService.ListCollections",
            "Content-Type": "application/x-amz-json-1.1",
        },
        content=b"{}",
        timeout=60,
    )
    assert unsigned.status_code == 400
    assert unsigned.json()["__type"] == "MissingAuthenticationTokenException"


def test_unsupported_actions_and_inputs(server: RunningServer) -> None:
    client = _client(server, server.key)
    with pytest.raises(ClientError) as labels:
        client.detect_labels(Image={"Bytes": _photo("obama.jpg")})
    assert _code(labels) == "UnknownOperationException"
    with pytest.raises(ClientError) as s3:
        client.detect_faces(Image={"S3Object": {"Bucket": "a-bucket", "Name": "obama.jpg"}})
    assert _code(s3) == "InvalidParameterException" and "not supported" in str(s3.value)
    with pytest.raises(ClientError) as garbage:
        client.detect_faces(Image={"Bytes": b"not an image at all"})
    assert _code(garbage) == "InvalidImageFormatException"
    with pytest.raises(ClientError) as missing:
        client.list_faces(CollectionId="no-such-collection")
    assert _code(missing) == "ResourceNotFoundException"


def test_a_collection_belongs_to_its_tenant(server: RunningServer) -> None:
    mine = _client(server, server.key)
    mine.create_collection(CollectionId="private")
    face_id = mine.index_faces(CollectionId="private", Image={"Bytes": _photo("biden.jpg")})["FaceRecords"][
        0
    ]["Face"]["FaceId"]
    theirs = _client(server, _other_tenant_key(server))
    assert "private" not in theirs.list_collections()["CollectionIds"]
    for call in (
        lambda: theirs.describe_collection(CollectionId="private"),
        lambda: theirs.list_faces(CollectionId="private"),
        lambda: theirs.search_faces(CollectionId="private", FaceId=face_id),
        lambda: theirs.search_faces_by_image(CollectionId="private", Image={"Bytes": _photo("biden.jpg")}),
        lambda: theirs.delete_faces(CollectionId="private", FaceIds=[face_id]),
        lambda: theirs.delete_collection(CollectionId="private"),
    ):
        with pytest.raises(ClientError) as refused:
            call()
        assert _code(refused) == "ResourceNotFoundException"
    # The same name is free in the other tenant, and its collection holds none of mine.
    theirs.create_collection(CollectionId="private")
    assert theirs.list_faces(CollectionId="private")["Faces"] == []
    assert [f["FaceId"] for f in mine.list_faces(CollectionId="private")["Faces"]] == [face_id]


def test_concurrent_create_collection_of_one_name_has_exactly_one_winner(server: RunningServer) -> None:
    """Real threads calling CreateCollection with one name at the same moment: one success, the
    others ResourceAlreadyExistsException, and one collection (one face group) remains; repeated
    over fresh names, with two threads (the common race) and with eight."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    for round_, threads in enumerate([2, 2, 2, 8]):
        name = f"race-{round_}"
        clients = [_client(server, server.key) for _ in range(threads)]  # boto3 clients per thread
        barrier = threading.Barrier(threads)

        def create(client: Any, name: str = name, barrier: threading.Barrier = barrier) -> str:
            barrier.wait(timeout=60)
            try:
                client.create_collection(CollectionId=name)
            except ClientError as exc:
                return str(exc.response["Error"]["Code"])
            return "created"

        with ThreadPoolExecutor(threads) as pool:
            outcomes = sorted(pool.map(create, clients))
        assert outcomes == ["ResourceAlreadyExistsException"] * (threads - 1) + ["created"], outcomes
        assert clients[0].list_collections()["CollectionIds"].count(name) == 1
        groups = httpx.get(
            f"{server.base}/api/v1/face-recognition/groups",
            params={"limit": 1000},
            headers={"X-API-Key": server.key},
            timeout=60,
        )
        assert groups.status_code == 200, groups.text
        assert [g["group_name"] for g in groups.json()["groups"]].count(name) == 1
        clients[0].delete_collection(CollectionId=name)
        # Deleting the collection frees its name (the name's row goes with the group).
        assert clients[0].create_collection(CollectionId=name)["StatusCode"] == 200
        clients[0].delete_collection(CollectionId=name)


def _new_tenant_key(server: RunningServer) -> str:
    """An API key of a fresh tenant (a new account), so CompreFace's example list
    (``GET /api/v1/recognition/faces``: every active face of the tenant) shows only this test's."""
    import uuid

    auth = f"{server.base}/api/v1/auth"
    n = uuid.uuid4().hex[:10]
    account = {"username": f"rk{n}", "email": f"{n}@example.org", "password": "a long password 1"}
    assert httpx.post(f"{auth}/register", json=account, timeout=60).status_code == 201
    token = httpx.post(f"{auth}/login", json=account | {"email": None}, timeout=60).json()["access_token"]
    reply = httpx.post(
        f"{auth}/api-keys", json={"name": "rk"}, headers={"Authorization": f"Bearer {token}"}, timeout=60
    )
    assert reply.status_code == 201, reply.text
    return str(reply.json()["api_key"])


def _active_faces(server: RunningServer, key: str) -> int:
    """Every active face of the key's tenant, whatever API enrolled it and whatever its groups."""
    reply = httpx.get(
        f"{server.base}/api/v1/recognition/faces", params={"size": 1}, headers={"x-api-key": key}, timeout=60
    )
    assert reply.status_code == 200, reply.text
    return int(reply.json()["total_elements"])


def test_deleting_a_collections_group_on_the_platform_erases_its_indexed_faces(
    server: RunningServer,
) -> None:
    """``DELETE /api/v1/face-recognition/groups/{id}`` of a collection's group is a
    DeleteCollection: the faces IndexFaces enrolled into it are erased (not left active in no
    collection, unreachable through Rekognition); a face enrolled through ``/api/v1`` and added
    to the group keeps its data."""
    import uuid

    key = _new_tenant_key(server)
    client = _client(server, key)
    headers = {"X-API-Key": key}
    client.create_collection(CollectionId="plat")
    client.index_faces(CollectionId="plat", Image={"Bytes": _photo("biden.jpg")})
    groups = httpx.get(f"{server.base}/api/v1/face-recognition/groups", headers=headers, timeout=60).json()
    group_id = next(g["group_id"] for g in groups["groups"] if g["group_name"] == "plat")
    platform_user = str(uuid.uuid4())
    registered = httpx.post(
        f"{server.base}/api/v1/face-recognition/register",
        data={"user_id": platform_user, "consent": "true"},
        files={"image": ("f.jpg", _photo("obama.jpg"), "image/jpeg")},
        headers=headers,
        timeout=300,
    )
    assert registered.status_code in (200, 201), registered.text
    added = httpx.post(
        f"{server.base}/api/v1/face-recognition/groups/{group_id}/members",
        json={"user_ids": [platform_user]},
        headers=headers,
        timeout=60,
    )
    assert added.status_code == 200, added.text
    assert _active_faces(server, key) == 2
    deleted = httpx.delete(
        f"{server.base}/api/v1/face-recognition/groups/{group_id}", headers=headers, timeout=60
    )
    assert deleted.status_code == 200, deleted.text
    assert _active_faces(server, key) == 1  # the indexed face is erased, the platform user's stays
    kept = httpx.get(
        f"{server.base}/api/v1/face-recognition/users/{platform_user}", headers=headers, timeout=60
    )
    assert kept.status_code == 200, kept.text
    for call in (
        lambda: client.describe_collection(CollectionId="plat"),
        lambda: client.list_faces(CollectionId="plat"),
        lambda: client.delete_collection(CollectionId="plat"),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert _code(exc) == "ResourceNotFoundException"
    client.create_collection(CollectionId="plat")
    assert client.describe_collection(CollectionId="plat")["FaceCount"] == 0


def test_index_faces_racing_delete_collection_leaves_no_face_behind(server: RunningServer) -> None:
    """IndexFaces and DeleteCollection of one collection at the same moment: the indexing either
    lands before the deletion (and its face is erased with the collection) or is refused with
    ResourceNotFoundException; never a 5xx, never an active face in no collection."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    key = _new_tenant_key(server)
    photo = _photo("obama.jpg")
    clients = [_client(server, key) for _ in range(3)]
    outcomes: list[str] = []
    for _round in range(3):
        clients[0].create_collection(CollectionId="racing")
        barrier = threading.Barrier(3)

        def call(n: int, barrier: threading.Barrier = barrier) -> str:
            barrier.wait(timeout=60)
            try:
                if n == 0:
                    clients[n].delete_collection(CollectionId="racing")
                else:
                    clients[n].index_faces(CollectionId="racing", Image={"Bytes": photo})
            except ClientError as exc:
                status = exc.response["ResponseMetadata"]["HTTPStatusCode"]
                assert status < 500, exc.response
                return str(exc.response["Error"]["Code"])
            return "ok"

        with ThreadPoolExecutor(3) as pool:
            outcomes += list(pool.map(call, range(3)))
        with pytest.raises(ClientError) as exc:
            clients[0].describe_collection(CollectionId="racing")
        assert _code(exc) == "ResourceNotFoundException"
        assert _active_faces(server, key) == 0, outcomes
    assert set(outcomes) <= {"ok", "ResourceNotFoundException"}, outcomes


def test_through_the_nginx_gateway_on_a_non_default_port(
    server: RunningServer, tmp_path: Path, profile_name: str
) -> None:
    """deploy/nginx/nginx.conf in front of the live server, on a port that is not 80: SigV4 signs
    ``Host`` with its port, so the gateway must pass the client's Host on unchanged."""
    if profile_name != "embedded":
        pytest.skip("the gateway forwards HTTP whatever the stores: one profile exercises it")
    import os
    import re
    import shutil
    import signal
    import subprocess
    import time

    from tests.services import free_port

    binary = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )
    if binary is None:
        pytest.skip("nginx is not installed (apt-get install nginx-light): gateway not exercised")
    port = free_port()
    text = (Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "nginx.conf").read_text(
        encoding="utf-8"
    )
    text = re.sub(r"(?m)^(\s*server\s+)api:8000", rf"\g<1>127.0.0.1:{server.port}", text)
    text = re.sub(r"(?m)^(\s*listen\s+)80;", rf"\g<1>127.0.0.1:{port};", text)
    # Workers of a root master run as its `user`: root here, so they can write request bodies
    # into the test's private temporary folder.
    text = re.sub(r"(?m)^user\s+[^;]+;", "user root;" if os.geteuid() == 0 else "", text)
    text = text.replace("/var/log/nginx", str(tmp_path)).replace("/var/run/nginx.pid", str(tmp_path / "pid"))
    if not Path("/etc/nginx/mime.types").exists():
        text = text.replace("include /etc/nginx/mime.types;", "types { application/json json; }")
    temp_paths = "".join(
        f"    {kind}_temp_path {tmp_path / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = tmp_path / "nginx.conf"
    conf.write_text(text.replace("http {\n", "http {\n" + temp_paths, 1), encoding="utf-8")
    gateway = subprocess.Popen(
        [
            binary,
            "-p",
            str(tmp_path),
            "-c",
            str(conf),
            "-e",
            str(tmp_path / "error.log"),
            "-g",
            "daemon off;",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/gateway/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and gateway.poll() is None, "the gateway did not start"
            time.sleep(0.2)
        through = RunningServer(port, server.key)
        client = _client(through, server.key)
        assert isinstance(client.list_collections()["CollectionIds"], list)
        assert len(client.detect_faces(Image={"Bytes": _photo("biden.jpg")})["FaceDetails"]) == 1
        with pytest.raises(ClientError) as wrong:
            _client(through, server.key, secret="not the key").list_collections()
        assert _code(wrong) == "InvalidSignatureException"
    finally:
        gateway.send_signal(signal.SIGQUIT)
        gateway.wait(timeout=30)
