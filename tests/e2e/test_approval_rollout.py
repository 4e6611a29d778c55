"""Approval before production on a real cluster, as people drive it: Gyre installed from manifests/ (with its approval
policy and the default approvers group), real training and server pods.

An unapproved validated run waits and is never served; a user outside the approvers group who runs the documented
command is refused at admission with the policy's message; the same command run by a member rolls the run out, and
status and Events record who approved which digest. While it waits, the real Prometheus fires
GyreModelDeploymentNotReady for the deployment. Users are impersonated through a kubeconfig (`as`, `as-groups`),
so the command runs exactly as printed in the ModelDeployment's condition.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml
from e2ekube import Kube, condition, wait_for
from prometheus import Prometheus

pytestmark = pytest.mark.e2e

APPROVERS = "gyre-approvers"  # the install's default policy.approval.group


def run_spec() -> dict[str, Any]:
    return {
        "datasetRef": {"name": "iris"},
        "target": "target",
        "estimator": {"kind": "RandomForestClassifier", "params": {"n_estimators": 10, "max_depth": 3}},
        "gates": [{"metric": "accuracy", "min": 0.8}],
    }


def kubeconfig_as(kubeconfig: Path, tmp_path: Path, user: str, group: str) -> Path:
    """The admin kubeconfig acting as `user` in `group` (kubectl --as USER --as-group GROUP, for every command)."""
    config = yaml.safe_load(kubeconfig.read_text())
    for entry in config["users"]:
        entry["user"]["as"] = user
        entry["user"]["as-groups"] = [group]
    path = tmp_path / f"kubeconfig-{user}"
    path.write_text(yaml.safe_dump(config))
    return path


def run_as(config: Path, command: str) -> subprocess.CompletedProcess[str]:
    """A shell command line as a person types it, with their kubeconfig."""
    env = {**os.environ, "KUBECONFIG": str(config)}
    return subprocess.run(["bash", "-c", command], env=env, capture_output=True, text=True, check=False)


def let_users_edit_trainingruns(kube: Kube) -> None:
    """RBAC as a team would have it: every authenticated user may patch TrainingRuns here (the policy decides)."""
    rbac = kubernetes.client.RbacAuthorizationV1Api(kube.api)
    rbac.create_namespaced_role(
        kube.namespace,
        {
            "metadata": {"name": "trainingrun-editor"},
            "rules": [{"apiGroups": ["gyre.dev"], "resources": ["trainingruns"], "verbs": ["get", "patch"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        kube.namespace,
        {
            "metadata": {"name": "trainingrun-editors"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "trainingrun-editor",
            },
            "subjects": [
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:authenticated"}
            ],
        },
    )


def served_run(kube: Kube) -> str | None:
    status = kube.get("ModelDeployment", "iris").get("status") or {}
    return (status.get("modelVersion") or {}).get("trainingRun")


def test_an_unapproved_run_waits_an_outsider_is_refused_and_an_approver_rolls_it_out(
    kube: Kube, kubeconfig: Path, tmp_path: Path, prometheus: Prometheus
) -> None:
    let_users_edit_trainingruns(kube)
    kube.create("Dataset", "iris", {"source": {"uri": "builtin://iris"}, "target": "target"})
    kube.create("TrainingRun", "iris-a", run_spec(), labels={"app": "iris"})
    kube.create(
        "ModelDeployment",
        "iris",
        {
            "promotion": {
                "policy": "LatestValidated",
                "selector": {"matchLabels": {"app": "iris"}},
                "approval": "Required",
            },
            "replicas": 1,
        },
    )
    run = kube.wait_phase("TrainingRun", "iris-a", {"Succeeded"}, timeout=400)
    sha = run["status"]["modelSha256"]
    assert condition(run, "Validated")["status"] == "True"  # type: ignore[index]

    def awaiting() -> dict[str, Any] | None:
        cond = condition(kube.get("ModelDeployment", "iris"), "Approved")
        return cond if cond is not None and cond["reason"] == "AwaitingApproval" else None

    waiting = wait_for(awaiting, timeout=120, what="Approved=False, reason AwaitingApproval")
    assert waiting["status"] == "False"
    assert f"TrainingRun iris-a (sha256 {sha[:12]}) awaits approval" in waiting["message"]
    command = waiting["message"].split("approves it with: ", 1)[1]
    # Validated, and still not served: across several reconcile periods (5 s) no server exists.
    for _ in range(3):
        time.sleep(6)
        assert served_run(kube) is None
        assert kube.apps.list_namespaced_deployment(kube.namespace).items == []
    assert ("Normal", "AwaitingApproval") in [e[:2] for e in kube.events("iris")]
    # A deployment that serves nothing is what GyreModelDeploymentNotReady is for (its `for:` shortened in e2e).
    not_ready = wait_for(
        lambda: prometheus.fired("GyreModelDeploymentNotReady", object_namespace=kube.namespace, name="iris"),
        timeout=120,
        what="GyreModelDeploymentNotReady to fire",
    )
    assert {f["metric"]["phase"] for f in not_ready} <= {"Pending", "Progressing", "Degraded"}, not_ready

    outsider = run_as(kubeconfig_as(kubeconfig, tmp_path, "mallory", "data-scientists"), command)
    assert outsider.returncode != 0
    assert "only members of the group gyre-approvers may approve a TrainingRun" in outsider.stderr
    assert "mallory is not one" in outsider.stderr
    annotations = kube.get("TrainingRun", "iris-a")["metadata"].get("annotations") or {}
    assert "gyre.dev/approved-by" not in annotations
    assert served_run(kube) is None

    approver = run_as(kubeconfig_as(kubeconfig, tmp_path, "alice", APPROVERS), command)
    assert approver.returncode == 0, approver.stderr
    md = kube.wait_condition("ModelDeployment", "iris", "Ready", "True", timeout=300)
    version = md["status"]["modelVersion"]
    assert (version["trainingRun"], version["sha256"], version["approvedBy"]) == ("iris-a", sha, "alice")
    approved = condition(md, "Approved")
    assert (
        approved is not None and approved["status"] == "True" and "approved by alice" in approved["message"]
    )
    (entry,) = md["status"]["history"]
    assert (entry["trainingRun"], entry["approvedBy"], entry["trigger"]) == ("iris-a", "alice", "manual")
    deployment = kube.apps.read_namespaced_deployment("iris", kube.namespace)
    env = {e.name: e.value for e in deployment.spec.template.spec.containers[0].env if e.value is not None}
    assert env["GYRE_MODEL_SHA256"] == sha
    wait_for(
        lambda: any(r == "Approved" and "approved by alice" in m for _, r, m in kube.events("iris")),
        timeout=60,
        what="the Approved Event",
    )
    # The audit, as an operator of the platform asks for it.
    audit = subprocess.run(
        [sys.executable, "-m", "gyre.cli", "history", f"{kube.namespace}/iris"],
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert audit.returncode == 0, audit.stderr
    (row,) = [cols for cols in map(str.split, audit.stdout.splitlines()) if cols[1:2] == ["serving"]]
    assert row[2:7] == ["stable", "iris-a", sha[:12], "LatestValidated", "manual"]
    assert "alice" in row
    assert "AwaitingApproval" in audit.stdout and "approved by alice" in audit.stdout
