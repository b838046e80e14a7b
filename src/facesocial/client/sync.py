"""The synchronous client: ``FaceSocialClient`` (httpx.Client underneath).

    from facesocial.client import FaceSocialClient

    with FaceSocialClient("http://127.0.0.1:8000", api_key="fs_...") as fs:
        faces = fs.detect("group.jpg", return_attributes=True).faces
        fs.register(user_id, "alice.jpg", consent=True)
        match = fs.identify(pil_image).candidates

Every method sends one request (``wait_job`` polls) built by ``facesocial.client.calls`` — the
method's parameters and docstring are the builder's — with the retries of ``RetryPolicy``, and
returns a typed result (``facesocial.client.models``) or the decoded JSON. Errors raise
``FaceSocialAPIError`` (``code``, ``message``, ``status``, ``details``).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Concatenate, ParamSpec, TypeVar

import httpx

from facesocial.client import calls
from facesocial.client.calls import Call
from facesocial.client.errors import FaceSocialAPIError, FaceSocialConnectionError
from facesocial.client.jobs import Poller, ProgressCallback
from facesocial.client.models import Job
from facesocial.client.retry import RetryPolicy, parse_retry_after

P = ParamSpec("P")
T = TypeVar("T")
log = logging.getLogger("facesocial.client")
DEFAULT_BASE_URL = "http://127.0.0.1:8000"
USER_AGENT = "facesocial-sdk-python"


def auth_headers(
    api_key: str | None, token: str | None, session_id: str | None, extra: Mapping[str, str] | None
) -> dict[str, str]:
    """``X-API-Key`` or ``Authorization: Bearer`` (not both), ``X-Session-Id`` (keeps a session
    on one experiment arm), and any ``extra`` headers."""
    if api_key and token:
        raise ValueError("give api_key or token, not both")
    headers = {"User-Agent": USER_AGENT, **(extra or {})}
    if api_key:
        headers["X-API-Key"] = api_key
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if session_id:
        headers["X-Session-Id"] = session_id
    return headers


def request_arguments(call: Call[Any]) -> dict[str, Any]:
    """The keyword arguments of ``httpx.Client.request`` for ``call`` (None parts left out, so a
    bodiless POST sends no body)."""
    arguments: dict[str, Any] = {"params": call.params or None}
    if call.files:
        arguments["files"] = call.files
        arguments["data"] = call.data or None
    elif call.json is not None:
        arguments["json"] = call.json
    return arguments


def decode(call: Call[T], response: httpx.Response) -> T:
    """The parsed result of a successful answer (raises ``FaceSocialAPIError`` ``INVALID_RESPONSE``
    when a JSON route answered something else)."""
    if call.binary:
        return call.parse(response.content)
    try:
        body = response.json()
    except ValueError as exc:
        raise FaceSocialAPIError(
            "INVALID_RESPONSE", f"{call.method} {call.path}: the answer is not JSON", response.status_code
        ) from exc
    return call.parse(body)


def connection_error(call: Call[Any], exc: httpx.TransportError) -> FaceSocialConnectionError:
    code = "TIMEOUT" if isinstance(exc, httpx.TimeoutException) else "CONNECTION_ERROR"
    return FaceSocialConnectionError(code, f"{call.method} {call.path}: {exc!r}", 0)


Budget = Callable[[], float]


def retry_delay(
    retry: RetryPolicy,
    call: Call[Any],
    attempt: int,
    failure: httpx.Response | httpx.TransportError,
    budget: Budget | None = None,
) -> float:
    """Seconds to wait after failed attempt number ``attempt`` of ``call`` (an error answer or a
    transport failure) before sending it again; raises the ``FaceSocialAPIError`` (or
    ``FaceSocialConnectionError``) when ``retry`` gives up, or when the wait would outlast
    ``budget()`` (seconds left of the caller's deadline: ``wait_job``'s timeout bounds the
    retries of its polls). The sync and async ``send`` share it, so they differ only in how
    they send and sleep."""
    if isinstance(failure, httpx.TransportError):
        delay = retry.delay_for_exception(attempt, call.method, failure)
        if delay is None or (budget is not None and delay > budget()):
            raise connection_error(call, failure) from failure
        log.info("%s %s: %r; retry %d in %.2f s", call.method, call.path, failure, attempt, delay)
        return delay
    error = FaceSocialAPIError.from_response(failure, parse_retry_after(failure.headers.get("Retry-After")))
    delay = retry.delay_for_response(attempt, failure, error.code)
    if delay is None or (budget is not None and delay > budget()):
        raise error
    log.info("%s %s: %s; retry %d in %.2f s", call.method, call.path, error.code, attempt, delay)
    return delay


def _method(builder: Callable[P, Call[T]]) -> Callable[Concatenate[FaceSocialClient, P], T]:
    """A client method sending the call ``builder`` makes (its signature and docstring)."""

    @functools.wraps(builder)
    def method(self: FaceSocialClient, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self.run(builder(*args, **kwargs))

    return method


class FaceSocialClient:
    """A synchronous FaceSocial client. Thread-safe (one connection pool); close it, or use it
    as a context manager.

    ``base_url``: the server (``http://host:port``, without ``/api/v1``); ``api_key`` (header
    ``X-API-Key``) or ``token`` (a login JWT); ``timeout``: seconds per request (uploads of
    long videos may need more); ``retry``: the ``RetryPolicy`` (``NO_RETRY`` disables);
    ``session_id``: sent as ``X-Session-Id``; ``transport``: an httpx transport (tests);
    ``sleep``: how to wait between attempts (tests pass a recorder).
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        api_key: str | None = None,
        token: str | None = None,
        timeout: float = 120.0,
        retry: RetryPolicy | None = None,
        session_id: str | None = None,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers=auth_headers(api_key, token, session_id, headers),
            timeout=timeout,
            transport=transport,
        )

    def __enter__(self) -> FaceSocialClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def send(self, call: Call[Any], budget: Budget | None = None) -> httpx.Response:
        """Send ``call`` with retries; the successful (2xx) answer, or ``FaceSocialAPIError``.
        ``budget()``: seconds left for the retries (a wait longer than that raises instead)."""
        arguments = request_arguments(call)
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._http.request(call.method, call.path, **arguments)
            except httpx.TransportError as exc:
                self._sleep(retry_delay(self.retry, call, attempt, exc, budget))
                continue
            if response.is_success:
                return response
            self._sleep(retry_delay(self.retry, call, attempt, response, budget))

    def run(self, call: Call[T], budget: Budget | None = None) -> T:
        """Send ``call`` and parse its answer."""
        return decode(call, self.send(call, budget))

    def wait_job(
        self,
        job_id: str,
        *,
        timeout: float = 600.0,
        interval: float = 0.5,
        max_interval: float = 5.0,
        on_progress: ProgressCallback | None = None,
        raise_on_failure: bool = True,
    ) -> Job:
        """Poll ``GET /api/v1/jobs/{job_id}`` until it ends; the final ``Job``.

        ``on_progress(job)`` is called on every change of status or progress (0..100).
        Raises ``JobFailedError`` (failed or cancelled; unless ``raise_on_failure=False``),
        ``JobTimeoutError`` after ``timeout`` seconds, ``FaceSocialAPIError`` (e.g.
        ``JOB_NOT_FOUND``, or a 429/503 whose retry would sleep past the timeout)."""
        poller = Poller(timeout, interval, max_interval, raise_on_failure)
        while True:
            step = poller.step(self.run(calls.get_job(job_id), poller.remaining))
            if on_progress is not None and step.report:
                on_progress(step.job)
            if step.sleep is None:
                return step.outcome()
            self._sleep(step.sleep)

    detect = _method(calls.detect)
    register = _method(calls.register)
    verify = _method(calls.verify)
    identify = _method(calls.identify)
    get_user = _method(calls.get_user)
    erase_user = _method(calls.erase_user)
    create_group = _method(calls.create_group)
    list_groups = _method(calls.list_groups)
    get_group = _method(calls.get_group)
    delete_group = _method(calls.delete_group)
    add_group_members = _method(calls.add_group_members)
    remove_group_member = _method(calls.remove_group_member)
    demographics = _method(calls.demographics)
    demographics_batch = _method(calls.demographics_batch)
    spoof_check = _method(calls.spoof_check)
    spoof_check_video = _method(calls.spoof_check_video)
    get_spoof_check = _method(calls.get_spoof_check)
    create_liveness_session = _method(calls.create_liveness_session)
    get_liveness_session = _method(calls.get_liveness_session)
    send_liveness_frames = _method(calls.send_liveness_frames)
    deepfake = _method(calls.deepfake)
    deepfake_video = _method(calls.deepfake_video)
    get_deepfake_analysis = _method(calls.get_deepfake_analysis)
    delete_deepfake_analysis = _method(calls.delete_deepfake_analysis)
    ai_image = _method(calls.ai_image)
    get_ai_image_result = _method(calls.get_ai_image_result)
    delete_ai_image_result = _method(calls.delete_ai_image_result)
    counting_video = _method(calls.counting_video)
    list_counting_videos = _method(calls.list_counting_videos)
    get_counting_video = _method(calls.get_counting_video)
    delete_counting_video = _method(calls.delete_counting_video)
    counting_events = _method(calls.counting_events)
    counting_tracks = _method(calls.counting_tracks)
    counting_timeline = _method(calls.counting_timeline)
    counting_preview = _method(calls.counting_preview)
    list_jobs = _method(calls.list_jobs)
    get_job = _method(calls.get_job)
    cancel_job = _method(calls.cancel_job)
    list_models = _method(calls.list_models)
    get_model = _method(calls.get_model)
    model_versions = _method(calls.model_versions)
    deploy_model = _method(calls.deploy_model)
    start_canary = _method(calls.start_canary)
    end_canary = _method(calls.end_canary)
    promote_canary = _method(calls.promote_canary)
    rollback_model = _method(calls.rollback_model)
    create_experiment = _method(calls.create_experiment)
    list_experiments = _method(calls.list_experiments)
    get_experiment = _method(calls.get_experiment)
    start_experiment = _method(calls.start_experiment)
    stop_experiment = _method(calls.stop_experiment)
    experiment_results = _method(calls.experiment_results)
    feedback = _method(calls.feedback)
