"""DriftMonitor spec.performance against the real API server: admission of the new fields, the status the operator
writes surviving the schema, the check Job the operator builds (run here as its pod would run it), and a
retrain's lineage naming its cause.

No pod runs in this tier (the image is never pulled): the TrainingRuns and Datasets the monitor reads are given the
status their Jobs would report, and the check Job the operator created is run here (kubetest.run_job, as
tests/integration/test_object_store.py runs the profiling and training Jobs), with its pod's environment and the
artifact claim's content in a temporary directory.
"""

from __future__ import annotations

import gzip
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kubernetes
import numpy as np
import orjson
import pandas as pd
import pytest
from kopf.testing import KopfRunner
from kubernetes.client.exceptions import ApiException
from kubetest import INSTANCE_LABEL, Custom, read_or_none, ready_dataset, rejection, run_job, wait_for

from gyre.api.common import Condition
from gyre.api.driftmonitor import DriftMonitorStatus, MetricPerformance, PerformanceStatus
from gyre.drift.monitor_run import CheckReport
from gyre.drift.profile import build_profile
from gyre.drift.window import write_prediction_batch
from gyre.store.layout import feedback_batch_path
from gyre.training.artifact import write_model_dir
from gyre.training.manifest import ModelManifest
from gyre.training.trainer import TrainOptions, train_model

pytestmark = pytest.mark.integration

ELSEWHERE = {
    INSTANCE_LABEL: "elsewhere"
}  # objects no operator in this test reconciles: only their status matters
FP = "sha256:" + "b" * 64


def monitor_spec(**performance: Any) -> dict[str, Any]:
    return {"deploymentRef": {"name": "churn"}, "schedule": {"interval": "1h"}, "performance": performance}


def test_performance_defaults_are_applied_and_invalid_settings_are_refused_with_clear_messages(
    custom: Custom,
) -> None:
    created = custom.create(
        "driftmonitors", "DriftMonitor", "defaults", monitor_spec(window={}, tolerance={})
    )
    perf = created["spec"]["performance"]
    assert (perf["enabled"], perf["retrain"]) == (True, True)
    assert perf["window"] == {"maxAge": "24h", "maxRows": 100000, "minLabelledRows": 200}
    assert perf["tolerance"] == {"relativeDrop": 0.05, "confidence": 0.95}

    refused = [
        (monitor_spec(metrics=["accuracy", "rmse"]), "metrics must all be classification metrics"),
        (monitor_spec(tolerance={"maxDrop": {"precision": 0.1}}), "maxDrop keys must be metric names"),
        (monitor_spec(tolerance={"maxDrop": {"accuracy": -0.1}}), "should be greater than or equal to 0"),
        (monitor_spec(window={"minLabelledRows": 5}), "should be greater than or equal to 10"),
        (monitor_spec(metrics=["precision"]), "Unsupported value"),
    ]
    for n, (spec, message) in enumerate(refused):
        with pytest.raises(ApiException) as caught:
            custom.create("driftmonitors", "DriftMonitor", f"bad-{n}", spec)
        assert message in rejection(caught.value), spec


def test_the_performance_status_the_operator_writes_is_kept_by_the_schema(custom: Custom) -> None:
    """The API server prunes status fields its schema does not list: every field of status.performance and the
    Degraded condition must come back as written."""
    custom.create("driftmonitors", "DriftMonitor", "schema", monitor_spec())
    status = DriftMonitorStatus(
        pending_retrain_cause="performance",
        performance=PerformanceStatus(
            verdict="degraded",
            check=3,
            message="accuracy 0.7 vs baseline 0.9",
            model_version="churn-a",
            metrics=[
                MetricPerformance(
                    name="accuracy",
                    value=0.7,
                    low=0.66,
                    high=0.74,
                    baseline=0.9,
                    drop=0.2,
                    drop_low=0.15,
                    tolerance=0.045,
                    degraded=True,
                )
            ],
            labelled_rows=400,
            prediction_rows=1000,
            baseline_test_rows=500,
            label_delay_seconds=60.5,
            label_delay_p90_seconds=300.0,
            unknown_ids=2,
            duplicate_labels=1,
            wrong_type_labels=3,
            consecutive_degraded=2,
            report_uri="file:///var/lib/gyre/artifacts/drift/ns/schema/00000003.performance.json",
        ),
        conditions=[
            Condition(
                type="Degraded",
                status="True",
                reason="PerformanceDegraded",
                message="check 3: accuracy 0.7 vs baseline 0.9",
                last_transition_time=datetime(2026, 12, 1, tzinfo=UTC),
                observed_generation=1,
            )
        ],
    ).model_dump(mode="json", by_alias=True, exclude_none=True)
    stored = custom.patch_status("driftmonitors", "schema", status)["status"]
    assert stored == status


def write_store(root: Path, namespace: str, profile_path: str, model_path: str) -> ModelManifest:
    """What the artifact claim holds when the check runs: the reference profile, a model trained (by Gyre's
    trainer) on the rule `churned = x > 0`, a prediction log with ids whose inputs are distributed as in training,
    and labels that follow a new rule, `x > 0.7`. Returns the model's manifest."""
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, 3000)
    train = pd.DataFrame({"x": x, "churned": (x > 0).astype(int)})
    (root / profile_path).parent.mkdir(parents=True)
    (root / profile_path).write_bytes(build_profile(train[["x"]]).to_json().encode())
    result = train_model(train, TrainOptions(target="churned", estimator="LogisticRegression"))
    manifest = write_model_dir(root / model_path, result, name="churn", dataset=None, onnx=False)
    now = time.time()
    live = rng.normal(0, 1, 1500)
    predicted = result.pipeline.predict(pd.DataFrame({"x": live}))
    rows = [
        {
            "id": f"r{i}",
            "ts": now - 300 + i * 0.1,
            "model": "churn",
            "version": "churn-a",
            "inputs": {"x": float(v)},
            "outputs": {"predict": int(p)},
        }
        for i, (v, p) in enumerate(zip(live, predicted, strict=True))
    ]
    write_prediction_batch("file://" + str(root), namespace, "churn", "srv-0", rows, now_ms=int(now * 1000))
    labels = b"".join(
        orjson.dumps({"id": f"r{i}", "label": int(v > 0.7)}) + b"\n" for i, v in enumerate(live)
    )
    batch = root / feedback_batch_path(namespace, "churn", int(now * 1000), "srv-0")
    batch.parent.mkdir(parents=True)
    batch.write_bytes(gzip.compress(labels))
    return manifest


def test_the_check_job_of_a_monitor_with_performance_reports_concept_drift(
    operator: KopfRunner, custom: Custom, k8s: kubernetes.client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    custom.create("datasets", "Dataset", "churn", {"source": {"uri": "builtin://iris"}}, labels=ELSEWHERE)
    columns = [{"name": n, "kind": "numeric", "dtype": "float64"} for n in ("x", "churned")]
    custom.patch_status(
        "datasets",
        "churn",
        {"phase": "Ready", "fingerprint": FP, "version": 1, "columns": columns, "target": "churned"},
    )
    spec = {"datasetRef": {"name": "churn"}, "estimator": {"kind": "LogisticRegression"}, "target": "churned"}
    custom.create("trainingruns", "TrainingRun", "churn-a", spec, labels=ELSEWHERE)
    done = "2026-12-01T00:00:00Z"
    custom.patch_status(
        "trainingruns",
        "churn-a",
        {
            "phase": "Succeeded",
            "completionTime": done,
            # What the training pod reports on the pvc:// store: the model directory under the claim's mount.
            "modelUri": f"file:///var/lib/gyre/artifacts/models/{namespace}/churn-a",
            "modelSha256": "c" * 64,
            "datasetFingerprint": FP,
            "metrics": {"accuracy": 0.96, "f1_macro": 0.96},
            "conditions": [
                {
                    "type": "Validated",
                    "status": "True",
                    "reason": "GatesPassed",
                    "message": "no gates",
                    "lastTransitionTime": done,
                }
            ],
        },
    )
    custom.create(
        "modeldeployments", "ModelDeployment", "churn", {"model": {"trainingRunRef": {"name": "churn-a"}}}
    )
    custom.create(
        "driftmonitors",
        "DriftMonitor",
        "churn",
        monitor_spec(window={"minLabelledRows": 100}, tolerance={"maxDrop": {"accuracy": 0.02}}),
    )

    read_job = kubernetes.client.BatchV1Api(k8s).read_namespaced_job
    job = wait_for(
        lambda: read_or_none(k8s, read_job, "churn-check-1", namespace),
        what="the first check Job",
        timeout=90,
    )
    container = job["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    model_path = args[args.index("--performance-baseline") + 1]
    assert model_path == f"models/{namespace}/churn-a", "the model is read through the claim, by its path"
    assert args[args.index("--model-version") + 1] == "churn-a"
    assert any(e["name"] == "GYRE_PERFORMANCE_CONFIG" for e in container["env"])

    claim = tmp_path / "claim"
    manifest = write_store(claim, namespace, args[args.index("--profile") + 1], model_path)
    message, _, err = run_job(job, {}, tmp_path, pvc_mount=claim)
    assert message, err[-2000:]
    report = CheckReport.model_validate_json(message)
    assert report.verdict == "no_drift", "the inputs are distributed as in training"
    perf = report.performance
    assert perf is not None and perf.verdict == "degraded", (perf, err[-2000:])
    assert perf.labelled_rows == 1500 and perf.model_version == "churn-a"
    assert perf.baseline_test_rows == manifest.test_rows == 600
    accuracy = next(m for m in perf.metrics if m.name == "accuracy")
    assert manifest.metrics["accuracy"] > 0.95
    assert accuracy.degraded and accuracy.baseline == pytest.approx(manifest.metrics["accuracy"], abs=1e-6)


def test_a_retrain_for_degraded_performance_names_its_cause_monitor_and_check_in_lineage(
    operator: KopfRunner, custom: Custom, namespace: str
) -> None:
    ready_dataset(custom, namespace)
    spec = {"datasetRef": {"name": "iris"}, "estimator": {"kind": "RandomForestClassifier"}}
    annotations = {"gyre.dev/trigger": f"drift:{namespace}/churn#4", "gyre.dev/trigger-cause": "performance"}
    custom.create("trainingruns", "TrainingRun", "churn-retrain-4", spec, annotations=annotations)
    lineage = wait_for(
        lambda: (custom.get("trainingruns", "churn-retrain-4").get("status") or {}).get("lineage"),
        what="status.lineage",
    )
    assert lineage["trigger"] == f"drift:{namespace}/churn#4"
    assert (lineage["cause"], lineage["monitor"], lineage["check"]) == ("performance", "churn", 4)
