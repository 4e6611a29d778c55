"""DriftMonitor controller: observe the monitor, what it watches and its check Jobs; plan (gyre.reconcile.driftmonitor);
apply (apply_plan exports the last verdict as gauges, gyre.controllers.metrics).

One trigger, a 5 s timer. Everything it reads comes from kopf indexes, so a tick that changes nothing makes no API
call and writes nothing; the only reads are a check Job's pods once it has finished, and a Job the index may not
have seen yet.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import kopf

from gyre.api.common import GROUP, VERSION, utcnow
from gyre.api.driftmonitor import DriftMonitorSpec, DriftMonitorStatus
from gyre.controllers.common import apply_plan, mine, owner_from_body, parse_spec, parse_status, settings
from gyre.controllers.indexes import (
    current_job,
    dataset_of,
    deployment_status_of,
    finished_pods,
    jobs_of,
    runs_in,
)
from gyre.controllers.metrics import reconciled
from gyre.reconcile.driftmonitor import (
    ObservedDriftMonitor,
    ServedRun,
    plan_driftmonitor,
    reference_dataset_name,
    retrain_dataset_name,
)

__all__ = ["tick_driftmonitor"]

KIND = "DriftMonitor"
PLURAL = "driftmonitors"
log = logging.getLogger(__name__)


def _observe(body: Mapping[str, Any], kwargs: Mapping[str, Any]) -> ObservedDriftMonitor:
    owner = owner_from_body(body)
    spec, error = parse_spec(DriftMonitorSpec, body)
    status = parse_status(DriftMonitorStatus, body)
    runs = runs_in(kwargs, owner.namespace)
    jobs = jobs_of(kwargs, owner.uid)
    deployment, served, dataset, retrain_dataset = None, None, None, None
    if spec is not None:
        deployment = deployment_status_of(kwargs, owner.namespace, spec.deployment_ref.name)
        version = deployment.model_version if deployment is not None else None
        run = next((r for r in runs if version is not None and r.name == version.training_run), None)
        if run is not None:
            served = ServedRun(name=run.name, labels=run.labels, spec=run.spec, status=run.status)
        dataset_name = reference_dataset_name(spec, served)
        dataset = dataset_of(kwargs, owner.namespace, dataset_name) if dataset_name else None
        retrain_name = retrain_dataset_name(spec, served)
        if retrain_name and retrain_name != dataset_name:
            retrain_dataset = dataset_of(kwargs, owner.namespace, retrain_name)
    current, jobs = current_job(jobs, owner.namespace, owner.uid, status.job_name)
    return ObservedDriftMonitor(
        owner=owner,
        spec=spec,
        spec_error=error,
        status=status,
        settings=settings(),
        now=utcnow(),
        deployment=deployment,
        served_run=served,
        dataset=dataset,
        jobs=jobs,
        pods=finished_pods(owner.namespace, current),
        run_names=frozenset(r.name for r in runs),
        retrain_dataset=retrain_dataset,
    )


@kopf.timer(GROUP, VERSION, PLURAL, interval=5, initial_delay=2, idle=0, when=mine)
@reconciled(KIND)
def tick_driftmonitor(body: kopf.Body, **kwargs: Any) -> None:
    """One step of the monitor: collect a finished check, advance a retrain, start a check, prune old Jobs."""
    observed = _observe(body, kwargs)
    plan = plan_driftmonitor(observed)
    apply_plan(observed.owner, observed.status, plan)
