"""The scikit-learn path: arrays instead of DataFrames, one thread, a forest's trees without joblib, and the same
answers as the model itself."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import skops.io as sio
from serving_helpers import Trained
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestRegressor

from gyre.serving.model import ServedModel, SklearnPredictor, load_served_model
from gyre.serving.schema import FeatureSchema
from gyre.training.manifest import FeatureSpec


def test_a_trained_forest_answers_on_arrays_exactly_as_its_pipeline(
    trained: dict[str, Trained], served: Callable[[str, str], ServedModel]
) -> None:
    model = served("iris-sklearn", "sklearn")
    predictor = model.predictor
    assert isinstance(predictor, SklearnPredictor) and predictor.fast
    rows = trained["iris-sklearn"].rows
    pipeline = trained["iris-sklearn"].result.pipeline
    out = predictor.predict(rows[list(model.schema.names)].to_numpy(dtype=np.float64), True)
    assert out.proba is not None
    assert out.predict.tolist() == pipeline.predict(rows).tolist()
    assert np.array_equal(out.proba, pipeline.predict_proba(rows))


def test_a_model_saved_with_every_core_is_served_single_threaded(tmp_path: Path) -> None:
    x, y = load_iris(return_X_y=True)
    forest = RandomForestRegressor(n_estimators=15, n_jobs=-1, random_state=0).fit(x, y)
    schema = FeatureSchema.from_specs([FeatureSpec(name=f"f{i}", kind="numeric") for i in range(4)])
    predictor = SklearnPredictor(
        sio.loads(sio.dumps(forest), trusted=sio.get_untrusted_types(data=sio.dumps(forest))), schema
    )
    assert predictor.model.n_jobs == 1 and predictor.fast
    assert np.array_equal(predictor.predict(x, False).predict, forest.predict(x))


def test_a_mixed_model_keeps_its_dataframe(trained: dict[str, Trained]) -> None:
    model = load_served_model(str(trained["mixed"].directory), inference="sklearn")
    predictor = model.predictor
    assert isinstance(predictor, SklearnPredictor) and not predictor.fast
