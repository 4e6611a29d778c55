"""High-cardinality categoricals (issue 13): capped one-hot columns, bounded memory, a clear error instead of a
MemoryError."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gyre.training import trainer
from gyre.training.trainer import TrainingError, TrainOptions, train_model

PEAK_RSS_LIMIT = 2 << 30
"""The 1M-distinct-value run must stay under this (measured: about 0.8 GiB); a dense one-hot needs terabytes."""


def test_a_column_with_a_million_distinct_values_trains_in_bounded_memory(tmp_path: Path) -> None:
    n = 1_000_000
    rng = np.random.default_rng(0)
    x = rng.normal(size=n)
    segment = rng.choice([f"seg{i}" for i in range(30)], n)
    frame = pd.DataFrame(
        {
            "user": np.char.add("user-", np.arange(n).astype(str)),
            "segment": segment,
            "x": x,
            "y": 2 * x + (segment == "seg3") * 1.5 + rng.normal(0, 0.1, n),
        }
    )
    data = tmp_path / "users.parquet"
    frame.to_parquet(data, index=False)
    del frame
    out = tmp_path / "model"
    # A child process, its output in files, reaped by wait4: its peak RSS is the training's alone.
    with open(tmp_path / "stdout", "w+") as out_file, open(tmp_path / "stderr", "w+") as err_file:
        command = ["train", "--local", "--dataset", f"file://{data}", "--target", "y", "--estimator", "Ridge"]
        child = subprocess.Popen(
            [sys.executable, "-m", "gyre", *command, "--out", str(out)],
            stdout=out_file,
            stderr=err_file,
        )
        _pid, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        stdout, stderr = (tmp_path / "stdout").read_text(), (tmp_path / "stderr").read_text()
    peak = usage.ru_maxrss * 1024
    assert child.returncode == 0, stderr[-2000:] + stdout[-2000:]
    report = json.loads(stdout.strip().splitlines()[-1])
    assert report["metrics"]["r2"] > 0.99
    assert report["onnx"] == "verified", report.get("onnxReason")
    manifest = json.loads((out / "manifest.json").read_text())
    user = next(f for f in manifest["features"] if f["name"] == "user")
    assert user["categories"] is None, "a million categories are not copied into the manifest"
    assert (out / "model.skops").stat().st_size < 2 << 20, "the encoder keeps only the frequent categories"
    print(f"1M-distinct-value column: peak RSS {peak / (1 << 20):.0f} MiB")
    assert peak < PEAK_RSS_LIMIT


def test_a_dense_only_estimator_too_big_for_memory_is_refused_before_fitting_with_what_to_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(1)
    n = 5000
    frame = pd.DataFrame({"city": rng.choice([f"c{i}" for i in range(3000)], n), "x": rng.normal(size=n)})
    frame["y"] = frame["x"] * 2
    monkeypatch.setattr(trainer, "memory_budget", lambda: 16 << 20)  # a 16 MiB container
    options = TrainOptions(
        target="y", estimator="HistGradientBoostingRegressor", params={"max_iter": 2}, max_categories=2000
    )
    with pytest.raises(TrainingError, match=r"lower preprocessing\.maxCategories") as caught:
        train_model(frame, options)
    assert caught.value.reason == "FeaturesTooLarge"
    assert "dense because HistGradientBoostingRegressor needs dense input" in str(caught.value)
    # The default cap fits the same container.
    small = train_model(frame, TrainOptions(target="y", estimator="HistGradientBoostingRegressor"))
    assert small.metrics["r2"] > 0.9


def test_the_default_one_hot_caps_columns_and_maps_unseen_values_to_the_infrequent_column() -> None:
    rng = np.random.default_rng(2)
    n = 3000
    frame = pd.DataFrame({"city": rng.choice([f"c{i}" for i in range(500)], n), "x": rng.normal(size=n)})
    frame["label"] = np.where(frame["x"] > 0, "a", "b")
    result = train_model(
        frame, TrainOptions(target="label", estimator="LogisticRegression", max_categories=20)
    )
    encoded = result.pipeline.named_steps["preprocess"].transform(
        pd.DataFrame({"city": ["c1", "never-seen"], "x": [0.0, 0.0]})
    )
    dense = encoded.toarray() if hasattr(encoded, "toarray") else np.asarray(encoded)
    assert dense.shape[1] == 20 + 1, "19 kept categories, the infrequent column, and x"
    names = list(result.pipeline.named_steps["preprocess"].get_feature_names_out())
    infrequent = names.index("categorical__city___infrequent__")
    assert dense[1, infrequent] == 1.0
