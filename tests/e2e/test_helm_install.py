"""The chart as a Helm user drives it, on the real cluster: install into the release namespace (created by
`--create-namespace`), `helm test`, `helm upgrade` with changed values, and `helm uninstall`, which leaves nothing
but the CRDs.

The session's other e2e tests run against the kustomize install (hack/deploy.sh, release-less `gyre-operator` in
gyre-system). The gyre-system case removes that install (not the CRDs), installs the chart in its place, and puts
the kustomize install back afterwards if it was there; the other case installs a namespaced release (a Role, no
ClusterRole) beside it, so the two operators never reconcile the same objects. Either order works.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import kubernetes
import pytest
import yaml
from e2ekube import wait_for
from kubernetes.client.exceptions import ApiException

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts/gyre"
CRDS = ("datasets", "trainingruns", "modeldeployments", "driftmonitors")
# Liveness bounds on a busy 2-core machine, not speed assertions.
TIMEOUT = "8m"


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f'{name} is not on PATH: eval "$(hack/cluster/env.sh)"', pytrace=False)
    return found


def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, cwd=ROOT, env=os.environ, capture_output=True, text=True, check=False)
    if ok and proc.returncode != 0:
        pytest.fail(
            f"{' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc


def helm(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    return run(tool("helm"), *args, ok=ok)


def kustomize_install_present(api: ApiClient) -> bool:
    try:
        deployment = kubernetes.client.AppsV1Api(api).read_namespaced_deployment(
            "gyre-operator", "gyre-system"
        )
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return "meta.helm.sh/release-name" not in (deployment.metadata.annotations or {})


def namespace_gone(api: ApiClient, name: str) -> bool:
    try:
        kubernetes.client.CoreV1Api(api).read_namespace(name)
    except ApiException as exc:
        if exc.status == 404:
            return True
        raise
    return False


@pytest.fixture()
def gyre_system_free(kube_api: ApiClient, gyre_image: str) -> Iterator[None]:
    """gyre-system absent (no kustomize install, no Namespace); afterwards the kustomize install is put back if it
    was there, and the Namespace `--create-namespace` made is removed if it was not."""
    core = kubernetes.client.CoreV1Api(kube_api)
    present = kustomize_install_present(kube_api)
    if present:
        run(tool("kubectl"), "delete", "-f", str(ROOT / "manifests/operator/operator.yaml"), "--wait=true")
    elif not namespace_gone(kube_api, "gyre-system"):
        core.delete_namespace("gyre-system")  # left by an earlier `helm install --create-namespace`
    wait_for(lambda: namespace_gone(kube_api, "gyre-system"), timeout=300, what="gyre-system to be deleted")
    try:
        yield
    finally:
        helm("uninstall", "gyre", "-n", "gyre-system", "--wait", "--ignore-not-found", ok=False)
        if present:
            run(str(ROOT / "hack/deploy.sh"))
        elif not namespace_gone(kube_api, "gyre-system"):
            core.delete_namespace("gyre-system", propagation_policy="Background")


def manifest_objects(release: str, namespace: str) -> list[dict[str, Any]]:
    out = helm("get", "manifest", release, "-n", namespace).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def exists(api: ApiClient, doc: dict[str, Any]) -> bool:
    dyn = kubernetes.dynamic.DynamicClient(api)
    resource = dyn.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
    try:
        resource.get(name=doc["metadata"]["name"], namespace=doc["metadata"].get("namespace"))
    except kubernetes.dynamic.exceptions.NotFoundError:
        return False
    return True


def held_lease(api: ApiClient, namespace: str) -> Any:
    """The gyre-operator Lease once a replica holds it, else None."""
    lease = kubernetes.client.CoordinationV1Api(api).read_namespaced_lease("gyre-operator", namespace)
    return lease if lease.spec.holder_identity else None


def operator_args(api: ApiClient, namespace: str) -> list[str]:
    deployment = kubernetes.client.AppsV1Api(api).read_namespaced_deployment("gyre-operator", namespace)
    args: list[str] = deployment.spec.template.spec.containers[0].args
    return args


def holder_pod(lease: Any) -> str:
    """The pod name in a Lease holder identity (`POD_PID`, gyre.controllers.leader.default_identity)."""
    identity: str = lease.spec.holder_identity or ""
    return identity.rpartition("_")[0]


def leader_lost_then_work_goes_on(api: ApiClient, namespace: str, lease: Any) -> None:
    """The chart's two replicas on the real cluster: the leader's pod is deleted with no grace (nothing is released,
    as on SIGKILL or node loss), another replica takes the Lease once it expires, and that replica reconciles."""
    core = kubernetes.client.CoreV1Api(api)
    leader = holder_pod(lease)
    running = [
        p.metadata.name
        for p in core.list_namespaced_pod(
            namespace, label_selector="app.kubernetes.io/component=operator"
        ).items
        if p.status.phase == "Running" and not p.metadata.deletion_timestamp
    ]
    assert leader in running and len(running) == 2, (leader, running)
    core.delete_namespaced_pod(leader, namespace, grace_period_seconds=0)

    def new_holder() -> Any:
        current = held_lease(api, namespace)
        return current if current is not None and holder_pod(current) not in ("", leader) else None

    taken = wait_for(new_holder, timeout=300, what=f"a replica other than {leader} to take the Lease")
    assert holder_pod(taken) != leader
    # Proof of work by the new leader, with no pod needed: a run whose Dataset is missing gets its status and Event.
    runs = kubernetes.client.CustomObjectsApi(api)
    name = f"failover-{uuid.uuid4().hex[:6]}"
    body = {
        "apiVersion": "gyre.dev/v1alpha1",
        "kind": "TrainingRun",
        "metadata": {"name": name},
        "spec": {
            "datasetRef": {"name": "no-such-dataset"},
            "target": "target",
            "estimator": {"kind": "LogisticRegression"},
        },
    }
    runs.create_namespaced_custom_object("gyre.dev", "v1alpha1", namespace, "trainingruns", body)
    try:

        def waiting_for_dataset() -> dict[str, Any] | None:
            run = runs.get_namespaced_custom_object("gyre.dev", "v1alpha1", namespace, "trainingruns", name)
            conditions = (run.get("status") or {}).get("conditions") or []
            return run if any(c.get("reason") == "DatasetNotFound" for c in conditions) else None

        wait_for(waiting_for_dataset, timeout=300, what=f"the new leader to reconcile TrainingRun {name}")
    finally:
        runs.delete_namespaced_custom_object("gyre.dev", "v1alpha1", namespace, "trainingruns", name)


def install_test_upgrade_uninstall(api: ApiClient, release: str, namespace: str, *values: str) -> None:
    sets = [arg for value in ("image.tag=dev", *values) for arg in ("--set", value)]
    helm(
        "install",
        release,
        str(CHART),
        "-n",
        namespace,
        "--create-namespace",
        *sets,
        "--wait",
        "--timeout",
        TIMEOUT,
    )
    tested = helm("test", release, "-n", namespace, "--timeout", TIMEOUT)
    assert "Succeeded" in tested.stdout, tested.stdout

    installed = manifest_objects(release, namespace)
    kinds = {d["kind"] for d in installed}
    assert "Namespace" not in kinds
    # Cluster-wide: a ClusterRole; namespaced: a Role and RoleBinding, nothing cluster-scoped for RBAC.
    cluster_wide = "operator.clusterWide=false" not in values
    assert ("ClusterRole" in kinds, "ClusterRoleBinding" in kinds) == (cluster_wide, cluster_wide)
    assert {"Role", "RoleBinding", "Lease", "ServiceAccount", "Deployment"} <= kinds
    assert {
        d["metadata"].get("namespace") for d in installed if d["kind"] in ("Deployment", "Lease", "Service")
    } == {namespace}
    assert "--verbose" not in operator_args(api, namespace)
    # The operator took the Lease the chart created, keeping Helm's labels (so Helm still owns and removes it).
    lease = wait_for(
        lambda: held_lease(api, namespace), timeout=300, what="the operator to take the chart's Lease"
    )
    assert lease.metadata.labels["app.kubernetes.io/managed-by"] == "Helm"
    assert lease.metadata.annotations["meta.helm.sh/release-name"] == release
    leader_lost_then_work_goes_on(api, namespace, lease)

    helm(
        "upgrade", release, str(CHART), "-n", namespace, "--reuse-values", "--set", "operator.verbose=true",
        "--set", "monitoring.annotations=false", "--wait", "--timeout", TIMEOUT,
    )  # fmt: skip
    assert "--verbose" in operator_args(api, namespace)
    pods = kubernetes.client.CoreV1Api(api).list_namespaced_pod(
        namespace, label_selector="app.kubernetes.io/component=operator"
    )
    assert pods.items and all(
        "prometheus.io/scrape" not in (p.metadata.annotations or {})
        for p in pods.items
        if not p.metadata.deletion_timestamp
    )
    helm("test", release, "-n", namespace, "--timeout", TIMEOUT)
    upgraded = manifest_objects(release, namespace)

    helm("uninstall", release, "-n", namespace, "--wait", "--timeout", TIMEOUT)
    left = [f"{d['kind']}/{d['metadata']['name']}" for d in upgraded if exists(api, d)]
    assert not left, f"helm uninstall left {left}"
    core = kubernetes.client.CoreV1Api(api)
    # Nothing the release created by other means either: its hook pod, the operator's pods, the Lease.
    wait_for(
        lambda: not core.list_namespaced_pod(namespace).items,
        timeout=300,
        what=f"every pod in {namespace} to be gone after uninstall",
    )
    leases = kubernetes.client.CoordinationV1Api(api).list_namespaced_lease(namespace).items
    assert not leases, [lease.metadata.name for lease in leases]
    crds = kubernetes.client.ApiextensionsV1Api(api)
    for plural in CRDS:
        crds.read_custom_resource_definition(f"{plural}.gyre.dev")  # kept, as Helm keeps crds/


def test_helm_installs_into_gyre_system_with_create_namespace(
    kube_api: ApiClient, gyre_system_free: None
) -> None:
    install_test_upgrade_uninstall(kube_api, "gyre", "gyre-system")
    rbac = kubernetes.client.RbacAuthorizationV1Api(kube_api)
    with pytest.raises(ApiException) as gone:
        rbac.read_cluster_role("gyre-operator")
    assert gone.value.status == 404


def test_a_namespaced_release_installs_into_a_namespace_of_any_name(
    kube_api: ApiClient, gyre_image: str
) -> None:
    namespace = f"gyre-helm-{uuid.uuid4().hex[:6]}"
    try:
        install_test_upgrade_uninstall(kube_api, "gyre-helm", namespace, "operator.clusterWide=false")
    finally:
        helm("uninstall", "gyre-helm", "-n", namespace, "--wait", "--ignore-not-found", ok=False)
        kubernetes.client.CoreV1Api(kube_api).delete_namespace(namespace, propagation_policy="Background")
