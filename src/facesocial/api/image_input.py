"""One intake for every image route: multipart/form-data or JSON with base64 images.

Each image route declares a request model (a subclass of :class:`ImageForm`, see
``api/forms.py``) and takes it through :func:`image_form`. Both body kinds end in the same
pydantic validation, so a field is accepted, defaulted and refused the same way whichever kind
the client sends:

* ``multipart/form-data`` — images as file parts, other fields as text parts (an empty text part
  counts as absent, as FastAPI's ``Form`` does);
* ``application/json`` — the same field names; images as base64 strings (standard or URL-safe
  alphabet, padding optional, whitespace ignored, an optional ``data:image/...;base64,`` prefix);
  a batch's ``images`` items are strings or ``{"filename": ..., "image": ...}`` objects.

Images over ``limits.max_image_bytes`` are refused (``IMAGE_TOO_LARGE``) without being read in
full — for base64, from the string's length, before decoding; undecodable base64 is
``INVALID_BASE64`` (422); an empty image reaches the service, which answers ``EMPTY_IMAGE`` and
records the attempt. Any other Content-Type is 415 ``UNSUPPORTED_MEDIA_TYPE``. In a batch these
image errors belong to their item only.
"""

from __future__ import annotations

import base64
import binascii
import types
import typing
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, ClassVar, Literal, TypeVar

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, GetCoreSchemaHandler, GetJsonSchemaHandler, ValidationError
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from facesocial import errors
from facesocial.api.body_limit import allow_body, image_body_limit
from facesocial.api.deps import ContainerDep
from facesocial.api.routing import parse_json_body
from facesocial.settings import ImageLimits, IntakeSettings
from facesocial.vision.image import probe_image

ACCEPTED_MEDIA_TYPES = ("multipart/form-data", "application/json")
# A urlencoded form cannot carry a file, but its text fields are read (and the missing image
# reported) exactly as multipart's: clients posting only fields get VALIDATION_ERROR, not 415.
_FORM_MEDIA_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")

# Characters base64 encoders put between groups (MIME wraps at 76 columns with CRLF).
_WHITESPACE = str.maketrans("", "", " \t\r\n\f\v")
_URLSAFE_TO_STANDARD = str.maketrans("-_", "+/")


class ImageUpload:
    """One image of a request: its bytes, or the error that refused them before decoding.

    ``error`` is set (and ``data`` empty) when the upload was over the byte limit or not valid
    base64; single-image routes raise it, a batch reports it for that item only.
    """

    __slots__ = ("data", "error", "filename")

    def __init__(self, data: bytes, filename: str = "", error: errors.FaceSocialError | None = None) -> None:
        self.data = data
        self.filename = filename
        self.error = error

    def __repr__(self) -> str:
        problem = f", error={self.error.code}" if self.error else ""
        return f"ImageUpload({self.filename!r}, {len(self.data)} bytes{problem})"

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        # Built by the intake, never from client data: validation only checks the type.
        return core_schema.is_instance_schema(cls)

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "string", "format": "binary"}  # the multipart form; api/openapi.py adds JSON's


class ImageForm(BaseModel):
    """Base of the request models of image routes.

    Fields annotated ``ImageUpload`` (optionally ``| None``) hold one image, fields annotated
    ``list[ImageUpload]`` several. ``images_in_memory`` says how the decode gate weighs the
    request: ``"sum"`` when the route holds all its images decoded at once (verify with two
    images), ``"largest"`` when it decodes them one after the other (a batch).
    """

    model_config = ConfigDict(extra="forbid")

    max_images: ClassVar[int] = 1
    images_in_memory: ClassVar[Literal["sum", "largest"]] = "sum"
    per_item_errors: ClassVar[bool] = False  # a batch: image errors stay with their item

    @classmethod
    def single_image_fields(cls) -> tuple[str, ...]:
        return tuple(n for n, f in cls.model_fields.items() if _holds(f.annotation, ImageUpload))

    @classmethod
    def image_list_fields(cls) -> tuple[str, ...]:
        return tuple(n for n, f in cls.model_fields.items() if _holds(f.annotation, list[ImageUpload]))

    def check_consistency(self) -> None:
        """Raise ``ValidationFailedError`` naming both fields when options contradict each other."""

    def uploads(self) -> Iterator[ImageUpload]:
        for name in self.single_image_fields():
            upload = getattr(self, name)
            if upload is not None:
                yield upload
        for name in self.image_list_fields():
            yield from getattr(self, name)

    def pixel_weight(self, limits: ImageLimits) -> int:
        """Pixels this request will hold decoded at once, from the image headers (0 if unknown).

        A header that cannot be read weighs nothing here: the service decodes the same bytes
        and raises the same error with its own bookkeeping.
        """
        sizes = []
        for upload in self.uploads():
            try:
                sizes.append(probe_image(upload.data, limits).pixels if upload.error is None else 0)
            except errors.FaceSocialError:
                sizes.append(0)
        if not sizes:
            return 0
        return max(sizes) if self.images_in_memory == "largest" else sum(sizes)


F = TypeVar("F", bound=ImageForm)


def _holds(annotation: Any, target: Any) -> bool:
    """``annotation`` is ``target`` or ``target | None``."""
    if annotation == target:
        return True
    origin = typing.get_origin(annotation)
    return origin in (typing.Union, types.UnionType) and target in typing.get_args(annotation)


def image_form(form: type[F]) -> Any:
    """``Depends(...)`` giving ``form`` validated from a multipart or a JSON body."""

    async def intake(request: Request, container: ContainerDep) -> F:
        settings = container.settings
        allow_body(
            request.scope, image_body_limit(form.max_images, settings.limits.max_image_bytes, settings.intake)
        )
        media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        problems: list[dict[str, Any]] = []
        if media in _FORM_MEDIA_TYPES:
            raw = await _from_multipart(
                request, form, settings.limits.max_image_bytes, problems, settings.intake
            )
        elif media == "application/json" or (media.startswith("application/") and media.endswith("+json")):
            raw = await _from_json(request, form, settings.limits.max_image_bytes, problems)
        else:
            raise errors.UnsupportedMediaTypeError(
                f"Send the request as {' or '.join(ACCEPTED_MEDIA_TYPES)} (got {media or 'no Content-Type'})"
            )
        validated = _validate(form, raw, problems)
        validated.check_consistency()
        if not form.per_item_errors:
            for upload in validated.uploads():
                if upload.error is not None:
                    raise upload.error
        return validated

    intake.__name__ = f"read_{form.__name__}"
    dependency: Callable[..., Awaitable[F]] = intake
    return Depends(dependency)


def _validate(form: type[F], raw: dict[str, Any], problems: list[dict[str, Any]]) -> F:
    """The model, or a RequestValidationError listing every problem (rendered VALIDATION_ERROR)."""
    model: F | None = None
    try:
        model = form.model_validate(raw)
    except ValidationError as exc:
        problems = problems + [
            {"type": e["type"], "loc": ("body", *e["loc"]), "msg": e["msg"]}
            for e in exc.errors(include_url=False, include_input=False, include_context=False)
        ]
    if problems or model is None:
        raise RequestValidationError(problems)
    return model


def _problem(loc: tuple[str | int, ...], message: str) -> dict[str, Any]:
    return {"type": "value_error", "loc": ("body", *loc), "msg": message}


# --- multipart ---------------------------------------------------------------------------------------


async def _from_multipart(
    request: Request,
    form: type[ImageForm],
    max_bytes: int,
    problems: list[dict[str, Any]],
    intake: IntakeSettings,
) -> dict[str, Any]:
    singles, lists = form.single_image_fields(), form.image_list_fields()
    raw: dict[str, Any] = {}
    try:
        # One file more than the route takes, so that "too many images" is the model's own
        # message (as in JSON); starlette stops parsing beyond that.
        parsed = request.form(
            max_files=form.max_images + 1,
            max_fields=intake.max_form_fields,
            max_part_size=intake.field_allowance_bytes,
        )
        async with parsed as data:
            grouped: dict[str, list[str | UploadFile]] = {}
            for key, value in data.multi_items():
                grouped.setdefault(key, []).append(value)
            for name, values in grouped.items():
                if name in lists:
                    raw[name] = [
                        await _read_file(v, max_bytes, (name, i), problems) for i, v in enumerate(values)
                    ]
                    continue
                if len(values) > 1:
                    problems.append(_problem((name,), f"sent {len(values)} times; send it once"))
                    continue
                value = values[0]
                if name in singles:
                    raw[name] = await _read_file(value, max_bytes, (name,), problems)
                elif isinstance(value, str):
                    if value != "":  # an empty text part is an absent field (as FastAPI's Form)
                        raw[name] = value
                else:
                    problems.append(_problem((name,), "expected a text field, got a file"))
    except HTTPException as exc:
        if exc.status_code != 400:
            raise  # e.g. the body limit's 413
        # Starlette's multipart errors: no boundary, broken framing, too many parts, a huge field.
        raise errors.ValidationFailedError(f"The multipart body was refused: {exc.detail}") from exc
    return raw


async def _read_file(
    value: str | UploadFile, max_bytes: int, loc: tuple[str | int, ...], problems: list[dict[str, Any]]
) -> ImageUpload:
    if not isinstance(value, UploadFile):
        problems.append(
            _problem(loc, "send the image as a file part (or the whole body as JSON with base64)")
        )
        return ImageUpload(b"")
    filename = value.filename or ""
    if value.size is not None and value.size > max_bytes:
        return ImageUpload(b"", filename, _too_large(value.size, max_bytes))
    data = await value.read(max_bytes + 1)
    if len(data) > max_bytes:
        return ImageUpload(b"", filename, _too_large(None, max_bytes))
    return ImageUpload(data, filename)


# --- JSON --------------------------------------------------------------------------------------------


async def _from_json(
    request: Request, form: type[ImageForm], max_bytes: int, problems: list[dict[str, Any]]
) -> dict[str, Any]:
    body = await request.body()  # bounded by the body limit declared above
    payload = parse_json_body(body)  # the same refusals as every JSON route
    if not isinstance(payload, dict):
        raise RequestValidationError(
            [{"type": "model_type", "loc": ("body",), "msg": "The body must be a JSON object of fields"}]
        )
    raw: dict[str, Any] = {}
    for name, value in payload.items():
        if value is None:
            continue  # null = absent, as in the multipart form
        if name in form.single_image_fields():
            raw[name] = _image_from_json(value, max_bytes, (name,), problems)
        elif name in form.image_list_fields():
            if not isinstance(value, list):
                problems.append(_problem((name,), "expected a list of base64 images"))
                continue
            raw[name] = [
                _image_from_json(item, max_bytes, (name, i), problems, item=True)
                for i, item in enumerate(value)
            ]
        else:
            raw[name] = value
    return raw


def _image_from_json(
    value: Any, max_bytes: int, loc: tuple[str | int, ...], problems: list[dict[str, Any]], item: bool = False
) -> ImageUpload:
    filename = ""
    if isinstance(value, dict) and item:  # a batch item: {"filename": ..., "image": ...}
        unknown = sorted(set(value) - {"filename", "image"})
        filename = value.get("filename") or ""
        if unknown or not isinstance(filename, str):
            problems.append(_problem(loc, "a batch item is a base64 string or {filename, image}"))
            return ImageUpload(b"")
        value = value.get("image")
    if not isinstance(value, str):
        problems.append(_problem(loc, "expected the image as a base64 string"))
        return ImageUpload(b"", filename)
    try:
        return ImageUpload(decode_base64_image(value, max_bytes), filename)
    except errors.FaceSocialError as exc:  # too large or not base64: the image's own error
        return ImageUpload(b"", filename, exc)


def decode_base64_image(text: str, max_bytes: int) -> bytes:
    """Bytes of a base64 image; the size is checked from the text's length before decoding.

    Accepts the standard and the URL-safe alphabet (RFC 4648 §4, §5), missing padding,
    whitespace anywhere, and a ``data:<media type>;base64,`` prefix (RFC 2397).

    Raises:
        ImageTooLargeError (413): it would decode to more than ``max_bytes``.
        InvalidBase64Error (422): not base64 (or a data URI that is not base64).
    """
    if text[:5].lower() == "data:":
        header, comma, text = text.partition(",")
        if not comma or not header.lower().endswith(";base64"):
            raise errors.InvalidBase64Error("A data URI image must be base64: data:image/...;base64,<data>")
    compact = text.translate(_WHITESPACE).rstrip("=")
    decoded_size = len(compact) * 3 // 4
    if decoded_size > max_bytes:
        raise _too_large(decoded_size, max_bytes)
    if len(compact) % 4 == 1:
        raise errors.InvalidBase64Error("The base64 text has an impossible length (a character is missing)")
    if "-" in compact or "_" in compact:
        if "+" in compact or "/" in compact:
            raise errors.InvalidBase64Error("The base64 text mixes the standard and the URL-safe alphabet")
        compact = compact.translate(_URLSAFE_TO_STANDARD)
    try:
        return base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise errors.InvalidBase64Error(f"The image is not valid base64 ({exc})") from exc


def _too_large(size: int | None, limit: int) -> errors.FaceSocialError:
    if size is None:
        return errors.ImageTooLargeError(f"The image exceeds the limit of {limit} bytes", limit_bytes=limit)
    return errors.ImageTooLargeError(f"The image is {size} bytes; the limit is {limit}", limit_bytes=limit)
