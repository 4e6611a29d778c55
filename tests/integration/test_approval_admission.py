"""Approval before production on a real API server: the chart's ValidatingAdmissionPolicy admits an approval only from
a member of the approvers group, in their own name, for the run's current digest (users impersonated with the admin
kubeconfig, as `kubectl --as USER --as-group GROUP`); and the operator serves an approved run only.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml
from kopf.testing import KopfRunner
from kubernetes.client.exceptions import ApiException
from kubetest import Custom, condition, events, namespaced_policy, read_or_none, rejection, wait_for
from test_modeldeployment_driftmonitor import ELSEWHERE
from test_modeldeployment_driftmonitor import trained_run as validated_run

from gyre.cli import main

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
GROUP, VERSION = "gyre.dev", "v1alpha1"
APPROVERS = "gyre-approvers"  # the chart's default policy.approval.group
RUN_SPEC = {"datasetRef": {"name": "iris"}, "estimator": {"kind": "RandomForestClassifier"}}


@pytest.fixture()
def approval_policy(k8s: kubernetes.client.ApiClient, namespace: str) -> Iterator[None]:
    """The install's approval policy, unchanged except for its name and scope (every TrainingRun of `namespace`),
    and users allowed by RBAC to edit TrainingRuns there, so that only the policy decides."""
    docs = [d for d in yaml.safe_load_all((ROOT / "manifests/operator/operator.yaml").read_text()) if d]
    policy = next(
        d
        for d in docs
        if d["kind"] == "ValidatingAdmissionPolicy" and d["metadata"]["name"] == "gyre-approval"
    )
    binding = next(
        d
        for d in docs
        if d["kind"] == "ValidatingAdmissionPolicyBinding" and d["metadata"]["name"] == "gyre-approval"
    )
    del policy["spec"]["matchConstraints"]["objectSelector"]
    rbac = kubernetes.client.RbacAuthorizationV1Api(k8s)
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "trainingrun-editor"},
            "rules": [
                {
                    "apiGroups": [GROUP],
                    "resources": ["trainingruns"],
                    "verbs": ["get", "create", "patch", "update"],
                }
            ],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
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
    with namespaced_policy(k8s, namespace, policy, binding):
        yield


def as_user(k8s: kubernetes.client.ApiClient, user: str, group: str, namespace: str) -> Custom:
    """Create and patch Gyre objects as `user` in `group` (kubectl --as USER --as-group GROUP)."""
    client = kubernetes.client.ApiClient(k8s.configuration)
    client.set_default_header("Impersonate-User", user)
    client.set_default_header("Impersonate-Group", group)
    return Custom(client, namespace)


def trained_run(custom: Custom, name: str) -> str:
    """A TrainingRun with the status of a finished, validated, manually started training Job; returns its digest."""
    sha: str = validated_run(custom, name, finished="2026-11-01T00:00:00Z")["status"]["modelSha256"]
    custom.patch_status("trainingruns", name, {"lineage": {"trigger": "manual"}})
    return sha


def approve(custom: Custom, run: str, by: str | None, sha: str | None) -> dict[str, Any]:
    """What `kubectl annotate trainingrun RUN gyre.dev/approved-by=BY gyre.dev/approved-sha256=SHA` sends."""
    patch = {"metadata": {"annotations": {"gyre.dev/approved-by": by, "gyre.dev/approved-sha256": sha}}}
    return custom.patch("trainingruns", run, patch)


def refused(call: Callable[[], Any]) -> str:
    """The admission policy's message for a refused write (403 Forbidden or 422 Invalid)."""
    with pytest.raises(ApiException) as exc:
        call()
    if exc.value.status == 422:
        return rejection(exc.value)
    assert exc.value.status == 403, f"expected 403 or 422, got {exc.value.status}: {exc.value.body}"
    return str(json.loads(exc.value.body)["message"])


def test_only_a_member_of_the_approvers_group_may_approve_and_only_in_their_own_name(
    approval_policy: None, custom: Custom, k8s: kubernetes.client.ApiClient, namespace: str
) -> None:
    sha = trained_run(custom, "iris-a")
    alice = as_user(k8s, "alice", APPROVERS, namespace)
    mallory = as_user(k8s, "mallory", "data-scientists", namespace)

    def mallory_refused() -> str | None:
        # The API server loads a new policy asynchronously: until it does, the write is admitted (and undone).
        try:
            mallory.create(
                "trainingruns",
                "TrainingRun",
                "probe",
                RUN_SPEC,
                labels=ELSEWHERE,
                annotations={"gyre.dev/approved-by": "mallory", "gyre.dev/approved-sha256": sha},
            )
        except ApiException as exc:
            return str(json.loads(exc.body)["message"]) if exc.status == 403 else None
        custom.delete("trainingruns", "probe")
        return None

    message = wait_for(mallory_refused, timeout=60, what="the approval policy to take effect")
    denied = refused(lambda: approve(mallory, "iris-a", "mallory", sha))
    assert denied.partition("denied request: ")[2] == message.partition("denied request: ")[2]
    assert "only members of the group gyre-approvers may approve a TrainingRun" in message
    assert "mallory is not one" in message and "policy.approval.group" in message

    assert "must be your own username, alice, not bob" in refused(
        lambda: approve(alice, "iris-a", "bob", sha)
    )
    wrong = refused(lambda: approve(alice, "iris-a", "alice", "f" * 64))
    assert f"is not the model of this TrainingRun, whose status.modelSha256 is {sha}" in wrong
    assert "together" in refused(lambda: approve(alice, "iris-a", "alice", None))

    approved = approve(alice, "iris-a", "alice", sha)
    assert approved["metadata"]["annotations"]["gyre.dev/approved-by"] == "alice"
    # Someone outside the group can neither withdraw nor take over the approval...
    assert "mallory is not one" in refused(lambda: approve(mallory, "iris-a", None, None))
    # ...but edits a TrainingRun's other metadata as before, the operator's bookkeeping included.
    edited = mallory.patch("trainingruns", "iris-a", {"metadata": {"annotations": {"team": "fraud"}}})
    assert edited["metadata"]["annotations"]["gyre.dev/approved-sha256"] == sha
    # A run cannot be created approved: it has no model yet.
    early = refused(
        lambda: alice.create(
            "trainingruns",
            "TrainingRun",
            "iris-early",
            RUN_SPEC,
            labels=ELSEWHERE,
            annotations={"gyre.dev/approved-by": "alice", "gyre.dev/approved-sha256": sha},
        )
    )
    assert "which has none yet: approve it once it has Succeeded" in early


def test_approval_required_refuses_a_uri_model_with_the_reason(custom: Custom) -> None:
    with pytest.raises(ApiException) as exc:
        custom.create(
            "modeldeployments",
            "ModelDeployment",
            "by-uri",
            {"model": {"uri": "pvc://gyre-artifacts/models/x"}, "promotion": {"approval": "Required"}},
        )
    assert "models are approved as TrainingRuns: set model.trainingRunRef" in rejection(exc.value)


def test_the_operator_serves_a_run_only_once_it_is_approved_and_records_who_approved_it(
    approval_policy: None,
    operator: KopfRunner,
    custom: Custom,
    k8s: kubernetes.client.ApiClient,
    namespace: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sha = trained_run(custom, "iris-a")
    custom.create(
        "modeldeployments",
        "ModelDeployment",
        "iris",
        {"promotion": {"policy": "LatestValidated", "approval": "Required"}, "replicas": 1},
    )
    waiting = custom.wait_condition("modeldeployments", "iris", "Approved", "False")
    assert waiting["reason"] == "AwaitingApproval"
    command = f"kubectl annotate trainingrun -n {namespace} iris-a --overwrite"
    assert command in waiting["message"] and f"gyre.dev/approved-sha256={sha}" in waiting["message"]
    wait_for(
        lambda: any(r == "AwaitingApproval" and "iris-a" in m for _, r, m in events(k8s, namespace, "iris")),
        what="the AwaitingApproval Event",
    )
    apps = kubernetes.client.AppsV1Api(k8s)
    assert read_or_none(k8s, apps.read_namespaced_deployment, "iris", namespace) is None

    alice = as_user(k8s, "alice", APPROVERS, namespace)
    approve(alice, "iris-a", "alice", sha)
    served = wait_for(
        lambda: read_or_none(k8s, apps.read_namespaced_deployment, "iris", namespace),
        what="the server Deployment",
    )
    env = {e["name"]: e.get("value") for e in served["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["GYRE_MODEL_SHA256"] == sha
    status = wait_for(
        lambda: (s := custom.get("modeldeployments", "iris").get("status") or {}).get("history") and s,
        what="status.history",
    )
    assert status["modelVersion"]["approvedBy"] == "alice" and status["modelVersion"]["approvedAt"]
    (entry,) = status["history"]
    assert (entry["trainingRun"], entry["sha256"], entry["approvedBy"]) == ("iris-a", sha, "alice")
    assert (entry["trigger"], entry["gates"], entry["source"]) == (
        "manual",
        "GatesPassed: accuracy 0.97 >= 0.9",
        "LatestValidated",
    )
    approved = condition(custom.get("modeldeployments", "iris"), "Approved")
    assert (
        approved is not None and approved["status"] == "True" and "approved by alice" in approved["message"]
    )
    wait_for(
        lambda: any(
            r == "Approved" and "approved by alice" in m for _, r, m in events(k8s, namespace, "iris")
        ),
        what="the Approved Event",
    )
    # `gyre history` tells the same story from status, the run and the Events.
    capsys.readouterr()
    assert main(["history", f"{namespace}/iris"]) == 0
    report = capsys.readouterr().out
    (row,) = [cols for cols in map(str.split, report.splitlines()) if cols[1:2] == ["serving"]]
    assert row[2:8] == ["stable", "iris-a", sha[:12], "LatestValidated", "manual", "GatesPassed:"]
    assert row[-3:-1] == ["alice", "at"]
    assert "AwaitingApproval" in report and "Approved" in report
