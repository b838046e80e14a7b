"""Rekognition actions on the platform's services, for one authenticated tenant.

Mapping (docs/rekognition.md):

* a **collection** is a face group of the caller's tenant whose name is the CollectionId;
* **IndexFaces** enrols each kept face as a new user of the tenant (one user per face, so
  DeleteFaces can erase exactly that face's biometric data through the GDPR erase path), a
  member of the collection's group; the FaceId is the platform's face id. ExternalImageId and
  ImageId are kept with the face (``face_attributes["rekognition"]``);
* searches and comparisons run ``RecognitionService.identify`` / ``verify`` and detection runs
  ``DetectionService.detect``, so model routing (production, canary, experiment arms),
  recognition sessions and inference records apply as on ``/api/v1``.

Consent: IndexFaces stores a biometric template. A platform API key is issued to a tenant that
has accepted the platform's terms, which oblige it to hold the data subject's consent before
enrolling a face (as every ``register`` with ``consent=true`` asserts); a call to IndexFaces is
that assertion. Rekognition's API has no consent field to carry it per call.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from typing import Any

import numpy as np
from PIL import Image
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from facesocial import errors
from facesocial.compat.rekognition import shapes
from facesocial.compat.rekognition.errors import RekognitionError, invalid_parameter, not_found
from facesocial.container import Container
from facesocial.services.context import RequestContext
from facesocial.services.detection import DetectionParams, DetectionResult
from facesocial.services.principal import Principal
from facesocial.services.serving_context import ServingScope
from facesocial.store import recognition_repository as repo
from facesocial.store.tables import FACE_ACTIVE, FaceData, FaceGroup, FaceGroupMember, User
from facesocial.store.tables_compat import REKOGNITION_SOURCE, RekognitionCollection
from facesocial.vision.image_pixels import exif_orientation
from facesocial.vision.ports import Embedder

# Rekognition's documented constraints (API reference, each action's request parameters).
COLLECTION_ID = re.compile(r"^[a-zA-Z0-9_.\-]{1,255}$")
EXTERNAL_IMAGE_ID = re.compile(r"^[a-zA-Z0-9_.\-:]{1,255}$")
FACE_ID = re.compile(r"^[0-9a-f-]{36}$")
# Minimum platform quality score (0..1, vision/quality.py) a face needs per QualityFilter.
QUALITY_FLOORS: dict[str, float] = {"NONE": 0.0, "LOW": 0.3, "AUTO": 0.5, "MEDIUM": 0.5, "HIGH": 0.7}
REGISTRATION_SOURCE = REKOGNITION_SOURCE
# The description of the face group CreateCollection makes (migration 0016 reads it).
COLLECTION_DESCRIPTION = "Rekognition collection"
# Rekognition's limits: DeleteFaces takes 1..4096 ids; list pages hold at most 4096 faces.
MAX_DELETE = 4096
MAX_PAGE = 4096


@dataclass(frozen=True, slots=True)
class Call:
    """One authenticated request: the caller, its context, its routing, its region."""

    container: Container
    caller: Principal
    ctx: RequestContext
    scope: ServingScope
    region: str


Action = Callable[[Call, dict[str, Any]], dict[str, Any]]


# --- parameters ------------------------------------------------------------------------------------
def _text(body: dict[str, Any], name: str, pattern: re.Pattern[str] | None = None) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise invalid_parameter(f"{name} is required (a string)")
    if pattern is not None and not pattern.match(value):
        raise invalid_parameter(f"{name} {value!r} does not match {pattern.pattern}")
    return value


def _int(body: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise invalid_parameter(f"{name} must be an integer in {low}..{high}")
    return value


def _percent(body: dict[str, Any], name: str, default: float) -> float:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
        raise invalid_parameter(f"{name} must be a number in 0..100")
    return float(value)


def _offset(body: dict[str, Any]) -> int:
    token = body.get("NextToken")
    if token is None:
        return 0
    if not isinstance(token, str) or not token.isdigit():
        raise invalid_parameter("NextToken is not a token this endpoint issued")
    return int(token)


def _attributes(body: dict[str, Any], name: str) -> bool:
    """Whether ``Attributes``/``DetectionAttributes`` asks for ALL (else DEFAULT)."""
    value = body.get(name, ["DEFAULT"])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise invalid_parameter(f"{name} must be a list of strings")
    unknown = [v for v in value if v not in ("DEFAULT", "ALL")]
    if unknown:
        # Rekognition's per-attribute names (AGE_RANGE, ...) came later; only these two are served.
        raise invalid_parameter(f"{name} supports DEFAULT and ALL, not {', '.join(unknown)}")
    return "ALL" in value


def image_bytes(body: dict[str, Any], name: str = "Image") -> bytes:
    """``{"Bytes": <base64>}`` -> bytes. S3Object (and anything else) is InvalidParameterException."""
    image = body.get(name)
    if not isinstance(image, dict):
        raise invalid_parameter(f"{name} is required")
    if "S3Object" in image:
        raise invalid_parameter(f"{name}.S3Object is not supported by this endpoint: send {name}.Bytes")
    raw = image.get("Bytes")
    if not isinstance(raw, str) or not raw:
        raise invalid_parameter(f"{name}.Bytes is required")
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise invalid_parameter(f"{name}.Bytes is not valid base64") from None


def image_size(data: bytes) -> tuple[int, int]:
    """Upright (width, height) in pixels (EXIF orientation applied, as the decoder does)."""
    try:
        with Image.open(BytesIO(data)) as image:
            width, height = image.size
            turned = exif_orientation(image) in (5, 6, 7, 8)
    except Exception:
        raise RekognitionError("InvalidImageFormatException", "Request has invalid image format") from None
    return (height, width) if turned else (width, height)


# --- collections -----------------------------------------------------------------------------------
def _find_collection(session: Session, tenant_id: uuid.UUID, name: str) -> FaceGroup | None:
    found: FaceGroup | None = session.scalars(
        repo.groups_of(tenant_id).where(FaceGroup.group_name == name).order_by(FaceGroup.created_at)
    ).first()
    return found


def _require_collection(call: Call, name: str) -> FaceGroup:
    with call.container.database.session(readonly=True) as session:
        group = _find_collection(session, call.caller.tenant_id, name)
        if group is None:
            raise not_found(f"The collection id: {name} does not exist")
        session.expunge(group)
        return group


def _arn(call: Call, name: str) -> str:
    return f"aws:rekognition:{call.region}:{call.caller.tenant_id.hex}:collection/{name}"


def _model_version(call: Call) -> str:
    """The embedding model this request is routed to (Rekognition's FaceModelVersion)."""
    return call.container.recognition.route(call.scope, None).embedder.model.tag


def create_collection(call: Call, body: dict[str, Any]) -> dict[str, Any]:
    """A new face group named ``CollectionId`` and its entry in ``compat.rekognition_collections``,
    in one transaction. The name is refused when any group of the tenant has it; the entry's
    unique (tenant, collection id) makes two concurrent calls of one name end with one success
    and one ``ResourceAlreadyExistsException``, across threads and server processes alike."""
    name = _text(body, "CollectionId", COLLECTION_ID)
    tenant_id = call.caller.tenant_id
    exists = RekognitionError("ResourceAlreadyExistsException", f"The collection id: {name} already exists")
    try:
        with call.container.database.session() as session:
            if _find_collection(session, tenant_id, name) is not None:
                raise exists
            group = FaceGroup(group_name=name, description=COLLECTION_DESCRIPTION, tenant_id=tenant_id)
            session.add(group)
            session.flush()
            session.add(RekognitionCollection(tenant_id=tenant_id, collection_id=name, group_id=group.id))
            session.flush()
    except IntegrityError:
        raise exists from None
    return {"StatusCode": 200, "CollectionArn": _arn(call, name), "FaceModelVersion": _model_version(call)}


def list_collections(call: Call, body: dict[str, Any]) -> dict[str, Any]:
    limit = _int(body, "MaxResults", 1000, 0, 4096)
    start = _offset(body)
    with call.container.database.session(readonly=True) as session:
        names = list(
            session.scalars(
                select(FaceGroup.group_name)
                .where(FaceGroup.tenant_id == call.caller.tenant_id)
                .order_by(FaceGroup.created_at, FaceGroup.id)
            )
        )
    page = names[start : start + limit]
    version = _model_version(call)
    out: dict[str, Any] = {"CollectionIds": page, "FaceModelVersions": [version] * len(page)}
    if start + limit < len(names):
        out["NextToken"] = str(start + limit)
    return out


def describe_collection(call: Call, body: dict[str, Any]) -> dict[str, Any]:
    name = _text(body, "CollectionId", COLLECTION_ID)
    group = _require_collection(call, name)
    with call.container.database.session(readonly=True) as session:
        count = len(_collection_faces(session, group.id))
    return {
        "FaceCount": count,
        "FaceModelVersion": _model_version(call),
        "CollectionARN": _arn(call, name),
        "CreationTimestamp": group.created_at.timestamp(),
    }


def delete_collection(call: Call, body: dict[str, Any]) -> dict[str, Any]:
    """Delete the collection's group; the group deletion erases every user IndexFaces made for
    it (their faces, vectors, chips), also faces indexed while it runs (services/groups.py).
    Users enrolled through ``/api/v1`` who were added to the group keep their data."""
    name = _text(body, "CollectionId", COLLECTION_ID)
    group = _require_collection(call, name)
    call.container.groups.delete(group.id, caller=call.caller)
    return {"StatusCode": 200}


def _erase(call: Call, user_id: uuid.UUID) -> None:
    # Erased meanwhile by another request: the goal is reached.
    with contextlib.suppress(errors.UserNotFoundError):
        call.container.users.erase(user_id, caller=call.caller)


# --- faces -----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class StoredFace:
    face_id: str  # Rekognition's FaceId: the face IndexFaces created (companions map to it)
    external_image_id: str | None
    image_id: str | None
    bounding_box: dict[str, float] | None
    confidence: float | None
    model_version: str

    def as_face(self) -> dict[str, Any]:
        face: dict[str, Any] = {"FaceId": self.face_id, "IndexFacesModelVersion": self.model_version}
        if self.bounding_box is not None:
            face["BoundingBox"] = self.bounding_box
        if self.image_id is not None:
            face["ImageId"] = self.image_id
        if self.external_image_id is not None:
            face["ExternalImageId"] = self.external_image_id
        if self.confidence is not None:
            face["Confidence"] = self.confidence
        return face


def _stored(row: FaceData) -> StoredFace:
    meta = (row.face_attributes or {}).get("rekognition") or {}
    return StoredFace(
        face_id=str(meta.get("face_id") or row.face_id),
        external_image_id=meta.get("external_image_id"),
        image_id=meta.get("image_id"),
        bounding_box=meta.get("bounding_box"),
        confidence=meta.get("confidence"),
        model_version=row.embedding_version,
    )


def _collection_faces(session: Session, group_id: uuid.UUID) -> list[StoredFace]:
    """The collection's active faces, one per Rekognition FaceId (companions folded), oldest first."""
    rows = session.scalars(
        select(FaceData)
        .join(FaceGroupMember, FaceGroupMember.face_id == FaceData.id)
        .join(User, User.user_id == FaceData.user_id)
        .where(
            FaceGroupMember.group_id == group_id, FaceData.status == FACE_ACTIVE, User.deleted_at.is_(None)
        )
        .order_by(FaceData.created_at, FaceData.id)
    ).all()
    seen: dict[str, StoredFace] = {}
    for row in rows:
        face = _stored(row)
        if face.face_id not in seen or row.face_id == face.face_id:
            seen[face.face_id] = face
    return list(seen.values())


def _faces_by_id(session: Session, tenant_id: uuid.UUID, face_ids: list[str]) -> dict[str, StoredFace]:
    """Platform face id -> its StoredFace, for the tenant's active faces among ``face_ids``."""
    if not face_ids:
        return {}
    rows = session.scalars(
        select(FaceData).where(
            FaceData.face_id.in_(face_ids), FaceData.tenant_id == tenant_id, FaceData.status == FACE_ACTIVE
        )
    ).all()
    return {row.face_id: _stored(row) for row in rows}


def _detect(call: Call, data: bytes, *, everything: bool) -> DetectionResult:
    """DetectionService with the 468-point mesh (pose, Rekognition's landmarks), or the 68-point
    markup where the mesh models are not installed; ``everything`` adds age, gender, emotions."""
    options = call.container.detect_defaults
    try:
        return call.container.detection.detect(
            data, DetectionParams(options, True, "468", everything), call.ctx, call.scope
        )
    except errors.ModelUnavailableError:
        return call.container.detection.detect(
            data, DetectionParams(options, True, "68", everything), call.ctx, call.scope
        )


def detect_faces(call: Call, body: dict[str, Any]) -> dict[str, Any]:
    data = image_bytes(body)
    everything = _attributes(body, "Attributes")
    result = _detect(call, data, everything=everything)
    width, height = int(result.image["width"]), int(result.image["height"])
    return {
        "FaceDetails": [
            shapes.face_detail(item, width, height, everything=everything) for item in result.faces
        ]
    }


def index_faces(call: Call, body: dict[str, Any]) -> dict[str, Any]:
    """Detect, keep faces by QualityFilter then size (MaxFaces), enrol each kept face."""
    name = _text(body, "CollectionId", COLLECTION_ID)
    external = body.get("ExternalImageId")
    if external is not None:
        external = _text(body, "ExternalImageId", EXTERNAL_IMAGE_ID)
    max_faces = _int(body, "MaxFaces", 100, 1, 100)
    quality_filter = body.get("QualityFilter", "AUTO")
    if quality_filter not in QUALITY_FLOORS:
        raise invalid_parameter(f"QualityFilter must be one of {', '.join(QUALITY_FLOORS)}")
    everything = _attributes(body, "DetectionAttributes")
    data = image_bytes(body)
    group = _require_collection(call, name)
    result = _detect(call, data, everything=everything)
    width, height = int(result.image["width"]), int(result.image["height"])
    image_id = str(uuid.uuid5(uuid.NAMESPACE_OID, result.request_id))
    floor = QUALITY_FLOORS[quality_filter]
    # Largest first: the platform's face_index 0 is the largest face (vision/probe.py).
    ordered = sorted(result.faces, key=lambda f: -(f["bbox"]["width"] * f["bbox"]["height"]))
    records: list[dict[str, Any]] = []
    unindexed: list[dict[str, Any]] = []
    for index, item in enumerate(ordered):
        detail = shapes.face_detail(item, width, height, everything=everything)
        score = float(item.get("quality", {}).get("score", 1.0))
        if score < floor:
            unindexed.append({"Reasons": ["LOW_QUALITY"], "FaceDetail": detail})
            continue
        if len(records) == max_faces:
            unindexed.append({"Reasons": ["EXCEEDS_MAX_FACES"], "FaceDetail": detail})
            continue
        outcome = call.container.recognition.register(
            uuid.uuid4(),
            data,
            consent=True,  # the tenant's acceptance of the platform terms (module docstring)
            caller=call.caller,
            ctx=call.ctx,
            face_index=index,
            group_id=group.id,
            registration_source=REGISTRATION_SOURCE,
            scope=call.scope,
        )
        face_id = str(outcome.body["face_id"])
        meta = {
            "face_id": face_id,
            "external_image_id": external,
            "image_id": image_id,
            "bounding_box": detail["BoundingBox"],
            "confidence": detail["Confidence"],
        }
        ids = [face_id, *(str(c["face_id"]) for c in outcome.body.get("companion_faces", []))]
        _annotate(call, ids, meta)
        stored = StoredFace(
            face_id,
            external,
            image_id,
            detail["BoundingBox"],
            detail["Confidence"],
            outcome.model_version or "",
        )
        records.append({"Face": stored.as_face(), "FaceDetail": detail})
    return {
        "FaceRecords": records,
        "FaceModelVersion": _model_version(call),
        "UnindexedFaces": unindexed,
    }


def _annotate(call: Call, face_ids: list[str], meta: dict[str, Any]) -> None:
    """Keep the Rekognition fields with the faces just enrolled (JSON column, merged)."""
    with call.container.database.session() as session:
        for row in session.scalars(select(FaceData).where(FaceData.face_id.in_(face_ids))).all():
            row.face_attributes = {**(row.face_attributes or {}), "rekognition": meta}


def list_faces(call: Call, body: dict[str, Any]) -> dict[str, Any]:
    name = _text(body, "CollectionId", COLLECTION_ID)
    limit = _int(body, "MaxResults", 1000, 0, MAX_PAGE)
    start = _offset(body)
    group = _require_collection(call, name)
    with call.container.database.session(readonly=True) as session:
        faces = _collection_faces(session, group.id)
    out: dict[str, Any] = {
        "Faces": [face.as_face() for face in faces[start : start + limit]],
        "FaceModelVersion": _model_version(call),
    }
    if start + limit < len(faces):
        out["NextToken"] = str(start + limit)
    return out


def delete_faces(call: Call, body: dict[str, Any]) -> dict[str, Any]:
    """Erase the user behind each FaceId (IndexFaces made one user per face): the face, its
    companions in other models' collections, its vectors and chip, through UserService.erase."""
    name = _text(body, "CollectionId", COLLECTION_ID)
    face_ids = body.get("FaceIds")
    if not isinstance(face_ids, list) or not 1 <= len(face_ids) <= MAX_DELETE:
        raise invalid_parameter(f"FaceIds must be a list of 1..{MAX_DELETE} face ids")
    if not all(isinstance(f, str) and FACE_ID.match(f) for f in face_ids):
        raise invalid_parameter("Every FaceId must be a face id (36 characters, 0-9a-f and -)")
    group = _require_collection(call, name)
    with call.container.database.session(readonly=True) as session:
        rows = session.execute(
            select(FaceData.face_id, User.external_id, FaceData.registration_source)
            .join(User, User.user_id == FaceData.user_id)
            .join(FaceGroupMember, FaceGroupMember.face_id == FaceData.id)
            .where(
                FaceGroupMember.group_id == group.id,
                FaceData.face_id.in_(face_ids),
                FaceData.tenant_id == call.caller.tenant_id,
                FaceData.status == FACE_ACTIVE,
            )
        ).all()
    owners = {face_id: (owner, source) for face_id, owner, source in rows}
    deleted: list[str] = []
    failed: list[dict[str, Any]] = []
    for face_id in dict.fromkeys(face_ids):
        found = owners.get(face_id)
        if found is None:
            failed.append({"FaceId": face_id, "Reasons": ["FACE_NOT_FOUND"]})
            continue
        if found[1] != REGISTRATION_SOURCE:
            # Enrolled through /api/v1: its user may hold other faces; erase it there instead.
            failed.append({"FaceId": face_id, "Reasons": ["ASSOCIATED_TO_AN_EXISTING_USER"]})
            continue
        _erase(call, found[0])
        deleted.append(face_id)
    out: dict[str, Any] = {"DeletedFaces": deleted}
    if failed:
        out["UnsuccessfulFaceDeletions"] = failed
    return out


def _identify_threshold(call: Call, embedder: Embedder) -> float:
    return call.container.recognition.thresholds(embedder).identify


def search_faces_by_image(call: Call, body: dict[str, Any]) -> dict[str, Any]:
    """The largest face of the image against the collection (RecognitionService.identify)."""
    name = _text(body, "CollectionId", COLLECTION_ID)
    max_faces = _int(body, "MaxFaces", 80, 1, 4096)
    wanted = _percent(body, "FaceMatchThreshold", shapes.DEFAULT_THRESHOLD)
    data = image_bytes(body)
    group = _require_collection(call, name)
    embedder = call.container.recognition.route(call.scope, None).embedder
    reference = _identify_threshold(call, embedder)
    top_k = min(max_faces, call.container.settings.identify_max_top_k)
    outcome = call.container.recognition.identify(
        data,
        caller=call.caller,
        ctx=call.ctx,
        top_k=top_k,
        group_id=group.id,
        threshold=shapes.to_cosine(wanted, reference),
        scope=call.scope,
    )
    width, height = image_size(data)
    face = outcome.body["face"]
    candidates = outcome.body["candidates"]
    with call.container.database.session(readonly=True) as session:
        stored = _faces_by_id(session, call.caller.tenant_id, [c["face_id"] for c in candidates])
    matches = [
        {
            "Similarity": shapes.to_similarity(float(c["similarity"]), reference),
            "Face": stored[c["face_id"]].as_face(),
        }
        for c in candidates
        if c["face_id"] in stored
    ]
    return {
        "SearchedFaceBoundingBox": shapes.bounding_box(face["bbox"], width, height),
        "SearchedFaceConfidence": round(float(face["confidence"]) * 100, 4),
        "FaceMatches": matches,
        "FaceModelVersion": outcome.model_version or embedder.model.tag,
    }


def search_faces(call: Call, body: dict[str, Any]) -> dict[str, Any]:
    """A stored face against the rest of its collection: its own vector searched in its model's
    collection, within the group, within the tenant's partition. No inference runs."""
    name = _text(body, "CollectionId", COLLECTION_ID)
    face_id = _text(body, "FaceId", FACE_ID)
    max_faces = _int(body, "MaxFaces", 80, 1, 4096)
    wanted = _percent(body, "FaceMatchThreshold", shapes.DEFAULT_THRESHOLD)
    group = _require_collection(call, name)
    recognition = call.container.recognition
    with call.container.database.session(readonly=True) as session:
        row = session.scalars(
            select(FaceData)
            .join(FaceGroupMember, FaceGroupMember.face_id == FaceData.id)
            .where(
                FaceGroupMember.group_id == group.id,
                FaceData.face_id == face_id,
                FaceData.tenant_id == call.caller.tenant_id,
                FaceData.status == FACE_ACTIVE,
            )
        ).first()
        if row is None:
            raise not_found(f"The face id: {face_id} does not exist in the collection {name}")
        searched = _stored(row)
        collection, vector = row.milvus_collection, np.frombuffer(row.embedding, dtype=np.float32)
        allowed = repo.group_face_ids(session, group.id, collection)
    embedders = recognition.route(call.scope, None).embedders
    embedder = next((e for e in embedders.values() if e.collection == collection), None)
    if embedder is None:
        raise RekognitionError(
            "ServiceUnavailableException", f"The model of face {face_id} is not installed", 503
        )
    reference = _identify_threshold(call, embedder)
    floor = shapes.to_cosine(wanted, reference)
    hits = call.container.index.search(
        collection, vector[None, :], min(max_faces + 1, 4096), allowed, partition=str(call.caller.tenant_id)
    )[0]
    passing = [hit for hit in hits if hit.id != face_id and hit.score >= floor][:max_faces]
    with call.container.database.session(readonly=True) as session:
        stored = _faces_by_id(session, call.caller.tenant_id, [hit.id for hit in passing])
    matches = [
        {"Similarity": shapes.to_similarity(float(hit.score), reference), "Face": stored[hit.id].as_face()}
        for hit in passing
        if hit.id in stored
    ]
    return {
        "SearchedFaceId": searched.face_id,
        "FaceMatches": matches,
        "FaceModelVersion": embedder.model.tag,
    }


def compare_faces(call: Call, body: dict[str, Any]) -> dict[str, Any]:
    """The source's largest face against every face of the target (RecognitionService.verify
    once per target face; the same routed detector and embedder for all)."""
    wanted = _percent(body, "SimilarityThreshold", shapes.DEFAULT_THRESHOLD)
    quality_filter = body.get("QualityFilter", "NONE")
    if quality_filter not in QUALITY_FLOORS:
        raise invalid_parameter(f"QualityFilter must be one of {', '.join(QUALITY_FLOORS)}")
    source = image_bytes(body, "SourceImage")
    target = image_bytes(body, "TargetImage")
    target_faces = _detect(call, target, everything=False)
    width, height = int(target_faces.image["width"]), int(target_faces.image["height"])
    source_width, source_height = image_size(source)
    embedder = call.container.recognition.route(call.scope, None).embedder
    reference = _identify_threshold(call, embedder)
    floor = QUALITY_FLOORS[quality_filter]
    matched: list[dict[str, Any]] = []
    unmatched: list[dict[str, Any]] = []
    source_face: dict[str, Any] | None = None
    ordered = sorted(target_faces.faces, key=lambda f: -(f["bbox"]["width"] * f["bbox"]["height"]))
    for index, item in enumerate(ordered[:100]):  # Rekognition compares at most 100 target faces
        compared = shapes.compact_face(shapes.face_detail(item, width, height, everything=False))
        if float(item.get("quality", {}).get("score", 1.0)) < floor:
            continue
        outcome = call.container.recognition.verify(
            target, caller=call.caller, ctx=call.ctx, other=source, face_index=index,
            threshold=shapes.to_cosine(wanted, reference), scope=call.scope,
        )  # fmt: skip
        source_face = source_face or outcome.body["face2"]
        similarity = shapes.to_similarity(float(outcome.body["similarity"]), reference)
        if similarity >= wanted:  # on Rekognition's scale, so SimilarityThreshold=0 matches every face
            matched.append({"Similarity": similarity, "Face": compared})
        else:
            unmatched.append(compared)
    if source_face is None:
        # No target face to compare with: the source must still hold a face (Rekognition's rule).
        probe = call.container.recognition.probe(source, None, require_single=False)
        source_face = probe.describe()
    return {
        "SourceImageFace": {
            "BoundingBox": shapes.bounding_box(source_face["bbox"], source_width, source_height),
            "Confidence": round(float(source_face["confidence"]) * 100, 4),
        },
        "FaceMatches": sorted(matched, key=lambda m: -m["Similarity"]),
        "UnmatchedFaces": unmatched,
    }


# The actions served, by X-Amz-Target operation name.
ACTIONS: dict[str, Action] = {
    "CreateCollection": create_collection,
    "ListCollections": list_collections,
    "DescribeCollection": describe_collection,
    "DeleteCollection": delete_collection,
    "IndexFaces": index_faces,
    "ListFaces": list_faces,
    "DeleteFaces": delete_faces,
    "SearchFacesByImage": search_faces_by_image,
    "SearchFaces": search_faces,
    "CompareFaces": compare_faces,
    "DetectFaces": detect_faces,
}
