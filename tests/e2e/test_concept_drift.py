"""Concept drift on a real cluster: the inputs stay exactly as in training, the relation to the outcome changes.

1. A model trained on iris is served.
2. Clients send iris rows (distributed exactly like the training Dataset) and, as ground truth, labels from a
   changed rule (class + 1 mod 3), through the feedback endpoint (`gyre feedback send`).
3. The DriftMonitor's input-drift check finds no drift; its performance check finds the model Degraded, and the real
   Prometheus fires GyreModelPerformanceDegraded.
4. It asks the Dataset built from the deployment's labelled predictions to re-read, and retrains on it; the run
   passes its gates and rolls out.
5. On new traffic under the same rule, the monitor itself reports the new model's accuracy back above its tolerance.
"""

from __future__ import annotations

from typing import Any

import pytest
from e2ekube import Kube, condition, wait_for
from labelled_traffic import LABELLED_TRAFFIC, summary, traffic_env
from prometheus import Prometheus

pytestmark = pytest.mark.e2e

GATE = 0.8


def run_spec(dataset: str) -> dict[str, Any]:
    return {
        "datasetRef": {"name": dataset},
        "target": "target",
        "estimator": {"kind": "RandomForestClassifier", "params": {"n_estimators": 20, "max_depth": 4}},
        "split": {"testSize": 0.2, "seed": 42},
        "gates": [{"metric": "accuracy", "min": GATE}],
    }


def served_run(kube: Kube) -> str | None:
    return ((kube.get("ModelDeployment", "iris").get("status") or {}).get("modelVersion") or {}).get(
        "trainingRun"
    )


def performance(kube: Kube) -> dict[str, Any]:
    return dict((kube.get("DriftMonitor", "iris").get("status") or {}).get("performance") or {})


def accuracy(perf: dict[str, Any]) -> dict[str, Any]:
    return next(m for m in perf.get("metrics") or [] if m["name"] == "accuracy")


def send(kube: Kube, name: str, *, rows: int, seed: int) -> dict[str, Any]:
    base = f"http://iris.{kube.namespace}.svc.cluster.local"
    env = traffic_env(base, "iris", rows=rows, data="iris", rule="iris-shifted", prefix=name, seed=seed)
    return summary(kube.run_pod(name, ["python3", "-c", LABELLED_TRAFFIC], env=env))


def test_concept_drift_is_caught_by_labels_and_a_retrain_on_production_data_recovers(
    kube: Kube, prometheus: Prometheus
) -> None:
    kube.create("Dataset", "iris", {"source": {"uri": "builtin://iris"}, "target": "target"})
    kube.create("TrainingRun", "iris-v1", run_spec("iris"), labels={"app": "iris"})
    kube.create(
        "ModelDeployment",
        "iris",
        {
            "promotion": {"policy": "LatestValidated", "selector": {"matchLabels": {"app": "iris"}}},
            "predictionLogging": {"sampleRate": 1.0, "flushIntervalSeconds": 2, "maxBatchRows": 500},
        },
    )
    # The Dataset of the deployment's labelled predictions: it waits for the deployment's model, then for labels.
    kube.create(
        "Dataset",
        "iris-feedback",
        {"source": {"feedback": {"deploymentRef": {"name": "iris"}, "maxAge": "1h", "minRows": 200}}},
    )
    kube.wait_condition("ModelDeployment", "iris", "Ready", "True", timeout=600)
    assert served_run(kube) == "iris-v1"
    waiting = kube.wait_condition("Dataset", "iris-feedback", "Ready", "False", timeout=120)
    assert condition(waiting, "Ready")["reason"] in ("FeedbackNotReady", "Profiling", "InsufficientFeedback")  # type: ignore[index]

    # Traffic like the training data, labelled by the changed rule: the served model is almost always wrong.
    before = send(kube, "traffic-1", rows=400, seed=1)
    assert before["feedbackExit"] == 0 and before["accuracy"] < 0.2, before

    kube.create(
        "DriftMonitor",
        "iris",
        {
            "deploymentRef": {"name": "iris"},
            "schedule": {"interval": "15s"},
            "window": {"maxRows": 2000, "maxAge": "1h", "minRows": 50},
            "performance": {"window": {"maxAge": "1h", "minLabelledRows": 100}},
            "retrain": {
                "enabled": True,
                "consecutiveChecks": 1,
                "cooldown": "1h",
                "maxPerDay": 1,
                "template": {"spec": {"datasetRef": {"name": "iris-feedback"}}},
            },
        },
    )
    degraded = kube.wait_condition("DriftMonitor", "iris", "Degraded", "True", timeout=300)["status"]
    perf = degraded["performance"]
    assert perf["verdict"] == "degraded" and perf["modelVersion"] == "iris-v1", perf
    assert perf["labelledRows"] >= 100 and accuracy(perf)["value"] < 0.2, perf
    # The inputs did not move: the input-drift check of the same monitor sees nothing.
    assert degraded["verdict"] == "no_drift", degraded
    assert condition(kube.get("DriftMonitor", "iris"), "Drifted")["status"] == "False"  # type: ignore[index]
    # Alerting sees it too (its `for:` shortened in e2e; ALERTS keeps the firing even once the retrain resolves it).
    firing = wait_for(
        lambda: prometheus.fired("GyreModelPerformanceDegraded", object_namespace=kube.namespace),
        timeout=180,
        what="GyreModelPerformanceDegraded to fire",
    )
    assert [f["metric"]["monitor"] for f in firing] == ["iris"], firing

    def retrain_run() -> str | None:
        return (kube.get("DriftMonitor", "iris").get("status") or {}).get("lastRetrainRun")

    retrain = wait_for(retrain_run, timeout=300, what="a retraining TrainingRun")
    run = kube.get("TrainingRun", retrain)
    assert run["spec"]["datasetRef"] == {"name": "iris-feedback"}, run["spec"]
    annotations = run["metadata"]["annotations"]
    assert annotations["gyre.dev/trigger-cause"] == "performance", annotations
    assert annotations["gyre.dev/trigger"].startswith(f"drift:{kube.namespace}/iris#"), annotations

    done = kube.wait_phase("TrainingRun", retrain, {"Succeeded"}, timeout=600)
    assert condition(done, "Validated")["status"] == "True", done["status"]  # type: ignore[index]
    feedback = kube.get("Dataset", "iris-feedback")["status"]
    assert feedback["phase"] == "Ready" and feedback["rows"] >= 200, feedback
    assert [c["name"] for c in feedback["columns"]][-1] == "target", feedback["columns"]
    assert done["status"]["datasetFingerprint"] == feedback["fingerprint"]
    wait_for(lambda: served_run(kube) == retrain, timeout=300, what="the retrained model to roll out")
    kube.wait_condition("ModelDeployment", "iris", "Progressing", "False", timeout=300)

    # New traffic under the same rule: the new model gets it right, and the monitor says so itself.
    after = send(kube, "traffic-2", rows=400, seed=2)
    assert after["feedbackExit"] == 0 and after["accuracy"] > GATE, after

    def recovered() -> dict[str, Any] | None:
        perf = performance(kube)
        ok = perf.get("verdict") == "ok" and perf.get("modelVersion") == retrain
        return perf if ok else None

    perf = wait_for(recovered, timeout=300, what="the monitor to report the new model's accuracy")
    assert accuracy(perf)["value"] > GATE, perf
    kube.wait_condition("DriftMonitor", "iris", "Degraded", "False", timeout=60)
    reasons = [r for _, r, _ in kube.events("iris")]
    assert {"PerformanceDegraded", "RetrainCreated", "PerformanceRecovered"} <= set(reasons), reasons
    assert "DriftDetected" not in reasons, reasons
