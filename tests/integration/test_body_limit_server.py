"""A real ``facesocial serve`` process must not read a 200 MB body it is going to refuse.

Bodies are streamed from a raw socket that stops sending as soon as the server answers, so the
bytes sent before the answer bound what the server could have read (plus kernel socket buffers).
The server's resident memory is sampled throughout. httpx streaming a body without
Content-Length shows what an ordinary client sees.
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
import pytest

from facesocial.api.body_limit import image_body_limit
from facesocial.settings import ImageLimits, IntakeSettings
from tests.services import free_port, wait_healthy

pytestmark = pytest.mark.integration
DETECT = "/api/v1/face-detection/detect"
TOTAL = 200 * 1024 * 1024
# Loopback socket buffers (client send + server receive, autotuned) hold a few MB at most; a
# server that reads the whole body instead would let all 200 MB through.
BUFFERS = 16 * 1024 * 1024
BOUNDARY = "facesocial-test-boundary"
PREFIX = (
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="big.jpg"\r\n'
    "Content-Type: image/jpeg\r\n\r\n"
).encode()


@dataclass
class Server:
    port: int
    key: str
    pid: int


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, optional_model_dir: Path | None) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("serve-limits")
    port = free_port()
    env = {
        **os.environ,
        "FACESOCIAL_DATA_DIR": str(data),
        "FACESOCIAL_MODELS__MODEL_DIR": str(optional_model_dir or data / "no-models"),
        "FACESOCIAL_MODELS__AUTO_PULL": "false",
        "FACESOCIAL_RECONCILE__INTERVAL_SECONDS": "0",
    }
    command = [sys.executable, "-m", "facesocial", "serve", "--port", str(port)]
    with subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True) as process:
        try:
            assert process.stderr is not None
            key, deadline = "", time.monotonic() + 120
            while not key and time.monotonic() < deadline:
                line = process.stderr.readline()
                if line.strip().startswith("fs_"):
                    key = line.strip()
            assert key, "no operator key printed on first start"
            # Keep draining stderr so the server never blocks on a full pipe.
            threading.Thread(target=_drain, args=(process.stderr,), daemon=True).start()
            wait_healthy(port)
            yield Server(port, key, process.pid)
        finally:
            process.terminate()
            process.wait(timeout=30)


def _drain(pipe: IO[str]) -> None:
    for _line in pipe:
        pass


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@dataclass
class Sent:
    bytes_sent: int
    status: int
    body: bytes
    seconds: float


def stream(port: int, headers: dict[str, str], *, chunked: bool, prefix: bytes = PREFIX) -> Sent:
    """POST up to TOTAL body bytes, stopping as soon as the server answers or closes."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 256 * 1024)
    head = f"POST {DETECT} HTTP/1.1\r\nHost: test\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    sock.sendall((head + "\r\n").encode())
    block, first = b"\0" * 65536, prefix
    outgoing = b""
    sent, reply, started = 0, b"", time.monotonic()
    sock.setblocking(False)
    try:
        while sent < TOTAL and b"\r\n\r\n" not in reply:
            readable, writable, _ = select.select([sock], [sock], [], 30)
            if readable:
                data = sock.recv(65536)
                if not data:
                    break
                reply += data
            elif writable:
                if not outgoing:
                    payload, first = first or block, b""
                    outgoing = b"%x\r\n%s\r\n" % (len(payload), payload) if chunked else payload
                count = sock.send(outgoing)
                sent, outgoing = sent + count, outgoing[count:]
            else:
                raise AssertionError("the server neither read nor answered for 30 s")
    except (BrokenPipeError, ConnectionResetError):
        pass  # closed after answering: the answer is already in our receive buffer
    sock.setblocking(True)
    sock.settimeout(10)
    try:
        while data := sock.recv(65536):
            reply += data
    except (TimeoutError, ConnectionResetError):
        pass
    sock.close()
    status_line, _, rest = reply.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 "), f"no answer after {sent} bytes: {reply[:200]!r}"
    return Sent(sent, int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2], time.monotonic() - started)


class Memory:
    """Resident size of the server, sampled every 10 ms while the ``with`` block runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.baseline = self.peak = rss_bytes(pid)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.wait(0.01):
            self.peak = max(self.peak, rss_bytes(self.pid))

    def __enter__(self) -> Memory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes(self.pid))

    @property
    def growth(self) -> int:
        return self.peak - self.baseline


# A refused 200 MB body must not show in the server's memory; a JSON body up to its budget
# (27 MiB for one image) may, once.
MEMORY_GROWTH = 96 * 1024 * 1024


def multipart(key: str | None, **extra: str) -> dict[str, str]:
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}", **extra}
    if key:
        headers["X-API-Key"] = key
    return headers


CHUNKED = {"Transfer-Encoding": "chunked"}
DECLARED = {"Content-Length": str(TOTAL)}
CASES = [
    # label, with key, body framing, expected status and code
    ("unauthenticated", False, DECLARED, 401, b"MISSING_API_KEY"),
    ("unauthenticated-chunked", False, CHUNKED, 401, b"MISSING_API_KEY"),
    ("declared-too-large", True, DECLARED, 413, b"PAYLOAD_TOO_LARGE"),
]


@pytest.mark.parametrize(("label", "keyed", "framing", "status", "code"), CASES, ids=[c[0] for c in CASES])
def test_refused_before_reading(
    server: Server, label: str, keyed: bool, framing: dict[str, str], status: int, code: bytes
) -> None:
    with Memory(server.pid) as memory:
        result = stream(
            server.port, multipart(server.key if keyed else None, **framing), chunked=framing is CHUNKED
        )
    assert result.status == status and code in result.body, result.body
    assert result.bytes_sent < BUFFERS, f"{label}: {result.bytes_sent} bytes sent before the answer"
    assert memory.growth < MEMORY_GROWTH
    print(f"{label}: {result.status} after {result.bytes_sent} B, {result.seconds:.3f} s, +{memory.growth} B")


@pytest.mark.parametrize("kind", ["multipart", "json"])
def test_chunked_body_is_cut_at_the_route_limit(server: Server, kind: str) -> None:
    limit = image_body_limit(1, ImageLimits().max_image_bytes, IntakeSettings())
    if kind == "multipart":
        headers, prefix = multipart(server.key, **CHUNKED), PREFIX
    else:
        headers = {"Content-Type": "application/json", "X-API-Key": server.key, **CHUNKED}
        prefix = b'{"image": "'
    with Memory(server.pid) as memory:
        result = stream(server.port, headers, chunked=True, prefix=prefix)
    assert result.status == 413 and b"PAYLOAD_TOO_LARGE" in result.body, result.body
    assert str(limit).encode() in result.body
    assert limit < result.bytes_sent < limit + BUFFERS
    assert memory.growth < MEMORY_GROWTH
    print(f"chunked {kind}: 413 after {result.bytes_sent} B, {result.seconds:.3f} s, RSS +{memory.growth} B")


def test_lying_content_length_reads_only_what_it_declares(server: Server) -> None:
    with Memory(server.pid) as memory:
        result = stream(server.port, multipart(server.key, **{"Content-Length": "1000"}), chunked=False)
    # The declared 1000 bytes are a cut-off multipart body; the rest is never read as this body.
    assert result.status == 422 and b"VALIDATION_ERROR" in result.body, result.body
    assert result.bytes_sent < BUFFERS
    assert memory.growth < MEMORY_GROWTH
    print(f"lying Content-Length: {result.status} after {result.bytes_sent} B, RSS +{memory.growth} B")


def test_httpx_streaming_client_gets_the_answer(server: Server, astronaut_jpeg: bytes) -> None:
    def body() -> Iterator[bytes]:
        yield PREFIX
        for _ in range(TOTAL // 65536):
            yield b"\0" * 65536

    url = f"http://127.0.0.1:{server.port}{DETECT}"
    with Memory(server.pid) as memory:
        for headers, status in ((multipart(None), 401), (multipart(server.key), 413)):
            response = httpx.post(url, content=body(), headers=headers, timeout=60)
            assert response.status_code == status, response.text
            assert response.json()["success"] is False
    assert memory.growth < MEMORY_GROWTH
    # Refusals closed their connections; the server still serves.
    fine = httpx.post(
        url,
        headers={"X-API-Key": server.key},
        files={"image": ("a.jpg", astronaut_jpeg, "image/jpeg")},
        timeout=60,
    )
    assert fine.status_code == 200 and fine.json()["faces_detected"] == 1


def test_forwarded_for_is_not_trusted_by_default(server: Server) -> None:
    """Runs last: it gets 127.0.0.1 blocked. Rotating X-Forwarded-For does not dodge the limit."""
    url = f"http://127.0.0.1:{server.port}/api/v1/face-recognition/groups"
    statuses = [
        httpx.get(url, headers={"X-API-Key": "fs_guess", "X-Forwarded-For": f"203.0.113.{i}"}).status_code
        for i in range(12)
    ]
    # Burst of 10 failures per address (some were spent by the unauthenticated tests above).
    assert statuses[-1] == 429 and statuses.count(401) <= 10
    blocked = httpx.get(url, headers={"X-API-Key": server.key, "X-Forwarded-For": "198.51.100.1"})
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) >= 1
