"""One strict reading of JSON request bodies (api/routing.py): every refusal is a validation error."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.exceptions import RequestValidationError

from facesocial.api.routing import declares_json, parse_json_body


def refusal(body: bytes) -> list[dict[str, Any]]:
    with pytest.raises(RequestValidationError) as raised:
        parse_json_body(body)
    return [{"loc": e["loc"], "msg": e["msg"]} for e in raised.value.errors()]


def test_valid_json_is_read_as_usual() -> None:
    assert parse_json_body(b'{"a": [1, {"b": null}], "c": "\\u00e9"}') == {"a": [1, {"b": None}], "c": "é"}
    assert parse_json_body(b"[1, 2]") == [1, 2]  # the caller decides whether an array is wanted
    assert parse_json_body('{"x": 1}'.encode("utf-16")) == {"x": 1}  # json.loads detects UTF-16 by its BOM


@pytest.mark.parametrize(
    ("body", "message"),
    [
        # json.loads raises ValueError, not JSONDecodeError, for these two: they were 500s.
        (b'{"top_k": 1' + b"0" * 5000 + b"}", "The body is not valid JSON: a number has too many digits"),
        (
            b"[" * 100_000 + b"]" * 100_000,
            "The body is not valid JSON: arrays or objects are nested too deeply",
        ),
        (
            b'{"a":' * 5000 + b"1" + b"}" * 5000,
            "The body is not valid JSON: arrays or objects are nested too deeply",
        ),
        (b'{"image": ', "The body is not valid JSON: Expecting value at character 10"),
        (b"\xff\xfe\x00", "The body is not valid JSON: not UTF-8"),
        (b"", "The body is not valid JSON: Expecting value at character 0"),
        # A raw line break inside a string (base64 without -w0): json says "... at"; one "at".
        (b'{"image": "AAAA\nAAAA"}', "The body is not valid JSON: Invalid control character at character 15"),
    ],
    ids=["huge-int", "deep-arrays", "deep-objects", "truncated", "not-utf8", "empty", "raw-line-break"],
)
def test_malformed_bodies_name_the_body(body: bytes, message: str) -> None:
    assert refusal(body) == [{"loc": ("body",), "msg": message}]


def test_a_repeated_field_is_named_like_a_repeated_multipart_field() -> None:
    body = b'{"user_id": "u", "consent": false, "image": "AAAA", "consent": true, "consent": true}'
    assert refusal(body) == [{"loc": ("body", "consent"), "msg": "sent 3 times; send it once"}]


def test_a_key_repeated_inside_a_value_names_the_body() -> None:
    body = b'{"images": [{"image": "AAAA", "image": "BBBB"}], "x": {"k": 1}}'
    assert refusal(body) == [
        {"loc": ("body",), "msg": "an object inside the body has the key 'image' 2 times"}
    ]
    # The same key in different objects is no repetition.
    assert parse_json_body(b'{"a": {"k": 1}, "b": {"k": 2}, "k": 3}') == {
        "a": {"k": 1},
        "b": {"k": 2},
        "k": 3,
    }


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("application/json", True),
        ("application/json; charset=utf-8", True),
        ("Application/JSON", True),
        ("application/problem+json", True),
        ("text/plain", False),
        ("multipart/form-data; boundary=x", False),
        ("", False),
        (None, False),
    ],
)
def test_which_bodies_are_json(content_type: str | None, expected: bool) -> None:
    assert declares_json(content_type) is expected
