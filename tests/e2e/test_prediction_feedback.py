"""Prediction ids and ground-truth feedback on a real cluster: a ModelDeployment's pods answer every prediction
with an id, log each row under its id, and write the labels sent to their feedback endpoint under the
deployment's feedback prefix on the artifact store (docs/serving.md, "Prediction ids" and "Feedback")."""

from __future__ import annotations

import json

import pytest
from e2ekube import Kube
from test_ml_loop import iris_run_spec

from gyre.store.layout import feedback_dir, predictions_dir
from gyre.store.store import PVC_MOUNT_PATH

pytestmark = pytest.mark.e2e

# Runs in a pod of the project image with the artifacts PVC mounted: predicts over the Service in v2 (with an id,
# two rows) and v1 (no id: the server makes one), sends labels for those predictions (plus an invalid and a
# duplicate item), then waits for the pods' background writers and reports what the store holds.
CLIENT = r"""
import glob, gzip, json, os, time, urllib.request

base, model, root = os.environ["BASE"], os.environ["MODEL"], os.environ["ROOT"]

def post(path, body):
    request = urllib.request.Request(
        base + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.headers, json.loads(response.read())

rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
tensor = {"name": "input-0", "shape": [2, 4], "datatype": "FP64", "data": rows[0] + rows[1]}
_, v2 = post(f"/v2/models/{model}/infer", {"id": "e2e-batch", "inputs": [tensor]})
headers, _ = post(f"/v1/models/{model}:predict", {"instances": rows[:1]})
v1_id = headers["Gyre-Prediction-Id"]
labels = [
    {"id": "e2e-batch.0", "label": 0},
    {"id": "e2e-batch.1", "label": 2},
    {"id": v1_id, "label": 0},
    {"id": "e2e-batch.0", "label": 1},
    {"id": "e2e-other", "label": "setosa"},
]
_, answer = post(f"/v2/models/{model}/feedback", labels)

def read(prefix):
    out = []
    for path in glob.glob(f"{root}/{prefix}/**/*.jsonl.gz", recursive=True):
        with open(path, "rb") as fh:
            out += [json.loads(line) for line in gzip.decompress(fh.read()).splitlines()]
    return out

wanted = {"e2e-batch.0", "e2e-batch.1", v1_id}
deadline = time.time() + 120
while True:
    logged = {row["id"]: row for row in read(os.environ["PREDICTIONS"]) if row["id"] in wanted}
    labelled = read(os.environ["FEEDBACK"])
    if (set(logged) == wanted and len(labelled) >= 3) or time.time() > deadline:
        break
    time.sleep(1)
report = {
    "v2_id": v2["id"],
    "v1_id": v1_id,
    "answer": {k: answer[k] for k in ("accepted", "invalid", "duplicate", "unknown_class")},
    "logged": {k: v["inputs"] for k, v in logged.items()},
    "labels": sorted([row["id"], row["label"], sorted(row)] for row in labelled),
}
with open("/dev/termination-log", "w") as fh:
    fh.write(json.dumps(report))
"""


def test_served_predictions_carry_ids_and_feedback_lands_in_the_store(kube: Kube) -> None:
    kube.create("Dataset", "iris", {"source": {"uri": "builtin://iris"}, "target": "target"})
    kube.wait_phase("Dataset", "iris", {"Ready"}, timeout=300)
    kube.create("TrainingRun", "iris-v1", iris_run_spec(10), labels={"app": "iris"})
    kube.create(
        "ModelDeployment",
        "iris",
        {
            "promotion": {"policy": "LatestValidated", "selector": {"matchLabels": {"app": "iris"}}},
            "predictionLogging": {"sampleRate": 1.0, "flushIntervalSeconds": 2, "maxBatchRows": 100},
        },
    )
    kube.wait_condition("ModelDeployment", "iris", "Ready", "True", timeout=500)
    env = {
        "BASE": f"http://iris.{kube.namespace}.svc.cluster.local",
        "MODEL": "iris",
        "ROOT": PVC_MOUNT_PATH,
        "PREDICTIONS": predictions_dir(kube.namespace, "iris"),
        "FEEDBACK": feedback_dir(kube.namespace, "iris"),
    }
    report = json.loads(
        kube.run_pod("feedback-client", ["python3", "-c", CLIENT], env=env, mount_artifacts=True, timeout=300)
    )
    v1_id = report["v1_id"]
    assert report["v2_id"] == "e2e-batch"
    assert len(v1_id) == 32, report
    # Each row of the v2 batch is logged under {id}.{row}, with its own inputs.
    assert list(report["logged"]["e2e-batch.0"].values()) == [5.1, 3.5, 1.4, 0.2], report
    assert list(report["logged"]["e2e-batch.1"].values()) == [6.7, 3.0, 5.2, 2.3], report
    assert v1_id in report["logged"], report
    assert report["answer"] == {"accepted": 3, "invalid": 1, "duplicate": 1, "unknown_class": 0}, report
    fields = ["id", "label", "ts"]
    assert report["labels"] == sorted(
        [["e2e-batch.0", 0, fields], ["e2e-batch.1", 2, fields], [v1_id, 0, fields]]
    ), report
