"""The card's figures computed in a forked child while the model files are written (gyre.training.forked)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gyre.api.trainingrun import TrainingRunSpec
from gyre.training.forked import Forked
from gyre.training.run import TrainJob, run_training


def test_the_work_runs_in_a_child_and_its_bytes_come_back() -> None:
    parent = os.getpid()
    with Forked(lambda: str(os.getpid()).encode()) as forked:
        child = int(forked.result())
    assert child != parent
    assert forked.result() == str(child).encode()  # kept, not run again


def test_work_that_fails_in_the_child_is_run_again_here_and_raises_here() -> None:
    calls = []

    def work() -> bytes:
        calls.append(os.getpid())
        raise ValueError("no figures")

    with Forked(work) as forked, pytest.raises(ValueError, match="no figures"):
        forked.result()
    assert calls == [os.getpid()]  # the child's call happened in the child's memory


def test_large_results_pass_the_pipe_and_an_unread_child_is_reaped() -> None:
    payload = os.urandom(1 << 20)  # far beyond a pipe's buffer
    with Forked(lambda: payload) as forked:
        assert forked.result() == payload
    with Forked(lambda: payload) as unread:
        pid = unread._pid
    assert pid is not None
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # already reaped


@pytest.mark.parametrize("kind", ["XGBClassifier", "LGBMRegressor", "LogisticRegression"])
def test_a_forked_run_writes_the_same_model_directory_as_a_serial_one(kind: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(rng.normal(size=(600, 4)), columns=["a", "b", "c", "d"])
    frame.loc[::11, "b"] = np.nan
    frame["amount"] = frame["a"] * 2 + rng.normal(0, 0.1, 600)
    frame["label"] = np.where(frame["a"] + frame["c"] > 0, "up", "down")
    target = "amount" if kind.endswith("Regressor") else "label"
    data = tmp_path / "data.csv"
    frame.drop(columns=[{"amount": "label", "label": "amount"}[target]]).to_csv(data, index=False)
    spec = TrainingRunSpec.model_validate(
        {"datasetRef": {"name": "d"}, "target": target, "estimator": {"kind": kind, "params": {}}}
    )
    manifests = {}
    for parallel in (True, False):
        out = tmp_path / f"parallel-{parallel}"
        job = TrainJob(
            spec=spec,
            dataset_uri=f"file://{data}",
            namespace="ml",
            name="r",
            out_dir=str(out),
            parallel=parallel,
        )
        report = run_training(job)
        assert report.phase == "Succeeded", report.error
        manifests[parallel] = json.loads((out / "manifest.json").read_text())
        manifests[parallel].pop("createdAt")
        for part in ("artifact", "onnx"):  # skops and ONNX files carry their writing time
            manifests[parallel][part].pop("sha256", None)
    assert manifests[True]["evaluation"]["intervals"]  # the child's figures reached the manifest
    assert manifests[True]["dataSummary"]["columns"]
    assert manifests[True] == manifests[False]
