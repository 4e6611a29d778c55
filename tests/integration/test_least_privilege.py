"""Least privilege on the real API server: the chart's RBAC, asked with SelfSubjectAccessReview while impersonating
the operator's ServiceAccount, and the NetworkPolicy the operator gives each ModelDeployment.

The chart is rendered with helm under its own release name and ServiceAccount namespace (the throwaway test
namespace), so it never touches the e2e install (gyre-operator in gyre-system). What it can do comes from
gyre.controllers.permissions, the list the chart is checked against (tests/unit/install/test_rbac.py).

The test cluster's CNI (bridge) does not enforce NetworkPolicy: the test checks the object the operator writes
(owner, pod selector, peers, port), not that traffic is actually dropped.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml
from kopf.testing import KopfRunner
from kubetest import (
    Custom,
    OperatorProcess,
    events,
    operator_processes,
    read_or_none,
    wait_for,
)

from gyre.controllers import common
from gyre.controllers.permissions import LEADER_ELECTION, VERBS, WORKLOAD, Grant

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RBAC_KINDS = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
OTHER = "kube-system"  # a namespace a namespaced operator must not touch
SA = "gyre-operator"


def render(release: str, namespace: str, cluster_wide: bool) -> list[dict[str, Any]]:
    helm = shutil.which("helm")
    if helm is None:
        pytest.fail('helm is not on PATH: eval "$(hack/cluster/env.sh)"', pytrace=False)
    out = subprocess.run(
        [
            helm, "template", release, str(ROOT / "charts/gyre"), "--skip-crds",
            "--namespace", namespace,
            "--set", f"operator.clusterWide={str(cluster_wide).lower()}",
        ],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return [d for d in yaml.safe_load_all(out) if d and d["kind"] in RBAC_KINDS]


@contextlib.contextmanager
def chart_rbac(kube_api: kubernetes.client.ApiClient, namespace: str, cluster_wide: bool) -> Iterator[None]:
    """The chart's ServiceAccount and RBAC, applied as the chart renders them; cluster-scoped ones removed after."""
    docs = render(f"rbac-{namespace}", namespace, cluster_wide)
    assert {d["kind"] for d in docs} >= {"ServiceAccount", "RoleBinding"}
    dyn = kubernetes.dynamic.DynamicClient(kube_api)
    for doc in docs:
        api = dyn.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
        meta = doc["metadata"]
        api.server_side_apply(
            body=doc, name=meta["name"], namespace=meta.get("namespace"), field_manager="gyre-tests"
        )
    try:
        yield
    finally:
        for doc in docs:
            if doc["kind"].startswith("Cluster"):
                api = dyn.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
                api.delete(name=doc["metadata"]["name"])


@pytest.fixture(params=[False, True], ids=["namespaced", "cluster-wide"])
def installed(
    request: pytest.FixtureRequest, kube_api: kubernetes.client.ApiClient, k8s_namespace: str
) -> Iterator[tuple[str, bool]]:
    with chart_rbac(kube_api, k8s_namespace, request.param):
        yield k8s_namespace, request.param


def impersonating(kube_api: kubernetes.client.ApiClient, namespace: str) -> kubernetes.client.ApiClient:
    """A client acting as the operator's ServiceAccount. Impersonating a ServiceAccount user without groups makes
    the API server add that account's groups itself (system:serviceaccounts, system:serviceaccounts:NS), which
    test_the_review_runs_as_the_operator_service_account checks."""
    client = kubernetes.client.ApiClient(kube_api.configuration)
    client.set_default_header("Impersonate-User", f"system:serviceaccount:{namespace}:{SA}")
    return client


def allowed(api: kubernetes.client.AuthorizationV1Api, group: str, resource: str, verb: str, ns: str) -> bool:
    resource, _, sub = resource.partition("/")
    attrs = {"group": group, "resource": resource, "verb": verb, "namespace": ns}
    if sub:
        attrs["subresource"] = sub
    review = api.create_self_subject_access_review({"spec": {"resourceAttributes": attrs}})
    return bool(review.status.allowed)


def cases(grants: tuple[Grant, ...]) -> list[tuple[str, str, str]]:
    return [(g.group, g.resource, verb) for g in grants for verb in g.verbs]


def refused(grants: tuple[Grant, ...]) -> list[tuple[str, str, str]]:
    """Every other verb on the granted resources: what the operator must not do to what it does use."""
    return [(g.group, g.resource, v) for g in grants for v in VERBS if v not in g.verbs]


# Never used by the code, so never granted, in any namespace.
NEVER = (
    [("", "configmaps", v) for v in VERBS]
    + [("", "secrets", v) for v in VERBS]
    + [
        ("", "pods/exec", "create"),
        ("", "pods/log", "get"),
        ("", "pods", "create"),
        ("", "serviceaccounts/token", "create"),
        ("rbac.authorization.k8s.io", "roles", "create"),
        ("rbac.authorization.k8s.io", "rolebindings", "create"),
        ("coordination.k8s.io", "leases", "delete"),
    ]
)
# Cluster-scoped: nothing, in either mode (kopf runs with scanning off).
CLUSTER_SCOPED = [
    ("", "namespaces", "list"),
    ("", "namespaces", "watch"),
    ("", "namespaces", "create"),
    ("", "namespaces", "delete"),
    ("", "nodes", "list"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "list"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "create"),
    ("rbac.authorization.k8s.io", "clusterroles", "create"),
    ("rbac.authorization.k8s.io", "clusterrolebindings", "create"),
]


@dataclass(frozen=True)
class Reviewer:
    """SelfSubjectAccessReviews as the operator's ServiceAccount of one rendered install."""

    namespace: str
    cluster_wide: bool
    client: kubernetes.client.ApiClient

    def allowed(self, case: tuple[str, str, str], namespace: str) -> bool:
        return allowed(kubernetes.client.AuthorizationV1Api(self.client), *case, namespace)


@pytest.fixture()
def reviewer(installed: tuple[str, bool], kube_api: kubernetes.client.ApiClient) -> Reviewer:
    namespace, cluster_wide = installed
    return Reviewer(namespace, cluster_wide, impersonating(kube_api, namespace))


def test_the_review_runs_as_the_operator_service_account(reviewer: Reviewer) -> None:
    api = kubernetes.client.AuthenticationV1Api(reviewer.client)
    user = api.create_self_subject_review({}).status.user_info
    assert user.username == f"system:serviceaccount:{reviewer.namespace}:{SA}"
    assert {"system:serviceaccounts", f"system:serviceaccounts:{reviewer.namespace}"} <= set(user.groups)


def test_the_operator_can_do_everything_the_code_uses_in_its_namespace(reviewer: Reviewer) -> None:
    denied = [c for c in cases(WORKLOAD + LEADER_ELECTION) if not reviewer.allowed(c, reviewer.namespace)]
    assert denied == []


def test_the_operator_cannot_do_more_than_the_code_uses(reviewer: Reviewer) -> None:
    own = reviewer.namespace
    namespaces = [own, OTHER] if reviewer.cluster_wide else [own]
    wrongly = [(*c, ns) for ns in namespaces for c in [*refused(WORKLOAD), *NEVER] if reviewer.allowed(c, ns)]
    wrongly += [(*c, "") for c in CLUSTER_SCOPED if reviewer.allowed(c, "")]
    # The Lease only in the operator's own namespace, and only the verbs the elector uses.
    wrongly += [(*c, OTHER) for c in cases(LEADER_ELECTION) if reviewer.allowed(c, OTHER)]
    wrongly += [(*c, own) for c in refused(LEADER_ELECTION) if reviewer.allowed(c, own)]
    assert wrongly == []


def test_namespaced_the_operator_has_nothing_outside_its_namespace_cluster_wide_it_acts_everywhere(
    reviewer: Reviewer,
) -> None:
    elsewhere = {c: reviewer.allowed(c, OTHER) for c in cases(WORKLOAD)}
    everywhere = {c: reviewer.allowed(c, "") for c in cases(WORKLOAD) if c[2] in ("list", "watch")}
    assert set(elsewhere.values()) == {reviewer.cluster_wide}, elsewhere
    assert set(everywhere.values()) == {reviewer.cluster_wide}, everywhere


# --- the operator itself, as its ServiceAccount ----------------------------------------------------------------


def service_account_kubeconfig(kube_api: kubernetes.client.ApiClient, namespace: str, path: Path) -> Path:
    """A kubeconfig that authenticates with a short-lived token of the operator's ServiceAccount."""
    request = {"spec": {"expirationSeconds": 3600}}
    core = kubernetes.client.CoreV1Api(kube_api)
    token = core.create_namespaced_service_account_token(SA, namespace, request).status.token
    config = kube_api.configuration
    cluster: dict[str, Any] = {"server": config.host, "certificate-authority": config.ssl_ca_cert}
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "test", "cluster": cluster}],
                "users": [{"name": SA, "user": {"token": token}}],
                "contexts": [{"name": "gyre-test", "context": {"cluster": "test", "user": SA}}],
                "current-context": "gyre-test",
            }
        )
    )
    return path


def test_the_operator_reconciles_under_the_namespaced_chart_rbac_without_a_refusal(
    kube_api: kubernetes.client.ApiClient, k8s_namespace: str, crds: list[dict[str, Any]], tmp_path: Path
) -> None:
    namespace = k8s_namespace
    custom = Custom(kube_api, namespace)
    with chart_rbac(kube_api, namespace, cluster_wide=False):
        kubeconfig = service_account_kubeconfig(kube_api, namespace, tmp_path / "kubeconfig")
        op = OperatorProcess(namespace, "--standalone", "--leader-election", "--lease-namespace", namespace,
                             kubeconfig=kubeconfig)  # fmt: skip
        with operator_processes(op):
            custom.create(
                "datasets", "Dataset", "iris", {"source": {"uri": "builtin://iris"}, "target": "target"}
            )
            custom.create(
                "modeldeployments", "ModelDeployment", "iris", {"model": {"uri": "pvc://gyre-artifacts/m"}}
            )
            batch = kubernetes.client.BatchV1Api(kube_api)
            wait_for(lambda: batch.list_namespaced_job(namespace).items, what="the profiling Job", timeout=90)
            wait_for(lambda: policy(kube_api, namespace, "iris"), what="the NetworkPolicy", timeout=90)
            wait_for(
                lambda: ("Normal", "Profiling") in [e[:2] for e in events(kube_api, namespace, "iris")],
                what="a Profiling Event",
            )
            core = kubernetes.client.CoreV1Api(kube_api)
            assert core.read_namespaced_persistent_volume_claim("gyre-artifacts", namespace)
            assert kubernetes.client.CoordinationV1Api(kube_api).read_namespaced_lease(
                "gyre-operator", namespace
            )
            time.sleep(5)  # a few reconcile periods of the ModelDeployment timer
            assert op.running(), op.output()
        log = op.log.read_text(errors="replace")
    refusals = [
        line
        for line in log.splitlines()
        if "forbidden" in line.lower() or "not enough permissions" in line.lower()
    ]
    assert refusals == [], log[-4000:]


# --- the NetworkPolicy ---------------------------------------------------------------------------------------


def policy(k8s: kubernetes.client.ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    read = kubernetes.client.NetworkingV1Api(k8s).read_namespaced_network_policy
    return read_or_none(k8s, read, name, namespace)


def test_a_model_deployment_gets_a_network_policy_for_its_port_and_loses_it_when_disabled(
    operator: KopfRunner, custom: Custom, k8s: kubernetes.client.ApiClient, namespace: str
) -> None:
    settings = common.settings()
    common.configure(settings.model_copy(update={"monitoring_namespace": "monitoring"}))
    md = custom.create(
        "modeldeployments", "ModelDeployment", "iris", {"model": {"uri": "pvc://gyre-artifacts/m"}}
    )
    found = wait_for(lambda: policy(k8s, namespace, "iris"), what="the NetworkPolicy")
    owner = found["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == (
        "ModelDeployment",
        md["metadata"]["uid"],
        True,
    )
    server = wait_for(
        lambda: read_or_none(
            k8s, kubernetes.client.AppsV1Api(k8s).read_namespaced_deployment, "iris", namespace
        ),
        what="the server Deployment",
    )
    pod_labels = server["spec"]["template"]["metadata"]["labels"]
    assert found["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    port = server["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"]
    assert found["spec"]["ingress"] == [
        {
            "from": [
                {"podSelector": {}},
                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}},
            ],
            "ports": [{"port": port, "protocol": "TCP"}],
        }
    ]
    assert found["spec"]["policyTypes"] == ["Ingress"]

    common.configure(settings.model_copy(update={"network_policy": False}))
    wait_for(lambda: policy(k8s, namespace, "iris") is None, what="the NetworkPolicy to be deleted")
