"""CompreFace-compatible REST API: recognition, detection and verification services.

Paths, parameters and bodies follow CompreFace's ``docs/Rest-API-description.md``; the key
is sent as ``x-api-key`` (header names are case-insensitive: the platform's ``X-API-Key``), and
one platform key serves all three CompreFace services. Everything runs through the platform's
services (``container.recognition``, ``container.detection``), so model routing, audit rows,
tenancy and limits apply as on ``/api/v1/face-recognition``. Errors are rewritten to
``{"message", "code"}`` by :mod:`facesocial.compat.compreface.errors`. See docs/compreface.md.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from facesocial import errors
from facesocial.api.deps import CallerDep, ContainerDep, ContextDep, DecodeGateDep, rate_limited
from facesocial.api.image_input import ImageForm, ImageUpload, image_form
from facesocial.api.openapi import image_request_body
from facesocial.api.routing import ApiRoute
from facesocial.compat.compreface import shapes
from facesocial.compat.compreface.subjects import (
    SubjectNotFoundError,
    SubjectStore,
    check_subject,
    subject_user_id,
)
from facesocial.container import Container
from facesocial.services.context import RequestContext
from facesocial.services.detection import DetectionParams
from facesocial.services.outcome import Outcome
from facesocial.services.principal import Principal
from facesocial.services.serving_context import ServingScope
from facesocial.vision.pipeline import DetectOptions

# The platform's own detector floor (api/forms.py DetectForm: below 0.2 BlazeFace finds noise).
_MIN_DETECTION_CONFIDENCE = 0.2
_BASIC_LANDMARKS: list[Literal["5", "68", "468"]] = ["5"]
# CompreFace's source: "registration through the CompreFace API" in face_data.registration_source.
REGISTRATION_SOURCE = "compreface"


def _router(service: str, limit: str) -> APIRouter:
    """One of CompreFace's three services under ``/api/v1/<service>``, counted against the
    platform's ``limit``. CompreFace's API is documented by CompreFace (docs/compreface.md): its
    answers and error codes are CompreFace's, so the platform's OpenAPI document (platform codes
    per route) leaves it out."""
    return APIRouter(
        prefix=f"/api/v1/{service}",
        tags=["compreface"],
        include_in_schema=False,
        route_class=ApiRoute,
        redirect_slashes=False,
        dependencies=[Depends(rate_limited(limit))],
    )


recognition = _router("recognition", "face_recognition")
detection = _router("detection", "face_detection")
verification = _router("verification", "face_recognition")
routers = (recognition, detection, verification)


# --- request bodies ---------------------------------------------------------------------------------
class FileForm(ImageForm):
    """CompreFace's single-image body: multipart ``file`` or JSON ``{"file": "<base64>"}``."""

    file: ImageUpload = Field(description="The image (multipart file, or base64 in JSON)")


class VerificationForm(ImageForm):
    max_images: ClassVar[int] = 2

    source_image: ImageUpload = Field(description="The image whose largest face is checked")
    target_image: ImageUpload = Field(description="The image whose faces are compared with it")


class SubjectBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: str = Field(min_length=1, max_length=255)


Limit = Annotated[int, Query(ge=0, le=1000, description="Faces at most, largest first; 0: no limit")]
DetProb = Annotated[float | None, Query(ge=0.0, le=1.0, description="Minimum face probability, 0..1")]
Plugins = Annotated[
    str, Query(max_length=200, description="Comma-separated: age,gender,landmarks,calculator,pose")
]
Status = Annotated[bool, Query(description="Add execution_time and plugins_versions")]


def _store(container: Container) -> SubjectStore:
    return SubjectStore(container.database, container.index, container.user_locks, container.face_cache)


def _scope(container: Container, caller: Principal, request: Request) -> ServingScope:
    return ServingScope.for_request(container, caller, request.headers)


# --- plugins ------------------------------------------------------------------------------------------
@dataclass(slots=True)
class _Detected:
    """Faces of one image found by the detection service, with their plugin fields."""

    faces: list[dict[str, Any]] = field(default_factory=list)
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    elapsed_ms: int = 0


def _detect(
    container: Container,
    data: bytes,
    plugins: frozenset[str],
    det_prob: float | None,
    ctx: RequestContext,
    scope: ServingScope,
) -> _Detected:
    """All faces (largest first) with the age/gender/landmarks/pose fields ``plugins`` ask for.

    Landmarks come from the 68-point model and pose from the 468-point mesh: asking for both
    runs the detector twice; the second call's faces are joined to the first's by box overlap.
    """
    started = time.perf_counter()
    default = container.settings.detection.detection_confidence
    confidence = default if det_prob is None else max(_MIN_DETECTION_CONFIDENCE, det_prob)
    options = DetectOptions(container.settings.detection.min_face_size, 1000, confidence)
    attributes = bool({"age", "gender"} & plugins)
    sets: list[Literal["5", "68", "468"]] = []
    if "landmarks" in plugins:
        sets.append("68")
    if "pose" in plugins:
        sets.append("468")
    out = _Detected()
    for n, landmark_set in enumerate(sets or _BASIC_LANDMARKS):
        params = DetectionParams(options, True, landmark_set, attributes and n == 0)
        result = container.detection.detect(data, params, ctx, scope)
        faces = sorted(result.faces, key=lambda f: -(f["bbox"]["width"] * f["bbox"]["height"]))
        if det_prob is not None:
            faces = [f for f in faces if f["confidence"] >= det_prob]
        boxes = [shapes.xyxy(f["bbox"]) for f in faces]
        for role, ref in result.model.items():
            tag = shapes.model_tag(ref)
            if tag is not None:
                out.versions[role] = tag
        if n == 0:
            out.faces, out.boxes = faces, boxes
            continue
        for i, j in enumerate(shapes.match(out.boxes, boxes)):
            if j is not None:
                out.faces[i] = {**faces[j], **out.faces[i]}
    out.elapsed_ms = round((time.perf_counter() - started) * 1000)
    return out


def _plugins_versions(detected: _Detected, plugins: frozenset[str], embedder: str | None) -> dict[str, str]:
    versions: dict[str, str] = {}
    if "detector" in detected.versions:
        versions["detector"] = detected.versions["detector"]
    for plugin, role in (
        ("age", "age_gender"),
        ("gender", "age_gender"),
        ("landmarks", "landmarks_68"),
        ("pose", "mesh"),
    ):
        if plugin in plugins and role in detected.versions:
            versions[plugin] = detected.versions[role]
    if embedder is not None:
        versions["calculator"] = embedder
    return versions


def _needs_detection(plugins: frozenset[str]) -> bool:
    return bool(plugins - {"calculator"})


def _extras_for(
    box: tuple[float, float, float, float], detected: _Detected | None, plugins: frozenset[str]
) -> dict[str, Any]:
    if detected is None:
        return {}
    j = shapes.match([box], detected.boxes)[0]
    return shapes.plugin_fields(detected.faces[j], plugins) if j is not None else {}


def _embedding(
    container: Container, data: bytes, face_index: int, scope: ServingScope
) -> tuple[list[float], tuple[float, float, float, float]]:
    """The routed embedder's vector of face ``face_index`` (the calculator plugin), and its box."""
    routed = container.recognition.route(scope, None)
    probe = container.recognition.probe(
        data, face_index, require_single=False, model=routed.embedder.model.name, pipeline=routed.pipeline
    )
    vector = [round(float(v), 8) for v in np.asarray(probe.embedding, dtype=np.float64)]
    return vector, shapes.xyxy(probe.describe()["bbox"])


def _count(total: int, limit: int) -> int:
    return total if limit == 0 else min(total, limit)


# --- subjects -----------------------------------------------------------------------------------------
@recognition.post("/subjects", name="cf_add_subject", status_code=201, response_model=None)
def add_subject(container: ContainerDep, caller: CallerDep, body: SubjectBody) -> dict[str, Any]:
    """Add a subject (listed at once; its first example, ``POST /faces?subject=``, enrols the
    person). 400 code 43 if it already exists, also to the loser of two concurrent calls."""
    name = check_subject(body.subject)
    _store(container).create(caller.tenant_id, name)
    return {"subject": name}


@recognition.get("/subjects", name="cf_list_subjects", response_model=None)
@recognition.get("/subjects/", name="cf_list_subjects_slash", response_model=None, include_in_schema=False)
def list_subjects(container: ContainerDep, caller: CallerDep) -> dict[str, Any]:
    """Every subject of the key's tenant (its users with at least one face)."""
    return {"subjects": _store(container).subjects(caller.tenant_id)}


@recognition.put("/subjects/{subject}", name="cf_rename_subject", response_model=None)
def rename_subject(
    container: ContainerDep, caller: CallerDep, subject: str, body: SubjectBody
) -> dict[str, Any]:
    """Rename; an existing target subject receives the faces (merge). 404 code 42 if unknown."""
    old, new = check_subject(subject), check_subject(body.subject)
    return {"updated": _store(container).rename(caller.tenant_id, old, new)}


@recognition.delete("/subjects/{subject}", name="cf_delete_subject", response_model=None)
def delete_subject(
    request: Request, container: ContainerDep, caller: CallerDep, subject: str
) -> dict[str, Any]:
    """Delete a subject and all its examples (the platform's GDPR erasure of that user)."""
    name = check_subject(subject)
    try:
        outcome = container.users.erase(subject_user_id(name), caller=caller)
    except errors.UserNotFoundError as exc:
        if _store(container).forget(caller.tenant_id, name):  # a subject without examples
            return {"subject": name}
        raise SubjectNotFoundError(f"No subject {name!r}") from exc
    # A row a first example reserved before its user was linked (``SubjectStore.reserve``).
    _store(container).forget(caller.tenant_id, name)
    request.state.outcome = outcome
    return {"subject": name}


@recognition.delete("/subjects", name="cf_delete_all_subjects", response_model=None)
def delete_all_subjects(container: ContainerDep, caller: CallerDep) -> dict[str, Any]:
    """Delete every subject of the key's tenant (each one erased as by ``DELETE /subjects/{s}``)."""
    return {"deleted": _erase_all(container, caller)}


def _erase_all(container: Container, caller: Principal) -> int:
    erased = 0
    store = _store(container)
    for name in store.subjects(caller.tenant_id):
        try:
            container.users.erase(subject_user_id(name), caller=caller)
            erased += 1
        except errors.UserNotFoundError:
            # A subject without examples, or one erased meanwhile by another request.
            erased += store.forget(caller.tenant_id, name)
    return erased


# --- examples -----------------------------------------------------------------------------------------
@recognition.post(
    "/faces",
    name="cf_add_example",
    status_code=201,
    response_model=None,
    openapi_extra=image_request_body(FileForm),
)
def add_example(
    request: Request,
    container: ContainerDep,
    caller: CallerDep,
    ctx: ContextDep,
    gate: DecodeGateDep,
    form: Annotated[FileForm, image_form(FileForm)],
    subject: Annotated[str, Query(max_length=255)],
    det_prob_threshold: DetProb = None,
) -> dict[str, Any]:
    """Add an example image of a subject (one face; the subject is made on first use).

    Consent: CompreFace's API has no consent field; calling it is the key holder's statement
    that the person agreed (docs/compreface.md). ``registration_source`` is ``compreface``.
    """
    name = check_subject(subject)
    with gate.admit(form.pixel_weight(container.settings.limits)):
        scope = _scope(container, caller, request)
        if det_prob_threshold is not None:
            # The same routed detector and embedder as the registration below (one scope).
            routed = container.recognition.route(scope, None)
            probe = container.recognition.probe(
                form.file.data,
                None,
                require_single=True,
                model=routed.embedder.model.name,
                pipeline=routed.pipeline,
            )
            if float(probe.faces.confidence[0]) < det_prob_threshold:
                raise errors.NoFaceFoundError(f"No face with probability >= {det_prob_threshold}")
        store = _store(container)
        # The name's row first, so the new user is never seen without its name (recognize).
        reserved = store.reserve(caller.tenant_id, name)
        try:
            outcome = container.recognition.register(
                subject_user_id(name),
                form.file.data,
                consent=True,
                caller=caller,
                ctx=ctx,
                registration_source=REGISTRATION_SOURCE,
                scope=scope,
            )
        except BaseException:
            if reserved:
                store.release(caller.tenant_id, name)
            raise
    store.remember(caller.tenant_id, name)
    request.state.outcome = outcome
    return {"image_id": outcome.body["face_id"], "subject": name}


@recognition.get("/faces", name="cf_list_examples", response_model=None)
def list_examples(
    container: ContainerDep,
    caller: CallerDep,
    page: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    size: Annotated[int, Query(ge=1, le=1000)] = 20,
    subject: Annotated[str | None, Query(max_length=255)] = None,
) -> dict[str, Any]:
    """One page of the tenant's examples (of the default embedding model's gallery)."""
    name = check_subject(subject) if subject is not None else None
    return _store(container).examples(
        caller.tenant_id, container.recognition.collection, subject=name, page=page, size=size
    )


@recognition.delete("/faces", name="cf_delete_examples", response_model=None)
def delete_examples(
    container: ContainerDep,
    caller: CallerDep,
    subject: Annotated[str | None, Query(max_length=255)] = None,
) -> dict[str, Any]:
    """Delete all examples of ``subject`` (the subject goes with them), or of every subject."""
    store = _store(container)
    collection = container.recognition.collection
    if subject is None:
        deleted = store.count_examples(caller.tenant_id, collection, None)
        _erase_all(container, caller)
        return {"deleted": deleted}
    name = check_subject(subject)
    deleted = store.count_examples(caller.tenant_id, collection, name)
    try:
        container.users.erase(subject_user_id(name), caller=caller)
    except errors.UserNotFoundError:
        deleted = 0
    return {"deleted": deleted}


@recognition.delete("/faces/{image_id}", name="cf_delete_example", response_model=None)
def delete_example(container: ContainerDep, caller: CallerDep, image_id: uuid.UUID) -> dict[str, Any]:
    """Delete one example by id (404 code 11 if the tenant has no such image)."""
    removed = _store(container).delete_example(caller.tenant_id, image_id)
    return {"image_id": str(removed.image_id), "subject": removed.subject}


# --- recognize ----------------------------------------------------------------------------------------
@recognition.post(
    "/recognize", name="cf_recognize", response_model=None, openapi_extra=image_request_body(FileForm)
)
def recognize(
    request: Request,
    container: ContainerDep,
    caller: CallerDep,
    ctx: ContextDep,
    gate: DecodeGateDep,
    form: Annotated[FileForm, image_form(FileForm)],
    limit: Limit = 0,
    prediction_count: Annotated[int, Query(ge=1, le=100)] = 1,
    det_prob_threshold: DetProb = None,
    face_plugins: Plugins = "",
    status: Status = False,
) -> dict[str, Any]:
    """Recognize every face (largest first, ``limit`` at most): the ``prediction_count`` most
    similar subjects of each, whatever their similarity (CompreFace leaves the threshold to the
    client; the platform's calibrated thresholds are in docs/compreface.md)."""
    plugins = shapes.parse_plugins(face_plugins)
    data = form.file.data
    store = _store(container)
    results: list[dict[str, Any]] = []
    with gate.admit(form.pixel_weight(container.settings.limits)):
        scope = _scope(container, caller, request)
        detected = (
            _detect(container, data, plugins, det_prob_threshold, ctx, scope)
            if _needs_detection(plugins)
            else None
        )
        started = time.perf_counter()
        # identify() embeds one face per call; face_index walks the faces largest first.
        first = container.recognition.identify(
            data, caller=caller, ctx=ctx, top_k=prediction_count, threshold=-1.0, face_index=0, scope=scope
        )
        outcomes = [first]
        for i in range(1, _count(int(first.body["faces_detected"]), limit)):
            outcomes.append(
                container.recognition.identify(
                    data,
                    caller=caller,
                    ctx=ctx,
                    top_k=prediction_count,
                    threshold=-1.0,
                    face_index=i,
                    scope=scope,
                )
            )
        calculator_ms = round((time.perf_counter() - started) * 1000)
        embedder = outcomes[0].model_version
        ids = {uuid.UUID(c["user_id"]) for o in outcomes for c in o.body["candidates"]}
        names = store.names(caller.tenant_id, ids)
        for outcome in outcomes:
            face = outcome.body["face"]
            if det_prob_threshold is not None and face["confidence"] < det_prob_threshold:
                continue
            item: dict[str, Any] = {"box": shapes.box(face["bbox"], face["confidence"])}
            item.update(_extras_for(shapes.xyxy(face["bbox"]), detected, plugins))
            if "calculator" in plugins:
                item["embedding"], _ = _embedding(container, data, int(face["face_index"]), scope)
            # A candidate whose subject is gone (deleted, or merged by a rename, since the
            # search) is left out rather than shown by its internal id.
            item["subjects"] = [
                {"subject": names[user_id], "similarity": shapes.similarity(c["similarity"])}
                for c in outcome.body["candidates"]
                if (user_id := uuid.UUID(c["user_id"])) in names
            ]
            if status:
                item["execution_time"] = _times(detected, calculator_ms)
            results.append(item)
    best = max((s["similarity"] for r in results for s in r["subjects"]), default=None)
    request.state.outcome = Outcome({}, confidence=best, model_version=embedder)
    body: dict[str, Any] = {"result": results}
    if status:
        body["plugins_versions"] = _plugins_versions(detected or _Detected(), plugins, embedder)
    return body


def _times(detected: _Detected | None, calculator_ms: int) -> dict[str, float]:
    """Wall times of this request's calls (ms): per call, not per face."""
    times = {"calculator": float(calculator_ms)}
    if detected is not None:
        times["detector"] = float(detected.elapsed_ms)
    return times


# --- verify against an example --------------------------------------------------------------------------
@recognition.post(
    "/faces/{image_id}/verify",
    name="cf_verify_example",
    response_model=None,
    openapi_extra=image_request_body(FileForm),
)
def verify_example(
    request: Request,
    container: ContainerDep,
    caller: CallerDep,
    ctx: ContextDep,
    gate: DecodeGateDep,
    form: Annotated[FileForm, image_form(FileForm)],
    image_id: uuid.UUID,
    limit: Limit = 0,
    det_prob_threshold: DetProb = None,
    face_plugins: Plugins = "",
    status: Status = False,
) -> dict[str, Any]:
    """Similarity of every face of ``file`` (largest first) to the stored example ``image_id``,
    embedded with the example's own model (a gallery is bound to its model)."""
    plugins = shapes.parse_plugins(face_plugins)
    data = form.file.data
    example, _subject = _store(container).example(caller.tenant_id, image_id)
    stored = np.frombuffer(example.embedding, dtype=np.float32)
    model_name = example.embedding_version.partition("@")[0]
    results: list[dict[str, Any]] = []
    with gate.admit(form.pixel_weight(container.settings.limits)):
        scope = _scope(container, caller, request)
        detected = (
            _detect(container, data, plugins, det_prob_threshold, ctx, scope)
            if _needs_detection(plugins)
            else None
        )
        started = time.perf_counter()
        routed = container.recognition.route(scope, model_name)
        count = 1
        i = 0
        while i < count:
            probe = container.recognition.probe(
                data, i, require_single=False, model=model_name, pipeline=routed.pipeline
            )
            count = _count(probe.faces_detected, limit)
            face = probe.describe()
            i += 1
            if det_prob_threshold is not None and face["confidence"] < det_prob_threshold:
                continue
            item: dict[str, Any] = {"box": shapes.box(face["bbox"], face["confidence"])}
            item.update(_extras_for(shapes.xyxy(face["bbox"]), detected, plugins))
            if "calculator" in plugins:
                item["embedding"] = [round(float(v), 8) for v in probe.embedding]
            item["similarity"] = shapes.similarity(float(np.dot(stored, probe.embedding)))
            results.append(item)
        calculator_ms = round((time.perf_counter() - started) * 1000)
    if status:
        for item in results:
            item["execution_time"] = _times(detected, calculator_ms)
    best = max((r["similarity"] for r in results), default=None)
    request.state.outcome = Outcome({}, confidence=best, model_version=example.embedding_version)
    body: dict[str, Any] = {"result": results}
    if status:
        body["plugins_versions"] = _plugins_versions(
            detected or _Detected(), plugins, example.embedding_version
        )
    return body


# --- detection service ----------------------------------------------------------------------------------
@detection.post("/detect", name="cf_detect", response_model=None, openapi_extra=image_request_body(FileForm))
def detect(
    request: Request,
    container: ContainerDep,
    caller: CallerDep,
    ctx: ContextDep,
    gate: DecodeGateDep,
    form: Annotated[FileForm, image_form(FileForm)],
    limit: Limit = 0,
    det_prob_threshold: DetProb = None,
    face_plugins: Plugins = "",
    status: Status = False,
) -> dict[str, Any]:
    """Every face (largest first, ``limit`` at most): box and the asked plugins' fields. No
    face is 400 code 28, as CompreFace answers (its issue #1223 asks for an empty result)."""
    plugins = shapes.parse_plugins(face_plugins)
    data = form.file.data
    with gate.admit(form.pixel_weight(container.settings.limits)):
        scope = _scope(container, caller, request)
        detected = _detect(container, data, plugins, det_prob_threshold, ctx, scope)
        if not detected.faces:
            raise errors.NoFaceFoundError("No face is found in the given image")
        count = _count(len(detected.faces), limit)
        embedder: str | None = None
        results: list[dict[str, Any]] = []
        for face in detected.faces[:count]:
            item: dict[str, Any] = {"box": shapes.box(face["bbox"], face["confidence"])}
            item.update(shapes.plugin_fields(face, plugins))
            results.append(item)
        if "calculator" in plugins and results:
            _attach_embeddings(container, data, detected.boxes[:count], results, scope)
            embedder = container.recognition.route(scope, None).embedder.model.tag
    if status:
        for item in results:
            item["execution_time"] = {"detector": float(detected.elapsed_ms)}
    best = max((r["box"]["probability"] for r in results), default=None)
    request.state.outcome = Outcome({}, confidence=best, model_version=detected.versions.get("detector"))
    body: dict[str, Any] = {"result": results}
    if status:
        body["plugins_versions"] = _plugins_versions(detected, plugins, embedder)
    return body


def _attach_embeddings(
    container: Container,
    data: bytes,
    boxes: list[tuple[float, float, float, float]],
    results: list[dict[str, Any]],
    scope: ServingScope,
) -> None:
    """The calculator plugin on detection results: each face's vector, joined by box overlap
    (the recognition probe orders faces largest first as well)."""
    for i in range(len(boxes)):
        vector, probe_box = _embedding(container, data, i, scope)
        j = shapes.match([probe_box], boxes)[0]
        if j is not None:
            results[j]["embedding"] = vector


# --- verification service --------------------------------------------------------------------------------
@verification.post(
    "/verify", name="cf_verification", response_model=None, openapi_extra=image_request_body(VerificationForm)
)
def verify(
    request: Request,
    container: ContainerDep,
    caller: CallerDep,
    ctx: ContextDep,
    gate: DecodeGateDep,
    form: Annotated[VerificationForm, image_form(VerificationForm)],
    limit: Limit = 0,
    det_prob_threshold: DetProb = None,
    face_plugins: Plugins = "",
    status: Status = False,
) -> dict[str, Any]:
    """The largest face of ``source_image`` against every face of ``target_image`` (largest
    first, ``limit`` at most): ``face_matches`` by similarity, best first."""
    plugins = shapes.parse_plugins(face_plugins)
    source, target = form.source_image.data, form.target_image.data
    matches: list[dict[str, Any]] = []
    with gate.admit(form.pixel_weight(container.settings.limits)):
        scope = _scope(container, caller, request)
        wanted = _needs_detection(plugins)
        source_detected = (
            _detect(container, source, plugins, det_prob_threshold, ctx, scope) if wanted else None
        )
        target_detected = (
            _detect(container, target, plugins, det_prob_threshold, ctx, scope) if wanted else None
        )
        started = time.perf_counter()
        count, i = 1, 0
        source_face: dict[str, Any] | None = None
        embedder: str | None = None
        while i < count:
            # verify(image=target face i, other=source): one comparison per target face.
            outcome = container.recognition.verify(
                target, caller=caller, ctx=ctx, other=source, face_index=i, scope=scope
            )
            count = _count(int(outcome.body["faces_detected"]), limit)
            i += 1
            embedder = outcome.model_version
            source_face = source_face or outcome.body["face2"]
            face = outcome.body["face"]
            if det_prob_threshold is not None and face["confidence"] < det_prob_threshold:
                continue
            item: dict[str, Any] = {"box": shapes.box(face["bbox"], face["confidence"])}
            item.update(_extras_for(shapes.xyxy(face["bbox"]), target_detected, plugins))
            item["similarity"] = shapes.similarity(outcome.body["similarity"])
            matches.append(item)
        calculator_ms = round((time.perf_counter() - started) * 1000)
        assert source_face is not None  # the loop ran at least once
        source_item: dict[str, Any] = {"box": shapes.box(source_face["bbox"], source_face["confidence"])}
        source_item.update(_extras_for(shapes.xyxy(source_face["bbox"]), source_detected, plugins))
        if "calculator" in plugins:
            source_item["embedding"], _ = _embedding(container, source, int(source_face["face_index"]), scope)
    matches.sort(key=lambda m: -m["similarity"])
    if status:
        for item in (source_item, *matches):
            item["execution_time"] = _times(target_detected, calculator_ms)
    best = matches[0]["similarity"] if matches else None
    request.state.outcome = Outcome({}, confidence=best, model_version=embedder)
    result: dict[str, Any] = {"source_image_face": source_item, "face_matches": matches}
    if status:
        result["plugins_versions"] = _plugins_versions(target_detected or _Detected(), plugins, embedder)
    return {"result": [result]}
