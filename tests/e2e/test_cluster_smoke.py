"""Smoke tests of the test cluster itself: what every other e2e test takes for granted.

They run real pods from the project image: Jobs complete, Services route by ClusterIP and by
DNS name, the garbage collector cascades, PodSecurity admission enforces `restricted`, and a
PersistentVolumeClaim binds and is writable by the image's non-root user.
Timeouts are generous liveness bounds, never speed assertions.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

pytestmark = pytest.mark.e2e

T = TypeVar("T")
# A cold first pod on a busy 2-core machine may take a while (image unpack, first DNS answers).
POD_TIMEOUT = 240.0


def wait_for(
    fn: Callable[[], T | None],
    what: str,
    timeout: float = POD_TIMEOUT,
    explain: Callable[[], str] | None = None,
) -> T:
    """Poll fn until it returns something truthy, else fail with `what` and the explanation."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(1)
    detail = explain() if explain else f"last value: {last!r}"
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\n{detail}", pytrace=False)


def restricted_security() -> tuple[dict[str, Any], dict[str, Any]]:
    """Pod- and container-level security contexts that satisfy PodSecurity `restricted`."""
    pod = {"runAsNonRoot": True, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}}
    container = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    return pod, container


def pod_spec(image: str, args: list[str], **extra: Any) -> dict[str, Any]:
    """A restricted, never-restarting pod running `python3 ARGS...` in the project image."""
    pod_sc, container_sc = restricted_security()
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "securityContext": pod_sc,
        "containers": [
            {
                "name": "main",
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "command": ["python3"],
                "args": args,
                "securityContext": container_sc,
            }
        ],
    }
    spec.update(extra)
    return spec


def describe_pods(api: ApiClient, namespace: str, selector: str = "") -> str:
    """Phases, container states, recent events and log tails: what a failure message needs."""
    from kubernetes import client

    core = client.CoreV1Api(api)
    out: list[str] = []
    for pod in core.list_namespaced_pod(namespace, label_selector=selector).items:
        out.append(f"pod {pod.metadata.name}: phase={pod.status.phase}")
        for cs in pod.status.container_statuses or []:
            out.append(f"  container {cs.name}: {cs.state}")
        try:
            logs = core.read_namespaced_pod_log(pod.metadata.name, namespace, tail_lines=20)
            out.append(f"  logs:\n{logs}")
        except Exception as exc:  # logs are best effort in a failure report
            out.append(f"  logs unavailable: {exc}")
    for ev in core.list_namespaced_event(namespace).items[-15:]:
        out.append(f"event {ev.involved_object.kind}/{ev.involved_object.name}: {ev.reason}: {ev.message}")
    return "\n".join(out) or f"no pods in {namespace}"


def run_pod(api: ApiClient, namespace: str, name: str, spec: dict[str, Any]) -> str:
    """Run a pod to completion; return its log, failing with details unless it Succeeded."""
    from kubernetes import client

    core = client.CoreV1Api(api)
    core.create_namespaced_pod(namespace, {"metadata": {"name": name, "labels": {"run": name}}, "spec": spec})

    def finished() -> str | None:
        phase = core.read_namespaced_pod(name, namespace).status.phase
        return phase if phase in ("Succeeded", "Failed") else None

    phase = wait_for(finished, f"pod {name} to finish", explain=lambda: describe_pods(api, namespace))
    logs: str = core.read_namespaced_pod_log(name, namespace)
    assert phase == "Succeeded", f"pod {name} {phase}:\n{describe_pods(api, namespace)}"
    return logs


def default_class(api: ApiClient) -> str | None:
    """The cluster's default StorageClass, if it has one."""
    from kubernetes import client

    for sc in client.StorageV1Api(api).list_storage_class().items:
        if (sc.metadata.annotations or {}).get("storageclass.kubernetes.io/is-default-class") == "true":
            return str(sc.metadata.name)
    return None


def test_job_from_project_image_succeeds(kube_api: ApiClient, k8s_namespace: str, gyre_image: str) -> None:
    from kubernetes import client

    batch = client.BatchV1Api(kube_api)
    script = "import gyre, sklearn, kopf; print('gyre-job-ok', sklearn.__version__)"
    job = {
        "metadata": {"name": "smoke"},
        "spec": {"backoffLimit": 0, "template": {"spec": pod_spec(gyre_image, ["-c", script])}},
    }
    batch.create_namespaced_job(k8s_namespace, job)

    def done() -> str | None:
        status = batch.read_namespaced_job("smoke", k8s_namespace).status
        conds = {c.type: c.status for c in status.conditions or []}
        if conds.get("Complete") == "True":
            return "Complete"
        if conds.get("Failed") == "True":
            return "Failed"
        return None

    result = wait_for(done, "Job smoke to finish", explain=lambda: describe_pods(kube_api, k8s_namespace))
    assert result == "Complete", describe_pods(kube_api, k8s_namespace)
    pods = (
        client.CoreV1Api(kube_api).list_namespaced_pod(k8s_namespace, label_selector="job-name=smoke").items
    )
    assert [p.status.phase for p in pods] == ["Succeeded"]
    log = client.CoreV1Api(kube_api).read_namespaced_pod_log(pods[0].metadata.name, k8s_namespace)
    assert "gyre-job-ok" in log


SERVER = """
import http.server, socket
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("hello-from " + socket.gethostname()).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.ThreadingHTTPServer(("", 8080), H).serve_forever()
"""

# Each attempt is a new connection: a SYN sent before kube-proxy programmed the Service keeps its
# un-NATed conntrack entry, so retransmitting on the same connection could never succeed.
CLIENT = """
import sys, time, urllib.request
for url in sys.argv[1:]:
    deadline = time.monotonic() + 60
    for attempt in range(1, 1000):
        try:
            body = urllib.request.urlopen(url, timeout=2).read().decode()
            break
        except OSError as exc:
            print(url, "attempt", attempt, "failed:", exc, flush=True)
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    print(url, "->", body, flush=True)
    assert body.startswith("hello-from echo-"), body
"""


def test_service_answers_by_cluster_ip_and_dns_name(
    kube_api: ApiClient, k8s_namespace: str, gyre_image: str
) -> None:
    from kubernetes import client

    apps, core = client.AppsV1Api(kube_api), client.CoreV1Api(kube_api)
    labels = {"app": "echo"}
    spec = pod_spec(gyre_image, ["-c", SERVER])
    spec.pop("restartPolicy")
    spec["containers"][0]["ports"] = [{"containerPort": 8080}]
    spec["containers"][0]["readinessProbe"] = {"tcpSocket": {"port": 8080}, "periodSeconds": 1}
    apps.create_namespaced_deployment(
        k8s_namespace,
        {
            "metadata": {"name": "echo"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": spec},
            },
        },
    )
    svc = core.create_namespaced_service(
        k8s_namespace,
        {
            "metadata": {"name": "echo"},
            "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]},
        },
    )
    cluster_ip = svc.spec.cluster_ip
    assert cluster_ip and cluster_ip != "None"
    wait_for(
        lambda: (apps.read_namespaced_deployment("echo", k8s_namespace).status.ready_replicas or 0) == 2,
        "Deployment echo to have 2 ready replicas",
        explain=lambda: describe_pods(kube_api, k8s_namespace, "app=echo"),
    )
    urls = [f"http://{cluster_ip}/", f"http://echo.{k8s_namespace}.svc.cluster.local/", "http://echo/"]
    logs = run_pod(kube_api, k8s_namespace, "client", pod_spec(gyre_image, ["-c", CLIENT, *urls]))
    for url in urls:
        assert f"{url} -> hello-from echo-" in logs, logs


def test_deleting_owner_garbage_collects_children(
    kube_api: ApiClient, k8s_namespace: str, gyre_image: str
) -> None:
    from kubernetes import client

    apps, core = client.AppsV1Api(kube_api), client.CoreV1Api(kube_api)
    labels = {"app": "gc"}
    spec = pod_spec(gyre_image, ["-c", "import time; time.sleep(3600)"])
    spec.pop("restartPolicy")
    spec["terminationGracePeriodSeconds"] = 1
    apps.create_namespaced_deployment(
        k8s_namespace,
        {
            "metadata": {"name": "gc"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": spec},
            },
        },
    )
    # The Deployment controller makes a ReplicaSet, which makes the pods; each is owned by the one above.
    rs = wait_for(
        lambda: apps.list_namespaced_replica_set(k8s_namespace, label_selector="app=gc").items,
        "the Deployment's ReplicaSet",
    )
    assert rs[0].metadata.owner_references[0].kind == "Deployment"

    def running_pods() -> list[Any] | None:
        items = core.list_namespaced_pod(k8s_namespace, label_selector="app=gc").items
        return items if sum(p.status.phase == "Running" for p in items) == 2 else None

    pods = wait_for(
        running_pods,
        "two running pods of Deployment gc",
        explain=lambda: describe_pods(kube_api, k8s_namespace, "app=gc"),
    )
    assert all(p.metadata.owner_references[0].kind == "ReplicaSet" for p in pods)

    apps.delete_namespaced_deployment("gc", k8s_namespace, propagation_policy="Background")
    wait_for(
        lambda: (
            not apps.list_namespaced_replica_set(k8s_namespace, label_selector="app=gc").items
            and not core.list_namespaced_pod(k8s_namespace, label_selector="app=gc").items
        ),
        "the garbage collector to delete the ReplicaSet and its pods",
        explain=lambda: describe_pods(kube_api, k8s_namespace, "app=gc"),
    )


def test_restricted_namespace_rejects_privileged_and_admits_restricted(
    kube_api: ApiClient, k8s_namespace: str, gyre_image: str
) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    core = client.CoreV1Api(kube_api)
    core.patch_namespace(
        k8s_namespace, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}
    )
    privileged = {
        "metadata": {"name": "privileged"},
        "spec": {
            "containers": [
                {
                    "name": "main",
                    "image": gyre_image,
                    "imagePullPolicy": "IfNotPresent",
                    "securityContext": {"privileged": True},
                }
            ]
        },
    }
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod(k8s_namespace, privileged)
    assert refused.value.status == 403
    assert "violates PodSecurity" in str(refused.value.body)
    assert '"restricted:' in str(refused.value.body), refused.value.body

    logs = run_pod(
        kube_api,
        k8s_namespace,
        "restricted",
        pod_spec(gyre_image, ["-c", "import os; print('uid', os.getuid())"]),
    )
    assert "uid 65532" in logs


@pytest.mark.parametrize("storage_class", ["standard", None], ids=["standard", "default-class"])
def test_pvc_binds_and_is_writable(
    kube_api: ApiClient, k8s_namespace: str, gyre_image: str, storage_class: str | None
) -> None:
    from kubernetes import client

    core = client.CoreV1Api(kube_api)
    pvc: dict[str, Any] = {
        "metadata": {"name": "gyre-artifacts"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    if storage_class:
        pvc["spec"]["storageClassName"] = storage_class
    core.create_namespaced_persistent_volume_claim(k8s_namespace, pvc)
    script = (
        "import pathlib; p = pathlib.Path('/var/lib/gyre/artifacts/probe.txt'); "
        "p.write_text('written'); print('read', p.read_text())"
    )
    spec = pod_spec(
        gyre_image,
        ["-c", script],
        volumes=[{"name": "artifacts", "persistentVolumeClaim": {"claimName": "gyre-artifacts"}}],
    )
    spec["containers"][0]["volumeMounts"] = [{"name": "artifacts", "mountPath": "/var/lib/gyre/artifacts"}]
    # The pod comes first: a class may bind only for a consumer (kind's WaitForFirstConsumer).
    logs = run_pod(kube_api, k8s_namespace, "writer", spec)
    assert "read written" in logs
    claim = core.read_namespaced_persistent_volume_claim("gyre-artifacts", k8s_namespace)
    assert claim.status.phase == "Bound"
    assert claim.spec.storage_class_name == (storage_class or default_class(kube_api))
