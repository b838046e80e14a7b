"""Real stores that tests may break: a private Redis, a TCP proxy to cut, a Milvus server process.

Never the shared servers on 6379/5432: each helper starts its own process or socket on a free port.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

from tests.services import free_port, wait_healthy


def _wait_port(port: int, timeout_seconds: float = 30) -> None:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on port {port}")


class RedisProcess:
    """``redis-server`` on a free port, persisting every write (AOF, fsync always) in ``folder``.

    Persistence is the point: a killed and restarted Redis comes back with the entries it had,
    stale ones included, as a production Redis with AOF or RDB does.
    """

    def __init__(self, folder: Path) -> None:
        if shutil.which("redis-server") is None:
            pytest.skip("redis-server is not installed")
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        command = [
            "redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
            "--save", "", "--appendonly", "yes", "--appendfsync", "always",
            "--logfile", str(self.folder / "redis.log"),
        ]  # fmt: skip
        self._process = subprocess.Popen(command)
        _wait_port(self.port)

    def kill(self) -> None:
        """SIGKILL: no goodbye to clients, as when a host or container dies."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=10)
            self._process = None

    def __enter__(self) -> RedisProcess:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.kill()


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to 127.0.0.1:``target_port``.

    ``cut()`` drops every open connection and refuses new ones (a dead server or a broken network
    path); ``restore()`` accepts again on the same port.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listening = False
        self._acceptor: threading.Thread | None = None

    def start(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port))
        listener.settimeout(0.1)
        self._listening = True
        self._acceptor = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._acceptor.start()

    def cut(self) -> None:
        self._listening = False
        if self._acceptor is not None:
            self._acceptor.join(timeout=5)
        with self._lock:
            doomed, self._sockets = self._sockets, set()
        for sock in doomed:
            _close(sock)

    restore = start

    def _accept(self, listener: socket.socket) -> None:
        with listener:
            while self._listening:
                try:
                    client, _ = listener.accept()
                except TimeoutError:
                    continue
                try:
                    upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                except OSError:
                    _close(client)
                    continue
                client.settimeout(None)
                upstream.settimeout(None)
                with self._lock:
                    self._sockets |= {client, upstream}
                for src, dst in ((client, upstream), (upstream, client)):
                    threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                _close(sock)
            with self._lock:
                self._sockets.discard(src)
                self._sockets.discard(dst)

    def __enter__(self) -> TcpProxy:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.cut()


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


class MilvusProcess:
    """milvus-lite's own gRPC server in a child process: a Milvus server at ``http://127.0.0.1:port``.

    (milvus-lite 3 serves a ``.db`` URI from threads inside the client process; running its server
    as a process of its own gives a Milvus that can be frozen or killed without touching the app.)
    """

    def __init__(self, folder: Path) -> None:
        pytest.importorskip("milvus_lite", reason="milvus-lite is not installed (pip install '.[milvus]')")
        self.folder = folder
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [
            sys.executable, "-m", "milvus_lite", "server",
            "--data-dir", str(self.folder), "--host", "127.0.0.1", "--port", str(self.port),
        ]  # fmt: skip
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        self._process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
        _wait_port(self.port, timeout_seconds=60)

    def freeze(self) -> None:
        """SIGSTOP: the socket stays open but nothing answers (a hung server)."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)
            self._process.kill()
            self._process.wait(timeout=10)
            self._process = None

    def __enter__(self) -> MilvusProcess:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.kill()


class ServerThread:
    """A real uvicorn server for ``app`` on a free port, in a thread of the test process.

    Requests arrive over real sockets and run concurrently in the server's thread pool, while the
    test can still look inside the app's container.
    """

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="uvicorn", daemon=True)

    def __enter__(self) -> ServerThread:
        self._thread.start()
        wait_healthy(self.port, timeout_seconds=60)
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)
