"""Attacks on SkyGate (/api/v1/ai-detection): a real `facesocial serve` child process, and the app
on a scratch PostgreSQL database and on SQLite.

Each test reproduces a defect found by the attack session of commit 4a06edd.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from facesocial.api.app import create_app
from facesocial.container import Container
from tests.integration.conftest import RunningServer, make_settings, running_server
from tests.services import scratch_postgres

pytestmark = [pytest.mark.integration, pytest.mark.model]
BASE = "/api/v1/ai-detection"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[RunningServer]:
    with running_server(
        tmp_path_factory.mktemp("attack-skygate"), model_dir, FACESOCIAL_RATE_LIMITS__ENABLED="false"
    ) as running:
        yield running


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def _png16(channels: int, colour_type: int, side: int = 96) -> bytes:
    """A 16-bit-per-channel PNG (written by hand: Pillow cannot save 16-bit RGB)."""
    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 65535, size=(side, side * channels), dtype=np.uint16).astype(">u2")
    raw = b"".join(b"\x00" + row.tobytes() for row in pixels)
    header = struct.pack(">IIBBBBB", side, side, 16, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw))
        + _chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(("channels", "colour_type"), [(3, 2), (4, 6)], ids=["rgb16", "rgba16"])
def test_file_info_reports_the_bit_depth_of_16_bit_colour_pngs(
    server: RunningServer, channels: int, colour_type: int
) -> None:
    """Found: a 16-bit RGB/RGBA PNG is reported ``bit_depth`` 8 (Pillow opens it as 8-bit "RGB"
    and forensics/ai_image/metadata.py file_info reads the depth from the mode); a 16-bit
    grayscale PNG is correctly 16. The report's file_info should say what the file holds: 16."""
    data = _png16(channels, colour_type)
    with httpx.Client(base_url=server.base, timeout=120) as client:
        answer = client.post(
            f"{BASE}/analyze",
            files={"image": ("deep.png", data, "image/png")},
            data={"methods": "metadata"},
            headers={"X-API-Key": server.key},
        )
    assert answer.status_code == 200, answer.text
    assert answer.json()["file_info"]["bit_depth"] == 16, answer.json()["file_info"]


def _api(data_dir: Path, model_dir: Path, url: str | None) -> Iterator[tuple[TestClient, str]]:
    settings = make_settings(data_dir, model_dir)
    if url is not None:
        settings.database_url = url
    container = Container(settings)
    container.prepare()
    operator = container.keys.create("operator", role="operator").secret
    try:
        with TestClient(create_app(container), raise_server_exceptions=False) as client:
            yield client, operator
    finally:
        container.close()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database_api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, model_dir: Path
) -> Iterator[tuple[TestClient, str]]:
    """The app with an operator key, on SQLite and on a scratch PostgreSQL database."""
    data_dir = tmp_path_factory.mktemp(f"attack-skygate-{request.param}")
    if request.param == "sqlite":
        yield from _api(data_dir, model_dir, None)
        return
    with scratch_postgres() as url:
        yield from _api(data_dir, model_dir, url)


@pytest.mark.parametrize("name", ["ela\x00", "\x00", "ela ", "ELA", "e" * 100])
def test_a_method_name_outside_the_known_set_is_404_on_every_database(
    database_api: tuple[TestClient, str], name: str
) -> None:
    """Found: PUT /methods with ``"method_name": "ela\\u0000"`` answers 500 INTERNAL_ERROR on
    PostgreSQL (psycopg DataError: text fields cannot contain NUL); SQLite answers 404
    METHOD_NOT_FOUND. It should be 404 METHOD_NOT_FOUND on both, and nothing changed (the
    valid change in the same request is not applied either)."""
    client, operator = database_api
    headers = {"X-API-Key": operator}
    before = client.get(f"{BASE}/methods", headers=headers).json()["methods"]
    answer = client.put(
        f"{BASE}/methods",
        json=[{"method_name": "noise", "weight": 0.5}, {"method_name": name, "weight": 1.0}],
        headers=headers,
    )
    assert answer.status_code == 404, answer.text
    assert answer.json()["error"]["code"] == "METHOD_NOT_FOUND", answer.json()
    assert client.get(f"{BASE}/methods", headers=headers).json()["methods"] == before
