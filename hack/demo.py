"""`make demo`: the whole Gyre loop on the cluster KUBECONFIG names, narrated.

Dataset -> TrainingRun -> ModelDeployment -> predictions -> shifted traffic -> drift -> retrain -> rollout.
It uses the same in-cluster client as the e2e tests, so every request goes through the Service like a user's.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import kubernetes
import numpy as np
from sklearn.datasets import load_iris

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests/e2e"))
from e2ekube import Kube, condition, wait_for  # noqa: E402

NAMESPACE = "gyre-demo"


def say(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def kubectl(*args: str) -> None:
    subprocess.run(["kubectl", "-n", NAMESPACE, *args], check=False)


def main() -> int:
    api = kubernetes.config.new_client_from_config()
    core = kubernetes.client.CoreV1Api(api)
    try:
        core.delete_namespace(NAMESPACE)
        say(f"removing the previous {NAMESPACE} namespace")
        wait_for(
            lambda: NAMESPACE not in {n.metadata.name for n in core.list_namespace().items},
            timeout=180,
            what="namespace deletion",
        )
    except kubernetes.client.exceptions.ApiException as exc:
        if exc.status != 404:
            raise
    core.create_namespace(
        {"metadata": {"name": NAMESPACE, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}
    )
    kube = Kube(api, NAMESPACE, image="gyre:dev")

    say("1. A Dataset (scikit-learn's iris) is profiled and fingerprinted in a Job")
    kubectl("apply", "-f", str(ROOT / "manifests/samples/dataset-iris.yaml"))
    ds = kube.wait_phase("Dataset", "iris", {"Ready"})["status"]
    print(f"   version {ds['version']}, {ds['rows']} rows, {ds['fingerprint']}")

    say("2. A TrainingRun trains a random forest in a Job; gates decide whether it may be served")
    kubectl("apply", "-f", str(ROOT / "manifests/samples/trainingrun-iris-rf.yaml"))
    tr = kube.wait_phase("TrainingRun", "iris-rf", {"Succeeded"}, timeout=600)["status"]
    print(f"   metrics {json.dumps(tr['metrics'])}")
    print(f"   {condition(kube.get('TrainingRun', 'iris-rf'), 'Validated')['message']}")  # type: ignore[index]
    print(
        f"   model {tr['modelUri']} (sha256 {tr['modelSha256'][:16]}..., inference {tr.get('onnx', {}).get('status')})"
    )

    say("3. A ModelDeployment serves the newest validated run (KServe v1 + Open Inference v2)")
    kubectl("apply", "-f", str(ROOT / "manifests/samples/modeldeployment-iris.yaml"))
    kube.wait_condition("ModelDeployment", "iris", "Ready", "True", timeout=600)
    kubectl("get", "gyre")
    features = list(load_iris(as_frame=True).frame.columns[:-1])
    url = f"http://iris.{NAMESPACE}.svc.cluster.local/v1/models/iris:predict"
    body = {"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}
    out = kube.load("demo-predict", url, body, seconds=1, workers=2)
    print(f"   POST {url} {json.dumps(body)}")
    print(f"   -> {out['bodies'].get('200')}   ({out['codes']})")

    say("4. A DriftMonitor watches the live inputs; shifted traffic arrives")
    monitor = {
        "deploymentRef": {"name": "iris"},
        "schedule": {"interval": "20s"},
        "window": {"maxRows": 300, "maxAge": "1h", "minRows": 50},
        "retrain": {"enabled": True, "consecutiveChecks": 2, "cooldown": "30m", "maxPerDay": 3},
    }
    kube.create("DriftMonitor", "iris", monitor)
    frame = load_iris(as_frame=True).frame[features]
    rng = np.random.default_rng(0)
    sample = frame.sample(300, replace=True, random_state=0).to_numpy() + 1.5 + rng.normal(0, 0.1, (300, 4))
    shifted = {"instances": [dict(zip(features, map(float, row), strict=True)) for row in sample]}
    kube.load("demo-shifted", url, shifted, seconds=0.5, workers=1)
    dm = kube.wait_condition("DriftMonitor", "iris", "Drifted", "True", timeout=300)
    print(f"   {condition(dm, 'Drifted')['message']}")  # type: ignore[index]

    say(
        "5. Drift persists: the monitor re-reads the Dataset and retrains; the new run rolls out if it passes"
    )
    run = wait_for(
        lambda: (kube.get("DriftMonitor", "iris").get("status") or {}).get("lastRetrainRun"),
        timeout=300,
        what="a retrain",
    )
    print(f"   created TrainingRun {run}")
    kube.wait_phase("TrainingRun", run, {"Succeeded"}, timeout=600)
    wait_for(
        lambda: (
            ((kube.get("ModelDeployment", "iris").get("status") or {}).get("modelVersion") or {}).get(
                "trainingRun"
            )
            == run
        ),
        timeout=300,
        what="the retrained model to be served",
    )
    kube.wait_condition("ModelDeployment", "iris", "Progressing", "False", timeout=300)
    kubectl("get", "gyre")
    say("Events")
    kubectl(
        "get",
        "events",
        "--field-selector",
        "involvedObject.apiVersion=gyre.dev/v1alpha1",
        "--sort-by",
        ".lastTimestamp",
    )
    print(
        f"\nThe loop closed in namespace {NAMESPACE}. Explore with: eval $(make cluster-env); kubectl -n {NAMESPACE} get gyre"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
