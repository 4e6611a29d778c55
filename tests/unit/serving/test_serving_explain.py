"""Per-prediction explanations: attributions that add up to the explained output, on raw columns, in a worker of
their own; refusals with the reason, and :predict unaffected."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xgboost
from serving_helpers import serve

from gyre.api.features import FeaturesSpec
from gyre.serving.app import ServerConfig
from gyre.serving.explain import Unexplainable, build_explainer, explain_support
from gyre.serving.model import load_served_model
from gyre.training.artifact import load_model_dir, write_model_dir
from gyre.training.trainer import TrainingResult, TrainOptions, train_model

ONE_HOT_CITY = tuple(
    FeaturesSpec.model_validate({"transforms": [{"columns": ["city"], "steps": [{"oneHot": {}}]}]}).transforms
    or ()
)


def frame(n: int = 300) -> pd.DataFrame:
    """`a` and `city` decide the targets; `noise` is random, `flat` never changes."""
    rng = np.random.default_rng(1)
    table = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "noise": rng.normal(size=n),
            "flat": np.full(n, 2.0),
            "city": rng.choice(["oslo", "lima", "pune"], size=n),
        }
    )
    table["amount"] = 3.0 * table["a"] + 2.0 * (table["city"] == "oslo") + rng.normal(0, 0.1, size=n)
    table["label"] = np.where(table["amount"] > 0.5, "hi", "lo")
    table["grade"] = np.where(table["amount"] > 2, "A", np.where(table["amount"] > -1, "B", "C"))
    return table


def trained(tmp_path: Path, estimator: str, target: str, **params: Any) -> tuple[TrainingResult, Any, Any]:
    """(training result, loaded pipeline, loaded manifest): explained as the server loads it from disk."""
    table = frame().drop(columns=[c for c in ("amount", "label", "grade") if c != target])
    result = train_model(
        table, TrainOptions(target=target, estimator=estimator, params=params, transforms=ONE_HOT_CITY)
    )
    write_model_dir(tmp_path / estimator, result, name="m", dataset=None, onnx=False)
    loaded = load_model_dir(tmp_path / estimator)
    return result, loaded.model, loaded.manifest


def margin(pipeline: Any, x: pd.DataFrame, estimator: str, classes: list[Any] | None) -> np.ndarray:
    """What the explanation must add up to, straight from the model: a forest's probabilities of `classes`, other
    classifiers' margins, regressors' predictions."""
    z = pipeline[:-1].transform(x)
    final = pipeline[-1]
    if "Forest" in estimator or "Trees" in estimator or "DecisionTree" in estimator:
        if classes is None:
            return np.asarray(final.predict(z), dtype=np.float64).reshape(len(x), 1)
        return np.asarray(final.predict_proba(z))[:, [list(final.classes_).index(c) for c in classes]]
    if estimator.startswith("XGB"):
        out = final.get_booster().predict(xgboost.DMatrix(z), output_margin=True)
    elif estimator.startswith("LGBM"):
        out = final.predict(z, raw_score=True)
    elif hasattr(final, "decision_function"):
        out = final.decision_function(z)
    else:
        out = final.predict(z)
    return np.asarray(out, dtype=np.float64).reshape(len(x), -1)


@pytest.mark.parametrize(
    ("estimator", "target", "params", "output", "width"),
    [
        ("XGBClassifier", "label", {"n_estimators": 30}, "log_odds", 1),
        ("XGBClassifier", "grade", {"n_estimators": 30}, "logit", 3),
        ("XGBRegressor", "amount", {"n_estimators": 30}, "prediction", 1),
        ("LGBMClassifier", "label", {"n_estimators": 30, "verbose": -1}, "log_odds", 1),
        ("LGBMClassifier", "grade", {"n_estimators": 30, "verbose": -1}, "logit", 3),
        ("LGBMRegressor", "amount", {"n_estimators": 30, "verbose": -1}, "prediction", 1),
        ("LogisticRegression", "label", {}, "log_odds", 1),
        ("LogisticRegression", "grade", {}, "logit", 3),
        ("Ridge", "amount", {}, "prediction", 1),
        ("RandomForestClassifier", "label", {"n_estimators": 20}, "probability", 1),
        ("RandomForestClassifier", "grade", {"n_estimators": 20}, "probability", 3),
        ("ExtraTreesRegressor", "amount", {"n_estimators": 20}, "prediction", 1),
        ("DecisionTreeClassifier", "grade", {}, "probability", 3),
        ("GradientBoostingClassifier", "label", {"n_estimators": 30}, "log_odds", 1),
        ("GradientBoostingClassifier", "grade", {"n_estimators": 30}, "logit", 3),
        ("GradientBoostingRegressor", "amount", {"n_estimators": 30}, "prediction", 1),
    ],
)
def test_attributions_plus_the_expected_value_add_up_to_the_explained_output(
    tmp_path: Path, estimator: str, target: str, params: dict[str, Any], output: str, width: int
) -> None:
    result, pipeline, manifest = trained(tmp_path, estimator, target, **params)
    x = result.x_test.iloc[:25]
    found = build_explainer(pipeline, manifest).explain(x)
    assert found.output == output
    assert found.values.shape == (25, width, 4) and found.expected.shape == (width,)
    # One attribution per raw column: the three one-hot columns of `city` are summed into it.
    assert found.feature_names == ["a", "noise", "flat", "city"]
    expected = margin(pipeline, x, estimator, found.classes)
    np.testing.assert_allclose(found.outputs(), expected, rtol=1e-5, atol=1e-5)
    if width == 1 and target != "amount":
        assert found.classes == [manifest.target.classes[1]]
    assert list(found.predictions) == list(pipeline.predict(x))
    # A column that never changes has no effect on any row.
    np.testing.assert_allclose(found.values[:, :, 2], 0.0, atol=1e-9)
    # The column that decides the target carries the most weight.
    spread = np.abs(found.values).mean(axis=(0, 1))
    assert spread.argmax() in (0, 3)


def test_a_linear_models_attributions_are_its_closed_form(tmp_path: Path) -> None:
    result, pipeline, manifest = trained(tmp_path, "LinearRegression", "amount")
    x = result.x_test.iloc[:10]
    found = build_explainer(pipeline, manifest).explain(x)
    z = pipeline[:-1].transform(x)
    mean = np.asarray(manifest.reference_mean)
    coef, intercept = pipeline[-1].coef_, pipeline[-1].intercept_
    names = [str(n) for n in pipeline[:-1].get_feature_names_out()]
    city = [i for i, n in enumerate(names) if "city" in n]
    expected_city = ((z - mean) * coef)[:, city].sum(axis=1)
    np.testing.assert_allclose(found.values[:, 0, 3], expected_city, atol=1e-9)
    a = names.index("numeric__a")
    np.testing.assert_allclose(found.values[:, 0, 0], coef[a] * (z[:, a] - mean[a]), atol=1e-9)
    assert found.expected[0] == pytest.approx(float(coef @ mean + intercept))
    # The mean is the training rows' mean: the expected value is the mean prediction on them.
    train_rows = frame().drop(columns=["label", "grade"])
    assert found.expected[0] == pytest.approx(float(np.mean(pipeline.predict(train_rows))), abs=0.2)


def test_a_feature_the_model_ignores_gets_zero(tmp_path: Path) -> None:
    result, pipeline, manifest = trained(tmp_path, "Lasso", "amount", alpha=0.2)
    names = [str(n) for n in pipeline[:-1].get_feature_names_out()]
    assert pipeline[-1].coef_[names.index("numeric__noise")] == 0.0  # the Lasso dropped `noise`
    found = build_explainer(pipeline, manifest).explain(result.x_test)
    np.testing.assert_allclose(found.values[:, 0, 1], 0.0, atol=1e-12)
    assert np.abs(found.values[:, 0, 0]).mean() > 0.5


def test_kinds_without_an_explainer_are_refused_with_the_reason(tmp_path: Path) -> None:
    _result, pipeline, manifest = trained(tmp_path, "KNeighborsClassifier", "label")
    reason = explain_support(manifest)
    assert reason is not None and "KNeighborsClassifier" in reason and "TreeSHAP" in reason
    with pytest.raises(Unexplainable, match="KNeighborsClassifier"):
        build_explainer(pipeline, manifest)
    linear_without_mean = manifest.model_copy(update={"estimator": "Ridge", "reference_mean": None})
    assert "referenceMean" in (explain_support(linear_without_mean) or "")


async def test_explain_over_http_in_its_own_worker_next_to_predict(tmp_path: Path) -> None:
    result, _pipeline, _manifest = trained(tmp_path, "LogisticRegression", "label")
    model = load_served_model(str(tmp_path / "LogisticRegression"))
    rows = result.x_test.iloc[:3].to_dict(orient="records")
    async with serve(model, ServerConfig(explain=True, explain_max_rows=5)) as (client, server):
        explained = asyncio.ensure_future(client.post("/v1/models/m:explain", json={"instances": rows}))
        while server.explainer is None or server.explainer.pending == 0:
            await asyncio.sleep(0.01)
        # :predict answers while the explanation is still being worked on (the worker is starting up).
        predicted = await client.post("/v1/models/m:predict", json={"instances": rows})
        assert predicted.status == 200 and not explained.done()
        labels = (await predicted.json())["predictions"]
        response = await explained
        assert response.status == 200, await response.text()
        body = await response.json()
        assert (body["output"], body["classes"]) == ("log_odds", ["lo"])
        assert "log-odds of class 'lo'" in body["explained"]
        assert body["feature_names"] == ["a", "noise", "flat", "city"]
        for row, label in zip(body["explanations"], labels, strict=True):
            assert row["prediction"] == label
            total = body["expected_value"][0] + sum(v[0] for v in row["attributions"].values())
            assert total == pytest.approx(row["value"][0])
            assert (row["value"][0] > 0) == (label == "lo")

        too_many = await client.post("/v1/models/m:explain", json={"instances": rows * 2})
        assert too_many.status == 422 and "at most 5" in (await too_many.json())["error"]
        malformed = await client.post("/v1/models/m:explain", data=b"{not json")
        assert malformed.status == 400
        wrong = await client.post("/v1/models/m:explain", json={"instances": [{"a": "x"}]})
        assert wrong.status == 422

        server.explainer.pending = server.explainer.queue  # every slot taken
        busy = await client.post("/v1/models/m:explain", json={"instances": rows})
        assert busy.status == 503 and "busy" in (await busy.json())["error"]
        server.explainer.pending = 0


async def test_explain_is_off_by_default_and_unexplainable_models_answer_501(tmp_path: Path) -> None:
    trained(tmp_path, "LogisticRegression", "label")
    model = load_served_model(str(tmp_path / "LogisticRegression"))
    async with serve(model) as (client, _server):
        off = await client.post("/v1/models/m:explain", json={"instances": [[0.0, 0.0, 2.0, "oslo"]]})
        assert off.status == 404 and "spec.explain.enabled" in (await off.json())["error"]
    trained(tmp_path, "KNeighborsClassifier", "label")
    knn = load_served_model(str(tmp_path / "KNeighborsClassifier"))
    async with serve(knn, ServerConfig(explain=True)) as (client, _server):
        refused = await client.post("/v1/models/m:explain", json={"instances": [[0.0, 0.0, 2.0, "oslo"]]})
        assert refused.status == 501 and "KNeighborsClassifier" in (await refused.json())["error"]
