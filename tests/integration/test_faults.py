"""Faults on the real cluster: a killed operator, a restarted API server, a lost leader, a conflict, a slow API.

The operator runs as a real subprocess (kubetest.OperatorProcess) so it can be SIGKILLed. No pod runs in this tier,
so "converged" means what the operator writes: one Job per TrainingRun with its deterministic name, owned by a live
object, and the run's status phase Running naming that Job.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml
from kubetest import (
    INSTANCE_LABEL,
    Custom,
    OperatorProcess,
    SlowProxy,
    operator_processes,
    read_or_none,
    ready_dataset,
    wait_for,
)

from gyre.controllers import leader

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SPEC = {"datasetRef": {"name": "iris"}, "estimator": {"kind": "LogisticRegression"}}
# Without peering or a Lease: exactly one operator process at a time in these tests.
SINGLE = ("--no-leader-election", "--standalone")


def batch(k8s: kubernetes.client.ApiClient) -> kubernetes.client.BatchV1Api:
    return kubernetes.client.BatchV1Api(k8s)


def create_runs(custom: Custom, names: list[str]) -> None:
    for name in names:
        custom.create("trainingruns", "TrainingRun", name, SPEC)


def unconverged(custom: Custom, names: list[str]) -> list[str]:
    """Runs whose status is not yet phase Running with their deterministic Job name."""
    runs = {
        r["metadata"]["name"]: r
        for r in custom.api.list_namespaced_custom_object(
            "gyre.dev", "v1alpha1", custom.namespace, "trainingruns"
        )["items"]
    }
    bad = []
    for name in names:
        status = (runs.get(name) or {}).get("status") or {}
        if (status.get("phase"), status.get("jobName")) != ("Running", f"{name}-train"):
            bad.append(name)
    return bad


def wait_converged(custom: Custom, names: list[str], proc: OperatorProcess, timeout: float = 120) -> None:
    left: list[str] = []

    def done() -> bool:
        nonlocal left
        left = unconverged(custom, names)
        return not left

    try:
        wait_for(done, timeout=timeout, interval=1, what="every TrainingRun Running with its Job")
    except pytest.fail.Exception:
        pytest.fail(f"{len(left)} runs did not converge: {left[:10]}\noperator log:\n{proc.output()}")


def assert_one_job_per_run_and_no_orphans(
    k8s: kubernetes.client.ApiClient, custom: Custom, namespace: str, names: list[str]
) -> None:
    jobs = batch(k8s).list_namespaced_job(namespace).items
    by_owner: dict[str, list[str]] = {}
    for job in jobs:
        owner = (job.metadata.labels or {}).get("gyre.dev/owner-name", "")
        by_owner.setdefault(owner, []).append(job.metadata.name)
    for name in names:
        assert by_owner.get(name) == [f"{name}-train"], (name, by_owner.get(name))
    live: set[str] = set()
    for plural in ("trainingruns", "datasets", "modeldeployments"):
        items = custom.api.list_namespaced_custom_object("gyre.dev", "v1alpha1", namespace, plural)["items"]
        live |= {o["metadata"]["uid"] for o in items}
    orphans = [j.metadata.name for j in jobs if not {r.uid for r in j.metadata.owner_references or []} & live]
    assert orphans == []


def trained_run(custom: Custom, name: str, finished: str) -> str:
    """A finished, validated TrainingRun for another operator instance; returns its model sha256."""
    custom.create("trainingruns", "TrainingRun", name, SPEC, labels={INSTANCE_LABEL: "elsewhere"})
    sha = hashlib.sha256(name.encode()).hexdigest()
    cond = {"type": "Validated", "status": "True", "reason": "GatesPassed", "message": "ok"}
    custom.patch_status(
        "trainingruns",
        name,
        {
            "phase": "Succeeded",
            "completionTime": finished,
            "modelUri": f"pvc://gyre-artifacts/models/{name}",
            "modelSha256": sha,
            "datasetFingerprint": "sha256:" + "b" * 64,
            "conditions": [{**cond, "lastTransitionTime": finished}],
        },
    )
    return sha


def served_sha(k8s: kubernetes.client.ApiClient, namespace: str, name: str) -> str | None:
    dep = read_or_none(k8s, kubernetes.client.AppsV1Api(k8s).read_namespaced_deployment, name, namespace)
    if dep is None:
        return None
    env = dep["spec"]["template"]["spec"]["containers"][0].get("env") or []
    return next((e.get("value") for e in env if e["name"] == "GYRE_MODEL_SHA256"), None)


def lease_holder(k8s: kubernetes.client.ApiClient, namespace: str, name: str) -> str | None:
    lease = read_or_none(k8s, kubernetes.client.CoordinationV1Api(k8s).read_namespaced_lease, name, namespace)
    return ((lease or {}).get("spec") or {}).get("holderIdentity") or None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------------------------------------ kills


def test_sigkilled_operator_leaves_exactly_one_job_per_run_and_finishes_the_rollout(
    custom: Custom, k8s: kubernetes.client.ApiClient, namespace: str
) -> None:
    rng = random.Random(8)
    names = [f"run-{i:02d}" for i in range(50)]
    op = OperatorProcess(namespace, *SINGLE)
    with operator_processes(op):
        ready_dataset(custom, namespace)
        old = trained_run(custom, "model-a", "2026-11-01T00:00:00Z")
        new = trained_run(custom, "model-b", "2026-11-02T00:00:00Z")
        custom.create(
            "modeldeployments", "ModelDeployment", "iris", {"model": {"trainingRunRef": {"name": "model-a"}}}
        )
        wait_for(lambda: served_sha(k8s, namespace, "iris") == old, what="the Deployment serving model-a")

        # Runs and the rollout arrive in bursts; the operator is SIGKILLed at seeded random moments in between.
        chunks = [names[i : i + 10] for i in range(0, len(names), 10)]
        for i, chunk in enumerate(chunks):
            create_runs(custom, chunk)
            if i == 2:
                custom.patch(
                    "modeldeployments", "iris", {"spec": {"model": {"trainingRunRef": {"name": "model-b"}}}}
                )
            time.sleep(rng.uniform(0.0, 2.5))
            op.kill()
            time.sleep(rng.uniform(0.0, 1.0))
            op.start()
            # Some kills land before startup finished, some in the middle of a burst.
            time.sleep(rng.uniform(0.5, 4.0))

        wait_converged(custom, names, op)
        wait_for(lambda: served_sha(k8s, namespace, "iris") == new, what="the Deployment serving model-b")
        assert_one_job_per_run_and_no_orphans(k8s, custom, namespace, names)
        assert op.running(), op.output()


# ------------------------------------------------------------------------------------------------ API server


def local_cluster_state(kubeconfig: Path) -> Path:
    """The local cluster's state directory, or a failure that says why this cluster cannot be restarted here."""
    state = kubeconfig.resolve().parent
    if not (state / "pids" / "kube-apiserver").is_file() or not (state / "pki").is_dir():
        pytest.fail(
            f"this test restarts the kube-apiserver of the local test cluster (hack/cluster), but KUBECONFIG="
            f"{kubeconfig} is not that cluster's kubeconfig (no {state}/pids/kube-apiserver). Run it against "
            "the local cluster, or deselect it: pytest -m 'not local_cluster_only'",
            pytrace=False,
        )
    return state


@pytest.mark.local_cluster_only
def test_api_server_restart_mid_watch_loses_no_change(
    kubeconfig: Path, custom: Custom, k8s: kubernetes.client.ApiClient, namespace: str
) -> None:
    state = local_cluster_state(kubeconfig)
    op = OperatorProcess(namespace, *SINGLE)
    with operator_processes(op):
        ready_dataset(custom, namespace)
        before = [f"before-{i}" for i in range(5)]
        create_runs(custom, before)
        wait_converged(custom, before, op)

        restart = subprocess.run(
            [str(ROOT / "hack/cluster/restart-apiserver.sh")],
            env={**os.environ, "GYRE_CLUSTER_STATE": str(state), "DOWN_SECONDS": "3"},
            capture_output=True,
            text=True,
            timeout=150,
            check=False,
        )
        assert restart.returncode == 0, restart.stderr
        # Created while the operator's watches are still broken or reconnecting.
        after = [f"after-{i}" for i in range(10)]
        create_runs(custom, after)
        custom.patch("datasets", "iris", {"metadata": {"labels": {"touched": "yes"}}})

        wait_converged(custom, before + after, op, timeout=150)
        assert_one_job_per_run_and_no_orphans(k8s, custom, namespace, before + after)
        assert op.running(), f"the operator exited across the API server restart:\n{op.output()}"


# ------------------------------------------------------------------------------------------------ leader election


def test_contending_candidates_never_both_hold_the_lease(
    k8s: kubernetes.client.ApiClient, namespace: str
) -> None:
    api = kubernetes.client.CoordinationV1Api(k8s)
    timing = leader.Timing.for_duration(2)
    candidates = [leader.Elector(namespace, "contended", f"c{i}", timing, api=api) for i in range(4)]
    barrier = threading.Barrier(len(candidates))
    won: list[str] = []

    def race(c: leader.Elector) -> None:
        barrier.wait()
        if c.try_once():
            won.append(c.identity)

    threads = [threading.Thread(target=race, args=(c,)) for c in candidates]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1  # the create and every replace carry a resourceVersion: one write wins
    first = next(c for c in candidates if c.identity == won[0])
    others = [c for c in candidates if c is not first]
    assert first.try_once()  # renewing
    assert not any(c.try_once() for c in others)  # held and fresh

    # Not renewed: taken over only after a full duration of seeing the same record.
    t0 = time.monotonic()
    second = others[0]
    assert second.acquire(), "no takeover"
    assert time.monotonic() - t0 >= timing.duration / 2  # not at once: it waited for expiry
    assert not first.try_once()  # the old holder sees it lost

    # Released: the next candidate takes it at once.
    assert second.release()
    assert lease_holder(k8s, namespace, "contended") is None
    assert others[1].try_once()


def test_two_replicas_one_leader_and_the_survivor_takes_over_after_a_sigkill(
    custom: Custom, k8s: kubernetes.client.ApiClient, namespace: str
) -> None:
    duration, retry = 15, 2.0
    ports = [free_port(), free_port()]
    replicas = [
        OperatorProcess(
            namespace,
            "--leader-election",
            "--lease-namespace",
            namespace,
            "--lease-name",
            "gyre-operator",
            f"--lease-duration={duration}",
            f"--liveness=http://127.0.0.1:{port}/healthz",
        )
        for port in ports
    ]
    with operator_processes(*replicas):
        holder = wait_for(lambda: lease_holder(k8s, namespace, "gyre-operator"), what="a Lease holder")
        by_pid = {p.pid: p for p in replicas}
        active = by_pid[int(holder.rsplit("_", 1)[1])]
        standby = next(p for p in replicas if p is not active)
        standby_port = ports[replicas.index(standby)]

        ready_dataset(custom, namespace)
        first = [f"first-{i}" for i in range(5)]
        create_runs(custom, first)
        wait_converged(custom, first, active)
        # The standby never acquired the Lease, so it never ran kopf; its liveness endpoint still answers.
        assert "acquired lease" not in standby.log.read_text(), standby.output()
        with urllib.request.urlopen(f"http://127.0.0.1:{standby_port}/healthz", timeout=5) as resp:
            assert resp.status == 200 and json.loads(resp.read())["standby"] is True

        killed_at = time.monotonic()
        active.kill()
        second = [f"second-{i}" for i in range(5)]
        create_runs(custom, second)

        def taken_over() -> str | None:
            now = lease_holder(k8s, namespace, "gyre-operator")
            return now if now != holder else None

        new_holder = wait_for(
            taken_over,
            timeout=duration + 2 * retry + 30,  # documented bound + generous slack: a liveness bound
            interval=0.25,
            what="the standby to take the Lease",
        )
        takeover = time.monotonic() - killed_at
        assert new_holder.endswith(f"_{standby.pid}")
        print(f"takeover after SIGKILL: {takeover:.1f}s (bound {duration + 2 * retry:.0f}s)")

        wait_converged(custom, first + second, standby)
        assert_one_job_per_run_and_no_orphans(k8s, custom, namespace, first + second)

        # A graceful stop hands the Lease back at once: the holder is cleared.
        assert standby.terminate() == 0, standby.output()
        assert lease_holder(k8s, namespace, "gyre-operator") is None


# ------------------------------------------------------------------------------------------------ 409, latency


def current_cluster(config: dict[str, Any]) -> dict[str, Any]:
    context = next(c for c in config["contexts"] if c["name"] == config["current-context"])["context"]
    cluster: dict[str, Any] = next(c for c in config["clusters"] if c["name"] == context["cluster"])[
        "cluster"
    ]
    return cluster


def api_endpoint(kubeconfig: Path) -> tuple[str, int]:
    server = current_cluster(yaml.safe_load(kubeconfig.read_text()))["server"]
    host, _, port = server.removeprefix("https://").split("/")[0].rpartition(":")
    return host.strip("[]"), int(port or 443)


def slow_kubeconfig(kubeconfig: Path, tmp_path: Path, port: int) -> Path:
    """A copy of the kubeconfig whose current cluster is reached through 127.0.0.1:port."""
    config: dict[str, Any] = yaml.safe_load(kubeconfig.read_text())
    cluster = current_cluster(config)
    cluster["server"] = f"https://127.0.0.1:{port}"
    # The server certificate names 127.0.0.1 too; tls-server-name keeps clients that honour it on a valid name.
    cluster["tls-server-name"] = "localhost"
    for key in ("certificate-authority", "client-certificate", "client-key"):
        for section in (cluster, *(u["user"] for u in config["users"])):
            if key in section and not Path(section[key]).is_absolute():
                section[key] = str(kubeconfig.parent / section[key])
    out = tmp_path / "kubeconfig-slow"
    out.write_text(yaml.safe_dump(config))
    return out


def test_a_conflicting_job_and_a_slow_api_server_are_retried_until_status_converges(
    kubeconfig: Path, tmp_path: Path, custom: Custom, k8s: kubernetes.client.ApiClient, namespace: str
) -> None:
    # The run waits for its Dataset; meanwhile its Job already exists (as after a crash between create and status).
    create_runs(custom, ["clash"])
    run = custom.get("trainingruns", "clash")
    owner = {
        "apiVersion": "gyre.dev/v1alpha1",
        "kind": "TrainingRun",
        "name": "clash",
        "uid": run["metadata"]["uid"],
        "controller": True,
    }
    container = {"name": "train", "image": "gyre.invalid/never-pulled:0", "imagePullPolicy": "Never"}
    batch(k8s).create_namespaced_job(
        namespace,
        {
            "metadata": {
                "name": "clash-train",
                "labels": {"gyre.dev/owner-name": "clash", INSTANCE_LABEL: "integration"},
                "ownerReferences": [owner],
            },
            "spec": {
                "backoffLimit": 0,
                "template": {"spec": {"restartPolicy": "Never", "containers": [container]}},
            },
        },
    )

    with SlowProxy(*api_endpoint(kubeconfig), delay=0.25) as proxy:
        op = OperatorProcess(namespace, *SINGLE, kubeconfig=slow_kubeconfig(kubeconfig, tmp_path, proxy.port))
        with operator_processes(op):
            ready_dataset(custom, namespace)
            names = ["clash"] + [f"slow-{i}" for i in range(5)]
            create_runs(custom, names[1:])
            wait_converged(custom, names, op, timeout=180)
            assert_one_job_per_run_and_no_orphans(k8s, custom, namespace, names)
            job = batch(k8s).read_namespaced_job("clash-train", namespace)
            assert job.metadata.owner_references[0].uid == run["metadata"]["uid"]
            assert op.running(), op.output()
        assert proxy.connections > 0  # the operator really talked through the slow path
