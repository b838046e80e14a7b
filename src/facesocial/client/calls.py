"""The requests the SDK sends, built once for the sync and the async client.

``ENDPOINTS`` names every route the SDK calls with the parameter names it may send (path,
query, multipart text fields, multipart files, JSON keys); ``tests/integration/test_client_sdk.py``
checks each against the server's ``/openapi.json``, and ``build`` refuses (``RuntimeError``) a
parameter a route does not declare, so the SDK and the server cannot drift apart unnoticed.
A builder returns a ``Call``: what to send and how to parse the answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import quote

from facesocial.client import models
from facesocial.client.uploads import FilePart, ImageFormat, ImageInput, VideoInput, image_part, video_part

T = TypeVar("T")
JSON = dict[str, Any]
API = "/api/v1"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One route: ``method``, ``path`` template (``{name}`` path parameters) and the names of
    the parameters the SDK may send in the query, as multipart text fields, as multipart files
    and as keys of a JSON object body (``json_list``: the body may also be a JSON array)."""

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
    path: str
    query: frozenset[str] = frozenset()
    form: frozenset[str] = frozenset()
    files: frozenset[str] = frozenset()
    json: frozenset[str] = frozenset()
    json_list: bool = False

    @property
    def path_params(self) -> frozenset[str]:
        return frozenset(re.findall(r"{(\w+)}", self.path))


def _e(method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"], path: str, **names: str) -> Endpoint:
    """An endpoint with its parameter names given as space-separated strings."""
    return Endpoint(method, API + path, **{k: frozenset(v.split()) for k, v in names.items()})  # type: ignore[arg-type]


REC = "/face-recognition"
ENDPOINTS: dict[str, Endpoint] = {
    "detect": _e(
        "POST",
        "/face-detection/detect",
        files="image",
        form="min_face_size max_faces detection_confidence return_landmarks landmarks return_attributes",
    ),
    "register": _e(
        "POST",
        f"{REC}/register",
        files="image",
        form="user_id consent face_index group_id registration_source embedding_model liveness_session",
    ),
    "verify": _e(
        "POST",
        f"{REC}/verify",
        files="image image2",
        form="user_id mode threshold face_index embedding_model liveness_session",
    ),
    "identify": _e(
        "POST", f"{REC}/identify", files="image", form="top_k group_id threshold face_index embedding_model"
    ),
    "get_user": _e("GET", f"{REC}/users/{{user_id}}"),
    "erase_user": _e("DELETE", f"{REC}/users/{{user_id}}"),
    "create_group": _e("POST", f"{REC}/groups", json="group_name description privacy_level user_id"),
    "list_groups": _e("GET", f"{REC}/groups", query="limit offset"),
    "get_group": _e("GET", f"{REC}/groups/{{group_id}}"),
    "delete_group": _e("DELETE", f"{REC}/groups/{{group_id}}"),
    "add_group_members": _e("POST", f"{REC}/groups/{{group_id}}/members", json="user_ids"),
    "remove_group_member": _e("DELETE", f"{REC}/groups/{{group_id}}/members/{{user_id}}"),
    "demographics": _e("POST", "/demographics/analyze", files="image"),
    "demographics_batch": _e("POST", "/demographics/batch", files="images"),
    "spoof_check": _e("POST", "/antispoofing/check", files="image", form="face_index"),
    "spoof_check_video": _e(
        "POST", "/antispoofing/check-video", files="video", form="priority callback_url request_source"
    ),
    "get_spoof_check": _e("GET", "/antispoofing/checks/{check_id}"),
    "create_liveness_session": _e(
        "POST", "/antispoofing/liveness/sessions", json="user_id challenges timeout_seconds max_attempts"
    ),
    "get_liveness_session": _e("GET", "/antispoofing/liveness/sessions/{token}"),
    "send_liveness_frames": _e(
        "POST", "/antispoofing/liveness/sessions/{token}/frames", files="frames video", form="timestamps_ms"
    ),
    "deepfake": _e(
        "POST", "/deepfake-detection/analyze", files="image", form="detection_level return_heatmap"
    ),
    "deepfake_video": _e(
        "POST",
        "/deepfake-detection/analyze-video",
        files="video",
        form="priority callback_url sample_fps detection_level",
    ),
    "get_deepfake_analysis": _e(
        "GET", "/deepfake-detection/analyses/{analysis_id}", query="frames_offset frames_limit"
    ),
    "delete_deepfake_analysis": _e("DELETE", "/deepfake-detection/analyses/{analysis_id}"),
    "ai_image": _e("POST", "/ai-detection/analyze", files="image", form="methods async"),
    "get_ai_image_result": _e("GET", "/ai-detection/results/{result_id}"),
    "delete_ai_image_result": _e("DELETE", "/ai-detection/results/{result_id}"),
    "counting_video": _e(
        "POST",
        "/counting/videos",
        files="video",
        form="priority callback_url sample_fps lines zones min_confidence",
    ),
    "list_counting_videos": _e("GET", "/counting/videos", query="status offset limit"),
    "get_counting_video": _e("GET", "/counting/videos/{video_id}"),
    "delete_counting_video": _e("DELETE", "/counting/videos/{video_id}"),
    "counting_events": _e("GET", "/counting/videos/{video_id}/events", query="line zone offset limit"),
    "counting_tracks": _e("GET", "/counting/videos/{video_id}/tracks", query="trajectory offset limit"),
    "counting_timeline": _e("GET", "/counting/videos/{video_id}/timeline", query="offset limit"),
    "counting_preview": _e("GET", "/counting/videos/{video_id}/preview.mp4"),
    "list_jobs": _e("GET", "/jobs", query="status limit offset"),
    "get_job": _e("GET", "/jobs/{job_id}"),
    "cancel_job": _e("DELETE", "/jobs/{job_id}"),
    "list_models": _e("GET", "/models"),
    "get_model": _e("GET", "/models/{model_id}"),
    "model_versions": _e("GET", "/models/{model_id}/versions"),
    "deploy_model": _e("POST", "/models/{model_id}/deploy", json="version force"),
    "start_canary": _e("POST", "/models/{model_id}/canary", json="version percent force"),
    "end_canary": _e("DELETE", "/models/{model_id}/canary"),
    "promote_canary": _e("POST", "/models/{model_id}/promote", json="force"),
    "rollback_model": _e("POST", "/models/{model_id}/rollback", json="version reason force"),
    "create_experiment": _e(
        "POST",
        "/experiments",
        json="name description model_id baseline_version challenger_version traffic_split_percent "
        "traffic_split_method minimum_sample_size confidence_level success_metrics success_thresholds "
        "duration_days",
    ),
    "list_experiments": _e("GET", "/experiments", query="page page_size status model_id"),
    "get_experiment": _e("GET", "/experiments/{experiment_id}"),
    "start_experiment": _e("POST", "/experiments/{experiment_id}/start", json="force"),
    "stop_experiment": _e("POST", "/experiments/{experiment_id}/stop"),
    "experiment_results": _e("GET", "/experiments/{experiment_id}/results"),
    "feedback": _e("POST", "/experiments/{experiment_id}/feedback", json="inference_id correct value"),
}
ENDPOINTS["feedback"] = Endpoint(
    "POST", ENDPOINTS["feedback"].path, json=ENDPOINTS["feedback"].json, json_list=True
)


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """A request ready to send: method and formatted path, query, multipart text fields and
    files, or a JSON body; ``parse`` turns the decoded JSON (or, ``binary``, the bytes) into T."""

    name: str
    method: str
    path: str
    parse: Callable[[Any], T]
    params: dict[str, str] = field(default_factory=dict)
    data: dict[str, str] = field(default_factory=dict)
    files: list[tuple[str, FilePart]] = field(default_factory=list)
    json: Any = None
    binary: bool = False


def _text(value: Any) -> str:
    """A form or query value as the server's parsers read it: booleans ``true``/``false``,
    sequences and mappings as JSON (``lines``, ``zones``), the rest ``str``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value)
    return str(value)


def _present(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def raw(body: Any) -> JSON:
    """The answer as decoded JSON (for routes without a typed result)."""
    return body if isinstance(body, dict) else {"value": body}


def build(
    name: str,
    parse: Callable[[Any], T],
    *,
    path: Mapping[str, Any] | None = None,
    query: Mapping[str, Any] | None = None,
    form: Mapping[str, Any] | None = None,
    files: Sequence[tuple[str, FilePart]] = (),
    body: Any = None,
    binary: bool = False,
) -> Call[T]:
    """The ``Call`` of endpoint ``name``; ``None`` values are left out. Raises ``RuntimeError``
    when a parameter is not declared for the endpoint in ``ENDPOINTS`` (an SDK bug)."""
    endpoint = ENDPOINTS[name]
    path_values = dict(path or {})
    params = {k: _text(v) for k, v in _present(query or {}).items()}
    data = {k: _text(v) for k, v in _present(form or {}).items()}
    body_keys: set[str] = set()
    if isinstance(body, dict):
        body = _present(body)
        body_keys = set(body)
    elif isinstance(body, list):
        if not endpoint.json_list:
            raise RuntimeError(f"{name}: a JSON array body is not declared")
        body_keys = {k for item in body for k in item}
    undeclared = (
        (set(path_values) ^ endpoint.path_params)
        | (set(params) - endpoint.query)
        | (set(data) - endpoint.form)
        | ({f for f, _ in files} - endpoint.files)
        | (body_keys - endpoint.json)
    )
    if undeclared:
        raise RuntimeError(f"{name}: parameters {sorted(undeclared)} are not declared for {endpoint.path}")
    formatted = endpoint.path.format(**{k: quote(str(v), safe="") for k, v in path_values.items()})
    return Call(name, endpoint.method, formatted, parse, params, data, list(files), body, binary)


# --- the builders, one per SDK method (same names and parameters in sync.py and aio.py) ----------


def detect(
    image: ImageInput,
    *,
    min_face_size: int | None = None,
    max_faces: int | None = None,
    detection_confidence: float | None = None,
    return_landmarks: bool | None = None,
    landmarks: Literal[5, 68, 468] | None = None,
    return_attributes: bool | None = None,
    image_format: ImageFormat = "PNG",
) -> Call[models.DetectionResult]:
    form = {
        "min_face_size": min_face_size,
        "max_faces": max_faces,
        "detection_confidence": detection_confidence,
        "return_landmarks": return_landmarks,
        "landmarks": landmarks,
        "return_attributes": return_attributes,
    }
    files = [("image", image_part(image, image_format))]
    return build("detect", models.DetectionResult.from_dict, form=form, files=files)


def register(
    user_id: str,
    image: ImageInput,
    *,
    consent: bool,
    face_index: int | None = None,
    group_id: str | None = None,
    registration_source: str | None = None,
    embedding_model: str | None = None,
    liveness_session: str | None = None,
    image_format: ImageFormat = "PNG",
) -> Call[models.Registration]:
    form = {
        "user_id": user_id,
        "consent": consent,
        "face_index": face_index,
        "group_id": group_id,
        "registration_source": registration_source,
        "embedding_model": embedding_model,
        "liveness_session": liveness_session,
    }
    files = [("image", image_part(image, image_format))]
    return build("register", models.Registration.from_dict, form=form, files=files)


def verify(
    image: ImageInput,
    *,
    user_id: str | None = None,
    image2: ImageInput | None = None,
    mode: Literal["balanced", "strict"] | None = None,
    threshold: float | None = None,
    face_index: int | None = None,
    embedding_model: str | None = None,
    liveness_session: str | None = None,
    image_format: ImageFormat = "PNG",
) -> Call[models.Verification]:
    if (user_id is None) == (image2 is None):
        raise ValueError("verify needs exactly one of user_id (1:1 against an enrolled user) or image2")
    form = {
        "user_id": user_id,
        "mode": mode,
        "threshold": threshold,
        "face_index": face_index,
        "embedding_model": embedding_model,
        "liveness_session": liveness_session,
    }
    files = [("image", image_part(image, image_format))]
    if image2 is not None:
        files.append(("image2", image_part(image2, image_format)))
    return build("verify", models.Verification.from_dict, form=form, files=files)


def identify(
    image: ImageInput,
    *,
    top_k: int | None = None,
    group_id: str | None = None,
    threshold: float | None = None,
    face_index: int | None = None,
    embedding_model: str | None = None,
    image_format: ImageFormat = "PNG",
) -> Call[models.Identification]:
    form = {
        "top_k": top_k,
        "group_id": group_id,
        "threshold": threshold,
        "face_index": face_index,
        "embedding_model": embedding_model,
    }
    files = [("image", image_part(image, image_format))]
    return build("identify", models.Identification.from_dict, form=form, files=files)


def get_user(user_id: str) -> Call[JSON]:
    return build("get_user", raw, path={"user_id": user_id})


def erase_user(user_id: str) -> Call[models.Erasure]:
    return build("erase_user", models.Erasure.from_dict, path={"user_id": user_id})


def _group(body: JSON) -> models.Group:
    return models.Group.from_dict(body["group"])


def _groups(body: JSON) -> list[models.Group]:
    return [models.Group.from_dict(g) for g in body.get("groups", [])]


def create_group(
    group_name: str,
    *,
    description: str | None = None,
    privacy_level: str | None = None,
    owner_user_id: str | None = None,
) -> Call[models.Group]:
    body = {
        "group_name": group_name,
        "description": description,
        "privacy_level": privacy_level,
        "user_id": owner_user_id,
    }
    return build("create_group", _group, body=body)


def list_groups(*, limit: int | None = None, offset: int | None = None) -> Call[list[models.Group]]:
    return build("list_groups", _groups, query={"limit": limit, "offset": offset})


def get_group(group_id: str) -> Call[models.Group]:
    return build("get_group", _group, path={"group_id": group_id})


def delete_group(group_id: str) -> Call[JSON]:
    return build("delete_group", raw, path={"group_id": group_id})


def add_group_members(group_id: str, user_ids: Sequence[str]) -> Call[JSON]:
    return build("add_group_members", raw, path={"group_id": group_id}, body={"user_ids": list(user_ids)})


def remove_group_member(group_id: str, user_id: str) -> Call[JSON]:
    return build("remove_group_member", raw, path={"group_id": group_id, "user_id": user_id})


def demographics(image: ImageInput, *, image_format: ImageFormat = "PNG") -> Call[models.Demographics]:
    files = [("image", image_part(image, image_format))]
    return build("demographics", models.Demographics.from_dict, files=files)


def demographics_batch(images: Sequence[ImageInput], *, image_format: ImageFormat = "PNG") -> Call[JSON]:
    files = [("images", image_part(image, image_format)) for image in images]
    return build("demographics_batch", raw, files=files)


def spoof_check(
    image: ImageInput, *, face_index: int | None = None, image_format: ImageFormat = "PNG"
) -> Call[models.SpoofCheck]:
    files = [("image", image_part(image, image_format))]
    return build("spoof_check", models.SpoofCheck.from_dict, form={"face_index": face_index}, files=files)


def spoof_check_video(
    video: VideoInput,
    *,
    priority: int | None = None,
    callback_url: str | None = None,
    request_source: str | None = None,
) -> Call[JSON]:
    form = {"priority": priority, "callback_url": callback_url, "request_source": request_source}
    return build("spoof_check_video", raw, form=form, files=[("video", video_part(video))])


def get_spoof_check(check_id: str) -> Call[JSON]:
    return build("get_spoof_check", raw, path={"check_id": check_id})


def create_liveness_session(
    *,
    user_id: str | None = None,
    challenges: Sequence[str] | None = None,
    timeout_seconds: int | None = None,
    max_attempts: int | None = None,
) -> Call[models.LivenessSession]:
    body = {
        "user_id": user_id,
        "challenges": None if challenges is None else list(challenges),
        "timeout_seconds": timeout_seconds,
        "max_attempts": max_attempts,
    }
    return build("create_liveness_session", models.LivenessSession.from_dict, body=body)


def get_liveness_session(token: str) -> Call[models.LivenessSession]:
    return build("get_liveness_session", models.LivenessSession.from_dict, path={"token": token})


def send_liveness_frames(
    token: str,
    frames: Sequence[ImageInput] = (),
    *,
    timestamps_ms: Sequence[float] | None = None,
    video: VideoInput | None = None,
    image_format: ImageFormat = "JPEG",
) -> Call[models.LivenessSession]:
    """Frames (JPEG-encoded when the SDK encodes: they are many) with their capture times in ms,
    or one short clip."""
    if bool(frames) == (video is not None):
        raise ValueError("send either frames or a video")
    if timestamps_ms is not None and len(timestamps_ms) != len(frames):
        raise ValueError("timestamps_ms needs one time per frame")
    files = [("frames", image_part(frame, image_format)) for frame in frames]
    if video is not None:
        files.append(("video", video_part(video)))
    times = None if timestamps_ms is None else ",".join(f"{t:g}" for t in timestamps_ms)
    return build(
        "send_liveness_frames",
        models.LivenessSession.from_dict,
        path={"token": token},
        form={"timestamps_ms": times},
        files=files,
    )


def deepfake(
    image: ImageInput,
    *,
    detection_level: Literal["basic", "standard", "advanced"] | None = None,
    return_heatmap: bool | None = None,
    image_format: ImageFormat = "PNG",
) -> Call[models.DeepfakeResult]:
    form = {"detection_level": detection_level, "return_heatmap": return_heatmap}
    files = [("image", image_part(image, image_format))]
    return build("deepfake", models.DeepfakeResult.from_dict, form=form, files=files)


def deepfake_video(
    video: VideoInput,
    *,
    priority: int | None = None,
    callback_url: str | None = None,
    sample_fps: float | None = None,
    detection_level: Literal["basic", "standard", "advanced"] | None = None,
) -> Call[models.Accepted]:
    form = {
        "priority": priority,
        "callback_url": callback_url,
        "sample_fps": sample_fps,
        "detection_level": detection_level,
    }
    return build("deepfake_video", models.Accepted.from_dict, form=form, files=[("video", video_part(video))])


def get_deepfake_analysis(
    analysis_id: str, *, frames_offset: int | None = None, frames_limit: int | None = None
) -> Call[JSON]:
    query = {"frames_offset": frames_offset, "frames_limit": frames_limit}
    return build("get_deepfake_analysis", raw, path={"analysis_id": analysis_id}, query=query)


def delete_deepfake_analysis(analysis_id: str) -> Call[JSON]:
    return build("delete_deepfake_analysis", raw, path={"analysis_id": analysis_id})


def ai_image(
    image: ImageInput,
    *,
    methods: Sequence[str] | None = None,
    run_async: bool | None = None,
    image_format: ImageFormat = "PNG",
) -> Call[models.AiImageResult]:
    """``image_format`` PNG by default: a JPEG re-encoding would change what the forensic
    methods (error levels, noise, metadata) measure; prefer passing the original file."""
    form = {"methods": None if methods is None else ",".join(methods), "async": run_async}
    files = [("image", image_part(image, image_format))]
    return build("ai_image", models.AiImageResult.from_dict, form=form, files=files)


def get_ai_image_result(result_id: str) -> Call[models.AiImageResult]:
    return build("get_ai_image_result", models.AiImageResult.from_dict, path={"result_id": result_id})


def delete_ai_image_result(result_id: str) -> Call[JSON]:
    return build("delete_ai_image_result", raw, path={"result_id": result_id})


def counting_video(
    video: VideoInput,
    *,
    lines: Sequence[Mapping[str, Any]] | None = None,
    zones: Sequence[Mapping[str, Any]] | None = None,
    sample_fps: float | None = None,
    min_confidence: float | None = None,
    priority: int | None = None,
    callback_url: str | None = None,
) -> Call[models.Accepted]:
    """``lines``: ``[{"name", "start": [x, y], "end": [x, y]}]`` in video pixels; ``zones``:
    ``[{"name", "polygon": [[x, y], ...]}]`` (docs/api.md "People counting")."""
    form = {
        "lines": None if lines is None else [dict(line) for line in lines],
        "zones": None if zones is None else [dict(zone) for zone in zones],
        "sample_fps": sample_fps,
        "min_confidence": min_confidence,
        "priority": priority,
        "callback_url": callback_url,
    }
    return build("counting_video", models.Accepted.from_dict, form=form, files=[("video", video_part(video))])


def list_counting_videos(
    *, status: str | None = None, offset: int | None = None, limit: int | None = None
) -> Call[JSON]:
    return build("list_counting_videos", raw, query={"status": status, "offset": offset, "limit": limit})


def get_counting_video(video_id: str) -> Call[JSON]:
    return build("get_counting_video", raw, path={"video_id": video_id})


def delete_counting_video(video_id: str) -> Call[JSON]:
    return build("delete_counting_video", raw, path={"video_id": video_id})


def counting_events(
    video_id: str,
    *,
    line: str | None = None,
    zone: str | None = None,
    offset: int | None = None,
    limit: int | None = None,
) -> Call[JSON]:
    query = {"line": line, "zone": zone, "offset": offset, "limit": limit}
    return build("counting_events", raw, path={"video_id": video_id}, query=query)


def counting_tracks(
    video_id: str, *, trajectory: bool | None = None, offset: int | None = None, limit: int | None = None
) -> Call[JSON]:
    query = {"trajectory": trajectory, "offset": offset, "limit": limit}
    return build("counting_tracks", raw, path={"video_id": video_id}, query=query)


def counting_timeline(video_id: str, *, offset: int | None = None, limit: int | None = None) -> Call[JSON]:
    query = {"offset": offset, "limit": limit}
    return build("counting_timeline", raw, path={"video_id": video_id}, query=query)


def _bytes(body: Any) -> bytes:
    return bytes(body)


def counting_preview(video_id: str) -> Call[bytes]:
    return build("counting_preview", _bytes, path={"video_id": video_id}, binary=True)


def list_jobs(
    *, status: str | None = None, limit: int | None = None, offset: int | None = None
) -> Call[JSON]:
    return build("list_jobs", raw, query={"status": status, "limit": limit, "offset": offset})


def get_job(job_id: str) -> Call[models.Job]:
    return build("get_job", models.Job.from_dict, path={"job_id": job_id})


def cancel_job(job_id: str) -> Call[models.Job]:
    return build("cancel_job", models.Job.from_dict, path={"job_id": job_id})


def list_models() -> Call[JSON]:
    return build("list_models", raw)


def get_model(model_id: str) -> Call[JSON]:
    return build("get_model", raw, path={"model_id": model_id})


def model_versions(model_id: str) -> Call[JSON]:
    return build("model_versions", raw, path={"model_id": model_id})


def deploy_model(model_id: str, version: str, *, force: bool | None = None) -> Call[JSON]:
    return build("deploy_model", raw, path={"model_id": model_id}, body={"version": version, "force": force})


def start_canary(model_id: str, version: str, percent: float, *, force: bool | None = None) -> Call[JSON]:
    body = {"version": version, "percent": percent, "force": force}
    return build("start_canary", raw, path={"model_id": model_id}, body=body)


def end_canary(model_id: str) -> Call[JSON]:
    return build("end_canary", raw, path={"model_id": model_id})


def promote_canary(model_id: str, *, force: bool | None = None) -> Call[JSON]:
    return build("promote_canary", raw, path={"model_id": model_id}, body={"force": force})


def rollback_model(model_id: str, version: str, reason: str, *, force: bool | None = None) -> Call[JSON]:
    body = {"version": version, "reason": reason, "force": force}
    return build("rollback_model", raw, path={"model_id": model_id}, body=body)


def create_experiment(
    name: str,
    model_id: str,
    baseline_version: str,
    challenger_version: str,
    *,
    description: str | None = None,
    traffic_split_percent: float | None = None,
    traffic_split_method: Literal["random", "user", "session"] | None = None,
    minimum_sample_size: int | None = None,
    confidence_level: float | None = None,
    success_metrics: Sequence[str] | None = None,
    success_thresholds: Mapping[str, float] | None = None,
    duration_days: int | None = None,
) -> Call[JSON]:
    body = {
        "name": name,
        "description": description,
        "model_id": model_id,
        "baseline_version": baseline_version,
        "challenger_version": challenger_version,
        "traffic_split_percent": traffic_split_percent,
        "traffic_split_method": traffic_split_method,
        "minimum_sample_size": minimum_sample_size,
        "confidence_level": confidence_level,
        "success_metrics": None if success_metrics is None else list(success_metrics),
        "success_thresholds": None if success_thresholds is None else dict(success_thresholds),
        "duration_days": duration_days,
    }
    return build("create_experiment", raw, body=body)


def list_experiments(
    *,
    page: int | None = None,
    page_size: int | None = None,
    status: str | None = None,
    model_id: str | None = None,
) -> Call[JSON]:
    query = {"page": page, "page_size": page_size, "status": status, "model_id": model_id}
    return build("list_experiments", raw, query=query)


def get_experiment(experiment_id: str) -> Call[JSON]:
    return build("get_experiment", raw, path={"experiment_id": experiment_id})


def start_experiment(experiment_id: str, *, force: bool | None = None) -> Call[JSON]:
    return build("start_experiment", raw, path={"experiment_id": experiment_id}, body={"force": force})


def stop_experiment(experiment_id: str) -> Call[JSON]:
    return build("stop_experiment", raw, path={"experiment_id": experiment_id})


def experiment_results(experiment_id: str) -> Call[JSON]:
    return build("experiment_results", raw, path={"experiment_id": experiment_id})


def feedback(
    experiment_id: str, inference_id: str, *, correct: bool | None = None, value: float | None = None
) -> Call[JSON]:
    """The outcome of one answer (``inference_id`` = the answer's ``serving.inference_id``)."""
    body = {"inference_id": inference_id, "correct": correct, "value": value}
    return build("feedback", raw, path={"experiment_id": experiment_id}, body=body)
