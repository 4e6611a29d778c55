"""TrainingRun controller: wait for the Dataset, run the training Job, then record metrics, model and gates."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import kopf
from pydantic import ValidationError

from gyre.api.common import GROUP, TRIGGER_ANNOTATION, VERSION, Condition, set_condition, utcnow
from gyre.api.dataset import DatasetSpec, DatasetStatus
from gyre.api.gates import evaluate_gates
from gyre.api.trainingrun import (
    DEFAULT_METRICS,
    Lineage,
    OnnxStatus,
    TrainingRunSpec,
    TrainingRunStatus,
    TrialStatus,
    default_goal,
    task_of,
)
from gyre.builders.job import DatasetInput, build_training_job
from gyre.builders.meta import LABEL_OWNER_KIND, MANAGED_BY
from gyre.controllers import kube
from gyre.controllers.common import (
    dump_status,
    emit,
    ensure_artifact_pvc,
    format_validation_error,
    mine,
    owner_from_body,
    owner_of_child,
    parse_time,
    settings,
)
from gyre.training.report import TrainReport

__all__ = [
    "MAX_TRIALS",
    "DatasetProblem",
    "apply_training_result",
    "primary_metric",
    "reconcile_trainingrun",
    "resolve_dataset",
    "training_job_finished",
]

PLURAL = "trainingruns"
MAX_TRIALS = 500
WAIT_SECONDS = 15
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatasetProblem:
    """Why a run cannot start: `permanent` problems fail the run, the others make it wait."""

    reason: str
    message: str
    permanent: bool


def _status(raw: Any) -> TrainingRunStatus:
    try:
        return TrainingRunStatus.model_validate(dict(raw or {}))
    except ValidationError:
        return TrainingRunStatus()


def _write(namespace: str, name: str, status: TrainingRunStatus) -> None:
    kube.patch_status(PLURAL, namespace, name, dump_status(status))


def primary_metric(spec: TrainingRunSpec) -> tuple[str, str]:
    """(metric, goal) that ranks models: search.metric/goal, else the first metric, else the task's default."""
    task = task_of(spec.estimator.kind)
    metric = (spec.search.metric if spec.search else None) or (spec.metrics or DEFAULT_METRICS[task])[0]
    goal = (spec.search.goal if spec.search else None) or default_goal(metric)
    return metric, goal


def resolve_dataset(spec: TrainingRunSpec, dataset: dict[str, Any] | None) -> DatasetInput | DatasetProblem:
    """Decide which Dataset version to train on, or why not (pure, so the rules are unit-tested)."""
    ref = spec.dataset_ref
    if dataset is None:
        return DatasetProblem(
            "DatasetNotFound", f"Dataset {ref.name} does not exist in this namespace", False
        )
    try:
        ds_status = DatasetStatus.model_validate(dataset.get("status") or {})
    except ValidationError:
        ds_status = DatasetStatus()
    if ds_status.phase != "Ready" or not ds_status.fingerprint or not ds_status.data_uri:
        phase = ds_status.phase or "Pending"
        return DatasetProblem(
            "DatasetNotReady", f"waiting for Dataset {ref.name} to be Ready (it is {phase})", False
        )
    fingerprint, version, uri = ds_status.fingerprint, ds_status.version, ds_status.data_uri
    if ref.fingerprint and ref.fingerprint != fingerprint:
        older = next((h for h in ds_status.history or [] if h.fingerprint == ref.fingerprint), None)
        if older is None:
            return DatasetProblem(
                "FingerprintMismatch",
                f"Dataset {ref.name} is at {fingerprint} (version {version}); the pinned fingerprint "
                f"{ref.fingerprint} is not among its recorded versions. Remove datasetRef.fingerprint or pin one "
                f"listed in the Dataset's status.history",
                True,
            )
        # Versions are content-addressed: an older one lives beside the current one under its own digest.
        uri = uri.replace(fingerprint.removeprefix("sha256:"), ref.fingerprint.removeprefix("sha256:"))
        fingerprint, version = older.fingerprint, older.version
    try:
        ds_spec: DatasetSpec | None = DatasetSpec.model_validate(dataset.get("spec") or {})
    except ValidationError:
        ds_spec = None
    target = spec.target or (ds_spec.target if ds_spec else None) or ds_status.target
    if not target:
        return DatasetProblem(
            "NoTarget", f"no target column: set spec.target or the Dataset {ref.name}'s spec.target", True
        )
    columns = [c.name for c in ds_status.columns or []]
    complete = bool(columns) and ds_status.column_count in (None, len(columns))
    if complete:
        wanted = [target, *(spec.features or [])]
        missing = [c for c in wanted if c not in columns]
        if missing:
            return DatasetProblem(
                "UnknownColumns",
                f"Dataset {ref.name} has no column(s) {', '.join(missing)}; it has: {', '.join(columns[:30])}",
                True,
            )
    kinds = tuple((c.name, c.kind) for c in ds_status.columns or [])
    return DatasetInput(
        name=ref.name, uri=uri, fingerprint=fingerprint, version=version, target=target, columns=kinds
    )


def _fail(body: kopf.Body, status: TrainingRunStatus, generation: int, reason: str, message: str) -> None:
    status.phase = "Failed"
    status.observed_generation = generation
    status.completion_time = status.completion_time or utcnow()
    conditions = set_condition(
        status.conditions or [], "Failed", "True", reason, message, generation=generation
    )
    status.conditions = set_condition(conditions, "Running", "False", reason, generation=generation)
    meta = body["metadata"]
    _write(meta["namespace"], meta["name"], status)
    emit(body, "Warning", reason, message)


@kopf.on.resume(GROUP, VERSION, PLURAL, when=mine)
@kopf.on.create(GROUP, VERSION, PLURAL, when=mine)
def reconcile_trainingrun(body: kopf.Body, reason: str, **_: Any) -> None:
    """Validate, wait for the Dataset, then create the training Job (once; the spec is immutable)."""
    owner = owner_from_body(body)
    status = _status(body.get("status"))
    if reason == "resume" and status.phase == "Running" and status.job_name:
        # The Job watcher records the result; a Job deleted while the operator was away never will report.
        if not kube.job_exists(owner.namespace, status.job_name):
            message = (
                f"Job {status.job_name} was deleted before it finished; create a new TrainingRun to retrain"
            )
            _fail(body, status, owner.generation, "JobMissing", message)
        return
    if status.phase in ("Running", "Succeeded", "Failed"):
        return
    try:
        spec = TrainingRunSpec.model_validate(dict(body["spec"]))
    except ValidationError as exc:
        _fail(body, status, owner.generation, "InvalidSpec", format_validation_error(exc))
        return
    if spec.search is not None and spec.search.trial_count() > MAX_TRIALS:
        message = (
            f"the search has {spec.search.trial_count()} trials; the limit is {MAX_TRIALS}: shrink the grid"
        )
        _fail(body, status, owner.generation, "SearchTooLarge", message)
        return
    metric, _goal = primary_metric(spec)
    status.task = task_of(spec.estimator.kind)
    status.primary_metric = metric
    dataset = kube.get_custom("datasets", owner.namespace, spec.dataset_ref.name)
    resolved = resolve_dataset(spec, dataset)
    if isinstance(resolved, DatasetProblem):
        if resolved.permanent:
            status.conditions = set_condition(
                status.conditions or [],
                "DatasetReady",
                "False",
                resolved.reason,
                resolved.message,
                generation=owner.generation,
            )
            _fail(body, status, owner.generation, resolved.reason, resolved.message)
            return
        previous = next((c for c in status.conditions or [] if c.type == "DatasetReady"), None)
        status.phase = "Pending"
        status.observed_generation = owner.generation
        status.conditions = set_condition(
            status.conditions or [],
            "DatasetReady",
            "False",
            resolved.reason,
            resolved.message,
            generation=owner.generation,
        )
        _write(owner.namespace, owner.name, status)
        if previous is None or previous.reason != resolved.reason:
            emit(
                body,
                "Warning" if resolved.reason == "DatasetNotFound" else "Normal",
                resolved.reason,
                resolved.message,
            )
        # Waiting is not an error: kopf retries the handler after the delay.
        raise kopf.TemporaryError(resolved.message, delay=WAIT_SECONDS)

    ensure_artifact_pvc(owner.namespace)
    image = spec.image or settings().image
    trigger = (body["metadata"].get("annotations") or {}).get(TRIGGER_ANNOTATION, "manual")
    job = build_training_job(owner, spec, settings(), resolved, trigger=trigger)
    job_name = job["metadata"]["name"]
    created = kube.create_if_absent(job)
    status.phase = "Running"
    status.job_name = job_name
    status.start_time = status.start_time or utcnow()
    status.dataset_fingerprint = resolved.fingerprint
    status.dataset_version = resolved.version
    status.dataset_uri = resolved.uri
    status.lineage = Lineage(
        dataset=resolved.name,
        dataset_version=resolved.version,
        dataset_fingerprint=resolved.fingerprint,
        trigger=trigger,
        image=image,
    )
    status.observed_generation = owner.generation
    version = f"version {resolved.version}" if resolved.version is not None else resolved.fingerprint
    conditions = set_condition(
        status.conditions or [],
        "DatasetReady",
        "True",
        "DatasetReady",
        f"training on Dataset {resolved.name} {version}",
        generation=owner.generation,
    )
    trials = spec.search.trial_count() if spec.search else 1
    what = f"{trials} trials" if spec.search else "one model"
    status.conditions = set_condition(
        conditions,
        "Running",
        "True",
        "JobCreated",
        f"Job {job_name} trains {what}",
        generation=owner.generation,
    )
    _write(owner.namespace, owner.name, status)
    if created:
        emit(
            body,
            "Normal",
            "Started",
            f"Job {job_name}: {spec.estimator.kind}, {what} on {resolved.name} {version}",
        )


def _reports(results: Sequence[kube.PodResult], outcome: kube.JobOutcome) -> dict[int, TrainReport]:
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
            report = TrainReport(phase="Failed", reason=result.reason or "TrainingFailed", error=tail)
        out[index] = report
    if not out and outcome.finished and not outcome.succeeded:
        reason, message = kube.explain_failure(outcome, list(results), "TrainingFailed")
        out[0] = TrainReport(phase="Failed", reason=reason, error=message)
    return out


def apply_training_result(
    status: TrainingRunStatus,
    spec: TrainingRunSpec,
    reports: dict[int, TrainReport],
    *,
    generation: int,
    finished_at: datetime,
) -> tuple[TrainingRunStatus, list[tuple[str, str, str]]]:
    """Fold the trial reports into the status. Returns (status, Events as (type, reason, message)).

    The best trial is chosen by the primary metric and goal among trials that produced a model; gates are evaluated
    here, by the operator, on that trial's metrics.
    """
    status = status.model_copy(deep=True)
    metric, goal = primary_metric(spec)
    events: list[tuple[str, str, str]] = []
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
    conditions = set_condition(conditions, "Running", "False", "JobFinished", generation=generation)
    if not winners:
        failed = [r for _, r in sorted(reports.items())]
        first = failed[0] if failed else TrainReport(phase="Failed", reason="TrainingFailed")
        reason = first.reason or "TrainingFailed"
        message = first.error or "training failed without an error message"
        if len(failed) > 1:
            message = f"all {len(failed)} trials failed; trial 0: {message}"
        status.phase = "Failed"
        conditions = set_condition(conditions, "Failed", "True", reason, message, generation=generation)
        status.conditions = conditions
        events.append(("Warning", "Failed", message))
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
    if spec.search is not None:
        status.best_trial = best_index
    conditions = set_condition(conditions, "Failed", "False", "Succeeded", generation=generation)
    score = f"{metric}={status.score:.4g}" if status.score is not None else f"{metric} not reported"
    where = f" (best of {len(winners)}/{len(reports)} trials: #{best_index})" if spec.search else ""
    conditions = set_condition(
        conditions, "Succeeded", "True", "ModelTrained", f"{score}{where}", generation=generation
    )
    verdict = evaluate_gates(spec.gates, best.metrics)
    conditions = set_condition(
        conditions,
        "Validated",
        "True" if verdict.passed else "False",
        verdict.reason,
        verdict.message,
        generation=generation,
    )
    status.conditions = conditions
    events.append(("Normal", "Succeeded", f"{score}{where}; model at {best.model_uri}"))
    if not verdict.passed:
        events.append(("Warning", "GatesFailed", verdict.message))
    return status, events


@kopf.on.event(
    "batch",
    "v1",
    "jobs",
    labels={LABEL_OWNER_KIND: "TrainingRun", "app.kubernetes.io/managed-by": MANAGED_BY},
    when=mine,
)
def training_job_finished(body: kopf.Body, type: str | None, **_: Any) -> None:
    """When a training Job finishes, read every trial's report and record the result on the TrainingRun."""
    if type == "DELETED":
        return
    outcome = kube.job_outcome(dict(body))
    if not outcome.finished:
        return
    owner = owner_of_child(body, "TrainingRun")
    if owner is None:
        return
    namespace, name, uid = owner
    run = kube.get_custom(PLURAL, namespace, name)
    if run is None or run["metadata"]["uid"] != uid:
        return
    _record_finished_job(run, body["metadata"]["name"], outcome)


def _record_finished_job(run: dict[str, Any], job_name: str, outcome: kube.JobOutcome) -> None:
    """Fold a finished training Job into the run, once: a recorded run is no longer Running."""
    namespace, name = run["metadata"]["namespace"], run["metadata"]["name"]
    status = _status(run.get("status"))
    if status.phase != "Running" or status.job_name != job_name:
        return  # already recorded
    try:
        spec = TrainingRunSpec.model_validate(run["spec"])
    except ValidationError:
        return  # the create handler has already failed the run
    reports = _reports(kube.job_pod_results(namespace, job_name), outcome)
    finished = parse_time(outcome.completion_time)
    generation = int(run["metadata"].get("generation") or 1)
    new, events = apply_training_result(status, spec, reports, generation=generation, finished_at=finished)
    _write(namespace, name, new)
    for type_, reason, message in events:
        emit(run, type_, reason, message)


@kopf.timer(GROUP, VERSION, PLURAL, interval=20, initial_delay=20, when=mine)
def collect_finished_training(body: kopf.Body, **_: Any) -> None:
    """Safety net for the Job watcher, whose events are not retried: a run must not stay Running after its Job
    finished."""
    status = _status(body.get("status"))
    if status.phase != "Running" or not status.job_name:
        return
    outcome = kube.finished_job_outcome(body["metadata"]["namespace"], status.job_name)
    if outcome is not None:
        log.info("recording finished Job %s that the watcher did not", status.job_name)
        _record_finished_job(dict(body), status.job_name, outcome)
