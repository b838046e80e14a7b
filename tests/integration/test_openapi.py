"""The OpenAPI document is valid, names both credentials, and documents what routes really answer.

Real answers — successes and errors, provoked over HTTP — are validated against the schema the
document gives for their route and status (error codes are an enum per route and status), and
every error the audit log saw on a documented route must be listed there.
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

import pytest
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate
from sqlalchemy import select

from facesocial.api.auth_middleware import PUBLIC_PATHS
from facesocial.api.body_limit import image_body_limit
from facesocial.api.openapi import error_codes
from facesocial.store.tables import AiOperationLog
from tests.integration.conftest import Api
from tests.unit.test_image_decode import png_claiming

pytestmark = pytest.mark.integration
REC = "/api/v1/face-recognition"
IMAGE_ROUTES = {
    "/api/v1/face-detection/detect": ("image",),
    f"{REC}/register": ("image",),
    f"{REC}/verify": ("image", "image2"),
    f"{REC}/identify": ("image",),
    "/api/v1/demographics/analyze": ("image",),
    "/api/v1/demographics/batch": ("images",),
}


@pytest.fixture
def document(api: Api) -> dict[str, Any]:
    response = api.client.get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]


def test_document_is_valid_openapi(document: dict[str, Any]) -> None:
    validate(document)  # raises with the offending path when the document is not OpenAPI 3.1
    assert document["openapi"].startswith("3.1")


def test_two_security_schemes_as_alternatives(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["ApiKeyAuth"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": schemes["ApiKeyAuth"]["description"],
    }
    assert (schemes["BearerAuth"]["type"], schemes["BearerAuth"]["scheme"]) == ("http", "bearer")
    assert schemes["BearerAuth"]["bearerFormat"] == "JWT"
    api_operations = [(p, m, o) for p, m, o in operations(document) if p.startswith("/api/")]
    assert len(api_operations) >= 15
    for path, method, operation in api_operations:
        if path in PUBLIC_PATHS:  # registration and login: reachable without credentials
            assert operation.get("security") == [], (method, path)
            continue
        assert operation.get("security") == [{"ApiKeyAuth": []}, {"BearerAuth": []}], (method, path)
    for path in ("/health", "/health/ready"):
        assert "security" not in document["paths"][path]["get"]
    assert "/metrics" not in document["paths"] or "security" not in document["paths"]["/metrics"]["get"]


def test_api_routes_document_common_errors(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        if not path.startswith("/api/"):
            continue
        responses = operation["responses"]
        listed = {status: set(r.get("x-error-codes", [])) for status, r in responses.items()}
        assert {"MISSING_API_KEY", "INVALID_API_KEY", "API_KEY_EXPIRED", "INVALID_TOKEN"} <= listed["401"]
        assert {"RATE_LIMITED", "API_KEY_QUOTA_EXCEEDED"} <= listed["429"]
        assert "SERVICE_UNAVAILABLE" in listed["503"] and "INTERNAL_ERROR" in listed["500"]
        if "requestBody" in operation:
            assert "PAYLOAD_TOO_LARGE" in listed["413"], (method, path)
            assert "VALIDATION_ERROR" in listed["422"]
        for status, codes in listed.items():
            for code in codes:
                assert str(error_codes()[code][0]) == status, (path, code, status)
            if status.startswith(("4", "5")):
                schema = responses[status]["content"]["application/json"]["schema"]
                assert schema["allOf"] == [{"$ref": "#/components/schemas/ErrorResponse"}]


def test_image_routes_document_both_body_kinds(api: Api, document: dict[str, Any]) -> None:
    settings = api.container.settings
    for path, image_fields in IMAGE_ROUTES.items():
        body = document["paths"][path]["post"]["requestBody"]
        form = body["content"]["multipart/form-data"]["schema"]
        as_json = body["content"]["application/json"]["schema"]
        assert set(form["properties"]) == set(as_json["properties"]), path
        assert form.get("required") == as_json.get("required")
        for name in image_fields:
            binary, encoded = form["properties"][name], as_json["properties"][name]
            if binary.get("type") == "array":
                binary, encoded = binary["items"], encoded["items"]["anyOf"][0]
            assert binary["format"] == "binary"
            assert encoded["contentEncoding"] == "base64"
        images = 20 if path.endswith("batch") else len(image_fields)
        assert body["x-max-body-bytes"] == image_body_limit(
            images, settings.limits.max_image_bytes, settings.intake
        )
    defaults = document["paths"]["/api/v1/face-detection/detect"]["post"]["requestBody"]["content"]
    options = defaults["application/json"]["schema"]["properties"]
    assert (options["min_face_size"]["default"], options["min_face_size"]["minimum"]) == (40, 8)
    groups = document["paths"][f"{REC}/groups"]["post"]["requestBody"]
    assert groups["x-max-body-bytes"] == settings.intake.json_body_bytes


def conforms(document: dict[str, Any], template: str, method: str, status: int, body: Any) -> None:
    """``body`` matches what the document promises for this route and status."""
    responses = document["paths"][template][method]["responses"]
    assert str(status) in responses, f"{method.upper()} {template} does not document {status}: {body}"
    schema = responses[str(status)]["content"]["application/json"]["schema"]
    validator = OAS31Validator({**schema, "components": document["components"]})
    problems = [e.message for e in validator.iter_errors(body)]
    assert not problems, f"{method.upper()} {template} {status}: {problems} in {body}"


def test_real_answers_match_the_document(
    api: Api,
    document: dict[str, Any],
    astronaut_jpeg: bytes,
    astronaut_variant_jpeg: bytes,
    three_astronauts_jpeg: bytes,
    no_face_jpeg: bytes,
) -> None:
    b64 = base64.b64encode
    user, missing = uuid.uuid4(), uuid.uuid4()
    jpeg = {"image": ("a.jpg", astronaut_jpeg, "image/jpeg")}
    group = api.post(f"{REC}/groups", json={"group_name": "documented"}).json()["group"]["group_id"]
    calls: list[tuple[str, str, str, dict[str, Any]]] = [
        # (method, route template, concrete path, request keyword arguments)
        ("post", "/api/v1/face-detection/detect", "/api/v1/face-detection/detect", {"files": jpeg}),
        (
            "post",
            f"{REC}/register",
            f"{REC}/register",
            {"files": jpeg, "data": {"user_id": str(user), "consent": "true", "group_id": group}},
        ),
        (
            "post",
            f"{REC}/verify",
            f"{REC}/verify",
            {"json": {"image": b64(astronaut_variant_jpeg).decode(), "user_id": str(user)}},
        ),
        (
            "post",
            f"{REC}/verify",
            f"{REC}/verify",
            {"files": {**jpeg, "image2": ("b.jpg", astronaut_variant_jpeg, "image/jpeg")}},
        ),
        ("post", f"{REC}/identify", f"{REC}/identify", {"files": jpeg}),
        ("get", f"{REC}/users/{{user_id}}", f"{REC}/users/{user}", {}),
        ("get", f"{REC}/groups", f"{REC}/groups", {}),
        ("get", f"{REC}/groups/{{group_id}}", f"{REC}/groups/{group}", {}),
        (
            "post",
            f"{REC}/groups/{{group_id}}/members",
            f"{REC}/groups/{group}/members",
            {"json": {"user_ids": [str(user)]}},
        ),
        (
            "delete",
            f"{REC}/groups/{{group_id}}/members/{{user_id}}",
            f"{REC}/groups/{group}/members/{user}",
            {},
        ),
        # errors
        (
            "post",
            "/api/v1/face-detection/detect",
            "/api/v1/face-detection/detect",
            {"content": b"x", "headers": {"Content-Type": "text/plain"}},
        ),
        (
            "post",
            "/api/v1/face-detection/detect",
            "/api/v1/face-detection/detect",
            {"json": {"image": "%%%"}},
        ),
        (
            "post",
            "/api/v1/face-detection/detect",
            "/api/v1/face-detection/detect",
            {"json": {"image": b64(png_claiming(30000, 30000)).decode()}},
        ),
        (
            "post",
            "/api/v1/face-detection/detect",
            "/api/v1/face-detection/detect",
            {"files": jpeg, "data": {"landmarks": "68", "return_landmarks": "false"}},
        ),
        (
            "post",
            "/api/v1/face-detection/detect",
            "/api/v1/face-detection/detect",
            {"files": {"image": ("e.jpg", b"", "image/jpeg")}},
        ),
        (
            "post",
            f"{REC}/register",
            f"{REC}/register",
            {
                "files": {"image": ("t.jpg", three_astronauts_jpeg, "image/jpeg")},
                "data": {"user_id": str(missing), "consent": "true"},
            },
        ),
        ("post", f"{REC}/register", f"{REC}/register", {"files": jpeg, "data": {"user_id": str(missing)}}),
        (
            "post",
            f"{REC}/register",
            f"{REC}/register",
            {"files": jpeg, "data": {"user_id": str(missing), "consent": "true", "group_id": str(missing)}},
        ),
        (
            "post",
            f"{REC}/register",
            f"{REC}/register",
            {
                "files": {"image": ("t.jpg", b"text", "image/jpeg")},
                "data": {"user_id": str(missing), "consent": "true"},
            },
        ),
        ("post", f"{REC}/verify", f"{REC}/verify", {"files": jpeg, "data": {"user_id": str(missing)}}),
        (
            "post",
            f"{REC}/verify",
            f"{REC}/verify",
            {"files": jpeg, "data": {"user_id": str(user), "face_index": "5"}},
        ),
        (
            "post",
            f"{REC}/identify",
            f"{REC}/identify",
            {"files": {"image": ("c.jpg", no_face_jpeg, "image/jpeg")}},
        ),
        ("post", f"{REC}/identify", f"{REC}/identify", {"files": jpeg, "data": {"embedding_model": "nope"}}),
        ("post", f"{REC}/identify", f"{REC}/identify", {"files": jpeg, "data": {"group_id": str(missing)}}),
        ("get", f"{REC}/users/{{user_id}}", f"{REC}/users/{missing}", {}),
        ("get", f"{REC}/groups/{{group_id}}", f"{REC}/groups/{missing}", {}),
        ("post", f"{REC}/groups", f"{REC}/groups", {"json": {"group_name": "x" * 2_000_000}}),
        ("post", f"{REC}/groups", f"{REC}/groups", {"json": {"group_name": "\x00"}}),
        (
            "post",
            "/api/v1/demographics/batch",
            "/api/v1/demographics/batch",
            {"json": {"images": ["!!", ""]}},
        ),
        (
            "post",
            "/api/v1/demographics/analyze",
            "/api/v1/demographics/analyze",
            {"json": {"image": b64(b"text").decode()}},
        ),
        ("get", f"{REC}/groups", f"{REC}/groups", {"headers": {"X-API-Key": "fs_not-a-key"}}),
    ]
    if api.container.pipeline.attributes is not None:  # the model pack: demographics answer
        demographics = "/api/v1/demographics"
        calls += [
            ("post", f"{demographics}/analyze", f"{demographics}/analyze", {"files": jpeg}),
            (
                "post",
                f"{demographics}/batch",
                f"{demographics}/batch",
                {"json": {"images": [b64(astronaut_jpeg).decode(), "!!"]}},
            ),
            (
                "post",
                "/api/v1/face-detection/detect",
                "/api/v1/face-detection/detect",
                {"files": jpeg, "data": {"landmarks": "468", "return_attributes": "true"}},
            ),
        ]
    for method, template, path, kwargs in calls:
        headers = {**api.headers(), **kwargs.pop("headers", {})}
        response = api.client.request(method.upper(), path, headers=headers, **kwargs)
        conforms(document, template, method, response.status_code, response.json())
    api.client.delete(f"{REC}/users/{user}", headers=api.headers())


def test_every_error_the_audit_log_saw_is_documented(api: Api, document: dict[str, Any]) -> None:
    """Sweeps every call this session made on this app (this module's and any earlier module's)."""
    codes = error_codes()
    with api.container.database.session() as session:
        seen = set(session.execute(select(AiOperationLog.endpoint, AiOperationLog.error_code)).all())
    checked = 0
    for endpoint, code in sorted(seen, key=str):
        if code is None or code not in codes or endpoint is None:
            continue  # a success, or an HTTP_<status> with no envelope of ours
        method, _, template = endpoint.partition(" ")
        operation = document["paths"].get(template, {}).get(method.lower())
        if operation is None:
            continue  # no such route (a 404 on an unknown path)
        status = str(codes[code][0])
        documented = operation["responses"].get(status, {}).get("x-error-codes", [])
        assert code in documented, f"{endpoint} answered {code} ({status}) but documents {documented}"
        checked += 1
    assert checked >= 15
