"""``/api/v1/face-recognition``: register, verify, identify, users, face groups."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from facesocial import errors
from facesocial.api.deps import CallerDep, ContainerDep, ContextDep, DecodeGateDep, rate_limited
from facesocial.api.forms import GroupCreate, IdentifyForm, MembersAdd, RegisterForm, VerifyForm
from facesocial.api.image_input import image_form
from facesocial.api.openapi import IMAGE_ERRORS, error_responses, image_request_body
from facesocial.api.routing import ApiRoute
from facesocial.api.schemas import (
    EraseResponse,
    GroupCreated,
    GroupDeleted,
    GroupList,
    GroupResponse,
    IdentifyResponse,
    RegisterResponse,
    UserResponse,
    VerifyResponse,
)
from facesocial.services.outcome import Outcome
from facesocial.services.serving_context import ServingScope

router = APIRouter(
    prefix="/api/v1/face-recognition",
    tags=["face-recognition"],
    route_class=ApiRoute,
    redirect_slashes=False,
    dependencies=[Depends(rate_limited("face_recognition"))],
)

# Finding and embedding the face a request is about (vision/probe.py, the embedder registry).
_PROBE_ERRORS = (
    *IMAGE_ERRORS,
    errors.NoFaceFoundError,
    errors.FaceIndexOutOfRangeError,
    errors.UnknownModelError,
    errors.ModelUnavailableError,
)


def _ok(request: Request, outcome: Outcome) -> dict[str, Any]:
    request.state.outcome = outcome
    return {"success": True, **outcome.body}


@router.post(
    "/register",
    name="register",
    response_model=None,
    openapi_extra=image_request_body(RegisterForm),
    responses={
        200: {"model": RegisterResponse},
        **error_responses(
            *_PROBE_ERRORS,
            errors.MultipleFacesError,
            errors.ConsentRequiredError,
            errors.GroupNotFoundError,
            errors.LivenessRequiredError,
            errors.LivenessSessionInvalidError,
            errors.LivenessSessionNotFoundError,
        ),
    },
)
def register(
    request: Request,
    container: ContainerDep,
    caller: CallerDep,
    ctx: ContextDep,
    gate: DecodeGateDep,
    form: Annotated[RegisterForm, image_form(RegisterForm)],
) -> dict[str, Any]:
    """Enrol one face of a user (creates the user on first enrolment)."""
    with gate.admit(form.pixel_weight(container.settings.limits)):
        outcome = container.recognition.register(
            form.user_id,
            form.image.data,
            consent=form.consent,
            caller=caller,
            ctx=ctx,
            face_index=form.face_index,
            group_id=form.group_id,
            registration_source=form.registration_source,
            model=form.embedding_model,
            liveness_session=form.liveness_session,
            scope=ServingScope.for_request(container, caller, request.headers),
        )
    return _ok(request, outcome)


@router.post(
    "/verify",
    name="verify",
    response_model=None,
    openapi_extra=image_request_body(VerifyForm),
    responses={
        200: {"model": VerifyResponse},
        **error_responses(
            *_PROBE_ERRORS,
            errors.UserNotFoundError,
            errors.LivenessSessionInvalidError,
            errors.LivenessSessionNotFoundError,
        ),
    },
)
def verify(
    request: Request,
    container: ContainerDep,
    caller: CallerDep,
    ctx: ContextDep,
    gate: DecodeGateDep,
    form: Annotated[VerifyForm, image_form(VerifyForm)],
) -> dict[str, Any]:
    """1:1 — is the face in ``image`` the user ``user_id`` (or the face in ``image2``)?"""
    with gate.admit(form.pixel_weight(container.settings.limits)):
        outcome = container.recognition.verify(
            form.image.data,
            caller=caller,
            ctx=ctx,
            user_id=form.user_id,
            other=form.image2.data if form.image2 is not None else None,
            mode=form.mode or "balanced",
            threshold=form.threshold,
            face_index=form.face_index,
            model=form.embedding_model,
            liveness_session=form.liveness_session,
            scope=ServingScope.for_request(container, caller, request.headers),
        )
    return _ok(request, outcome)


@router.post(
    "/identify",
    name="identify",
    response_model=None,
    openapi_extra=image_request_body(IdentifyForm),
    responses={
        200: {"model": IdentifyResponse},
        **error_responses(*_PROBE_ERRORS, errors.GroupNotFoundError),
    },
)
def identify(
    request: Request,
    container: ContainerDep,
    caller: CallerDep,
    ctx: ContextDep,
    gate: DecodeGateDep,
    form: Annotated[IdentifyForm, image_form(IdentifyForm)],
) -> dict[str, Any]:
    """1:N — who is this? Ranked candidates above the threshold, or ``unknown``."""
    with gate.admit(form.pixel_weight(container.settings.limits)):
        outcome = container.recognition.identify(
            form.image.data,
            caller=caller,
            ctx=ctx,
            top_k=form.top_k,
            group_id=form.group_id,
            threshold=form.threshold,
            face_index=form.face_index,
            model=form.embedding_model,
            scope=ServingScope.for_request(container, caller, request.headers),
        )
    return _ok(request, outcome)


@router.get(
    "/users/{user_id}",
    name="get_user",
    response_model=None,
    responses={200: {"model": UserResponse}, **error_responses(errors.UserNotFoundError)},
)
def get_user(container: ContainerDep, caller: CallerDep, user_id: uuid.UUID) -> dict[str, Any]:
    return {"success": True, **container.users.get(user_id, caller=caller)}


@router.delete(
    "/users/{user_id}",
    name="erase_user",
    response_model=None,
    # SERVER_BUSY: another request held this user's write lock too long (store/user_locks.py).
    responses={
        200: {"model": EraseResponse},
        **error_responses(errors.UserNotFoundError, errors.ServerBusyError),
    },
)
def erase_user(
    request: Request, container: ContainerDep, caller: CallerDep, user_id: uuid.UUID
) -> dict[str, Any]:
    """GDPR erasure: the user, their faces, chips, sessions, group memberships, cache and vectors."""
    return _ok(request, container.users.erase(user_id, caller=caller))


# --- face groups -----------------------------------------------------------------------------------


@router.post(
    "/groups",
    name="create_group",
    response_model=None,
    status_code=201,
    responses={201: {"model": GroupCreated}, **error_responses(errors.UserNotFoundError)},
)
def create_group(container: ContainerDep, caller: CallerDep, body: GroupCreate) -> dict[str, Any]:
    group = container.groups.create(
        body.group_name,
        caller=caller,
        description=body.description,
        privacy_level=body.privacy_level,
        owner=body.user_id,
    )
    return {"success": True, "group": group}


@router.get("/groups", name="list_groups", response_model=None, responses={200: {"model": GroupList}})
def list_groups(
    container: ContainerDep,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    groups = container.groups.list(caller=caller)
    return {"success": True, "total": len(groups), "groups": groups[offset : offset + limit]}


@router.get(
    "/groups/{group_id}",
    name="get_group",
    response_model=None,
    responses={200: {"model": GroupResponse}, **error_responses(errors.GroupNotFoundError)},
)
def get_group(container: ContainerDep, caller: CallerDep, group_id: uuid.UUID) -> dict[str, Any]:
    return {"success": True, "group": container.groups.get(group_id, caller=caller)}


@router.delete(
    "/groups/{group_id}",
    name="delete_group",
    response_model=None,
    responses={200: {"model": GroupDeleted}, **error_responses(errors.GroupNotFoundError)},
)
def delete_group(container: ContainerDep, caller: CallerDep, group_id: uuid.UUID) -> dict[str, Any]:
    container.groups.delete(group_id, caller=caller)
    return {"success": True, "group_id": str(group_id), "deleted": True}


@router.post(
    "/groups/{group_id}/members",
    name="add_group_members",
    response_model=None,
    responses={
        200: {"model": GroupResponse},
        **error_responses(errors.GroupNotFoundError, errors.UserNotFoundError),
    },
)
def add_members(
    container: ContainerDep, caller: CallerDep, group_id: uuid.UUID, body: MembersAdd
) -> dict[str, Any]:
    """Add users (all their enrolled faces) to a group."""
    return {"success": True, "group": container.groups.add_members(group_id, body.user_ids, caller=caller)}


@router.delete(
    "/groups/{group_id}/members/{user_id}",
    name="remove_group_member",
    response_model=None,
    responses={
        200: {"model": GroupResponse},
        **error_responses(errors.GroupNotFoundError, errors.UserNotFoundError),
    },
)
def remove_member(
    container: ContainerDep, caller: CallerDep, group_id: uuid.UUID, user_id: uuid.UUID
) -> dict[str, Any]:
    return {"success": True, "group": container.groups.remove_member(group_id, user_id, caller=caller)}
