"""DriftMonitor decisions: schedule check Jobs, fold their verdicts into status, and retrain with guard rails.

One tick of the monitor, in order: collect the check that finished, advance a pending retrain, start the next check
when it is due, and trim the finished check Jobs to the history limits.

A retrain is two steps, so the new model sees the new data: first the Dataset it will train on (the retrain
template's datasetRef, e.g. a Dataset built from feedback, else the served run's) is asked to re-read its source
(annotation gyre.dev/refresh-requested-at), then, once its lastProfileTime has passed the request, a TrainingRun is
created from the served run's spec.

Invariants:
- One check Job per check number (`<monitor>-check-<n>`); `Create` is planned only when no Job of that name is
  observed, so a lost status write never runs a check twice.
- A check is collected once: collecting clears status.jobName and counts the check.
- insufficient_data is neither drift nor its absence: the hysteresis counter and the Drifted condition stay. The
  same holds for the performance check's insufficient_data and the Degraded condition.
- Input drift and degraded performance share one retrain budget: one pending retrain, one cooldown, one daily
  cap. When both call for a retrain in the same check, performance is named as the cause (it is what the users
  of the model see).
- At most one retrain is pending; the retrain run's name is deterministic (`<monitor>-retrain-<check>`) and it is
  created only when no TrainingRun of that name is observed.
- The Job status.jobName names is never pruned; of the finished ones, the newest successfulJobsHistoryLimit that
  succeeded and failedJobsHistoryLimit that failed are kept.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from pydantic import ValidationError

from gyre.api.common import API_VERSION, REFRESH_ANNOTATION, find_condition, parse_duration, set_condition
from gyre.api.driftmonitor import (
    DriftMonitorSpec,
    DriftMonitorStatus,
    FeatureDrift,
    PerformanceStatus,
    RetrainSpec,
    Schedule,
)
from gyre.api.modeldeployment import ModelDeploymentStatus
from gyre.api.reasons import ConditionType, EventType, Reason
from gyre.api.trainingrun import TrainingRunSpec, TrainingRunStatus
from gyre.builders.drift import (
    CHECKER,
    PerformanceTarget,
    build_check_job,
    build_retrain_run,
    check_job_name,
    drift_config,
)
from gyre.builders.meta import Owner
from gyre.builders.settings import OperatorSettings
from gyre.drift.monitor_run import CheckPerformance, CheckReport
from gyre.reconcile.history import prune_finished_jobs
from gyre.reconcile.observed import JobView, PodResult, untrusted_result
from gyre.reconcile.plan import Create, MergePatch, Plan, create_with_claim
from gyre.reconcile.trainingrun import DatasetView
from gyre.store.layout import dataset_profile_path

__all__ = [
    "REFRESH_TIMEOUT",
    "DriftMonitorPlan",
    "ObservedDriftMonitor",
    "RetrainCause",
    "RetrainDecision",
    "ServedRun",
    "check_report",
    "decide_retrain",
    "next_check_time",
    "plan_driftmonitor",
    "reference_dataset_name",
    "retrain_dataset_name",
]

# How long a pending retrain waits for the Dataset to re-read its source before it is given up.
REFRESH_TIMEOUT = timedelta(minutes=30)


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


RetrainCause = Literal["input_drift", "performance"]
"""What a retrain answers: drift of the live inputs, or the served model's degraded performance."""

_CAUSE_WORDS: dict[RetrainCause, tuple[str, str]] = {
    # (what persisted, what a check found)
    "input_drift": ("drift", "drifted"),
    "performance": ("degraded performance", "degraded"),
}


@dataclass(frozen=True)
class RetrainDecision:
    """What to do after a check, and why (the reason is shown in the Retraining condition)."""

    action: Literal["none", "retrain", "dry_run", "held"]
    reason: Reason
    message: str
    cause: RetrainCause = "input_drift"


def decide_retrain(
    retrain: RetrainSpec | None,
    *,
    drifted: bool,
    consecutive: int,
    last_retrain: datetime | None,
    retrains_today: int,
    pending: bool,
    now: datetime,
    cause: RetrainCause = "input_drift",
) -> RetrainDecision:
    """The guard rails, in order: enabled, the cause, hysteresis, one retrain at a time, cooldown, daily cap, dry
    run.

    `drifted` says whether this check found the cause (input drift, or degraded performance for `cause`
    performance), `consecutive` in how many checks in a row. The cooldown, the daily cap and the pending retrain are
    the monitor's, whatever the cause.
    """
    what, found = _CAUSE_WORDS[cause]
    if retrain is None or not retrain.enabled:
        return RetrainDecision("none", Reason.DISABLED, "retraining is not enabled", cause)
    if not drifted:
        if cause == "performance":
            return RetrainDecision(
                "none", Reason.PERFORMANCE_OK, "the last check found no degradation", cause
            )
        return RetrainDecision("none", Reason.NO_DRIFT, "the last check found no drift", cause)
    if consecutive < retrain.consecutive_checks:
        return RetrainDecision(
            "held",
            Reason.HYSTERESIS,
            f"{found} in {consecutive} of {retrain.consecutive_checks} consecutive checks needed",
            cause,
        )
    if pending:
        return RetrainDecision(
            "held", Reason.RETRAIN_PENDING, "a retrain is already waiting for the Dataset", cause
        )
    cooldown = parse_duration(retrain.cooldown)
    if last_retrain is not None and now - last_retrain < cooldown:
        left = cooldown - (now - last_retrain)
        return RetrainDecision(
            "held", Reason.COOLDOWN, f"cooldown: next retrain allowed in {int(left.total_seconds())}s", cause
        )
    if retrains_today >= retrain.max_per_day:
        return RetrainDecision(
            "held", Reason.DAILY_CAP, f"daily cap of {retrain.max_per_day} retrains reached", cause
        )
    if retrain.dry_run:
        return RetrainDecision(
            "dry_run", Reason.DRY_RUN, f"{what} persists: a retrain would start now (dry run)", cause
        )
    persisted = Reason.DEGRADATION_PERSISTED if cause == "performance" else Reason.DRIFT_PERSISTED
    return RetrainDecision("retrain", persisted, f"{what} in {consecutive} consecutive checks", cause)


@dataclass(frozen=True)
class ServedRun:
    """The TrainingRun behind the served model, as the monitor reads it."""

    name: str
    labels: Mapping[str, str]
    spec: TrainingRunSpec | None
    """None when its stored spec no longer validates."""
    status: TrainingRunStatus


@dataclass(frozen=True)
class ObservedDriftMonitor:
    """Everything a DriftMonitor's plan reads."""

    owner: Owner
    spec: DriftMonitorSpec | None
    """None when the stored spec does not validate; `spec_error` then says why."""
    spec_error: str | None
    status: DriftMonitorStatus
    settings: OperatorSettings
    now: datetime
    deployment: ModelDeploymentStatus | None = None
    """The status of spec.deploymentRef; None when that ModelDeployment does not exist."""
    served_run: ServedRun | None = None
    """The TrainingRun the deployment's status.modelVersion names, when it exists."""
    dataset: DatasetView | None = None
    """The reference Dataset (see `reference_dataset_name`), when it exists."""
    jobs: Sequence[JobView] = ()
    """Every check Job of this monitor."""
    pods: Sequence[PodResult] = ()
    """The pods of the current check Job (status.jobName), read only once it has finished."""
    run_names: Collection[str] = ()
    """The TrainingRuns in the namespace: a retrain run that exists already is not created again."""
    retrain_dataset: DatasetView | None = None
    """The Dataset a retrain trains on (see `retrain_dataset_name`) when it is not the reference, if it exists."""


@dataclass
class DriftMonitorPlan(Plan[DriftMonitorStatus]):
    """A Plan, plus the report of a check that reached a verdict in this tick (the controller exports it)."""

    report: CheckReport | None = None
    performance: CheckPerformance | None = None
    """The performance check that reached a verdict in this tick (the controller exports it as gauges)."""
    decision: RetrainDecision | None = None
    """The retrain decision taken after this tick's check, if one was (the controller counts it)."""


@dataclass(frozen=True)
class _Reference:
    deployment: str
    dataset: str
    fingerprint: str
    features: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Waiting:
    reason: Reason
    message: str


def reference_dataset_name(spec: DriftMonitorSpec, served_run: ServedRun | None) -> str | None:
    """The Dataset whose profile is the baseline: reference.datasetRef, else the one the served run trained on."""
    if spec.reference is not None and spec.reference.dataset_ref is not None:
        return spec.reference.dataset_ref.name
    if served_run is not None and served_run.spec is not None:
        return served_run.spec.dataset_ref.name
    return None


def retrain_dataset_name(spec: DriftMonitorSpec, served_run: ServedRun | None) -> str | None:
    """The Dataset a retrain trains on, which is refreshed before it: the retrain template's datasetRef (e.g. a
    Dataset built from the deployment's labelled predictions), else the one the served run trained on."""
    template = spec.retrain.template if spec.retrain else None
    overrides = (template.spec or {}) if template else {}
    ref = overrides.get("datasetRef")
    if isinstance(ref, dict) and isinstance(ref.get("name"), str) and ref["name"]:
        return str(ref["name"])
    if served_run is not None and served_run.spec is not None:
        return served_run.spec.dataset_ref.name
    return None


def _resolve(obs: ObservedDriftMonitor, spec: DriftMonitorSpec) -> _Reference | _Waiting:
    """What a check compares, or why it cannot run yet."""
    md_name = spec.deployment_ref.name
    if obs.deployment is None:
        return _Waiting(Reason.DEPLOYMENT_NOT_FOUND, f"ModelDeployment {md_name} does not exist")
    run = obs.served_run
    explicit = spec.reference is not None and spec.reference.dataset_ref is not None
    dataset_name = reference_dataset_name(spec, run)
    if dataset_name is None:
        return _Waiting(
            Reason.REFERENCE_UNKNOWN,
            f"ModelDeployment {md_name} serves no TrainingRun yet; set reference.datasetRef",
        )
    if obs.dataset is None:
        return _Waiting(Reason.DATASET_NOT_FOUND, f"Dataset {dataset_name} does not exist")
    dstatus = obs.dataset.status
    fingerprint = dstatus.fingerprint if explicit else (run.status.dataset_fingerprint if run else None)
    if not fingerprint:
        return _Waiting(Reason.REFERENCE_NOT_READY, f"Dataset {dataset_name} has no profiled version yet")
    run_spec = run.spec if run is not None else None
    target = (run_spec.target if run_spec else None) or dstatus.target
    features = list((run_spec.features.input_columns() if run_spec and run_spec.features else None) or [])
    if not features:
        features = [c.name for c in dstatus.columns or [] if c.name != target]
    return _Reference(md_name, dataset_name, fingerprint, features)


def plan_driftmonitor(obs: ObservedDriftMonitor) -> DriftMonitorPlan:
    """Decide one tick of a DriftMonitor: collect a finished check, advance a retrain, start a check, prune."""
    plan = DriftMonitorPlan(obs.status.model_copy(deep=True))
    status, generation = plan.status, obs.owner.generation
    status.observed_generation = generation
    if obs.spec is None:
        message = obs.spec_error or "the spec does not validate"
        status.conditions = set_condition(
            status.conditions or [],
            ConditionType.READY,
            "False",
            Reason.INVALID_SPEC,
            message,
            generation=generation,
        )
        if obs.status.observed_generation != generation:
            plan.event(EventType.WARNING, Reason.INVALID_SPEC, message)
        return plan
    spec = obs.spec
    jobs = {j.name: j for j in obs.jobs if j.component == CHECKER}
    if status.job_name:
        current = jobs.get(status.job_name)
        if current is None or current.outcome.finished:
            _collect(plan, obs, spec, current)
    if status.pending_retrain_check is not None:
        _advance_retrain(plan, obs, spec)
    if not status.job_name:
        due = status.next_check_time or next_check_time(spec.schedule, status.last_check_time, obs.now)
        status.next_check_time = due
        if obs.now >= due:
            _start_check(plan, obs, spec, jobs)
    keep = [status.job_name] if status.job_name else []
    plan.actions.extend(
        prune_finished_jobs(
            jobs.values(),
            keep_succeeded=spec.successful_jobs_history_limit,
            keep_failed=spec.failed_jobs_history_limit,
            keep=keep,
        )
    )
    return plan


def _start_check(
    plan: DriftMonitorPlan, obs: ObservedDriftMonitor, spec: DriftMonitorSpec, jobs: Mapping[str, JobView]
) -> None:
    """Start the next check: its Job (unless it exists), and Ready=True Checking; or say what it waits for."""
    status, generation = plan.status, obs.owner.generation
    ref = _resolve(obs, spec)
    if isinstance(ref, _Waiting):
        status.conditions = set_condition(
            status.conditions or [],
            ConditionType.READY,
            "False",
            ref.reason,
            ref.message,
            generation=generation,
        )
        return
    check = (status.check_count or 0) + 1
    name = check_job_name(obs.owner, check)
    if name not in jobs:
        job = build_check_job(
            obs.owner,
            spec,
            obs.settings,
            check=check,
            deployment=ref.deployment,
            profile_path=dataset_profile_path(obs.owner.namespace, ref.dataset, ref.fingerprint),
            config_json=json.dumps(drift_config(spec, ref.features), sort_keys=True),
            performance=_performance_target(obs),
        )
        plan.actions.extend(create_with_claim(obs.settings, obs.owner.namespace, job))
    status.job_name = name
    status.reference_fingerprint = ref.fingerprint
    status.conditions = set_condition(
        status.conditions or [],
        ConditionType.READY,
        "True",
        Reason.CHECKING,
        f"check {check} running in Job {name}",
        generation=generation,
    )


def _performance_target(obs: ObservedDriftMonitor) -> PerformanceTarget | None:
    """The served model a performance check compares with: the deployment's TrainingRun and its model."""
    run = obs.served_run
    if run is None or not run.status.model_uri:
        return None
    return PerformanceTarget(model_uri=run.status.model_uri, model_version=run.name)


def check_report(results: Sequence[PodResult]) -> CheckReport | None:
    """The newest pod's check report, or None when no pod wrote one."""
    for result in reversed(results):
        try:
            return CheckReport.model_validate_json(result.message)
        except ValidationError:
            continue
    return None


def _drifted_now(status: DriftMonitorStatus) -> bool:
    drifted = find_condition(status.conditions or [], ConditionType.DRIFTED)
    return drifted is not None and drifted.status == "True"


def _collect(
    plan: DriftMonitorPlan, obs: ObservedDriftMonitor, spec: DriftMonitorSpec, job: JobView | None
) -> None:
    """Fold the finished (or vanished) current check into the status, then decide about retraining."""
    status, generation, now = plan.status, obs.owner.generation, obs.now
    results = list(obs.pods) if job is not None else []
    report = check_report(results)
    distrust = untrusted_result(obs.owner.uid, job, results, obs.settings.image_policy) if job else None
    if distrust is not None:
        report = CheckReport(check=(status.check_count or 0) + 1, error=distrust)
    check = (status.check_count or 0) + 1
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
            ConditionType.READY,
            "False",
            Reason.CHECK_FAILED,
            why,
            generation=generation,
        )
        plan.event(EventType.WARNING, Reason.CHECK_FAILED, f"check {check}: {why}")
        return
    drifted = _fold_drift(plan, report, check=check, generation=generation, now=now)
    degraded = _fold_performance(plan, spec, report.performance, check=check, generation=generation)
    if drifted is None and degraded is None:
        return  # no verdict at all: hysteresis counters stay as they were
    _decide(plan, spec, check=check, drifted=drifted, degraded=degraded, generation=generation, now=now)


def _fold_drift(
    plan: DriftMonitorPlan, report: CheckReport, *, check: int, generation: int, now: datetime
) -> bool | None:
    """The drift verdict into status, conditions and Events; whether it drifted (None: insufficient data)."""
    status = plan.status
    was_drifted = _drifted_now(status)
    status.verdict = report.verdict  # type: ignore[assignment]
    status.report_uri = report.report_uri
    status.html_report_uri = report.html_report_uri
    status.rows_checked = report.current_rows
    status.features = [FeatureDrift.model_validate(f.model_dump()) for f in report.features]
    if report.verdict == "insufficient_data":
        status.conditions = set_condition(
            status.conditions or [],
            ConditionType.READY,
            "True",
            Reason.INSUFFICIENT_DATA,
            f"check {check}: only {report.current_rows} rows in the window; no verdict",
            generation=generation,
        )
        return None  # neither drift nor its absence
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
        ConditionType.DRIFTED,
        "True" if drifted else "False",
        Reason.DRIFT_DETECTED if drifted else Reason.NO_DRIFT,
        message,
        generation=generation,
    )
    status.conditions = set_condition(
        status.conditions,
        ConditionType.READY,
        "True",
        Reason.CHECKED,
        f"last check {check} at {now:%Y-%m-%dT%H:%M:%SZ}",
        generation=generation,
    )
    plan.report = report
    if drifted and not was_drifted:
        plan.event(EventType.WARNING, Reason.DRIFT_DETECTED, message)
    elif was_drifted and not drifted:
        plan.event(EventType.NORMAL, Reason.DRIFT_RESOLVED, message)
    return drifted


def _performance_status(
    previous: PerformanceStatus | None, perf: CheckPerformance, check: int
) -> PerformanceStatus:
    """status.performance from a check's performance summary; the degraded-checks counter is carried over."""
    return PerformanceStatus(
        verdict=perf.verdict,  # type: ignore[arg-type]
        check=check,
        message=perf.message,
        model_version=perf.model_version,
        metrics=[m.model_copy() for m in perf.metrics],
        labelled_rows=perf.labelled_rows,
        prediction_rows=perf.prediction_rows,
        baseline_test_rows=perf.baseline_test_rows,
        label_delay_seconds=perf.label_delay_seconds,
        label_delay_p90_seconds=perf.label_delay_p90_seconds,
        unknown_ids=perf.unknown_ids,
        duplicate_labels=perf.duplicate_labels,
        wrong_type_labels=perf.wrong_type_labels,
        consecutive_degraded=previous.consecutive_degraded if previous is not None else None,
        report_uri=perf.report_uri,
    )


def _fold_performance(
    plan: DriftMonitorPlan,
    spec: DriftMonitorSpec,
    perf: CheckPerformance | None,
    *,
    check: int,
    generation: int,
) -> bool | None:
    """The performance verdict into status.performance, the Degraded condition and Events; whether the model is
    degraded (None: no verdict, or spec.performance is off)."""
    status = plan.status
    if spec.performance is None or not spec.performance.enabled:
        # Turned off: a Degraded condition left from before would describe checks that no longer run.
        if find_condition(status.conditions or [], ConditionType.DEGRADED) is not None:
            status.conditions = [c for c in status.conditions or [] if c.type != ConditionType.DEGRADED]
        return None
    previous = status.performance
    degraded_before = find_condition(status.conditions or [], ConditionType.DEGRADED)
    was_degraded = degraded_before is not None and degraded_before.status == "True"
    if perf is None:
        status.performance = (previous or PerformanceStatus()).model_copy(
            update={"check": check, "message": "not checked: the deployment serves no model of a TrainingRun"}
        )
        return None
    if perf.error or perf.verdict is None:
        why = perf.error or "the performance check gave no verdict"
        status.performance = (previous or PerformanceStatus()).model_copy(
            update={"check": check, "message": why}
        )
        plan.event(EventType.WARNING, Reason.PERFORMANCE_CHECK_FAILED, f"check {check}: {why}")
        return None
    status.performance = _performance_status(previous, perf, check)
    if perf.verdict == "insufficient_data":
        if degraded_before is None:
            status.conditions = set_condition(
                status.conditions or [],
                ConditionType.DEGRADED,
                "Unknown",
                Reason.INSUFFICIENT_LABELS,
                f"check {check}: {perf.message}",
                generation=generation,
            )
        return None
    plan.performance = perf
    degraded = perf.verdict == "degraded"
    before = (previous.consecutive_degraded or 0) if previous is not None else 0
    status.performance.consecutive_degraded = before + 1 if degraded else 0
    message = f"check {check}: {perf.message}"
    status.conditions = set_condition(
        status.conditions or [],
        ConditionType.DEGRADED,
        "True" if degraded else "False",
        Reason.PERFORMANCE_DEGRADED if degraded else Reason.PERFORMANCE_OK,
        message,
        generation=generation,
    )
    if degraded and not was_degraded:
        plan.event(EventType.WARNING, Reason.PERFORMANCE_DEGRADED, message)
    elif was_degraded and not degraded:
        plan.event(EventType.NORMAL, Reason.PERFORMANCE_RECOVERED, message)
    return degraded


def _decide(
    plan: DriftMonitorPlan,
    spec: DriftMonitorSpec,
    *,
    check: int,
    drifted: bool | None,
    degraded: bool | None,
    generation: int,
    now: datetime,
) -> None:
    """After a check with a verdict: apply the guard rails, and record a retrain (or a dry run) when they allow.

    Each cause found (degraded performance when spec.performance.retrain, input drift) is put through the same
    guard rails with its own hysteresis counter; the first that may retrain (performance first) wins, else the
    first one held says why.
    """
    status = plan.status
    day = now.strftime("%Y-%m-%d")
    if status.retrain_day != day:
        status.retrain_day, status.retrains_today = day, 0
    causes: list[tuple[RetrainCause, int]] = []
    if degraded and spec.performance is not None and spec.performance.retrain:
        perf = status.performance
        causes.append(("performance", (perf.consecutive_degraded or 0) if perf is not None else 0))
    if drifted:
        causes.append(("input_drift", status.consecutive_drifted or 0))

    def decide(cause: RetrainCause, found: bool, consecutive: int) -> RetrainDecision:
        return decide_retrain(
            spec.retrain,
            drifted=found,
            consecutive=consecutive,
            last_retrain=status.last_retrain_time,
            retrains_today=status.retrains_today or 0,
            pending=status.pending_retrain_check is not None,
            now=now,
            cause=cause,
        )

    decisions = [decide(cause, True, n) for cause, n in causes] or [decide("input_drift", False, 0)]
    decision = next((d for d in decisions if d.action in ("retrain", "dry_run")), decisions[0])
    plan.decision = decision
    if decision.action == "none":
        return
    status.conditions = set_condition(
        status.conditions or [],
        ConditionType.RETRAINING,
        "True" if decision.action == "retrain" else "False",
        decision.reason,
        decision.message,
        generation=generation,
    )
    if decision.action == "held":
        return
    status.last_retrain_time = now
    status.retrains_today = (status.retrains_today or 0) + 1
    if decision.action == "dry_run":
        plan.event(
            EventType.NORMAL,
            Reason.WOULD_RETRAIN,
            f"{decision.message}; dryRun is set, no TrainingRun created",
        )
        return
    status.pending_retrain_check = check
    status.pending_retrain_cause = decision.cause
    plan.event(
        EventType.NORMAL,
        Reason.RETRAIN_REQUESTED,
        f"{decision.message}: re-reading the Dataset, then retraining",
    )


def _retraining(
    plan: DriftMonitorPlan, generation: int, status: Literal["True", "False"], reason: Reason, message: str
) -> None:
    plan.status.conditions = set_condition(
        plan.status.conditions or [],
        ConditionType.RETRAINING,
        status,
        reason,
        message,
        generation=generation,
    )


def _advance_retrain(plan: DriftMonitorPlan, obs: ObservedDriftMonitor, spec: DriftMonitorSpec) -> None:
    """The pending retrain's next step: ask the Dataset to re-read, wait for it, then create the TrainingRun."""
    status, generation, now = plan.status, obs.owner.generation, obs.now
    check = status.pending_retrain_check
    assert check is not None
    ref = _resolve(obs, spec)
    if isinstance(ref, _Waiting):
        _retraining(plan, generation, "False", ref.reason, ref.message)
        return
    run = obs.served_run
    if run is None or run.spec is None:
        message = "the served model has no TrainingRun to retrain from"
        if run is not None:
            message = (
                f"the spec of the served TrainingRun {run.name} does not validate; it cannot be retrained"
            )
        status.pending_retrain_check, status.pending_retrain_cause = None, None
        _retraining(plan, generation, "False", Reason.NO_SERVED_RUN, message)
        plan.event(EventType.WARNING, Reason.RETRAIN_IMPOSSIBLE, message)
        return
    dataset_name = retrain_dataset_name(spec, run) or ref.dataset
    dataset = obs.dataset if dataset_name == ref.dataset else obs.retrain_dataset
    if dataset is None:
        _retraining(
            plan, generation, "False", Reason.DATASET_NOT_FOUND, f"Dataset {dataset_name} does not exist"
        )
        return
    if status.refresh_requested_at is None:
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        patch = {"metadata": {"annotations": {REFRESH_ANNOTATION: stamp}}}
        plan.actions.append(MergePatch(API_VERSION, "Dataset", dataset_name, patch))
        status.refresh_requested_at = now.replace(microsecond=0)
        return
    dstatus = dataset.status
    if dstatus.phase == "Failed":
        status.pending_retrain_check, status.refresh_requested_at = None, None
        status.pending_retrain_cause = None
        _retraining(
            plan, generation, "False", Reason.DATASET_FAILED, "the Dataset failed to re-read its source"
        )
        plan.event(
            EventType.WARNING, Reason.RETRAIN_FAILED, f"Dataset {dataset_name} failed to re-read its source"
        )
        return
    profiled = dstatus.last_profile_time
    if profiled is None or profiled < status.refresh_requested_at:
        if now - status.refresh_requested_at > REFRESH_TIMEOUT:
            status.pending_retrain_check, status.refresh_requested_at = None, None
            status.pending_retrain_cause = None
            plan.event(
                EventType.WARNING,
                Reason.RETRAIN_FAILED,
                f"Dataset {dataset_name} did not re-read its source within 30m",
            )
        return
    body = build_retrain_run(
        obs.owner,
        spec,
        check=check,
        served_run_spec=run.spec.model_dump(mode="json", by_alias=True, exclude_unset=True),
        served_run_labels=dict(run.labels),
        cause=status.pending_retrain_cause or "input_drift",
    )
    name = body["metadata"]["name"]
    if name not in obs.run_names:
        plan.actions.append(Create(body))
    status.last_retrain_run = name
    cause = status.pending_retrain_cause or "input_drift"
    status.pending_retrain_check, status.refresh_requested_at = None, None
    status.pending_retrain_cause = None
    _retraining(
        plan,
        generation,
        "True",
        Reason.RETRAIN_CREATED,
        f"TrainingRun {name} retrains on Dataset {dataset_name} version {dstatus.version}",
    )
    plan.event(
        EventType.NORMAL,
        Reason.RETRAIN_CREATED,
        f"created TrainingRun {name} after {_CAUSE_WORDS[cause][0]} in check {check}",
    )
