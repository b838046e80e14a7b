"""``/api/v1/face-recognition``: register, verify, identify, users, face groups."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from pydantic import BaseModel, Field

from facesocial.api.deps import CallerDep, ContainerDep, ContextDep, rate_limited, read_upload
from facesocial.services.outcome import Outcome

router = APIRouter(
    prefix="/api/v1/face-recognition",
    tags=["face-recognition"],
    dependencies=[Depends(rate_limited("face_recognition"))],
)

FaceIndex = Annotated[
    int | None,
    Form(
        ge=0,
        description="Which detected face to use (0 = largest). Needed at registration "
        "when the image holds several faces.",
    ),
]
EmbeddingModel = Annotated[
    str | None,
    Form(
        max_length=64,
        description="Embedding model (default: the configured one); a gallery is bound to its model",
    ),
]
Threshold = Annotated[
    float | None, Form(ge=-1.0, le=1.0, description="Override the calibrated cosine threshold")
]


def _ok(request: Request, outcome: Outcome) -> dict[str, Any]:
    request.state.outcome = outcome
    return {"success": True, **outcome.body}


@router.post("/register", name="register")
def register(
    request: Request,
    container: ContainerDep,
    caller: CallerDep,
    ctx: ContextDep,
    user_id: Annotated[uuid.UUID, Form()],
    image: Annotated[UploadFile, File()],
    consent: Annotated[bool, Form(description="The user agreed to biometric enrolment")] = False,
    face_index: FaceIndex = None,
    group_id: Annotated[uuid.UUID | None, Form()] = None,
    registration_source: Annotated[str | None, Form(max_length=50)] = None,
    embedding_model: EmbeddingModel = None,
) -> dict[str, Any]:
    """Enrol one face of a user (creates the user on first enrolment)."""
    data = read_upload(image, container)
    outcome = container.recognition.register(
        user_id,
        data,
        consent=consent,
        caller=caller,
        ctx=ctx,
        face_index=face_index,
        group_id=group_id,
        registration_source=registration_source,
        model=embedding_model,
    )
    return _ok(request, outcome)


@router.post("/verify", name="verify")
def verify(
    request: Request,
    container: ContainerDep,
    caller: CallerDep,
    ctx: ContextDep,
    image: Annotated[UploadFile, File()],
    user_id: Annotated[uuid.UUID | None, Form()] = None,
    image2: Annotated[UploadFile | None, File()] = None,
    mode: Annotated[Literal["balanced", "strict"], Form()] = "balanced",
    threshold: Threshold = None,
    face_index: FaceIndex = None,
    embedding_model: EmbeddingModel = None,
) -> dict[str, Any]:
    """1:1 — is the face in ``image`` the user ``user_id`` (or the face in ``image2``)?"""
    data = read_upload(image, container)
    other = read_upload(image2, container) if image2 is not None else None
    outcome = container.recognition.verify(
        data,
        caller=caller,
        ctx=ctx,
        user_id=user_id,
        other=other,
        mode=mode,
        threshold=threshold,
        face_index=face_index,
        model=embedding_model,
    )
    return _ok(request, outcome)


@router.post("/identify", name="identify")
def identify(
    request: Request,
    container: ContainerDep,
    caller: CallerDep,
    ctx: ContextDep,
    image: Annotated[UploadFile, File()],
    top_k: Annotated[int, Form(ge=1, le=100)] = 5,
    group_id: Annotated[uuid.UUID | None, Form()] = None,
    threshold: Threshold = None,
    face_index: FaceIndex = None,
    embedding_model: EmbeddingModel = None,
) -> dict[str, Any]:
    """1:N — who is this? Ranked candidates above the threshold, or ``unknown``."""
    data = read_upload(image, container)
    outcome = container.recognition.identify(
        data,
        caller=caller,
        ctx=ctx,
        top_k=top_k,
        group_id=group_id,
        threshold=threshold,
        face_index=face_index,
        model=embedding_model,
    )
    return _ok(request, outcome)


@router.get("/users/{user_id}", name="get_user")
def get_user(container: ContainerDep, caller: CallerDep, user_id: uuid.UUID) -> dict[str, Any]:
    return {"success": True, **container.users.get(user_id, caller=caller)}


@router.delete("/users/{user_id}", name="erase_user")
def erase_user(
    request: Request, container: ContainerDep, caller: CallerDep, user_id: uuid.UUID
) -> dict[str, Any]:
    """GDPR erasure: the user, their faces, chips, sessions, group memberships, cache and vectors."""
    return _ok(request, container.users.erase(user_id, caller=caller))


# --- face groups -----------------------------------------------------------------------------------


class GroupCreate(BaseModel):
    group_name: str = Field(min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=2000)
    privacy_level: Literal["public", "friends", "private"] = "private"
    user_id: uuid.UUID | None = Field(default=None, description="Owner (an enrolled user)")


class MembersAdd(BaseModel):
    user_ids: list[uuid.UUID] = Field(min_length=1, max_length=1000)


@router.post("/groups", name="create_group", status_code=201)
def create_group(container: ContainerDep, caller: CallerDep, body: GroupCreate) -> dict[str, Any]:
    group = container.groups.create(
        body.group_name,
        caller=caller,
        description=body.description,
        privacy_level=body.privacy_level,
        owner=body.user_id,
    )
    return {"success": True, "group": group}


@router.get("/groups", name="list_groups")
def list_groups(
    container: ContainerDep,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    groups = container.groups.list(caller=caller)
    return {"success": True, "total": len(groups), "groups": groups[offset : offset + limit]}


@router.get("/groups/{group_id}", name="get_group")
def get_group(container: ContainerDep, caller: CallerDep, group_id: uuid.UUID) -> dict[str, Any]:
    return {"success": True, "group": container.groups.get(group_id, caller=caller)}


@router.delete("/groups/{group_id}", name="delete_group")
def delete_group(container: ContainerDep, caller: CallerDep, group_id: uuid.UUID) -> dict[str, Any]:
    container.groups.delete(group_id, caller=caller)
    return {"success": True, "group_id": str(group_id), "deleted": True}


@router.post("/groups/{group_id}/members", name="add_group_members")
def add_members(
    container: ContainerDep, caller: CallerDep, group_id: uuid.UUID, body: MembersAdd
) -> dict[str, Any]:
    """Add users (all their enrolled faces) to a group."""
    return {"success": True, "group": container.groups.add_members(group_id, body.user_ids, caller=caller)}


@router.delete("/groups/{group_id}/members/{user_id}", name="remove_group_member")
def remove_member(
    container: ContainerDep, caller: CallerDep, group_id: uuid.UUID, user_id: uuid.UUID
) -> dict[str, Any]:
    return {"success": True, "group": container.groups.remove_member(group_id, user_id, caller=caller)}
