"""XGBoost and LightGBM on a real cluster: the image trains them in pods, with early stopping, the same metrics as an
in-process fit, and serves the XGBoost model (booster rebuilt from its UBJSON file, ONNX twin verified)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from e2ekube import Kube, condition
from sklearn.datasets import load_iris
from test_ml_loop import FEATURES, local_fit, predict_url

pytestmark = pytest.mark.e2e


def boosted_spec(kind: str, params: dict[str, Any], **estimator: Any) -> dict[str, Any]:
    return {
        "datasetRef": {"name": "iris"},
        "target": "target",
        "estimator": {"kind": kind, "params": params, **estimator},
        "split": {"testSize": 0.2, "seed": 42},
        "gates": [{"metric": "accuracy", "min": 0.8}],
    }


def test_boosted_runs_train_in_pods_and_the_xgboost_model_is_served(kube: Kube, tmp_path: Path) -> None:
    kube.create("Dataset", "iris", {"source": {"uri": "builtin://iris"}, "target": "target"})
    xgb = boosted_spec("XGBClassifier", {"n_estimators": 200, "max_depth": 3}, earlyStopping={"rounds": 5})
    kube.create("TrainingRun", "iris-xgb", xgb, labels={"app": "iris"})
    kube.create(
        "TrainingRun", "iris-lgbm", boosted_spec("LGBMClassifier", {"n_estimators": 30, "num_leaves": 7})
    )
    kube.create(
        "ModelDeployment",
        "iris",
        {
            "promotion": {"policy": "LatestValidated", "selector": {"matchLabels": {"app": "iris"}}},
            "replicas": 1,
        },
    )
    run = kube.wait_phase("TrainingRun", "iris-xgb", {"Succeeded"}, timeout=400)["status"]
    assert condition(kube.get("TrainingRun", "iris-xgb"), "Validated")["status"] == "True"  # type: ignore[index]
    assert run["onnx"]["status"] == "verified", run["onnx"]
    assert 0 <= run["metrics"]["best_iteration"] < 200 - 5
    local = local_fit(
        tmp_path,
        "--dataset", "builtin://iris", "--target", "target", "--estimator", "XGBClassifier",
        "--param", "n_estimators=200", "--param", "max_depth=3", "--early-stopping", "5",
        "--validation-fraction", "0.1", "--seed", "42", "--test-size", "0.2",
    )  # fmt: skip
    assert local["native"]["format"] == "xgboost-ubj"
    for name, value in local["metrics"].items():
        assert run["metrics"][name] == pytest.approx(value, abs=1e-9), name

    lgbm = kube.wait_phase("TrainingRun", "iris-lgbm", {"Succeeded"}, timeout=400)["status"]
    assert lgbm["metrics"]["accuracy"] >= 0.8 and lgbm["modelSha256"]

    kube.wait_condition("ModelDeployment", "iris", "Ready", "True", timeout=300)
    rows = load_iris(as_frame=True).frame[FEATURES].iloc[[0, 50, 100]]
    body = {"instances": [dict(zip(FEATURES, map(float, r), strict=True)) for r in rows.to_numpy()]}
    check = kube.load("check-predict", predict_url(kube, "iris"), body, seconds=2, workers=1)
    assert set(check["codes"]) == {"200"}, check
    assert json.loads(check["bodies"]["200"])["predictions"] == [0, 1, 2]
