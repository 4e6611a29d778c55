"""TrainingRun controller: observe the run, its Job and its Dataset; plan (gyre.reconcile.trainingrun); apply.

Triggers: every event of the run (level-triggered, including the listing when the operator starts, which is how a
Job that finished while the operator was away gets recorded), its Job's events, and a timer only while the run waits
for its Dataset.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import kopf

from gyre.api.common import GROUP, TRIGGER_ANNOTATION, TRIGGER_CAUSE_ANNOTATION, VERSION, utcnow
from gyre.api.reasons import ConditionType
from gyre.api.trainingrun import TrainingRunSpec, TrainingRunStatus
from gyre.builders.meta import LABEL_OWNER_KIND, MANAGED_BY
from gyre.controllers.common import (
    apply_plan,
    live_owner,
    mine,
    owner_from_body,
    parse_spec,
    parse_status,
    settings,
)
from gyre.controllers.indexes import current_job, dataset_of, finished_pods, jobs_of
from gyre.controllers.metrics import reconciled
from gyre.reconcile.observed import JobView, job_view
from gyre.reconcile.trainingrun import WAIT_SECONDS, ObservedTrainingRun, plan_trainingrun, plan_would_change

__all__ = ["retry_waiting_trainingrun", "training_job_changed", "trainingrun_changed"]

KIND = "TrainingRun"
PLURAL = "trainingruns"
log = logging.getLogger(__name__)


def _observe(
    body: Mapping[str, Any], status: TrainingRunStatus, job: JobView | None, kwargs: Mapping[str, Any]
) -> ObservedTrainingRun:
    owner = owner_from_body(body)
    spec, error = parse_spec(TrainingRunSpec, body)
    dataset = None
    if spec is not None:
        dataset = dataset_of(kwargs, owner.namespace, spec.dataset_ref.name)
    return ObservedTrainingRun(
        owner=owner,
        spec=spec,
        spec_error=error,
        status=status,
        settings=settings(),
        now=utcnow(),
        trigger=(body["metadata"].get("annotations") or {}).get(TRIGGER_ANNOTATION, "manual"),
        trigger_cause=(body["metadata"].get("annotations") or {}).get(TRIGGER_CAUSE_ANNOTATION),
        dataset=dataset,
        job=job,
        pods=finished_pods(owner.namespace, job) if status.phase == "Running" else (),
    )


def _reconcile(body: Mapping[str, Any], kwargs: Mapping[str, Any], *, listed: bool) -> None:
    jobs = jobs_of(kwargs, body["metadata"]["uid"])
    job = jobs[0] if jobs else None
    status = parse_status(TrainingRunStatus, body)
    if job is None and status.phase == "Running":
        if not listed:
            return  # the Job was created a moment ago and the index lags; its own events record its end
        job, _ = current_job([], body["metadata"]["namespace"], body["metadata"]["uid"], status.job_name)
    observed = _observe(body, status, job, kwargs)
    apply_plan(observed.owner, observed.status, plan_trainingrun(observed))


def _may_change(labels: Mapping[str, str], body: kopf.Body, type: str | None, **kwargs: Any) -> bool:
    """kopf `when=`: the events worth a plan. The others (a finished run, a Running run whose Job has not finished:
    most events are the run's own status write landing) are dropped here, in the event loop, without a worker
    thread or a parse. Runs listed when the operator starts (type None) are always planned."""
    if not mine(labels) or type == "DELETED" or body["metadata"].get("deletionTimestamp"):
        return False
    if type is None:
        return True
    jobs = jobs_of(kwargs, body["metadata"]["uid"])
    return plan_would_change((body.get("status") or {}).get("phase"), jobs[0] if jobs else None)


@kopf.on.event(GROUP, VERSION, PLURAL, when=_may_change)
@reconciled(KIND)
def trainingrun_changed(body: kopf.Body, type: str | None, **kwargs: Any) -> None:
    """Level-triggered: every event of a run, and every run listed when the operator starts (type None), is
    observed, planned and applied unless planning cannot change anything (`_may_change`); a plan that changes
    nothing writes nothing.

    A low-level handler on purpose: the spec is immutable and the status says where the run is, so kopf needs no
    bookkeeping of its own on the run (no finalizer, no last-handled annotation): a new run costs exactly its Job,
    one status write and one Event.
    """
    _reconcile(body, kwargs, listed=type is None)


def _waiting(labels: Mapping[str, str], status: Mapping[str, Any], **_: Any) -> bool:
    refused = any(
        c.get("type") == ConditionType.SYNCED and c.get("status") == "False"
        for c in status.get("conditions") or []
    )
    return mine(labels) and (status.get("phase") == "Pending" or refused)


@kopf.timer(GROUP, VERSION, PLURAL, interval=WAIT_SECONDS, initial_delay=WAIT_SECONDS, when=_waiting)
@reconciled(KIND)
def retry_waiting_trainingrun(body: kopf.Body, **kwargs: Any) -> None:
    """A run waiting for its Dataset, or whose Job the API server refused, is planned again every few seconds until
    it can start (or must fail)."""
    _reconcile(body, kwargs, listed=False)


def _job_ended(labels: Mapping[str, str], body: kopf.Body, type: str | None, **_: Any) -> bool:
    """kopf `when=`: only a finished or deleted Job changes its run; the Job controller's other updates (active
    counts, pod failures) are dropped in the event loop."""
    return mine(labels) and (type == "DELETED" or job_view(body).outcome.finished)


@kopf.on.event(
    "batch",
    "v1",
    "jobs",
    labels={LABEL_OWNER_KIND: KIND, "app.kubernetes.io/managed-by": MANAGED_BY},
    when=_job_ended,
)
@reconciled(KIND)
def training_job_changed(body: kopf.Body, type: str, **kwargs: Any) -> None:
    """A training Job finished (or vanished): record the result on its run."""
    run = live_owner(body, KIND)
    if run is None:
        return
    status = parse_status(TrainingRunStatus, run)
    job = job_view(body)
    if status.job_name != job.name:
        return
    observed = _observe(run, status, None if type == "DELETED" else job, kwargs)
    apply_plan(observed.owner, observed.status, plan_trainingrun(observed))
