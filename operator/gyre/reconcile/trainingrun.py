"""TrainingRun decisions: wait for the Dataset, start the one training Job, fold its reports into metrics and gates.

Invariants:
- A run has exactly one Job (`<run>-train`, the spec is immutable); `Create` is planned only when none is observed.
- A finished run (Succeeded or Failed) is never changed again.
- Gates are evaluated here, by the operator, on the metrics of the best trial.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from gyre.api.common import Condition, find_condition, set_condition
from gyre.api.dataset import DatasetSpec, DatasetStatus
from gyre.api.gates import combine_verdicts, evaluate_gates, evaluate_slice_gates
from gyre.api.reasons import ConditionType, EventType, Reason
from gyre.api.tracking import TrackingStatus
from gyre.api.trainingrun import (
    DEFAULT_METRICS,
    Lineage,
    ModelCardStatus,
    OnnxStatus,
    TrainingRunSpec,
    TrainingRunStatus,
    TrialStatus,
    primary_metric,
    task_of,
)
from gyre.builders.job import DatasetInput, build_training_job, training_job_name
from gyre.builders.meta import Owner
from gyre.builders.settings import OperatorSettings
from gyre.builders.tracking import resolve_tracking
from gyre.governance.card import CARD_HTML, CARD_MARKDOWN
from gyre.reconcile.observed import JobView, PodResult, explain_failure, parse_time, untrusted_result
from gyre.reconcile.plan import Event, Plan, create_with_claim
from gyre.training.report import TrainReport
from gyre.training.slices import slices_spec_problem

__all__ = [
    "MAX_TRIALS",
    "WAIT_SECONDS",
    "DatasetProblem",
    "DatasetView",
    "ObservedTrainingRun",
    "apply_training_result",
    "plan_trainingrun",
    "plan_would_change",
    "primary_metric",
    "record_tracking",
    "resolve_dataset",
    "training_reports",
    "trigger_lineage",
]

MAX_TRIALS = 500
WAIT_SECONDS = 15.0
_TERMINAL = ("Succeeded", "Failed")


@dataclass(frozen=True)
class DatasetView:
    """A Dataset as its dependents read it: the spec (None when it no longer validates) and the status."""

    spec: DatasetSpec | None
    status: DatasetStatus


_MONITOR_TRIGGER = re.compile(r"^drift:(?P<ns>[^/#]+)/(?P<monitor>[^/#]+)(#(?P<check>\d+))?$")


def trigger_lineage(
    trigger: str, cause: str | None
) -> tuple[Literal["manual", "input_drift", "performance"] | None, str | None, int | None]:
    """(cause, monitor, check) of a run's trigger: a DriftMonitor's `drift:<ns>/<monitor>#<check>` names the
    monitor and check, its cause annotation says performance or input drift (input drift when absent: retrains
    made before performance checks existed); `manual` is manual; anything else (search, import) has no cause."""
    match = _MONITOR_TRIGGER.match(trigger)
    if match is None:
        return ("manual" if trigger == "manual" else None), None, None
    check = int(match["check"]) if match["check"] else None
    return ("performance" if cause == "performance" else "input_drift"), match["monitor"], check


@dataclass(frozen=True)
class ObservedTrainingRun:
    """Everything a TrainingRun's plan reads."""

    owner: Owner
    spec: TrainingRunSpec | None
    """None when the stored spec does not validate; `spec_error` then says why."""
    spec_error: str | None
    status: TrainingRunStatus
    settings: OperatorSettings
    now: datetime
    trigger: str = "manual"
    trigger_cause: str | None = None
    """The gyre.dev/trigger-cause annotation: input_drift or performance on a DriftMonitor's retrain."""
    dataset: DatasetView | None = None
    job: JobView | None = None
    pods: Sequence[PodResult] = ()
    """The Job's pods, read only once the Job has finished."""


@dataclass(frozen=True)
class DatasetProblem:
    """Why a run cannot start: `permanent` problems fail the run, the others make it wait."""

    reason: Reason
    message: str
    permanent: bool


def resolve_dataset(spec: TrainingRunSpec, dataset: DatasetView | None) -> DatasetInput | DatasetProblem:
    """Decide which Dataset version to train on, or why not."""
    ref = spec.dataset_ref
    if dataset is None:
        return DatasetProblem(
            Reason.DATASET_NOT_FOUND, f"Dataset {ref.name} does not exist in this namespace", False
        )
    ds_status = dataset.status
    if ds_status.phase != "Ready" or not ds_status.fingerprint or not ds_status.data_uri:
        phase = ds_status.phase or "Pending"
        return DatasetProblem(
            Reason.DATASET_NOT_READY, f"waiting for Dataset {ref.name} to be Ready (it is {phase})", False
        )
    fingerprint, version, uri = ds_status.fingerprint, ds_status.version, ds_status.data_uri
    # status.fingerprint is only ever a version that satisfied the contract (reconcile.dataset); a status written
    # otherwise (by hand, or an older operator) is refused rather than trusted.
    contract = ds_status.contract
    if contract is not None and not contract.satisfied and contract.fingerprint == fingerprint:
        return DatasetProblem(
            Reason.CONTRACT_VIOLATED,
            f"Dataset {ref.name}'s current version {version} breaks its spec.expectations; waiting for a good one",
            False,
        )
    if ref.fingerprint and ref.fingerprint != fingerprint:
        older = next((h for h in ds_status.history or [] if h.fingerprint == ref.fingerprint), None)
        if older is None:
            return DatasetProblem(
                Reason.FINGERPRINT_MISMATCH,
                f"Dataset {ref.name} is at {fingerprint} (version {version}); the pinned fingerprint "
                f"{ref.fingerprint} is not among its recorded versions. Remove datasetRef.fingerprint or pin one "
                f"listed in the Dataset's status.history",
                True,
            )
        if older.contract_violated:
            return DatasetProblem(
                Reason.CONTRACT_VIOLATED,
                f"the pinned version {older.version} ({ref.fingerprint}) of Dataset {ref.name} breaks the Dataset's "
                f"spec.expectations and is never trained on; pin a version without contractViolated in its "
                f"status.history, or remove datasetRef.fingerprint",
                True,
            )
        # Versions are content-addressed: an older one lives beside the current one under its own digest.
        uri = uri.replace(fingerprint.removeprefix("sha256:"), ref.fingerprint.removeprefix("sha256:"))
        fingerprint, version = older.fingerprint, older.version
    ds_spec = dataset.spec
    target = spec.target or (ds_spec.target if ds_spec else None) or ds_status.target
    if not target:
        return DatasetProblem(
            Reason.NO_TARGET,
            f"no target column: set spec.target or the Dataset {ref.name}'s spec.target",
            True,
        )
    columns = [c.name for c in ds_status.columns or []]
    complete = bool(columns) and ds_status.column_count in (None, len(columns))
    if complete:
        wanted = [target, *(spec.features.named_columns() if spec.features else [])]
        missing = [c for c in wanted if c not in columns]
        if missing:
            return DatasetProblem(
                Reason.UNKNOWN_COLUMNS,
                f"Dataset {ref.name} has no column(s) {', '.join(missing)}; it has: {', '.join(columns[:30])}",
                True,
            )
        unsliceable = _slice_columns_problem(spec, target, columns, ref.name)
        if unsliceable is not None:
            return unsliceable
    kinds = tuple((c.name, c.kind) for c in ds_status.columns or [])
    return DatasetInput(
        name=ref.name, uri=uri, fingerprint=fingerprint, version=version, target=target, columns=kinds
    )


def _slice_columns_problem(
    spec: TrainingRunSpec, target: str, columns: Sequence[str], dataset: str
) -> DatasetProblem | None:
    """Why spec.slices.columns cannot be sliced on this Dataset: a column it lacks, or its target."""
    if spec.slices is None:
        return None
    missing = [c for c in spec.slices.columns if c not in columns]
    if missing:
        return DatasetProblem(
            Reason.UNKNOWN_COLUMNS,
            f"spec.slices.columns names {', '.join(missing)}, not in Dataset {dataset}; it has: "
            f"{', '.join(columns[:30])}",
            True,
        )
    if target in spec.slices.columns:
        return DatasetProblem(
            Reason.INVALID_SPEC,
            f"spec.slices.columns names the target {target!r}; slice by an input or another column",
            True,
        )
    return None


def _fail(plan: Plan[TrainingRunStatus], generation: int, now: datetime, reason: str, message: str) -> None:
    status = plan.status
    status.phase = "Failed"
    status.observed_generation = generation
    status.completion_time = status.completion_time or now
    conditions = set_condition(
        status.conditions or [], ConditionType.FAILED, "True", reason, message, generation=generation
    )
    status.conditions = set_condition(
        conditions, ConditionType.RUNNING, "False", reason, generation=generation
    )
    plan.event(EventType.WARNING, reason, message)


def plan_would_change(phase: str | None, job: JobView | None) -> bool:
    """Whether planning a run in `phase` whose Job is `job` (None: not observed yet) can change anything.

    False for a finished run (never changed again) and for a Running run whose Job is not observed finished: a
    running Job leaves the plan empty, and a Job not in the index yet was most likely created a moment ago; the
    Job's own events (finished, deleted) are what move the run on. Most events of a run are of this kind (its own
    status write landing), so the controller skips them without parsing the run. Runs listed when the operator
    starts are planned whatever this says: a Job may have been deleted while it was away.
    """
    if phase in _TERMINAL:
        return False
    if phase == "Running":
        return job is not None and job.outcome.finished
    return True


def plan_trainingrun(obs: ObservedTrainingRun) -> Plan[TrainingRunStatus]:
    """Decide the next step of a TrainingRun: wait, start its Job, record its result, or nothing."""
    plan = Plan(obs.status.model_copy(deep=True))
    status, generation = plan.status, obs.owner.generation
    if status.phase in _TERMINAL:
        return plan
    if obs.spec is None:
        _fail(plan, generation, obs.now, Reason.INVALID_SPEC, obs.spec_error or "the spec does not validate")
        return plan
    spec = obs.spec
    if status.phase == "Running":
        if obs.job is None:
            message = (
                f"Job {status.job_name} was deleted before it finished; create a new TrainingRun to retrain"
            )
            _fail(plan, generation, obs.now, Reason.JOB_MISSING, message)
        elif obs.job.outcome.finished:
            distrust = untrusted_result(obs.owner.uid, obs.job, obs.pods, obs.settings.image_policy)
            if distrust is not None:
                _fail(plan, generation, obs.now, Reason.UNTRUSTED_RESULT, distrust)
                return plan
            reports = training_reports(obs.pods, obs.job)
            new, events = apply_training_result(
                status,
                spec,
                reports,
                generation=generation,
                finished_at=parse_time(obs.job.outcome.completion_time),
            )
            plan.status = new
            plan.events.extend(events)
        return plan
    if spec.search is not None and spec.search.trial_count() > MAX_TRIALS:
        message = (
            f"the search has {spec.search.trial_count()} trials; the limit is {MAX_TRIALS}: shrink the grid"
        )
        _fail(plan, generation, obs.now, Reason.SEARCH_TOO_LARGE, message)
        return plan
    if spec.slices is not None:
        problem = slices_spec_problem(
            spec.slices,
            task=task_of(spec.estimator.kind),
            default_metrics=spec.metrics or DEFAULT_METRICS[task_of(spec.estimator.kind)],
        )
        if problem is not None:
            _fail(plan, generation, obs.now, Reason.INVALID_SPEC, problem)
            return plan
    refusal = obs.settings.image_policy.spec_refusal(spec.image)
    if refusal is not None:
        _fail(plan, generation, obs.now, Reason.IMAGE_NOT_ALLOWED, refusal)
        return plan
    metric, _goal = primary_metric(spec)
    status.task = task_of(spec.estimator.kind)
    status.primary_metric = metric
    resolved = resolve_dataset(spec, obs.dataset)
    if isinstance(resolved, DatasetProblem):
        _wait_or_fail(plan, generation, obs.now, resolved)
        return plan
    _start(plan, obs, spec, resolved)
    return plan


def _wait_or_fail(
    plan: Plan[TrainingRunStatus], generation: int, now: datetime, problem: DatasetProblem
) -> None:
    status = plan.status
    previous = next((c for c in status.conditions or [] if c.type == ConditionType.DATASET_READY), None)
    status.conditions = set_condition(
        status.conditions or [],
        ConditionType.DATASET_READY,
        "False",
        problem.reason,
        problem.message,
        generation=generation,
    )
    if problem.permanent:
        _fail(plan, generation, now, problem.reason, problem.message)
        return
    status.phase = "Pending"
    status.observed_generation = generation
    if previous is None or previous.reason != problem.reason:
        kind = EventType.WARNING if problem.reason == Reason.DATASET_NOT_FOUND else EventType.NORMAL
        plan.event(kind, problem.reason, problem.message)


def _start(
    plan: Plan[TrainingRunStatus], obs: ObservedTrainingRun, spec: TrainingRunSpec, dataset: DatasetInput
) -> None:
    status, generation = plan.status, obs.owner.generation
    job_name = training_job_name(obs.owner)
    version = f"version {dataset.version}" if dataset.version is not None else dataset.fingerprint
    trials = spec.search.trial_count() if spec.search else 1
    what = f"{trials} trials" if spec.search else "one model"
    tracking = resolve_tracking(obs.owner, spec, obs.settings)
    if obs.job is None:
        job = build_training_job(
            obs.owner, spec, obs.settings, dataset, trigger=obs.trigger, tracking=tracking
        )
        plan.actions.extend(create_with_claim(obs.settings, obs.owner.namespace, job))
        plan.event(
            EventType.NORMAL,
            Reason.STARTED,
            f"Job {job_name}: {spec.estimator.kind}, {what} on {dataset.name} {version}",
        )
    status.phase = "Running"
    status.job_name = job_name
    status.start_time = status.start_time or obs.now
    status.dataset_fingerprint = dataset.fingerprint
    status.dataset_version = dataset.version
    status.dataset_uri = dataset.uri
    cause, monitor, check = trigger_lineage(obs.trigger, obs.trigger_cause)
    status.lineage = Lineage(
        dataset=dataset.name,
        dataset_version=dataset.version,
        dataset_fingerprint=dataset.fingerprint,
        trigger=obs.trigger,
        cause=cause,
        monitor=monitor,
        check=check,
        image=spec.image or obs.settings.image,
    )
    status.observed_generation = generation
    conditions = set_condition(
        status.conditions or [],
        ConditionType.DATASET_READY,
        "True",
        Reason.DATASET_READY,
        f"training on Dataset {dataset.name} {version}",
        generation=generation,
    )
    status.conditions = set_condition(
        conditions,
        ConditionType.RUNNING,
        "True",
        Reason.JOB_CREATED,
        f"Job {job_name} trains {what}",
        generation=generation,
    )
    if tracking is not None and tracking.refusal is not None:
        refused_before = find_condition(status.conditions, ConditionType.TRACKED)
        status.conditions = set_condition(
            status.conditions,
            ConditionType.TRACKED,
            "False",
            Reason.TRACKING_REFUSED,
            tracking.refusal,
            generation=generation,
        )
        if refused_before is None:
            plan.event(EventType.WARNING, Reason.TRACKING_REFUSED, tracking.refusal)


def training_reports(results: Sequence[PodResult], job: JobView) -> dict[int, TrainReport]:
    """The latest report per trial index (index 0 for a single run)."""
    out: dict[int, TrainReport] = {}
    for result in results:  # oldest first, so retries overwrite earlier attempts
        if not result.terminated:
            continue
        index = result.index if result.index is not None else 0
        try:
            report = TrainReport.from_termination_message(result.message)
        except ValueError:
            tail = (
                result.message[-1500:]
                or f"the container exited with code {result.exit_code} ({result.reason})"
            )
            report = TrainReport(phase="Failed", reason=result.reason or Reason.TRAINING_FAILED, error=tail)
        out[index] = report
    if not out and job.outcome.finished and not job.outcome.succeeded:
        reason, message = explain_failure(job.outcome, list(results), Reason.TRAINING_FAILED)
        out[0] = TrainReport(phase="Failed", reason=reason, error=message)
    return out


def apply_training_result(
    status: TrainingRunStatus,
    spec: TrainingRunSpec,
    reports: dict[int, TrainReport],
    *,
    generation: int,
    finished_at: datetime,
) -> tuple[TrainingRunStatus, list[Event]]:
    """Fold the trial reports into the status. Returns (status, Events).

    The best trial is chosen by the primary metric and goal among trials that produced a model; gates are evaluated
    here, by the operator, on that trial's metrics.
    """
    status = status.model_copy(deep=True)
    metric, goal = primary_metric(spec)
    events: list[Event] = []
    if spec.search is not None:
        status.trials = [
            TrialStatus(
                index=i,
                phase="Succeeded" if r.phase == "Succeeded" else "Failed",
                params=r.params or None,
                metrics=r.metrics or None,
                message=(r.error or None) if r.phase != "Succeeded" else None,
            )
            for i, r in sorted(reports.items())
        ]
    winners = [(i, r) for i, r in sorted(reports.items()) if r.phase == "Succeeded" and r.model_uri]
    conditions: list[Condition] = status.conditions or []
    status.completion_time = finished_at
    status.observed_generation = generation
    status.primary_metric = metric
    conditions = set_condition(
        conditions, ConditionType.RUNNING, "False", Reason.JOB_FINISHED, generation=generation
    )
    if not winners:
        failed = [r for _, r in sorted(reports.items())]
        first = failed[0] if failed else TrainReport(phase="Failed", reason=Reason.TRAINING_FAILED)
        reason = first.reason or Reason.TRAINING_FAILED
        message = first.error or "training failed without an error message"
        if len(failed) > 1:
            message = f"all {len(failed)} trials failed; trial 0: {message}"
        status.phase = "Failed"
        conditions = set_condition(
            conditions, ConditionType.FAILED, "True", reason, message, generation=generation
        )
        status.conditions = conditions
        events.append(Event(EventType.WARNING, Reason.FAILED, message[:1000]))
        events.extend(record_tracking(status, reports, generation=generation))
        return status, events

    def rank(item: tuple[int, TrainReport]) -> float:
        value = item[1].metrics.get(metric)
        if value is None or value != value:  # missing or NaN ranks last
            return float("-inf")
        return value if goal == "maximize" else -value

    best_index, best = max(winners, key=rank)
    status.phase = "Succeeded"
    status.metrics = dict(best.metrics)
    status.params = dict(best.params) or None
    score_value = best.metrics.get(metric)
    # Rounded for the printer column; status.metrics keeps full precision.
    status.score = round(score_value, 4) if score_value is not None else None
    status.model_uri = best.model_uri
    status.model_sha256 = best.model_sha256
    if best.onnx:
        status.onnx = OnnxStatus(status=best.onnx, reason=best.onnx_reason)
    if best.card and best.model_uri:
        status.card = ModelCardStatus(
            markdown_uri=f"{best.model_uri.rstrip('/')}/{CARD_MARKDOWN}",
            html_uri=f"{best.model_uri.rstrip('/')}/{CARD_HTML}",
        )
    status.importances = best.importances
    if spec.search is not None:
        status.best_trial = best_index
    conditions = set_condition(
        conditions, ConditionType.FAILED, "False", Reason.SUCCEEDED, generation=generation
    )
    score = f"{metric}={status.score:.4g}" if status.score is not None else f"{metric} not reported"
    where = f" (best of {len(winners)}/{len(reports)} trials: #{best_index})" if spec.search else ""
    conditions = set_condition(
        conditions,
        ConditionType.SUCCEEDED,
        "True",
        Reason.MODEL_TRAINED,
        f"{score}{where}",
        generation=generation,
    )
    verdict = evaluate_gates(spec.gates, best.metrics)
    if spec.slices is not None:
        status.slices = best.slices
        verdict = combine_verdicts(verdict, evaluate_slice_gates(spec.slices, best.slices))
    conditions = set_condition(
        conditions,
        ConditionType.VALIDATED,
        "True" if verdict.passed else "False",
        verdict.reason,
        verdict.message,
        generation=generation,
    )
    status.conditions = conditions
    events.append(Event(EventType.NORMAL, Reason.SUCCEEDED, f"{score}{where}; model at {best.model_uri}"))
    if not verdict.passed:
        events.append(Event(EventType.WARNING, Reason.GATES_FAILED, verdict.message[:1000]))
    events.extend(record_tracking(status, reports, generation=generation))
    return status, events


def record_tracking(
    status: TrainingRunStatus, reports: dict[int, TrainReport], *, generation: int
) -> list[Event]:
    """Fold the pods' MLflow outcomes into status.tracking and the Tracked condition (in place).

    Nothing when no pod tried to log. Tracking never changes the phase or the gates: a failure is Tracked=False
    with the first failure's message, and one Warning Event.
    """
    outcomes = [(i, r.tracking) for i, r in sorted(reports.items()) if r.tracking is not None]
    if not outcomes:
        return []
    failed = [(i, o) for i, o in outcomes if not o.logged]
    # A run that exists but lacks something (an artifact) still has its place in MLflow: point at it.
    first = next((o for _, o in outcomes if o.run_id), None)
    status.tracking = TrackingStatus(
        experiment_id=first.experiment_id if first else None,
        run_id=(first.parent_run_id or first.run_id) if first else None,
        url=(first.parent_url or first.url) if first else None,
        failed_trials=len(failed) if len(reports) > 1 and failed else None,
    )
    if failed:
        index, outcome = failed[0]
        where = f"trial {index}: " if len(reports) > 1 else ""
        message = f"{len(failed)} of {len(outcomes)} runs not logged to MLflow; " if len(outcomes) > 1 else ""
        message += f"{where}{outcome.message or 'no reason given'}"
        status.conditions = set_condition(
            status.conditions or [],
            ConditionType.TRACKED,
            "False",
            Reason.TRACKING_FAILED,
            message,
            generation=generation,
        )
        return [Event(EventType.WARNING, Reason.TRACKING_FAILED, message[:1000])]
    noun = "run" if len(outcomes) == 1 else f"parent run and {len(outcomes)} child runs"
    status.conditions = set_condition(
        status.conditions or [],
        ConditionType.TRACKED,
        "True",
        Reason.TRACKED,
        f"logged as MLflow {noun} {status.tracking.run_id} in experiment {status.tracking.experiment_id}",
        generation=generation,
    )
    return []
