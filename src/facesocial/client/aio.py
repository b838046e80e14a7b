"""The asynchronous client: ``AsyncFaceSocialClient`` (httpx.AsyncClient underneath).

    from facesocial.client import AsyncFaceSocialClient

    async with AsyncFaceSocialClient("http://127.0.0.1:8000", api_key="fs_...") as fs:
        result = await fs.detect(numpy_rgb_array)
        accepted = await fs.counting_video("door.mp4", lines=[...])
        job = await fs.wait_job(accepted.job_id, on_progress=print)

The same methods, parameters, results, retries and errors as ``FaceSocialClient``
(``facesocial.client.sync``), each a coroutine; waits use ``asyncio.sleep``.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, Concatenate, ParamSpec, TypeVar

import httpx

from facesocial.client import calls
from facesocial.client.calls import Call
from facesocial.client.jobs import AsyncProgressCallback, Poller
from facesocial.client.models import Job
from facesocial.client.retry import RetryPolicy
from facesocial.client.sync import (
    DEFAULT_BASE_URL,
    Budget,
    auth_headers,
    decode,
    request_arguments,
    retry_delay,
)

P = ParamSpec("P")
T = TypeVar("T")


def _method(
    builder: Callable[P, Call[T]],
) -> Callable[Concatenate[AsyncFaceSocialClient, P], Coroutine[Any, Any, T]]:
    """A client coroutine sending the call ``builder`` makes (its signature and docstring).

    The call is built before the first ``await``: reading a file or encoding an image happens
    in the caller's task (it is quick next to the request)."""

    @functools.wraps(builder)
    async def method(self: AsyncFaceSocialClient, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self.run(builder(*args, **kwargs))

    return method


class AsyncFaceSocialClient:
    """An asynchronous FaceSocial client; the parameters of ``FaceSocialClient``, with ``sleep``
    a coroutine function (default ``asyncio.sleep``). Use one per event loop."""

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
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers=auth_headers(api_key, token, session_id, headers),
            timeout=timeout,
            transport=transport,
        )

    async def __aenter__(self) -> AsyncFaceSocialClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def send(self, call: Call[Any], budget: Budget | None = None) -> httpx.Response:
        """Send ``call`` with retries; the successful (2xx) answer, or ``FaceSocialAPIError``.
        ``budget()``: seconds left for the retries (a wait longer than that raises instead)."""
        arguments = request_arguments(call)
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._http.request(call.method, call.path, **arguments)
            except httpx.TransportError as exc:
                await self._sleep(retry_delay(self.retry, call, attempt, exc, budget))
                continue
            if response.is_success:
                return response
            await self._sleep(retry_delay(self.retry, call, attempt, response, budget))

    async def run(self, call: Call[T], budget: Budget | None = None) -> T:
        """Send ``call`` and parse its answer."""
        return decode(call, await self.send(call, budget))

    async def wait_job(
        self,
        job_id: str,
        *,
        timeout: float = 600.0,
        interval: float = 0.5,
        max_interval: float = 5.0,
        on_progress: AsyncProgressCallback | None = None,
        raise_on_failure: bool = True,
    ) -> Job:
        """``FaceSocialClient.wait_job`` as a coroutine; ``on_progress`` may be a plain function
        or a coroutine function (awaited)."""
        poller = Poller(timeout, interval, max_interval, raise_on_failure)
        while True:
            step = poller.step(await self.run(calls.get_job(job_id), poller.remaining))
            if on_progress is not None and step.report:
                outcome = on_progress(step.job)
                if inspect.isawaitable(outcome):
                    await outcome
            if step.sleep is None:
                return step.outcome()
            await self._sleep(step.sleep)

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
