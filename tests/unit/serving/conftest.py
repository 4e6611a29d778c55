"""Model directories for the server tests, trained with the project's trainer and written once per session."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from aiohttp.test_utils import TestClient, TestServer

from gyre.serving.app import ModelServer, ServerConfig
from gyre.serving.model import ServedModel, load_served_model
from gyre.serving.predlog import PredictionLogger
from gyre.training import artifact
from gyre.training.manifest import Lineage
from gyre.training.trainer import TrainingResult, TrainOptions, train_model


def write_model_dir(result: TrainingResult, directory: Path, *, name: str, onnx: bool = True) -> Path:
    """The trainer's writer: model.skops, model.onnx when verified, manifest.json."""
    artifact.write_model_dir(
        directory, result, name=name, dataset=None, lineage=Lineage(training_run=f"default/{name}"), onnx=onnx
    )
    return directory


@dataclass
class Trained:
    """A trained model, its directory and rows to query it with."""

    result: TrainingResult
    directory: Path
    rows: pd.DataFrame


def _iris_frame() -> pd.DataFrame:
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame
    frame.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width", "target"]
    return frame


def _mixed_frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 300
    colour = rng.choice(["red", "green", "blue"], size=n)
    size = rng.normal(10, 3, size=n)
    weight = rng.normal(5, 1, size=n)
    label = np.where((colour == "red") & (size > 9), "yes", "no")
    return pd.DataFrame({"size": size, "colour": colour, "weight": weight, "label": label})


def _regression_frame() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 3))
    return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": x @ [1.5, -2.0, 0.5] + 0.1})


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Trained]:
    """iris (numeric RF classifier, ONNX verified), mixed (string + numeric features), regression, and iris
    without ONNX (scikit-learn path)."""
    root = tmp_path_factory.mktemp("models")
    out: dict[str, Trained] = {}
    iris = _iris_frame()
    result = train_model(
        iris, TrainOptions(target="target", estimator="RandomForestClassifier", params={"n_estimators": 20})
    )
    out["iris"] = Trained(result, write_model_dir(result, root / "iris", name="iris"), result.x_test)
    out["iris-sklearn"] = Trained(
        result, write_model_dir(result, root / "iris-sklearn", name="iris", onnx=False), result.x_test
    )
    mixed = _mixed_frame()
    result = train_model(
        mixed, TrainOptions(target="label", estimator="RandomForestClassifier", params={"n_estimators": 10})
    )
    out["mixed"] = Trained(result, write_model_dir(result, root / "mixed", name="mixed"), result.x_test)
    reg = _regression_frame()
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


@asynccontextmanager
async def serve(
    model: ServedModel,
    config: ServerConfig | None = None,
    logger: PredictionLogger | None = None,
) -> AsyncIterator[tuple[TestClient[Any, Any], ModelServer]]:
    """A running server on a loopback port and a client for it."""
    server = ModelServer(model, config, prediction_logger=logger)
    client: TestClient[Any, Any] = TestClient(TestServer(server.app()))
    await client.start_server()
    try:
        yield client, server
    finally:
        await client.close()


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
