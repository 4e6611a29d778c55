"""The chart's RBAC grants exactly gyre.controllers.permissions, and a namespaced install nothing cluster-scoped.

Renders charts/gyre with the pinned helm (helmchart.py).
"""

from __future__ import annotations

from typing import Any

import pytest
from helmchart import by_kind, render

from gyre.api.env import MONITORING_NAMESPACE, NETWORK_POLICY
from gyre.controllers.permissions import LEADER_ELECTION, VERBS, WORKLOAD, as_set


def granted(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """(group, resource, verb) triples; a wildcard is spelled out, so it shows up as a surplus grant."""
    out = set()
    for rule in rules:
        verbs = VERBS if "*" in rule["verbs"] else rule["verbs"]
        for group in rule.get("apiGroups") or [""]:
            for resource in rule.get("resources") or []:
                out |= {(group, resource, verb) for verb in verbs}
    return out


def operator_args(docs: list[dict[str, Any]]) -> list[str]:
    (deployment,) = by_kind(docs, "Deployment")
    args: list[str] = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    return args


def test_cluster_wide_the_cluster_role_grants_exactly_what_the_code_uses() -> None:
    docs = render()
    (role,) = by_kind(docs, "ClusterRole")
    assert granted(role["rules"]) == as_set(WORKLOAD)
    (binding,) = by_kind(docs, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "gyre-operator", "namespace": "gyre-system"}
    ]
    assert "--all-namespaces" in operator_args(docs)


def test_the_leader_election_role_grants_only_the_lease_in_the_operator_namespace() -> None:
    docs = render()
    (role,) = by_kind(docs, "Role")
    assert role["metadata"]["namespace"] == "gyre-system"
    assert granted(role["rules"]) == as_set(LEADER_ELECTION)
    assert not by_kind(render("operator.leaderElection.enabled=false", "operator.replicas=1"), "Role")


@pytest.mark.parametrize(
    ("values", "watched"),
    [
        pytest.param([], ["gyre-system"], id="the operator's own namespace"),
        pytest.param(["operator.watchNamespaces={team-a,team-b}"], ["team-a", "team-b"], id="a list"),
    ],
)
def test_namespaced_there_is_no_cluster_scoped_rbac_and_one_role_per_watched_namespace(
    values: list[str], watched: list[str]
) -> None:
    docs = render("operator.clusterWide=false", *values)
    assert not by_kind(docs, "ClusterRole") and not by_kind(docs, "ClusterRoleBinding")
    workload = [r for r in by_kind(docs, "Role") if not r["metadata"]["name"].endswith("-leader-election")]
    assert sorted(r["metadata"]["namespace"] for r in workload) == watched
    for role in workload:
        assert granted(role["rules"]) == as_set(WORKLOAD)
    bindings = [
        b for b in by_kind(docs, "RoleBinding") if not b["metadata"]["name"].endswith("-leader-election")
    ]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == watched
    # The operator watches exactly the namespaces it may act in (kopf would otherwise fail with 403s).
    assert [a for a in operator_args(docs) if a.startswith("--namespace")] == [
        f"--namespace={n}" for n in watched
    ]
    assert "--all-namespaces" not in operator_args(docs)


def test_a_release_not_named_gyre_prefixes_its_cluster_scoped_names() -> None:
    (role,) = by_kind(render(release="rbac-test"), "ClusterRole")
    assert role["metadata"]["name"] == "rbac-test-gyre-operator"


@pytest.mark.parametrize(
    ("values", "enabled", "namespace"),
    [
        ([], "true", "monitoring"),
        (["networkPolicy.enabled=false", "networkPolicy.monitoringNamespace="], "false", ""),
    ],
)
def test_network_policy_values_reach_the_operator(values: list[str], enabled: str, namespace: str) -> None:
    (deployment,) = by_kind(render(*values), "Deployment")
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert (env[NETWORK_POLICY], env[MONITORING_NAMESPACE]) == (enabled, namespace)
