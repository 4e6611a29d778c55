"""Slices: metrics per value of a column on the test split, their gaps, the manifest's `slices` and the gates."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from gyre.api.gates import evaluate_slice_gates
from gyre.api.slices import SlicesSpec
from gyre.api.trainingrun import TrainingRunSpec
from gyre.training.run import TrainJob, run_training
from gyre.training.slices import evaluate_slices, slice_labels
from gyre.training.trainer import TrainingError, TrainOptions, train_model


class SaysOne:
    """A model whose answer is known: it predicts 1 for every row."""

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        return np.ones(len(x), dtype=int)


def flipped_groups(n: int = 400, minority: float = 0.25, seed: int = 0) -> pd.DataFrame:
    """Group a follows y = (x > 0); the smaller group b the opposite. A model that does not see the group learns
    group a's rule: perfect on a, wrong on every row of b."""
    rng = np.random.default_rng(seed)
    # Two clusters, far from the boundary at 0, so the stump's threshold falls between them.
    x = rng.choice([-1.0, 1.0], size=n) * rng.uniform(0.5, 1.0, size=n)
    group = np.where(rng.uniform(size=n) < minority, "b", "a")
    y = np.where(group == "a", x > 0, x <= 0).astype(int)
    return pd.DataFrame({"x": x, "group": group, "target": y})


def test_a_constant_model_is_measured_per_slice_with_counts() -> None:
    x = pd.DataFrame({"f": np.arange(10.0)})
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    region = pd.DataFrame({"region": ["n", "n", "n", "n", "s", "s", "s", "s", "s", None]})
    spec = SlicesSpec.model_validate({"columns": ["region"], "minCount": 2, "metrics": ["accuracy"]})
    got = evaluate_slices(
        spec,
        task="classification",
        model=SaysOne(),
        x_test=x,
        y_test=y,
        slice_frame=region,
        default_metrics=["accuracy"],
    )
    assert [(s.value, s.count, s.metrics) for s in got.slices] == [
        ("s", 5, {"accuracy": 0.0}),
        ("n", 4, {"accuracy": 1.0}),
        ("(missing)", 1, {"accuracy": 0.0}),
    ]
    # The one-row (missing) slice is below minCount: reported, but not part of the gap.
    [gap] = got.gaps
    assert (gap.column, gap.gap, gap.lowest, gap.highest) == ("region", 1.0, "s", "n")
    manifest = got.manifest().model_dump(by_alias=True)
    assert manifest == {
        "columns": ["region"],
        "metric": "accuracy",
        "slices": [
            {"column": "region", "value": "s", "count": 5, "metrics": {"accuracy": 0.0}},
            {"column": "region", "value": "n", "count": 4, "metrics": {"accuracy": 1.0}},
            {"column": "region", "value": "(missing)", "count": 1, "metrics": {"accuracy": 0.0}},
        ],
        "gaps": {"accuracy": 1.0},
    }
    # Status lists the worst large-enough slices first, then the small ones.
    assert [s.value for s in got.status().slices or []] == ["s", "n", "(missing)"]


def test_values_beyond_max_values_pool_into_other() -> None:
    values = pd.Series(["a"] * 5 + ["b"] * 3 + ["c", "d", None, 2.0])
    labels = slice_labels(values, max_values=2)
    assert labels.tolist() == ["a"] * 5 + ["b"] * 3 + ["(other)", "(other)", "(missing)", "(other)"]
    assert slice_labels(pd.Series([1.0, 2.0, 1.0]), 5).tolist() == ["1", "2", "1"]


def _train(frame: pd.DataFrame, slices: dict[str, Any], **kw: Any) -> Any:
    kw.setdefault("params", {"max_depth": 1})
    options = TrainOptions(
        target="target", estimator="DecisionTreeClassifier", slices=SlicesSpec.model_validate(slices), **kw
    )
    return train_model(frame, options)


def test_a_model_perfect_on_one_group_and_wrong_on_the_other() -> None:
    result = _train(flipped_groups(), {"columns": ["group"], "excludeFromFeatures": ["group"], "minCount": 5})
    assert [f.name for f in result.features] == ["x"]  # the sensitive column is not an input
    by_value = {s.value: s for s in result.slices.slices}
    assert by_value["a"].metrics["accuracy"] == 1.0
    assert by_value["b"].metrics["accuracy"] == 0.0
    assert by_value["a"].count + by_value["b"].count == result.rows_test
    assert result.slices.manifest().gaps == {"accuracy": 1.0}
    verdict = evaluate_slice_gates(
        SlicesSpec.model_validate(
            {"columns": ["group"], "minCount": 5, "gates": [{"metric": "accuracy", "maxGap": 0.1}]}
        ),
        result.slices.status(),
    )
    assert not verdict.passed
    assert verdict.message == "slice gate accuracy gap across group 1 > maxGap 0.1 (group=b 0 vs group=a 1)"


def test_min_count_keeps_small_slices_out_of_gates_and_says_so() -> None:
    result = _train(
        flipped_groups(), {"columns": ["group"], "excludeFromFeatures": ["group"], "minCount": 1000}
    )
    assert result.slices.gaps == []
    spec = SlicesSpec.model_validate(
        {"columns": ["group"], "minCount": 1000, "gates": [{"metric": "accuracy", "maxGap": 0.1, "min": 0.5}]}
    )
    verdict = evaluate_slice_gates(spec, result.slices.status())
    assert not verdict.passed
    assert "not measured, no slice column has two slices with at least 1000 test rows" in verdict.message
    assert "slice gate accuracy min 0.5: not measured" in verdict.message


def test_a_slice_column_may_also_be_a_feature() -> None:
    # With the group as an input, a deep enough tree learns both rules and the gap closes.
    result = _train(flipped_groups(), {"columns": ["group"], "minCount": 5}, params={"max_depth": 4})
    assert "group" in [f.name for f in result.features]
    assert result.slices.manifest().gaps == {"accuracy": 0.0}
    spec = SlicesSpec.model_validate(
        {"columns": ["group"], "minCount": 5, "gates": [{"metric": "accuracy", "maxGap": 0.05, "min": 0.99}]}
    )
    verdict = evaluate_slice_gates(spec, result.slices.status())
    assert verdict.passed and verdict.message == "all 2 slice gates passed"


def test_regression_slices_rank_the_highest_error_first() -> None:
    rng = np.random.default_rng(1)
    n = 300
    x = rng.normal(size=n)
    city = np.where(np.arange(n) % 3 == 0, "noisy", "calm")
    y = 2 * x + np.where(city == "noisy", rng.normal(0, 3, size=n), 0.0)
    frame = pd.DataFrame({"x": x, "city": city, "target": y})
    options = TrainOptions(
        target="target",
        estimator="LinearRegression",
        slices=SlicesSpec.model_validate(
            {"columns": ["city"], "excludeFromFeatures": ["city"], "metrics": ["rmse"], "minCount": 5}
        ),
    )
    result = train_model(frame, options)
    status = result.slices.status()
    assert status.metric == "rmse" and status.slices is not None
    assert status.slices[0].value == "noisy"
    spec = SlicesSpec.model_validate(
        {"columns": ["city"], "metrics": ["rmse"], "minCount": 5, "gates": [{"metric": "rmse", "max": 1.0}]}
    )
    verdict = evaluate_slice_gates(spec, status)
    assert not verdict.passed and verdict.message.startswith("slice gate rmse city=noisy ")


def test_slice_columns_missing_or_used_as_features_are_refused() -> None:
    frame = flipped_groups()
    with pytest.raises(TrainingError, match="slice column\\(s\\) not in the data: region"):
        _train(frame, {"columns": ["region"]})
    with pytest.raises(TrainingError, match="excludeFromFeatures column\\(s\\) group are among the model's"):
        _train(frame, {"columns": ["group"], "excludeFromFeatures": ["group"]}, features=["x", "group"])


def test_the_spec_explains_slice_mistakes() -> None:
    base: dict[str, Any] = {"datasetRef": {"name": "d"}, "estimator": {"kind": "LogisticRegression"}}
    cases = {
        "excludeFromFeatures names sex, not in slices.columns": {
            "columns": ["region"],
            "excludeFromFeatures": ["sex"],
        },
        "slice gate metric(s) f1_macro are not in slices.metrics": {
            "columns": ["region"],
            "metrics": ["accuracy"],
            "gates": [{"metric": "f1_macro", "maxGap": 0.1}],
        },
        "a slice gate needs maxGap, min, max or several": {
            "columns": ["region"],
            "gates": [{"metric": "accuracy"}],
        },
    }
    for message, slices in cases.items():
        with pytest.raises(ValidationError, match=re.escape(message)):
            TrainingRunSpec.model_validate({**base, "slices": slices})
    with pytest.raises(ValidationError, match=r"which spec\.features uses as input"):
        TrainingRunSpec.model_validate(
            {
                **base,
                "features": {"columns": ["x", "sex"]},
                "slices": {"columns": ["sex"], "excludeFromFeatures": ["sex"]},
            }
        )
    with pytest.raises(ValidationError, match="the target 'sex' cannot be a slice column"):
        TrainingRunSpec.model_validate({**base, "target": "sex", "slices": {"columns": ["sex"]}})


def test_the_model_directory_holds_the_slices_and_the_report_fails_the_slice_gate(tmp_path: Path) -> None:
    data = tmp_path / "groups.csv"
    flipped_groups().to_csv(data, index=False)
    spec = TrainingRunSpec.model_validate(
        {
            "datasetRef": {"name": "groups"},
            "target": "target",
            "estimator": {"kind": "DecisionTreeClassifier", "params": {"max_depth": 1}},
            "gates": [{"metric": "accuracy", "min": 0.5}],
            "slices": {
                "columns": ["group"],
                "excludeFromFeatures": ["group"],
                "minCount": 5,
                "metrics": ["accuracy", "f1_macro"],
                "gates": [{"metric": "accuracy", "maxGap": 0.2}],
            },
        }
    )
    out = tmp_path / "model"
    report = run_training(
        TrainJob(
            spec=spec, dataset_uri=f"file://{data}", namespace="ns", name="m", out_dir=str(out), onnx=False
        )
    )
    assert report.phase == "Succeeded", report.error
    assert report.gates is not None and not report.gates.passed
    assert "slice gate accuracy gap across group 1 > maxGap 0.2" in report.gates.message
    slices = json.loads((out / "manifest.json").read_text())["slices"]
    assert set(slices) == {"columns", "metric", "slices", "gaps"}
    assert slices["columns"] == ["group"] and slices["metric"] == "accuracy"
    assert all(set(s) == {"column", "value", "count", "metrics"} for s in slices["slices"])
    assert {s["value"]: s["metrics"]["accuracy"] for s in slices["slices"]} == {"a": 1.0, "b": 0.0}
    assert slices["gaps"]["accuracy"] == 1.0
    # The report the operator reads carries the status view, and still fits the termination message.
    assert report.slices is not None and report.slices.total == 2
    assert len(report.to_termination_message().encode()) <= 4096


def test_manifests_without_slices_keep_their_bytes(tmp_path: Path) -> None:
    spec = TrainingRunSpec.model_validate(
        {"datasetRef": {"name": "iris"}, "target": "target", "estimator": {"kind": "DecisionTreeClassifier"}}
    )
    out = tmp_path / "model"
    report = run_training(
        TrainJob(
            spec=spec, dataset_uri="builtin://iris", namespace="ns", name="m", out_dir=str(out), onnx=False
        )
    )
    assert report.phase == "Succeeded" and report.slices is None
    assert "slices" not in json.loads((out / "manifest.json").read_text())


def test_gyre_train_local_takes_the_slices_from_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gyre.cli import main

    monkeypatch.setenv("GYRE_TERMINATION_LOG", str(tmp_path / "log"))
    data = tmp_path / "groups.csv"
    flipped_groups().to_csv(data, index=False)
    slices = tmp_path / "slices.yaml"
    slices.write_text("columns: [group]\nexcludeFromFeatures: [group]\nminCount: 5\n")
    out = tmp_path / "model"
    args = ["train", "--local", "--dataset", f"file://{data}", "--target", "target", "--no-onnx"]
    args += ["--estimator", "DecisionTreeClassifier", "--param", "max_depth=1", "--out", str(out)]
    assert main([*args, "--slices", str(slices)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert [f["name"] for f in manifest["features"]] == ["x"]
    assert manifest["slices"]["gaps"] == {"accuracy": 1.0}
