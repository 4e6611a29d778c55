"""Dataset controller: run the profiling Job on spec changes and refreshes, then record the version it found."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import kopf
from pydantic import ValidationError

from gyre.api.common import GROUP, VERSION, Condition, find_condition, parse_duration, set_condition, utcnow
from gyre.api.dataset import ColumnStatus, DatasetSpec, DatasetStatus, DatasetVersion
from gyre.builders.job import build_profile_job
from gyre.builders.meta import LABEL_OWNER_KIND, MANAGED_BY, short_hash
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
from gyre.data.report import ProfileReport

__all__ = [
    "apply_profile_result",
    "collect_finished_profile",
    "profile_job_finished",
    "reconcile_dataset",
    "refresh_dataset",
]

PLURAL = "datasets"
log = logging.getLogger(__name__)


def _status(raw: Any) -> DatasetStatus:
    try:
        return DatasetStatus.model_validate(dict(raw or {}))
    except ValidationError:
        # A status we cannot read (hand-edited, older operator) is rebuilt rather than crashing the handler.
        return DatasetStatus()


def _settle_refreshing(
    conditions: list[Condition], reason: str, message: str, generation: int
) -> list[Condition]:
    """Mark a refresh as over; Datasets that were never refreshed get no Refreshing condition at all."""
    if find_condition(conditions, "Refreshing") is None:
        return conditions
    return set_condition(conditions, "Refreshing", "False", reason, message, generation=generation)


def _refreshing(status: DatasetStatus) -> bool:
    refreshing = find_condition(status.conditions or [], "Refreshing")
    return refreshing is not None and refreshing.status == "True"


def _profiling_in_flight(status: DatasetStatus) -> bool:
    """Whether a profiling Job (first read or refresh) is running for this Dataset."""
    return status.phase == "Profiling" or _refreshing(status)


def _write(namespace: str, name: str, status: DatasetStatus) -> None:
    kube.patch_status(PLURAL, namespace, name, dump_status(status))


@kopf.on.resume(GROUP, VERSION, PLURAL, when=mine)
@kopf.on.create(GROUP, VERSION, PLURAL, when=mine)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec", when=mine)
def reconcile_dataset(body: kopf.Body, reason: str, **_: Any) -> None:
    """Start profiling the current generation, unless it has already been started."""
    owner = owner_from_body(body)
    status = _status(body.get("status"))
    if reason == "resume" and status.observed_generation == owner.generation and status.job_name:
        if not _profiling_in_flight(status) or kube.job_exists(owner.namespace, status.job_name):
            return  # The Job watcher (or the result already recorded) covers this generation.
        if status.phase != "Profiling":
            # A refresh whose Job vanished while the operator was away: the timer will try again.
            status.conditions = _settle_refreshing(
                status.conditions or [], "JobMissing", f"Job {status.job_name} was deleted", owner.generation
            )
            _write(owner.namespace, owner.name, status)
            return
        # Profiling this generation, but its Job is gone: recreate it (same deterministic name) below.
    try:
        spec = DatasetSpec.model_validate(dict(body["spec"]))
    except ValidationError as exc:
        message = format_validation_error(exc)
        status.phase = "Failed"
        status.observed_generation = owner.generation
        status.conditions = set_condition(
            status.conditions or [], "Ready", "False", "InvalidSpec", message, generation=owner.generation
        )
        _write(owner.namespace, owner.name, status)
        emit(body, "Warning", "InvalidSpec", message)
        return
    ensure_artifact_pvc(owner.namespace)
    job = build_profile_job(owner, spec, settings(), revision=f"g{owner.generation}")
    job_name = job["metadata"]["name"]
    created = kube.create_if_absent(job)
    status.phase = "Profiling"
    status.job_name = job_name
    status.target = spec.target
    status.observed_generation = owner.generation
    conditions = set_condition(
        status.conditions or [],
        "Ready",
        "False",
        "Profiling",
        f"reading {spec.source.uri} in Job {job_name}",
        generation=owner.generation,
    )
    status.conditions = _settle_refreshing(conditions, "SpecChanged", "", owner.generation)
    _write(owner.namespace, owner.name, status)
    if created:
        emit(body, "Normal", "Profiling", f"created Job {job_name} to read {spec.source.uri}")


@kopf.timer(GROUP, VERSION, PLURAL, interval=30, initial_delay=30, when=mine)
def refresh_dataset(body: kopf.Body, **_: Any) -> None:
    """Re-read the source when spec.refreshInterval has passed since the last successful read."""
    try:
        spec = DatasetSpec.model_validate(dict(body["spec"]))
    except ValidationError:
        return
    if spec.refresh_interval is None:
        return
    owner = owner_from_body(body)
    status = _status(body.get("status"))
    if status.observed_generation != owner.generation or status.phase not in ("Ready", "Failed"):
        return
    if _refreshing(status):
        return
    ready = find_condition(status.conditions or [], "Ready")
    last = status.last_profile_time or (ready.last_transition_time if ready else None)
    now = utcnow()
    if last is not None and now - last < parse_duration(spec.refresh_interval):
        return
    revision = f"g{owner.generation}-r{int(now.timestamp())}"
    job = build_profile_job(owner, spec, settings(), revision=revision)
    ensure_artifact_pvc(owner.namespace)
    kube.create_if_absent(job)
    status.job_name = job["metadata"]["name"]
    status.conditions = set_condition(
        status.conditions or [],
        "Refreshing",
        "True",
        "RefreshDue",
        f"re-reading {spec.source.uri} in Job {status.job_name}",
        generation=owner.generation,
    )
    _write(owner.namespace, owner.name, status)


def apply_profile_result(
    status: DatasetStatus,
    report: ProfileReport,
    *,
    history_limit: int,
    generation: int,
    finished_at: datetime,
    refresh: bool,
) -> tuple[DatasetStatus, str, str]:
    """Fold one profiling report into the status. Returns (status, event reason, event message).

    Pure, and idempotent: the version moves only when the fingerprint differs from the current one, so reading the
    same finished Job twice changes nothing.
    """
    status = status.model_copy(deep=True)
    conditions = status.conditions or []
    if report.phase != "Succeeded" or not report.fingerprint:
        reason = report.reason or "ProfilingFailed"
        message = report.error or "the profiling Job failed without a report"
        if refresh and status.fingerprint:
            # A failed refresh does not make the current version unusable.
            status.conditions = set_condition(
                conditions, "Refreshing", "False", reason, message, generation=generation
            )
        else:
            status.phase = "Failed"
            status.conditions = set_condition(
                conditions, "Ready", "False", reason, message, generation=generation
            )
            status.conditions = _settle_refreshing(status.conditions, reason, "", generation)
        return status, reason, message

    changed = report.fingerprint != status.fingerprint
    if changed:
        status.version = (status.version or 0) + 1
        entry = DatasetVersion(
            version=status.version,
            fingerprint=report.fingerprint,
            rows=report.rows or 0,
            created_at=finished_at,
        )
        status.history = [entry, *(status.history or [])][:history_limit]
    status.fingerprint = report.fingerprint
    status.rows = report.rows
    status.columns = [ColumnStatus(name=c.name, kind=c.kind, dtype=c.dtype) for c in report.columns or []]
    status.column_count = report.column_count if report.column_count is not None else len(status.columns)
    status.data_uri = report.data_uri
    status.profile_uri = report.profile_uri
    if report.target:
        status.target = report.target
    status.last_profile_time = finished_at
    status.phase = "Ready"
    short = report.fingerprint[:19]
    message = f"version {status.version}: {report.rows} rows, {status.column_count} columns ({short}...)"
    status.conditions = set_condition(conditions, "Ready", "True", "Profiled", message, generation=generation)
    status.conditions = _settle_refreshing(status.conditions, "Profiled", "", generation)
    event_reason = "NewVersion" if changed else "Unchanged"
    return status, event_reason, message


def _report(results: list[kube.PodResult], outcome: kube.JobOutcome) -> ProfileReport:
    """The newest pod's report; a failure explained from the pods and the Job when there is none."""
    for result in reversed(results):
        if not result.terminated or not result.message:
            continue
        try:
            return ProfileReport.from_termination_message(result.message)
        except ValueError:
            # FallbackToLogsOnError: the message is the log tail of a process that died before reporting.
            return ProfileReport(
                phase="Failed", reason=result.reason or "ProfilingFailed", error=result.message[-1500:]
            )
    reason, message = kube.explain_failure(outcome, results, "ProfilingFailed")
    return ProfileReport(phase="Failed", reason=reason, error=message)


@kopf.on.event(
    "batch",
    "v1",
    "jobs",
    labels={LABEL_OWNER_KIND: "Dataset", "app.kubernetes.io/managed-by": MANAGED_BY},
    when=mine,
)
def profile_job_finished(body: kopf.Body, type: str | None, **_: Any) -> None:
    """When a profiling Job finishes, read its report and record the version on the Dataset."""
    if type == "DELETED":
        return
    outcome = kube.job_outcome(dict(body))
    if not outcome.finished:
        return
    owner = owner_of_child(body, "Dataset")
    if owner is None:
        return
    namespace, name, uid = owner
    dataset = kube.get_custom(PLURAL, namespace, name)
    if dataset is None or dataset["metadata"]["uid"] != uid:
        return
    _record_finished_job(dataset, body["metadata"]["name"], outcome)


def _record_finished_job(dataset: dict[str, Any], job_name: str, outcome: kube.JobOutcome) -> None:
    """Fold a finished profiling Job into the Dataset, unless a newer Job superseded it or it is already in."""
    namespace, name = dataset["metadata"]["namespace"], dataset["metadata"]["name"]
    status = _status(dataset.get("status"))
    is_refresh = _refreshing(status)
    if status.job_name != job_name or not _profiling_in_flight(status):
        return
    report = _report(kube.job_pod_results(namespace, job_name), outcome)
    try:
        history_limit = DatasetSpec.model_validate(dataset["spec"]).history_limit
    except ValidationError:
        history_limit = 10
    generation = int(dataset["metadata"].get("generation") or 1)
    new, reason, message = apply_profile_result(
        status,
        report,
        history_limit=history_limit,
        generation=generation,
        finished_at=parse_time(outcome.completion_time),
        refresh=is_refresh,
    )
    _write(namespace, name, new)
    if reason == "Unchanged":
        return
    emit(dataset, "Normal" if new.phase == "Ready" and reason == "NewVersion" else "Warning", reason, message)


@kopf.timer(GROUP, VERSION, PLURAL, interval=20, initial_delay=20, when=mine)
def collect_finished_profile(body: kopf.Body, **_: Any) -> None:
    """Safety net for the Job watcher: Job events are not retried, so a missed or failed one must not leave the
    Dataset profiling forever. A finished Job that was not recorded yet is recorded now."""
    status = _status(body.get("status"))
    if not _profiling_in_flight(status) or not status.job_name:
        return
    outcome = kube.finished_job_outcome(body["metadata"]["namespace"], status.job_name)
    if outcome is not None:
        log.info("recording finished Job %s that the watcher did not", status.job_name)
        _record_finished_job(dict(body), status.job_name, outcome)


REFRESH_ANNOTATION = "gyre.dev/refresh-requested-at"


@kopf.on.field(
    GROUP, VERSION, PLURAL, field=("metadata", "annotations", REFRESH_ANNOTATION), when=mine, retries=120
)
def refresh_requested(body: kopf.Body, new: Any, **_: Any) -> None:
    """Re-read the source now, because someone asked (a DriftMonitor about to retrain, or a person).

    The annotation's value (a timestamp) names the request: the same value never starts a second Job.
    """
    if not new or body.get("metadata", {}).get("deletionTimestamp"):
        return  # kopf also runs field handlers while deleting; a refresh then means nothing
    try:
        spec = DatasetSpec.model_validate(dict(body["spec"]))
    except ValidationError:
        return
    owner = owner_from_body(body)
    status = _status(body.get("status"))
    if _profiling_in_flight(status):
        raise kopf.TemporaryError("a profiling Job is already running; the request waits for it", delay=5)
    revision = f"g{owner.generation}-q{short_hash(str(new))}"
    job = build_profile_job(owner, spec, settings(), revision=revision)
    ensure_artifact_pvc(owner.namespace)
    kube.create_if_absent(job)
    status.job_name = job["metadata"]["name"]
    status.conditions = set_condition(
        status.conditions or [],
        "Refreshing",
        "True",
        "RefreshRequested",
        f"re-reading {spec.source.uri} in Job {status.job_name} (requested at {new})",
        generation=owner.generation,
    )
    _write(owner.namespace, owner.name, status)
