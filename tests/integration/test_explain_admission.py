"""Explanations on a real API server: a ModelDeployment turns them on, and a TrainingRun's importances stay in its
status (the API server prunes status fields the CRD schema does not declare)."""

from __future__ import annotations

import pytest
from kubetest import Custom

pytestmark = pytest.mark.integration


def test_explanations_are_admitted_off_by_default_and_defaulted_when_on(custom: Custom) -> None:
    model = {"model": {"trainingRunRef": {"name": "iris-rf"}}}
    off = custom.create("modeldeployments", "ModelDeployment", "plain", model)
    assert "explain" not in off["spec"]
    on = custom.create(
        "modeldeployments", "ModelDeployment", "explained", {**model, "explain": {"enabled": True}}
    )
    assert on["spec"]["explain"] == {"enabled": True, "maxRows": 100}


def test_top_importances_survive_in_trainingrun_status(custom: Custom) -> None:
    custom.create(
        "trainingruns",
        "TrainingRun",
        "iris-rf",
        {"datasetRef": {"name": "iris"}, "estimator": {"kind": "RandomForestClassifier"}},
    )
    importances = {
        "metric": "accuracy",
        "repeats": 5,
        "rows": 30,
        "top": [{"name": "petal width (cm)", "mean": 0.29, "std": 0.09}],
    }
    got = custom.patch_status("trainingruns", "iris-rf", {"phase": "Succeeded", "importances": importances})
    assert got["status"]["importances"] == importances
