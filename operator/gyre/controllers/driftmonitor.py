"""DriftMonitor controller: schedule check Jobs, fold their verdicts into status, and retrain with guard rails.

A retrain is two steps, so the new model sees the new data: first the Dataset is asked to re-read its source
(annotation gyre.dev/refresh-requested-at), then, once it has, a TrainingRun is created from the served run's spec.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import kopf
from prometheus_client import Gauge
from pydantic import ValidationError

from gyre.api.common import GROUP, VERSION, parse_duration, set_condition, utcnow
from gyre.api.driftmonitor import DriftMonitorSpec, DriftMonitorStatus, FeatureDrift, RetrainSpec, Schedule
from gyre.builders.drift import build_check_job, build_retrain_run, drift_config
from gyre.controllers import apply as k8s
from gyre.controllers import kube
from gyre.controllers.common import (
    dump_status,
    emit,
    ensure_artifact_pvc,
    format_validation_error,
    mine,
    owner_from_body,
    status_patch,
)
from gyre.controllers.common import settings as operator_settings
from gyre.controllers.dataset import REFRESH_ANNOTATION
from gyre.drift.monitor_run import CheckReport
from gyre.store.layout import dataset_profile_path

__all__ = [
    "RetrainDecision",
    "decide_retrain",
    "next_check_time",
    "tick_driftmonitor",
]

PLURAL = "driftmonitors"
log = logging.getLogger(__name__)

FEATURE_SCORE = Gauge(
    "gyre_drift_feature_score",
    "Drift statistic of one feature in the last check",
    ["namespace", "monitor", "feature", "method"],
)
FEATURE_DRIFTED = Gauge(
    "gyre_drift_feature_drifted",
    "1 when the feature drifted in the last check",
    ["namespace", "monitor", "feature"],
)
DRIFT_SHARE = Gauge(
    "gyre_drift_share", "Share of drifted features in the last check", ["namespace", "monitor"]
)
DRIFT_DETECTED = Gauge(
    "gyre_drift_detected", "1 when the last check found dataset drift", ["namespace", "monitor"]
)


def next_check_time(schedule: Schedule, last: datetime | None, now: datetime) -> datetime:
    """When the next check is due: right away for a new monitor, else one interval (or the next cron time) later."""
    if last is None:
        return now
    if schedule.interval is not None:
        return last + parse_duration(schedule.interval)
    from croniter import croniter

    assert schedule.cron is not None  # CEL: exactly one of interval or cron
    nxt: datetime = croniter(schedule.cron, last).get_next(datetime)
    return nxt


@dataclass(frozen=True)
class RetrainDecision:
    """What to do after a check, and why (the reason is shown in the Retraining condition)."""

    action: Literal["none", "retrain", "dry_run", "held"]
    reason: str
    message: str


def decide_retrain(
    retrain: RetrainSpec | None,
    *,
    drifted: bool,
    consecutive: int,
    last_retrain: datetime | None,
    retrains_today: int,
    pending: bool,
    now: datetime,
) -> RetrainDecision:
    """The guard rails, in order: enabled, drift, hysteresis, one retrain at a time, cooldown, daily cap, dry run."""
    if retrain is None or not retrain.enabled:
        return RetrainDecision("none", "Disabled", "retraining is not enabled")
    if not drifted:
        return RetrainDecision("none", "NoDrift", "the last check found no drift")
    if consecutive < retrain.consecutive_checks:
        return RetrainDecision(
            "held",
            "Hysteresis",
            f"drifted in {consecutive} of {retrain.consecutive_checks} consecutive checks needed",
        )
    if pending:
        return RetrainDecision("held", "RetrainPending", "a retrain is already waiting for the Dataset")
    cooldown = parse_duration(retrain.cooldown)
    if last_retrain is not None and now - last_retrain < cooldown:
        left = cooldown - (now - last_retrain)
        return RetrainDecision(
            "held", "Cooldown", f"cooldown: next retrain allowed in {int(left.total_seconds())}s"
        )
    if retrains_today >= retrain.max_per_day:
        return RetrainDecision("held", "DailyCap", f"daily cap of {retrain.max_per_day} retrains reached")
    if retrain.dry_run:
        return RetrainDecision("dry_run", "DryRun", "drift persists: a retrain would start now (dry run)")
    return RetrainDecision("retrain", "DriftPersisted", f"drift in {consecutive} consecutive checks")


class _Waiting(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class _Context:
    deployment: str
    served_run: dict[str, Any] | None
    dataset: str
    fingerprint: str
    features: list[str]


def _resolve(namespace: str, spec: DriftMonitorSpec) -> _Context:
    md_name = spec.deployment_ref.name
    md = kube.get_custom("modeldeployments", namespace, md_name)
    if md is None:
        raise _Waiting("DeploymentNotFound", f"ModelDeployment {md_name} does not exist")
    served = ((md.get("status") or {}).get("modelVersion") or {}).get("trainingRun")
    run = kube.get_custom("trainingruns", namespace, served) if served else None
    explicit = spec.reference.dataset_ref.name if spec.reference and spec.reference.dataset_ref else None
    if run is None and explicit is None:
        raise _Waiting(
            "ReferenceUnknown",
            f"ModelDeployment {md_name} serves no TrainingRun yet; set reference.datasetRef",
        )
    dataset_name = explicit or str(run["spec"]["datasetRef"]["name"])  # type: ignore[index]
    dataset = kube.get_custom("datasets", namespace, dataset_name)
    if dataset is None:
        raise _Waiting("DatasetNotFound", f"Dataset {dataset_name} does not exist")
    dstatus = dataset.get("status") or {}
    fingerprint = (
        (run or {}).get("status", {}).get("datasetFingerprint")
        if explicit is None
        else dstatus.get("fingerprint")
    )
    if not fingerprint:
        raise _Waiting("ReferenceNotReady", f"Dataset {dataset_name} has no profiled version yet")
    target = (run or {}).get("spec", {}).get("target") or dstatus.get("target")
    features = list((run or {}).get("spec", {}).get("features") or [])
    if not features:
        features = [c["name"] for c in dstatus.get("columns") or [] if c.get("name") != target]
    return _Context(md_name, run, dataset_name, str(fingerprint), features)


def _status(raw: Any) -> DriftMonitorStatus:
    try:
        return DriftMonitorStatus.model_validate(dict(raw or {}))
    except ValidationError:
        return DriftMonitorStatus()


def _write(namespace: str, name: str, old: DriftMonitorStatus, status: DriftMonitorStatus) -> None:
    kube.patch_status(PLURAL, namespace, name, status_patch(old, status))


@kopf.timer(GROUP, VERSION, PLURAL, interval=5, initial_delay=2, idle=0, when=mine)
def tick_driftmonitor(body: kopf.Body, **_: Any) -> None:
    """One step of the monitor's state machine: collect a finished check, advance a retrain, or start a check."""
    owner = owner_from_body(body)
    old = _status(body.get("status"))
    status = old.model_copy(deep=True)
    status.observed_generation = owner.generation
    now = utcnow()
    try:
        spec = DriftMonitorSpec.model_validate(dict(body.get("spec") or {}))
    except ValidationError as exc:
        message = format_validation_error(exc)
        status.conditions = set_condition(
            status.conditions or [], "Ready", "False", "InvalidSpec", message, generation=owner.generation
        )
        if old.observed_generation != owner.generation:
            emit(body, "Warning", "InvalidSpec", message)
        _write(owner.namespace, owner.name, old, status)
        return

    if status.job_name:
        _collect(body, owner.namespace, owner.name, spec, status, now)
    if status.pending_retrain_check is not None:
        _advance_retrain(body, owner, spec, status, now)
    if not status.job_name:
        due = status.next_check_time or next_check_time(spec.schedule, status.last_check_time, now)
        status.next_check_time = due
        if now >= due:
            _start_check(body, owner, spec, status)
    if dump_status(status) != dump_status(old):
        _write(owner.namespace, owner.name, old, status)


def _start_check(body: kopf.Body, owner: Any, spec: DriftMonitorSpec, status: DriftMonitorStatus) -> None:
    try:
        ctx = _resolve(owner.namespace, spec)
    except _Waiting as exc:
        status.conditions = set_condition(
            status.conditions or [], "Ready", "False", exc.reason, str(exc), generation=owner.generation
        )
        return
    check = (status.check_count or 0) + 1
    config = json.dumps(drift_config(spec, ctx.features), sort_keys=True)
    job = build_check_job(
        owner,
        spec,
        operator_settings(),
        check=check,
        deployment=ctx.deployment,
        profile_path=dataset_profile_path(owner.namespace, ctx.dataset, ctx.fingerprint),
        config_json=config,
    )
    ensure_artifact_pvc(owner.namespace)
    kube.create_if_absent(job)
    status.job_name = job["metadata"]["name"]
    status.reference_fingerprint = ctx.fingerprint
    status.conditions = set_condition(
        status.conditions or [],
        "Ready",
        "True",
        "Checking",
        f"check {check} running in Job {status.job_name}",
        generation=owner.generation,
    )


def _collect(
    body: kopf.Body,
    namespace: str,
    name: str,
    spec: DriftMonitorSpec,
    status: DriftMonitorStatus,
    now: datetime,
) -> None:
    assert status.job_name is not None
    job = k8s.get_object("batch/v1", "Job", namespace, status.job_name)
    check = (status.check_count or 0) + 1
    if job is not None:
        outcome = kube.job_outcome(job)
        if not outcome.finished:
            return
    results = kube.job_pod_results(namespace, status.job_name) if job is not None else []
    report: CheckReport | None = None
    for result in reversed(results):
        try:
            report = CheckReport.model_validate_json(result.message)
            break
        except ValidationError:
            continue
    status.job_name = None
    status.check_count = check
    status.last_check_time = now
    status.next_check_time = next_check_time(spec.schedule, now, now)
    if report is None or report.error or report.verdict is None:
        why = (report.error if report else None) or (
            results[-1].message[-500:] if results else "the check Job vanished"
        )
        status.conditions = set_condition(
            status.conditions or [],
            "Ready",
            "False",
            "CheckFailed",
            why,
            generation=status.observed_generation,
        )
        emit(body, "Warning", "CheckFailed", f"check {check}: {why}")
        return
    was_drifted = bool(old_drifted(status))
    status.verdict = report.verdict  # type: ignore[assignment]
    status.report_uri = report.report_uri
    status.rows_checked = report.current_rows
    status.features = [FeatureDrift.model_validate(f.model_dump()) for f in report.features]
    if report.verdict == "insufficient_data":
        status.conditions = set_condition(
            status.conditions or [],
            "Ready",
            "True",
            "InsufficientData",
            f"check {check}: only {report.current_rows} rows in the window; no verdict",
            generation=status.observed_generation,
        )
        return  # neither drift nor its absence: hysteresis counters stay as they were
    drifted = report.verdict == "drift"
    status.drifted = drifted
    status.drift_share = report.drift_share
    status.consecutive_drifted = (status.consecutive_drifted or 0) + 1 if drifted else 0
    drifted_names = [f.name for f in report.features if f.drifted]
    share = f"{report.drift_share:.2f}" if report.drift_share is not None else "?"
    message = (
        f"check {check}: {len(drifted_names)} drifted features (share {share}): {', '.join(drifted_names[:10])}"
        if drifted
        else f"check {check}: no drift (share {share}) over {report.current_rows} rows"
    )
    status.conditions = set_condition(
        status.conditions or [],
        "Drifted",
        "True" if drifted else "False",
        "DriftDetected" if drifted else "NoDrift",
        message,
        generation=status.observed_generation,
    )
    status.conditions = set_condition(
        status.conditions,
        "Ready",
        "True",
        "Checked",
        f"last check {check} at {now:%Y-%m-%dT%H:%M:%SZ}",
        generation=status.observed_generation,
    )
    _export_metrics(namespace, name, report)
    if drifted and not was_drifted:
        emit(body, "Warning", "DriftDetected", message)
    elif was_drifted and not drifted:
        emit(body, "Normal", "DriftResolved", message)

    day = now.strftime("%Y-%m-%d")
    if status.retrain_day != day:
        status.retrain_day, status.retrains_today = day, 0
    decision = decide_retrain(
        spec.retrain,
        drifted=drifted,
        consecutive=status.consecutive_drifted,
        last_retrain=status.last_retrain_time,
        retrains_today=status.retrains_today or 0,
        pending=status.pending_retrain_check is not None,
        now=now,
    )
    if decision.action == "none":
        return
    status.conditions = set_condition(
        status.conditions,
        "Retraining",
        "True" if decision.action == "retrain" else "False",
        decision.reason,
        decision.message,
        generation=status.observed_generation,
    )
    if decision.action == "dry_run":
        status.last_retrain_time = now
        status.retrains_today = (status.retrains_today or 0) + 1
        emit(body, "Normal", "WouldRetrain", f"{decision.message}; dryRun is set, no TrainingRun created")
    elif decision.action == "retrain":
        status.last_retrain_time = now
        status.retrains_today = (status.retrains_today or 0) + 1
        status.pending_retrain_check = check
        emit(
            body, "Normal", "RetrainRequested", f"{decision.message}: re-reading the Dataset, then retraining"
        )


def old_drifted(status: DriftMonitorStatus) -> bool:
    """Whether the Drifted condition currently says True."""
    return any(c.type == "Drifted" and c.status == "True" for c in status.conditions or [])


def _export_metrics(namespace: str, monitor: str, report: CheckReport) -> None:
    DRIFT_SHARE.labels(namespace, monitor).set(report.drift_share or 0.0)
    DRIFT_DETECTED.labels(namespace, monitor).set(1.0 if report.verdict == "drift" else 0.0)
    for feature in report.features:
        FEATURE_DRIFTED.labels(namespace, monitor, feature.name).set(1.0 if feature.drifted else 0.0)
        if feature.score is not None and feature.method is not None:
            FEATURE_SCORE.labels(namespace, monitor, feature.name, feature.method).set(feature.score)


def _advance_retrain(
    body: kopf.Body, owner: Any, spec: DriftMonitorSpec, status: DriftMonitorStatus, now: datetime
) -> None:
    check = status.pending_retrain_check
    assert check is not None
    try:
        ctx = _resolve(owner.namespace, spec)
    except _Waiting as exc:
        status.conditions = set_condition(
            status.conditions or [], "Retraining", "False", exc.reason, str(exc), generation=owner.generation
        )
        return
    if ctx.served_run is None:
        status.pending_retrain_check = None
        status.conditions = set_condition(
            status.conditions or [],
            "Retraining",
            "False",
            "NoServedRun",
            "the served model has no TrainingRun to retrain from",
            generation=owner.generation,
        )
        emit(body, "Warning", "RetrainImpossible", "the served model has no TrainingRun to retrain from")
        return
    if status.refresh_requested_at is None:
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        k8s.merge_patch(
            f"{GROUP}/{VERSION}",
            "Dataset",
            owner.namespace,
            ctx.dataset,
            {"metadata": {"annotations": {REFRESH_ANNOTATION: stamp}}},
        )
        status.refresh_requested_at = now.replace(microsecond=0)
        return
    dataset = kube.get_custom("datasets", owner.namespace, ctx.dataset) or {}
    dstatus = dataset.get("status") or {}
    profiled = dstatus.get("lastProfileTime")
    refreshed = (
        profiled is not None
        and datetime.fromisoformat(str(profiled).replace("Z", "+00:00")) >= status.refresh_requested_at
    )
    if dstatus.get("phase") == "Failed":
        status.pending_retrain_check, status.refresh_requested_at = None, None
        status.conditions = set_condition(
            status.conditions or [],
            "Retraining",
            "False",
            "DatasetFailed",
            "the Dataset failed to re-read its source",
            generation=owner.generation,
        )
        emit(body, "Warning", "RetrainFailed", f"Dataset {ctx.dataset} failed to re-read its source")
        return
    if not refreshed:
        if now - status.refresh_requested_at > timedelta(minutes=30):
            status.pending_retrain_check, status.refresh_requested_at = None, None
            emit(
                body,
                "Warning",
                "RetrainFailed",
                f"Dataset {ctx.dataset} did not re-read its source within 30m",
            )
        return
    run = build_retrain_run(
        owner,
        spec,
        check=check,
        served_run_spec=dict(ctx.served_run["spec"]),
        served_run_labels=dict(ctx.served_run["metadata"].get("labels") or {}),
    )
    k8s.create(run)
    name = run["metadata"]["name"]
    status.last_retrain_run = name
    status.pending_retrain_check, status.refresh_requested_at = None, None
    status.conditions = set_condition(
        status.conditions or [],
        "Retraining",
        "True",
        "RetrainCreated",
        f"TrainingRun {name} retrains on Dataset {ctx.dataset} version {dstatus.get('version')}",
        generation=owner.generation,
    )
    emit(body, "Normal", "RetrainCreated", f"created TrainingRun {name} after drift in check {check}")
