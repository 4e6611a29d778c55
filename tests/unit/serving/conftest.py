"""Model directories for the server tests, trained with the project's trainer and written once per session."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from serving_helpers import Trained, iris_frame, mixed_frame, regression_frame, write_model_dir

from gyre.serving.model import ServedModel, load_served_model
from gyre.training.trainer import TrainOptions, train_model


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Trained]:
    """iris (numeric RF classifier, ONNX verified), mixed (string + numeric features), regression, and iris
    without ONNX (scikit-learn path)."""
    root = tmp_path_factory.mktemp("models")
    out: dict[str, Trained] = {}
    iris = iris_frame()
    result = train_model(
        iris, TrainOptions(target="target", estimator="RandomForestClassifier", params={"n_estimators": 20})
    )
    out["iris"] = Trained(result, write_model_dir(result, root / "iris", name="iris"), result.x_test)
    out["iris-sklearn"] = Trained(
        result, write_model_dir(result, root / "iris-sklearn", name="iris", onnx=False), result.x_test
    )
    mixed = mixed_frame()
    result = train_model(
        mixed, TrainOptions(target="label", estimator="RandomForestClassifier", params={"n_estimators": 10})
    )
    out["mixed"] = Trained(result, write_model_dir(result, root / "mixed", name="mixed"), result.x_test)
    reg = regression_frame()
    result = train_model(reg, TrainOptions(target="y", estimator="LinearRegression"))
    out["regression"] = Trained(
        result, write_model_dir(result, root / "regression", name="reg"), result.x_test
    )
    return out


@pytest.fixture
def copy_model(tmp_path: Path) -> Callable[[Path], Path]:
    """A private copy of a model directory, safe to tamper with."""

    def copy(source: Path) -> Path:
        target = tmp_path / source.name
        shutil.copytree(source, target)
        return target

    return copy


@pytest.fixture(scope="session")
def served(trained: dict[str, Trained]) -> Callable[[str, str], ServedModel]:
    """Loaded models, cached per (model, inference path): loading is the slow part, serving them is stateless."""
    cache: dict[tuple[str, str], ServedModel] = {}

    def get(name: str, inference: str = "auto") -> ServedModel:
        key = (name, inference)
        if key not in cache:
            cache[key] = load_served_model(str(trained[name].directory), inference=inference)  # type: ignore[arg-type]
        return cache[key]

    return get
