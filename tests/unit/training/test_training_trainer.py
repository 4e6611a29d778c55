"""The trainer: preprocessing from the schema, seeded splits, metrics, and the local CLI."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gyre.cli import main
from gyre.data.sources import load_source
from gyre.training.features import coerce_features
from gyre.training.manifest import ModelManifest
from gyre.training.metrics import MetricError
from gyre.training.trainer import TrainingError, TrainOptions, train_model


def test_preprocessing_handles_mixed_types_and_takes_raw_named_features(mixed_frame: pd.DataFrame) -> None:
    frame = mixed_frame.drop(columns=["amount"])
    result = train_model(frame, TrainOptions(target="label", estimator="LogisticRegression"))
    specs = {f.name: f for f in result.features}
    assert specs["size (cm)"].kind == "numeric" and specs["size (cm)"].dtype == "number"
    assert specs["color"].kind == "categorical" and specs["color"].categories == ["", "blue", "green", "red"]
    assert specs["flag"].kind == "binary" and specs["flag"].categories == ["False", "True"]
    assert result.target.classes == ["high", "low"]
    # Raw rows with gaps and an unseen category predict without error.
    raw = pd.DataFrame(
        {"size (cm)": [None, 12.0], "weight": [0.1, -2.0], "color": ["purple", None], "flag": [True, False]}
    )
    predicted = result.pipeline.predict(coerce_features(raw, result.features))
    assert set(predicted) <= {"high", "low"}
    assert result.metrics["accuracy"] > 0.7


def test_same_seed_same_metrics_and_different_seed_differs(mixed_frame: pd.DataFrame) -> None:
    frame = mixed_frame.drop(columns=["label"])
    options = TrainOptions(
        target="amount", estimator="RandomForestRegressor", params={"n_estimators": 10}, seed=5
    )
    first = train_model(frame, options).metrics
    assert first == train_model(frame, options).metrics
    assert set(first) >= {"r2", "rmse", "mae"}
    other = TrainOptions(
        target="amount", estimator="RandomForestRegressor", params={"n_estimators": 10}, seed=6
    )
    assert train_model(frame, other).metrics != first


def test_classification_metrics_and_stratified_split() -> None:
    frame = load_source("builtin://iris")
    result = train_model(
        frame,
        TrainOptions(target="target", estimator="DecisionTreeClassifier", metrics=["f1_macro", "accuracy"]),
    )
    assert list(result.metrics)[:2] == ["f1_macro", "accuracy"]
    assert {"precision_macro", "recall_macro", "roc_auc", "log_loss"} <= set(result.metrics)
    # Stratified: every class has the same share of the 30 test rows.
    assert sorted(np.unique(result.y_test, return_counts=True)[1].tolist()) == [10, 10, 10]


def test_bad_requests_fail_with_reasons(mixed_frame: pd.DataFrame) -> None:
    with pytest.raises(TrainingError) as info:
        train_model(mixed_frame, TrainOptions(target="nope", estimator="Ridge"))
    assert info.value.reason == "TargetMissing"
    with pytest.raises(TrainingError) as info:
        train_model(mixed_frame, TrainOptions(target="label", estimator="Ridge"))
    assert info.value.reason == "InvalidTarget"
    with pytest.raises(MetricError, match="accuracy"):
        train_model(mixed_frame, TrainOptions(target="amount", estimator="Ridge", metrics=["accuracy"]))
    with pytest.raises(TrainingError) as info:
        train_model(mixed_frame, TrainOptions(target="amount", estimator="Ridge", features=["ghost"]))
    assert info.value.reason == "FeatureMissing"


def test_local_cli_matches_the_in_process_trainer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GYRE_TERMINATION_LOG", str(tmp_path / "log"))
    out = tmp_path / "iris-rf"
    args = ["train", "--local", "--dataset", "builtin://iris", "--target", "target"]
    args += [
        "--estimator",
        "RandomForestClassifier",
        "--param",
        "n_estimators=15",
        "--seed",
        "3",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    manifest = ModelManifest.model_validate_json((out / "manifest.json").read_text())
    in_process = train_model(
        load_source("builtin://iris"),
        TrainOptions(
            target="target", estimator="RandomForestClassifier", params={"n_estimators": 15}, seed=3
        ),
    )
    assert manifest.metrics == in_process.metrics
    assert manifest.params == {"n_estimators": 15} and manifest.seed == 3
    digest = hashlib.sha256((out / "manifest.json").read_bytes()).hexdigest()
    assert json.loads((tmp_path / "log").read_text())["modelSha256"] == digest


def test_local_cli_reports_missing_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GYRE_TERMINATION_LOG", str(tmp_path / "log"))
    assert main(["train", "--local", "--dataset", "builtin://iris"]) == 1
    report = json.loads((tmp_path / "log").read_text())
    assert report["reason"] == "InvalidArguments" and "--estimator" in report["error"]
