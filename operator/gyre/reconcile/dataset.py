"""Dataset decisions: profile each spec generation, re-read the source when due or asked, fold reports into versions.

Invariants:
- One profiling Job per (spec, revision): `g<generation>` for a spec change, `-r<time>` for a scheduled refresh,
  `-q<hash>` for a requested one. A Job that exists is never created again.
- The version moves only when the fingerprint changes, so reading the same finished Job twice changes nothing.
- A failed refresh never makes the current version unusable.
- A version that breaks spec.expectations is recorded in history (contractViolated) with ContractSatisfied=False and
  one Warning Event, but never becomes the current version (fingerprint, dataUri), which TrainingRuns read: the
  current version is always the last one that satisfied the contract.
- A refresh of a sql source with a watermark appends the rows above the current version's watermark to it, unless
  the newest read broke the contract (then it reads everything again).
- No Job reads a source the source policy refuses (gyre.policy.sources): the refusal is the Ready (or, for a
  refresh, Refreshing) condition and one Warning Event; the source is checked again on every reconcile, so a
  policy change that allows it starts the read.
- A feedback source's Job starts only once its deployment serves a model (whose manifest names the columns) and
  its mergeWith version exists; until then the Dataset is Pending with reason FeedbackNotReady, and every reconcile
  (a timer while it waits) looks again. A read that finds fewer labelled rows than minRows leaves a Dataset
  without a version Pending (InsufficientFeedback), not Failed: a DriftMonitor may still ask it to re-read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from gyre.api.common import Condition, find_condition, parse_duration, set_condition
from gyre.api.dataset import ColumnStatus, ContractStatus, DatasetSpec, DatasetStatus, DatasetVersion
from gyre.api.modeldeployment import ModelDeploymentStatus
from gyre.api.reasons import ConditionType, EventType, Reason
from gyre.builders.job import FeedbackRead, build_profile_job, profile_job_name
from gyre.builders.meta import Owner, short_hash
from gyre.builders.settings import OperatorSettings
from gyre.data.report import ProfileReport
from gyre.policy.sources import Refusal, check_source, redact, source_scope
from gyre.reconcile.history import prune_finished_jobs
from gyre.reconcile.observed import JobView, PodResult, explain_failure, parse_time, untrusted_result
from gyre.reconcile.plan import Plan, create_with_claim

__all__ = [
    "JOB_HISTORY",
    "FeedbackInputs",
    "ObservedDataset",
    "apply_profile_result",
    "feedback_read",
    "plan_dataset",
    "profile_report",
    "profiling_in_flight",
    "waiting_for_feedback",
]

# Finished profiling Jobs kept per Dataset: the last good read, and the last failed one for debugging.
JOB_HISTORY = (1, 1)


@dataclass(frozen=True)
class FeedbackInputs:
    """What a feedback source depends on, as the controller found it."""

    deployment: ModelDeploymentStatus | None
    """The status of spec.source.feedback.deploymentRef; None when that ModelDeployment does not exist."""
    merge: DatasetStatus | None = None
    """The status of mergeWith.datasetRef; None when unset or when that Dataset does not exist."""


@dataclass(frozen=True)
class ObservedDataset:
    """Everything a Dataset's plan reads."""

    owner: Owner
    spec: DatasetSpec | None
    spec_error: str | None
    status: DatasetStatus
    settings: OperatorSettings
    now: datetime
    jobs: Sequence[JobView] = ()
    """Every profiling Job of this Dataset."""
    pods: Sequence[PodResult] = ()
    """The pods of the current Job (status.jobName), read only once it has finished."""
    refresh_request: str | None = None
    """A new value of the refresh-requested-at annotation: re-read now."""
    refresh_due_check: bool = False
    """Called by the refresh timer: re-read when spec.refreshInterval has passed."""
    feedback: FeedbackInputs | None = None
    """For a feedback source: its deployment and its mergeWith Dataset."""


def _refreshing(status: DatasetStatus) -> bool:
    refreshing = find_condition(status.conditions or [], ConditionType.REFRESHING)
    return refreshing is not None and refreshing.status == "True"


def profiling_in_flight(status: DatasetStatus) -> bool:
    """Whether a profiling Job (first read or refresh) is running for this Dataset."""
    return status.phase == "Profiling" or _refreshing(status)


def _settle_refreshing(
    conditions: list[Condition], reason: str, message: str, generation: int
) -> list[Condition]:
    """Mark a refresh as over; Datasets that were never refreshed get no Refreshing condition at all."""
    if find_condition(conditions, ConditionType.REFRESHING) is None:
        return conditions
    return set_condition(
        conditions, ConditionType.REFRESHING, "False", reason, message, generation=generation
    )


def plan_dataset(obs: ObservedDataset) -> Plan[DatasetStatus]:
    """Decide the next step of a Dataset."""
    plan = Plan(obs.status.model_copy(deep=True))
    status, generation = plan.status, obs.owner.generation
    if obs.spec is None:
        message = obs.spec_error or "the spec does not validate"
        if status.observed_generation != generation or status.phase != "Failed":
            plan.event(EventType.WARNING, Reason.INVALID_SPEC, message)
        status.phase = "Failed"
        status.observed_generation = generation
        status.conditions = set_condition(
            status.conditions or [],
            ConditionType.READY,
            "False",
            Reason.INVALID_SPEC,
            message,
            generation=generation,
        )
        return plan
    spec = obs.spec
    jobs = {j.name: j for j in obs.jobs}
    if status.observed_generation != generation:
        _start(plan, obs, spec, jobs, revision=f"g{generation}", refresh=None)
        return plan
    current = jobs.get(status.job_name or "")
    if profiling_in_flight(status):
        if current is None:
            if status.phase == "Profiling":
                # This generation's Job vanished: recreate it under the same deterministic name.
                _start(plan, obs, spec, jobs, revision=f"g{generation}", refresh=None)
            else:
                status.conditions = _settle_refreshing(
                    status.conditions or [],
                    Reason.JOB_MISSING,
                    f"Job {status.job_name} was deleted",
                    generation,
                )
        elif current.outcome.finished:
            _record(plan, obs, spec, current)
    elif (_refused_before(status) and policy_refusal(obs, spec) is None) or waiting_for_feedback(status):
        # Allowed since (the admin changed the policy), or perhaps ready now (a feedback source's deployment): read
        # now, unless this generation's pod refused it itself.
        if profile_job_name(obs.owner, spec, f"g{generation}") not in jobs:
            _start(plan, obs, spec, jobs, revision=f"g{generation}", refresh=None)
    elif obs.refresh_request:
        revision = f"g{generation}-q{short_hash(obs.refresh_request)}"
        message = f"(requested at {obs.refresh_request})"
        _start(plan, obs, spec, jobs, revision=revision, refresh=(Reason.REFRESH_REQUESTED, message))
    elif obs.refresh_due_check and _refresh_due(spec, status, obs.now):
        revision = f"g{generation}-r{int(obs.now.timestamp())}"
        _start(plan, obs, spec, jobs, revision=revision, refresh=(Reason.REFRESH_DUE, ""))
    if not profiling_in_flight(plan.status):
        keep = [plan.status.job_name or ""]
        plan.actions.extend(
            prune_finished_jobs(
                obs.jobs, keep_succeeded=JOB_HISTORY[0], keep_failed=JOB_HISTORY[1], keep=keep
            )
        )
    return plan


def _refresh_due(spec: DatasetSpec, status: DatasetStatus, now: datetime) -> bool:
    ready = find_condition(status.conditions or [], ConditionType.READY)
    too_few_labels = (
        status.phase == "Pending" and ready is not None and ready.reason == Reason.INSUFFICIENT_FEEDBACK
    )
    if spec.refresh_interval is None or (status.phase not in ("Ready", "Failed") and not too_few_labels):
        return False
    last = status.last_profile_time or (ready.last_transition_time if ready else None)
    return last is None or now - last >= parse_duration(spec.refresh_interval)


def _refused_before(status: DatasetStatus) -> bool:
    ready = find_condition(status.conditions or [], ConditionType.READY)
    refused = (Reason.SOURCE_REFUSED, Reason.IMAGE_NOT_ALLOWED)
    return status.phase == "Failed" and ready is not None and ready.reason in refused


def waiting_for_feedback(status: DatasetStatus) -> bool:
    """Whether the first read of this generation waits for a feedback source's deployment or mergeWith Dataset."""
    ready = find_condition(status.conditions or [], ConditionType.READY)
    return status.phase == "Pending" and ready is not None and ready.reason == Reason.FEEDBACK_NOT_READY


def _merge_fingerprint(name: str, merge: DatasetStatus, version: int | None) -> str:
    """The fingerprint of the mergeWith version (the current one when `version` is unset); ValueError says why
    there is none."""
    if version is None or version == merge.version:
        if not merge.fingerprint:
            raise ValueError(f"Dataset {name} (mergeWith) has no profiled version yet")
        return merge.fingerprint
    for entry in merge.history or []:
        if entry.version == version:
            if entry.contract_violated:
                raise ValueError(f"version {version} of Dataset {name} (mergeWith) breaks its contract")
            return entry.fingerprint
    kept = ", ".join(str(h.version) for h in merge.history or []) or "none"
    raise ValueError(f"Dataset {name} (mergeWith) has no version {version} in its history (kept: {kept})")


def feedback_read(obs: ObservedDataset, spec: DatasetSpec) -> FeedbackRead | str | None:
    """What a feedback source's Job reads, or why it cannot start yet; None for other sources."""
    source = spec.source.feedback
    if source is None:
        return None
    inputs = obs.feedback or FeedbackInputs(deployment=None)
    name = source.deployment_ref.name
    if inputs.deployment is None:
        return f"ModelDeployment {name} does not exist"
    served = inputs.deployment.model_version
    if served is None or not served.uri:
        return f"ModelDeployment {name} serves no model yet: its manifest names the feedback table's columns"
    read = FeedbackRead(model_uri=served.uri, model_sha256=served.sha256)
    merge = source.merge_with
    if merge is None:
        return read
    other = merge.dataset_ref.name
    if other == obs.owner.name:
        return "mergeWith names this Dataset itself; name the Dataset the served model was trained on"
    if inputs.merge is None:
        return f"Dataset {other} (mergeWith) does not exist"
    try:
        fingerprint = _merge_fingerprint(other, inputs.merge, merge.version)
    except ValueError as exc:
        return str(exc)
    return FeedbackRead(served.uri, served.sha256, merge_dataset=other, merge_fingerprint=fingerprint)


def source_refusal(obs: ObservedDataset, spec: DatasetSpec) -> Refusal | None:
    """Why the source policy refuses this Dataset's source, or None (decided without DNS or filesystem)."""
    settings = obs.settings
    scope = source_scope(settings.source_policy, settings.artifact_store, obs.owner.namespace)
    return check_source(spec.source.location, scope)


def _store_secret_refusal(spec: DatasetSpec, store_secret: str | None) -> str | None:
    """Why a sql source may not use its Secret keys: the namespace's artifact-store Secret is never a database
    credential (the pod would send its keys to the host the spec names)."""
    sql = spec.source.sql
    if sql is None or not store_secret:
        return None
    refs = [sql.user_secret_ref, sql.password_secret_ref]
    if any(ref is not None and ref.name == store_secret for ref in refs):
        return (
            f"source {spec.source.location} refused: its credentials name the artifact store's Secret "
            f"{store_secret}, which only the store may use; put the database credentials in a Secret of their own"
        )
    return None


def policy_refusal(obs: ObservedDataset, spec: DatasetSpec) -> tuple[Reason, str] | None:
    """Why a policy forbids profiling this Dataset (its source, then its image), or None."""
    refused = source_refusal(obs, spec)
    if refused is not None:
        return Reason.SOURCE_REFUSED, refused.message
    store_secret = _store_secret_refusal(spec, obs.settings.artifact_secret)
    if store_secret is not None:
        return Reason.SOURCE_REFUSED, store_secret
    message = obs.settings.image_policy.spec_refusal(spec.image)
    return (Reason.IMAGE_NOT_ALLOWED, message) if message is not None else None


def _refuse(
    plan: Plan[DatasetStatus],
    obs: ObservedDataset,
    spec: DatasetSpec,
    refusal: tuple[Reason, str],
    refresh: bool,
    *,
    waiting: bool = False,
) -> None:
    """Say why no Job reads the source: in Ready (or Refreshing, keeping the current version), and one Event.
    `waiting`: not refused, only not ready yet (phase Pending, a Normal Event)."""
    status, generation = plan.status, obs.owner.generation
    reason, message = refusal
    kind = ConditionType.REFRESHING if refresh else ConditionType.READY
    before = find_condition(status.conditions or [], kind)
    if before is None or (before.reason, before.message) != (reason, message):
        plan.event(EventType.NORMAL if waiting else EventType.WARNING, reason, message)
    status.conditions = set_condition(
        status.conditions or [], kind, "False", reason, message, generation=generation
    )
    if refresh:
        return
    status.phase = "Pending" if waiting else "Failed"
    status.target = spec.target
    status.observed_generation = generation
    status.conditions = _settle_refreshing(status.conditions, Reason.SPEC_CHANGED, "", generation)


def _start(
    plan: Plan[DatasetStatus],
    obs: ObservedDataset,
    spec: DatasetSpec,
    jobs: dict[str, JobView],
    *,
    revision: str,
    refresh: tuple[Reason, str] | None,
) -> None:
    """Profile now: create the revision's Job unless it exists (or the source is refused), and say so in status."""
    refusal = policy_refusal(obs, spec)
    if refusal is not None:
        _refuse(plan, obs, spec, refusal, refresh=refresh is not None)
        return
    feedback = feedback_read(obs, spec)
    if isinstance(feedback, str):
        _refuse(
            plan, obs, spec, (Reason.FEEDBACK_NOT_READY, feedback), refresh=refresh is not None, waiting=True
        )
        return
    status, generation = plan.status, obs.owner.generation
    previous = _incremental_base(spec, status) if refresh is not None else None
    job = build_profile_job(
        obs.owner, spec, obs.settings, revision=revision, previous=previous, feedback=feedback
    )
    name = job["metadata"]["name"]
    if name not in jobs:
        plan.actions.extend(create_with_claim(obs.settings, obs.owner.namespace, job))
        if refresh is None:
            plan.event(
                EventType.NORMAL,
                Reason.PROFILING,
                f"created Job {name} to read {redact(spec.source.location)}",
            )
    status.job_name = name
    if refresh is not None:
        reason, detail = refresh
        status.conditions = set_condition(
            status.conditions or [],
            ConditionType.REFRESHING,
            "True",
            reason,
            f"re-reading {redact(spec.source.location)} in Job {name} {detail}".strip(),
            generation=generation,
        )
        return
    status.phase = "Profiling"
    status.target = spec.target
    status.observed_generation = generation
    conditions = set_condition(
        status.conditions or [],
        ConditionType.READY,
        "False",
        Reason.PROFILING,
        f"reading {redact(spec.source.location)} in Job {name}",
        generation=generation,
    )
    status.conditions = _settle_refreshing(conditions, Reason.SPEC_CHANGED, "", generation)


def _incremental_base(spec: DatasetSpec, status: DatasetStatus) -> tuple[str, str] | None:
    """(fingerprint, watermark) of the version a sql refresh appends to, or None to read everything."""
    sql = spec.source.sql
    if sql is None or not sql.watermark or status.phase != "Ready":
        return None
    if not status.fingerprint or status.watermark is None:
        return None
    if status.contract is not None and not status.contract.satisfied:
        return None  # the newest read was bad: start again from the source
    return status.fingerprint, status.watermark


def _record(plan: Plan[DatasetStatus], obs: ObservedDataset, spec: DatasetSpec, job: JobView) -> None:
    """Fold the finished current Job's report into the status."""
    distrust = untrusted_result(obs.owner.uid, job, obs.pods, obs.settings.image_policy)
    report = (
        profile_report(obs.pods, job)
        if distrust is None
        else ProfileReport(phase="Failed", reason=Reason.UNTRUSTED_RESULT, error=distrust)
    )
    new, reason, message = apply_profile_result(
        plan.status,
        report,
        history_limit=spec.history_limit,
        generation=obs.owner.generation,
        finished_at=parse_time(job.outcome.completion_time),
        refresh=_refreshing(plan.status),
    )
    plan.status = new
    if reason != Reason.UNCHANGED:
        ok = new.phase == "Ready" and reason in (Reason.NEW_VERSION, Reason.EXPECTATIONS_MET)
        plan.event(EventType.NORMAL if ok else EventType.WARNING, reason, message)


def profile_report(results: Sequence[PodResult], job: JobView) -> ProfileReport:
    """The newest pod's report; a failure explained from the pods and the Job when there is none."""
    for result in reversed(results):
        if not result.terminated or not result.message:
            continue
        try:
            return ProfileReport.from_termination_message(result.message)
        except ValueError:
            # FallbackToLogsOnError: the message is the log tail of a process that died before reporting.
            return ProfileReport(
                phase="Failed", reason=result.reason or Reason.PROFILING_FAILED, error=result.message[-1500:]
            )
    reason, message = explain_failure(job.outcome, list(results), Reason.PROFILING_FAILED)
    return ProfileReport(phase="Failed", reason=reason, error=message)


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
        reason = report.reason or Reason.PROFILING_FAILED
        message = report.error or "the profiling Job failed without a report"
        if refresh and status.fingerprint:
            # A failed refresh does not make the current version unusable.
            status.conditions = set_condition(
                conditions, ConditionType.REFRESHING, "False", reason, message, generation=generation
            )
        else:
            # Too few labels yet is a wait, not a fault: a feedback Dataset without a version stays Pending.
            waiting = reason == Reason.INSUFFICIENT_FEEDBACK and not status.fingerprint
            status.phase = "Pending" if waiting else "Failed"
            status.conditions = set_condition(
                conditions, ConditionType.READY, "False", reason, message, generation=generation
            )
            status.conditions = _settle_refreshing(status.conditions, reason, "", generation)
        return status, reason, message

    if report.contract_violated:
        return _record_violation(status, report, history_limit, generation, finished_at, refresh)
    recovered = status.contract is not None and not status.contract.satisfied
    changed = report.fingerprint != status.fingerprint
    if changed:
        status.version = _next_version(status)
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
    status.watermark = report.watermark
    if report.target:
        status.target = report.target
    status.last_profile_time = finished_at
    status.phase = "Ready"
    short = report.fingerprint[:19]
    message = f"version {status.version}: {report.rows} rows, {status.column_count} columns ({short}...)"
    status.conditions = set_condition(
        conditions, ConditionType.READY, "True", Reason.PROFILED, message, generation=generation
    )
    status.conditions = _settle_refreshing(status.conditions, Reason.PROFILED, "", generation)
    if report.contract_checked:
        status.contract = ContractStatus(satisfied=True, fingerprint=report.fingerprint)
        status.conditions = set_condition(
            status.conditions,
            ConditionType.CONTRACT_SATISFIED,
            "True",
            Reason.EXPECTATIONS_MET,
            f"version {status.version} satisfies spec.expectations",
            generation=generation,
        )
    else:
        status.contract = None
        status.conditions = [c for c in status.conditions if c.type != ConditionType.CONTRACT_SATISFIED]
    if changed:
        return status, Reason.NEW_VERSION, message
    if recovered and report.contract_checked:
        return status, Reason.EXPECTATIONS_MET, f"{message}; it satisfies spec.expectations again"
    return status, Reason.UNCHANGED, message


def _next_version(status: DatasetStatus) -> int:
    """The number of a new version: past every version recorded, good or bad."""
    return max([status.version or 0, *(h.version for h in status.history or [])]) + 1


def _record_violation(
    status: DatasetStatus,
    report: ProfileReport,
    history_limit: int,
    generation: int,
    finished_at: datetime,
    refresh: bool,
) -> tuple[DatasetStatus, str, str]:
    """A version that breaks the contract: into history and the ContractSatisfied condition, never current."""
    assert report.fingerprint is not None
    history = status.history or []
    seen = (
        bool(history) and history[0].fingerprint == report.fingerprint and bool(history[0].contract_violated)
    )
    if seen:
        number = history[0].version
    else:
        number = _next_version(status)
        entry = DatasetVersion(
            version=number,
            fingerprint=report.fingerprint,
            rows=report.rows or 0,
            created_at=finished_at,
            contract_violated=True,
        )
        status.history = [entry, *history][:history_limit]
    failures = report.contract_failures or []
    count = report.contract_failure_count or len(failures)
    status.contract = ContractStatus(
        satisfied=False, fingerprint=report.fingerprint, failures=failures, failure_count=count
    )
    status.last_profile_time = finished_at
    kept = f"version {status.version} stays current" if status.fingerprint else "no version satisfies it yet"
    message = (
        f"version {number} ({report.fingerprint[:19]}..., {report.rows} rows) breaks spec.expectations in "
        f"{count} way(s): {'; '.join(failures[:3])}; it is not used ({kept})"
    )
    conditions = set_condition(
        status.conditions or [],
        ConditionType.CONTRACT_SATISFIED,
        "False",
        Reason.CONTRACT_VIOLATED,
        message,
        generation=generation,
    )
    if status.fingerprint and refresh:
        conditions = _settle_refreshing(conditions, Reason.CONTRACT_VIOLATED, message, generation)
    else:
        status.phase = "Failed"
        conditions = set_condition(
            conditions, ConditionType.READY, "False", Reason.CONTRACT_VIOLATED, message, generation=generation
        )
        conditions = _settle_refreshing(conditions, Reason.CONTRACT_VIOLATED, "", generation)
    status.conditions = conditions
    return status, (Reason.UNCHANGED if seen else Reason.CONTRACT_VIOLATED), message
