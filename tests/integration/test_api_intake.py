"""Every image route takes multipart or JSON with base64 images, with the same results and errors.

Also: free-text fields (trimmed, no control characters), contradictory options, and batches
where some or all items fail. Runs on both profiles through the shared ``api`` fixture.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.integration.conftest import Api
from tests.unit.test_image_decode import png_claiming

pytestmark = pytest.mark.integration
DETECT = "/api/v1/face-detection/detect"
REC = "/api/v1/face-recognition"
DEMO = "/api/v1/demographics"


# --- base64 forms a client may send ---------------------------------------------------------------


def standard(data: bytes) -> str:
    return base64.b64encode(data).decode()


def urlsafe_unpadded(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def data_uri(data: bytes) -> str:
    return "data:image/jpeg;base64," + standard(data)


def mime_wrapped(data: bytes) -> str:
    return base64.encodebytes(data).decode().replace("\n", "\r\n")  # 76 columns, CRLF


ENCODINGS: list[Callable[[bytes], str]] = [standard, urlsafe_unpadded, data_uri, mime_wrapped]


def jpeg(data: bytes, name: str = "a.jpg") -> tuple[str, bytes, str]:
    return (name, data, "image/jpeg")


def error_of(response: Any) -> tuple[int, str]:
    body = response.json()
    assert body["success"] is False, response.text
    assert body["error"]["message"]
    return response.status_code, body["error"]["code"]


def boxes(body: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [tuple(f["bbox"].values()) for f in body["faces"]]


# --- same result for the same image ---------------------------------------------------------------


@pytest.mark.parametrize("encode", ENCODINGS, ids=lambda f: f.__name__)
def test_detect_json_equals_multipart(
    api: Api, three_astronauts_jpeg: bytes, encode: Callable[[bytes], str]
) -> None:
    multipart = api.post(DETECT, files={"image": jpeg(three_astronauts_jpeg)}, data={"max_faces": "2"})
    as_json = api.post(DETECT, json={"image": encode(three_astronauts_jpeg), "max_faces": 2})
    assert multipart.status_code == as_json.status_code == 200, as_json.text
    first, second = multipart.json(), as_json.json()
    assert first["faces_detected"] == second["faces_detected"] == 2
    assert boxes(first) == boxes(second)
    assert [f["landmarks"] for f in first["faces"]] == [f["landmarks"] for f in second["faces"]]
    assert first["image"] == second["image"]  # same bytes: same size, format, byte count


def test_recognition_json_equals_multipart(
    api: Api, astronaut_jpeg: bytes, astronaut_variant_jpeg: bytes
) -> None:
    user = uuid.uuid4()
    enrolled = api.post(
        f"{REC}/register",
        json={
            "user_id": str(user),
            "consent": True,
            "image": data_uri(astronaut_jpeg),
            "registration_source": " kiosk ",
        },
    )
    assert enrolled.status_code == 200, enrolled.text
    face_id = enrolled.json()["face_id"]

    by_form = api.post(
        f"{REC}/verify", files={"image": jpeg(astronaut_variant_jpeg)}, data={"user_id": str(user)}
    )
    by_json = api.post(
        f"{REC}/verify", json={"image": standard(astronaut_variant_jpeg), "user_id": str(user)}
    )
    assert by_form.status_code == by_json.status_code == 200, by_json.text
    assert by_form.json()["match"] is by_json.json()["match"] is True
    assert by_form.json()["similarity"] == by_json.json()["similarity"]

    pair_form = api.post(
        f"{REC}/verify",
        files={"image": jpeg(astronaut_jpeg), "image2": jpeg(astronaut_variant_jpeg)},
        data={"mode": "strict"},
    ).json()
    pair_json = api.post(
        f"{REC}/verify",
        json={
            "image": standard(astronaut_jpeg),
            "image2": urlsafe_unpadded(astronaut_variant_jpeg),
            "mode": "strict",
        },
    ).json()
    assert pair_form["similarity"] == pair_json["similarity"] and pair_json["threshold_mode"] == "strict"

    found_form = api.post(
        f"{REC}/identify", files={"image": jpeg(astronaut_variant_jpeg)}, data={"top_k": "1"}
    ).json()
    found_json = api.post(
        f"{REC}/identify", json={"image": mime_wrapped(astronaut_variant_jpeg), "top_k": 1}
    ).json()
    assert found_form["candidates"] == found_json["candidates"]
    assert found_json["candidates"][0]["face_id"] == face_id
    assert api.client.delete(f"{REC}/users/{user}", headers=api.headers()).status_code == 200


def test_demographics_json_equals_multipart(api: Api, astronaut_jpeg: bytes, no_face_jpeg: bytes) -> None:
    if api.container.pipeline.attributes is None:
        pytest.skip("the model pack is not converted here (make test fetches it with npm)")
    by_form = api.post(f"{DEMO}/analyze", files={"image": jpeg(astronaut_jpeg)}).json()
    by_json = api.post(f"{DEMO}/analyze", json={"image": standard(astronaut_jpeg)}).json()
    keys = ("estimated_age", "gender", "gender_confidence", "emotion")
    assert [[f[k] for k in keys] for f in by_form["faces"]] == [
        [f[k] for k in keys] for f in by_json["faces"]
    ]

    files = [("images", jpeg(astronaut_jpeg, "one.jpg")), ("images", jpeg(no_face_jpeg, "two.jpg"))]
    batch_form = api.client.post(f"{DEMO}/batch", files=files, headers=api.headers()).json()
    batch_json = api.post(
        f"{DEMO}/batch",
        json={"images": [{"filename": "one.jpg", "image": standard(astronaut_jpeg)}, data_uri(no_face_jpeg)]},
    ).json()
    assert [(r["success"], r["faces_detected"]) for r in batch_form["results"]] == [
        (r["success"], r["faces_detected"]) for r in batch_json["results"]
    ]
    assert [r["filename"] for r in batch_json["results"]] == ["one.jpg", ""]


# --- same errors for the same bad image -----------------------------------------------------------

BAD_IMAGES: list[tuple[str, Callable[[dict[str, bytes]], bytes], int, str]] = [
    ("empty", lambda f: b"", 400, "EMPTY_IMAGE"),
    ("text", lambda f: b"hello, I am not an image\n" * 4, 415, "NOT_AN_IMAGE"),
    (
        "truncated-jpeg",
        lambda f: f["astronaut_jpeg"][: len(f["astronaut_jpeg"]) // 3],
        422,
        "IMAGE_TRUNCATED",
    ),
    ("png-30000x30000", lambda f: png_claiming(30000, 30000), 413, "DECOMPRESSION_BOMB"),
    ("no-face", lambda f: f["no_face_jpeg"], 422, "NO_FACE_FOUND"),
]


# Detection answers zero faces rather than NO_FACE_FOUND: that case does not apply to it.
_BAD_IMAGE_CASES = [
    pytest.param(route, *bad, id=f"{route}-{bad[0]}")
    for route in ("register", "identify", "detect")
    for bad in BAD_IMAGES
    if not (route == "detect" and bad[3] == "NO_FACE_FOUND")
]


@pytest.mark.parametrize(("route", "case", "make", "status", "code"), _BAD_IMAGE_CASES)
def test_bad_images_have_the_same_code_in_both_kinds(
    api: Api,
    request: pytest.FixtureRequest,
    route: str,
    case: str,
    make: Callable[[dict[str, bytes]], bytes],
    status: int,
    code: str,
) -> None:
    fixtures = {name: request.getfixturevalue(name) for name in ("astronaut_jpeg", "no_face_jpeg")}
    data = make(fixtures)
    path, fields = {
        "register": (f"{REC}/register", {"user_id": str(uuid.uuid4()), "consent": "true"}),
        "identify": (f"{REC}/identify", {}),
        "detect": (DETECT, {}),
    }[route]
    before = api.counts()
    by_form = api.post(path, files={"image": jpeg(data)}, data=fields)
    by_json = api.post(path, json={**fields, "image": standard(data)})
    assert error_of(by_form) == error_of(by_json) == (status, code)
    after = api.counts()
    assert (after["users"], after["faces"], after["vectors"]) == (
        before["users"],
        before["faces"],
        before["vectors"],
    )


JSON_ONLY_ERRORS: list[tuple[str, Any, int, str]] = [
    ("not-base64", {"image": "this is not base64!"}, 422, "INVALID_BASE64"),
    ("impossible-length", {"image": "QUJDR"}, 422, "INVALID_BASE64"),
    ("mixed-alphabets", {"image": "ab+-cd/_"}, 422, "INVALID_BASE64"),
    ("data-uri-not-base64", {"image": "data:image/png,%89PNG"}, 422, "INVALID_BASE64"),
    ("non-ascii", {"image": "QUJD\u00e9Q"}, 422, "INVALID_BASE64"),
    ("number", {"image": 12345}, 422, "VALIDATION_ERROR"),
    ("object", {"image": {"data": "QUJD"}}, 422, "VALIDATION_ERROR"),
    ("missing", {"max_faces": 3}, 422, "VALIDATION_ERROR"),
    ("unknown-field", {"image": "QUJD", "max_facez": 3}, 422, "VALIDATION_ERROR"),
    ("wrong-option-type", {"image": "QUJD", "max_faces": "many"}, 422, "VALIDATION_ERROR"),
    ("array-body", ["QUJD"], 422, "VALIDATION_ERROR"),
]


@pytest.mark.parametrize(
    ("case", "body", "status", "code"), JSON_ONLY_ERRORS, ids=[c[0] for c in JSON_ONLY_ERRORS]
)
def test_json_body_errors(api: Api, case: str, body: Any, status: int, code: str) -> None:
    assert error_of(api.post(DETECT, json=body)) == (status, code)


@pytest.mark.parametrize(
    "headers",
    [{"Content-Type": "text/plain"}, {"Content-Type": "application/xml"}, {}],
    ids=["text", "xml", "none"],
)
def test_other_content_types_are_415(api: Api, headers: dict[str, str]) -> None:
    response = api.client.post(DETECT, content=b"<image/>", headers={**api.headers(), **headers})
    assert error_of(response) == (415, "UNSUPPORTED_MEDIA_TYPE")
    assert "multipart/form-data" in response.json()["error"]["message"]
    assert "application/json" in response.json()["error"]["message"]


def test_malformed_json_is_a_validation_error(api: Api) -> None:
    response = api.client.post(
        DETECT, content=b'{"image": ', headers={**api.headers(), "Content-Type": "application/json"}
    )
    assert error_of(response) == (422, "VALIDATION_ERROR")


MALFORMED_JSON: list[tuple[str, bytes, str]] = [
    # json.loads raises ValueError / RecursionError for the first three: they were 500s.
    ("huge-int", b'{"image": "QUJD", "top_k": 1' + b"0" * 5000 + b"}", "a number has too many digits"),
    ("deep", b"[" * 2000 + b"]" * 2000, "arrays or objects are nested too deeply"),
    ("deep-field", b'{"user_ids": ' + b'{"a":' * 2000 + b"1" + b"}" * 2001, "nested too deeply"),
    # Groups and members answered these 400 BAD_REQUEST, or named the offset "18" as the field.
    ("truncated", b'{"group_name": "x"', "Expecting ',' delimiter at character 18"),
    ("not-utf8", b"\xff\xfe\x00", "not UTF-8"),
]
JSON_ROUTES = [
    DETECT,
    f"{REC}/identify",
    f"{DEMO}/batch",
    f"{REC}/groups",
    f"{REC}/groups/{uuid.uuid4()}/members",
]


@pytest.mark.parametrize("route", JSON_ROUTES, ids=["detect", "identify", "batch", "groups", "members"])
@pytest.mark.parametrize(
    ("body", "problem"), [m[1:] for m in MALFORMED_JSON], ids=[m[0] for m in MALFORMED_JSON]
)
def test_malformed_json_is_the_same_answer_on_every_route(
    api: Api, route: str, body: bytes, problem: str
) -> None:
    response = api.client.post(
        route, content=body, headers={**api.headers(), "Content-Type": "application/json"}
    )
    assert error_of(response) == (422, "VALIDATION_ERROR")
    [detail] = response.json()["error"]["details"]
    assert detail["field"] == "body"
    assert detail["problem"].startswith("The body is not valid JSON: ") and problem in detail["problem"]


def test_a_field_sent_twice_in_json_is_refused_like_in_multipart(api: Api, astronaut_jpeg: bytes) -> None:
    before = api.counts()
    person = str(uuid.uuid4())
    # A proxy or log reading the first "consent" would see a refusal; the last one must not win.
    body = (
        f'{{"user_id": "{person}", "consent": false, "image": "{standard(astronaut_jpeg)}", "consent": true}}'
    )
    by_json = api.client.post(
        f"{REC}/register", content=body, headers={**api.headers(), "Content-Type": "application/json"}
    )
    by_form = api.client.post(
        f"{REC}/register",
        files=[("image", jpeg(astronaut_jpeg)), ("consent", (None, "false")), ("consent", (None, "true"))],
        data={"user_id": person},
        headers=api.headers(),
    )
    for response in (by_json, by_form):
        assert error_of(response) == (422, "VALIDATION_ERROR")
        assert response.json()["error"]["details"] == [
            {"field": "consent", "problem": "sent 2 times; send it once"}
        ]
    groups = api.client.post(
        f"{REC}/groups",
        content=b'{"group_name": "a", "group_name": "b"}',
        headers={**api.headers(), "Content-Type": "application/json"},
    )
    assert error_of(groups) == (422, "VALIDATION_ERROR")
    assert groups.json()["error"]["details"][0]["field"] == "group_name"
    after = api.counts()
    assert (after["users"], after["faces"], after["vectors"]) == (
        before["users"],
        before["faces"],
        before["vectors"],
    )


@pytest.mark.parametrize("value", ["yes", "on", "1", "t", 1, "truee"])
def test_consent_is_true_or_false_only(api: Api, astronaut_jpeg: bytes, value: object) -> None:
    before = api.counts()
    person = str(uuid.uuid4())
    by_json = api.post(
        f"{REC}/register", json={"user_id": person, "consent": value, "image": standard(astronaut_jpeg)}
    )
    by_form = api.post(
        f"{REC}/register",
        files={"image": jpeg(astronaut_jpeg)},
        data={"user_id": person, "consent": str(value)},
    )
    for response in (by_json, by_form):
        assert error_of(response) == (422, "VALIDATION_ERROR")
        assert response.json()["error"]["details"] == [
            {"field": "consent", "problem": "must be true or false"}
        ]
    assert api.counts()["faces"] == before["faces"]


def test_booleans_are_read_in_any_case(api: Api, astronaut_jpeg: bytes) -> None:
    person = str(uuid.uuid4())
    registered = api.post(
        f"{REC}/register", files={"image": jpeg(astronaut_jpeg)}, data={"user_id": person, "consent": "True"}
    )
    assert registered.status_code == 200, registered.text
    api.client.delete(f"{REC}/users/{person}", headers=api.headers())
    refused = api.post(
        f"{REC}/register", files={"image": jpeg(astronaut_jpeg)}, data={"user_id": person, "consent": "FALSE"}
    )
    assert error_of(refused) == (403, "CONSENT_REQUIRED")


# --- free text -------------------------------------------------------------------------------------

GROUP_NAMES: list[tuple[str, str | None]] = [
    (" staff ", "staff"),
    ("\tNight shift\u3000", "Night shift"),  # any Unicode whitespace around the name
    ("Équipe №2", "Équipe №2"),
    ("\x00bad", None),
    ("   ", None),
    ("", None),
    ("a\nb", None),
    ("bell\x07", None),
    ("\ud800lone surrogate", None),  # JSON allows the escape; no UTF-8 column can store it
    ("x" * 101, None),
    # Shown as something else: a right-to-left override, an isolate, invisible characters.
    ("staff\u202egnp.exe", None),
    ("a\u202ab", None),
    ("\u2066x\u2069", None),
    ("zero\u200bwidth", None),
    ("\ufeffbom", None),
    ("join\u200demoji", "join\u200demoji"),  # the zero-width joiner belongs to emoji and scripts
]


@pytest.mark.parametrize(("name", "stored"), GROUP_NAMES, ids=[repr(n)[:20] for n, _ in GROUP_NAMES])
def test_group_names(api: Api, name: str, stored: str | None) -> None:
    # json.dumps escapes everything to ASCII, so even a lone surrogate reaches the server.
    response = api.client.post(
        f"{REC}/groups",
        content=json.dumps({"group_name": name}),
        headers={**api.headers(), "Content-Type": "application/json"},
    )
    if stored is None:
        assert error_of(response) == (422, "VALIDATION_ERROR")
        assert "group_name" in response.json()["error"]["message"]
        return
    assert response.status_code == 201, response.text
    group = response.json()["group"]
    assert group["group_name"] == stored
    fetched = api.client.get(f"{REC}/groups/{group['group_id']}", headers=api.headers()).json()["group"]
    assert fetched["group_name"] == stored
    api.client.delete(f"{REC}/groups/{group['group_id']}", headers=api.headers())


@pytest.mark.parametrize(
    ("description", "stored"),
    [
        (" two\nlines\twith tab ", "two\nlines\twith tab"),
        ("nul\x00", None),
        ("  ", None),
        ("rtl\u202eoverride", None),
        ("ภาษา\u200bไทย", "ภาษา\u200bไทย"),  # Thai marks word breaks with a zero-width space
    ],
    ids=["multiline", "nul", "blank", "rtl-override", "thai-zwsp"],
)
def test_group_descriptions(api: Api, description: str, stored: str | None) -> None:
    response = api.post(f"{REC}/groups", json={"group_name": "described", "description": description})
    if stored is None:
        assert error_of(response) == (422, "VALIDATION_ERROR")
        assert "description" in response.json()["error"]["message"]
        return
    assert response.status_code == 201 and response.json()["group"]["description"] == stored
    api.client.delete(f"{REC}/groups/{response.json()['group']['group_id']}", headers=api.headers())


def test_registration_source_is_free_text(api: Api, astronaut_jpeg: bytes) -> None:
    before = api.counts()
    fields = {"user_id": str(uuid.uuid4()), "consent": "true", "registration_source": "app\x1b[31m"}
    by_form = api.post(f"{REC}/register", files={"image": jpeg(astronaut_jpeg)}, data=fields)
    by_json = api.post(f"{REC}/register", json={**fields, "consent": True, "image": standard(astronaut_jpeg)})
    assert error_of(by_form) == error_of(by_json) == (422, "VALIDATION_ERROR")
    assert "registration_source" in by_json.json()["error"]["message"]
    assert api.counts()["faces"] == before["faces"]


# --- contradictory options -------------------------------------------------------------------------


@pytest.mark.parametrize("landmarks", ["68", "468"])
def test_dense_landmarks_without_landmarks_contradict(
    api: Api, astronaut_jpeg: bytes, landmarks: str
) -> None:
    fields = {"landmarks": landmarks, "return_landmarks": "false"}
    by_form = api.post(DETECT, files={"image": jpeg(astronaut_jpeg)}, data=fields)
    by_json = api.post(
        DETECT,
        json={"image": standard(astronaut_jpeg), "landmarks": int(landmarks), "return_landmarks": False},
    )
    for response in (by_form, by_json):
        assert error_of(response) == (422, "VALIDATION_ERROR")
        message = response.json()["error"]["message"]
        assert "landmarks" in message and "return_landmarks" in message
    plain = api.post(
        DETECT, files={"image": jpeg(astronaut_jpeg)}, data={"landmarks": "5", "return_landmarks": "false"}
    )
    assert plain.status_code == 200 and "landmarks" not in plain.json()["faces"][0]


def test_verify_contradictions(api: Api, astronaut_jpeg: bytes, astronaut_variant_jpeg: bytes) -> None:
    image = standard(astronaut_jpeg)
    cases = [
        ({"image": image, "user_id": str(uuid.uuid4()), "image2": image}, ("user_id", "image2")),
        ({"image": image, "image2": image, "mode": "strict", "threshold": 0.5}, ("mode", "threshold")),
        ({"image": image}, ("user_id", "image2")),
    ]
    for body, fields in cases:
        response = api.post(f"{REC}/verify", json=body)
        assert error_of(response) == (422, "VALIDATION_ERROR")
        error = response.json()["error"]
        assert all(field in error["message"] for field in fields)
        # The same details shape as any validation error: one {field, problem} per field.
        assert [d["field"] for d in error["details"]] == list(fields)
        assert all(d["problem"] == error["message"] for d in error["details"])
    broken = api.client.post(
        f"{REC}/verify", content=b'{"image": ', headers={**api.headers(), "Content-Type": "application/json"}
    )
    assert error_of(broken) == (422, "VALIDATION_ERROR")
    assert broken.json()["error"]["details"] == [
        {"field": "body", "problem": "The body is not valid JSON: Expecting value at character 10"}
    ]
    both_form = api.post(
        f"{REC}/verify",
        files={"image": jpeg(astronaut_jpeg), "image2": jpeg(astronaut_variant_jpeg)},
        data={"mode": "balanced", "threshold": "0.5"},
    )
    assert error_of(both_form) == (422, "VALIDATION_ERROR")
    custom = api.post(f"{REC}/verify", json={"image": image, "image2": image, "threshold": 0.5}).json()
    assert custom["threshold_mode"] == "custom" and custom["threshold"] == 0.5
    default = api.post(f"{REC}/verify", json={"image": image, "image2": image}).json()
    assert default["threshold_mode"] == "balanced"


# --- batches -------------------------------------------------------------------------------------


def test_batch_where_every_item_fails_is_not_a_success(api: Api) -> None:
    items = ["this is not base64!", standard(b"plain text, no image"), ""]
    response = api.post(f"{DEMO}/batch", json={"images": items})
    assert error_of(response) == (422, "BATCH_FAILED")
    details = response.json()["error"]["details"]
    assert (details["total"], details["succeeded"], details["failed"]) == (3, 0, 3)
    assert [r["error"]["code"] for r in details["results"]] == [
        "INVALID_BASE64",
        "NOT_AN_IMAGE",
        "EMPTY_IMAGE",
    ]
    files = [("images", jpeg(b"nope", "x.jpg")), ("images", jpeg(b"", "y.jpg"))]
    by_form = api.client.post(f"{DEMO}/batch", files=files, headers=api.headers())
    assert error_of(by_form) == (422, "BATCH_FAILED")
    assert [r["filename"] for r in by_form.json()["error"]["details"]["results"]] == ["x.jpg", "y.jpg"]


def test_batch_partial_failure_and_bad_shapes(api: Api, astronaut_jpeg: bytes) -> None:
    if api.container.pipeline.attributes is None:
        pytest.skip("the model pack is not converted here (make test fetches it with npm)")
    mixed = api.post(
        f"{DEMO}/batch", json={"images": [standard(astronaut_jpeg), "!!", {"filename": "z", "image": 7}]}
    )
    # A wrong type inside an item is the request's mistake, not the image's: the whole call is 422.
    assert error_of(mixed) == (422, "VALIDATION_ERROR")
    partial = api.post(
        f"{DEMO}/batch", json={"images": [standard(astronaut_jpeg), "!!", {"filename": "e", "image": ""}]}
    )
    assert partial.status_code == 200, partial.text
    body = partial.json()
    assert body["success"] is True and (body["succeeded"], body["failed"]) == (1, 2)
    assert [r.get("error", {}).get("code") for r in body["results"]] == [
        None,
        "INVALID_BASE64",
        "EMPTY_IMAGE",
    ]
    for shape in ({"images": []}, {}, {"images": "QUJD"}, {"images": [standard(astronaut_jpeg)] * 21}):
        assert error_of(api.post(f"{DEMO}/batch", json=shape)) == (422, "VALIDATION_ERROR")
