"""Rows of the model registry → response bodies (one place decides every answer's shape).

Times are ISO 8601 UTC strings; versions are model tags (``name@version``); percentages 0..100.
"""

from __future__ import annotations

from typing import Any

from facesocial.store.tables_registry import AbExperiment, DeploymentPipeline, ModelVersion, RegisteredModel
from facesocial.store.types import iso as _iso


def version(row: ModelVersion) -> dict[str, Any]:
    return {
        "version": row.version_number,
        "stage": row.deployment_status,
        "canary_percent": row.canary_percent,
        "is_installed": row.is_installed,
        "description": row.version_description,
        "file_path": row.model_file_path,
        "file_size_mb": row.model_file_size_mb,
        "sha256": row.model_file_checksum,
        "source": row.source_package,
        "licence": row.licence,
        "training_dataset": row.training_dataset,
        "validation_accuracy": row.validation_accuracy,
        "validation_metrics": row.validation_metrics,
        "deployed_at": _iso(row.deployment_timestamp),
        "updated_at": _iso(row.updated_at),
    }


def experiment_brief(row: AbExperiment) -> dict[str, Any]:
    return {
        "experiment_id": row.experiment_id,
        "name": row.experiment_name,
        "baseline_version": row.baseline_version,
        "challenger_version": row.challenger_version,
        "traffic_split_percent": row.traffic_split_percent,
        "traffic_split_method": row.traffic_split_method,
        "started_at": _iso(row.start_date),
    }


def slot(
    model: RegisteredModel, versions: list[ModelVersion], experiment: AbExperiment | None
) -> dict[str, Any]:
    """A slot: ``production`` (tag or null), ``canary`` ({version, percent} or null),
    ``experiment`` (the running one or null) and every version."""
    canary = next((v for v in versions if v.canary_percent), None)
    return {
        "model_id": model.model_id,
        "name": model.model_name,
        "type": model.model_type,
        "description": model.model_description,
        "production": model.model_version,
        "canary": {"version": canary.version_number, "percent": canary.canary_percent} if canary else None,
        "experiment": experiment_brief(experiment) if experiment is not None else None,
        "versions": [version(v) for v in versions],
        "updated_at": _iso(model.updated_at),
    }


def deployment(row: DeploymentPipeline) -> dict[str, Any]:
    config = row.deployment_config or {}
    return {
        "pipeline_id": row.pipeline_id,
        "model_id": row.model_id,
        "version": row.version_number,
        "action": config.get("action"),
        "stages": row.pipeline_stages,
        "current_stage": row.current_stage,
        "status": row.pipeline_status,
        "config": config,
        "can_rollback": row.can_rollback,
        "rollback_version": row.rollback_version,
        "rollback_reason": row.rollback_reason,
        "created_by": str(row.created_by) if row.created_by else None,
        "created_at": _iso(row.created_at),
    }
