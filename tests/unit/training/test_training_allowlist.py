"""A real allowlist: a model file holds only what Gyre's trainer produces, plus what an import explicitly allows."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from gyre.cli import main
from gyre.training.artifact import UntrustedModelError, load_model_dir, model_types, write_model_dir
from gyre.training.estimators import ESTIMATORS, task_of
from gyre.training.manifest import ModelManifest
from gyre.training.trainer import TrainOptions, train_model

FUNCTION_TRANSFORMER = "sklearn.preprocessing._function_transformer.FunctionTransformer"


def _small(name: str) -> dict[str, Any]:
    if name.startswith("HistGradientBoosting"):
        return {"max_iter": 3}
    if "Forest" in name or "Trees" in name or name.startswith("GradientBoosting"):
        return {"n_estimators": 3}
    return {}


# Parameters that change what a fitted estimator holds (index structures, distance metrics, losses).
_VARIANTS: dict[str, list[dict[str, Any]]] = {
    "KNeighborsClassifier": [{"algorithm": "ball_tree", "metric": "manhattan"}, {"metric": "chebyshev"}],
    "KNeighborsRegressor": [{"algorithm": "kd_tree", "p": 3}, {"algorithm": "brute", "metric": "cosine"}],
    "GradientBoostingRegressor": [{"loss": "huber"}, {"loss": "quantile"}, {"loss": "absolute_error"}],
    "GradientBoostingClassifier": [{"loss": "exponential"}],
    "HistGradientBoostingRegressor": [{"loss": "poisson"}, {"loss": "absolute_error"}],
    "LogisticRegression": [{"C": 0.5}],
}
# The preprocessing options of gyre.training.preprocess: scalers, encoders, imputation, passthrough.
_PREPROCESSING: list[dict[str, Any]] = [
    {},
    {"numeric": "robust", "categorical": "ordinal"},
    {"numeric": "none", "impute": False},
]


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_a_model_from_gyres_trainer_loads_for_every_allowlisted_estimator(
    name: str, mixed_frame: pd.DataFrame, tmp_path: Path
) -> None:
    target = "label" if task_of(name) == "classification" else "amount"
    frame = mixed_frame.drop(columns=["amount" if target == "label" else "label"])
    if name == "HistGradientBoostingRegressor":
        frame = frame.assign(amount=frame["amount"].abs())  # poisson needs a non-negative target
    runs = [(_small(name), options) for options in _PREPROCESSING]
    runs += [({**_small(name), **params}, {}) for params in _VARIANTS.get(name, [])]
    for index, (params, options) in enumerate(runs):
        data = frame if options.get("impute", True) else frame.dropna()
        result = train_model(data, TrainOptions(target=target, estimator=name, params=params, **options))
        directory = tmp_path / str(index)
        write_model_dir(directory, result, name="m", dataset=None, onnx=False)
        loaded = load_model_dir(directory)
        x = result.x_test.head(10)
        assert loaded.model.predict(x).tolist() == result.pipeline.predict(x).tolist(), (params, options)


def _negating_pipeline() -> Any:
    return Pipeline([("negate", FunctionTransformer(np.negative)), ("model", LogisticRegression())]).fit(
        np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 0, 1, 1]
    )


def test_every_type_and_function_is_enumerated_not_only_skops_untrusted_ones() -> None:
    data = sio.dumps(_negating_pipeline())
    assert sio.get_untrusted_types(data=data) == []  # why the old check let it through
    types = model_types(data)
    assert types["numpy.negative"] == FUNCTION_TRANSFORMER
    assert {"sklearn.pipeline.Pipeline", FUNCTION_TRANSFORMER, "numpy.ndarray"} <= set(types)


def test_a_function_transformer_with_numpy_negative_is_refused_with_the_type_named(tmp_path: Path) -> None:
    # An attacker who controls an unpinned model directory: the skops file and a manifest that matches it.
    result = train_model(
        pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0] * 5, "y": [0, 0, 1, 1] * 5}),
        TrainOptions(target="y", estimator="LogisticRegression"),
    )
    manifest = write_model_dir(tmp_path, result, name="m", dataset=None, onnx=False)
    data = sio.dumps(_negating_pipeline())
    (tmp_path / "model.skops").write_bytes(data)
    forged = manifest.model_copy(
        update={"artifact": manifest.artifact.model_copy(update={"sha256": hashlib.sha256(data).hexdigest()})}
    )
    (tmp_path / "manifest.json").write_bytes(forged.to_bytes())
    with pytest.raises(UntrustedModelError) as info:
        load_model_dir(tmp_path)
    assert str(info.value).startswith(
        f"model.skops contains numpy.negative (in {FUNCTION_TRANSFORMER}), which Gyre's allowlist does not include"
    )
    assert "--allow-type" in str(info.value)


def _import(tmp_path: Path, out: str, *extra: str) -> list[str]:
    joblib.dump(_negating_pipeline(), tmp_path / "model.joblib")
    args = ["model", "import", "--from-joblib", str(tmp_path / "model.joblib"), "--name", "neg"]
    return [*args, "--feature-names", "x", "--out", str(tmp_path / out), "--trust-pickle", *extra]


def test_an_import_refuses_a_type_outside_the_allowlist_unless_explicitly_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_import(tmp_path, "refused")) == 2
    assert "numpy.negative" in capsys.readouterr().err
    assert not (tmp_path / "refused" / "manifest.json").exists()

    assert (
        main(_import(tmp_path, "out", "--allow-type", "numpy.negative", "--allow-type", "numpy.log1p")) == 0
    )
    digest = hashlib.sha256((tmp_path / "out" / "manifest.json").read_bytes()).hexdigest()
    assert f"digest (pin) {digest}" in capsys.readouterr().out
    manifest = ModelManifest.model_validate_json((tmp_path / "out" / "manifest.json").read_bytes())
    assert manifest.artifact.allowed_types == ["numpy.negative"]  # only what the model holds is recorded

    loaded = load_model_dir(tmp_path / "out", expect_sha256=digest)
    x = np.array([[0.0], [3.0]])
    assert loaded.model.predict(x).tolist() == _negating_pipeline().predict(x).tolist()


def test_an_imported_extra_type_is_honoured_only_under_the_pin_that_covers_it(tmp_path: Path) -> None:
    assert main(_import(tmp_path, "out", "--allow-type", "numpy.negative")) == 0
    directory = tmp_path / "out"
    digest = hashlib.sha256((directory / "manifest.json").read_bytes()).hexdigest()
    with pytest.raises(
        UntrustedModelError, match=f"honours only for a pinned model: serve it with --expect-sha256 {digest}"
    ):
        load_model_dir(directory)

    # Without the manifest's allowance (and pinned to that manifest), the allowlist alone refuses the model.
    manifest = ModelManifest.model_validate_json((directory / "manifest.json").read_bytes())
    stripped = manifest.model_copy(
        update={"artifact": manifest.artifact.model_copy(update={"allowed_types": []})}
    )
    (directory / "manifest.json").write_bytes(stripped.to_bytes())
    with pytest.raises(UntrustedModelError, match=r"model\.skops contains numpy\.negative"):
        load_model_dir(directory, expect_sha256=stripped.sha256())
