"""A TrainingRun's search logged from real training pods to a real MLflow server on the host, read back through
MLflow's own client; and slices measured in those pods, in status.

The server (tests/mlflowserver.py) listens on every host address for the length of this module; pods reach it
through the test cluster's link (10.213.0.1, docs/cluster.md), which the TrainingRun names in spec.tracking.uri:
the installed operator keeps its settings (no tracking server of its own) for the other e2e tests.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from e2ekube import Kube, condition

from mlflowserver import MlflowServer, mlflow_server

pytestmark = [pytest.mark.e2e, pytest.mark.local_cluster_only]

# The host as pods see it: the local test cluster's end of the veth (hack/cluster/lib.sh HOST_IP).
HOST_FOR_PODS = os.environ.get("GYRE_E2E_HOST_IP", "10.213.0.1")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    with mlflow_server(tmp_path_factory.mktemp("mlflow"), listen="0.0.0.0", hosts=[HOST_FOR_PODS]) as running:
        yield running


def test_a_search_is_logged_as_a_parent_with_a_child_run_per_trial(kube: Kube, server: MlflowServer) -> None:
    kube.create("Dataset", "iris", {"source": {"uri": "builtin://iris"}, "target": "target"})
    spec = {
        "datasetRef": {"name": "iris"},
        "estimator": {"kind": "DecisionTreeClassifier"},
        "search": {"strategy": "grid", "parallelism": 2, "space": {"max_depth": {"values": [1, 3]}}},
        "slices": {"columns": ["petal width (cm)"], "maxValues": 3, "minCount": 1},
        "tracking": {"uri": f"http://{HOST_FOR_PODS}:{server.port}", "experiment": "e2e/iris"},
    }
    kube.create("TrainingRun", "iris-dt", spec)
    status = kube.wait_phase("TrainingRun", "iris-dt", {"Succeeded", "Failed"}, timeout=600)["status"]
    assert status["phase"] == "Succeeded", status
    run = kube.get("TrainingRun", "iris-dt")
    tracked = condition(run, "Tracked")
    assert tracked is not None and tracked["status"] == "True", run["status"]
    assert status["slices"]["columns"] == ["petal width (cm)"] and status["slices"]["total"] == 4
    runs = server.read("e2e/iris")["runs"]
    [parent] = [r for r in runs if r["tags"].get("gyre.role") == "parent"]
    children = sorted(
        (r for r in runs if r["tags"].get("gyre.role") == "trial"), key=lambda r: r["tags"]["gyre.trial"]
    )
    assert status["tracking"]["runId"] == parent["run_id"]
    assert [c["tags"]["gyre.trial"] for c in children] == ["0", "1"]
    assert all(c["tags"]["mlflow.parentRunId"] == parent["run_id"] for c in children)
    assert parent["status"] == "FINISHED" and parent["tags"]["gyre.best_trial"] == str(status["bestTrial"])
    assert parent["metrics"]["accuracy"] == pytest.approx(status["metrics"]["accuracy"])
    uid = run["metadata"]["uid"]
    for child in children:
        assert child["tags"]["gyre.trainingrun.uid"] == uid
        assert child["tags"]["gyre.dataset.fingerprint"] == status["datasetFingerprint"]
        assert child["tags"]["gyre.image"] == kube.image
        assert child["artifacts"] == ["card.html", "card.md", "manifest.json", "report.json"]
