"""The text fields beside a streamed ``video`` part: their OpenAPI body and their validation.

Video routes read their body with :func:`facesocial.video.upload.spool_video_upload`, which hands
back the multipart text fields as strings; these helpers document and validate them with a
pydantic model, answering ``VALIDATION_ERROR`` in the same shape as every other route's fields.
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def video_request_body(fields: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` of a route taking multipart ``video`` (required) plus ``fields``."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["video"],
                        "properties": {
                            "video": {"type": "string", "format": "binary"},
                            **fields.model_json_schema()["properties"],
                        },
                    }
                }
            },
        }
    }


def video_fields(model: type[M], raw: dict[str, str]) -> M:
    """``raw`` (empty strings = absent, as FastAPI's Form) validated by ``model``.

    Raises ``RequestValidationError`` (rendered as 422 ``VALIDATION_ERROR`` naming each field).
    """
    try:
        return model.model_validate({k: v for k, v in raw.items() if v != ""})
    except ValidationError as exc:
        raise RequestValidationError(
            [
                {"type": e["type"], "loc": ("body", *e["loc"]), "msg": e["msg"]}
                for e in exc.errors(include_url=False, include_input=False, include_context=False)
            ]
        ) from None
