"""A real MLflow tracking server for the tracking tests, on loopback, for the session (tests/mlflowserver.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mlflowserver import MlflowServer, mlflow_server


@pytest.fixture(scope="session")
def tracking_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    with mlflow_server(tmp_path_factory.mktemp("mlflow")) as server:
        yield server
