"""Base64 images of JSON bodies, and the per-route body budgets (no app, no models)."""

from __future__ import annotations

import base64
import time

import pytest

from facesocial import errors
from facesocial.api.body_limit import image_body_limit
from facesocial.api.image_input import decode_base64_image
from facesocial.settings import IntakeSettings

DATA = bytes(range(256)) * 3 + b"\xfb\xff"  # every byte value, and both URL-safe-sensitive ones


@pytest.mark.parametrize(
    "text",
    [
        base64.b64encode(DATA).decode(),
        base64.urlsafe_b64encode(DATA).decode(),
        base64.urlsafe_b64encode(DATA).decode().rstrip("="),
        base64.encodebytes(DATA).decode(),  # MIME: 76 columns, newlines
        "  " + base64.b64encode(DATA).decode().replace("A", "A\r\n\t ") + "\n",
        "data:image/png;base64," + base64.b64encode(DATA).decode(),
        "DATA:image/jpeg;BASE64," + base64.b64encode(DATA).decode(),
    ],
    ids=["standard", "urlsafe", "urlsafe-unpadded", "mime", "whitespace", "data-uri", "data-uri-upper"],
)
def test_accepted_forms_decode_to_the_same_bytes(text: str) -> None:
    assert decode_base64_image(text, len(DATA)) == DATA


@pytest.mark.parametrize(
    "text",
    ["not base64!", "QUJDR", "ab+-cd/_", "data:image/png,rawbytes", "data:image/png;base64", "QUJD\u00e9Q"],
    ids=[
        "punctuation",
        "impossible-length",
        "mixed-alphabets",
        "data-uri-not-base64",
        "no-comma",
        "non-ascii",
    ],
)
def test_invalid_base64(text: str) -> None:
    with pytest.raises(errors.InvalidBase64Error):
        decode_base64_image(text, 1_000_000)


def test_size_is_checked_from_the_length_before_decoding() -> None:
    limit = 3_000
    assert len(decode_base64_image("A" * 4_000, limit)) == limit  # exactly the limit passes
    with pytest.raises(errors.ImageTooLargeError) as refused:
        decode_base64_image("A" * 4_004, limit)
    assert refused.value.details["limit_bytes"] == limit
    # Not even validated: 40 MB of garbage is refused by its length, in well under a second.
    started = time.perf_counter()
    with pytest.raises(errors.ImageTooLargeError):
        decode_base64_image("!" * 40_000_000, 20 * 1024 * 1024)
    assert time.perf_counter() - started < 5  # generous: only the length matters


def test_empty_text_is_empty_bytes() -> None:
    assert decode_base64_image("", 10) == b""  # the service answers EMPTY_IMAGE and records it
    assert decode_base64_image("data:image/png;base64,", 10) == b""


@pytest.mark.parametrize(("images", "expected"), [(1, 28_763_408), (2, 57_461_280), (20, 100 * 1024 * 1024)])
def test_body_budget_per_route(images: int, expected: int) -> None:
    budget = image_body_limit(images, 20 * 1024 * 1024, IntakeSettings())
    assert budget == expected
    # A MIME-wrapped base64 image at the limit fits in a one-image budget.
    encoded = len(base64.encodebytes(b"\0" * (20 * 1024 * 1024)).replace(b"\n", b"\r\n"))
    assert encoded + 1000 < image_body_limit(1, 20 * 1024 * 1024, IntakeSettings())
