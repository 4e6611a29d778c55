"""Every API permission the operator uses, with the reason: the one list the chart's RBAC and its tests follow.

tests/unit/install/test_rbac.py fails when the rendered chart grants more or less than this list, and
tests/integration/test_rbac.py asks the real API server (SelfSubjectAccessReview, impersonating the operator's
ServiceAccount) that each grant holds and that nothing outside it does. Change the code, this list and
charts/gyre/templates/rbac.yaml together.

Nothing here is cluster-scoped: kopf runs with scanning disabled (gyre.controllers.handlers), so it neither lists
namespaces nor watches CustomResourceDefinitions; resource discovery (/apis) needs no RBAC.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GYRE_KINDS", "LEADER_ELECTION", "VERBS", "WORKLOAD", "Grant", "as_set"]

GYRE_KINDS = ("datasets", "trainingruns", "modeldeployments", "driftmonitors")
VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")


@dataclass(frozen=True)
class Grant:
    """Verbs on one resource (a "group/resource" pair; "" is the core group), and why the code needs them."""

    group: str
    resource: str
    verbs: tuple[str, ...]
    why: str


def _gyre(resource: str, verbs: tuple[str, ...], why: str) -> Grant:
    return Grant("gyre.dev", resource, verbs, why)


# In every namespace the operator watches (a ClusterRole when cluster-wide, else a Role per namespace).
WORKLOAD: tuple[Grant, ...] = (
    _gyre(
        "datasets",
        ("get", "list", "watch", "patch"),
        "kopf watch and bookkeeping; live_owner; refresh request",
    ),
    _gyre(
        "trainingruns", ("get", "list", "watch", "patch", "create"), "as datasets; a DriftMonitor retrains"
    ),
    _gyre("modeldeployments", ("get", "list", "watch", "patch"), "kopf watch and bookkeeping annotations"),
    _gyre("driftmonitors", ("get", "list", "watch", "patch"), "kopf watch and bookkeeping annotations"),
    *(_gyre(f"{k}/status", ("patch",), "status merge-patches (kube.patch_status, kopf)") for k in GYRE_KINDS),
    # With the OwnerReferencesPermissionEnforcement admission plugin, blockOwnerDeletion on a child needs this.
    *(_gyre(f"{k}/finalizers", ("update",), "children set blockOwnerDeletion") for k in GYRE_KINDS),
    Grant(
        "batch", "jobs", ("get", "list", "watch", "create", "delete"), "Job index; create; confirm; history"
    ),
    # Server-side apply is a patch; an apply that creates the object is also authorised as a create.
    Grant(
        "apps", "deployments", ("list", "watch", "create", "patch", "delete"), "model servers (SSA); canary"
    ),
    Grant("", "services", ("list", "watch", "create", "patch"), "the model server's Service (SSA)"),
    Grant(
        "autoscaling", "horizontalpodautoscalers", ("list", "watch", "create", "patch", "delete"), "HPA (SSA)"
    ),
    Grant(
        "networking.k8s.io",
        "networkpolicies",
        ("list", "watch", "create", "patch", "delete"),
        "the model server's NetworkPolicy (SSA); deleted when networkPolicy is disabled",
    ),
    Grant("", "pods", ("list", "watch"), "server pod index; a finished Job's pods carry its reports"),
    Grant(
        "",
        "persistentvolumeclaims",
        ("create",),
        "the namespace's artifact claim (created once, never changed)",
    ),
    Grant("", "events", ("create",), "the recorder posts core/v1 Events"),
)

# In the operator's own namespace, when leader election is on (gyre.controllers.leader).
LEADER_ELECTION: tuple[Grant, ...] = (
    Grant("coordination.k8s.io", "leases", ("get", "create", "update"), "read, create and renew the Lease"),
)


def as_set(grants: tuple[Grant, ...]) -> set[tuple[str, str, str]]:
    """(group, resource, verb) triples, the shape both tests compare."""
    return {(g.group, g.resource, verb) for g in grants for verb in g.verbs}
