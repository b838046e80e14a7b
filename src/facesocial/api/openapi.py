"""The OpenAPI document: error responses per route, both body kinds of image routes, body limits.

Routes declare the errors they can raise beyond the common ones with :func:`error_responses`
(error classes, so a code cannot be misspelt); :func:`install` completes the document once:

* every ``/api/`` operation also gets the errors any API call can meet — authentication (401),
  limits (429), a body over its budget (413, when it takes a body), validation (422), a store
  that does not answer (503), a bug (500);
* each error status is rendered as the :class:`~facesocial.api.schemas.ErrorResponse` envelope
  whose ``code`` is restricted to that route's codes, with an example per code and the list in
  ``x-error-codes``;
* request bodies carry ``x-max-body-bytes``, the budget api/body_limit.py enforces with this
  server's settings.

The security schemes (``ApiKeyAuth``, ``BearerAuth``) come from api/deps.py's ``authenticate``.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from facesocial import errors
from facesocial.api.body_limit import image_body_limit
from facesocial.api.image_input import ImageForm
from facesocial.api.schemas import ErrorResponse
from facesocial.settings import Settings

ErrorClass = type[errors.FaceSocialError]

AUTH_ERRORS: tuple[ErrorClass, ...] = (
    errors.MissingApiKeyError,
    errors.InvalidApiKeyError,
    errors.ApiKeyExpiredError,
    errors.MissingTokenError,
    errors.InvalidTokenFormatError,
    errors.InvalidTokenError,
)
# Any /api/ call: credentials, limits, a store down, a bug.
COMMON_ERRORS: tuple[ErrorClass, ...] = (
    *AUTH_ERRORS,
    errors.RateLimitedError,
    errors.ApiKeyQuotaExceededError,
    errors.DatabaseUnavailableError,
    errors.FaceSocialError,  # INTERNAL_ERROR
)
# Routes that take an image: the intake (api/image_input.py), decoding (vision/image.py), the gate.
INTAKE_ERRORS: tuple[ErrorClass, ...] = (
    errors.UnsupportedMediaTypeError,
    errors.ServerBusyError,
)
IMAGE_ERRORS: tuple[ErrorClass, ...] = (
    *INTAKE_ERRORS,
    errors.EmptyImageError,
    errors.ImageTooLargeError,
    errors.InvalidBase64Error,
    errors.NotAnImageError,
    errors.DecompressionBombError,
    errors.ImageDimensionsUnsupportedError,
    errors.ImageTooSmallError,
    errors.TruncatedImageError,
)

_BODY_IMAGES = "x-facesocial-images"  # set by image_request_body, replaced by x-max-body-bytes


def error_codes() -> dict[str, tuple[int, str]]:
    """Every declared code → (HTTP status, default message), from facesocial/errors.py."""
    found: dict[str, tuple[int, str]] = {}
    for value in vars(errors).values():
        if isinstance(value, type) and issubclass(value, errors.FaceSocialError):
            found.setdefault(value.code, (value.status, value.default_message))
    return found


def error_responses(*classes: ErrorClass) -> dict[int | str, dict[str, Any]]:
    """FastAPI ``responses=`` entries for these errors, one per status (completed by :func:`install`)."""
    by_status: dict[int, list[str]] = {}
    for error in classes:
        codes = by_status.setdefault(error.status, [])
        if error.code not in codes:
            codes.append(error.code)
    return {
        status: {"model": ErrorResponse, "description": ", ".join(codes), "x-error-codes": codes}
        for status, codes in sorted(by_status.items())
    }


def image_request_body(form: type[ImageForm]) -> dict[str, Any]:
    """``openapi_extra`` of an image route: the same fields as multipart and as JSON with base64."""
    multipart = form.model_json_schema(ref_template="#/components/schemas/{model}")
    multipart.pop("title", None)
    as_json = copy.deepcopy(multipart)
    for name in form.single_image_fields():
        as_json["properties"][name] = {
            **_BASE64,
            "description": multipart["properties"][name].get("description", ""),
        }
        multipart["properties"][name] = {"type": "string", "format": "binary", **_described(multipart, name)}
    for name in form.image_list_fields():
        listed = multipart["properties"][name]
        bounds = {k: listed[k] for k in ("minItems", "maxItems") if k in listed}
        multipart["properties"][name] = {
            "type": "array",
            "items": {"type": "string", "format": "binary"},
            **bounds,
            **_described(multipart, name),
        }
        as_json["properties"][name] = {
            "type": "array",
            "items": {"anyOf": [_BASE64, _NAMED_BASE64]},
            **bounds,
            **_described(multipart, name),
        }
    return {
        "requestBody": {
            "required": True,
            _BODY_IMAGES: form.max_images,
            "description": "multipart/form-data with the images as file parts, or JSON with the same "
            "fields and the images as base64 strings",
            "content": {
                "multipart/form-data": {"schema": {"title": f"{form.__name__} (multipart)", **multipart}},
                "application/json": {"schema": {"title": f"{form.__name__} (JSON)", **as_json}},
            },
        }
    }


_BASE64: dict[str, Any] = {
    "type": "string",
    "contentEncoding": "base64",
    "contentMediaType": "image/*",
    "description": "Base64 (standard or URL-safe alphabet, padding optional, whitespace ignored), "
    "optionally as a data URI: data:image/jpeg;base64,...",
}
_NAMED_BASE64: dict[str, Any] = {
    "type": "object",
    "properties": {"filename": {"type": "string"}, "image": _BASE64},
    "required": ["image"],
    "additionalProperties": False,
}


def _described(schema: dict[str, Any], name: str) -> dict[str, Any]:
    description = schema["properties"][name].get("description")
    return {"description": description} if description else {}


# --- the finished document ------------------------------------------------------------------------


def install(app: FastAPI, settings: Settings) -> None:
    """Replace ``app.openapi`` with a builder that completes FastAPI's document (once, cached)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
            )
            complete(document, settings)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def complete(document: dict[str, Any], settings: Settings) -> None:
    codes = error_codes()
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    envelope = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(envelope.pop("$defs", {}))
    schemas["ErrorResponse"] = envelope
    for path, item in document.get("paths", {}).items():
        for operation in item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            body = operation.get("requestBody")
            if body is not None:
                images = body.pop(_BODY_IMAGES, 0)
                body["x-max-body-bytes"] = (
                    image_body_limit(images, settings.limits.max_image_bytes, settings.intake)
                    if images
                    else settings.intake.json_body_bytes
                )
            if path.startswith("/api/"):
                _document_errors(operation, codes, takes_input=bool(body or operation.get("parameters")))
    _drop_unused(document, ("HTTPValidationError", "ValidationError"))


def _document_errors(
    operation: dict[str, Any], codes: dict[str, tuple[int, str]], *, takes_input: bool
) -> None:
    responses: dict[str, Any] = operation["responses"]
    wanted: dict[str, list[str]] = {}
    for status, response in responses.items():
        for code in response.get("x-error-codes", []):
            wanted.setdefault(status, []).append(code)
    common = [*COMMON_ERRORS]
    if takes_input:
        common.append(errors.ValidationFailedError)
    if "requestBody" in operation:
        common.append(errors.PayloadTooLargeError)
    for error in common:
        listed = wanted.setdefault(str(error.status), [])
        if error.code not in listed:
            listed.append(error.code)
    for status, listed in wanted.items():
        unknown = [code for code in listed if code not in codes]
        if unknown:
            raise ValueError(f"{operation.get('operationId')}: undeclared error codes {unknown}")
        responses[status] = {
            "description": "\n".join(f"* `{code}`: {codes[code][1]}" for code in listed),
            "x-error-codes": listed,
            "content": {
                "application/json": {
                    "schema": {
                        "allOf": [{"$ref": "#/components/schemas/ErrorResponse"}],
                        "properties": {"error": {"properties": {"code": {"enum": listed}}}},
                    },
                    "examples": {
                        code: {
                            "summary": codes[code][1],
                            "value": {"success": False, "error": {"code": code, "message": codes[code][1]}},
                        }
                        for code in listed
                    },
                }
            },
        }
    operation["responses"] = dict(sorted(responses.items()))


def _drop_unused(document: dict[str, Any], names: tuple[str, ...]) -> None:
    schemas = document.get("components", {}).get("schemas", {})
    for name in names:
        if name in schemas:
            rest = {k: v for k, v in schemas.items() if k != name}
            text = json.dumps({"paths": document.get("paths", {}), "schemas": rest})
            if f'"#/components/schemas/{name}"' not in text:
                del schemas[name]
