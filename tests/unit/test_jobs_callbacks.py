"""Callback URLs (SSRF rules), per-key secrets and signatures, delivery with retries.

Delivery here goes through httpx's MockTransport, which records the requests the sender makes
(where it connects, which headers): the real receiver over a socket is in the contract test
(tests/integration/test_jobs_contract.py).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import stat
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update

from facesocial import errors
from facesocial.jobs.callbacks import (
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


def test_signature_is_the_hmac_of_the_exact_body() -> None:
    body = b'{"job_id":"job_1","status":"completed"}'
    header = CallbackSigner.sign(body, "s3cret")
    assert header == "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert verify_signature(body, header, "s3cret")
    assert not verify_signature(body + b" ", header, "s3cret")
    assert not verify_signature(body, header, "other")


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


def ended_job(database: Database, url: str, status: str = "completed") -> str:
    store = JobStore(database)
    with database.session() as session:
        job_id = store.add(session, NewJob("test.cb", TENANT, KEY, {}, 5, url), 3)
    assert store.claim(job_id, "w", 60, ["test.cb"]) is not None
    if status == "completed":
        store.complete(job_id, "w", {"verdict": "real"})
    else:
        store.fail(job_id, "w", "VIDEO_TRUNCATED", "The video data is truncated or corrupt")
    return job_id


def sender(database: Database, recorder: Recorder, **settings: object) -> CallbackSender:
    options: dict[str, object] = {"callback_backoff_seconds": 0.0, "callback_attempts": 3, **settings}
    return CallbackSender(
        JobStore(database), CallbackSigner(b"k" * 32), JobSettings(**options), httpx.MockTransport(recorder)
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
    assert verify_signature(request.content, request.headers["x-facesocial-signature"], secret)
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


def _pk(database: Database, job_id: str) -> uuid.UUID:
    with database.session(readonly=True) as session:
        return session.scalars(select(Job.id).where(Job.job_id == job_id)).one()


def _make_due(database: Database, job_id: str) -> None:
    with database.session() as session:
        session.execute(
            update(Job).where(Job.job_id == job_id).values(callback_next_at=utcnow() - timedelta(seconds=1))
        )
