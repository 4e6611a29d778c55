"""A Dataset built from a deployment's labelled predictions, on a real cluster: predictions logged by the server
under the ids a client chose, labels sent through the feedback endpoint, joined in the profiling pod into a new
versioned table, after the training Dataset's rows; a mergeWith of another schema is refused with the reason."""

from __future__ import annotations

from typing import Any

import pytest
from e2ekube import Kube, condition, wait_for
from labelled_traffic import LABELLED_TRAFFIC, summary, traffic_env

pytestmark = pytest.mark.e2e

IRIS_COLUMNS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)", "target"]


def test_labelled_predictions_become_a_versioned_dataset_after_the_training_rows(kube: Kube) -> None:
    kube.create("Dataset", "iris", {"source": {"uri": "builtin://iris"}, "target": "target"})
    kube.create(
        "TrainingRun",
        "iris-v1",
        {
            "datasetRef": {"name": "iris"},
            "target": "target",
            "estimator": {"kind": "RandomForestClassifier", "params": {"n_estimators": 10}},
        },
    )
    kube.create(
        "ModelDeployment",
        "iris",
        {
            "model": {"trainingRunRef": {"name": "iris-v1"}},
            "predictionLogging": {"sampleRate": 1.0, "flushIntervalSeconds": 2, "maxBatchRows": 500},
        },
    )
    merged: dict[str, Any] = {"deploymentRef": {"name": "iris"}, "minRows": 100}
    kube.create(
        "Dataset",
        "iris-feedback",
        {"source": {"feedback": merged | {"mergeWith": {"datasetRef": {"name": "iris"}}}}},
    )
    kube.create("Dataset", "wine", {"source": {"uri": "builtin://wine"}, "target": "target"})
    kube.create(
        "Dataset",
        "bad-merge",
        {"source": {"feedback": merged | {"mergeWith": {"datasetRef": {"name": "wine"}}}}},
    )
    kube.wait_condition("ModelDeployment", "iris", "Ready", "True", timeout=600)

    base = f"http://iris.{kube.namespace}.svc.cluster.local"
    env = traffic_env(base, "iris", rows=300, data="iris", rule="iris", prefix="client", seed=3)
    sent = summary(kube.run_pod("traffic", ["python3", "-c", LABELLED_TRAFFIC], env=env))
    assert sent["feedbackExit"] == 0, sent

    # Labels arrive after the first read: a re-read, as a DriftMonitor (or a person) asks for it, picks them up.
    def reread(name: str) -> None:
        stamp = f"2026-12-02T09:{len(name):02d}:00Z"
        kube.patch("Dataset", name, {"metadata": {"annotations": {"gyre.dev/refresh-requested-at": stamp}}})

    wait_for(lambda: (kube.get("Dataset", "iris-feedback").get("status") or {}).get("phase") in ("Pending", "Ready"),
             timeout=300, what="the first read of the feedback Dataset")  # fmt: skip
    reread("iris-feedback")
    ready = kube.wait_phase("Dataset", "iris-feedback", {"Ready"}, timeout=300)["status"]
    assert ready["rows"] == 150 + 300 and ready["fingerprint"].startswith("sha256:"), ready
    assert [c["name"] for c in ready["columns"]] == IRIS_COLUMNS and ready["target"] == "target"
    assert ready["profileUri"].endswith("/profile.json")

    wait_for(lambda: (kube.get("Dataset", "bad-merge").get("status") or {}).get("phase") in ("Pending", "Failed"),
             timeout=300, what="the first read of the mismatched Dataset")  # fmt: skip
    reread("bad-merge")

    def refused() -> dict[str, Any] | None:
        obj = kube.get("Dataset", "bad-merge")
        cond = condition(obj, "Ready") or {}
        return cond if cond.get("reason") == "SchemaMismatch" else None

    cond = wait_for(refused, timeout=300, what="the schema mismatch to be reported")
    assert "the feedback table lacks" in cond["message"] and "alcohol" in cond["message"], cond

    # The Event is posted after the status write that carries the condition, so it may land a moment later.
    def mismatch_events() -> list[tuple[str, str]] | None:
        return [(t, m) for t, r, m in kube.events("bad-merge") if r == "SchemaMismatch"] or None

    warnings = wait_for(mismatch_events, timeout=60, what="the SchemaMismatch Event")
    assert warnings[0][0] == "Warning", warnings
