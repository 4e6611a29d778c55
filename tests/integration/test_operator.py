"""The Dataset and TrainingRun controllers, run by kopf, against the real API server.

Pods never run in this tier (the Jobs' image is never pulled), so the tests assert what the operator writes: Jobs with
deterministic names, owner references and the agreed in-pod contract, status conditions, and Events.
"""

from __future__ import annotations

import json
from typing import Any

import kubernetes
import pytest
from kopf.testing import KopfRunner
from kubetest import (
    INSTANCE,
    INSTANCE_LABEL,
    NEVER_PULLED,
    Custom,
    condition,
    events,
    read_or_none,
    ready_dataset,
    running_operator,
    wait_for,
)

pytestmark = pytest.mark.integration

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64


def batch(k8s: kubernetes.client.ApiClient) -> kubernetes.client.BatchV1Api:
    return kubernetes.client.BatchV1Api(k8s)


def job(k8s: kubernetes.client.ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    return read_or_none(k8s, batch(k8s).read_namespaced_job, name, namespace)


def jobs_of(k8s: kubernetes.client.ApiClient, namespace: str, owner: str) -> list[dict[str, Any]]:
    items = batch(k8s).list_namespaced_job(namespace, label_selector=f"gyre.dev/owner-name={owner}").items
    return [k8s.sanitize_for_serialization(j) for j in items]


def env_of(job_obj: dict[str, Any]) -> dict[str, str]:
    container = job_obj["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", "") for e in container.get("env") or []}


def test_dataset_gets_a_profiling_job_and_status(
    operator: KopfRunner, custom: Custom, k8s: kubernetes.client.ApiClient, namespace: str
) -> None:
    ds = custom.create(
        "datasets", "Dataset", "iris", {"source": {"uri": "builtin://iris"}, "target": "target"}
    )
    uid = ds["metadata"]["uid"]

    status = wait_for(
        lambda: (
            (custom.get("datasets", "iris").get("status") or {}).get("jobName")
            and custom.get("datasets", "iris")
        ),
        what="Dataset status.jobName",
    )["status"]
    assert status["phase"] == "Profiling"
    assert status["observedGeneration"] == 1
    ready = condition(custom.get("datasets", "iris"), "Ready")
    assert ready is not None and (ready["status"], ready["reason"]) == ("False", "Profiling")
    assert "builtin://iris" in ready["message"]

    name = status["jobName"]
    assert name.startswith("iris-profile-")
    got = job(k8s, namespace, name)
    assert got is not None
    (ref,) = got["metadata"]["ownerReferences"]
    assert (ref["kind"], ref["name"], ref["uid"], ref["controller"], ref["blockOwnerDeletion"]) == (
        "Dataset",
        "iris",
        uid,
        True,
        True,
    )
    assert got["metadata"]["labels"][INSTANCE_LABEL] == INSTANCE
    container = got["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == NEVER_PULLED
    assert container["args"][:2] == ["profile", "--store"]
    assert container["args"][container["args"].index("--target") + 1] == "target"
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert json.loads(env_of(got)["GYRE_DATASET_SPEC"])["source"]["uri"] == "builtin://iris"
    # The pvc:// store: the operator created the namespace's claim and the Job mounts it.
    claim = kubernetes.client.CoreV1Api(k8s).read_namespaced_persistent_volume_claim(
        "gyre-artifacts", namespace
    )
    assert claim.metadata.labels["app.kubernetes.io/managed-by"] == "gyre-operator"
    volumes = got["spec"]["template"]["spec"]["volumes"]
    assert {"name": "artifacts", "persistentVolumeClaim": {"claimName": "gyre-artifacts"}} in volumes
    wait_for(lambda: ("Normal", "Profiling") in [e[:2] for e in events(k8s, namespace, "iris")], what="Event")

    # A spec change is a new generation: a new Job with a new deterministic name.
    custom.patch("datasets", "iris", {"spec": {"source": {"uri": "builtin://wine"}}})
    newer = wait_for(
        lambda: (s := custom.get("datasets", "iris")["status"]).get("observedGeneration") == 2 and s,
        what="observedGeneration 2",
    )
    assert newer["jobName"] != name and newer["jobName"].startswith("iris-profile-")
    assert job(k8s, namespace, newer["jobName"]) is not None
    assert len(jobs_of(k8s, namespace, "iris")) == 2


def test_trainingrun_waits_for_a_missing_dataset(
    operator: KopfRunner, custom: Custom, k8s: kubernetes.client.ApiClient, namespace: str
) -> None:
    custom.create(
        "trainingruns",
        "TrainingRun",
        "orphan",
        {"datasetRef": {"name": "nope"}, "estimator": {"kind": "LogisticRegression"}},
    )
    cond = wait_for(
        lambda: condition(custom.get("trainingruns", "orphan"), "DatasetReady"), what="DatasetReady"
    )
    assert (cond["status"], cond["reason"]) == ("False", "DatasetNotFound")
    assert "Dataset nope does not exist" in cond["message"]
    assert custom.get("trainingruns", "orphan")["status"]["phase"] == "Pending"
    wait_for(
        lambda: ("Warning", "DatasetNotFound") in [e[:2] for e in events(k8s, namespace, "orphan")],
        what="Warning Event DatasetNotFound",
    )
    assert jobs_of(k8s, namespace, "orphan") == []


def test_trainingrun_creates_its_job_on_a_ready_dataset(
    operator: KopfRunner, custom: Custom, k8s: kubernetes.client.ApiClient, namespace: str
) -> None:
    ready_dataset(custom, namespace)
    spec = {
        "datasetRef": {"name": "iris", "fingerprint": A},
        "estimator": {"kind": "RandomForestClassifier", "params": {"n_estimators": 20}},
        "gates": [{"metric": "accuracy", "min": 0.9}],
    }
    run = custom.create(
        "trainingruns", "TrainingRun", "iris-rf", spec, annotations={"gyre.dev/trigger": "manual"}
    )
    status = wait_for(
        lambda: (
            (s := custom.get("trainingruns", "iris-rf").get("status") or {}).get("phase") == "Running" and s
        ),
        what="TrainingRun Running",
    )
    assert status["jobName"] == "iris-rf-train"
    # The pin selected the older version recorded in the Dataset's history.
    assert (status["datasetFingerprint"], status["datasetVersion"]) == (A, 1)
    assert status["lineage"]["dataset"] == "iris"
    assert status["primaryMetric"] == "accuracy"
    ready = condition(custom.get("trainingruns", "iris-rf"), "DatasetReady")
    assert ready is not None and ready["status"] == "True"

    got = job(k8s, namespace, "iris-rf-train")
    assert got is not None
    assert got["metadata"]["ownerReferences"][0]["uid"] == run["metadata"]["uid"]
    args = got["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--run") + 1] == f"{namespace}/iris-rf"
    assert args[args.index("--dataset-fingerprint") + 1] == A
    assert f"/{'a' * 64}/data.parquet" in args[args.index("--dataset-uri") + 1]
    assert json.loads(env_of(got)["GYRE_TRAINING_SPEC"])["estimator"]["params"] == {"n_estimators": 20}
    assert got["spec"]["backoffLimit"] == 0
    wait_for(
        lambda: ("Normal", "Started") in [e[:2] for e in events(k8s, namespace, "iris-rf")], what="Started"
    )


def test_search_is_an_indexed_job(
    operator: KopfRunner, custom: Custom, k8s: kubernetes.client.ApiClient, namespace: str
) -> None:
    ready_dataset(custom, namespace)
    spec = {
        "datasetRef": {"name": "iris"},
        "estimator": {"kind": "GradientBoostingClassifier"},
        "search": {
            "strategy": "grid",
            "parallelism": 2,
            "space": {"n_estimators": {"values": [10, 20, 40]}, "max_depth": {"values": [2, 3]}},
        },
    }
    custom.create("trainingruns", "TrainingRun", "iris-search", spec)
    got = wait_for(lambda: job(k8s, namespace, "iris-search-train"), what="search Job")
    assert got["spec"]["completionMode"] == "Indexed"
    assert (got["spec"]["completions"], got["spec"]["parallelism"]) == (6, 2)
    assert got["spec"]["backoffLimitPerIndex"] == 0
    assert got["spec"]["maxFailedIndexes"] == 5


def test_pinned_fingerprint_mismatch_fails_with_a_clear_condition(
    operator: KopfRunner, custom: Custom, k8s: kubernetes.client.ApiClient, namespace: str
) -> None:
    ready_dataset(custom, namespace)
    pin = "sha256:" + "c" * 64
    custom.create(
        "trainingruns",
        "TrainingRun",
        "pinned",
        {"datasetRef": {"name": "iris", "fingerprint": pin}, "estimator": {"kind": "SVC"}},
    )
    failed = wait_for(
        lambda: condition(custom.get("trainingruns", "pinned"), "Failed"), what="Failed condition"
    )
    assert (failed["status"], failed["reason"]) == ("True", "FingerprintMismatch")
    assert pin in failed["message"] and B in failed["message"]
    assert custom.get("trainingruns", "pinned")["status"]["phase"] == "Failed"
    wait_for(
        lambda: ("Warning", "FingerprintMismatch") in [e[:2] for e in events(k8s, namespace, "pinned")],
        what="Warning Event FingerprintMismatch",
    )
    assert jobs_of(k8s, namespace, "pinned") == []


def test_semantically_invalid_spec_fails_without_a_crash_loop(
    operator: KopfRunner, custom: Custom, k8s: kubernetes.client.ApiClient, namespace: str
) -> None:
    # Admitted (CEL cannot see `values`), rejected by the operator's model: InvalidSpec, once.
    spec = {
        "datasetRef": {"name": "iris"},
        "estimator": {"kind": "SVC"},
        "search": {
            "strategy": "random",
            "trials": 2,
            "space": {"C": {"values": [1, 2], "low": 0.1, "high": 1}},
        },
    }
    custom.create("trainingruns", "TrainingRun", "confused", spec)
    failed = wait_for(
        lambda: condition(custom.get("trainingruns", "confused"), "Failed"), what="Failed condition"
    )
    assert failed["reason"] == "InvalidSpec"
    assert "give either values, or both low and high" in failed["message"]
    assert "spec.search.space.C" in failed["message"]
    wait_for(
        lambda: ("Warning", "InvalidSpec") in [e[:2] for e in events(k8s, namespace, "confused")],
        what="Warning Event InvalidSpec",
    )


def test_a_job_that_never_runs_fails_the_dataset_with_the_reason(
    operator: KopfRunner, custom: Custom, k8s: kubernetes.client.ApiClient, namespace: str
) -> None:
    # The real Job controller fails the Job at its deadline; the pod never ran (its image is never pulled).
    custom.create(
        "datasets", "Dataset", "slow", {"source": {"uri": "builtin://iris"}, "activeDeadlineSeconds": 10}
    )
    ready = wait_for(
        lambda: (
            (c := condition(custom.get("datasets", "slow"), "Ready")) and c["reason"] != "Profiling" and c
        ),
        timeout=120,
        what="the profiling Job to fail",
    )
    assert custom.get("datasets", "slow")["status"]["phase"] == "Failed"
    assert (ready["status"], ready["reason"]) == ("False", "DeadlineExceeded")
    # The Job controller deletes the pod at the deadline, so the Job's own message is what remains to show.
    assert "deadline" in ready["message"]
    wait_for(
        lambda: ("Warning", "DeadlineExceeded") in [e[:2] for e in events(k8s, namespace, "slow")],
        what="Warning Event DeadlineExceeded",
    )


def test_a_training_job_that_never_runs_fails_the_run(
    operator: KopfRunner, custom: Custom, k8s: kubernetes.client.ApiClient, namespace: str
) -> None:
    ready_dataset(custom, namespace)
    spec = {"datasetRef": {"name": "iris"}, "estimator": {"kind": "SVC"}, "activeDeadlineSeconds": 10}
    custom.create("trainingruns", "TrainingRun", "stuck", spec)
    failed = wait_for(
        lambda: condition(custom.get("trainingruns", "stuck"), "Failed"), timeout=120, what="Failed"
    )
    assert (failed["status"], failed["reason"]) == ("True", "DeadlineExceeded")
    status = custom.get("trainingruns", "stuck")["status"]
    assert status["phase"] == "Failed"
    assert status.get("completionTime")
    running = condition(custom.get("trainingruns", "stuck"), "Running")
    assert running is not None and running["status"] == "False"
    wait_for(
        lambda: ("Warning", "Failed") in [e[:2] for e in events(k8s, namespace, "stuck")],
        what="Warning Event Failed",
    )


def test_refresh_interval_starts_a_new_profiling_job(
    operator: KopfRunner, custom: Custom, k8s: kubernetes.client.ApiClient, namespace: str
) -> None:
    custom.create(
        "datasets",
        "Dataset",
        "fresh",
        {"source": {"uri": "builtin://iris"}, "target": "target", "refreshInterval": "1m"},
    )
    first = wait_for(
        lambda: (custom.get("datasets", "fresh").get("status") or {}).get("jobName"), what="first Job"
    )
    # As the profiler reports success (pods do not run in this tier), last read long ago.
    custom.patch_status(
        "datasets",
        "fresh",
        {
            "phase": "Ready",
            "fingerprint": B,
            "version": 1,
            "dataUri": "file:///x/data.parquet",
            "lastProfileTime": "2026-01-01T00:00:00Z",
        },
    )
    refreshing = custom.wait_condition("datasets", "fresh", "Refreshing", "True", timeout=120)
    assert refreshing["reason"] == "RefreshDue"
    status = custom.get("datasets", "fresh")["status"]
    assert status["jobName"] != first and status["jobName"].startswith("fresh-profile-")
    # The current version stays usable while the source is re-read.
    assert status["phase"] == "Ready" and status["version"] == 1
    assert job(k8s, namespace, status["jobName"]) is not None


def test_a_job_deleted_while_the_operator_was_away_fails_the_run_on_resume(
    custom: Custom, k8s: kubernetes.client.ApiClient, namespace: str
) -> None:
    with running_operator(namespace):
        ready_dataset(custom, namespace)
        custom.create(
            "trainingruns",
            "TrainingRun",
            "orphaned",
            {"datasetRef": {"name": "iris"}, "estimator": {"kind": "SVC"}},
        )
        wait_for(lambda: job(k8s, namespace, "orphaned-train"), what="training Job")
        wait_for(
            lambda: custom.get("trainingruns", "orphaned").get("status", {}).get("phase") == "Running",
            what="Running",
        )
    batch(k8s).delete_namespaced_job("orphaned-train", namespace, propagation_policy="Background")
    wait_for(lambda: job(k8s, namespace, "orphaned-train") is None, what="the Job to be gone")
    with running_operator(namespace):
        failed = wait_for(lambda: condition(custom.get("trainingruns", "orphaned"), "Failed"), what="Failed")
    assert (failed["status"], failed["reason"]) == ("True", "JobMissing")
    assert "orphaned-train was deleted before it finished" in failed["message"]
    assert custom.get("trainingruns", "orphaned")["status"]["phase"] == "Failed"


def test_a_profiling_job_deleted_while_the_operator_was_away_is_recreated(
    custom: Custom, k8s: kubernetes.client.ApiClient, namespace: str
) -> None:
    with running_operator(namespace):
        custom.create("datasets", "Dataset", "iris", {"source": {"uri": "builtin://iris"}})
        name = wait_for(
            lambda: (custom.get("datasets", "iris").get("status") or {}).get("jobName"), what="Job"
        )
        wait_for(lambda: job(k8s, namespace, name), what="the Job")
        uid = job(k8s, namespace, name)["metadata"]["uid"]  # type: ignore[index]
    batch(k8s).delete_namespaced_job(name, namespace, propagation_policy="Background")
    wait_for(lambda: job(k8s, namespace, name) is None, what="the Job to be gone")
    with running_operator(namespace):
        again = wait_for(lambda: job(k8s, namespace, name), what="the Job to be recreated")
    assert again["metadata"]["uid"] != uid
    assert custom.get("datasets", "iris")["status"]["phase"] == "Profiling"
