"""ModelDeployment controller: observe from indexes; plan (gyre.reconcile.modeldeployment); apply.

One handler serves create, update, resume and a short timer: the timer is what notices a newly validated
TrainingRun under a LatestValidated policy and keeps status in step with the pods. Everything it reads comes from
kopf indexes (the namespace's TrainingRuns, this deployment's children and server pods), so a tick in which nothing
changed makes no API call at all.
"""

from __future__ import annotations

from typing import Any

import kopf

from gyre.api.common import GROUP, VERSION, utcnow
from gyre.api.modeldeployment import ModelDeploymentSpec, ModelDeploymentStatus
from gyre.builders.meta import LABEL_COMPONENT, LABEL_OWNER_KIND, LABEL_OWNER_UID, MANAGED_BY
from gyre.builders.serving import LABEL_TRACK, SERVER
from gyre.controllers.common import apply_plan, mine, owner_from_body, parse_spec, parse_status, settings
from gyre.controllers.indexes import runs_in
from gyre.controllers.metrics import reconciled
from gyre.reconcile.modeldeployment import (
    ObservedModelDeployment,
    ServerPod,
    plan_modeldeployment,
    server_pod,
)
from gyre.reconcile.observed import ChildView, child_view

__all__ = ["gyre_server_children", "gyre_server_pods", "reconcile_modeldeployment"]

KIND = "ModelDeployment"
PLURAL = "modeldeployments"
# Label filters are applied by kopf to what it watches, so the index values are kept small.
_SERVER = {"app.kubernetes.io/managed-by": MANAGED_BY, LABEL_OWNER_KIND: KIND, LABEL_COMPONENT: SERVER}


# Index functions are coroutines: kopf runs them in its event loop, without a worker thread (see indexes.py).
@kopf.index("apps", "v1", "deployments", labels=_SERVER, when=mine)
@kopf.index("v1", "services", labels=_SERVER, when=mine)
@kopf.index("autoscaling", "v2", "horizontalpodautoscalers", labels=_SERVER, when=mine)
@kopf.index("networking.k8s.io", "v1", "networkpolicies", labels=_SERVER, when=mine)
async def gyre_server_children(body: kopf.Body, labels: kopf.Labels, **_: Any) -> dict[str, ChildView]:
    """The Service, server Deployments, HPA and NetworkPolicy of every ModelDeployment, by the owner's uid."""
    uid = labels.get(LABEL_OWNER_UID)
    return {uid: child_view(body)} if uid else {}


@kopf.index("v1", "pods", labels=_SERVER, when=mine)
async def gyre_server_pods(
    body: kopf.Body, labels: kopf.Labels, **_: Any
) -> dict[tuple[str, str], ServerPod]:
    """Every model-server pod, by (owner uid, track): what track health reads."""
    uid, track = labels.get(LABEL_OWNER_UID), labels.get(LABEL_TRACK)
    return {(uid, track): server_pod(body)} if uid and track else {}


@kopf.on.resume(GROUP, VERSION, PLURAL, when=mine)
@kopf.on.create(GROUP, VERSION, PLURAL, when=mine)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec", when=mine)
@kopf.timer(GROUP, VERSION, PLURAL, interval=5, initial_delay=5, idle=0, when=mine)
@reconciled(KIND)
def reconcile_modeldeployment(body: kopf.Body, patch: kopf.Patch, **kwargs: Any) -> None:
    """Bring the server objects in line with the spec and the newest eligible model, then report health."""
    # kopf passes its indexes as keyword arguments named after them (its handler protocols do not declare them).
    children: kopf.Index[str, ChildView] = kwargs["gyre_server_children"]
    pods: kopf.Index[tuple[str, str], ServerPod] = kwargs["gyre_server_pods"]
    owner = owner_from_body(body)
    spec, error = parse_spec(ModelDeploymentSpec, body)
    observed = ObservedModelDeployment(
        owner=owner,
        spec=spec,
        spec_error=error,
        status=parse_status(ModelDeploymentStatus, body),
        settings=settings(),
        now=utcnow(),
        runs=runs_in(kwargs, owner.namespace),
        children=list(children.get(owner.uid, [])),
        pods={track: list(pods.get((owner.uid, track), [])) for track in ("stable", "canary")},
    )
    apply_plan(owner, observed.status, plan_modeldeployment(observed), patch=patch)
