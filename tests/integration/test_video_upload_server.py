"""spool_video_upload in a real uvicorn process, over real sockets: a streamed upload, refusals
before reading, and a client process killed mid-upload (its partial file must disappear)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from facesocial.evaluation.bench_video import BOUNDARY, MEMORY_PATH, UPLOAD_PATH, multipart_body
from facesocial.settings import IntakeSettings
from tests.services import free_port

pytestmark = pytest.mark.integration
MIB = 1024 * 1024
LIMIT = 8 * MIB
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
PREFIX = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="video"; filename="a.mp4"\r\n\r\n'.encode()


@dataclass
class Server:
    port: int
    spool: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def files(self) -> list[Path]:
        return sorted(self.spool.iterdir()) if self.spool.exists() else []

    def wait_for_files(self, present: bool, seconds: float = 15.0) -> None:
        deadline = time.monotonic() + seconds
        while bool(self.files()) != present:
            assert time.monotonic() < deadline, f"spool folder still {'empty' if present else self.files()}"
            time.sleep(0.05)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    spool = tmp_path_factory.mktemp("video-spool") / "uploads"
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "facesocial.evaluation.bench_video",
        "serve",
        "--port",
        str(port),
        "--dest",
        str(spool),
        "--max-bytes",
        str(LIMIT),
    ]
    with subprocess.Popen(command) as process:
        try:
            deadline = time.monotonic() + 60
            while True:
                assert process.poll() is None and time.monotonic() < deadline, "server did not start"
                try:
                    if httpx.get(f"http://127.0.0.1:{port}{MEMORY_PATH}", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            yield Server(port, spool, process)
        finally:
            process.terminate()
            process.wait(timeout=30)


def test_streamed_upload_arrives_whole(server: Server) -> None:
    total, body, digest = multipart_body(5 * MIB + 3)
    response = httpx.post(
        server.url + UPLOAD_PATH,
        content=body,
        headers={"Content-Type": MULTIPART, "Content-Length": str(total)},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    assert (response.json()["sha256"], response.json()["size"]) == (digest, 5 * MIB + 3)
    assert response.json()["fields"] == {"sample_fps": "2"}


def _request_head(port: int, headers: dict[str, str]) -> bytes:
    lines = [
        f"POST {UPLOAD_PATH} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_declared_oversize_is_refused_before_the_body(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            _request_head(server.port, {"Content-Type": MULTIPART, "Content-Length": str(100 * MIB)})
        )
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            data = sock.recv(65536)
            if not data:
                break
            reply += data
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert b"VIDEO_TOO_LARGE" in reply and b"connection: close" in reply.lower()
    assert server.files() == []


def test_chunked_body_over_the_budget_is_cut_off(server: Server) -> None:
    budget = LIMIT + IntakeSettings().field_allowance_bytes

    def endless() -> Iterator[bytes]:
        yield PREFIX
        for _ in range(2 * budget // 65536):
            yield b"\0" * 65536

    try:
        response = httpx.post(
            server.url + UPLOAD_PATH, content=endless(), headers={"Content-Type": MULTIPART}, timeout=30
        )
        # Ours when the file passes the limit first; the body-limit middleware's when one chunk
        # of the server's (uvicorn hands over what it has buffered, often > 64 KiB) carries the
        # body past the route's budget before the parser sees it.
        assert response.status_code == 413
        assert response.json()["error"]["code"] in ("VIDEO_TOO_LARGE", "PAYLOAD_TOO_LARGE")
    except httpx.TransportError:
        pass  # the server answered and closed while httpx was still sending: also a refusal
    server.wait_for_files(present=False)


CLIENT = """
import socket, sys, time
port, total = int(sys.argv[1]), int(sys.argv[2])
head = sys.stdin.buffer.read()
sock = socket.create_connection(("127.0.0.1", port))
sock.sendall(head)
sent = 0
while sent < 3 * 1024 * 1024:
    sock.sendall(b"\\1" * 65536)
    sent += 65536
print("sent", flush=True)
time.sleep(600)
"""


def test_killed_client_leaves_no_partial_file(server: Server) -> None:
    total, _, _ = multipart_body(LIMIT - MIB)
    head = _request_head(server.port, {"Content-Type": MULTIPART, "Content-Length": str(total)}) + PREFIX
    command = [sys.executable, "-c", CLIENT, str(server.port), str(total)]
    with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE) as client:
        assert client.stdin is not None and client.stdout is not None
        client.stdin.write(head)
        client.stdin.close()
        assert client.stdout.readline().strip() == b"sent"
        server.wait_for_files(present=True)  # the partial upload is on disk...
        client.kill()  # ... when the client process dies mid-body
        client.wait(timeout=10)
    server.wait_for_files(present=False)
    assert server.process.poll() is None
    assert httpx.get(server.url + MEMORY_PATH, timeout=5).status_code == 200
