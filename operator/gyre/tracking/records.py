"""What one training pod logs to MLflow: params, metrics, lineage tags and artifacts, from its spec, report and
manifest. Pure: gyre.tracking.mlflow sends it.

- params: the estimator's parameters under their own names (as scikit-learn spells them), plus `estimator`,
  `target`, `split.test_size`, `split.seed`; a search's parent run gets `search.*` (strategy, space, metric, goal).
- metrics: the test metrics as status.metrics names them, `slice.<column>.<value>.<metric>` per slice and
  `slice_gap.<metric>` (docs/fairness.md).
- tags (`gyre.*`): the lineage (TrainingRun namespace/name/uid, Dataset name, version, fingerprint and data URI,
  trigger, image), the model (URI, digest, ONNX status), the gates' verdict, and failures' reason and message.
- artifacts: manifest.json, report.json and the model card (card.md, card.html) when the model directory has them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from gyre.api.trainingrun import TrainingRunSpec
from gyre.tracking.mlflow import TAG_TRIAL, RunRecord, SearchSummary
from gyre.training.manifest import ModelManifest
from gyre.training.report import TrainReport

__all__ = ["ARTIFACT_FILES", "build_record", "metric_key"]

ARTIFACT_FILES = ("card.md", "card.html", "manifest.json", "report.json")
"""Files of the model directory logged as artifacts, when present."""
_PARAM_CHARS = 6000  # MLflow's limit on a param value
_TAG_CHARS = 5000  # and (conservatively) on a tag value
_KEY = re.compile(r"[^A-Za-z0-9_\-. /]")


def metric_key(*parts: str) -> str:
    """An MLflow metric name from parts, characters MLflow refuses in names replaced by `_`."""
    return ".".join(_KEY.sub("_", p) for p in parts)[:250]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def _params(spec: TrainingRunSpec, params: Mapping[str, Any], target: str | None) -> dict[str, str]:
    split = spec.split
    out = {str(k): _text(v)[:_PARAM_CHARS] for k, v in params.items()}
    out.update(
        {
            "estimator": spec.estimator.kind,
            "split.test_size": _text(split.test_size if split else 0.2),
            "split.seed": _text(split.seed if split else 42),
        }
    )
    if target:
        out["target"] = target
    return out


def _search_summary(spec: TrainingRunSpec, target: str | None) -> SearchSummary | None:
    if spec.search is None:
        return None
    from gyre.reconcile.trainingrun import primary_metric

    metric, goal = primary_metric(spec)
    search = spec.search
    params = _params(spec, spec.estimator.params or {}, target)
    params.update(
        {
            "search.strategy": search.strategy,
            "search.trials": str(search.trial_count()),
            "search.metric": metric,
            "search.goal": goal,
            "search.space": _text(
                {k: v.model_dump(by_alias=True, exclude_none=True) for k, v in search.space.items()}
            )[:_PARAM_CHARS],
        }
    )
    return SearchSummary(trials=search.trial_count(), metric=metric, goal=goal, params=params)


def _slice_metrics(manifest: ModelManifest | None) -> dict[str, float]:
    if manifest is None or manifest.slices is None:
        return {}
    out = {metric_key("slice_gap", m): v for m, v in manifest.slices.gaps.items()}
    for entry in manifest.slices.slices:
        for name, value in entry.metrics.items():
            out[metric_key("slice", entry.column, entry.value, name)] = value
    return out


def build_record(
    spec: TrainingRunSpec,
    report: TrainReport,
    *,
    namespace: str,
    name: str,
    uid: str,
    trial: int | None,
    trigger: str,
    target: str | None,
    dataset_uri: str,
    dataset_version: int | None,
    image: str | None,
    manifest: ModelManifest | None,
    files: Mapping[str, bytes],
) -> RunRecord:
    """The run one pod logs: a single run, or trial `trial` of a search (a child of the search's parent run)."""
    lineage = {
        "gyre.trainingrun.namespace": namespace,
        "gyre.trainingrun.name": name,
        "gyre.trainingrun.uid": uid,
        "gyre.dataset": spec.dataset_ref.name,
        "gyre.dataset.uri": dataset_uri,
        "gyre.trigger": trigger,
        "gyre.estimator": spec.estimator.kind,
        "mlflow.source.type": "JOB",
        "mlflow.source.name": "gyre train",
    }
    fingerprint = report.dataset_fingerprint or (
        manifest.dataset.fingerprint if manifest and manifest.dataset else None
    )
    if fingerprint:
        lineage["gyre.dataset.fingerprint"] = fingerprint
    if dataset_version is not None:
        lineage["gyre.dataset.version"] = str(dataset_version)
    used_image = (manifest.image if manifest else None) or image
    if used_image:
        lineage["gyre.image"] = used_image
    tags = dict(lineage)
    tags["gyre.phase"] = report.phase
    if report.task:
        tags["gyre.task"] = report.task
    if report.model_uri:
        tags["gyre.model.uri"] = report.model_uri
    if report.model_sha256:
        tags["gyre.model.sha256"] = report.model_sha256
    if report.onnx:
        tags["gyre.onnx"] = report.onnx
    if report.gates is not None:
        tags["gyre.gates.passed"] = "true" if report.gates.passed else "false"
        tags["gyre.gates.message"] = report.gates.message[:_TAG_CHARS]
    if report.phase != "Succeeded":
        tags["gyre.error.reason"] = report.reason or "TrainingFailed"
        tags["gyre.error"] = (report.error or "")[:_TAG_CHARS]
    if trial is not None and spec.search is not None:
        tags[TAG_TRIAL] = str(trial)
    run_name = f"{name}-trial-{trial}" if trial is not None and spec.search is not None else name
    return RunRecord(
        name=run_name,
        status="FINISHED" if report.phase == "Succeeded" else "FAILED",
        params=_params(spec, report.params or {}, target),
        metrics={**report.metrics, **_slice_metrics(manifest)},
        tags=tags,
        artifacts=tuple((path, files[path]) for path in ARTIFACT_FILES if path in files),
        trial=trial if spec.search is not None else None,
        search=_search_summary(spec, target),
        parent_tags=lineage,
    )
