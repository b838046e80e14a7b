"""``WS /api/v1/attention/meetings/{meeting_id}/ws`` (live attention) and ``GET .../live``.

Protocol (docs/attention.md "Live (WebSocket)" is the reference):

* Credentials: an ``X-API-Key`` header, an ``api_key`` query parameter (browsers cannot set
  headers on a WebSocket), ``Authorization: Bearer <token>``, or for a browser with an account's
  token the subprotocols ``facesocial.bearer, <token>`` (the server selects ``facesocial.bearer``).
  They are checked here, in the endpoint (the auth middleware sees only HTTP scopes), with the
  middleware's own rules, so failed attempts count against the same per-address limit.
* Refusals happen after the handshake, so that every client (a browser too) sees why: one JSON
  message ``{"type": "error", "code", "message"}``, then a close with code ``4000 + the error's HTTP
  status`` and the error code as the reason: 4401 (missing/invalid credentials), 4404
  MEETING_NOT_FOUND (unknown id or another tenant's), 4409 MEETING_NOT_ACTIVE (scheduled) or
  MEETING_ENDED (also sent when the meeting ends while the socket is open), 4429 TOO_MANY_STREAMS
  or RATE_LIMITED, 4503 (a store is unavailable). 1011: an unexpected server error.
* Messages in: binary = one encoded frame (JPEG, PNG, WebP, ...; at most
  ``attention.max_frame_bytes``); text = a JSON object: ``{"timestamp_ms": t}`` dates the next
  frame (stream time in ms, non-decreasing; frames without it are dated by their arrival, in ms
  since the socket opened: send it for every frame or for none), ``{"type": "ping"}`` → ``{"type":
  "pong"}``, ``{"type": "status"}`` → the socket's counters. Anything else → an ``error`` message;
  the socket stays open.
* Messages out: one ``{"type": "frame", "frame_index", "timestamp_ms", "faces", "alerts",
  "dropped"}`` per processed frame (live.py), or ``{"type": "error", "code", "message"}`` for a
  frame that could not be processed. ``dropped``: frames received since the previous answer that
  were never processed (see below).
* Slow clients: the receive loop keeps only the newest frame not yet processed (a queue of one);
  a frame that arrives while another is waiting replaces it, and the replaced one is counted in
  the next answer's ``dropped``. The worker processes one frame at a time in a thread, and a client
  that reads nothing stalls only the worker's writes (socket flow control), never the reading:
  memory stays bounded by one pending frame, one in process and the transport's buffers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import threading
import time
import uuid
from collections import deque
from typing import Any

import anyio
from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from facesocial import errors
from facesocial.api.auth_middleware import Gatekeeper, client_key
from facesocial.api.deps import CallerDep, ContainerDep, rate_limited
from facesocial.api.errors import store_unavailable
from facesocial.api.openapi import error_responses
from facesocial.api.routing import ApiRoute
from facesocial.container import Container
from facesocial.domains.attention import live
from facesocial.services.principal import Principal

log = logging.getLogger(__name__)

router = APIRouter(
    prefix="/api/v1/attention", tags=["attention"], route_class=ApiRoute, redirect_slashes=False
)

# A control message is a small JSON object; anything longer is refused before parsing.
MAX_CONTROL_CHARS = 4096
MAX_TIMESTAMP_MS = 1e12
# Control replies waiting for a client that does not read: the oldest go first.
MAX_PENDING_REPLIES = 16
# How often an open socket checks that its meeting is still active (s): ending a meeting
# stops its live analysis within this time.
STATUS_CHECK_SECONDS = 5.0
CLOSE_SERVER_ERROR = 1011


def close_code(exc: errors.FaceSocialError) -> int:
    """The close code of a refusal: 4000 + the error's HTTP status (4401, 4404, 4409, 4429, 4503)."""
    return 4000 + exc.status


class SocketSlots:
    """Sockets open in this server process, bounded by ``attention.max_sockets``; per meeting by
    ``max_sockets_per_meeting``, counted through the presence keys across processes (two
    processes admitting at the same instant may exceed that bound by one each)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.open = 0

    def acquire(self, stream: live.LiveStream) -> None:
        """Admit ``stream`` and write its presence key. Raises TooManyStreamsError (429)."""
        settings = stream.container.settings.attention
        with self._lock:
            if self.open >= settings.max_sockets:
                raise errors.TooManyStreamsError(
                    f"This server has {self.open} live sockets (limit {settings.max_sockets})",
                    limit=settings.max_sockets,
                )
            count = live.socket_count(stream.container, stream.meeting_id)
            if count >= settings.max_sockets_per_meeting:
                raise errors.TooManyStreamsError(
                    f"The meeting has {count} live sockets (limit {settings.max_sockets_per_meeting})",
                    limit=settings.max_sockets_per_meeting,
                )
            stream.touch()
            self.open += 1

    def release(self) -> None:
        with self._lock:
            self.open -= 1


SLOTS = SocketSlots()


# A browser cannot set headers on a WebSocket: an account's bearer token travels as the
# subprotocol after this one (``new WebSocket(url, ["facesocial.bearer", token])``), the way
# Kubernetes' API server takes its token. The server then selects this name, never the token.
BEARER_SUBPROTOCOL = "facesocial.bearer"


def bearer_subprotocol(websocket: WebSocket) -> str | None:
    """The token offered after :data:`BEARER_SUBPROTOCOL` in ``Sec-WebSocket-Protocol``, or None."""
    offered = [str(name) for name in websocket.scope.get("subprotocols") or []]
    if BEARER_SUBPROTOCOL not in offered:
        return None
    at = offered.index(BEARER_SUBPROTOCOL)
    return offered[at + 1] if at + 1 < len(offered) else ""


def authenticate(container: Container, websocket: WebSocket) -> Principal:
    """The caller of a socket: X-API-Key header, ``api_key`` query parameter, ``Authorization:
    Bearer`` header or the bearer subprotocol, under the auth middleware's rules and
    failed-attempt limit. Raises its 401/429 errors."""
    raw = list(websocket.scope.get("headers", []))
    query_key = websocket.query_params.get("api_key")
    if query_key and "x-api-key" not in websocket.headers:
        raw.append((b"x-api-key", query_key.encode("latin-1", "replace")))
    token = bearer_subprotocol(websocket)
    if token is not None and "authorization" not in websocket.headers:
        raw.append((b"authorization", f"Bearer {token}".encode("latin-1", "replace")))
    return Gatekeeper(container).caller(Headers(raw=raw), client_key(websocket.scope))


async def attention_socket(websocket: WebSocket, meeting_id: str) -> None:
    container: Container = websocket.app.state.container
    # The handshake must select the bearer subprotocol the browser offered, or it drops the socket.
    offered = bearer_subprotocol(websocket) is not None
    await websocket.accept(subprotocol=BEARER_SUBPROTOCOL if offered else None)
    try:
        caller = await run_in_threadpool(authenticate, container, websocket)
        meeting = await run_in_threadpool(container.meetings.get, meeting_id[:64], caller)
        if meeting.status != "active":
            refusal: type[errors.FaceSocialError] = (
                errors.MeetingEndedError if meeting.status == "ended" else errors.MeetingNotActiveError
            )
            raise refusal(f"Meeting {meeting.id} is {meeting.status}, not active", status=meeting.status)
        # In a thread: the first socket of a process loads the face models (seconds).
        stream = await run_in_threadpool(
            live.LiveStream, container, meeting.id, caller, uuid.uuid4().hex, websocket.app.state.decode_gate
        )
        await run_in_threadpool(SLOTS.acquire, stream)
    except Exception as exc:
        await _refuse(websocket, exc)
        return
    try:
        await _Connection(websocket, stream).run()
    finally:
        SLOTS.release()
        with anyio.CancelScope(shield=True):
            try:
                await run_in_threadpool(stream.close)
            except Exception:
                log.exception("closing the live stream of meeting %s", meeting.id)


async def _refuse(websocket: WebSocket, exc: Exception) -> None:
    domain = exc if isinstance(exc, errors.FaceSocialError) else store_unavailable(exc)
    if domain is None:
        log.exception("live socket refused by an unexpected error", exc_info=exc)
        await _close(websocket, CLOSE_SERVER_ERROR, "INTERNAL_ERROR")
        return
    with contextlib.suppress(Exception):
        await websocket.send_json(_error(domain))
    await _close(websocket, close_code(domain), domain.code)


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    if websocket.application_state != WebSocketState.DISCONNECTED:
        with contextlib.suppress(Exception):
            await websocket.close(code=code, reason=reason)


class _Connection:
    """The receive loop (this coroutine) and the worker (a task; frames run in a thread)."""

    def __init__(self, websocket: WebSocket, stream: live.LiveStream) -> None:
        self.ws = websocket
        self.stream = stream
        self.started = time.monotonic()
        self.pending: tuple[bytes, int] | None = None  # the newest frame not yet processed
        self.replies: deque[dict[str, Any]] = deque(maxlen=MAX_PENDING_REPLIES)
        self.wake = asyncio.Event()
        self.stamp: int | None = None
        self.received = 0
        self.processed = 0
        self.dropped = 0  # since the last answer
        self.dropped_total = 0
        self.done = False

    async def run(self) -> None:
        worker = asyncio.create_task(self._work())
        try:
            await self._receive()
        finally:
            self.done = True
            self.wake.set()
            # The worker finishes the frame in hand (its thread cannot be interrupted) and stops.
            with anyio.CancelScope(shield=True):
                await asyncio.gather(worker, return_exceptions=True)

    # --- receive loop ----------------------------------------------------------------------------------
    async def _receive(self) -> None:
        max_bytes = self.stream.container.settings.attention.max_frame_bytes
        while not self.done:
            try:
                message = await self.ws.receive()
            except (WebSocketDisconnect, RuntimeError):
                return
            if message["type"] == "websocket.disconnect":
                return
            text, data = message.get("text"), message.get("bytes")
            if text is not None:
                self._control(text)
            elif data:
                if len(data) > max_bytes:
                    self._reply(_error(errors.ImageTooLargeError(f"A frame exceeds {max_bytes} bytes")))
                    continue
                self.received += 1
                stamp = (
                    self.stamp if self.stamp is not None else int((time.monotonic() - self.started) * 1000)
                )
                self.stamp = None
                if self.pending is not None:
                    self.dropped += 1  # replaced before its turn: the client sends faster than we measure
                    self.dropped_total += 1
                self.pending = (bytes(data), stamp)
            self.wake.set()

    def _control(self, text: str) -> None:
        body = _json_object(text)
        if body is None:
            self._reply(_error(errors.ValidationFailedError("Text messages are JSON objects")))
        elif body.get("type") == "ping":
            self._reply({"type": "pong"})
        elif body.get("type") == "status":
            self._reply(self._status())
        elif set(body) == {"timestamp_ms"}:
            value = _timestamp(body["timestamp_ms"])
            if value is None:
                self._reply(
                    _error(
                        errors.ValidationFailedError(
                            "timestamp_ms must be a finite number of milliseconds, |t| <= 1e12"
                        )
                    )
                )
            else:
                self.stamp = value
        else:
            self._reply(
                _error(
                    errors.ValidationFailedError(
                        'Unknown control message: send {"timestamp_ms": t}, {"type": "ping"} '
                        'or {"type": "status"}'
                    )
                )
            )

    def _reply(self, body: dict[str, Any]) -> None:
        self.replies.append(body)

    def _status(self) -> dict[str, Any]:
        return {
            "type": "status",
            "meeting_id": str(self.stream.meeting_id),
            "socket_id": self.stream.socket_id,
            "frames_received": self.received,
            "frames_processed": self.processed,
            "frames_dropped": self.dropped_total,
            "participants": len(self.stream.participants),
            "open_alerts": len(self.stream.open_alerts),
        }

    # --- worker --------------------------------------------------------------------------------------
    async def _work(self) -> None:
        flush_every = self.stream.container.settings.attention.metrics_flush_seconds
        next_check = time.monotonic() + STATUS_CHECK_SECONDS
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), timeout=flush_every)
                self.wake.clear()
                while self.replies:
                    await self.ws.send_json(self.replies.popleft())
                if self.done:
                    return
                if self.pending is not None:
                    data, stamp = self.pending
                    self.pending = None
                    await self._frame(data, stamp)
                if self.stream.flush_due():
                    await run_in_threadpool(self.stream.flush)
                    if self.stream.meeting_gone:
                        raise _ClosingError(
                            errors.MeetingNotFoundError(f"Meeting {self.stream.meeting_id} was erased")
                        )
                if time.monotonic() >= next_check:
                    next_check = time.monotonic() + STATUS_CHECK_SECONDS
                    await self._check_meeting()
        except _ClosingError as closing:
            await _refuse(self.ws, closing.error)
        except (WebSocketDisconnect, RuntimeError, ConnectionError):
            pass  # the client went away mid-send: the receive loop sees the disconnect too
        except Exception as exc:
            await _refuse(self.ws, exc)
        finally:
            self.done = True

    async def _frame(self, data: bytes, stamp: int) -> None:
        dropped, self.dropped = self.dropped, 0
        try:
            answer = await run_in_threadpool(self.stream.process, data, stamp)
        except (errors.MeetingEndedError, errors.MeetingNotFoundError) as exc:
            raise _ClosingError(exc) from exc
        except errors.FaceSocialError as exc:
            await self.ws.send_json({**_error(exc), "timestamp_ms": stamp, "dropped": dropped})
            return
        self.processed += 1
        answer["dropped"] = dropped
        await self.ws.send_json(answer)

    async def _check_meeting(self) -> None:
        stream = self.stream
        meeting = await run_in_threadpool(stream.container.meetings.get, stream.meeting_id, stream.caller)
        if meeting.status != "active":
            raise _ClosingError(
                errors.MeetingEndedError(f"Meeting {meeting.id} is {meeting.status}", status=meeting.status)
            )


class _ClosingError(Exception):
    """The socket must close with ``error``'s code (the meeting ended or vanished)."""

    def __init__(self, error: errors.FaceSocialError) -> None:
        super().__init__(error.message)
        self.error = error


def _json_object(text: str) -> dict[str, Any] | None:
    if len(text) > MAX_CONTROL_CHARS:
        return None
    try:
        body = json.loads(text)
    except (ValueError, RecursionError):  # bad JSON, a 5000-digit number, deep nesting
        return None
    return body if isinstance(body, dict) else None


def _timestamp(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    if not math.isfinite(number) or abs(number) > MAX_TIMESTAMP_MS:
        return None
    return round(number)


def _error(exc: errors.FaceSocialError) -> dict[str, Any]:
    return {"type": "error", **exc.to_dict()}


router.add_api_websocket_route("/meetings/{meeting_id}/ws", attention_socket, name="attention_ws")


@router.get(
    "/meetings/{meeting_id}/live",
    name="attention_live",
    response_model=None,
    dependencies=[Depends(rate_limited("attention"))],
    responses=error_responses(errors.MeetingNotFoundError, errors.MeetingNotActiveError),
)
def get_live(container: ContainerDep, caller: CallerDep, meeting_id: str) -> dict[str, Any]:
    """The latest scores of each participant of an active meeting (from the live sockets, at most
    ``attention.live_ttl_seconds`` old) and how many sockets stream it."""
    meeting = container.meetings.get(meeting_id[:64], caller)
    if meeting.status != "active":
        raise errors.MeetingNotActiveError(f"Meeting {meeting.id} is {meeting.status}", status=meeting.status)
    return {
        "success": True,
        "meeting_id": str(meeting.id),
        "status": meeting.status,
        "sockets": live.socket_count(container, meeting.id),
        "participants": live.latest_scores(container, meeting.id),
    }
