"""One strict JSON reading for every request body, and the route class that applies it.

Image routes read their JSON in ``api/image_input.py``; the other routes (groups, members,
admin) have their bodies read by FastAPI. Both go through :func:`parse_json_body`, so a body
that is not JSON, or JSON this API refuses, is the same answer everywhere: 422
``VALIDATION_ERROR`` with ``details [{"field": "body" (or the repeated field), "problem"}]``.

Beyond ``json.loads``'s own syntax errors, it refuses what ``json.loads`` raises other
exceptions for (integers of more than 4300 digits: ``ValueError``; nesting deeper than the
interpreter's recursion limit: ``RecursionError``), bodies that are not UTF-8, and an object
with the same key twice: the standard lets the last one win silently, so a proxy or a log that
reads the first one would see another request than the server (``{"consent": false, ...,
"consent": true}``). A multipart field sent twice is refused the same way.
"""

from __future__ import annotations

import email.message
import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

_NOT_JSON = "The body is not valid JSON"


class _Repeated:
    """Collects the objects that repeated a key while ``json.loads`` builds them."""

    def __init__(self) -> None:
        self.found: list[tuple[dict[str, Any], str, int]] = []

    def __call__(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        built = dict(pairs)
        if len(built) != len(pairs):
            counts: dict[str, int] = {}
            for key, _value in pairs:
                counts[key] = counts.get(key, 0) + 1
            self.found.extend((built, key, n) for key, n in counts.items() if n > 1)
        return built


def _refused(problem: str, loc: tuple[str, ...] = ()) -> RequestValidationError:
    return RequestValidationError([{"type": "json_invalid", "loc": ("body", *loc), "msg": problem}])


def parse_json_body(body: bytes) -> Any:
    """The JSON value of a request body.

    Raises:
        RequestValidationError (rendered 422 VALIDATION_ERROR): not JSON, not UTF-8 (or UTF-16/32
        with a BOM, which ``json.loads`` detects), a number or nesting Python cannot represent,
        or a key repeated in one object — named as that field when it is a top-level key.
    """
    repeated = _Repeated()
    try:
        payload = json.loads(body, object_pairs_hook=repeated)
    except UnicodeDecodeError as exc:  # before ValueError: it is one
        raise _refused(f"{_NOT_JSON}: not UTF-8") from exc
    except json.JSONDecodeError as exc:
        # Some of json's messages end in "at" ("Invalid control character at"): one "at" only.
        message = exc.msg.removesuffix(" at")
        raise _refused(f"{_NOT_JSON}: {message} at character {exc.pos}") from exc
    except ValueError as exc:  # "Exceeds the limit (4300 digits) for integer string conversion"
        raise _refused(f"{_NOT_JSON}: a number has too many digits") from exc
    except RecursionError as exc:
        raise _refused(f"{_NOT_JSON}: arrays or objects are nested too deeply") from exc
    if repeated.found:
        problems = []
        for obj, key, times in repeated.found:
            if obj is payload:  # a field of the request: named like a repeated multipart field
                problems.append({"type": "json_invalid", "loc": ("body", key), "msg": _twice(times)})
            else:
                problems.append(
                    {
                        "type": "json_invalid",
                        "loc": ("body",),
                        "msg": f"an object inside the body has the key {key[:100]!r} {times} times",
                    }
                )
        raise RequestValidationError(problems)
    return payload


def _twice(times: int) -> str:
    return f"sent {times} times; send it once"


def declares_json(content_type: str | None) -> bool:
    """``application/json`` or ``application/*+json``, as FastAPI decides to parse a body."""
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


class _StrictJsonRequest(Request):
    """A request whose ``json()`` is :func:`parse_json_body` (FastAPI calls it for body fields)."""

    _parsed: Any

    async def json(self) -> Any:
        if not hasattr(self, "_parsed"):
            self._parsed = parse_json_body(await self.body())
        return self._parsed


class ApiRoute(APIRoute):
    """A route whose JSON body (when FastAPI reads one) is read by :func:`parse_json_body`.

    The body is parsed before FastAPI's handler runs: FastAPI turns any exception of its own
    parsing other than a syntax error into 400 "There was an error parsing the body" (and a
    syntax error into a validation error whose field is the character offset), while this
    raises the API's own VALIDATION_ERROR. Routes whose body an intake dependency reads (image
    routes) are left alone: that dependency declares the body budget before the first read.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler

        async def strict_json_handler(request: Request) -> Response:
            strict = _StrictJsonRequest(request.scope, request.receive)
            if await strict.body() and declares_json(strict.headers.get("content-type")):
                await strict.json()  # refused here, as VALIDATION_ERROR, before FastAPI's parsing
            return await handler(strict)

        return strict_json_handler
