"""The ModelDeployment and DriftMonitor controllers, run by kopf, against the real API server.

No pod runs here (the image is never pulled), so the TrainingRuns these controllers read are given the status their
training Jobs would report, and are labelled for another operator instance so the operator under test leaves them
alone. What is asserted is what the operator writes: server Deployments and Services, check Jobs, status, Events.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import kubernetes
import pytest
from kopf.testing import KopfRunner
from kubetest import INSTANCE_LABEL, Custom, condition, events, read_or_none, wait_for

pytestmark = pytest.mark.integration

# A TrainingRun no operator in this test reconciles: only its status (written below) matters.
ELSEWHERE = {INSTANCE_LABEL: "elsewhere"}


def trained_run(
    custom: Custom,
    name: str,
    *,
    finished: str,
    passed: bool = True,
    labels: dict[str, str] | None = None,
    dataset: str = "iris",
) -> dict[str, Any]:
    """A TrainingRun with the status of a finished training Job; `passed` says whether its gates passed."""
    spec = {"datasetRef": {"name": dataset}, "estimator": {"kind": "RandomForestClassifier"}}
    custom.create("trainingruns", "TrainingRun", name, spec, labels={**ELSEWHERE, **(labels or {})})
    sha = hashlib.sha256(name.encode()).hexdigest()
    status = {
        "phase": "Succeeded",
        "completionTime": finished,
        "modelUri": f"pvc://gyre-artifacts/models/{name}",
        "modelSha256": sha,
        "datasetFingerprint": "sha256:" + "b" * 64,
        "conditions": [
            {
                "type": "Validated",
                "status": "True" if passed else "False",
                "reason": "GatesPassed" if passed else "GatesFailed",
                "message": "accuracy 0.97 >= 0.9" if passed else "accuracy 0.41 < 0.9",
                "lastTransitionTime": finished,
            }
        ],
    }
    return custom.patch_status("trainingruns", name, status)


def deployment(k8s: kubernetes.client.ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    return read_or_none(k8s, kubernetes.client.AppsV1Api(k8s).read_namespaced_deployment, name, namespace)


def server_env(obj: dict[str, Any]) -> dict[str, str]:
    container = obj["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", "") for e in container.get("env") or [] if "value" in e}


def test_promotion_serves_the_newest_validated_run_and_never_a_failed_one(
    operator: KopfRunner, custom: Custom, k8s: kubernetes.client.ApiClient, namespace: str
) -> None:
    old = trained_run(custom, "iris-old", finished="2026-11-01T00:00:00Z", labels={"app": "iris"})
    trained_run(custom, "iris-bad", finished="2026-11-02T00:00:00Z", passed=False, labels={"app": "iris"})
    trained_run(custom, "wine-new", finished="2026-11-03T00:00:00Z", labels={"app": "wine"})
    md = custom.create(
        "modeldeployments",
        "ModelDeployment",
        "iris",
        {
            "promotion": {"policy": "LatestValidated", "selector": {"matchLabels": {"app": "iris"}}},
            "replicas": 1,
        },
    )

    served = wait_for(lambda: deployment(k8s, namespace, "iris"), what="the server Deployment")
    env = server_env(served)
    # The newer run failed its gates and the newest is not selected: the older validated run is served.
    assert env["GYRE_MODEL_SHA256"] == old["status"]["modelSha256"]
    assert env["GYRE_MODEL_DIR"] == old["status"]["modelUri"]
    assert served["metadata"]["ownerReferences"][0]["uid"] == md["metadata"]["uid"]
    pod_labels = served["spec"]["template"]["metadata"]["labels"]
    svc = kubernetes.client.CoreV1Api(k8s).read_namespaced_service("iris", namespace)
    assert svc.metadata.owner_references[0].uid == md["metadata"]["uid"]
    assert svc.spec.selector.items() <= pod_labels.items()

    # Its pods can never start here: the deployment must say so and must not read Ready.
    degraded = wait_for(
        lambda: (
            (c := condition(custom.get("modeldeployments", "iris"), "Degraded"))
            and c["status"] == "True"
            and c
        ),
        what="Degraded=True while the server cannot start",
        timeout=120,
    )
    assert degraded["reason"] == "ServerFailing" and "ErrImageNeverPull" in degraded["message"]
    status = custom.get("modeldeployments", "iris")["status"]
    assert condition(custom.get("modeldeployments", "iris"), "Ready")["status"] == "False"  # type: ignore[index]
    assert status["modelVersion"]["trainingRun"] == "iris-old"
    assert status["observedGeneration"] == md["metadata"]["generation"]
    wait_for(
        lambda: ("Warning", "ServerFailing") in [e[:2] for e in events(k8s, namespace, "iris")],
        what="a ServerFailing Warning Event",
    )

    # A new run that passes its gates rolls out by itself.
    new = trained_run(custom, "iris-new", finished="2026-11-04T00:00:00Z", labels={"app": "iris"})
    wait_for(
        lambda: (
            server_env(deployment(k8s, namespace, "iris") or served)["GYRE_MODEL_SHA256"]
            == new["status"]["modelSha256"]
        ),
        what="the Deployment to move to the new run",
    )
    wait_for(
        lambda: custom.get("modeldeployments", "iris")["status"]["modelVersion"]["trainingRun"] == "iris-new",
        what="status.modelVersion to name the new run",
    )
    rollouts = [e[2] for e in events(k8s, namespace, "iris") if e[1] == "ModelRollout"]
    assert any("iris-new" in message for message in rollouts), rollouts


def test_serving_a_run_that_failed_its_gates_is_refused_with_the_reason(
    operator: KopfRunner, custom: Custom, k8s: kubernetes.client.ApiClient, namespace: str
) -> None:
    trained_run(custom, "iris-bad", finished="2026-11-02T00:00:00Z", passed=False)
    custom.create(
        "modeldeployments", "ModelDeployment", "iris", {"model": {"trainingRunRef": {"name": "iris-bad"}}}
    )
    degraded = wait_for(
        lambda: condition(custom.get("modeldeployments", "iris"), "Degraded"), what="a Degraded condition"
    )
    assert (degraded["status"], degraded["reason"]) == ("True", "GatesFailed")
    assert "accuracy 0.41 < 0.9" in degraded["message"]
    assert custom.get("modeldeployments", "iris")["status"]["phase"] == "Degraded"
    wait_for(
        lambda: ("Warning", "GatesFailed") in [e[:2] for e in events(k8s, namespace, "iris")],
        what="a GatesFailed Warning Event",
    )
    assert deployment(k8s, namespace, "iris") is None


def test_drift_monitor_waits_for_its_deployment_then_runs_a_check_job(
    operator: KopfRunner, custom: Custom, k8s: kubernetes.client.ApiClient, namespace: str
) -> None:
    monitor = custom.create(
        "driftmonitors",
        "DriftMonitor",
        "iris",
        {"deploymentRef": {"name": "iris"}, "schedule": {"interval": "1h"}, "window": {"minRows": 50}},
    )
    waiting = wait_for(
        lambda: condition(custom.get("driftmonitors", "iris"), "Ready"), what="a Ready condition"
    )
    assert (waiting["status"], waiting["reason"]) == ("False", "DeploymentNotFound")
    assert "ModelDeployment iris does not exist" in waiting["message"]

    # The reference is the Dataset version the served run was trained on.
    custom.create(
        "datasets",
        "Dataset",
        "iris",
        {"source": {"uri": "builtin://iris"}, "target": "target"},
        labels=ELSEWHERE,
    )
    columns = [{"name": n, "kind": "numeric", "dtype": "float64"} for n in ("sepal", "petal", "target")]
    custom.patch_status(
        "datasets",
        "iris",
        {
            "phase": "Ready",
            "fingerprint": "sha256:" + "b" * 64,
            "version": 1,
            "columns": columns,
            "target": "target",
        },
    )
    trained_run(custom, "iris-a", finished="2026-11-01T00:00:00Z")
    custom.create(
        "modeldeployments", "ModelDeployment", "iris", {"model": {"trainingRunRef": {"name": "iris-a"}}}
    )

    read_job = kubernetes.client.BatchV1Api(k8s).read_namespaced_job
    job = wait_for(
        lambda: read_or_none(k8s, read_job, "iris-check-1", namespace), what="the first check Job", timeout=90
    )
    assert job["metadata"]["ownerReferences"][0]["uid"] == monitor["metadata"]["uid"]
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:2] == ["drift", "run"]
    assert args[args.index("--deployment") + 1] == "iris"
    assert args[args.index("--check") + 1] == "1"
    assert "b" * 64 in args[args.index("--profile") + 1]
    status = wait_for(
        lambda: (s := custom.get("driftmonitors", "iris").get("status") or {}).get("jobName") and s,
        what="status.jobName",
    )
    assert status["jobName"] == "iris-check-1"
    assert status["referenceFingerprint"] == "sha256:" + "b" * 64
    ready = condition(custom.get("driftmonitors", "iris"), "Ready")
    assert ready is not None and (ready["status"], ready["reason"]) == ("True", "Checking")


def test_a_canary_gets_its_share_of_pods_behind_one_service_and_rolls_back_by_spec(
    operator: KopfRunner, custom: Custom, k8s: kubernetes.client.ApiClient, namespace: str
) -> None:
    stable = trained_run(custom, "iris-a", finished="2026-11-01T00:00:00Z")
    canary = trained_run(custom, "iris-b", finished="2026-11-02T00:00:00Z")
    custom.create(
        "modeldeployments",
        "ModelDeployment",
        "iris",
        {
            "model": {"trainingRunRef": {"name": "iris-a"}},
            "replicas": 4,
            "canary": {"model": {"trainingRunRef": {"name": "iris-b"}}, "weight": 25},
        },
    )
    main = wait_for(lambda: deployment(k8s, namespace, "iris"), what="the stable Deployment")
    side = wait_for(lambda: deployment(k8s, namespace, "iris-canary"), what="the canary Deployment")
    # 25% of 4 pods: one canary pod, three stable ones, all behind the one Service.
    assert (main["spec"]["replicas"], side["spec"]["replicas"]) == (3, 1)
    assert server_env(main)["GYRE_MODEL_SHA256"] == stable["status"]["modelSha256"]
    assert server_env(side)["GYRE_MODEL_SHA256"] == canary["status"]["modelSha256"]
    selector = kubernetes.client.CoreV1Api(k8s).read_namespaced_service("iris", namespace).spec.selector
    for track in (main, side):
        assert selector.items() <= track["spec"]["template"]["metadata"]["labels"].items()
    wait_for(
        lambda: (
            ((custom.get("modeldeployments", "iris").get("status") or {}).get("canary") or {}).get("weight")
            == 25
        ),
        what="status.canary",
    )

    # Rolling the canary back is an edit of the spec: its Deployment goes, the stable track takes all pods.
    custom.patch("modeldeployments", "iris", {"spec": {"canary": None}})
    wait_for(lambda: deployment(k8s, namespace, "iris-canary") is None, what="the canary Deployment to go")
    wait_for(
        lambda: (deployment(k8s, namespace, "iris") or {}).get("spec", {}).get("replicas") == 4,
        what="the stable track to take all 4 pods",
    )
    wait_for(
        lambda: not (custom.get("modeldeployments", "iris").get("status") or {}).get("canary"),
        what="status.canary to clear",
    )


def serve_iris(custom: Custom) -> None:
    """A ModelDeployment serving a run trained on a profiled Dataset: what a DriftMonitor needs to start checks."""
    custom.create(
        "datasets",
        "Dataset",
        "iris",
        {"source": {"uri": "builtin://iris"}, "target": "target"},
        labels=ELSEWHERE,
    )
    columns = [{"name": n, "kind": "numeric", "dtype": "float64"} for n in ("sepal", "petal", "target")]
    custom.patch_status(
        "datasets",
        "iris",
        {"phase": "Ready", "fingerprint": "sha256:" + "b" * 64, "version": 1, "columns": columns},
    )
    trained_run(custom, "iris-a", finished="2026-11-01T00:00:00Z")
    custom.create(
        "modeldeployments", "ModelDeployment", "iris", {"model": {"trainingRunRef": {"name": "iris-a"}}}
    )


def finish_job(k8s: kubernetes.client.ApiClient, namespace: str, name: str, *, succeeded: bool) -> None:
    """Write the terminal status the Job controller would write once the pod exited (no pod runs here)."""
    batch = kubernetes.client.BatchV1Api(k8s)
    job = batch.read_namespaced_job(name, namespace)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    start = job.status.start_time.strftime("%Y-%m-%dT%H:%M:%SZ") if job.status.start_time else now
    criteria, terminal = ("SuccessCriteriaMet", "Complete") if succeeded else ("FailureTarget", "Failed")
    conditions = [
        {
            "type": t,
            "status": "True",
            "reason": "Test",
            "message": "set by the test",
            "lastTransitionTime": now,
        }
        for t in (criteria, terminal)
    ]
    status: dict[str, Any] = {
        "startTime": start,
        "active": 0,
        "ready": 0,
        "terminating": 0,
        "succeeded" if succeeded else "failed": 1,
        "conditions": conditions,
    }
    if succeeded:
        status["completionTime"] = now
    batch.patch_namespaced_job_status(name, namespace, {"status": status})


def test_a_short_interval_monitor_keeps_only_its_history_limit_of_finished_check_jobs(
    operator: KopfRunner, custom: Custom, k8s: kubernetes.client.ApiClient, namespace: str
) -> None:
    serve_iris(custom)
    custom.create(
        "driftmonitors",
        "DriftMonitor",
        "iris",
        {
            "deploymentRef": {"name": "iris"},
            "schedule": {"interval": "1s"},
            "successfulJobsHistoryLimit": 2,
            "failedJobsHistoryLimit": 1,
        },
    )
    batch = kubernetes.client.BatchV1Api(k8s)

    def check_jobs() -> dict[str, dict[str, Any]]:
        items = batch.list_namespaced_job(namespace, label_selector="gyre.dev/owner-name=iris").items
        return {j.metadata.name: k8s.sanitize_for_serialization(j) for j in items}

    # Checks 2 and 5 fail, the others succeed: each is finished as soon as it exists, as a fast check would be.
    failing = {2, 5}

    def checks_collected() -> int:
        return int((custom.get("driftmonitors", "iris").get("status") or {}).get("checkCount") or 0)

    for n in range(1, 7):
        name = f"iris-check-{n}"
        # wait_for calls these lambdas before the loop moves on, so the loop variable cannot go stale.
        wait_for(lambda: name in check_jobs(), what=f"check Job {n}", timeout=90)  # noqa: B023
        finish_job(k8s, namespace, name, succeeded=n not in failing)
        # The monitor collects it (no pod reports, so the check itself reads CheckFailed) and starts the next.
        wait_for(lambda: checks_collected() >= n, what=f"check {n} collected")  # noqa: B023
        pointed = (custom.get("driftmonitors", "iris").get("status") or {}).get("jobName")
        assert pointed is None or pointed in check_jobs(), "the Job status points at is never pruned"

    def kept() -> list[str] | None:
        names = sorted(check_jobs(), key=lambda s: int(s.rsplit("-", 1)[1]))
        return names if names == ["iris-check-4", "iris-check-5", "iris-check-6", "iris-check-7"] else None

    # The newest two that succeeded (4, 6), the last that failed (5), and check 7, still running.
    wait_for(kept, what="finished check Jobs pruned to 2 succeeded + 1 failed", timeout=60)
    status = custom.get("driftmonitors", "iris")["status"]
    assert status["checkCount"] == 6 and status["jobName"] == "iris-check-7"
    ready = condition(custom.get("driftmonitors", "iris"), "Ready")
    assert ready is not None and ready["reason"] in ("CheckFailed", "Checking")
