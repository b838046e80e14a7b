"""One place shapes every SkyGate answer: the metadata document, the method rows, the report body.

The synchronous answer of ``POST /analyze`` and ``GET /results/{id}`` are both made by
:func:`report_body` from the same stored pieces (upload row, result row, metadata document,
method rows), so they cannot drift apart.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from facesocial.domains.ai_detection import images
from facesocial.forensics.ai_image import report
from facesocial.forensics.ai_image.analyzer import AiImageReport
from facesocial.forensics.ai_image.ensemble import Verdict
from facesocial.forensics.ai_image.report import MethodResult
from facesocial.store.tables import AiDetectionResult, AiUpload
from facesocial.store.types import iso as _iso

# Learned methods: document 003's ``model_results`` list.
_MODEL_METHODS = (report.MODEL, report.EXTRA_MODEL, report.FACES)
_RESULTS = "/api/v1/ai-detection/results"


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars/arrays as plain values and NaN/inf as None (JSONB refuses them)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # numpy scalar or array
        return jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return str(value)


def method_details(result: MethodResult, verdict: Verdict) -> dict[str, Any]:
    """``method_results.result_details``: the method's whole report entry, with the ``weight`` it
    entered the ensemble with and ``in_ensemble`` — False for a method that had no opinion or weighs
    0 (e.g. ELA by default: its ``is_ai_generated`` is then the method's own view, not the verdict's)."""
    factor = next((f for f in verdict.factors if f["factor"] == result.name), None)
    entry = result.as_dict()
    entry["in_ensemble"] = factor is not None
    entry["weight"] = factor["weight"] if factor is not None else None
    return jsonable(entry)  # type: ignore[no-any-return]


def _pixel(result: MethodResult | None, score_key: str) -> dict[str, Any] | None:
    if result is None:
        return None
    return {
        score_key: None if result.score is None else round(result.score, 4),
        "is_suspicious": result.is_ai_generated,
        "confidence": result.confidence,
        "version": result.version,
    }


def document(
    *,
    result_id: str,
    upload_id: str,
    tenant_id: str,
    found: AiImageReport,
    verdict: Verdict,
    has_ela: bool,
    has_heatmap: bool,
    created_at: datetime,
) -> dict[str, Any]:
    """Document 003's ``detection_metadata`` (same structure; ``user_id`` is ``tenant_id``).

    Extra keys beyond the document: ``pixel_analysis.spectrum_analysis`` (the frequency method),
    ``aggregated_results.band/decided_by/thresholds``, ``faces``, ``timings_ms``.
    """
    meta = found.method(report.METADATA)
    exif = dict(found.exif_data)
    if meta is not None:
        exif["analysis_result"] = {
            "is_suspicious": meta.is_ai_generated,
            "confidence": meta.confidence,
            "anomalies": list(meta.details.get("anomalies", [])),
        }
    ela = _pixel(found.method(report.ELA), "error_level_score")
    if ela is not None:
        ela["ela_image_path"] = images.url(result_id, images.ELA) if has_ela else None
    verdict_dict = verdict.as_dict()
    stamp = created_at.isoformat()
    doc = {
        "result_id": result_id,
        "upload_id": upload_id,
        "tenant_id": tenant_id,
        "file_info": found.file_info,
        "exif_data": exif,
        "pixel_analysis": {
            "prnu_results": _pixel(found.method(report.NOISE), "pattern_score"),
            "ela_results": ela,
            "texture_analysis": _pixel(found.method(report.TEXTURE), "smoothness_score"),
            "spectrum_analysis": _pixel(found.method(report.FREQUENCY), "spectrum_score"),
        },
        "model_results": [
            {
                "model_name": m.name,
                "model_version": m.version,
                "is_ai_generated": m.is_ai_generated,
                "confidence": m.confidence,
                "score": None if m.score is None else round(m.score, 4),
                "processing_time": round(m.processing_time_ms / 1000.0, 3),
                "feature_importance": m.details.get("feature_importance", {}),
            }
            for m in found.methods
            if m.name in _MODEL_METHODS
        ],
        "visual_anomalies": {
            "detected_anomalies": [a.as_dict() for a in found.anomalies],
            "heatmap_path": images.url(result_id, images.HEATMAP) if has_heatmap else None,
        },
        "aggregated_results": {
            "is_ai_generated": verdict_dict["is_ai_generated"],
            "confidence_score": verdict_dict["confidence_score"],
            "contributing_factors": verdict_dict["contributing_factors"],
            "band": verdict_dict["band"],
            "decided_by": verdict_dict["decided_by"],
            "thresholds": verdict_dict["thresholds"],
        },
        "faces": found.faces,
        "timings_ms": found.timings_ms,
        "created_at": stamp,
        "updated_at": stamp,
    }
    return jsonable(doc)  # type: ignore[no-any-return]


def summary(verdict: Verdict) -> str:
    """``detection_results.result_summary``: the band, the score, who set it, the largest factors."""
    factors = ", ".join(f"{f['factor']} {f['contribution']:.2f}" for f in verdict.factors[:3])
    text = f"{verdict.band} (score {verdict.score:.3f})"
    if verdict.decided_by not in (None, "weighted_mean"):
        # A decisive or local method set the score alone (forensics/ai_image/ensemble.py).
        text += f", set by {verdict.decided_by} alone above the weighted mean"
    return f"{text}; largest contributions to the weighted mean: {factors or 'none'}"


def upload_fields(upload: AiUpload) -> dict[str, Any]:
    rid = str(upload.upload_id)
    return {
        "result_id": rid,
        "upload_id": rid,
        "status": upload.status,
        "original_file_name": upload.original_file_name,
        "file_type": upload.file_type,
        "mime_type": upload.mime_type,
        "file_size": upload.file_size,
        "upload_date": _iso(upload.upload_date),
        "is_processed": upload.is_processed,
        "processing_started_at": _iso(upload.processing_started_at),
        "processing_completed_at": _iso(upload.processing_completed_at),
        "thumbnail_url": upload.thumbnail_path,
        "job_id": upload.job_id,
        "result_url": f"{_RESULTS}/{rid}",
    }


def report_body(
    upload: AiUpload,
    result: AiDetectionResult,
    doc: Mapping[str, Any],
    methods: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The whole report (``POST /analyze`` 200 and ``GET /results/{id}`` once completed)."""
    aggregated = doc.get("aggregated_results", {})
    anomalies = doc.get("visual_anomalies", {})
    ela = (doc.get("pixel_analysis") or {}).get("ela_results") or {}
    meta = next((m for m in methods if m.get("method") == report.METADATA), None)
    metadata = dict(meta.get("details") or {}) if meta is not None else {}
    metadata.setdefault("exif_data", doc.get("exif_data"))
    return {
        **upload_fields(upload),
        "is_ai_generated": result.is_ai_generated,
        "confidence_score": result.confidence_score,
        "band": result.band,
        "contributing_factors": aggregated.get("contributing_factors", []),
        "decided_by": aggregated.get("decided_by"),
        "thresholds": aggregated.get("thresholds"),
        "result_summary": result.result_summary,
        "methods": list(methods),
        "metadata": metadata,
        "visual_anomalies": {
            "detected_anomalies": anomalies.get("detected_anomalies", []),
            "heatmap_url": anomalies.get("heatmap_path"),
            # Boxes are in image pixels; the report's PNGs are at most 512 px on their longest side.
            "boxes_in": "image_pixels",
        },
        "ela_url": ela.get("ela_image_path"),
        # The registry's decision for the ai_image slot (None for reports made before routing).
        "serving": doc.get("serving"),
        "faces": doc.get("faces", []),
        "file_info": doc.get("file_info"),
        "algorithm_version": result.algorithm_version,
        "model_versions": {str(m.get("method")): m.get("version") for m in methods},
        "processing_time_ms": round(float(result.processing_time) * 1000.0, 1),
        "timings_ms": doc.get("timings_ms", {}),
        "detection_date": _iso(result.detection_date),
    }


def pending_body(upload: AiUpload, job: Mapping[str, Any] | None) -> dict[str, Any]:
    """``GET /results/{id}`` before the report exists: status, progress and any error."""
    body = upload_fields(upload)
    if job is not None:
        body["status"] = job["status"] if upload.status not in ("failed", "cancelled") else upload.status
        body["progress_percentage"] = job["progress_percentage"]
        body["estimated_completion"] = job["estimated_completion"]
    else:
        body["progress_percentage"] = 0.0
    if upload.error_code or (job is not None and job.get("error_code")):
        body["error"] = {
            "code": upload.error_code or (job or {}).get("error_code"),
            "message": upload.error_message or (job or {}).get("error_message"),
        }
    return body
