"""Rows of the experiment tables → response bodies (one place decides every answer's shape).

Times are ISO 8601 UTC strings; percentages are 0..100; rates, confidences and p-values 0..1.
"""

from __future__ import annotations

from typing import Any

from facesocial.store.tables_registry import (
    AbConclusion,
    AbExperiment,
    ModelComparisonMetric,
    ModelDriftMetric,
    ModelPerformanceMetric,
)
from facesocial.store.types import iso as _iso


def experiment(row: AbExperiment) -> dict[str, Any]:
    return {
        "experiment_id": row.experiment_id,
        "name": row.experiment_name,
        "description": row.description,
        "model_id": row.model_id,
        "baseline_version": row.baseline_version,
        "challenger_version": row.challenger_version,
        "traffic_split_percent": float(row.traffic_split_percent),
        "traffic_split_method": row.traffic_split_method,
        "minimum_sample_size": row.minimum_sample_size,
        "confidence_level": float(row.confidence_level),
        "success_metrics": list(row.success_metrics or []),
        "success_thresholds": dict(row.success_thresholds or {}),
        "duration_days": row.experiment_duration_days,
        "status": row.experiment_status,
        "start_date": _iso(row.start_date),
        "end_date": _iso(row.end_date),
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
    }


def conclusion(row: AbConclusion) -> dict[str, Any]:
    return {
        "recommendation": row.recommendation,
        "reason": row.conclusion_reason,
        "winner_version": row.winner_version,
        "expected_improvement_percent": row.expected_improvement_percent,
        "confidence_level": row.confidence_level,
        "risk": row.risk_assessment,
        "deployment_strategy": row.deployment_strategy,
        "created_at": _iso(row.created_at),
    }


def comparison(row: ModelComparisonMetric) -> dict[str, Any]:
    return {
        "comparison_id": row.comparison_id,
        "experiment_id": row.experiment_id,
        "baseline_version": row.baseline_version,
        "challenger_version": row.challenger_version,
        "accuracy_improvement": row.accuracy_improvement,
        "latency_improvement_percent": row.latency_improvement_percent,
        "is_statistically_significant": row.is_statistically_significant,
        "p_value": row.p_value,
        "confidence_interval": row.confidence_interval,
        "status": row.comparison_status,
        "winner_version": row.winner_version,
        "created_at": _iso(row.created_at),
        "completed_at": _iso(row.completed_at),
    }


def drift(row: ModelDriftMetric) -> dict[str, Any]:
    return {
        "drift_id": str(row.id),
        "model_id": row.model_id,
        "model_version": row.model_version,
        "checked_at": _iso(row.drift_timestamp),
        "baseline": {"start": _iso(row.baseline_start), "end": _iso(row.baseline_end)},
        "current": {"start": _iso(row.window_start), "end": _iso(row.window_end)},
        "severity": row.drift_severity,
        "drift_type": row.drift_type,
        "data_drift_score": row.data_drift_score,
        "model_drift_score": row.model_drift_score,
        "concept_drift_score": row.concept_drift_score,
        "alerted": row.is_alerted,
        "alert_threshold": row.alert_threshold,
        "features": row.drift_features or {},
    }


def performance(row: ModelPerformanceMetric) -> dict[str, Any]:
    return {
        "model_id": row.model_id,
        "model_version": row.model_version,
        "computed_at": _iso(row.metric_timestamp),
        "window": {"start": _iso(row.window_start), "end": _iso(row.window_end)},
        "sample_size": row.sample_size,
        "latency_mean_ms": row.inference_latency_ms,
        "latency_p95_ms": row.latency_p95_ms,
        "throughput_per_second": row.throughput_fps,
        "accuracy": row.accuracy_score,
        "detection_rate": row.detection_rate,
    }
