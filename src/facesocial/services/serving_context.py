"""Which model version serves a request, as the services see it.

Every inference path asks the registry's router (:mod:`facesocial.domains.registry.serving`)
once per request and per slot which version to run, runs that version, names it in the
response (``serving``) and the audit row, and reports the inference (``router.record``). This
module holds what the services share for that:

* :func:`routing_key` — the split subject of a request: the caller (API key, else account,
  else tenant) and the ``X-Session-Id`` header;
* :class:`ServingScope` — one request's router and key; resolves each slot at most once, so
  a request that detects twice (verify with two images) runs one version throughout;
* :class:`DetectorVariants` — one face detector per installed face_detection version, built
  on first use, each behind a :class:`~facesocial.vision.pipeline.FacePipeline` view that
  shares every other loaded model.

Version strings are model tags ``name@version`` (:attr:`facesocial.models.manifest.ModelRef.tag`):
face_detection ``retinaface_mnet025@…``, ``blazeface_full@…``, ``dlib_hog@…``; face_embedding the
embedder's model tag (``dlib_resnet_v1@1.0``, ``faceres@…``, ``mobileface@…``); demographics the
age/gender model's tag (``faceres@…``); liveness ``liveness_passive@…``; deepfake the learned
model's tag (``deepfake_sbi@…``, or ``deepfake_ensemble@1.0`` without it); ai_image
``skygate_mlp@…`` (or ``skygate@1.0`` without the learned model).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from facesocial.domains.registry.serving import (
    InferenceRecord,
    ModelRouter,
    RoutingKey,
    Serving,
    StaticRouter,
)
from facesocial.models.dlib_pack import model_info
from facesocial.models.manifest import ModelRef
from facesocial.services.principal import Principal
from facesocial.vision.pipeline import FacePipeline
from facesocial.vision.ports import FaceDetector

if TYPE_CHECKING:
    from facesocial.container import Container
    from facesocial.models.runtime import ModelCache

log = logging.getLogger(__name__)

# The header a client sends to keep one session on one experiment arm (split method "session").
SESSION_HEADER = "x-session-id"
# Longest session id kept from the header (it is hashed, and recorded with the assignment).
MAX_SESSION_ID = 128

# Every face detector a face_detection version can name (container.face_detector builds them).
FACE_DETECTORS: tuple[str, ...] = ("retinaface_mnet025", "blazeface_full", "dlib_hog")


def routing_key(
    principal: Principal | None,
    headers: Mapping[str, str] | None = None,
    *,
    session_id: str | None = None,
    request_id: str | None = None,
) -> RoutingKey:
    """The routing key of one request.

    ``user_key``: ``key:<api key id>`` for an API key, ``account:<id>`` for a login token,
    ``tenant:<id>`` for a shared-secret token (the finest identity the credential carries, so
    a user or session split keeps one caller on one arm). ``session_id``: the explicit one (a
    liveness session), else the ``X-Session-Id`` header (cut to 128 characters), else None.
    ``request_id``: a fresh uuid hex unless given.
    """
    user_key: str | None = None
    tenant_id: uuid.UUID | None = None
    if principal is not None:
        tenant_id = principal.tenant_id
        if principal.api_key_id is not None:
            user_key = f"key:{principal.api_key_id}"
        elif principal.account_id is not None:
            user_key = f"account:{principal.account_id}"
        else:
            user_key = f"tenant:{principal.tenant_id}"
    if session_id is None and headers is not None:
        header = headers.get(SESSION_HEADER)
        session_id = (header.strip()[:MAX_SESSION_ID] or None) if header is not None else None
    return RoutingKey(
        request_id=request_id or uuid.uuid4().hex,
        tenant_id=tenant_id,
        user_key=user_key,
        session_id=session_id,
    )


def session_key(tenant_id: uuid.UUID | None, api_key_id: uuid.UUID | None, session_id: str) -> RoutingKey:
    """The routing key of a liveness session's frames: its tenant, the key that opened it
    (``key:<id>``, as :func:`routing_key`), and the session itself as the session subject."""
    user_key = f"key:{api_key_id}" if api_key_id else (f"tenant:{tenant_id}" if tenant_id else None)
    return RoutingKey(
        request_id=uuid.uuid4().hex, tenant_id=tenant_id, user_key=user_key, session_id=session_id
    )


def router_of(container: Container) -> ModelRouter:
    """The container's model router (the registry's: domains/registry/routing.py)."""
    return container.model_router


@dataclass
class ServingScope:
    """One request's routing: resolves each slot once, records each inference.

    Not shared between requests (it remembers the request's decisions); cheap to make.
    """

    router: ModelRouter
    key: RoutingKey
    decisions: dict[str, Serving] = field(default_factory=dict)

    @classmethod
    def static(cls) -> ServingScope:
        """No registry: defaults or pinned versions, nothing recorded (CLI, evaluation, tests
        of a service in isolation)."""
        return cls(StaticRouter(), RoutingKey.anonymous())

    @classmethod
    def for_request(
        cls,
        container: Container,
        principal: Principal | None,
        headers: Mapping[str, str] | None = None,
        *,
        session_id: str | None = None,
    ) -> ServingScope:
        """The scope of one API request (``headers``: the request's, for ``X-Session-Id``)."""
        return cls(router_of(container), routing_key(principal, headers, session_id=session_id))

    def item(self) -> ServingScope:
        """A scope for one item of a batch: the same key and decisions (one batch runs one
        version per slot) under fresh inference ids, so each item is its own inference."""
        return ServingScope(
            self.router,
            self.key,
            {slot: replace(s, inference_id=uuid.uuid4().hex) for slot, s in self.decisions.items()},
        )

    @property
    def tenant_id(self) -> uuid.UUID | None:
        return self.key.tenant_id

    def resolve(
        self, slot: str, *, installed: Collection[str], default: str, pinned: str | None = None
    ) -> Serving:
        """The version serving ``slot`` for this request (the first answer, on later calls).

        Raises ``UNKNOWN_MODEL`` (422) when ``pinned`` is not installed (the router's contract).
        """
        found = self.decisions.get(slot)
        if found is not None and (pinned is None or found.version == pinned):
            return found
        serving = self.router.resolve(slot, self.key, installed=installed, default=default, pinned=pinned)
        self.decisions[slot] = serving
        return serving

    def record(
        self,
        serving: Serving,
        service: str,
        *,
        started: float,
        result: Mapping[str, Any],
        confidences: Sequence[float] = (),
        features: Mapping[str, float] | None = None,
        input_hash: str | None = None,
    ) -> None:
        """Report one inference of ``serving`` (``started``: its ``time.perf_counter()`` start).

        ``confidences`` are clipped to 0..1 and rounded; ``features`` are the inputs and
        outputs watched for drift (quality, embedding norm, image size). Never raises: the
        router logs its own failures, and a failure here must not fail an answered request.
        """
        elapsed = round((time.perf_counter() - started) * 1000)
        try:
            self.router.record(
                InferenceRecord(
                    serving=serving,
                    service=service,
                    tenant_id=self.key.tenant_id,
                    processing_time_ms=elapsed,
                    result=dict(result),
                    confidences=tuple(round(min(1.0, max(0.0, float(c))), 6) for c in confidences),
                    features={name: float(value) for name, value in (features or {}).items()},
                    input_hash=input_hash,
                )
            )
        except Exception:  # the contract says record() never raises; a broken router must not either
            log.exception("could not record an inference of %s", serving.version)

    def serving_versions(self, slot: str, installed: Collection[str]) -> tuple[str, ...]:
        """Every installed version serving ``slot`` now: this request's, then the router's
        production, canary and running experiment arms (``active_versions``, when the router
        has it; StaticRouter has not, so only this request's version). Dual enrolment asks it:
        a gallery is bound to its embedding model, so a face is enrolled in each collection a
        later request may be routed to."""
        mine = self.decisions.get(slot)
        versions: list[str] = [mine.version] if mine is not None else []
        active = getattr(self.router, "active_versions", None)
        if callable(active):
            try:
                others = tuple(active(slot))
            except Exception:  # an unreadable registry must not fail a registration
                log.exception("could not read the versions serving %s", slot)
                others = ()
            for version in others:
                if version in installed and version not in versions:
                    versions.append(version)
                elif version not in installed:
                    log.info("%s serves %s but is not installed here: not enrolled in it", version, slot)
        return tuple(versions)

    def serving_body(self) -> dict[str, Any]:
        """``{slot: Serving.as_dict()}`` of every slot this request resolved."""
        return {slot: serving.as_dict() for slot, serving in self.decisions.items()}


def serving_from_dict(data: Mapping[str, Any]) -> Serving:
    """The inverse of :meth:`Serving.as_dict` (a decision kept in a job's payload)."""
    return Serving(
        slot=str(data["slot"]),
        version=str(data["version"]),
        route=data.get("route", "production"),
        experiment_id=data.get("experiment_id"),
        arm=data.get("arm"),
        inference_id=str(data.get("inference_id") or uuid.uuid4().hex),
    )


def job_scope(
    router: ModelRouter,
    decisions: Mapping[str, Mapping[str, Any]] | None,
    *,
    job_id: str,
    tenant_id: uuid.UUID | None,
) -> ServingScope:
    """The scope of a job that runs what its request was routed to: the decisions the request
    made (``serving_body()`` kept in the job's payload, so the 202 answer's inference ids are
    the ones recorded), else routing afresh with the job id as the request id."""
    scope = ServingScope(router, RoutingKey(request_id=job_id, tenant_id=tenant_id))
    for slot, data in (decisions or {}).items():
        scope.decisions[slot] = serving_from_dict(data)
    return scope


def scope_or_static(scope: ServingScope | None) -> ServingScope:
    return scope if scope is not None else ServingScope.static()


def detector_tag(cache: ModelCache, name: str) -> str:
    """The tag of a face detector by name, read from the manifest (nothing is loaded)."""
    if name == "dlib_hog":
        return model_info("dlib_hog").ref.tag
    return ModelRef(name, cache.entry(name).version).tag


class DetectorVariants:
    """One :class:`FacePipeline` per installed face_detection version, built on first use.

    ``base`` is the pipeline the settings chose (its detector is the default version);
    ``build(name)`` makes a detector by name (the container's factory, with this variant set's
    search settings). Every view shares the base's landmarker, embedders and heads: a second
    detector costs its own model only (BlazeFace 2.1 MB, RetinaFace 1.7 MB of ONNX weights and one
    ONNX session each).
    """

    def __init__(
        self,
        base: FacePipeline,
        cache: ModelCache | None = None,
        build: Callable[[str], FaceDetector] | None = None,
        names: Sequence[str] = FACE_DETECTORS,
    ) -> None:
        self.base = base
        self._build = build
        self._lock = threading.Lock()
        self._views: dict[str, FacePipeline] = {base.detector.model.tag: base}
        self._names: dict[str, str] = {base.detector.model.tag: base.detector.model.name}
        if cache is None or build is None:
            return  # only the base detector (a service built without the container's factory)
        for name in names:
            if name == "dlib_hog" or cache.has(name):
                self._names.setdefault(detector_tag(cache, name), name)

    @property
    def default(self) -> str:
        return self.base.detector.model.tag

    @property
    def installed(self) -> tuple[str, ...]:
        """Tags of the detectors this process can run, the default first."""
        return tuple(self._names)

    def pipeline(self, tag: str) -> FacePipeline:
        """The view running detector ``tag`` (KeyError for a tag not in :attr:`installed`)."""
        view = self._views.get(tag)
        if view is not None:
            return view
        name = self._names[tag]
        if self._build is None:  # only the base is listed without a factory
            raise KeyError(tag)
        with self._lock:
            view = self._views.get(tag)
            if view is None:
                view = self.base.with_detector(self._build(name))
                self._views[tag] = view
        return view
