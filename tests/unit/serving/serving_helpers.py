"""Helpers shared by the server tests (a uniquely named module: `conftest` is ambiguous across test folders)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from aiohttp import web
from aiohttp.test_utils import BaseTestServer, TestClient

from gyre.serving.app import ModelServer, ServerConfig
from gyre.serving.feedback import FeedbackWriter
from gyre.serving.model import ServedModel
from gyre.serving.predlog import PredictionLogger
from gyre.training import artifact
from gyre.training.manifest import Lineage
from gyre.training.trainer import TrainingResult


def write_model_dir(result: TrainingResult, directory: Path, *, name: str, onnx: bool = True) -> Path:
    """The trainer's writer: model.skops, model.onnx when verified, manifest.json."""
    artifact.write_model_dir(
        directory, result, name=name, dataset=None, lineage=Lineage(training_run=f"default/{name}"), onnx=onnx
    )
    return directory


def flip_byte(path: Path) -> None:
    """Tamper with a file: invert its middle byte."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@dataclass
class Trained:
    """A trained model, its directory and rows to query it with."""

    result: TrainingResult
    directory: Path
    rows: pd.DataFrame


def iris_frame() -> pd.DataFrame:
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame
    frame.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width", "target"]
    return frame


def mixed_frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 300
    colour = rng.choice(["red", "green", "blue"], size=n)
    size = rng.normal(10, 3, size=n)
    weight = rng.normal(5, 1, size=n)
    label = np.where((colour == "red") & (size > 9), "yes", "no")
    return pd.DataFrame({"size": size, "colour": colour, "weight": weight, "label": label})


def regression_frame() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 3))
    return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": x @ [1.5, -2.0, 0.5] + 0.1})


class _ModelTestServer(BaseTestServer):  # type: ignore[type-arg]
    """A loopback test server running exactly the low-level server that `gyre serve` runs."""

    def __init__(self, server: ModelServer) -> None:
        super().__init__()
        self._model_server = server

    async def _make_runner(self, **kwargs: Any) -> web.ServerRunner:
        return web.ServerRunner(self._model_server.server(access_log=None), **kwargs)


@asynccontextmanager
async def serve(
    model: ServedModel,
    config: ServerConfig | None = None,
    logger: PredictionLogger | None = None,
    feedback: FeedbackWriter | None = None,
) -> AsyncIterator[tuple[TestClient[Any, Any], ModelServer]]:
    """A running server on a loopback port and a client for it."""
    server = ModelServer(model, config, prediction_logger=logger, feedback_writer=feedback)
    client: TestClient[Any, Any] = TestClient(_ModelTestServer(server))
    await client.start_server()
    await server.start()
    try:
        yield client, server
    finally:
        await client.close()
        await server.close()


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def gyre_serve(model_dir: Path, *flags: str, env: dict[str, str] | None = None) -> Iterator[GyreProcess]:
    """The real `gyre serve` as a child process on a free loopback port, ready when this yields; stopped after."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gyre.cli", "serve", "--model-dir", str(model_dir), "--host", "127.0.0.1",
         "--port", str(port), *flags],
        env={**os.environ, "GYRE_LOG_STORE": "", "GYRE_ARTIFACT_STORE": "", **(env or {})},
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    served = GyreProcess(proc, f"http://127.0.0.1:{port}", port)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{served.url}/v2/health/ready", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "gyre serve never became ready"
            time.sleep(0.1)
        yield served
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@dataclass
class GyreProcess:
    """A running `gyre serve`."""

    proc: subprocess.Popen[str]
    url: str
    port: int

    def predict_one(self) -> int:
        """The status of one v1 prediction for one iris row."""
        request = urllib.request.Request(
            f"{self.url}/v1/models/iris:predict", data=b'{"instances": [[5.1, 3.5, 1.4, 0.2]]}', method="POST"
        )
        with urllib.request.urlopen(request, timeout=30) as r:
            return int(r.status)

    def open_files(self) -> int:
        """How many file descriptors the server holds now."""
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))
