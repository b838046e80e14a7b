"""Completion callbacks: a signed JSON POST to the job's ``callback_url`` once it ends.

The body is ``{"job_id", "kind", "status", "completed_at", "result"? (completed), "error"?
({"code", "message"})}`` and the request carries

* ``X-FaceSocial-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes>``, keyed with the
  caller's callback secret (``GET /api/v1/jobs/callback-secret``, its UTF-8 bytes);
* ``X-FaceSocial-Timestamp`` (Unix seconds of this attempt) and ``X-FaceSocial-Job-Id``.

Each API key has its own secret, ``hex(HMAC-SHA256(master, "callback:" + api_key_id))`` (the
tenant id for JWT callers), so one client never learns another's. The master secret is
``jobs.callback_secret`` or a key file created once in ``data_dir/secrets/callback.key``.

Delivery state lives in the job row (``callback_attempts``, ``callback_next_at``,
``callback_delivered_at``, ``callback_error``): a 2xx answer is delivered; anything else (a
redirect too: none is followed) is retried after ``callback_backoff_seconds`` × 2^(n-1), at most
``callback_attempts`` times, by whichever process runs the sweep next, so a restart goes on where
the last process stopped.

SSRF: :func:`validate_callback_url` refuses loopback, private, link-local, reserved and
multicast addresses unless ``jobs.callback_allow_private``; delivery resolves the host again,
checks every address again (DNS rebinding) and connects to the address it checked (TLS still
verifies the certificate against the URL's host name).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import os
import queue
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

import httpx

from facesocial import __version__, errors
from facesocial.jobs.store import MAX_CALLBACK_URL, CallbackDue, JobStore
from facesocial.settings import JobSettings, Settings
from facesocial.store.db import Database
from facesocial.store.types import utcnow

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-FaceSocial-Signature"
TIMESTAMP_HEADER = "X-FaceSocial-Timestamp"
JOB_ID_HEADER = "X-FaceSocial-Job-Id"
SECRET_FILE = "callback.key"
_DEFAULT_PORTS = {"http": 80, "https": 443}


# --- the URL a client may give -----------------------------------------------------------------


def validate_callback_url(url: str, allow_private: bool) -> str:
    """``url`` if it is an acceptable callback target, else InvalidCallbackUrlError (422).

    Accepted: ``http``/``https``, a host, no ``user:password@``, at most 2048 characters, no
    spaces or control characters. Unless ``allow_private``, the host must resolve and every
    address it resolves to must be public (not loopback, private, link-local, reserved,
    multicast, unspecified or shared address space). Blocks on DNS: call it off the event loop.
    """
    parts = _parse(url)
    if not allow_private:
        _public_addresses(parts)
    return url


def _parse(url: str) -> SplitResult:
    if not isinstance(url, str) or not url:
        raise errors.InvalidCallbackUrlError("callback_url is empty")
    if len(url) > MAX_CALLBACK_URL:
        raise errors.InvalidCallbackUrlError(f"callback_url is longer than {MAX_CALLBACK_URL} characters")
    if any(ord(char) <= 0x20 or ord(char) == 0x7F for char in url):
        raise errors.InvalidCallbackUrlError("callback_url contains spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise errors.InvalidCallbackUrlError("callback_url is not a valid URL") from exc
    if parts.scheme.lower() not in _DEFAULT_PORTS:
        raise errors.InvalidCallbackUrlError("callback_url must be an http:// or https:// URL")
    if not parts.hostname:
        raise errors.InvalidCallbackUrlError("callback_url has no host")
    if parts.username is not None or parts.password is not None:
        raise errors.InvalidCallbackUrlError("callback_url must not carry credentials (user:password@)")
    if port == 0:
        raise errors.InvalidCallbackUrlError("callback_url has port 0")
    return parts


def _port(parts: SplitResult) -> int:
    return parts.port or _DEFAULT_PORTS[parts.scheme.lower()]


def _resolve(parts: SplitResult) -> list[str]:
    host = str(parts.hostname)
    try:
        found = socket.getaddrinfo(host, _port(parts), type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise errors.InvalidCallbackUrlError(f"callback_url's host {host!r} does not resolve") from exc
    addresses: list[str] = []
    for _family, _type, _proto, _name, sockaddr in found:
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise errors.InvalidCallbackUrlError(f"callback_url's host {host!r} does not resolve")
    return addresses


def _public_addresses(parts: SplitResult) -> list[str]:
    """The host's addresses, if every one of them is public (one private one refuses them all)."""
    addresses = _resolve(parts)
    for address in addresses:
        reason = refused_address(address)
        if reason is not None:
            raise errors.InvalidCallbackUrlError(
                f"callback_url's host {parts.hostname!r} resolves to a {reason} address ({address})"
            )
    return addresses


def refused_address(address: str) -> str | None:
    """Why a callback must not go to ``address`` (e.g. ``"loopback"``), or None if it is public."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone ("%eth0") is not an address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    checks = (
        ("loopback", ip.is_loopback),
        ("unspecified", ip.is_unspecified),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private),
        ("non-public", not ip.is_global),  # e.g. 100.64.0.0/10 (carrier-grade NAT)
    )
    return next((name for name, hit in checks if hit), None)


# --- signing ------------------------------------------------------------------------------------


class CallbackSigner:
    """Derives each caller's callback secret from one master secret and signs bodies with it."""

    def __init__(self, master: bytes) -> None:
        if len(master) < 16:
            raise ValueError("the callback master secret must be at least 16 bytes")
        self._master = master

    @classmethod
    def from_settings(cls, secret: str | None, secrets_dir: Path) -> CallbackSigner:
        """``secret`` when set, else the key file ``secrets_dir/callback.key`` (created once, 0600)."""
        if secret:
            return cls(secret.encode())
        path = secrets_dir / SECRET_FILE
        if not path.exists():
            secrets_dir.mkdir(parents=True, exist_ok=True)
            # Written aside, then linked into place: a process starting at the same moment reads
            # either no file or the whole key, never a half-written one.
            temporary = secrets_dir / f".{SECRET_FILE}.{uuid.uuid4().hex}"
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_hex(32))
            try:
                os.link(temporary, path)
                log.warning(
                    "created %s to sign job callbacks; workers on other hosts need the same key "
                    "(or set FACESOCIAL_JOBS__CALLBACK_SECRET)",
                    path,
                )
            except FileExistsError:
                pass  # another process created it first: use theirs
            finally:
                temporary.unlink(missing_ok=True)
        return cls(path.read_text().strip().encode())

    def secret_for(self, tenant_id: uuid.UUID, api_key_id: uuid.UUID | None) -> str:
        """The caller's secret: 64 hex characters; HMAC keys use its UTF-8 bytes."""
        subject = str(api_key_id) if api_key_id is not None else str(tenant_id)
        return hmac.new(self._master, f"callback:{subject}".encode(), hashlib.sha256).hexdigest()

    @staticmethod
    def sign(body: bytes, secret: str) -> str:
        """The ``X-FaceSocial-Signature`` value: ``sha256=<hex HMAC-SHA256(secret, body)>``."""
        return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(body: bytes, header: str, secret: str) -> bool:
    """What a receiver does: recompute the HMAC over the raw body, compare in constant time."""
    return hmac.compare_digest(CallbackSigner.sign(body, secret), header)


def callback_body(due: CallbackDue) -> bytes:
    """The exact bytes POSTed (and signed) for this job's end."""
    body: dict[str, Any] = {
        "job_id": due.job_id,
        "kind": due.kind,
        "status": due.status,
        "completed_at": due.completed_at.isoformat() if due.completed_at else None,
    }
    if due.status == "completed":
        body["result"] = dict(due.result) if isinstance(due.result, Mapping) else due.result
    if due.error_code is not None:
        body["error"] = {"code": due.error_code, "message": due.error_message}
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


# --- delivery -----------------------------------------------------------------------------------


class CallbackSender:
    """Delivers due callbacks: at once in the background after a job ends, and on every sweep.

    ``transport`` replaces httpx's network transport (tests); production leaves it None.
    """

    def __init__(
        self,
        store: JobStore,
        signer: CallbackSigner,
        settings: JobSettings,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.store = store
        self.signer = signer
        self._settings = settings
        self._transport = transport
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._closed = False

    @classmethod
    def from_settings(cls, database: Database, settings: Settings) -> CallbackSender:
        """The sender of the composition root: the master secret from settings or its key file."""
        secret = settings.jobs.callback_secret
        signer = CallbackSigner.from_settings(
            secret.get_secret_value() if secret else None, settings.data_dir / "secrets"
        )
        return cls(JobStore(database), signer, settings.jobs)

    def secret_for(self, tenant_id: uuid.UUID, api_key_id: uuid.UUID | None) -> str:
        return self.signer.secret_for(tenant_id, api_key_id)

    def schedule(self, job_id: str) -> None:
        """Try the job's callback soon on a background thread (the sweep retries if this process dies)."""
        with self._lock:
            if self._closed:
                return
            if not self._threads:
                for number in range(2):
                    thread = threading.Thread(target=self._serve, name=f"job-callbacks-{number}", daemon=True)
                    thread.start()
                    self._threads.append(thread)
        self._queue.put(job_id)

    def _serve(self) -> None:
        while True:
            job_id = self._queue.get()
            if job_id is None:
                return
            try:
                self.deliver(job_id)
            except Exception:  # a store outage: the sweep tries again later
                log.exception("callback of %s not attempted", job_id)

    def schedule_due(self) -> int:
        """Hand every due callback to the background threads; returns how many."""
        due = self.store.due_callbacks()
        for job_id in due:
            self.schedule(job_id)
        return len(due)

    def deliver_due(self) -> int:
        """Attempt every due callback now (the sweep calls this); returns how many were attempted."""
        attempted = 0
        for job_id in self.store.due_callbacks():
            if self.deliver(job_id) is not None:
                attempted += 1
        return attempted

    def deliver(self, job_id: str) -> bool | None:
        """One delivery attempt if one is due: True delivered, False failed, None nothing due."""
        timeout = self._settings.callback_timeout_seconds
        due = self.store.take_callback(job_id, hold_seconds=3 * timeout + 5)
        if due is None:
            return None
        error = self._post(due)
        if error is None:
            self.store.record_callback(job_id, delivered=True, error=None, next_at=None)
            log.info("callback of %s delivered (attempt %d)", job_id, due.attempt)
            return True
        next_at: datetime | None = None
        if due.attempt < self._settings.callback_attempts:
            delay = self._settings.callback_backoff_seconds * 2 ** (due.attempt - 1)
            next_at = utcnow() + timedelta(seconds=delay)
        self.store.record_callback(job_id, delivered=False, error=error[:500], next_at=next_at)
        log.warning(
            "callback of %s failed (attempt %d of %d): %s",
            job_id,
            due.attempt,
            self._settings.callback_attempts,
            error,
        )
        return False

    def _post(self, due: CallbackDue) -> str | None:
        """POST the signed body; None when answered 2xx, else why not (short, for the job row)."""
        body = callback_body(due)
        try:
            parts = _parse(due.url)
            addresses = _resolve(parts) if self._settings.callback_allow_private else _public_addresses(parts)
        except errors.InvalidCallbackUrlError as exc:
            return exc.message
        secret = self.signer.secret_for(due.tenant_id, due.api_key_id)
        headers = {
            "Host": parts.netloc,
            "Content-Type": "application/json",
            "User-Agent": f"FaceSocial-Callback/{__version__}",
            SIGNATURE_HEADER: CallbackSigner.sign(body, secret),
            TIMESTAMP_HEADER: str(int(time.time())),
            JOB_ID_HEADER: due.job_id,
        }
        address = addresses[0]
        netloc = f"[{address}]" if ":" in address else address
        # Connect to the address that was checked, not to whatever the name resolves to next.
        target = urlunsplit((parts.scheme, f"{netloc}:{_port(parts)}", parts.path or "/", parts.query, ""))
        extensions = {"sni_hostname": parts.hostname} if parts.scheme.lower() == "https" else {}
        try:
            response = self._http().post(target, content=body, headers=headers, extensions=extensions)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__} talking to {parts.hostname}"
        if 200 <= response.status_code < 300:
            return None
        if 300 <= response.status_code < 400:
            return f"HTTP {response.status_code}: redirects are not followed"
        return f"HTTP {response.status_code}"

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(
                    timeout=httpx.Timeout(self._settings.callback_timeout_seconds),
                    follow_redirects=False,
                    transport=self._transport,
                    trust_env=False,  # never through an environment-configured proxy
                    # Connections are per address, not per host name: one kept open for one host
                    # must not carry a request for another host on the same address (its TLS
                    # certificate was checked for the first). Callbacks are rare: no pooling.
                    limits=httpx.Limits(max_keepalive_connections=0),
                )
            return self._client

    def close(self) -> None:
        """Stop the background threads (queued attempts stay due for the sweep) and the client."""
        with self._lock:
            self._closed = True
            threads, self._threads = self._threads, []
            client, self._client = self._client, None
        for _ in threads:
            self._queue.put(None)
        if client is not None:
            client.close()
