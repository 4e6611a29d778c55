"""spec.features: declarative transforms compile into the saved pipeline, load under the allowlist, and convert to
ONNX where a converter exists (otherwise the manifest says why)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from gyre.api.features import FeaturesSpec, FeatureTransform
from gyre.api.trainingrun import TrainingRunSpec
from gyre.cli import main
from gyre.training.artifact import load_model_dir, write_model_dir
from gyre.training.manifest import ModelManifest
from gyre.training.trainer import TrainingError, TrainOptions, train_model
from gyre.training.transformers import INFREQUENT, RareCategories


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    """Skewed money with gaps, ages, hours, a 300-value city, shops, zips, dates, short texts and a label."""
    rng = np.random.default_rng(0)
    n = 500
    frame = pd.DataFrame(
        {
            "income": np.exp(rng.normal(10, 1, n)),
            "age": rng.integers(18, 90, n).astype(float),
            "hour": rng.integers(0, 24, n).astype(float),
            "city": rng.choice([f"c{i}" for i in range(300)], n),
            "shop": rng.choice([f"s{i}" for i in range(60)], n),
            "zip": rng.choice([f"z{i}" for i in range(400)], n),
            "signup": pd.date_range("2020-01-01", periods=n, freq="37h").astype(str),
            "note": rng.choice(["great product", "bad service", "ok fine", "would buy again"], n),
        }
    )
    frame.loc[::10, "income"] = np.nan
    score = np.log(frame["income"].fillna(2e4)) + (frame["note"] == "great product") * 1.0
    frame["label"] = np.where(score > 10.3, "yes", "no")
    return frame


def transforms(*items: dict[str, Any]) -> tuple[FeatureTransform, ...]:
    return tuple(FeaturesSpec.model_validate({"transforms": list(items)}).transforms or ())


CONVERTIBLE = transforms(
    {
        "columns": ["income"],
        "steps": [{"impute": {"strategy": "median"}}, {"clip": {"min": 0}}, {"log": {}}, {"standardize": {}}],
    },
    {"columns": ["age"], "steps": [{"bucketize": {"bins": 4}}]},
    {"columns": ["hour"], "steps": [{"cyclic": {"period": 24}}]},
    {"columns": ["city"], "steps": [{"oneHot": {"maxCategories": 10}}]},
    {"columns": ["shop"], "steps": [{"targetEncode": {}}]},
    {"columns": ["note"], "steps": [{"tfidf": {}}]},
)


def train(
    table: pd.DataFrame, steps: tuple[FeatureTransform, ...], estimator: str = "LogisticRegression"
) -> Any:
    params = {"n_estimators": 10} if "Forest" in estimator else {}
    return train_model(
        table, TrainOptions(target="label", estimator=estimator, params=params, transforms=steps)
    )


def test_convertible_transforms_train_save_load_and_get_a_verified_onnx_twin(
    table: pd.DataFrame, tmp_path: Path
) -> None:
    # A linear model: float32 ONNX arithmetic on transformed values can cross a tree's split threshold, which the
    # verification then rightly refuses.
    result = train(table, CONVERTIBLE)
    manifest = write_model_dir(tmp_path, result, name="m", dataset=None)
    assert manifest.onnx.status == "verified", manifest.onnx.reason
    assert manifest.transforms is not None and manifest.transforms[0]["steps"][2] == {"log": {"offset": 1.0}}
    loaded = load_model_dir(tmp_path)
    np.testing.assert_array_equal(loaded.model.predict(result.x_test), result.pipeline.predict(result.x_test))
    assert result.metrics["accuracy"] > 0.8


def test_transforms_without_a_converter_are_served_by_scikit_learn_and_the_manifest_says_why(
    table: pd.DataFrame, tmp_path: Path
) -> None:
    steps = transforms(
        {"columns": ["zip"], "steps": [{"hash": {"nFeatures": 64}}]},
        {"columns": ["signup"], "steps": [{"dateParts": {"cyclic": True}}, {"standardize": {}}]},
        {"columns": ["income"], "steps": [{"impute": {}}]},
    )
    result = train(table, steps)
    manifest = write_model_dir(tmp_path, result, name="m", dataset=None)
    assert manifest.onnx.status == "unavailable"
    assert "transforms[0] (zip): hash" in manifest.onnx.reason
    assert "transforms[1] (signup): dateParts" in manifest.onnx.reason
    loaded = load_model_dir(tmp_path)
    np.testing.assert_array_equal(loaded.model.predict(result.x_test), result.pipeline.predict(result.x_test))


def test_date_parts_read_iso_dates_and_fill_unparseable_ones_with_the_training_median(
    table: pd.DataFrame,
) -> None:
    steps = transforms({"columns": ["signup"], "steps": [{"dateParts": {"parts": ["year", "month"]}}]})
    pipeline = train(table, steps).pipeline
    dates = pipeline.named_steps["preprocess"].named_transformers_["features0"]
    out = dates.transform(pd.DataFrame({"signup": ["2024-05-31T10:00:00", "not a date", ""]}))
    assert out[0].tolist() == [2024.0, 5.0]
    assert out[1].tolist() == out[2].tolist() == dates.fill_.tolist()


@pytest.mark.parametrize(
    ("step", "column", "message"),
    [
        ({"log": {}}, "city", "log needs number columns"),
        ({"impute": {"strategy": "mean"}}, "city", "impute strategy mean needs number columns"),
        ({"tfidf": {}}, "age", "tfidf needs text columns"),
    ],
)
def test_a_step_on_a_column_of_the_wrong_type_fails_training_with_what_to_fix(
    table: pd.DataFrame, step: dict[str, Any], column: str, message: str
) -> None:
    with pytest.raises(TrainingError, match=message) as caught:
        train(table, transforms({"columns": [column], "steps": [step]}))
    assert caught.value.reason == "InvalidFeatures"


def test_a_transform_on_a_column_the_data_lacks_fails_as_a_missing_feature(table: pd.DataFrame) -> None:
    with pytest.raises(TrainingError, match="not in the data: ghost") as caught:
        train(table, transforms({"columns": ["ghost"], "steps": [{"oneHot": {}}]}))
    assert caught.value.reason == "FeatureMissing"


def test_log_of_values_below_the_offset_fails_with_a_hint(table: pd.DataFrame) -> None:
    frame = table.assign(age=table["age"] - 50)
    with pytest.raises(TrainingError, match="add a clip step before log"):
        train(frame, transforms({"columns": ["age"], "steps": [{"log": {}}]}))


def test_rare_and_unseen_categories_share_one_column_and_the_encoder_keeps_only_the_frequent_ones() -> None:
    column = np.array(["a"] * 5 + ["b"] * 4 + ["c"] * 3 + ["d", "e"], dtype=object).reshape(-1, 1)
    grouper = RareCategories(max_categories=3).fit(column)
    assert grouper.kept_[0].tolist() == ["a", "b"]
    assert grouper.transform(np.array([["a"], ["c"], ["never seen"]], dtype=object)).ravel().tolist() == [
        "a",
        INFREQUENT,
        INFREQUENT,
    ]
    by_count = RareCategories(max_categories=50, min_frequency=4).fit(column)
    assert by_count.kept_[0].tolist() == ["a", "b"]


@pytest.mark.parametrize(
    ("features", "message"),
    [
        ({"transforms": [{"columns": ["a"], "steps": [{"log": {}, "clip": {"min": 0}}]}]}, "exactly one of"),
        ({"transforms": [{"columns": ["a"], "steps": [{}]}]}, "exactly one of"),
        ({"transforms": [{"columns": ["a", "a"], "steps": [{"log": {}}]}]}, "listed twice"),
        ({"transforms": [{"columns": ["a"], "steps": [{"oneHot": {}}, {"impute": {}}]}]}, "must be the last"),
        (
            {"transforms": [{"columns": ["a"], "steps": [{"log": {}}, {"dateParts": {}}]}]},
            "must be the first",
        ),
        (
            {"transforms": [{"columns": ["a"], "steps": [{"log": {}}, {"oneHot": {}}]}]},
            "cannot follow numeric",
        ),
        ({"transforms": [{"columns": ["a"], "steps": [{"impute": {}}, {"tfidf": {}}]}]}, "only step"),
        (
            {"transforms": [{"columns": ["a"], "steps": [{"impute": {"strategy": "constant"}}]}]},
            "needs value",
        ),
        ({"transforms": [{"columns": ["a"], "steps": [{"clip": {}}]}]}, "clip needs min"),
        (
            {
                "transforms": [
                    {"columns": ["a", "b"], "steps": [{"log": {}}]},
                    {"columns": ["b"], "steps": [{"clip": {"max": 1}}]},
                ]
            },
            "b are in two transforms",
        ),
        ({"transforms": []}, "at least 1 item"),
    ],
)
def test_invalid_features_are_refused_with_what_to_fix(features: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        FeaturesSpec.model_validate(features)


def test_the_former_list_of_columns_still_reads_as_features_columns() -> None:
    spec = TrainingRunSpec.model_validate(
        {"datasetRef": {"name": "d"}, "estimator": {"kind": "Ridge"}, "features": ["a", "b"]}
    )
    assert spec.features is not None and spec.features.columns == ["a", "b"]
    assert spec.features.input_columns() == ["a", "b"]


def test_train_local_reads_features_from_a_trainingrun_manifest(tmp_path: Path, capsys: Any) -> None:
    sample = Path(__file__).resolve().parents[3] / "manifests/samples/trainingrun-diabetes-features.yaml"
    out = tmp_path / "model"
    args = [
        "train",
        "--local",
        "--dataset",
        "builtin://diabetes",
        "--target",
        "target",
        "--estimator",
        "Ridge",
    ]
    assert main([*args, "--out", str(out), "--features", str(sample)]) == 0
    manifest = ModelManifest.model_validate_json((out / "manifest.json").read_text())
    assert manifest.transforms is not None and manifest.transforms[0]["columns"] == ["bmi", "bp"]
    assert manifest.onnx.status == "verified", manifest.onnx.reason
    bad = tmp_path / "bad.yaml"
    bad.write_text("transforms: [{columns: [bmi], steps: [{log: {}, clip: {min: 0}}]}]\n")
    assert main([*args, "--out", str(tmp_path / "bad"), "--features", str(bad)]) == 1
    assert "a step sets exactly one of" in capsys.readouterr().err


def test_every_other_step_variant_loads_under_the_allowlist(table: pd.DataFrame, tmp_path: Path) -> None:
    frame = table.assign(hour_code=table["hour"] % 5, city=table["city"].where(table.index % 11 != 0, ""))
    steps = transforms(
        {"columns": ["income"], "steps": [{"impute": {"strategy": "mean"}}, {"power": {"method": "boxCox"}}]},
        {"columns": ["age"], "steps": [{"standardize": {"method": "minMax"}}]},
        {"columns": ["hour"], "steps": [{"standardize": {"method": "robust"}}]},
        {"columns": ["hour_code"], "steps": [{"oneHot": {"maxCategories": 3, "minFrequency": 2}}]},
        {
            "columns": ["city"],
            "steps": [
                {"impute": {"strategy": "constant", "category": "unknown"}},
                {"targetEncode": {"smoothing": 2}},
            ],
        },
        {
            "columns": ["shop"],
            "steps": [{"impute": {"strategy": "mostFrequent"}}, {"hash": {"nFeatures": 16}}],
        },
        {"columns": ["zip"], "steps": [{"oneHot": {}}]},
    )
    bins = transforms(
        {"columns": ["age"], "steps": [{"bucketize": {"strategy": "kmeans", "encode": "ordinal"}}]}
    )
    for index, chosen in enumerate((steps, bins)):
        result = train(frame, chosen)
        write_model_dir(tmp_path / str(index), result, name="m", dataset=None)
        loaded = load_model_dir(tmp_path / str(index))
        np.testing.assert_array_equal(
            loaded.model.predict(result.x_test), result.pipeline.predict(result.x_test)
        )


def test_the_xgboost_features_sample_trains_on_the_generated_table_and_passes_its_gate(
    tmp_path: Path,
) -> None:
    import yaml

    from gyre.data.sources import load_source
    from gyre.training.run import TrainJob, run_training

    samples = Path(__file__).resolve().parents[3] / "manifests/samples"
    dataset = yaml.safe_load((samples / "dataset-generated-churn.yaml").read_text())
    run = yaml.safe_load((samples / "trainingrun-churn-xgb-features.yaml").read_text())
    assert run["spec"]["datasetRef"]["name"] == dataset["metadata"]["name"]
    spec = TrainingRunSpec.model_validate(run["spec"])
    uri = dataset["spec"]["source"]["uri"]
    report = run_training(
        TrainJob(spec=spec, dataset_uri=uri, namespace="ml", name="churn", out_dir=str(tmp_path))
    )
    assert report.phase == "Succeeded", report.error
    assert report.gates is not None and report.gates.passed, report.gates
    assert report.metrics["best_iteration"] < spec.estimator.params["n_estimators"]
    manifest = ModelManifest.model_validate_json((tmp_path / "manifest.json").read_text())
    assert manifest.estimator == "XGBClassifier" and manifest.native is not None
    steps = {next(iter(step)) for t in manifest.transforms or [] for step in t["steps"]}
    assert steps == {"impute", "log", "clip", "oneHot", "dateParts", "tfidf"}
    assert manifest.onnx.status == "unavailable" and "dateParts" in manifest.onnx.reason
    # The saved model (skops preprocessing + XGBoost's own file) answers raw rows as the trained pipeline did.
    raw = load_source(uri).drop(columns=["target"]).head(200)
    loaded = load_model_dir(tmp_path)
    probabilities = loaded.model.predict_proba(raw)
    assert probabilities.shape == (200, 2) and manifest.target.classes == [0, 1]
    assert manifest.importances is not None and manifest.importances.features[0].name == "tenure_months"
