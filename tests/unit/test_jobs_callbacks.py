"""Callback URLs (SSRF rules), per-key secrets and signatures, delivery with retries.

Most delivery tests go through httpx's MockTransport, which records the requests the sender makes
(where it connects, which headers); the total deadline and the per-tenant fairness are tested
against real receivers on local sockets (one trickling its answer a byte at a time); the contract
test (tests/integration/test_jobs_contract.py) has the real receiver of a real job.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import stat
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update

from facesocial import errors
from facesocial.jobs.callbacks import (
    DELIVERY_THREADS,
    CallbackSender,
    CallbackSigner,
    refused_address,
    validate_callback_url,
    verify_signature,
)
from facesocial.jobs.port import NewJob
from facesocial.jobs.store import JobStore
from facesocial.settings import JobSettings
from facesocial.store import migrate
from facesocial.store.db import Database
from facesocial.store.tables import Job
from facesocial.store.types import utcnow

TENANT = uuid.uuid4()
KEY = uuid.uuid4()


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://127.0.0.1/hook", "loopback"),
        ("http://localhost:8080/hook", "loopback"),
        ("http://[::1]/hook", "loopback"),
        ("http://[::ffff:127.0.0.1]/hook", "loopback"),
        ("http://[2002:7f00:1::]/hook", "loopback"),  # 6to4 of 127.0.0.1 (Python calls it global)
        ("http://[2002:a9fe:a9fe::1]/hook", "link-local"),  # 6to4 of 169.254.169.254
        ("http://[64:ff9b::a00:1]/hook", "reserved"),  # NAT64 (of 10.0.0.1): in ::/8
        ("http://10.1.2.3/hook", "private"),
        ("https://192.168.0.10/hook", "private"),
        ("http://172.16.5.4/hook", "private"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),  # cloud metadata
        ("http://[fe80::1]/hook", "link-local"),
        ("http://224.0.0.1/hook", "multicast"),
        ("http://240.0.0.1/hook", "reserved"),
        ("http://0.0.0.0/hook", "unspecified"),
        ("http://100.64.0.1/hook", "non-public"),
        ("ftp://93.184.215.14/hook", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("http:///hook", "no host"),
        ("https://user:pw@93.184.215.14/hook", "credentials"),
        ("https://93.184.215.14:99999/hook", "not a valid URL"),
        ("https://93.184.215.14/ho ok", "spaces"),
        ("https://93.184.215.14/" + "a" * 2048, "longer than 2048"),
        ("", "empty"),
        ("https://no-such-host.invalid/hook", "does not resolve"),
    ],
)
def test_refused_callback_urls(url: str, problem: str) -> None:
    with pytest.raises(errors.InvalidCallbackUrlError) as refused:
        validate_callback_url(url, allow_private=False)
    assert refused.value.status == 422
    assert problem in refused.value.message


@pytest.mark.parametrize(
    "url", ["https://93.184.215.14/hooks/job?x=1", "http://8.8.8.8:8080/cb", "https://[2606:4700::1111]/hook"]
)
def test_public_addresses_are_accepted(url: str) -> None:
    assert validate_callback_url(url, allow_private=False) == url


def test_private_addresses_pass_only_when_allowed() -> None:
    assert (
        validate_callback_url("http://127.0.0.1:9000/hook", allow_private=True)
        == "http://127.0.0.1:9000/hook"
    )
    with pytest.raises(errors.InvalidCallbackUrlError):  # the rest of the rules still hold
        validate_callback_url("http://user@127.0.0.1/hook", allow_private=True)


def test_refused_address_names_the_reason() -> None:
    assert refused_address("8.8.8.8") is None
    assert refused_address("fe80::1%eth0") == "link-local"
    assert refused_address("fc00::1") == "private"
    assert refused_address("2002:7f00:1::") == "loopback"
    assert refused_address("2002:808:808::1") is None  # 6to4 of 8.8.8.8
    # Teredo (client 127.0.0.1 inside): 2001::/23 is not global in itself.
    assert refused_address("2001:0:4136:e378:8000:63bf:80ff:fffe") == "private"


def test_each_key_has_its_own_secret_derived_from_the_master() -> None:
    signer = CallbackSigner(b"m" * 32)
    first, second = uuid.uuid4(), uuid.uuid4()
    mine = signer.secret_for(TENANT, first)
    assert mine == signer.secret_for(uuid.uuid4(), first)  # the key decides, not the tenant
    assert mine != signer.secret_for(TENANT, second)
    assert len(mine) == 64 and int(mine, 16) >= 0
    expected = hmac.new(b"m" * 32, f"callback:{first}".encode(), hashlib.sha256).hexdigest()
    assert mine == expected
    # A JWT caller (no key): the tenant id.
    assert (
        signer.secret_for(TENANT, None)
        == hmac.new(b"m" * 32, f"callback:{TENANT}".encode(), "sha256").hexdigest()
    )
    assert CallbackSigner(b"n" * 32).secret_for(TENANT, first) != mine


def test_signature_is_the_hmac_of_timestamp_and_body() -> None:
    body = b'{"job_id":"job_1","status":"completed"}'
    header = CallbackSigner.sign(body, "s3cret", "1796112000")
    assert header == "sha256=" + hmac.new(b"s3cret", b"1796112000." + body, hashlib.sha256).hexdigest()
    now = 1796112000.0 + 200
    assert verify_signature(body, header, "1796112000", "s3cret", now=now)
    assert not verify_signature(body + b" ", header, "1796112000", "s3cret", now=now)
    assert not verify_signature(body, header, "1796112000", "other", now=now)
    assert not verify_signature(body, header, "1796112001", "s3cret", now=now)  # the timestamp is signed
    # A replay: the right signature, too old (or from the future).
    assert not verify_signature(body, header, "1796112000", "s3cret", now=1796112000.0 + 301)
    assert not verify_signature(body, header, "1796112000", "s3cret", now=1796112000.0 - 301)
    assert verify_signature(body, header, "1796112000", "s3cret", now=now + 1000, max_age_seconds=1300)
    for bad in ("", "-1796112000", "1796112000.5", "١٢", "9" * 40):
        assert not verify_signature(body, header, bad, "s3cret", now=now)


def test_the_master_key_file_is_created_once_and_private(tmp_path: Path) -> None:
    secrets_dir = tmp_path / "secrets"
    first = CallbackSigner.from_settings(None, secrets_dir)
    key_file = secrets_dir / "callback.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    second = CallbackSigner.from_settings(None, secrets_dir)
    assert first.secret_for(TENANT, KEY) == second.secret_for(TENANT, KEY)
    assert [p.name for p in secrets_dir.iterdir()] == ["callback.key"]
    configured = CallbackSigner.from_settings("x" * 40, secrets_dir)
    assert configured.secret_for(TENANT, KEY) != first.secret_for(TENANT, KEY)


# --- delivery -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path_factory.mktemp('callbacks') / 'jobs.db'}")
    migrate.upgrade(db)
    yield db
    db.dispose()


class Recorder:
    """An httpx transport answering from a script and keeping every request."""

    def __init__(self, *answers: int) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        status = self.answers.pop(0) if self.answers else 200
        headers = {"Location": "http://169.254.169.254/"} if 300 <= status < 400 else {}
        return httpx.Response(status, headers=headers)


def ended_job(database: Database, url: str, status: str = "completed", tenant: uuid.UUID = TENANT) -> str:
    store = JobStore(database)
    with database.session() as session:
        job_id = store.add(session, NewJob("test.cb", tenant, KEY, {}, 5, url), 3)
    assert store.claim(job_id, "w", 60, ["test.cb"]) is not None
    if status == "completed":
        store.complete(job_id, "w", {"verdict": "real"})
    else:
        store.fail(job_id, "w", "VIDEO_TRUNCATED", "The video data is truncated or corrupt")
    return job_id


def sender(database: Database, recorder: Recorder, **settings: object) -> CallbackSender:
    options: dict[str, object] = {"callback_backoff_seconds": 0.0, "callback_attempts": 3, **settings}
    return CallbackSender(
        JobStore(database),
        CallbackSigner(b"k" * 32),
        JobSettings.model_validate(options),
        httpx.MockTransport(recorder),
    )


def test_delivery_connects_to_the_checked_address_and_signs(database: Database) -> None:
    recorder = Recorder(200)
    job = ended_job(database, "https://93.184.215.14:8443/hooks/jobs?tenant=7")
    assert sender(database, recorder).deliver(job) is True
    [request] = recorder.requests
    assert str(request.url) == "https://93.184.215.14:8443/hooks/jobs?tenant=7"
    assert request.headers["host"] == "93.184.215.14:8443"
    assert request.extensions["sni_hostname"] == "93.184.215.14"
    secret = CallbackSigner(b"k" * 32).secret_for(TENANT, KEY)
    headers = request.headers
    assert verify_signature(
        request.content, headers["x-facesocial-signature"], headers["x-facesocial-timestamp"], secret
    )
    assert request.headers["x-facesocial-job-id"] == job
    body = json.loads(request.content)
    assert body["status"] == "completed" and body["result"] == {"verdict": "real"} and "error" not in body
    view = JobStore(database).view(job, TENANT)
    assert view.callback_delivered_at is not None and view.callback_attempts == 1


def test_a_failed_job_reports_its_error(database: Database) -> None:
    recorder = Recorder(204)
    job = ended_job(database, "http://93.184.215.14/hook", status="failed")
    assert sender(database, recorder).deliver(job) is True
    body = json.loads(recorder.requests[0].content)
    assert body["status"] == "failed" and "result" not in body
    assert body["error"] == {"code": "VIDEO_TRUNCATED", "message": "The video data is truncated or corrupt"}


def test_failures_back_off_then_give_up(database: Database) -> None:
    recorder = Recorder(500, 302, 503)
    job = ended_job(database, "http://93.184.215.14/hook")
    deliverer = sender(database, recorder, callback_backoff_seconds=30.0)
    store = JobStore(database)
    assert deliverer.deliver(job) is False
    assert deliverer.deliver(job) is None  # not due: it waits its back-off
    for expected_wait in (30, 60):
        with database.session() as session:
            next_at = session.get_one(Job, _pk(database, job)).callback_next_at
        assert next_at is not None
        assert expected_wait - 5 < (next_at - utcnow()).total_seconds() <= expected_wait
        _make_due(database, job)
        assert deliverer.deliver(job) is False
    view = store.view(job, TENANT)
    assert view.callback_attempts == 3 and view.callback_delivered_at is None
    assert job not in store.due_callbacks(now=utcnow() + timedelta(days=1))  # given up
    assert len(recorder.requests) == 3  # the redirect was not followed
    with database.session() as session:
        assert session.get_one(Job, _pk(database, job)).callback_error == "HTTP 503"


def test_the_address_is_checked_again_at_delivery(database: Database) -> None:
    """A name that resolved to a public address at submission may point inward by now."""
    recorder = Recorder(200)
    job = ended_job(database, "http://localhost:8080/hook")  # as if re-pointed after the check
    assert sender(database, recorder).deliver(job) is False
    assert recorder.requests == []
    with database.session() as session:
        assert "loopback" in str(session.get_one(Job, _pk(database, job)).callback_error)


@dataclass
class Trickler:
    """A receiver that answers one byte every ``interval`` seconds, up to ``cap`` bytes."""

    url: str
    interval: float = 0.1
    cap: int = 200
    connections: list[socket.socket] = field(default_factory=list)
    most_live: int = 0  # the most connections the client held open at once
    sent: list[int] = field(default_factory=list)  # bytes sent, per connection
    cut_off: list[bool] = field(default_factory=list)  # did the client close before the cap?
    lock: threading.Lock = field(default_factory=threading.Lock)

    def live(self) -> int:
        """Connections the client has not closed (a closed one reads as end of file at once)."""
        with self.lock:
            return sum(1 for connection in self.connections if not _closed_by_peer(connection))

    def accepted(self, connection: socket.socket) -> None:
        with self.lock:
            self.connections.append(connection)
        self.most_live = max(self.most_live, self.live())
        threading.Thread(target=self.answer, args=(connection,), daemon=True).start()

    def answer(self, connection: socket.socket) -> None:
        sent, cut_off = 0, False
        try:
            _read_request(connection)
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: ".ljust(self.cap, b"a"):
                time.sleep(self.interval)
                connection.sendall(bytes([byte]))
                sent += 1
        except OSError:
            cut_off = True
        finally:
            with self.lock:
                self.connections.remove(connection)
                connection.close()
                self.sent.append(sent)
                self.cut_off.append(cut_off)


def _read_request(connection: socket.socket) -> None:
    """Read the whole request (headers, then Content-Length bytes), so what is left is end of file."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += connection.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.lower().split(b"\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in lines if line.startswith(b"content-length:"))
    while len(body) < length:
        body += connection.recv(65536)


def _closed_by_peer(connection: socket.socket) -> bool:
    try:
        return connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False  # open, nothing to read
    except OSError:
        return True  # reset


@contextmanager
def trickler() -> Iterator[Trickler]:
    listener = socket.create_server(("127.0.0.1", 0))
    receiver = Trickler(f"http://127.0.0.1:{listener.getsockname()[1]}/slow")

    def accept() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return  # closed: the test is over
            receiver.accepted(connection)

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield receiver
    finally:
        listener.close()


@contextmanager
def prompt_receiver(watching: Trickler) -> Iterator[tuple[str, threading.Event, list[int]]]:
    """Answers 204 at once; notes how many trickling connections were open when it was called."""
    called = threading.Event()
    slow_open: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            slow_open.append(watching.live())
            self.send_response(204)
            self.end_headers()
            called.set()

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/fast", called, slow_open
    finally:
        server.shutdown()
        server.server_close()


def test_a_trickling_receiver_is_cut_off_and_does_not_hold_up_other_tenants(database: Database) -> None:
    """httpx's read timeout (1 s) never trips on a byte every 0.1 s: the total deadline does.

    The slow tenant has as many callbacks as there are delivery threads; they go one at a time
    (the others stay due), so another tenant's callback is delivered while the first still trickles.
    """
    slow_tenant, other_tenant = uuid.uuid4(), uuid.uuid4()
    settings = JobSettings(
        callback_timeout_seconds=1.0,
        callback_allow_private=True,
        callback_attempts=1,
        callback_backoff_seconds=0,
    )
    store = JobStore(database)
    deliverer = CallbackSender(store, CallbackSigner(b"k" * 32), settings)
    with trickler() as slow, prompt_receiver(slow) as (fast_url, fast_called, slow_open):
        slow_jobs = [ended_job(database, slow.url, tenant=slow_tenant) for _ in range(DELIVERY_THREADS)]
        fast_job = ended_job(database, fast_url, tenant=other_tenant)
        try:
            for job in [*slow_jobs, fast_job]:
                deliverer.schedule(job)
            assert fast_called.wait(30)
            guard = time.monotonic() + 60  # against a hang, not a measurement
            while len(slow.sent) < len(slow_jobs) or any(
                store.view(job, slow_tenant).callback_attempts == 0 for job in slow_jobs
            ):
                assert time.monotonic() < guard, "the slow callbacks were never given up"
                time.sleep(0.05)
        finally:
            deliverer.close()
    assert slow_open == [1]  # the other tenant got through while the slow one was trickling
    fast = store.view(fast_job, other_tenant)
    assert fast.callback_delivered_at is not None and fast.callback_attempts == 1
    assert slow.most_live == 1  # one delivery of the slow tenant at a time
    assert len(slow.sent) == DELIVERY_THREADS  # each slow callback tried once
    assert all(slow.cut_off) and max(slow.sent) < slow.cap // 2  # the client hung up (~10 bytes in)
    for job in slow_jobs:
        view = store.view(job, slow_tenant)
        assert view.callback_delivered_at is None and view.callback_attempts == 1
        with database.session(readonly=True) as session:
            error = session.get_one(Job, _pk(database, job)).callback_error
        assert error == "no answer from 127.0.0.1 within 1 s"


def _pk(database: Database, job_id: str) -> uuid.UUID:
    with database.session(readonly=True) as session:
        return session.scalars(select(Job.id).where(Job.job_id == job_id)).one()


def _make_due(database: Database, job_id: str) -> None:
    with database.session() as session:
        session.execute(
            update(Job).where(Job.job_id == job_id).values(callback_next_at=utcnow() - timedelta(seconds=1))
        )
