"""The SDK's retry policy, error mapping and job polling, against httpx.MockTransport servers.

The mock answers are the platform's own shapes (docs/api.md): 429 ``RATE_LIMITED`` and 503
``SERVER_BUSY`` with ``Retry-After``, the error envelope, the job object. Sleeps are recorded,
not slept, so the waits the client chose are asserted exactly.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from facesocial.client import (
    AsyncFaceSocialClient,
    FaceSocialAPIError,
    FaceSocialClient,
    FaceSocialConnectionError,
    Job,
    JobFailedError,
    JobTimeoutError,
    RetryPolicy,
    calls,
    parse_retry_after,
)

PNG_1PX = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS\xde"
    b"\x00\x00\x00\x0cIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"
)
DETECT_OK = {
    "success": True,
    "request_id": "req_1",
    "faces_detected": 1,
    "faces": [{"face_index": 0, "bbox": {"x": 1, "y": 2, "width": 30, "height": 40}, "confidence": 0.98}],
    "model": {"detector": "blazeface"},
    "processing_time_ms": 12,
}


def error(status: int, code: str, retry_after: str | None = None, details: Any = None) -> httpx.Response:
    body: dict[str, Any] = {"success": False, "error": {"code": code, "message": f"{code.lower()} message"}}
    if details is not None:
        body["error"]["details"] = details
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return httpx.Response(status, json=body, headers=headers)


class Script:
    """A mock server answering from a list, recording every request it got."""

    def __init__(self, answers: list[httpx.Response | Exception]) -> None:
        self.answers: Iterator[httpx.Response | Exception] = iter(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        answer = next(self.answers)
        if isinstance(answer, Exception):
            raise answer
        return answer


def unbounded(request: httpx.Request) -> bytes:
    """A multipart body without its boundary (httpx draws a new one per request)."""
    boundary = request.headers["Content-Type"].split("boundary=")[1].encode()
    return request.content.replace(boundary, b"BOUNDARY")


def client(script: Script, sleeps: list[float], **policy: Any) -> FaceSocialClient:
    retry = RetryPolicy(rng=random.Random(7), **policy)
    return FaceSocialClient(
        "http://fs.test",
        api_key="fs_key",
        retry=retry,
        transport=httpx.MockTransport(script),
        sleep=sleeps.append,
    )


# --- Retry-After parsing -------------------------------------------------------------------------


def test_retry_after_seconds_and_http_dates() -> None:
    now = datetime(2026, 1, 5, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 0 ") == 0.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=42), usegmt=True), now) == 42.0
    assert parse_retry_after("Mon, 05 Jan 2026 12:00:30 GMT", now) == 30.0
    assert parse_retry_after("Mon, 05 Jan 2026 11:00:00 GMT", now) == 0.0  # in the past: now
    for bad in (None, "", "soon", "-3", "1.5"):
        assert parse_retry_after(bad, now) is None, bad


def test_backoff_is_full_jitter_under_an_exponential_ceiling() -> None:
    policy = RetryPolicy(backoff_base=0.5, backoff_max=4.0, rng=random.Random(1))
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 4.0), (9, 4.0)]:
        draws = [policy.backoff(attempt) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in draws), attempt
        assert max(draws) > 0.8 * ceiling and min(draws) < 0.2 * ceiling  # spread, not a constant
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


# --- retries -------------------------------------------------------------------------------------


def test_429_with_retry_after_then_503_then_success() -> None:
    script = Script(
        [error(429, "RATE_LIMITED", "3"), error(503, "SERVER_BUSY"), httpx.Response(200, json=DETECT_OK)]
    )
    sleeps: list[float] = []
    with client(script, sleeps, retry_after_jitter=0.0, backoff_base=0.5) as fs:
        result = fs.detect(PNG_1PX, max_faces=5)
    assert len(script.requests) == 3
    assert sleeps[0] == 3.0  # exactly the server's Retry-After
    assert 0.0 <= sleeps[1] <= 1.0  # no Retry-After: full jitter under base * 2 ** (2 - 1)
    # the same request each time: the image bytes were read once and resent
    bodies = {unbounded(r) for r in script.requests}
    assert len(bodies) == 1 and PNG_1PX in bodies.pop()
    assert all(r.headers["X-API-Key"] == "fs_key" for r in script.requests)
    assert result.faces[0].bbox.width == 30 and result.request_id == "req_1"
    assert result.raw == DETECT_OK


def test_retry_after_as_an_http_date_is_honoured() -> None:
    when = datetime.now(UTC) + timedelta(seconds=20)
    script = Script(
        [
            error(503, "SERVICE_UNAVAILABLE", format_datetime(when, usegmt=True)),
            httpx.Response(200, json=DETECT_OK),
        ]
    )
    sleeps: list[float] = []
    with client(script, sleeps, retry_after_jitter=0.0) as fs:
        fs.detect(PNG_1PX)
    assert len(sleeps) == 1 and 17.0 <= sleeps[0] <= 20.0


def test_retry_after_jitter_only_adds_a_bounded_share() -> None:
    script = Script([error(429, "RATE_LIMITED", "10"), httpx.Response(200, json=DETECT_OK)])
    sleeps: list[float] = []
    with client(script, sleeps, retry_after_jitter=0.1) as fs:
        fs.detect(PNG_1PX)
    assert 10.0 <= sleeps[0] <= 11.0


def test_attempts_are_bounded_and_the_last_error_is_raised() -> None:
    script = Script([error(503, "SERVER_BUSY", "1")] * 3)
    sleeps: list[float] = []
    with (
        client(script, sleeps, max_attempts=3, retry_after_jitter=0.0) as fs,
        pytest.raises(FaceSocialAPIError) as caught,
    ):
        fs.list_jobs()
    assert len(script.requests) == 3 and sleeps == [1.0, 1.0]
    assert (caught.value.code, caught.value.status, caught.value.retry_after) == ("SERVER_BUSY", 503, 1.0)


def test_a_retry_after_longer_than_allowed_is_raised_at_once() -> None:
    script = Script([error(429, "RATE_LIMITED", "3600")])
    sleeps: list[float] = []
    with client(script, sleeps, max_retry_after=60.0) as fs, pytest.raises(FaceSocialAPIError) as caught:
        fs.list_jobs()
    assert sleeps == [] and caught.value.retry_after == 3600.0 and caught.value.code == "RATE_LIMITED"


def test_a_used_up_key_quota_is_not_retried() -> None:
    script = Script([error(429, "API_KEY_QUOTA_EXCEEDED", "30")])
    sleeps: list[float] = []
    with client(script, sleeps) as fs, pytest.raises(FaceSocialAPIError) as caught:
        fs.list_jobs()
    assert sleeps == [] and caught.value.code == "API_KEY_QUOTA_EXCEEDED"


def test_client_errors_are_raised_with_code_message_status_details() -> None:
    details = {"field": "lines", "index": 0, "reason": "outside the frame"}
    script = Script([error(422, "INVALID_COUNTING_LINES", details=details)])
    sleeps: list[float] = []
    with client(script, sleeps) as fs, pytest.raises(FaceSocialAPIError) as caught:
        fs.counting_video(
            b"\x00\x00\x00\x18ftypmp42", lines=[{"name": "door", "start": [0, 0], "end": [9, 9]}]
        )
    error_ = caught.value
    assert (error_.code, error_.status, error_.details) == ("INVALID_COUNTING_LINES", 422, details)
    assert error_.message == "invalid_counting_lines message" and sleeps == []
    sent = script.requests[0].content
    assert (
        b'name="lines"' in sent
        and json.dumps([{"name": "door", "start": [0, 0], "end": [9, 9]}]).encode() in sent
    )


def test_a_non_platform_error_page_becomes_http_status_code() -> None:
    script = Script([httpx.Response(502, text="<html>Bad Gateway</html>")])
    with client(script, []) as fs, pytest.raises(FaceSocialAPIError) as caught:
        fs.list_models()
    assert caught.value.code == "HTTP_502" and "Bad Gateway" in caught.value.message


def test_connection_failures_retry_idempotent_calls_and_unsent_posts_only() -> None:
    request = httpx.Request("GET", "http://fs.test")
    ok = httpx.Response(200, json={"success": True, "jobs": []})
    script = Script([httpx.ReadTimeout("slow", request=request), ok])
    sleeps: list[float] = []
    with client(script, sleeps) as fs:
        assert fs.list_jobs() == {"success": True, "jobs": []}  # GET: read timeout retried
    assert len(sleeps) == 1

    script = Script([httpx.ConnectError("refused", request=request), httpx.Response(200, json=DETECT_OK)])
    with client(script, sleeps := []) as fs:
        fs.detect(PNG_1PX)  # POST never sent: retried
    assert len(script.requests) == 2 and len(sleeps) == 1

    script = Script([httpx.ReadTimeout("slow", request=request)])
    with client(script, sleeps := []) as fs, pytest.raises(FaceSocialConnectionError) as caught:
        fs.detect(PNG_1PX)  # POST may have run: not retried
    assert caught.value.code == "TIMEOUT" and caught.value.status == 0 and sleeps == []


def test_async_client_retries_the_same_way() -> None:
    script = Script(
        [error(429, "RATE_LIMITED", "2"), error(503, "SERVER_BUSY"), httpx.Response(200, json=DETECT_OK)]
    )
    sleeps: list[float] = []

    async def record(seconds: float) -> None:
        sleeps.append(seconds)

    async def scenario() -> Any:
        retry = RetryPolicy(rng=random.Random(3), retry_after_jitter=0.0)
        async with AsyncFaceSocialClient(
            "http://fs.test", api_key="k", retry=retry, transport=httpx.MockTransport(script), sleep=record
        ) as fs:
            return await fs.detect(PNG_1PX)

    result = asyncio.run(scenario())
    assert len(script.requests) == 3 and sleeps[0] == 2.0 and 0.0 <= sleeps[1] <= 1.0
    assert result.faces[0].confidence == 0.98


def test_both_clients_offer_the_same_methods_with_the_same_parameters() -> None:
    import inspect

    sync_methods = {n for n in dir(FaceSocialClient) if not n.startswith("_")}
    async_methods = {n for n in dir(AsyncFaceSocialClient) if not n.startswith("_")}
    assert sync_methods - {"close", "__enter__", "__exit__"} == async_methods - {"aclose"}
    for name in sync_methods - {"close"}:
        assert inspect.signature(getattr(FaceSocialClient, name)).parameters.keys() == (
            inspect.signature(getattr(AsyncFaceSocialClient, name)).parameters.keys()
        ), name
    assert {name for name in calls.ENDPOINTS} <= sync_methods | {"feedback"}


def test_a_parameter_no_route_declares_is_refused() -> None:
    with pytest.raises(RuntimeError, match="not declared"):
        calls.build("detect", calls.raw, form={"max_face": 3})
    with pytest.raises(ValueError):
        calls.verify(PNG_1PX)  # neither user_id nor image2


# --- job polling ---------------------------------------------------------------------------------


def job_body(status: str, progress: float, **extra: Any) -> dict[str, Any]:
    job = {"job_id": "job_1", "kind": "counting.video", "status": status, "progress_percentage": progress}
    job.update({"estimated_completion": None, "result": None, "error": None, **extra})
    return {"success": True, "job": job}


def jobs_server(states: list[dict[str, Any]]) -> Callable[[httpx.Request], httpx.Response]:
    answers = iter(states)

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v1/jobs/job_1"
        return httpx.Response(200, json=next(answers))

    return handler


def test_wait_job_reports_each_change_of_progress_once() -> None:
    states = [
        job_body("pending", 0),
        job_body("pending", 0),
        job_body("processing", 40),
        job_body("processing", 40),
    ]
    states.append(job_body("completed", 100, result={"lines": [{"name": "door", "in": 3, "out": 1}]}))
    seen: list[tuple[str, float]] = []
    sleeps: list[float] = []
    with FaceSocialClient(
        "http://fs.test", transport=httpx.MockTransport(jobs_server(states)), sleep=sleeps.append
    ) as fs:
        job = fs.wait_job(
            "job_1",
            interval=0.2,
            max_interval=0.5,
            on_progress=lambda j: seen.append((j.status, j.progress_percentage)),
        )
    assert seen == [("pending", 0), ("processing", 40), ("completed", 100)]
    assert job.done and job.result == {"lines": [{"name": "door", "in": 3, "out": 1}]}
    assert sleeps == pytest.approx([0.2, 0.3, 0.45, 0.5])  # grows by half, capped


def test_wait_job_raises_for_a_failed_job_or_returns_it_when_asked() -> None:
    failed = job_body("failed", 60, error={"code": "VIDEO_TRUNCATED", "message": "cut short"})
    with (
        FaceSocialClient(
            "http://fs.test", transport=httpx.MockTransport(jobs_server([failed])), sleep=lambda s: None
        ) as fs,
        pytest.raises(JobFailedError) as caught,
    ):
        fs.wait_job("job_1")
    assert caught.value.code == "VIDEO_TRUNCATED" and caught.value.job.progress_percentage == 60
    with FaceSocialClient(
        "http://fs.test", transport=httpx.MockTransport(jobs_server([failed])), sleep=lambda s: None
    ) as fs:
        assert fs.wait_job("job_1", raise_on_failure=False).status == "failed"


def test_wait_job_gives_up_at_its_timeout() -> None:
    import time

    states = [job_body("processing", 10)] * 100
    with FaceSocialClient(
        "http://fs.test", transport=httpx.MockTransport(jobs_server(states)), sleep=time.sleep
    ) as fs:
        started = time.monotonic()
        with pytest.raises(JobTimeoutError) as caught:
            fs.wait_job("job_1", timeout=0.3, interval=0.05, max_interval=0.1)
    assert 0.25 <= time.monotonic() - started < 2.0
    assert caught.value.job.status == "processing" and caught.value.code == "JOB_WAIT_TIMEOUT"


def test_pathological_retry_after_values_count_as_absent() -> None:
    """Non-ASCII digits ("²" is a digit to str.isdigit, not to int()) and numbers no float holds
    are malformed headers, not a crash of the SDK; the server's error is still raised."""
    for value in ("\u00b2", "9" * 400, "\u0663"):
        assert parse_retry_after(value) is None
    script = Script([error(503, "SERVICE_UNAVAILABLE", "9" * 400)] * 4)
    sleeps: list[float] = []
    with client(script, sleeps) as fs, pytest.raises(FaceSocialAPIError) as caught:
        fs.get_job("job_1")
    assert caught.value.code == "SERVICE_UNAVAILABLE" and caught.value.retry_after is None
    assert len(script.requests) == 4 and all(0 <= s <= 20 for s in sleeps)


def test_wait_job_timeout_bounds_the_retries_of_its_polls() -> None:
    """A 503 with Retry-After: 100 to every poll of wait_job(timeout=1): the poll's retries
    would sleep past the wait's deadline, so the server's error is raised at once (sync and
    async) instead of after ~5 minutes of retries."""
    sleeps: list[float] = []
    script = Script([error(503, "SERVICE_UNAVAILABLE", "100")] * 4)
    with client(script, sleeps) as fs, pytest.raises(FaceSocialAPIError) as caught:
        fs.wait_job("job_1", timeout=1)
    assert caught.value.code == "SERVICE_UNAVAILABLE" and sleeps == [] and len(script.requests) == 1

    async def main() -> list[float]:
        slept: list[float] = []

        async def sleep(seconds: float) -> None:
            slept.append(seconds)

        script = Script([error(503, "SERVICE_UNAVAILABLE", "100")] * 4)
        async with AsyncFaceSocialClient(
            "http://fs.test", transport=httpx.MockTransport(script), sleep=sleep
        ) as fs:
            with pytest.raises(FaceSocialAPIError):
                await fs.wait_job("job_1", timeout=1)
        return slept

    assert asyncio.run(main()) == []
    # A short Retry-After within the deadline is still waited for, then the poll goes on.
    sleeps = []
    script = Script([error(503, "SERVER_BUSY", "1"), httpx.Response(200, json=job_body("completed", 100))])
    with client(script, sleeps) as fs:
        assert fs.wait_job("job_1", timeout=60).status == "completed"
    assert len(sleeps) == 1 and 1 <= sleeps[0] <= 1.1


def test_async_wait_job_awaits_a_coroutine_callback() -> None:
    states = [job_body("processing", 50), job_body("completed", 100)]
    seen: list[float] = []

    async def on_progress(job: Job) -> None:
        seen.append(job.progress_percentage)

    async def noop(seconds: float) -> None:
        return None

    async def scenario() -> Job:
        async with AsyncFaceSocialClient(
            "http://fs.test", transport=httpx.MockTransport(jobs_server(states)), sleep=noop
        ) as fs:
            return await fs.wait_job("job_1", on_progress=on_progress)

    assert asyncio.run(scenario()).status == "completed" and seen == [50, 100]


def test_serving_is_one_shape_for_every_route() -> None:
    from facesocial.client import DetectionResult, Identification

    decision = {
        "slot": "face_detection",
        "version": "blazeface@1",
        "route": "experiment",
        "arm": "challenger",
    }
    detected = DetectionResult.from_dict({**DETECT_OK, "serving": decision})
    assert detected.serving == {"face_detection": decision}  # detect answers one decision
    both = {"face_detection": decision, "face_embedding": {"version": "faceres@1"}}
    found = Identification.from_dict(
        {"identified": False, "unknown": True, "candidates": [], "serving": both}
    )
    assert found.serving == both and DetectionResult.from_dict(DETECT_OK).serving == {}
