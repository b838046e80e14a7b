"""Intake limits over HTTP: body budgets, multipart shape, failed-auth limits per client, the decode gate.

Each test builds its own app with the settings it is about (embedded profile, real models); the
streaming behaviour of a real server is in test_body_limit_server.py.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import select

from facesocial.api.app import create_app
from facesocial.api.body_limit import image_body_limit
from facesocial.container import Container
from facesocial.settings import RateLimit, Settings
from facesocial.store.tables import AiOperationLog
from tests.integration.conftest import make_settings

pytestmark = pytest.mark.integration
DETECT = "/api/v1/face-detection/detect"
GROUPS = "/api/v1/face-recognition/groups"
PEER = ("127.0.0.1", 50000)  # the socket peer TestClient reports


@contextmanager
def app_with(
    tmp_path: Path, model_dir: Path | None, tune: Any = None
) -> Iterator[tuple[TestClient, Container, str]]:
    settings: Settings = make_settings(tmp_path, model_dir)
    settings.reconcile.interval_seconds = 0
    if tune is not None:
        tune(settings)
    container = Container(settings)
    container.prepare()
    key = container.keys.create("limits").secret
    with TestClient(create_app(container), raise_server_exceptions=False, client=PEER) as client:
        yield client, container, key
    container.close()


def _served(endpoint: str, method: str, status: int) -> float:
    """http_requests_total so far (the Prometheus registry is shared by every app in the process)."""
    labels = {"endpoint": endpoint, "method": method, "status": str(status)}
    return REGISTRY.get_sample_value("http_requests_total", labels) or 0.0


def code_of(response: Any) -> tuple[int, str]:
    body = response.json()
    assert body["success"] is False, response.text
    return response.status_code, body["error"]["code"]


# --- body budgets --------------------------------------------------------------------------------


def test_body_over_the_route_budget_is_413_and_audited(
    tmp_path: Path, optional_model_dir: Path | None
) -> None:
    def small(settings: Settings) -> None:
        settings.limits.max_image_bytes = 100_000
        settings.intake.json_body_bytes = 10_000

    with app_with(tmp_path, optional_model_dir, small) as (client, container, key):
        headers = {"X-API-Key": key}
        limit = image_body_limit(1, 100_000, container.settings.intake)
        big = b"\xff" * (limit + 1)
        declared = client.post(DETECT, files={"image": ("a.jpg", big, "image/jpeg")}, headers=headers)
        assert code_of(declared) == (413, "PAYLOAD_TOO_LARGE")
        assert str(limit) in declared.json()["error"]["message"]
        assert declared.json()["error"]["details"]["limit_bytes"] == limit
        assert declared.headers["connection"] == "close"

        # No Content-Length: counted as it arrives (a generator body is sent chunked).
        chunked = client.post(
            DETECT,
            content=iter([b"\0" * 50_000] * 5),
            headers={**headers, "Content-Type": "application/json"},
        )
        assert code_of(chunked) == (413, "PAYLOAD_TOO_LARGE")

        # JSON-only routes have their own, smaller budget; FastAPI's parser does not turn it into a 400.
        group = client.post(GROUPS, json={"group_name": "x" * 20_000}, headers=headers)
        assert code_of(group) == (413, "PAYLOAD_TOO_LARGE")
        assert client.post(GROUPS, json={"group_name": "fits"}, headers=headers).status_code == 201

        # Under the body budget but over the image limit: the image's own error, both kinds.
        image = b"\xff" * 100_001
        as_form = client.post(DETECT, files={"image": ("a.jpg", image, "image/jpeg")}, headers=headers)
        as_json = client.post(DETECT, json={"image": base64.b64encode(image).decode()}, headers=headers)
        assert code_of(as_form) == code_of(as_json) == (413, "IMAGE_TOO_LARGE")
        # In a batch, an oversize image is that item's error only.
        batch = client.post(
            "/api/v1/demographics/batch",
            files=[
                ("images", ("big.jpg", image, "image/jpeg")),
                ("images", ("t.jpg", b"text", "image/jpeg")),
            ],
            headers=headers,
        )
        assert code_of(batch) == (422, "BATCH_FAILED")
        results = batch.json()["error"]["details"]["results"]
        assert [r["error"]["code"] for r in results] == ["IMAGE_TOO_LARGE", "NOT_AN_IMAGE"]

        # Authentication comes first: no key, no body budget talk.
        assert code_of(client.post(DETECT, files={"image": ("a.jpg", big, "image/jpeg")})) == (
            401,
            "MISSING_API_KEY",
        )
        with container.database.session() as session:
            codes = [r.error_code for r in session.scalars(select(AiOperationLog)).all()]
        assert codes.count("PAYLOAD_TOO_LARGE") == 3 and "MISSING_API_KEY" in codes


def test_multipart_shape_limits(
    tmp_path: Path, optional_model_dir: Path | None, astronaut_jpeg: bytes
) -> None:
    with app_with(tmp_path, optional_model_dir) as (client, container, key):
        headers = {"X-API-Key": key}
        image = {"image": ("a.jpg", astronaut_jpeg, "image/jpeg")}
        many_fields = {f"field{i}": "1" for i in range(container.settings.intake.max_form_fields + 1)}
        cases: list[tuple[dict[str, Any], Any]] = [
            ({"data": many_fields}, "too many fields"),
            ({"data": {"min_face_size": "4" * 70_000}}, "one huge field"),
            ({"data": {"max_facez": "3"}}, "unknown field"),
            ({"data": {"max_faces": ["2", "3"]}}, "a field sent twice"),
        ]
        for extra, label in cases:
            response = client.post(DETECT, files=image, headers=headers, **extra)
            assert code_of(response) == (422, "VALIDATION_ERROR"), label
        two_images = [("image", ("a.jpg", astronaut_jpeg, "image/jpeg"))] * 2
        assert code_of(client.post(DETECT, files=two_images, headers=headers)) == (422, "VALIDATION_ERROR")
        as_text = client.post(DETECT, data={"image": base64.b64encode(b"tiny").decode()}, headers=headers)
        assert code_of(as_text) == (422, "VALIDATION_ERROR")
        assert "file part" in as_text.json()["error"]["message"]
        assert client.post(DETECT, files=image, headers=headers).status_code == 200


# --- failed authentication, per client address ------------------------------------------------------


def limited_auth(settings: Settings) -> None:
    settings.rate_limits.enabled = True
    settings.rate_limits.limits = {"auth_failures": RateLimit(rate_per_second=0.1, burst=3)}
    settings.intake.trusted_proxies = ["127.0.0.1"]


def test_failed_authentication_is_limited_per_client_address(
    tmp_path: Path, optional_model_dir: Path | None
) -> None:
    with app_with(tmp_path, optional_model_dir, limited_auth) as (client, container, key):
        refused_before = _served(GROUPS, "GET", 429)
        attacker = {"X-Forwarded-For": "203.0.113.7"}
        statuses = [
            client.get(GROUPS, headers={**attacker, "X-API-Key": f"fs_guess{i}"}).status_code
            for i in range(4)
        ]
        assert statuses == [401, 401, 401, 429]
        blocked = client.get(GROUPS, headers={**attacker, "X-API-Key": key})  # even the right key
        assert code_of(blocked) == (429, "RATE_LIMITED")
        assert 1 <= int(blocked.headers["Retry-After"]) <= 10
        assert code_of(client.get(GROUPS, headers=attacker)) == (
            429,
            "RATE_LIMITED",
        )  # missing key counts too
        # Another client behind the same proxy is not affected.
        assert (
            client.get(GROUPS, headers={"X-Forwarded-For": "198.51.100.20", "X-API-Key": key}).status_code
            == 200
        )
        # The failed authentications are audited, refused before routing yet under their route;
        # the blocked requests are not (an unauthenticated client must not grow the database at
        # connection rate), so the good key sent while blocked left no trace either.
        with container.database.session() as session:
            rows = session.scalars(
                select(AiOperationLog).where(AiOperationLog.operation_result == "error")
            ).all()
        assert [r.error_code for r in rows] == ["INVALID_API_KEY"] * 3
        assert all(r.api_key_id is None for r in rows)
        assert {str(r.ip_address) for r in rows} == {"203.0.113.7"}
        assert {(r.endpoint, r.operation_type) for r in rows} == {(f"GET {GROUPS}", "list_groups")}
        # ... while the metrics count every one of them.
        assert _served(GROUPS, "GET", 429) - refused_before == 3


def test_forwarded_for_is_ignored_from_an_untrusted_peer(
    tmp_path: Path, optional_model_dir: Path | None
) -> None:
    def untrusted(settings: Settings) -> None:
        limited_auth(settings)
        settings.intake.trusted_proxies = ["10.0.0.0/8"]  # the test client's 127.0.0.1 is not in it

    with app_with(tmp_path, optional_model_dir, untrusted) as (client, _container, key):
        # Rotating the header does not help: every failure counts against the socket peer.
        statuses = [
            client.get(
                GROUPS, headers={"X-Forwarded-For": f"203.0.113.{i}", "X-API-Key": "fs_guess"}
            ).status_code
            for i in range(5)
        ]
        assert statuses == [401, 401, 401, 429, 429]
        assert (
            client.get(GROUPS, headers={"X-Forwarded-For": "192.0.2.1", "X-API-Key": key}).status_code == 429
        )


def test_auth_failure_limit_holds_across_processes_sharing_redis(
    tmp_path: Path, optional_model_dir: Path | None
) -> None:
    from tests.services import scratch_redis

    with scratch_redis() as redis_url:

        def shared(settings: Settings) -> None:
            limited_auth(settings)
            settings.redis_url = redis_url

        with (
            app_with(tmp_path / "a", optional_model_dir, shared) as (first, _c1, _k1),
            app_with(tmp_path / "b", optional_model_dir, shared) as (second, _c2, _k2),
        ):
            guess = {"X-Forwarded-For": "203.0.113.9", "X-API-Key": "fs_guess"}
            statuses = [(first if i % 2 else second).get(GROUPS, headers=guess).status_code for i in range(5)]
        assert statuses == [401, 401, 401, 429, 429]


# --- the decode gate -----------------------------------------------------------------------------


def test_busy_decode_gate_answers_503_with_retry_after(
    tmp_path: Path, optional_model_dir: Path | None, astronaut_jpeg: bytes
) -> None:
    def impatient(settings: Settings) -> None:
        settings.limits.decode_wait_seconds = 0.2

    with app_with(tmp_path, optional_model_dir, impatient) as (client, _container, key):
        gate = client.app.state.decode_gate  # type: ignore[attr-defined]
        held, release = threading.Event(), threading.Event()

        def hold() -> None:
            with gate.admit(gate.pixel_budget):
                held.set()
                release.wait(30)

        holder = threading.Thread(target=hold)
        holder.start()
        try:
            assert held.wait(10)
            for body in (
                {"files": {"image": ("a.jpg", astronaut_jpeg, "image/jpeg")}},
                {"json": {"image": base64.b64encode(astronaut_jpeg).decode()}},
            ):
                busy = client.post(DETECT, headers={"X-API-Key": key}, **body)
                assert code_of(busy) == (503, "SERVER_BUSY")
                assert int(busy.headers["Retry-After"]) >= 1
        finally:
            release.set()
            holder.join()
        assert (
            client.post(
                DETECT, headers={"X-API-Key": key}, files={"image": ("a.jpg", astronaut_jpeg, "image/jpeg")}
            ).status_code
            == 200
        )
        assert gate.pixels_in_flight == 0


def test_json_route_budget_counts_only_declared_routes(
    tmp_path: Path, optional_model_dir: Path | None
) -> None:
    """An image route's budget is its own; the JSON default does not cap it."""
    with app_with(tmp_path, optional_model_dir) as (client, container, key):
        payload = json.dumps({"image": base64.b64encode(b"\xff" * 2_000_000).decode()})
        assert len(payload) > container.settings.intake.json_body_bytes
        response = client.post(
            DETECT, content=payload, headers={"X-API-Key": key, "Content-Type": "application/json"}
        )
        assert code_of(response) == (415, "NOT_AN_IMAGE")  # read and decoded, then refused as no image


# --- what refused and broken requests leave behind ---------------------------------------------------


def test_refused_clients_cannot_fill_the_audit_log(tmp_path: Path, optional_model_dir: Path | None) -> None:
    from facesocial.store.tables import UsageLog

    with app_with(tmp_path, optional_model_dir, limited_auth) as (client, container, _key):
        huge = {"User-Agent": "A" * 60_000, "X-Forwarded-For": "203.0.113.8"}
        statuses = [client.get(GROUPS, headers=huge).status_code for _ in range(40)]
        assert statuses == [401] * 3 + [429] * 37
        with container.database.session() as session:
            operations = session.scalars(select(AiOperationLog)).all()
            usage = session.scalars(select(UsageLog)).all()
        # One row per failed authentication up to the limit, none for the 37 blocked requests,
        # and at most 512 characters of what the client called itself.
        assert [r.error_code for r in operations] == ["MISSING_API_KEY"] * 3 and len(usage) == 3
        assert {len(r.user_agent or "") for r in [*operations, *usage]} == {512}


def test_long_client_text_is_cut_in_audit_rows(tmp_path: Path, optional_model_dir: Path | None) -> None:
    with app_with(tmp_path, optional_model_dir) as (client, container, key):
        path = "/api/v1/" + "x" * 5000
        response = client.post(
            GROUPS,
            json={"group_name": "g", "y" * 5000: 1},
            headers={"X-API-Key": key, "User-Agent": "B" * 5000},
        )
        assert code_of(response) == (422, "VALIDATION_ERROR")  # the message quotes the field name
        assert code_of(client.get(path, headers={"X-API-Key": key})) == (404, "NOT_FOUND")
        with container.database.session() as session:
            rows = session.scalars(select(AiOperationLog)).all()
        assert len(rows) == 2
        assert all(len(r.user_agent or "") <= 512 for r in rows)
        assert all(len(r.error_message or "") <= 1024 for r in rows)
        assert all(len(r.endpoint or "") <= 100 for r in rows)
        assert max(len(r.error_message or "") for r in rows) == 1024


def _cut_off_upload(path: str, key: str, content_type: bytes, first_part: bytes) -> dict[str, Any]:
    """An ASGI request that announces 100,000 bytes, sends a few, then disconnects."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"x-api-key", key.encode()),
            (b"content-type", content_type),
            (b"content-length", b"100000"),
        ],
        "client": PEER,
        "server": ("testserver", 80),
    }
    messages: list[dict[str, Any]] = [{"type": "http.request", "body": first_part, "more_body": True}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    return {"scope": scope, "receive": receive, "send": send, "sent": sent}


@pytest.mark.parametrize(
    ("path", "content_type", "first_part"),
    [
        (
            DETECT,
            b"multipart/form-data; boundary=BND",
            b'--BND\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n\r\n' + b"x" * 1000,
        ),
        (DETECT, b"application/json", b'{"image": "' + b"A" * 1000),
        (GROUPS, b"application/json", b'{"group_name": "' + b"g" * 1000),
    ],
    ids=["multipart", "json-image", "json-group"],
)
def test_a_client_disconnecting_mid_upload_is_a_client_error(
    tmp_path: Path,
    optional_model_dir: Path | None,
    caplog: pytest.LogCaptureFixture,
    path: str,
    content_type: bytes,
    first_part: bytes,
) -> None:
    with app_with(tmp_path, optional_model_dir) as (client, container, key):
        served_400, served_500 = _served(path, "POST", 400), _served(path, "POST", 500)
        request = _cut_off_upload(path, key, content_type, first_part)
        assert client.portal is not None
        with caplog.at_level(logging.INFO):
            client.portal.call(client.app, request["scope"], request["receive"], request["send"])
        # Not a bug of ours: no traceback, no 5xx in the metrics, a client error in the audit row.
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
        assert any("client disconnected" in r.getMessage() for r in caplog.records)
        assert request["sent"][0]["status"] == 400
        assert _served(path, "POST", 500) == served_500
        assert _served(path, "POST", 400) == served_400 + 1
        with container.database.session() as session:
            row = session.scalars(select(AiOperationLog)).one()
        assert (row.error_code, row.operation_result) == ("CLIENT_DISCONNECTED", "error")


def test_the_attention_socket_shares_the_failed_authentication_limit(
    tmp_path: Path, optional_model_dir: Path | None
) -> None:
    """Guesses over HTTP and over the attention WebSocket count against one limit per address, and
    a socket over it is refused RATE_LIMITED (close 4429), like an HTTP request (429)."""
    with app_with(tmp_path, optional_model_dir, limited_auth) as (client, _container, key):
        attacker = {"X-Forwarded-For": "203.0.113.9"}
        for i in range(3):
            assert client.get(GROUPS, headers={**attacker, "X-API-Key": f"fs_guess{i}"}).status_code == 401
        socket = f"/api/v1/attention/meetings/{uuid.uuid4()}/ws"
        for guess in ("fs_guess3", key):  # the one over the limit, then even the right key
            with client.websocket_connect(socket, headers={**attacker, "X-API-Key": guess}) as ws:
                refusal = ws.receive_json()
                closed = ws.receive()
            assert (refusal["type"], refusal["code"]) == ("error", "RATE_LIMITED")
            assert (closed["code"], closed["reason"]) == (4429, "RATE_LIMITED")
