"""The ML loop on a real cluster, as a user drives it: kubectl-style objects in, real pods of gyre:dev doing the work.

1. A builtin Dataset and a TrainingRun reach Ready/Succeeded with the metrics an in-process fit of the same seed gives.
2. A ModelDeployment serves the newest validated run through its Service; a second passing run rolls out under a
   steady client load with no failed request; a run that fails its gates is never promoted.
3. A DriftMonitor reports no drift on in-distribution traffic, detects shifted traffic, retrains on the Dataset's
   new data, the new model rolls out, and the cooldown and daily cap hold. A real Prometheus saw it all: the drift and
   retrain-cap alerts fire, every dashboard panel has data, and the dashboard is drawn from it
   (tests/dashboard_render.py).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kubernetes
import numpy as np
import pytest
from e2ekube import Kube, condition, wait_for
from kubernetes.stream import stream
from labelled_traffic import LABELLED_TRAFFIC, summary, traffic_env
from prometheus import Prometheus, queries_without_data
from sklearn.datasets import load_iris

import dashboard_render

pytestmark = pytest.mark.e2e

FEATURES = list(load_iris(as_frame=True).frame.columns[:-1])
SCREENSHOT = os.environ.get("GYRE_DASHBOARD_SCREENSHOT")
"""Set to a path to keep the dashboard drawn at the end of the drift test (docs/dashboard.png was made this way)."""


def local_fit(tmp_path: Path, *args: str) -> dict[str, Any]:
    """The same trainer in this process's venv (`gyre train --local`): the reference the cluster must reproduce."""
    out = tmp_path / "local-model"
    cmd = [sys.executable, "-m", "gyre.cli", "train", "--local", "--out", str(out), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    manifest: dict[str, Any] = json.loads((out / "manifest.json").read_text())
    return manifest


def iris_run_spec(
    n_estimators: int, *, min_accuracy: float = 0.8, seed: int = 42, max_depth: int = 4
) -> dict[str, Any]:
    return {
        "datasetRef": {"name": "iris"},
        "target": "target",
        "estimator": {
            "kind": "RandomForestClassifier",
            "params": {"n_estimators": n_estimators, "max_depth": max_depth},
        },
        "split": {"testSize": 0.2, "seed": seed},
        "gates": [{"metric": "accuracy", "min": min_accuracy}],
    }


def predict_url(kube: Kube, deployment: str) -> str:
    return f"http://{deployment}.{kube.namespace}.svc.cluster.local/v1/models/{deployment}:predict"


def served_run(kube: Kube, deployment: str) -> str | None:
    status = kube.get("ModelDeployment", deployment).get("status") or {}
    return (status.get("modelVersion") or {}).get("trainingRun")


_CARD_PROBE = """
import json, os, sys
md = open(sys.argv[1], encoding="utf-8").read().splitlines()
found = {"title": md[0], "accuracy": [l for l in md if l.startswith("| accuracy |")], "html": os.path.getsize(sys.argv[2])}
open("/dev/termination-log", "w").write(json.dumps(found))
"""


def assert_card_in_store(kube: Kube, status: dict[str, Any], run: str) -> None:
    """The status links card.md and card.html beside the model, and the store holds them (read from a pod that
    mounts the artifact volume, as the training pod did)."""
    card = status["card"]
    model = status["modelUri"].rstrip("/")
    assert (card["markdownUri"], card["htmlUri"]) == (f"{model}/card.md", f"{model}/card.html")
    relative = model[model.rfind("/models/") + 1 :]
    root = "/var/lib/gyre/artifacts/"
    found = json.loads(
        kube.run_pod(
            f"{run}-card",
            ["python3", "-c", _CARD_PROBE, f"{root}{relative}/card.md", f"{root}{relative}/card.html"],
            mount_artifacts=True,
        )
    )
    assert found["title"] == f"# Model card: {kube.namespace}/{run}"
    accuracy = f"{status['metrics']['accuracy']:.4f}"
    metric_row, gate_row = found["accuracy"]  # the metric with its interval, then the run's accuracy gate
    assert metric_row.startswith(f"| accuracy | {accuracy} | [") and metric_row.endswith("| higher |")
    assert gate_row == f"| accuracy | min 0.8 | {accuracy} | passed |"
    assert found["html"] > 1000


def test_dataset_and_training_run_reproduce_an_in_process_fit(kube: Kube, tmp_path: Path) -> None:
    kube.create("Dataset", "iris", {"source": {"uri": "builtin://iris"}, "target": "target"})
    dataset = kube.wait_phase("Dataset", "iris", {"Ready"}, timeout=300)
    status = dataset["status"]
    assert status["fingerprint"].startswith("sha256:") and status["version"] == 1 and status["rows"] == 150

    kube.create("TrainingRun", "iris-rf", iris_run_spec(30))
    run = kube.wait_phase("TrainingRun", "iris-rf", {"Succeeded"}, timeout=400)["status"]
    assert condition(kube.get("TrainingRun", "iris-rf"), "Validated")["status"] == "True"  # type: ignore[index]
    assert run["datasetFingerprint"] == status["fingerprint"]
    assert run["modelSha256"] and run["modelUri"]
    assert_card_in_store(kube, run, "iris-rf")

    local = local_fit(
        tmp_path,
        "--dataset", "builtin://iris", "--target", "target", "--estimator", "RandomForestClassifier",
        "--param", "n_estimators=30", "--param", "max_depth=4", "--seed", "42", "--test-size", "0.2",
    )  # fmt: skip
    assert local["dataset"]["fingerprint"] == status["fingerprint"], "same data, same fingerprint"
    for name, value in local["metrics"].items():
        if name in run["metrics"]:
            assert run["metrics"][name] == pytest.approx(value, abs=1e-12), name

    # Re-reading an unchanged source keeps the version: versions follow content, not reads.
    before = kube.get("Dataset", "iris")["status"]["lastProfileTime"]
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    kube.patch("Dataset", "iris", {"metadata": {"annotations": {"gyre.dev/refresh-requested-at": stamp}}})
    wait_for(
        lambda: kube.get("Dataset", "iris")["status"].get("lastProfileTime") != before,
        timeout=300,
        what="the requested re-read of the source",
    )
    again = kube.wait_phase("Dataset", "iris", {"Ready"})["status"]
    assert again["version"] == 1 and again["fingerprint"] == status["fingerprint"]


def test_serving_rollout_has_no_failed_request_and_gates_hold(kube: Kube) -> None:
    kube.create("Dataset", "iris", {"source": {"uri": "builtin://iris"}, "target": "target"})
    kube.create("TrainingRun", "iris-a", iris_run_spec(20), labels={"app": "iris"})
    kube.create(
        "ModelDeployment",
        "iris",
        {
            "promotion": {"policy": "LatestValidated", "selector": {"matchLabels": {"app": "iris"}}},
            "replicas": 2,
            "server": {"maxConnections": 200, "shutdownTimeoutSeconds": 20},
        },
    )
    kube.wait_phase("TrainingRun", "iris-a", {"Succeeded"}, timeout=400)
    kube.wait_condition("ModelDeployment", "iris", "Ready", "True", timeout=300)
    assert served_run(kube, "iris") == "iris-a"
    assert_server_settings_reach_the_server(kube)

    rows = load_iris(as_frame=True).frame[FEATURES].iloc[[0, 50, 100]]
    body = {"instances": [dict(zip(FEATURES, map(float, r), strict=True)) for r in rows.to_numpy()]}
    check = kube.load("check-predict", predict_url(kube, "iris"), body, seconds=2, workers=1)
    assert set(check["codes"]) == {"200"}, check
    predictions = json.loads(check["bodies"]["200"])["predictions"]
    assert predictions == [0, 1, 2], predictions

    # A second passing run rolls out while clients keep calling: not one request may fail.
    wait_load = kube.start_load("steady-load", predict_url(kube, "iris"), body, seconds=90, workers=4)
    kube.create("TrainingRun", "iris-b", iris_run_spec(40, seed=7), labels={"app": "iris"})
    kube.wait_phase("TrainingRun", "iris-b", {"Succeeded"}, timeout=400)
    wait_for(lambda: served_run(kube, "iris") == "iris-b", timeout=120, what="promotion of iris-b")
    kube.wait_condition("ModelDeployment", "iris", "Progressing", "False", timeout=300)
    report = wait_load()
    assert report["errors"] == {} and set(report["codes"]) == {"200"}, report
    assert report["codes"]["200"] > 50, report

    # A run that fails its gates (a single stump cannot reach 99% on three classes) finishes, but is never served.
    kube.create(
        "TrainingRun", "iris-bad", iris_run_spec(1, min_accuracy=0.99, max_depth=1), labels={"app": "iris"}
    )
    kube.wait_phase("TrainingRun", "iris-bad", {"Succeeded"}, timeout=400)
    assert condition(kube.get("TrainingRun", "iris-bad"), "Validated")["status"] == "False"  # type: ignore[index]
    for _ in range(3):  # across several reconcile periods of the ModelDeployment (5 s)
        time.sleep(6)
        assert served_run(kube, "iris") == "iris-b"
    reasons = {reason for _, reason, _ in kube.events("iris")}
    assert "ModelRollout" in reasons
    assert_least_privilege(kube, "iris")


def assert_server_settings_reach_the_server(kube: Kube) -> None:
    """spec.server is what the running `gyre serve` parsed (its start-up line), and the pod's grace period covers
    preStop (5 s), the close phase (3 s), the 20 s wait for requests and the last log batches (10 s)."""
    pods = kube.core.list_namespaced_pod(
        kube.namespace, label_selector="app.kubernetes.io/component=model-server"
    )
    running = [p for p in pods.items if p.status.phase == "Running"]
    assert running
    for pod in running:
        assert pod.spec.termination_grace_period_seconds == 38
        log = kube.core.read_namespaced_pod_log(pod.metadata.name, kube.namespace, container="server")
        assert "limits: 200 connections, header 15s, body 30s, 1048576 body bytes, shutdown 20s" in log, log[
            -2000:
        ]


# Run in a server pod: the root filesystem refuses writes, /tmp (an emptyDir) takes them; and what is in /tmp.
PROBE = """
import json, os
def write(path):
    try:
        with open(path, "w") as f:
            f.write("x")
        os.unlink(path)
        return "ok"
    except OSError as exc:
        return exc.strerror
print("probe", json.dumps({"root": write("/probe"), "venv": write("/opt/gyre/probe"), "tmp": write("/tmp/probe"),
                  "inTmp": sorted(os.listdir("/tmp"))}))
"""


def assert_least_privilege(kube: Kube, deployment: str) -> None:
    """After a whole train/serve/roll-out cycle: the operator's ServiceAccount (the chart's RBAC) was never
    refused, every pod ran with a read-only root filesystem, and the server has its NetworkPolicy."""
    for pod in kube.core.list_namespaced_pod("gyre-system").items:
        log = kube.core.read_namespaced_pod_log(pod.metadata.name, "gyre-system")
        assert "Forbidden" not in log and "Not enough permissions" not in log, log[-3000:]
    pods = kube.core.list_namespaced_pod(
        kube.namespace, label_selector="app.kubernetes.io/managed-by=gyre-operator"
    )
    components = {p.metadata.labels["app.kubernetes.io/component"] for p in pods.items}
    assert {"model-server", "trainer", "profiler"} <= components, components
    for pod in pods.items:
        assert all(c.security_context.read_only_root_filesystem for c in pod.spec.containers), (
            pod.metadata.name
        )
    server = next(
        p
        for p in pods.items
        if p.metadata.labels["app.kubernetes.io/component"] == "model-server" and p.status.phase == "Running"
    )
    out = stream(
        kube.core.connect_get_namespaced_pod_exec, server.metadata.name, kube.namespace,
        command=["python", "-c", PROBE], stderr=True, stdout=True, stdin=False, tty=False,
    )  # fmt: skip
    # A prefix, or the client library's exec stream parses the JSON line itself and returns a Python repr.
    probe = json.loads(out.strip().splitlines()[-1].removeprefix("probe "))
    print(f"server pod filesystem: {probe}")
    assert (probe["root"], probe["venv"], probe["tmp"]) == (
        "Read-only file system",
        "Read-only file system",
        "ok",
    )
    networking = kubernetes.client.NetworkingV1Api(kube.api)
    policy = kube.api.sanitize_for_serialization(
        networking.read_namespaced_network_policy(deployment, kube.namespace)
    )
    owner = kube.get("ModelDeployment", deployment)["metadata"]["uid"]
    assert policy["metadata"]["ownerReferences"][0]["uid"] == owner
    assert policy["spec"]["ingress"][0]["from"][0] == {"podSelector": {}}


WRITE_SOURCE = """
import os, sys
import numpy as np
import pandas as pd
from sklearn.datasets import load_iris
frame = load_iris(as_frame=True).frame
shift = float(sys.argv[1])
if shift:
    # New data: the same classes, measured on a shifted population.
    rng = np.random.default_rng(1)
    extra = frame.sample(300, replace=True, random_state=1).reset_index(drop=True)
    for col in frame.columns[:-1]:
        extra[col] = extra[col] + shift + rng.normal(0, 0.05, len(extra))
    frame = pd.concat([frame, extra], ignore_index=True)
os.makedirs("/var/lib/gyre/artifacts/sources", exist_ok=True)
tmp = "/var/lib/gyre/artifacts/sources/.iris.csv.tmp"
frame.to_csv(tmp, index=False)
os.replace(tmp, "/var/lib/gyre/artifacts/sources/iris.csv")
print(len(frame))
"""


def test_drift_triggers_a_guarded_retrain_that_rolls_out(
    kube: Kube, prometheus: Prometheus, tmp_path: Path
) -> None:
    started = time.time()
    # The PVC exists once the operator has created any Gyre child in the namespace; a Dataset does that.
    kube.create("Dataset", "bootstrap", {"source": {"uri": "builtin://iris"}, "target": "target"})
    kube.wait_phase("Dataset", "bootstrap", {"Ready"}, timeout=300)
    kube.run_pod("write-source-1", ["python3", "-c", WRITE_SOURCE, "0"], mount_artifacts=True)
    kube.create(
        "Dataset",
        "iris",
        {"source": {"uri": "file:///var/lib/gyre/artifacts/sources/iris.csv"}, "target": "target"},
    )
    first = kube.wait_phase("Dataset", "iris", {"Ready"}, timeout=300)["status"]
    kube.create("TrainingRun", "iris-v1", iris_run_spec(20), labels={"app": "iris"})
    kube.create(
        "ModelDeployment",
        "iris",
        {
            "promotion": {"policy": "LatestValidated", "selector": {"matchLabels": {"app": "iris"}}},
            "predictionLogging": {"sampleRate": 1.0, "flushIntervalSeconds": 2, "maxBatchRows": 100},
        },
    )
    kube.wait_condition("ModelDeployment", "iris", "Ready", "True", timeout=500)
    kube.create(
        "DriftMonitor",
        "iris",
        {
            "deploymentRef": {"name": "iris"},
            "schedule": {"interval": "20s"},
            "window": {"maxRows": 200, "maxAge": "1h", "minRows": 50},
            "retrain": {"enabled": True, "consecutiveChecks": 2, "cooldown": "1h", "maxPerDay": 1},
            # Live performance too, so the dashboard's performance panels have data; it never retrains here.
            "performance": {"window": {"minLabelledRows": 50}, "retrain": False},
        },
    )
    frame = load_iris(as_frame=True).frame
    rng = np.random.default_rng(0)

    def traffic(name: str, shift: float) -> None:
        """At least 200 logged rows (one request of 200 instances, repeated for a moment)."""
        sample = frame[FEATURES].sample(200, replace=True, random_state=int(rng.integers(1 << 30)))
        body = {
            "instances": [dict(zip(FEATURES, map(float, r + shift), strict=True)) for r in sample.to_numpy()]
        }
        out = kube.load(name, predict_url(kube, "iris"), body, seconds=0.2, workers=1)
        assert set(out["codes"]) == {"200"}, out

    # In-distribution traffic: a check runs and finds no drift.
    traffic("calm", 0.0)
    calm = kube.wait_condition("DriftMonitor", "iris", "Drifted", "False", timeout=180)["status"]
    assert calm["verdict"] == "no_drift" and calm["rowsChecked"] >= 50, calm
    assert not calm.get("lastRetrainRun")

    # Labelled in-distribution traffic (true classes, sent as feedback): the served model performs as it did on its
    # test split.
    base = f"http://iris.{kube.namespace}.svc.cluster.local"
    env = traffic_env(base, "iris", rows=200, data="iris", rule="iris", prefix="labelled")
    sent = summary(kube.run_pod("labelled", ["python3", "-c", LABELLED_TRAFFIC], env=env))
    assert sent["feedbackExit"] == 0, sent

    def performance_verdict() -> dict[str, Any] | None:
        perf = (kube.get("DriftMonitor", "iris").get("status") or {}).get("performance") or {}
        return perf if perf.get("verdict") in {"ok", "degraded"} else None

    perf = wait_for(performance_verdict, timeout=180, what="a performance verdict on the labelled traffic")
    assert perf["verdict"] == "ok" and perf["labelledRows"] >= 50, perf

    # Shifted traffic and new data at the source: drift, then (after two drifted checks) one retrain.
    kube.run_pod("write-source-2", ["python3", "-c", WRITE_SOURCE, "1.5"], mount_artifacts=True)
    traffic("shifted", 1.5)
    drifted = kube.wait_condition("DriftMonitor", "iris", "Drifted", "True", timeout=180)["status"]
    assert any(f["drifted"] for f in drifted["features"]), drifted
    # The HTML report lies beside the JSON one, and every feature carries its effect size (preset gyre).
    assert drifted["htmlReportUri"] == drifted["reportUri"].removesuffix(".json") + ".html", drifted
    assert all(f.get("effect") is not None for f in drifted["features"] if f.get("status") == "ok"), drifted
    reasons = {r for _, r, _ in kube.events("iris")}
    assert "DriftDetected" in reasons

    def retrain_run() -> str | None:
        return (kube.get("DriftMonitor", "iris").get("status") or {}).get("lastRetrainRun")

    retrain = wait_for(retrain_run, timeout=300, what="a retraining TrainingRun")
    run = kube.get("TrainingRun", retrain)
    assert run["metadata"]["annotations"]["gyre.dev/trigger"].startswith(f"drift:{kube.namespace}/iris#")
    assert "fingerprint" not in run["spec"]["datasetRef"], "a retrain must read the Dataset's latest version"
    done = kube.wait_phase("TrainingRun", retrain, {"Succeeded"}, timeout=400)["status"]
    new_version = kube.get("Dataset", "iris")["status"]
    assert new_version["version"] == 2 and new_version["fingerprint"] != first["fingerprint"]
    assert done["datasetFingerprint"] == new_version["fingerprint"]
    wait_for(lambda: served_run(kube, "iris") == retrain, timeout=180, what="the retrained model to roll out")

    # Drift persists (traffic moves further than the new data), but the cooldown allows no second retrain.
    traffic("further-shifted", 4.0)
    count = kube.get("DriftMonitor", "iris")["status"]["checkCount"]
    wait_for(
        lambda: kube.get("DriftMonitor", "iris")["status"]["checkCount"] >= count + 2,
        timeout=180,
        what="two more checks",
    )
    status = kube.get("DriftMonitor", "iris")["status"]
    assert status["lastRetrainRun"] == retrain and status["retrainsToday"] == 1
    retrains = [r for r in kube.list("TrainingRun") if r["metadata"]["name"].startswith("iris-retrain-")]
    assert len(retrains) == 1, [r["metadata"]["name"] for r in retrains]
    assert condition(kube.get("DriftMonitor", "iris"), "Drifted")["status"] == "True"  # type: ignore[index]
    held = condition(kube.get("DriftMonitor", "iris"), "Retraining")
    assert held is not None and held["reason"] == "Cooldown", held

    # Without the cooldown, the daily cap (maxPerDay 1) holds the next retrain back.
    kube.patch("DriftMonitor", "iris", {"spec": {"retrain": {"cooldown": "1s"}}})

    def capped() -> dict[str, Any] | None:
        cond = condition(kube.get("DriftMonitor", "iris"), "Retraining")
        return cond if cond is not None and cond["reason"] == "DailyCap" else None

    wait_for(capped, timeout=180, what="the daily cap to hold a retrain back")
    retrains = [r for r in kube.list("TrainingRun") if r["metadata"]["name"].startswith("iris-retrain-")]
    assert len(retrains) == 1, [r["metadata"]["name"] for r in retrains]

    # A real Prometheus, discovering the pods by Kubernetes service discovery, saw it all: the drift and retrain-cap
    # alerts fire for this monitor, and (after one client error, for the errors-by-code panel) every dashboard panel
    # and every metric an alert reads has data.
    for alert in ("GyreDriftNotResolved", "GyreRetrainCapReached"):
        fired = functools.partial(prometheus.fired, alert, object_namespace=kube.namespace)
        firing = wait_for(fired, timeout=300, what=f"{alert} to fire")
        assert [f["metric"]["monitor"] for f in firing] == ["iris"], firing
    refused = kube.load(
        "bad-request", predict_url(kube, "iris"), {"instances": "no rows"}, seconds=0.2, workers=1
    )
    assert "200" not in refused["codes"], refused
    # The client error reaches Prometheus at its next scrapes (5 s apart); the wait bounds liveness only.
    deadline = time.monotonic() + 60
    missing = queries_without_data(prometheus)
    while missing and time.monotonic() < deadline:
        time.sleep(5)
        missing = queries_without_data(prometheus)
    assert not missing, "\n".join(missing)
    # Counters and histograms come without their `_created` twins (the operator's and this model server's).
    created = prometheus.query(f'{{__name__=~"gyre_.+_created", namespace=~"gyre-system|{kube.namespace}"}}')
    assert not created, [c["metric"]["__name__"] for c in created]

    # The dashboard drawn from this Prometheus over the test's window, for this namespace and deployment: every
    # panel draws series (tests/dashboard_render.py, not Grafana). The checks above match every namespace, where
    # earlier tests' client errors already are; this deployment's first one needs two scrapes before its rate has
    # a point, so the window ends once every panel has series here (the wait bounds liveness only).
    variables = {"namespace": kube.namespace, "deployment": "iris"}
    deadline = time.monotonic() + 60
    while True:
        end = time.time()
        panels = dashboard_render.fetch(prometheus.query_range, started, end, variables=variables)
        if all(p.series for p in panels if p.kind != "row") or time.monotonic() > deadline:
            break
        time.sleep(5)
    page = tmp_path / "dashboard.html"
    page.write_text(dashboard_render.render(panels, started, end, variables=variables))
    seen = dashboard_render.screenshot(page, tmp_path / "dashboard.png")
    print(f"dashboard: {page} and {tmp_path / 'dashboard.png'}")
    if SCREENSHOT:
        shutil.copyfile(tmp_path / "dashboard.png", SCREENSHOT)
    assert seen["errors"] == [] and seen["external"] == 0, seen
    empty = [p["title"] for p in seen["panels"] if p["nodata"] or not p["drawn"]]
    assert not empty, empty
