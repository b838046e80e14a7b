"""Which model version serves a request: the contract between the registry and every service.

Every inference path asks :class:`ModelRouter` for a slot's version before it runs a model and
names the answer (:meth:`Serving.as_dict`) in its response and audit row. The router's order:

1. ``pinned`` — the caller named an installed version itself (e.g. ``embedding_model``);
2. ``experiment`` — a running experiment on the slot gives the request to its baseline or
   challenger arm by a stable hash of the split subject (random: the request id; user: the
   caller's account or API key; session: the ``X-Session-Id`` header, falling back to the user);
3. ``canary`` — a canary version takes its percentage of the slot's traffic, by the same stable
   hash of the caller (so one caller sees one version while the share is unchanged);
4. ``production`` — the slot's production version.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

# The serving slots: one per model role the platform runs (document 002's model_id).
SLOTS: tuple[str, ...] = (
    "face_detection",
    "face_embedding",
    "demographics",
    "liveness",
    "deepfake",
    "ai_image",
    "person_detection",
)

Route = Literal["production", "canary", "experiment", "pinned"]
Arm = Literal["baseline", "challenger"]


@dataclass(frozen=True, slots=True)
class RoutingKey:
    """Who asks: the inputs of the stable split hashes.

    ``request_id`` is unique per request (random splits); ``user_key`` identifies the caller
    (API key id or account id, as text); ``session_id`` comes from the ``X-Session-Id`` header
    or a liveness/meeting session id. ``tenant_id`` is recorded, never hashed alone.
    """

    request_id: str
    tenant_id: uuid.UUID | None = None
    user_key: str | None = None
    session_id: str | None = None

    @classmethod
    def anonymous(cls) -> RoutingKey:
        """For the CLI and evaluation commands: a fresh request id, no caller."""
        return cls(request_id=uuid.uuid4().hex)


@dataclass(frozen=True, slots=True)
class Serving:
    """The routing decision for one slot of one request."""

    slot: str
    version: str  # the model tag, e.g. "retinaface_mnet025@1.0"
    route: Route = "production"
    experiment_id: str | None = None
    arm: Arm | None = None
    inference_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    # The router's pending experiment assignment of this decision (routing.py), carried by every
    # copy (``ServingScope.item()`` copies it under a fresh inference id per batch item), so each
    # item's record writes the subject's assignment. Opaque to services; not in as_dict().
    assignment: object | None = field(default=None, compare=False, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """The ``serving`` object of a response: ``{"slot", "version", "route", "experiment_id",
        "arm", "inference_id"}`` (``inference_id`` is what feedback refers to)."""
        return {
            "slot": self.slot,
            "version": self.version,
            "route": self.route,
            "experiment_id": self.experiment_id,
            "arm": self.arm,
            "inference_id": self.inference_id,
        }


@dataclass(frozen=True, slots=True)
class InferenceRecord:
    """What an inference path reports after it ran (one ``model_inference_results`` row).

    ``confidences``: the scores the model produced (detector scores, match similarities,
    class probabilities), each 0..1. ``features``: input-quality and output features watched
    for drift, by name (e.g. ``{"quality": 0.71, "embedding_norm": 1.0, "width": 640}``).
    """

    serving: Serving
    service: str
    tenant_id: uuid.UUID | None
    processing_time_ms: int
    result: Mapping[str, Any]
    confidences: tuple[float, ...] = ()
    features: Mapping[str, float] = field(default_factory=dict)
    input_hash: str | None = None


class ModelRouter(Protocol):
    def resolve(
        self,
        slot: str,
        key: RoutingKey,
        *,
        installed: Collection[str],
        default: str,
        pinned: str | None = None,
    ) -> Serving:
        """The version that serves ``slot`` for ``key``.

        ``installed``: the versions this process can run now (tags); a route to a version not
        in it falls back to production, then to ``default`` (and is logged), never fails the
        request. ``default``: what this process would run without a registry (the settings'
        choice); it serves when the slot has no installed production version.
        ``pinned``: a version the caller asked for explicitly; raises ``UnknownModelError``
        (422 UNKNOWN_MODEL) if it is not installed.
        """
        ...

    def record(self, record: InferenceRecord) -> None:
        """Store one inference (model_inference_results). Never raises into the request:
        a failure is logged and counted (the response and audit row already name the version)."""
        ...


def stable_bucket(salt: str, subject: str) -> float:
    """A subject's place in 0..100 (exclusive), uniform and stable for one ``salt``.

    sha256 of ``salt:subject``, first 8 bytes as an integer, scaled: the same subject always
    lands in the same bucket of one experiment or canary, and a new salt reshuffles everyone.
    A subject goes to the challenger (or canary) when ``stable_bucket(...) < percent``.
    """
    digest = hashlib.sha256(f"{salt}:{subject}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100.0


def pinned_serving(slot: str, pinned: str, installed: Collection[str]) -> Serving:
    """The caller's own choice of version; ``UnknownModelError`` (422 UNKNOWN_MODEL) when this
    process cannot run it (a pinned version never falls back: the caller asked for it)."""
    if pinned not in installed:
        from facesocial import errors

        raise errors.UnknownModelError(
            f"Unknown model {pinned!r} for {slot}; installed: {', '.join(sorted(installed))}"
        )
    return Serving(slot, pinned, "pinned")


class StaticRouter:
    """No registry: the pinned version if installed, else ``default``; records nothing.

    For the CLI and evaluation commands and for tests of a service in isolation."""

    def resolve(
        self,
        slot: str,
        key: RoutingKey,
        *,
        installed: Collection[str],
        default: str,
        pinned: str | None = None,
    ) -> Serving:
        if pinned is not None:
            return pinned_serving(slot, pinned, installed)
        return Serving(slot, default, "production")

    def record(self, record: InferenceRecord) -> None:
        return None
