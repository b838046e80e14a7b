"""Meeting attention REST (/api/v1/attention) over HTTP on both profiles.

embedded: SQLite; scaled: PostgreSQL (daily-partitioned metrics, or TimescaleDB where installed),
Redis, Milvus Lite. Metrics are written through the real ``container.attention_metrics`` and alerts
through ``container.meetings`` as the live analysis does; identification uses real photos of
../shared/data/face_recognition_identities and the real models.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select

from facesocial.analytics.attention import AlertEvent
from facesocial.api.app import create_app
from facesocial.container import Container
from facesocial.settings import RateLimit
from facesocial.store.attention_metrics import MetricRow
from facesocial.store.tables import (
    AiOperationLog,
    AttentionAlert,
    Meeting,
    MeetingSummary,
    Participant,
)
from facesocial.store.types import utcnow
from tests.conftest import shared_path
from tests.integration.conftest import profile

pytestmark = pytest.mark.integration
BASE = "/api/v1/attention"
FACES = "/api/v1/face-recognition"


@dataclass
class App:
    client: TestClient
    container: Container
    key: str
    other_key: str
    profile: str

    def call(self, method: str, path: str, key: str | None = None, **kwargs: Any) -> Any:
        return self.client.request(method, path, headers={"X-API-Key": key or self.key}, **kwargs)

    def ok(self, method: str, path: str, status: int = 200, **kwargs: Any) -> dict[str, Any]:
        response = self.call(method, path, **kwargs)
        assert response.status_code == status, response.text
        body: dict[str, Any] = response.json()
        assert body["success"] is True
        return body

    def meeting(self, **fields: Any) -> str:
        body = self.ok("POST", f"{BASE}/meetings", 201, json={"title": "Standup", **fields})
        return str(body["meeting"]["meeting_id"])

    def join(self, meeting_id: str, **fields: Any) -> str:
        body = self.ok("POST", f"{BASE}/meetings/{meeting_id}/participants", 201, json=fields)
        return str(body["participant"]["participant_id"])


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["success"] is False and body["error"]["code"] == code, body
    return body


@pytest.fixture(scope="module", params=["embedded", "scaled"])
def app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, optional_model_dir: Path | None
) -> Iterator[App]:
    with profile(request.param, tmp_path_factory.mktemp("attention"), optional_model_dir) as settings:
        container = Container(settings)
        container.prepare()
        key = container.keys.create("attention tests").secret
        other = container.keys.create("another tenant").secret
        with TestClient(create_app(container), raise_server_exceptions=False) as client:
            yield App(client, container, key, other, request.param)
        container.close()


def event(alert_type: str, severity: str, state: str, seconds: float) -> AlertEvent:
    return AlertEvent(
        track_id=1,
        alert_type=alert_type,  # type: ignore[arg-type]
        severity=severity,  # type: ignore[arg-type]
        state=state,  # type: ignore[arg-type]
        started_ms=0,
        timestamp_ms=int(seconds * 1000),
        duration_seconds=seconds,
        message=f"{alert_type} for {seconds:.0f} s",
    )


def test_a_meeting_from_schedule_to_summary(app: App) -> None:
    meeting_id = app.meeting(description="Daily sync")
    got = app.ok("GET", f"{BASE}/meetings/{meeting_id}")["meeting"]
    assert got["status"] == "scheduled" and got["start_time"] is None and got["description"] == "Daily sync"
    assert_error(app.call("POST", f"{BASE}/meetings/{meeting_id}/end"), 409, "INVALID_MEETING_TRANSITION")

    started = app.ok("POST", f"{BASE}/meetings/{meeting_id}/start")["meeting"]
    assert started["status"] == "active" and started["start_time"] is not None
    again = assert_error(
        app.call("POST", f"{BASE}/meetings/{meeting_id}/start"), 409, "INVALID_MEETING_TRANSITION"
    )
    assert again["error"]["details"]["status"] == "active"

    alice = app.join(meeting_id, display_name="Alice")
    bob = app.join(meeting_id, display_name="Bob")
    carol = app.join(meeting_id, display_name="Carol")
    left = app.ok("POST", f"{BASE}/meetings/{meeting_id}/participants/{carol}/leave")["participant"]
    assert left["is_active"] is False and left["left_at"] is not None
    assert_error(
        app.call("POST", f"{BASE}/meetings/{meeting_id}/participants/{carol}/leave"),
        409,
        "PARTICIPANT_NOT_ACTIVE",
    )
    present = app.ok("GET", f"{BASE}/meetings/{meeting_id}/participants", params={"active": "true"})
    assert {p["participant_id"] for p in present["items"]} == {alice, bob}

    # Five minutes of metrics, as the live analysis writes them: Alice attentive, Bob drifting
    # off in minutes 1-2 and 4 (two separate low runs of the meeting's mean score).
    meeting_pk = uuid.UUID(meeting_id)
    base = (utcnow() - timedelta(minutes=10)).replace(second=0, microsecond=0)
    bob_scores = {0: 80.0, 1: 5.0, 2: 10.0, 3: 90.0, 4: 0.0}
    rows = []
    for m, bob_score in bob_scores.items():
        for s in (0, 20, 40):  # three samples a minute each
            at = base + timedelta(minutes=m, seconds=s)
            rows.append(MetricRow(meeting_pk, uuid.UUID(alice), at, 70.0 + s / 10, 60.0, 80.0, 90.0))
            rows.append(MetricRow(meeting_pk, uuid.UUID(bob), at, bob_score, None, None, None, True, False))
    app.container.attention_metrics.write(rows)
    means = [(sum(70.0 + s / 10 for s in (0, 20, 40)) + 3 * bob_scores[m]) / 6 for m in range(5)]
    threshold = app.container.settings.attention.low_attention_threshold
    runs = sum(1 for i, v in enumerate(means) if v < threshold and (i == 0 or means[i - 1] >= threshold))
    assert runs == 2  # the data above is meant to give two runs

    # Alerts as the live analysis persists them: opened, escalated, closed; one left open.
    meetings = app.container.meetings
    closed_id = meetings.open_alert(meeting_pk, uuid.UUID(bob), event("drowsy", "info", "opened", 3))
    meetings.update_alert(closed_id, event("drowsy", "warning", "escalated", 12))
    meetings.close_alert(closed_id, event("drowsy", "warning", "closed", 15))
    open_id = meetings.open_alert(meeting_pk, uuid.UUID(bob), event("looking_away", "info", "opened", 4))
    meetings.update_alert(open_id, event("looking_away", "critical", "escalated", 31))
    other_id = meetings.open_alert(meeting_pk, uuid.UUID(alice), event("not_attentive", "info", "opened", 3))

    live = app.ok("GET", f"{BASE}/meetings/{meeting_id}/summary")["summary"]
    assert live["source"] == "live" and live["total_alerts"] == 3 and live["participant_count"] == 3
    assert live["low_attention_segments"] == 2

    alerts = app.ok("GET", f"{BASE}/meetings/{meeting_id}/alerts")
    assert alerts["total"] == 3
    closed = next(a for a in alerts["items"] if a["alert_id"] == str(closed_id))
    assert closed["severity"] == "warning" and closed["duration_seconds"] == 15.0 and not closed["is_open"]
    still = app.ok(
        "GET", f"{BASE}/meetings/{meeting_id}/alerts", params={"state": "open", "participant_id": bob}
    )
    assert [a["alert_id"] for a in still["items"]] == [str(open_id)]
    assert still["items"][0]["severity"] == "critical" and still["items"][0]["duration_seconds"] == 31.0
    critical = app.ok("GET", f"{BASE}/meetings/{meeting_id}/alerts", params={"severity": "critical"})
    assert [a["alert_id"] for a in critical["items"]] == [str(open_id)]
    typed = app.ok(
        "GET", f"{BASE}/meetings/{meeting_id}/alerts", params={"type": "drowsy", "state": "resolved"}
    )
    assert [a["alert_id"] for a in typed["items"]] == [str(closed_id)]

    resolved = app.ok("POST", f"{BASE}/meetings/{meeting_id}/alerts/{other_id}/resolve")["alert"]
    assert resolved["resolved_at"] is not None and resolved["duration_seconds"] >= 3.0
    assert_error(
        app.call("POST", f"{BASE}/meetings/{meeting_id}/alerts/{other_id}/resolve"),
        409,
        "ALERT_ALREADY_RESOLVED",
    )

    ended = app.ok("POST", f"{BASE}/meetings/{meeting_id}/end")["meeting"]
    assert ended["status"] == "ended" and ended["end_time"] >= ended["start_time"]
    stored = ended["summary"]
    assert stored["source"] == "stored"
    assert stored["participant_count"] == 3 and stored["total_alerts"] == 3
    assert stored["low_attention_segments"] == runs
    samples = [r.attention_score for r in rows]
    assert stored["avg_attention_score"] == pytest.approx(sum(samples) / len(samples), abs=0.01)
    assert stored["min_attention_score"] == pytest.approx(min(means), abs=0.01)
    assert stored["max_attention_score"] == pytest.approx(max(means), abs=0.01)
    assert stored["duration_minutes"] == 0  # started and ended within this test
    assert app.ok("GET", f"{BASE}/meetings/{meeting_id}/summary")["summary"] == stored

    # The end closed what was open: the remaining alert and every present participant.
    assert app.ok("GET", f"{BASE}/meetings/{meeting_id}/alerts", params={"state": "open"})["total"] == 0
    everyone = app.ok("GET", f"{BASE}/meetings/{meeting_id}/participants")["items"]
    assert all(not p["is_active"] and p["left_at"] for p in everyone)
    assert {p["left_at"] for p in everyone if p["participant_id"] != carol} == {ended["end_time"]}
    # Closed alerts stay as they were; late events of the live analysis change nothing.
    meetings.close_alert(open_id, event("looking_away", "critical", "closed", 99))
    after = app.ok("GET", f"{BASE}/meetings/{meeting_id}/alerts", params={"severity": "critical"})["items"][0]
    assert after["resolved_at"] == ended["end_time"] and after["duration_seconds"] != 99.0

    assert_error(app.call("POST", f"{BASE}/meetings/{meeting_id}/end"), 409, "INVALID_MEETING_TRANSITION")
    assert_error(app.call("POST", f"{BASE}/meetings/{meeting_id}/start"), 409, "INVALID_MEETING_TRANSITION")
    assert_error(
        app.call("POST", f"{BASE}/meetings/{meeting_id}/participants", json={"display_name": "Late"}),
        409,
        "MEETING_ENDED",
    )

    # The metrics as stored: per participant, raw or per minute, in a time range.
    minute = app.ok(
        "GET", f"{BASE}/meetings/{meeting_id}/metrics", params={"participant_id": bob, "resolution": "minute"}
    )
    assert [i["avg_attention"] for i in minute["items"]] == [bob_scores[m] for m in range(5)]
    assert all(i["sample_count"] == 3 for i in minute["items"])
    raw = app.ok(
        "GET",
        f"{BASE}/meetings/{meeting_id}/metrics",
        params={
            "resolution": "raw",
            "start": (base + timedelta(minutes=1)).isoformat(),
            "end": (base + timedelta(minutes=2)).isoformat(),
            "limit": 4,
        },
    )
    assert raw["count"] == 4 and all(
        i["time"] < (base + timedelta(minutes=2)).isoformat() for i in raw["items"]
    )
    assert {i["participant_id"] for i in raw["items"]} == {alice, bob}

    # The meeting's row in the list, under its status.
    listed = app.ok("GET", f"{BASE}/meetings", params={"status": "ended", "page_size": 100})
    assert meeting_id in {m["meeting_id"] for m in listed["items"]}
    assert all(m["status"] == "ended" for m in listed["items"])


def test_patch_list_and_delete_erase_everything(app: App) -> None:
    first = app.meeting()
    second = app.meeting(title="Retro")
    patched = app.ok("PATCH", f"{BASE}/meetings/{second}", json={"description": "Sprint 7"})["meeting"]
    assert patched["title"] == "Retro" and patched["description"] == "Sprint 7"
    assert_error(
        app.call("PATCH", f"{BASE}/meetings/{second}", json={"title": None}), 422, "VALIDATION_ERROR"
    )
    page = app.ok("GET", f"{BASE}/meetings", params={"page_size": 1})
    assert page["total"] >= 2 and len(page["items"]) == 1
    assert page["items"][0]["meeting_id"] == second  # newest first

    app.ok("POST", f"{BASE}/meetings/{first}/start")
    person = app.join(first, display_name="Dan")
    pk = uuid.UUID(first)
    app.container.attention_metrics.write([MetricRow(pk, uuid.UUID(person), utcnow(), 55.0)])
    app.container.meetings.open_alert(pk, uuid.UUID(person), event("drowsy", "info", "opened", 3))
    app.ok("POST", f"{BASE}/meetings/{first}/end")

    erased = app.ok("DELETE", f"{BASE}/meetings/{first}")
    assert erased["deleted"] is True and erased["erased"]["participants"] == 1
    assert_error(app.call("GET", f"{BASE}/meetings/{first}"), 404, "MEETING_NOT_FOUND")
    assert_error(app.call("DELETE", f"{BASE}/meetings/{first}"), 404, "MEETING_NOT_FOUND")
    with app.container.database.session(readonly=True) as session:
        for column in (
            Meeting.id,
            Participant.meeting_id,
            AttentionAlert.meeting_id,
            MeetingSummary.meeting_id,
        ):
            assert session.scalar(select(func.count()).where(column == pk)) == 0, column
    far = utcnow() + timedelta(days=1)
    assert app.container.attention_metrics.raw(pk, None, far - timedelta(days=30), far, 10) == []
    # The other meeting is untouched.
    assert app.ok("GET", f"{BASE}/meetings/{second}")["meeting"]["description"] == "Sprint 7"


def test_another_tenant_sees_nothing(app: App) -> None:
    meeting_id = app.meeting()
    app.ok("POST", f"{BASE}/meetings/{meeting_id}/start")
    person = app.join(meeting_id)
    alert_id = app.container.meetings.open_alert(
        uuid.UUID(meeting_id), uuid.UUID(person), event("drowsy", "info", "opened", 3)
    )
    other = app.other_key
    m = f"{BASE}/meetings/{meeting_id}"
    for method, path in [
        ("GET", m),
        ("PATCH", m),
        ("POST", f"{m}/start"),
        ("POST", f"{m}/end"),
        ("GET", f"{m}/summary"),
        ("GET", f"{m}/metrics"),
        ("GET", f"{m}/participants"),
        ("POST", f"{m}/participants"),
        ("POST", f"{m}/participants/{person}/leave"),
        ("GET", f"{m}/alerts"),
        ("POST", f"{m}/alerts/{alert_id}/resolve"),
        ("DELETE", m),
    ]:
        kwargs: dict[str, Any] = {"json": {}} if method in ("PATCH", "POST") else {}
        assert_error(app.call(method, path, key=other, **kwargs), 404, "MEETING_NOT_FOUND")
    assert all(x["meeting_id"] != meeting_id for x in app.ok("GET", f"{BASE}/meetings", key=other)["items"])

    # Within the caller's own meeting, another meeting's participant or alert is not found either.
    mine = app.meeting()
    assert_error(
        app.call("POST", f"{BASE}/meetings/{mine}/participants/{person}/leave"), 404, "PARTICIPANT_NOT_FOUND"
    )
    assert_error(
        app.call("POST", f"{BASE}/meetings/{mine}/alerts/{alert_id}/resolve"), 404, "ALERT_NOT_FOUND"
    )
    assert_error(
        app.call("GET", f"{BASE}/meetings/{mine}/alerts", params={"participant_id": person}),
        404,
        "PARTICIPANT_NOT_FOUND",
    )
    assert_error(
        app.call("GET", f"{BASE}/meetings/{mine}/metrics", params={"participant_id": "x"}),
        404,
        "PARTICIPANT_NOT_FOUND",
    )
    assert_error(app.call("GET", f"{BASE}/meetings/not-a-uuid"), 404, "MEETING_NOT_FOUND")
    # The service itself answers the live analysis the same way.
    from facesocial import errors
    from facesocial.services.principal import Principal

    stranger = Principal(kind="api_key", role="admin", tenant_id=uuid.uuid4(), name="stranger")
    with pytest.raises(errors.MeetingNotFoundError):
        app.container.meetings.get(meeting_id, stranger)
    with pytest.raises(errors.MeetingNotFoundError):
        app.container.meetings.join(meeting_id, stranger, track_id=3, stream_id="s")
    # Still there, unchanged, for its owner.
    assert app.ok("GET", m)["meeting"]["status"] == "active"
    assert app.ok("GET", f"{m}/alerts", params={"state": "open"})["total"] == 1


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [
        ("POST", "/meetings", {"json": {}}, 422, "VALIDATION_ERROR"),
        ("POST", "/meetings", {"json": {"title": "   "}}, 422, "VALIDATION_ERROR"),
        ("POST", "/meetings", {"json": {"title": "x" * 256}}, 422, "VALIDATION_ERROR"),
        ("POST", "/meetings", {"json": {"title": "a\u202eb"}}, 422, "VALIDATION_ERROR"),
        ("POST", "/meetings", {"json": {"title": "t", "group_id": "nope"}}, 422, "VALIDATION_ERROR"),
        (
            "POST",
            "/meetings",
            {"json": {"title": "t", "group_id": str(uuid.uuid4())}},
            404,
            "GROUP_NOT_FOUND",
        ),
        ("POST", "/meetings", {"json": {"title": "t", "host": "me"}}, 422, "VALIDATION_ERROR"),
        (
            "POST",
            "/meetings",
            {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
            422,
            "VALIDATION_ERROR",
        ),
        ("GET", "/meetings?page=0", {}, 422, "VALIDATION_ERROR"),
        ("GET", "/meetings?page=100000000000000000000", {}, 422, "VALIDATION_ERROR"),
        ("GET", "/meetings?status=paused", {}, 422, "VALIDATION_ERROR"),
    ],
)
def test_bad_meeting_requests_are_4xx(
    app: App, method: str, path: str, kwargs: dict[str, Any], status: int, code: str
) -> None:
    with app.container.database.session(readonly=True) as session:
        before = session.scalar(select(func.count()).select_from(Meeting))
    kwargs = dict(kwargs)  # the parameters are shared by both profiles' runs
    headers = {"X-API-Key": app.key, **kwargs.pop("headers", {})}
    assert_error(app.client.request(method, BASE + path, headers=headers, **kwargs), status, code)
    with app.container.database.session(readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(Meeting)) == before


def test_bad_sub_resource_requests_are_4xx(app: App) -> None:
    meeting_id = app.meeting()
    m = f"{BASE}/meetings/{meeting_id}"
    assert_error(
        app.call("POST", f"{m}/participants", json={"user_id": str(uuid.uuid4())}), 404, "USER_NOT_FOUND"
    )
    assert_error(
        app.call("POST", f"{m}/participants", json={"display_name": "x" * 300}), 422, "VALIDATION_ERROR"
    )
    assert_error(app.call("GET", f"{m}/participants", params={"active": "maybe"}), 422, "VALIDATION_ERROR")
    assert_error(app.call("GET", f"{m}/alerts", params={"type": "sleepy"}), 422, "VALIDATION_ERROR")
    assert_error(app.call("GET", f"{m}/alerts", params={"state": "closed"}), 422, "VALIDATION_ERROR")
    assert_error(app.call("GET", f"{m}/metrics", params={"resolution": "hour"}), 422, "VALIDATION_ERROR")
    assert_error(app.call("GET", f"{m}/metrics", params={"limit": 0}), 422, "VALIDATION_ERROR")
    assert_error(app.call("GET", f"{m}/metrics", params={"start": "yesterday"}), 422, "VALIDATION_ERROR")
    assert_error(
        app.call("GET", f"{m}/metrics", params={"start": "2026-01-01T00:00:00"}), 422, "VALIDATION_ERROR"
    )
    assert_error(
        app.call(
            "GET", f"{m}/metrics", params={"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}
        ),
        422,
        "VALIDATION_ERROR",
    )
    assert_error(
        app.call("GET", f"{m}/metrics", params={"start": "0001-01-01T00:00:00+01:00"}),
        422,
        "VALIDATION_ERROR",
    )
    assert_error(app.call("POST", f"{m}/alerts/{uuid.uuid4()}/resolve"), 404, "ALERT_NOT_FOUND")
    person = app.join(meeting_id)
    identify = f"{m}/participants/{person}/identify"
    assert_error(
        app.call("POST", identify, files={"image": ("x.jpg", b"not an image", "image/jpeg")}),
        415,
        "NOT_AN_IMAGE",
    )
    assert_error(app.call("POST", identify, json={"threshold": 0.5}), 422, "VALIDATION_ERROR")
    # A meeting with no metrics: a live summary of nothing, not an error.
    summary = app.ok("GET", f"{m}/summary")["summary"]
    assert summary["source"] == "live" and summary["avg_attention_score"] is None
    assert summary["duration_minutes"] is None and summary["participant_count"] == 1


def test_calls_are_audited(app: App) -> None:
    meeting_id = app.meeting(title="Audited")
    app.call("GET", f"{BASE}/meetings/{uuid.uuid4()}")
    with app.container.database.session(readonly=True) as session:
        rows = session.scalars(
            select(AiOperationLog)
            .where(AiOperationLog.service_name == "attention")
            .order_by(AiOperationLog.created_at)
        ).all()
    names = {(r.operation_type, r.error_code) for r in rows}
    assert ("create_meeting", None) in names and ("get_meeting", "MEETING_NOT_FOUND") in names
    assert meeting_id  # created above


def test_identify_binds_the_participant_to_the_enrolled_user(app: App, model_dir: Path) -> None:
    examples = shared_path("face_recognition_identities", "examples")
    obama = uuid.uuid4()
    group = app.ok("POST", f"{FACES}/groups", 201, json={"group_name": f"meeting {obama}"})["group"][
        "group_id"
    ]
    registered = app.call(
        "POST",
        f"{FACES}/register",
        files={"image": ("obama.jpg", (examples / "obama.jpg").read_bytes(), "image/jpeg")},
        data={"user_id": str(obama), "consent": "true", "group_id": group},
    )
    assert registered.status_code == 200, registered.text
    meeting_id = app.meeting(group_id=group)
    assert app.ok("GET", f"{BASE}/meetings/{meeting_id}")["meeting"]["group_id"] == group
    person = app.join(meeting_id, display_name="Guest")
    identify = f"{BASE}/meetings/{meeting_id}/participants/{person}/identify"

    stranger = app.ok(
        "POST", identify, files={"image": ("b.jpg", (examples / "biden.jpg").read_bytes(), "image/jpeg")}
    )
    assert stranger["matched"] is False and stranger["participant"]["user_id"] is None
    assert stranger["gallery_size"] == 1 and stranger["group_id"] == group

    photo = base64.b64encode((examples / "obama2.jpg").read_bytes()).decode()
    found = app.ok("POST", identify, json={"image": photo})
    assert found["matched"] is True and found["user_id"] == str(obama)
    assert found["similarity"] >= found["threshold"]
    assert found["participant"]["user_id"] == str(obama)
    # The registry routed both slots, and the embedding version is the one that enrolled Obama.
    serving = found["serving"]
    assert set(serving) == {"face_detection", "face_embedding"}
    assert serving["face_embedding"]["version"] == registered.json()["serving"]["face_embedding"]["version"]
    listed = app.ok("GET", f"{BASE}/meetings/{meeting_id}/participants")["items"]
    assert [p["user_id"] for p in listed] == [str(obama)]
    # The enrolled user may also join by id; another tenant's user may not.
    assert app.join(meeting_id, user_id=str(obama))
    assert_error(
        app.call("POST", f"{BASE}/meetings/{meeting_id}/participants", key=app.other_key, json={}),
        404,
        "MEETING_NOT_FOUND",
    )
    other_meeting = app.ok("POST", f"{BASE}/meetings", 201, key=app.other_key, json={"title": "Theirs"})
    other_id = other_meeting["meeting"]["meeting_id"]
    assert_error(
        app.call(
            "POST",
            f"{BASE}/meetings/{other_id}/participants",
            key=app.other_key,
            json={"user_id": str(obama)},
        ),
        404,
        "USER_NOT_FOUND",
    )
    # Another tenant cannot use this tenant's group for its meetings.
    assert_error(
        app.call("POST", f"{BASE}/meetings", key=app.other_key, json={"title": "t", "group_id": group}),
        404,
        "GROUP_NOT_FOUND",
    )


def test_the_routes_share_the_attention_rate_limit(tmp_path: Path) -> None:
    with profile("embedded", tmp_path, None) as settings:
        settings.rate_limits.enabled = True
        settings.rate_limits.limits["attention"] = RateLimit(rate_per_second=0.01, burst=3)
        container = Container(settings)
        container.prepare()
        key = container.keys.create("limited").secret
        headers = {"X-API-Key": key}
        with TestClient(create_app(container), raise_server_exceptions=False) as client:
            created = client.post(f"{BASE}/meetings", json={"title": "t"}, headers=headers)
            assert created.status_code == 201
            meeting = f"{BASE}/meetings/{created.json()['meeting']['meeting_id']}"
            assert client.get(meeting, headers=headers).status_code == 200
            assert client.get(f"{meeting}/alerts", headers=headers).status_code == 200
            blocked = client.get(f"{BASE}/meetings", headers=headers)
            assert_error(blocked, 429, "RATE_LIMITED")
            assert int(blocked.headers["Retry-After"]) >= 1
            # Another caller has its own budget.
            other = {"X-API-Key": container.keys.create("other").secret}
            assert client.get(f"{BASE}/meetings", headers=other).status_code == 200
        container.close()


def test_concurrent_transitions_happen_once_and_late_events_stay_closed(app: App) -> None:
    meeting_id = app.meeting()
    m = f"{BASE}/meetings/{meeting_id}"
    with ThreadPoolExecutor(max_workers=4) as pool:
        starts = list(pool.map(lambda _: app.call("POST", f"{m}/start"), range(4)))
    assert sorted(r.status_code for r in starts) == [200, 409, 409, 409]
    person = app.join(meeting_id)
    with ThreadPoolExecutor(max_workers=4) as pool:
        ends = list(pool.map(lambda _: app.call("POST", f"{m}/end"), range(4)))
    assert sorted(r.status_code for r in ends) == [200, 409, 409, 409]
    end_time = next(r for r in ends if r.status_code == 200).json()["meeting"]["end_time"]
    pk = uuid.UUID(meeting_id)
    with app.container.database.session(readonly=True) as session:
        assert session.scalar(select(func.count()).where(MeetingSummary.meeting_id == pk)) == 1

    # An event of an analysis still running after the end is stored resolved at the end.
    late = app.container.meetings.open_alert(pk, uuid.UUID(person), event("drowsy", "info", "opened", 3))
    alerts = app.ok("GET", f"{m}/alerts")["items"]
    assert [(a["alert_id"], a["resolved_at"]) for a in alerts] == [(str(late), end_time)]

    # An ended meeting whose summary write was lost gets it stored on the next read.
    with app.container.database.session() as session:
        session.execute(delete(MeetingSummary).where(MeetingSummary.meeting_id == pk))
    again = app.ok("GET", f"{m}/summary")["summary"]
    assert again["source"] == "stored" and again["participant_count"] == 1
    with app.container.database.session(readonly=True) as session:
        assert session.scalar(select(func.count()).where(MeetingSummary.meeting_id == pk)) == 1
