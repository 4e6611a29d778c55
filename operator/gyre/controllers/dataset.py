"""Dataset controller: observe the Dataset and its profiling Jobs; plan (gyre.reconcile.dataset); apply.

Triggers: spec changes (and resume), the refresh timer (only for Datasets with spec.refreshInterval), a new value of
the refresh-requested-at annotation, the profiling Jobs' watch events, and a timer while a feedback source waits
for its deployment.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import kopf

from gyre.api.common import GROUP, REFRESH_ANNOTATION, VERSION, utcnow
from gyre.api.dataset import DatasetSpec, DatasetStatus
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
from gyre.controllers.indexes import current_job, dataset_of, deployment_status_of, finished_pods, jobs_of
from gyre.controllers.metrics import reconciled
from gyre.reconcile.dataset import (
    FeedbackInputs,
    ObservedDataset,
    plan_dataset,
    profiling_in_flight,
    waiting_for_feedback,
)
from gyre.reconcile.observed import JobView, job_view

__all__ = [
    "dataset_job_changed",
    "reconcile_dataset",
    "refresh_dataset",
    "refresh_requested",
    "retry_waiting_dataset",
]

KIND = "Dataset"
PLURAL = "datasets"
log = logging.getLogger(__name__)


def _feedback_inputs(
    kwargs: Mapping[str, Any], namespace: str, spec: DatasetSpec | None
) -> FeedbackInputs | None:
    source = spec.source.feedback if spec is not None else None
    if source is None:
        return None
    merge = None
    if source.merge_with is not None:
        view = dataset_of(kwargs, namespace, source.merge_with.dataset_ref.name)
        merge = view.status if view is not None else None
    deployment = deployment_status_of(kwargs, namespace, source.deployment_ref.name)
    return FeedbackInputs(deployment=deployment, merge=merge)


def _observe(
    body: Mapping[str, Any],
    status: DatasetStatus,
    jobs: list[JobView],
    kwargs: Mapping[str, Any],
    *,
    refresh_request: str | None = None,
    refresh_due_check: bool = False,
) -> ObservedDataset:
    owner = owner_from_body(body)
    spec, error = parse_spec(DatasetSpec, body)
    current = None
    if profiling_in_flight(status):
        current, jobs = current_job(jobs, owner.namespace, owner.uid, status.job_name)
    return ObservedDataset(
        owner=owner,
        spec=spec,
        spec_error=error,
        status=status,
        settings=settings(),
        now=utcnow(),
        jobs=jobs,
        pods=finished_pods(owner.namespace, current),
        refresh_request=refresh_request,
        refresh_due_check=refresh_due_check,
        feedback=_feedback_inputs(kwargs, owner.namespace, spec),
    )


def _reconcile(
    body: kopf.Body,
    patch: kopf.Patch,
    kwargs: Mapping[str, Any],
    *,
    refresh_request: str | None = None,
    refresh_due_check: bool = False,
) -> None:
    observed = _observe(
        body,
        parse_status(DatasetStatus, body),
        jobs_of(kwargs, body["metadata"]["uid"]),
        kwargs,
        refresh_request=refresh_request,
        refresh_due_check=refresh_due_check,
    )
    apply_plan(observed.owner, observed.status, plan_dataset(observed), patch=patch)


@kopf.on.resume(GROUP, VERSION, PLURAL, when=mine)
@kopf.on.create(GROUP, VERSION, PLURAL, when=mine)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec", when=mine)
@reconciled(KIND)
def reconcile_dataset(body: kopf.Body, patch: kopf.Patch, **kwargs: Any) -> None:
    """Profile the current generation unless that has started; on resume, also pick up a Job that finished."""
    _reconcile(body, patch, kwargs)


def _refreshes(labels: Mapping[str, str], spec: Mapping[str, Any], **_: Any) -> bool:
    return mine(labels) and bool(spec.get("refreshInterval"))


@kopf.timer(GROUP, VERSION, PLURAL, interval=30, initial_delay=30, when=_refreshes)
@reconciled(KIND)
def refresh_dataset(body: kopf.Body, patch: kopf.Patch, **kwargs: Any) -> None:
    """Re-read the source when spec.refreshInterval has passed since the last successful read."""
    _reconcile(body, patch, kwargs, refresh_due_check=True)


def _waiting(labels: Mapping[str, str], status: Mapping[str, Any], **_: Any) -> bool:
    return mine(labels) and waiting_for_feedback(parse_status(DatasetStatus, {"status": status}))


@kopf.timer(GROUP, VERSION, PLURAL, interval=5, initial_delay=5, when=_waiting)
@reconciled(KIND)
def retry_waiting_dataset(body: kopf.Body, patch: kopf.Patch, **kwargs: Any) -> None:
    """A feedback source waiting for its deployment to serve a model (or its mergeWith version) looks again."""
    _reconcile(body, patch, kwargs)


@kopf.on.field(
    GROUP, VERSION, PLURAL, field=("metadata", "annotations", REFRESH_ANNOTATION), when=mine, retries=120
)
@reconciled(KIND)
def refresh_requested(body: kopf.Body, new: Any, patch: kopf.Patch, **kwargs: Any) -> None:
    """Re-read the source now, because someone asked (a DriftMonitor about to retrain, or a person)."""
    if not new or body.get("metadata", {}).get("deletionTimestamp"):
        return  # kopf also runs field handlers while deleting; a refresh then means nothing
    if profiling_in_flight(parse_status(DatasetStatus, body)):
        raise kopf.TemporaryError("a profiling Job is already running; the request waits for it", delay=5)
    _reconcile(body, patch, kwargs, refresh_request=str(new))


@kopf.on.event(
    "batch",
    "v1",
    "jobs",
    labels={LABEL_OWNER_KIND: KIND, "app.kubernetes.io/managed-by": MANAGED_BY},
    when=mine,
)
@reconciled(KIND)
def dataset_job_changed(body: kopf.Body, type: str, **kwargs: Any) -> None:
    """A profiling Job finished (or vanished): record the version it found on its Dataset."""
    job = job_view(body)
    if type != "DELETED" and not job.outcome.finished:
        return
    dataset = live_owner(body, KIND)
    if dataset is None:
        return
    status = parse_status(DatasetStatus, dataset)
    if status.job_name != job.name:
        return  # an older Job (or one pruned from the history): only the current one is recorded
    jobs = [j for j in jobs_of(kwargs, dataset["metadata"]["uid"]) if j.name != job.name]
    if type != "DELETED":
        jobs.append(job)  # this event is newer than the index may be
    observed = _observe(dataset, status, jobs, kwargs)
    apply_plan(observed.owner, observed.status, plan_dataset(observed))
