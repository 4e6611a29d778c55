"""The DriftMonitor's check Job and the TrainingRun it creates to retrain. Pure: spec in, dicts out."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any, Literal

from gyre.api.common import API_VERSION, TRIGGER_ANNOTATION, TRIGGER_CAUSE_ANNOTATION, parse_duration
from gyre.api.driftmonitor import (
    DriftMonitorSpec,
    PerformanceTolerance,
    PerformanceWindow,
    Thresholds,
    Window,
)
from gyre.api.env import DRIFT_CONFIG, PERFORMANCE_CONFIG
from gyre.builders.meta import Owner, child_name, labels_for
from gyre.builders.pods import build_job, container_resources
from gyre.builders.settings import PVC_MOUNT_PATH, OperatorSettings
from gyre.store.store import resolve_store_url

__all__ = [
    "CHECKER",
    "LABEL_RETRAINED_BY",
    "PerformanceTarget",
    "build_check_job",
    "build_retrain_run",
    "check_job_name",
    "drift_config",
    "merge_spec",
    "performance_config",
    "retrain_run_name",
]

CHECKER = "drift-check"
LABEL_RETRAINED_BY = "gyre.dev/retrained-by"
_CHECK_RESOURCES = {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}}


def check_job_name(owner: Owner, check: int) -> str:
    """`<monitor>-check-<n>`: one Job per check number, so a restarted operator never runs a check twice."""
    return child_name(owner.name, f"check-{check}")


def drift_config(spec: DriftMonitorSpec, features: list[str]) -> dict[str, Any]:
    """The gyre.drift DriftConfig (JSON-ready, camelCase) for the monitor's thresholds and window.

    `features` are the served model's input columns: the target and any column the model never sees are not
    compared, since the prediction log cannot contain them.
    """
    thresholds = spec.thresholds or Thresholds()
    window = spec.window or Window()
    per_feature = thresholds.per_feature or {}
    overrides: dict[str, Any] = {}
    for column, override in sorted(per_feature.items()):
        pairs = (
            ("method", override.method),
            ("threshold", override.threshold),
            ("minEffect", override.min_effect),
            ("missingMinIncrease", override.min_missing_increase),
        )
        entry = {k: v for k, v in pairs if v is not None}
        if override.enabled and entry:
            overrides[column] = entry
    return {
        "preset": thresholds.preset,
        "alpha": thresholds.alpha,
        "missingCountsAsDrift": thresholds.missing_counts_as_drift,
        "driftShare": thresholds.drift_share,
        "minRows": window.min_rows,
        "columns": [f for f in features if per_feature.get(f) is None or per_feature[f].enabled],
        "overrides": overrides,
    }


@dataclass(frozen=True)
class PerformanceTarget:
    """The served model a performance check compares with."""

    model_uri: str
    """Its model directory (a store URL): manifest.json there holds the task, classes and test metrics."""
    model_version: str
    """Its TrainingRun: the version the server logs with each prediction."""


def _model_ref(settings: OperatorSettings, namespace: str, model_uri: str) -> str:
    """The model directory as the check pod reads it: a path relative to its store root when the model lives in
    that store (read through the same mount and credentials as the prediction log), else the full URL."""
    root = resolve_store_url(settings.store_url(namespace), pvc_mount=PVC_MOUNT_PATH).rstrip("/") + "/"
    return model_uri.removeprefix(root) if model_uri.startswith(root) else model_uri


def performance_config(spec: DriftMonitorSpec, check: int) -> dict[str, Any] | None:
    """The gyre.performance PerformanceConfig (JSON-ready, camelCase) of spec.performance; None when it is off.

    The bootstrap seed is the check number: a check's intervals can be recomputed exactly, and successive checks
    do not share their resampling noise.
    """
    perf = spec.performance
    if perf is None or not perf.enabled:
        return None
    window = perf.window or PerformanceWindow()
    tolerance = perf.tolerance or PerformanceTolerance()
    config: dict[str, Any] = {
        "relativeDrop": tolerance.relative_drop,
        "maxDrop": dict(sorted((tolerance.max_drop or {}).items())),
        "minLabelledRows": window.min_labelled_rows,
        "confidence": tolerance.confidence,
        "seed": check,
    }
    if perf.metrics:
        config["metrics"] = list(perf.metrics)
    return config


def build_check_job(
    owner: Owner,
    spec: DriftMonitorSpec,
    settings: OperatorSettings,
    *,
    check: int,
    deployment: str,
    profile_path: str,
    config_json: str,
    performance: PerformanceTarget | None = None,
) -> dict[str, Any]:
    """The Job that runs check number `check` (`gyre drift run`) against `deployment`'s prediction log; with
    `performance` (and spec.performance enabled) it also checks the served model's performance on labelled
    predictions."""
    window = spec.window or Window()
    args = [
        "drift",
        "run",
        "--store",
        settings.store_url(owner.namespace),
        "--namespace",
        owner.namespace,
        "--deployment",
        deployment,
        "--monitor",
        owner.name,
        "--check",
        str(check),
        "--profile",
        profile_path,
        "--max-rows",
        str(window.max_rows),
        "--max-age-seconds",
        str(int(parse_duration(window.max_age).total_seconds())),
    ]
    env = [{"name": DRIFT_CONFIG, "value": config_json}]
    perf_config = performance_config(spec, check) if performance is not None else None
    if performance is not None and perf_config is not None and spec.performance is not None:
        perf_window = spec.performance.window or PerformanceWindow()
        args += [
            "--performance-baseline",
            _model_ref(settings, owner.namespace, performance.model_uri),
            "--model-version",
            performance.model_version,
            "--performance-max-rows",
            str(perf_window.max_rows),
            "--performance-max-age-seconds",
            str(int(parse_duration(perf_window.max_age).total_seconds())),
        ]
        env.append({"name": PERFORMANCE_CONFIG, "value": json.dumps(perf_config, sort_keys=True)})
    return build_job(
        owner=owner,
        name=check_job_name(owner, check),
        component=CHECKER,
        image=settings.image,
        args=args,
        env=env,
        resources=container_resources(None, _CHECK_RESOURCES),
        settings=settings,
        active_deadline_seconds=600,
        backoff_limit=0,
        annotations={"gyre.dev/check": str(check)},
    )


def merge_spec(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """`overrides` merged into a copy of `base`: nested objects merge key by key, anything else replaces."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_spec(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def retrain_run_name(owner: Owner, check: int) -> str:
    """`<monitor>-retrain-<check>`: deterministic, so a retry after a crash finds the run it already made."""
    return child_name(owner.name, f"retrain-{check}", limit=253)


def build_retrain_run(
    owner: Owner,
    spec: DriftMonitorSpec,
    *,
    check: int,
    served_run_spec: dict[str, Any],
    served_run_labels: dict[str, str],
    cause: Literal["input_drift", "performance"] = "input_drift",
) -> dict[str, Any]:
    """A TrainingRun like the one behind the served model, on the Dataset's latest version.

    Its annotations name the trigger (`drift:<ns>/<monitor>#<check>`) and the cause (input_drift or performance),
    which the TrainingRun copies into status.lineage.

    The served run's fingerprint pin is dropped (retraining exists to see new data), the template's spec is merged
    over it, and labels carry over so the ModelDeployment's promotion selector still matches the new run.
    """
    template = spec.retrain.template if spec.retrain else None
    run_spec = merge_spec(served_run_spec, (template.spec if template and template.spec else {}))
    dataset_ref = dict(run_spec.get("datasetRef") or {})
    dataset_ref.pop("fingerprint", None)
    run_spec["datasetRef"] = dataset_ref
    labels = {
        k: v
        for k, v in served_run_labels.items()
        if not k.startswith(("gyre.dev/owner-", "app.kubernetes.io/"))
    }
    labels.update(template.labels if template and template.labels else {})
    labels.update(labels_for(owner, "retrain"))
    labels[LABEL_RETRAINED_BY] = labels["gyre.dev/owner-name"]
    return {
        "apiVersion": API_VERSION,
        "kind": "TrainingRun",
        "metadata": {
            "name": retrain_run_name(owner, check),
            "namespace": owner.namespace,
            "labels": labels,
            "annotations": {
                TRIGGER_ANNOTATION: f"drift:{owner.namespace}/{owner.name}#{check}",
                TRIGGER_CAUSE_ANNOTATION: cause,
            },
        },
        "spec": run_spec,
    }
