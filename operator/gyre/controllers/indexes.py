"""In-memory views of the objects the controllers read, kept current by kopf's watches (kopf indexes).

A handler receives an index as a keyword argument named after its function. Reading children and dependencies from
here, not from the API, is what lets a steady-state reconcile make no API call at all.

The index functions are coroutines although they await nothing: kopf runs them in its event loop instead of
handing every watch event to a worker thread and back (they only parse).

Dependencies (Datasets, TrainingRuns, ModelDeployments) are indexed whatever their gyre.dev/operator-instance label:
that label decides which operator reconciles an object, not who may read it (a run may train on any Dataset).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import kopf

from gyre.api.common import GROUP, VERSION
from gyre.api.dataset import DatasetSpec, DatasetStatus
from gyre.api.modeldeployment import ModelDeploymentStatus
from gyre.api.trainingrun import TrainingRunSpec, TrainingRunStatus
from gyre.builders.meta import MANAGED_BY
from gyre.controllers import kube
from gyre.controllers.common import mine, parse_spec, parse_status
from gyre.reconcile.approval import RunApproval, run_approval
from gyre.reconcile.observed import JobView, PodResult, job_view, pod_results
from gyre.reconcile.trainingrun import DatasetView

__all__ = [
    "RunSummary",
    "current_job",
    "dataset_of",
    "deployment_status_of",
    "finished_pods",
    "gyre_datasets",
    "gyre_jobs",
    "gyre_modeldeployments",
    "gyre_trainingruns",
    "jobs_of",
    "runs_in",
]

_MANAGED = {"app.kubernetes.io/managed-by": MANAGED_BY}


@kopf.index("batch", "v1", "jobs", labels=_MANAGED, when=mine)
async def gyre_jobs(body: kopf.Body, **_: Any) -> dict[str, JobView]:
    """Every Job Gyre created, by its owner's uid."""
    view = job_view(body)
    return {view.owner_uid: view} if view.owner_uid else {}


@kopf.index(GROUP, VERSION, "datasets")
async def gyre_datasets(
    body: kopf.Body, namespace: str | None, name: str, **_: Any
) -> dict[tuple[str, str], DatasetView]:
    """Every Dataset's spec and status, by (namespace, name): what TrainingRuns train on."""
    spec, _error = parse_spec(DatasetSpec, body)
    return {(namespace or "", name): DatasetView(spec=spec, status=parse_status(DatasetStatus, body))}


@dataclass(frozen=True)
class RunSummary:
    """A TrainingRun as promotion and retraining see it."""

    name: str
    uid: str
    labels: dict[str, str]
    created: str
    spec: TrainingRunSpec | None
    """None when the stored spec no longer validates."""
    status: TrainingRunStatus
    approval: RunApproval | None = None
    """Its approval annotations (gyre.reconcile.approval); promotion checks them against status.modelSha256."""


@kopf.index(GROUP, VERSION, "trainingruns")
async def gyre_trainingruns(
    body: kopf.Body, namespace: str | None, name: str, **_: Any
) -> dict[str, RunSummary]:
    """Every TrainingRun, by namespace: LatestValidated promotion picks among them, a DriftMonitor retrains one."""
    meta = body.get("metadata") or {}
    summary = RunSummary(
        name=name,
        uid=str(meta.get("uid", "")),
        labels=dict(meta.get("labels") or {}),
        created=str(meta.get("creationTimestamp") or ""),
        spec=parse_spec(TrainingRunSpec, body)[0],
        status=parse_status(TrainingRunStatus, body),
        approval=run_approval(meta),
    )
    return {namespace or "": summary}


@kopf.index(GROUP, VERSION, "modeldeployments")
async def gyre_modeldeployments(
    body: kopf.Body, namespace: str | None, name: str, **_: Any
) -> dict[tuple[str, str], ModelDeploymentStatus]:
    """Every ModelDeployment's status, by (namespace, name): what a DriftMonitor watches."""
    return {(namespace or "", name): parse_status(ModelDeploymentStatus, body)}


def jobs_of(kwargs: Mapping[str, Any], owner_uid: str) -> list[JobView]:
    """The Jobs one owner has, as the index last saw them (`kwargs`: a handler's keyword arguments)."""
    index = cast("kopf.Index[str, JobView]", kwargs["gyre_jobs"])
    return list(index.get(owner_uid, []))


def current_job(
    jobs: list[JobView], namespace: str, owner_uid: str, name: str | None
) -> tuple[JobView | None, list[JobView]]:
    """The owner's Job `name` and the owner's Jobs including it.

    From the index, else read once, since the index may lag a Job created a moment ago. A Job of that name that
    belongs to another owner (left by an earlier object of the same name, about to be collected) is not this owner's.
    """
    if not name:
        return None, jobs
    found = next((j for j in jobs if j.name == name), None)
    if found is not None:
        return found, jobs
    live = kube.get("batch/v1", "Job", namespace, name)
    read = job_view(live) if live is not None else None
    if read is None or read.owner_uid != owner_uid:
        return None, jobs
    return read, [*jobs, read]


def finished_pods(namespace: str, job: JobView | None) -> list[PodResult]:
    """The pods of a finished Job, whose termination messages carry its reports; none while it runs."""
    if job is None or not job.outcome.finished:
        return []
    return pod_results(kube.job_pods(namespace, job.name))


def dataset_of(kwargs: Mapping[str, Any], namespace: str, name: str) -> DatasetView | None:
    """A Dataset's spec and status, as the index last saw them."""
    index = cast("kopf.Index[tuple[str, str], DatasetView]", kwargs["gyre_datasets"])
    return next(iter(index.get((namespace, name), [])), None)


def runs_in(kwargs: Mapping[str, Any], namespace: str) -> list[RunSummary]:
    """Every TrainingRun of a namespace, as the index last saw them."""
    index = cast("kopf.Index[str, RunSummary]", kwargs["gyre_trainingruns"])
    return list(index.get(namespace, []))


def deployment_status_of(
    kwargs: Mapping[str, Any], namespace: str, name: str
) -> ModelDeploymentStatus | None:
    """A ModelDeployment's status, as the index last saw it."""
    index = cast("kopf.Index[tuple[str, str], ModelDeploymentStatus]", kwargs["gyre_modeldeployments"])
    return next(iter(index.get((namespace, name), [])), None)
