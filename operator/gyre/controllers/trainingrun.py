"""TrainingRun controller: observe the run, its Job and its Dataset; plan (gyre.reconcile.trainingrun); apply.

Two triggers: the run itself (create, and resume when the operator starts) and its Job's watch events. A Job that
finished while the operator was away is seen on resume, from the Jobs index.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import kopf

from gyre.api.common import API_VERSION, GROUP, TRIGGER_ANNOTATION, VERSION, find_condition, utcnow
from gyre.api.reasons import ConditionType
from gyre.api.trainingrun import TrainingRunSpec, TrainingRunStatus
from gyre.builders.meta import LABEL_OWNER_KIND, MANAGED_BY
from gyre.controllers import kube
from gyre.controllers.common import (
    apply_plan,
    mine,
    owner_from_body,
    owner_of_child,
    parse_spec,
    parse_status,
    settings,
)
from gyre.controllers.indexes import dataset_of, jobs_of
from gyre.reconcile.observed import JobView, job_view, pod_results
from gyre.reconcile.trainingrun import ObservedTrainingRun, plan_trainingrun

__all__ = ["reconcile_trainingrun", "training_job_changed"]

KIND = "TrainingRun"
PLURAL = "trainingruns"
log = logging.getLogger(__name__)


def _observe(body: Mapping[str, Any], job: JobView | None, kwargs: Mapping[str, Any]) -> ObservedTrainingRun:
    owner = owner_from_body(body)
    spec, error = parse_spec(TrainingRunSpec, body)
    status = parse_status(TrainingRunStatus, body)
    if job is None and status.phase == "Running" and status.job_name:
        # The index may lag a Job created a moment ago: confirm before calling it missing.
        found = kube.get("batch/v1", "Job", owner.namespace, status.job_name)
        job = job_view(found) if found is not None else None
        if job is not None and job.owner_uid != owner.uid:
            job = None  # a Job of the same name left by an earlier run of that name, about to be collected
    dataset = None
    if spec is not None:
        dataset = dataset_of(kwargs, owner.namespace, spec.dataset_ref.name)
    finished = status.phase == "Running" and job is not None and job.outcome.finished
    return ObservedTrainingRun(
        owner=owner,
        spec=spec,
        spec_error=error,
        status=status,
        settings=settings(),
        now=utcnow(),
        trigger=(body["metadata"].get("annotations") or {}).get(TRIGGER_ANNOTATION, "manual"),
        dataset=dataset,
        job=job,
        pods=pod_results(kube.job_pods(owner.namespace, job.name)) if finished and job else (),
    )


@kopf.on.resume(GROUP, VERSION, PLURAL, when=mine)
@kopf.on.create(GROUP, VERSION, PLURAL, when=mine)
def reconcile_trainingrun(body: kopf.Body, patch: kopf.Patch, **kwargs: Any) -> None:
    """Observe, plan, apply; while the Dataset is not ready, kopf calls again after the plan's delay."""
    jobs = jobs_of(kwargs, body["metadata"]["uid"])
    observed = _observe(body, jobs[0] if jobs else None, kwargs)
    plan = plan_trainingrun(observed)
    apply_plan(observed.owner, observed.status, plan, patch=patch)
    if plan.retry_after is not None:
        waiting = find_condition(plan.status.conditions or [], ConditionType.DATASET_READY)
        raise kopf.TemporaryError(waiting.message if waiting else "waiting", delay=plan.retry_after)


@kopf.on.event(
    "batch",
    "v1",
    "jobs",
    labels={LABEL_OWNER_KIND: KIND, "app.kubernetes.io/managed-by": MANAGED_BY},
    when=mine,
)
def training_job_changed(body: kopf.Body, type: str, **kwargs: Any) -> None:
    """A training Job finished (or vanished): record the result on its run."""
    job = job_view(body)
    if type != "DELETED" and not job.outcome.finished:
        return
    owner = owner_of_child(body, KIND)
    if owner is None:
        return
    namespace, name, uid = owner
    run = kube.get(API_VERSION, KIND, namespace, name)
    if run is None or run["metadata"]["uid"] != uid or run["metadata"].get("deletionTimestamp"):
        return
    if parse_status(TrainingRunStatus, run).job_name != job.name:
        return
    observed = _observe(run, None if type == "DELETED" else job, kwargs)
    apply_plan(observed.owner, observed.status, plan_trainingrun(observed))
