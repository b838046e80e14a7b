"""Completion callbacks: a signed JSON POST to the job's ``callback_url`` once it ends.

The body is ``{"job_id", "kind", "status", "completed_at", "result"? (completed), "error"?
({"code", "message"})}`` and the request carries

* ``X-FaceSocial-Timestamp``: Unix seconds when this attempt was sent;
* ``X-FaceSocial-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>``, keyed
  with the caller's callback secret (``GET /api/v1/jobs/callback-secret``, its UTF-8 bytes): the
  timestamp is signed so a receiver can refuse a replayed request (:func:`verify_signature`);
* ``X-FaceSocial-Job-Id``.

Each API key has its own secret, ``hex(HMAC-SHA256(master, "callback:" + api_key_id))`` (the
tenant id for JWT callers), so one client never learns another's. The master secret is
``jobs.callback_secret`` or a key file created once in ``data_dir/secrets/callback.key``.

Delivery state lives in the job row (``callback_attempts``, ``callback_next_at``,
``callback_delivered_at``, ``callback_error``): a 2xx answer is delivered; anything else (a
redirect too: none is followed) is due again ``callback_backoff_seconds`` × 2^(n-1) later, at
most ``callback_attempts`` times, and is retried by the first sweep after that (every
``sweep_seconds``) in whichever process runs it, so a restart goes on where the last one stopped.
Each attempt has a total deadline of ``callback_timeout_seconds``, and one tenant (one host) never
holds every delivery thread (:class:`CallbackSender`).

SSRF: :func:`validate_callback_url` refuses loopback, private, link-local, reserved and
multicast addresses unless ``jobs.callback_allow_private``; delivery resolves the host again,
checks every address again (DNS rebinding) and connects to the address it checked (TLS still
verifies the certificate against the URL's host name).
"""

from __future__ import annotations

import contextlib
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
# How far from now a receiver accepts a callback's timestamp (verify_signature): each attempt is
# stamped and signed when it is sent, so 5 minutes covers clock skew, not retries.
REPLAY_WINDOW_SECONDS = 300.0
# Background delivery threads per process; one tenant gets at most one of them at a time and one
# host name at most all but one (a slow receiver holds a thread up to callback_timeout_seconds).
DELIVERY_THREADS = 4
_PER_TENANT = 1
_PER_HOST = DELIVERY_THREADS - 1
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
    """Why a callback must not go to ``address`` (e.g. ``"loopback"``), or None if it is public.

    An IPv6 address that carries an IPv4 one — ``::ffff:a.b.c.d`` (mapped), ``2002:AABB:CCDD::/48``
    (6to4) and Teredo (``2001::/32``, its server and client) — is refused when the IPv4 address
    inside is: Python calls ``2002:7f00:1::`` global, yet a 6to4 relay delivers it to 127.0.0.1.
    (The NAT64 prefix ``64:ff9b::/96`` lies in ``::/8`` and is refused as reserved.)
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone ("%eth0") is not an address
    candidates: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            candidates = [ip.ipv4_mapped]  # ::ffff:127.0.0.1 is 127.0.0.1
        if ip.sixtofour is not None:
            candidates.append(ip.sixtofour)
        if ip.teredo is not None:
            candidates.extend(ip.teredo)  # (server, client)
    return next((reason for reason in map(_refused_ip, candidates) if reason is not None), None)


def _refused_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
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
    def sign(body: bytes, secret: str, timestamp: str) -> str:
        """The ``X-FaceSocial-Signature`` value: ``sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>``.

        ``timestamp`` is the ``X-FaceSocial-Timestamp`` value (decimal Unix seconds) sent with it:
        signing it lets a receiver refuse an old request replayed with its old signature.
        """
        message = timestamp.encode() + b"." + body
        return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify_signature(
    body: bytes,
    signature: str,
    timestamp: str,
    secret: str,
    *,
    max_age_seconds: float = REPLAY_WINDOW_SECONDS,
    now: float | None = None,
) -> bool:
    """What a receiver does: the timestamp is recent and the HMAC over ``timestamp.body`` matches.

    ``body`` is the raw request body, ``signature`` and ``timestamp`` the two headers' values;
    ``max_age_seconds`` how far (either way: clocks differ) the timestamp may be from ``now``
    (Unix seconds, default the clock). Compares in constant time. Never raises.
    """
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > max_age_seconds:
        return False
    return hmac.compare_digest(CallbackSigner.sign(body, secret, timestamp), signature)


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

    Each attempt has a total deadline of ``callback_timeout_seconds`` (connect, send, the answer's
    status line and headers; the answer's body is never read). Fairness: in this process at most
    one delivery per tenant and ``DELIVERY_THREADS - 1`` per host name are in flight; a job
    beyond that is not taken (it stays due) and is tried when its tenant's (host's) delivery
    ends, or at the next sweep.

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
        self._queued: set[str] = set()  # in the queue, not yet started (a sweep does not add them twice)
        self._in_flight: dict[_Slot, int] = {}
        self._deferred: dict[_Slot, dict[str, None]] = {}  # jobs waiting for a slot, oldest first
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
            if self._closed or job_id in self._queued:
                return
            if not self._threads:
                for number in range(DELIVERY_THREADS):
                    thread = threading.Thread(target=self._serve, name=f"job-callbacks-{number}", daemon=True)
                    thread.start()
                    self._threads.append(thread)
            self._queued.add(job_id)
        self._queue.put(job_id)

    def _serve(self) -> None:
        while True:
            job_id = self._queue.get()
            if job_id is None:
                return
            with self._lock:
                self._queued.discard(job_id)
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
        """Attempt every due callback now, one after another; returns how many were attempted."""
        attempted = 0
        for job_id in self.store.due_callbacks():
            if self.deliver(job_id) is not None:
                attempted += 1
        return attempted

    def deliver(self, job_id: str) -> bool | None:
        """One delivery attempt if one is due: True delivered, False failed, None nothing due or
        deferred (its tenant, or host, has its deliveries in flight here: it stays due)."""
        # Whose it is, without taking the attempt: a hold of 0 s leaves the job due (next_at = now).
        peeked = self.store.take_callback(job_id, hold_seconds=0.0)
        if peeked is None:
            return None
        slots = _slots(peeked)
        if not self._occupy(job_id, slots):
            log.info("callback of %s deferred: its tenant or host has a delivery in flight", job_id)
            return None
        try:
            return self._attempt(job_id)
        finally:
            self._release(slots)

    def _attempt(self, job_id: str) -> bool | None:
        timeout = self._settings.callback_timeout_seconds
        # Held longer than the deadline (plus DNS): no other deliverer takes it meanwhile.
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

    def _occupy(self, job_id: str, slots: tuple[_Slot, ...]) -> bool:
        with self._lock:
            full = next((slot for slot in slots if self._in_flight.get(slot, 0) >= _capacity(slot)), None)
            if full is not None:
                self._deferred.setdefault(full, {})[job_id] = None
                return False
            for slot in slots:
                self._in_flight[slot] = self._in_flight.get(slot, 0) + 1
                self._deferred.get(slot, {}).pop(job_id, None)
            return True

    def _release(self, slots: tuple[_Slot, ...]) -> None:
        """Free the slots; the oldest job deferred on each goes back to the queue (background mode)."""
        ready: list[str] = []
        with self._lock:
            for slot in slots:
                left = self._in_flight[slot] - 1
                if left:
                    self._in_flight[slot] = left
                else:
                    del self._in_flight[slot]
                waiting = self._deferred.get(slot)
                if waiting:
                    ready.append(next(iter(waiting)))
                    del waiting[ready[-1]]
                if waiting is not None and not waiting:
                    del self._deferred[slot]
            background = bool(self._threads) and not self._closed
        for job_id in ready if background else ():
            self.schedule(job_id)

    def _post(self, due: CallbackDue) -> str | None:
        """POST the signed body; None when answered 2xx, else why not (short, for the job row)."""
        body = callback_body(due)
        try:
            parts = _parse(due.url)
            addresses = _resolve(parts) if self._settings.callback_allow_private else _public_addresses(parts)
        except errors.InvalidCallbackUrlError as exc:
            return exc.message
        secret = self.signer.secret_for(due.tenant_id, due.api_key_id)
        timestamp = str(int(time.time()))
        headers = {
            "Host": parts.netloc,
            "Content-Type": "application/json",
            "User-Agent": f"FaceSocial-Callback/{__version__}",
            SIGNATURE_HEADER: CallbackSigner.sign(body, secret, timestamp),
            TIMESTAMP_HEADER: timestamp,
            JOB_ID_HEADER: due.job_id,
        }
        address = addresses[0]
        netloc = f"[{address}]" if ":" in address else address
        # Connect to the address that was checked, not to whatever the name resolves to next.
        target = urlunsplit((parts.scheme, f"{netloc}:{_port(parts)}", parts.path or "/", parts.query, ""))
        timeout = self._settings.callback_timeout_seconds
        with _Deadline(timeout) as deadline:
            extensions: dict[str, Any] = {"trace": deadline.trace}
            if parts.scheme.lower() == "https":
                extensions["sni_hostname"] = parts.hostname
            try:
                # Streamed, and the body never read: only the status line and headers are awaited.
                with self._http().stream(
                    "POST", target, content=body, headers=headers, extensions=extensions
                ) as response:
                    status = response.status_code
            except httpx.HTTPError as exc:
                if deadline.expired:
                    return f"no answer from {parts.hostname} within {timeout:g} s"
                return f"{type(exc).__name__} talking to {parts.hostname}"
        if 200 <= status < 300:
            return None
        if 300 <= status < 400:
            return f"HTTP {status}: redirects are not followed"
        return f"HTTP {status}"

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(
                    # Per phase and per read; the total is _Deadline's.
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
            self._queued.clear()
            self._deferred.clear()
        for _ in threads:
            self._queue.put(None)
        if client is not None:
            client.close()


# A fairness slot: ("tenant", tenant id) or ("host", lower-case host name).
_Slot = tuple[str, str]


def _slots(due: CallbackDue) -> tuple[_Slot, ...]:
    host = (urlsplit(due.url).hostname or "").lower()
    return (("tenant", str(due.tenant_id)), ("host", host))


def _capacity(slot: _Slot) -> int:
    return _PER_TENANT if slot[0] == "tenant" else _PER_HOST


class _Deadline:
    """Ends one HTTP exchange ``seconds`` after it began, whatever phase it is in.

    httpx's timeouts apply to each connect, write and read: a receiver that sends one byte a
    second never trips them. httpcore's ``trace`` extension hands over the connection's socket
    once connected; a timer shuts it down at the deadline, which makes the blocked read or write
    fail at once (the request then raises an httpx error and :attr:`expired` is True). The socket
    is kept as a duplicate descriptor: TLS takes the original over, the connection is the same.
    With MockTransport (tests) there is no socket and the deadline does nothing.
    """

    def __init__(self, seconds: float) -> None:
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._expired = False
        self._ended = False
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._timer.cancel()
        with self._lock:
            self._ended = True
            if self._socket is not None:
                self._socket.close()
                self._socket = None

    @property
    def expired(self) -> bool:
        with self._lock:
            return self._expired

    def trace(self, event: str, info: Mapping[str, Any]) -> None:
        """httpcore's trace hook: keep the socket of the connection just opened."""
        if event != "connection.connect_tcp.complete":
            return
        stream = info.get("return_value")
        raw = stream.get_extra_info("socket") if stream is not None else None
        if not isinstance(raw, socket.socket):
            return
        with self._lock:
            if self._ended:
                return
            if self._socket is not None:  # one connection per exchange (no pooling, no redirects)
                self._socket.close()
            self._socket = raw.dup()
            if self._expired:  # connected just after the deadline
                _shut(self._socket)

    def _expire(self) -> None:
        with self._lock:  # under the lock: __exit__ cannot close the socket meanwhile
            self._expired = True
            if self._socket is not None and not self._ended:
                _shut(self._socket)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed by the peer
        sock.shutdown(socket.SHUT_RDWR)
