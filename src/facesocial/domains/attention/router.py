"""``/api/v1/attention``: meetings, participants, alerts, summaries and metrics (document 004).

Every id is the caller tenant's: another tenant's meeting, participant or alert is answered with
the 404 of its kind, never 403. The live WebSocket (ws.py) and the recordings (recordings_router.py)
have routers of their own under the same prefix.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from facesocial import errors
from facesocial.api.deps import CallerDep, ContainerDep, ContextDep, DecodeGateDep, rate_limited
from facesocial.api.forms import ONE_LINE_TEXT, Description
from facesocial.api.image_input import ImageForm, ImageUpload, image_form
from facesocial.api.openapi import IMAGE_ERRORS, error_responses, image_request_body
from facesocial.api.routing import ApiRoute
from facesocial.services.serving_context import ServingScope

router = APIRouter(
    prefix="/api/v1/attention",
    tags=["attention"],
    route_class=ApiRoute,
    redirect_slashes=False,
    dependencies=[Depends(rate_limited("attention"))],
)
# Pages beyond this are refused (422), not passed to SQL (an offset beyond 2^63 is a 500 there).
_MAX_PAGE = 100_000
# Metric rows one request returns at most (raw: 1 row per participant per second ≈ 3 h of one).
_MAX_METRICS = 10_000

Title = Annotated[str, StringConstraints(strip_whitespace=True, max_length=255), ONE_LINE_TEXT]
DisplayName = Annotated[str, StringConstraints(strip_whitespace=True, max_length=255), ONE_LINE_TEXT]
AlertType = Literal["not_attentive", "looking_away", "drowsy"]
Severity = Literal["info", "warning", "critical"]

_MEETING = error_responses(errors.MeetingNotFoundError)
_PARTICIPANT = error_responses(errors.MeetingNotFoundError, errors.ParticipantNotFoundError)


class MeetingCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title
    description: Description | None = None
    group_id: uuid.UUID | None = Field(
        default=None, description="A face group of the tenant: participants are identified against it"
    )


class MeetingPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    description: Description | None = None
    group_id: uuid.UUID | None = Field(default=None, description="null removes the meeting's group")


class ParticipantJoin(BaseModel):
    model_config = ConfigDict(extra="forbid")

    display_name: DisplayName | None = None
    user_id: uuid.UUID | None = Field(default=None, description="An enrolled user of the tenant")


class IdentifyParticipantForm(ImageForm):
    image: ImageUpload = Field(description="A photo of the participant's face")
    threshold: float | None = Field(
        default=None, ge=-1.0, le=1.0, description="Similarity a match needs (default: the model's)"
    )
    face_index: int | None = Field(default=None, ge=0, description="Which face, when there are several")


@router.post(
    "/meetings",
    name="create_meeting",
    response_model=None,
    status_code=201,
    responses=error_responses(errors.GroupNotFoundError),
)
def create_meeting(container: ContainerDep, caller: CallerDep, body: MeetingCreate) -> dict[str, Any]:
    """Schedule a meeting (status ``scheduled``)."""
    meeting = container.meetings.create(
        caller, title=body.title, description=body.description, group_id=body.group_id
    )
    return {"success": True, "meeting": meeting}


@router.get("/meetings", name="list_meetings", response_model=None)
def list_meetings(
    container: ContainerDep,
    caller: CallerDep,
    page: Annotated[int, Query(ge=1, le=_MAX_PAGE)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
    status: Annotated[Literal["scheduled", "active", "ended"] | None, Query()] = None,
) -> dict[str, Any]:
    """The tenant's meetings, newest first (``total`` counts every match of the filter)."""
    return {"success": True, **container.meetings.page(caller, page, page_size, status)}


@router.get("/meetings/{meeting_id}", name="get_meeting", response_model=None, responses=_MEETING)
def get_meeting(container: ContainerDep, caller: CallerDep, meeting_id: str) -> dict[str, Any]:
    """The meeting with its participant and open-alert counts."""
    return {"success": True, "meeting": container.meetings.describe(meeting_id, caller)}


@router.patch(
    "/meetings/{meeting_id}",
    name="update_meeting",
    response_model=None,
    responses=error_responses(errors.MeetingNotFoundError, errors.GroupNotFoundError),
)
def update_meeting(
    container: ContainerDep, caller: CallerDep, meeting_id: str, body: MeetingPatch
) -> dict[str, Any]:
    """Change the fields present in the body (title, description, group_id)."""
    changes = body.model_dump(exclude_unset=True)
    if changes.get("title", "") is None:
        raise errors.ValidationFailedError("title cannot be null")
    return {"success": True, "meeting": container.meetings.update(meeting_id, caller, changes)}


@router.delete("/meetings/{meeting_id}", name="delete_meeting", response_model=None, responses=_MEETING)
def delete_meeting(container: ContainerDep, caller: CallerDep, meeting_id: str) -> dict[str, Any]:
    """Erase the meeting, its participants, alerts, summary and metrics."""
    return {"success": True, **container.meetings.delete(meeting_id, caller)}


@router.post(
    "/meetings/{meeting_id}/start",
    name="start_meeting",
    response_model=None,
    responses=error_responses(errors.MeetingNotFoundError, errors.InvalidMeetingTransitionError),
)
def start_meeting(container: ContainerDep, caller: CallerDep, meeting_id: str) -> dict[str, Any]:
    """``scheduled`` → ``active``; ``start_time`` is now."""
    return {"success": True, "meeting": container.meetings.start(meeting_id, caller)}


@router.post(
    "/meetings/{meeting_id}/end",
    name="end_meeting",
    response_model=None,
    responses=error_responses(errors.MeetingNotFoundError, errors.InvalidMeetingTransitionError),
)
def end_meeting(container: ContainerDep, caller: CallerDep, meeting_id: str) -> dict[str, Any]:
    """``active`` → ``ended``: closes open alerts and present participants, stores the summary."""
    return {"success": True, "meeting": container.meetings.end(meeting_id, caller)}


@router.get("/meetings/{meeting_id}/summary", name="get_summary", response_model=None, responses=_MEETING)
def get_summary(container: ContainerDep, caller: CallerDep, meeting_id: str) -> dict[str, Any]:
    """Stored at the end (``source`` "stored"); before it, computed now (``source`` "live")."""
    return {"success": True, "summary": container.meetings.summary(meeting_id, caller)}


@router.get("/meetings/{meeting_id}/metrics", name="get_metrics", response_model=None, responses=_PARTICIPANT)
def get_metrics(
    container: ContainerDep,
    caller: CallerDep,
    meeting_id: str,
    participant_id: Annotated[str | None, Query(max_length=64)] = None,
    start: Annotated[AwareDatetime | None, Query()] = None,
    end: Annotated[AwareDatetime | None, Query()] = None,
    resolution: Annotated[Literal["raw", "minute"], Query()] = "minute",
    limit: Annotated[int, Query(ge=1, le=_MAX_METRICS)] = 1000,
) -> dict[str, Any]:
    """Scores over time: per-sample rows (``raw``) or 1-minute roll-ups (``minute``), oldest first."""
    start, end = _utc(start, "start"), _utc(end, "end")
    if start is not None and end is not None and end < start:
        raise errors.ValidationFailedError("end is before start")
    found = container.meetings.metrics(
        meeting_id,
        caller,
        participant_id=participant_id,
        start=start,
        end=end,
        resolution=resolution,
        limit=limit,
    )
    return {"success": True, **found}


def _utc(value: datetime | None, name: str) -> datetime | None:
    # 0001-01-01T00:00:00+01:00 parses, but is before the first representable UTC instant.
    try:
        return value.astimezone(UTC) if value is not None else None
    except OverflowError:
        raise errors.ValidationFailedError(f"{name} is out of the representable range") from None


# --- participants ------------------------------------------------------------------------------------


@router.post(
    "/meetings/{meeting_id}/participants",
    name="join_meeting",
    response_model=None,
    status_code=201,
    responses=error_responses(
        errors.MeetingNotFoundError, errors.MeetingEndedError, errors.UserNotFoundError
    ),
)
def join_meeting(
    container: ContainerDep, caller: CallerDep, meeting_id: str, body: ParticipantJoin
) -> dict[str, Any]:
    """A participant joins (now) a scheduled or active meeting."""
    person = container.meetings.add_participant(
        meeting_id, caller, display_name=body.display_name, user_id=body.user_id
    )
    return {"success": True, "participant": person}


@router.get(
    "/meetings/{meeting_id}/participants", name="list_participants", response_model=None, responses=_MEETING
)
def list_participants(
    container: ContainerDep,
    caller: CallerDep,
    meeting_id: str,
    active: Annotated[bool | None, Query(description="Only present (true) or departed (false) ones")] = None,
) -> dict[str, Any]:
    """The meeting's participants in joining order."""
    return {"success": True, **container.meetings.participants(meeting_id, caller, active)}


@router.post(
    "/meetings/{meeting_id}/participants/{participant_id}/leave",
    name="leave_meeting",
    response_model=None,
    responses=error_responses(
        errors.MeetingNotFoundError, errors.ParticipantNotFoundError, errors.ParticipantNotActiveError
    ),
)
def leave_meeting(
    container: ContainerDep, caller: CallerDep, meeting_id: str, participant_id: str
) -> dict[str, Any]:
    """The participant leaves now."""
    return {
        "success": True,
        "participant": container.meetings.leave_participant(meeting_id, participant_id, caller),
    }


@router.post(
    "/meetings/{meeting_id}/participants/{participant_id}/identify",
    name="identify_participant",
    response_model=None,
    openapi_extra=image_request_body(IdentifyParticipantForm),
    responses=error_responses(
        *IMAGE_ERRORS,
        errors.NoFaceFoundError,
        errors.FaceIndexOutOfRangeError,
        errors.MeetingNotFoundError,
        errors.ParticipantNotFoundError,
        errors.GroupNotFoundError,
    ),
)
def identify_participant(
    request: Request,
    container: ContainerDep,
    caller: CallerDep,
    ctx: ContextDep,
    gate: DecodeGateDep,
    meeting_id: str,
    participant_id: str,
    form: Annotated[IdentifyParticipantForm, image_form(IdentifyParticipantForm)],
) -> dict[str, Any]:
    """Who is this participant? Identify the face against the meeting's group and bind the match.

    No match is not an error: 200 with ``matched`` false and the participant unchanged.
    """
    with gate.admit(form.pixel_weight(container.settings.limits)):
        found = container.meetings.identify_participant(
            meeting_id,
            participant_id,
            form.image.data,
            caller,
            ctx,
            face_index=form.face_index,
            threshold=form.threshold,
            scope=ServingScope.for_request(container, caller, request.headers),
        )
    return {"success": True, **found}


# --- alerts ------------------------------------------------------------------------------------------


@router.get("/meetings/{meeting_id}/alerts", name="list_alerts", response_model=None, responses=_PARTICIPANT)
def list_alerts(
    container: ContainerDep,
    caller: CallerDep,
    meeting_id: str,
    alert_type: Annotated[AlertType | None, Query(alias="type")] = None,
    severity: Annotated[Severity | None, Query()] = None,
    state: Annotated[Literal["open", "resolved"] | None, Query()] = None,
    participant_id: Annotated[str | None, Query(max_length=64)] = None,
    page: Annotated[int, Query(ge=1, le=_MAX_PAGE)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 50,
) -> dict[str, Any]:
    """The meeting's alerts, newest first, filtered by type, severity, state and participant."""
    found = container.meetings.alerts(
        meeting_id,
        caller,
        alert_type=alert_type,
        severity=severity,
        resolved=None if state is None else state == "resolved",
        participant_id=participant_id,
        page=page,
        page_size=page_size,
    )
    return {"success": True, **found}


@router.post(
    "/meetings/{meeting_id}/alerts/{alert_id}/resolve",
    name="resolve_alert",
    response_model=None,
    responses=error_responses(
        errors.MeetingNotFoundError, errors.AlertNotFoundError, errors.AlertAlreadyResolvedError
    ),
)
def resolve_alert(
    container: ContainerDep, caller: CallerDep, meeting_id: str, alert_id: str
) -> dict[str, Any]:
    """Resolve an open alert now."""
    return {"success": True, "alert": container.meetings.resolve_alert(meeting_id, alert_id, caller)}
