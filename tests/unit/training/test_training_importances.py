"""Permutation importances: computed on the test split for every kind, on raw columns, recorded in the manifest
and the report, with the metric, repeats, seed and rows used."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gyre.api.features import FeaturesSpec
from gyre.api.trainingrun import TrainingRunSpec
from gyre.training.importance import permutation_importances
from gyre.training.manifest import ModelManifest
from gyre.training.report import TrainReport
from gyre.training.run import TrainJob, run_training
from gyre.training.trainer import TrainOptions, train_model


def signal_frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """`strong` decides the target, `weak` nudges it, `noise` and `city` have no effect at all."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "strong": rng.normal(size=n),
            "weak": rng.normal(size=n),
            "noise": rng.normal(size=n),
            "city": rng.choice(["oslo", "lima", "pune"], size=n),
        }
    )
    frame["amount"] = 4.0 * frame["strong"] + 0.5 * frame["weak"] + rng.normal(0, 0.05, size=n)
    frame["label"] = np.where(frame["amount"] > 0, "up", "down")
    return frame


@pytest.mark.parametrize(
    ("estimator", "target", "params"),
    [
        ("Ridge", "amount", {}),
        ("RandomForestClassifier", "label", {"n_estimators": 20}),
        ("XGBRegressor", "amount", {"n_estimators": 30}),
        ("LGBMClassifier", "label", {"n_estimators": 30, "verbose": -1}),
    ],
)
def test_the_deciding_column_ranks_first_and_a_column_without_effect_gets_about_zero(
    estimator: str, target: str, params: dict[str, object]
) -> None:
    frame = signal_frame().drop(columns=["label" if target == "amount" else "amount"])
    result = train_model(frame, TrainOptions(target=target, estimator=estimator, params=params, seed=7))
    found = result.importances
    assert found is not None
    assert (found.method, found.repeats, found.seed, found.rows) == ("permutation", 5, 7, result.rows_test)
    assert found.metric == ("r2" if target == "amount" else "accuracy")
    by_name = {f.name: f for f in found.features}
    assert set(by_name) == {"strong", "weak", "noise", "city"}
    assert found.features[0].name == "strong" and by_name["strong"].mean > 0.3
    assert [f.mean for f in found.features] == sorted((f.mean for f in found.features), reverse=True)
    for name in ("noise", "city"):
        assert abs(by_name[name].mean) < 0.05, (name, by_name[name])
        assert by_name[name].std >= 0


def test_same_seed_same_importances() -> None:
    frame = signal_frame().drop(columns=["label"])
    options = TrainOptions(target="amount", estimator="RandomForestRegressor", params={"n_estimators": 10})
    assert train_model(frame, options).importances == train_model(frame, options).importances


def test_transformed_columns_are_permuted_as_the_raw_column_the_user_named() -> None:
    frame = signal_frame().drop(columns=["amount"])
    frame["strong"] = np.where(
        frame["strong"] > 0, "hi", "lo"
    )  # one-hot encoded below: two generated columns
    steps = FeaturesSpec.model_validate(
        {"transforms": [{"columns": ["strong", "city"], "steps": [{"oneHot": {}}]}]}
    ).transforms
    result = train_model(
        frame, TrainOptions(target="label", estimator="LogisticRegression", transforms=tuple(steps or ()))
    )
    assert result.importances is not None
    assert sorted(f.name for f in result.importances.features) == ["city", "noise", "strong", "weak"]
    assert result.importances.features[0].name == "strong"


def test_the_row_sample_and_repeats_bound_the_cost_and_are_recorded() -> None:
    frame = signal_frame(n=300).drop(columns=["label"])
    result = train_model(frame, TrainOptions(target="amount", estimator="Ridge", test_size=0.5))
    x, y = result.x_test, result.y_test
    found = permutation_importances(
        result.pipeline, x, y, task="regression", metric="rmse", seed=3, max_rows=50, repeats=2
    )
    assert found is not None and (found.rows, found.repeats, found.seed, found.metric) == (50, 2, 3, "rmse")
    # An error metric's importance is its rise: positive for the column that matters.
    assert found.features[0].name == "strong" and found.features[0].mean > 1.0


def test_a_metric_that_cannot_be_computed_on_the_rows_falls_back_to_the_default_and_says_so() -> None:
    frame = signal_frame(n=300).drop(columns=["amount"])
    result = train_model(frame, TrainOptions(target="label", estimator="LogisticRegression"))
    only_up = result.y_test == "up"
    found = permutation_importances(
        result.pipeline,
        result.x_test[only_up],
        result.y_test[only_up],
        task="classification",
        metric="roc_auc",
        seed=0,
        classes=["down", "up"],
    )
    assert found is not None and found.metric == "accuracy"


def test_the_run_records_importances_in_the_manifest_and_the_top_ones_in_the_report(tmp_path: Path) -> None:
    frame = signal_frame().drop(columns=["label"])
    data = tmp_path / "data.csv"
    frame.to_csv(data, index=False)
    spec = TrainingRunSpec.model_validate(
        {
            "datasetRef": {"name": "d"},
            "target": "amount",
            "estimator": {"kind": "Ridge"},
            "metrics": ["mae", "r2"],
        }
    )
    out = tmp_path / "model"
    report = run_training(
        TrainJob(spec=spec, dataset_uri=f"file://{data}", namespace="ml", name="r", out_dir=str(out))
    )
    assert report.phase == "Succeeded", report.error
    raw = json.loads((out / "manifest.json").read_text())
    # The shape the model card and tracking read.
    assert set(raw["importances"]) == {"method", "metric", "repeats", "seed", "rows", "features"}
    assert raw["importances"]["metric"] == "mae"
    assert set(raw["importances"]["features"][0]) == {"name", "mean", "std"}
    manifest = ModelManifest.model_validate(raw)
    assert manifest.importances is not None and manifest.importances.seed == 42
    assert report.importances is not None and report.importances.metric == "mae"
    assert [f.name for f in report.importances.top] == [f.name for f in manifest.importances.features][:5]
    echoed = TrainReport.from_termination_message(report.to_termination_message())
    assert echoed.importances == report.importances


def test_importances_are_dropped_from_a_report_before_the_metrics_when_it_does_not_fit() -> None:
    frame = signal_frame().drop(columns=["label"])
    result = train_model(frame, TrainOptions(target="amount", estimator="Ridge"))
    assert result.importances is not None
    from gyre.training.importance import summary

    report = TrainReport(phase="Succeeded", metrics=result.metrics, importances=summary(result.importances))
    without = report.model_copy(update={"importances": None, "truncated": True})
    limit = len(without.to_termination_message())
    assert len(report.to_termination_message()) > limit
    small = TrainReport.from_termination_message(report.to_termination_message(limit=limit))
    assert small.importances is None and small.metrics == report.metrics


def test_wide_tables_get_fewer_repeats_but_never_fewer_than_two() -> None:
    from gyre.training.importance import MAX_EVALUATIONS, repeats_for

    assert repeats_for(4) == 5
    assert repeats_for(MAX_EVALUATIONS // 3) == 3
    assert repeats_for(10_000) == 2


def test_large_test_splits_shuffle_fewer_rows_so_the_rows_predicted_stay_bounded() -> None:
    from gyre.training.importance import MAX_PREDICTED_ROWS, MAX_ROWS, MIN_ROWS, rows_for

    assert rows_for(columns=4, repeats=5) == MAX_ROWS  # small tables keep every sampled row
    assert rows_for(columns=20, repeats=5) * 5 * 20 <= MAX_PREDICTED_ROWS
    assert rows_for(columns=400, repeats=2) == MIN_ROWS
    assert rows_for(columns=4, repeats=5, max_rows=50) == 50
    frame = signal_frame(n=6000).drop(columns=["label"])
    result = train_model(frame, TrainOptions(target="amount", estimator="Ridge", test_size=0.5))
    found = result.importances
    assert found is not None and found.rows == rows_for(columns=4, repeats=5) < result.rows_test
    assert found.features[0].name == "strong"


def test_stacked_shuffles_give_scikit_learns_importances_in_expectation() -> None:
    from sklearn.inspection import permutation_importance

    frame = signal_frame(n=1000).drop(columns=["label"])
    result = train_model(frame, TrainOptions(target="amount", estimator="Ridge", test_size=0.5))
    ours = permutation_importances(
        result.pipeline, result.x_test, result.y_test, task="regression", metric="r2", seed=1, repeats=20
    )
    theirs = permutation_importance(
        result.pipeline, result.x_test, result.y_test, scoring="r2", n_repeats=20, random_state=1
    )
    assert ours is not None
    by_name = {f.name: f.mean for f in ours.features}
    for name, mean in zip(result.x_test.columns, theirs.importances_mean, strict=True):
        assert by_name[name] == pytest.approx(mean, rel=0.1, abs=0.01), name
