"""`gyre drift run` with a performance check: concept drift on a local artifact store, as the check Job sees it."""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest
from perf_factories import model_manifest

from gyre.api.driftmonitor import MetricPerformance
from gyre.cli import main
from gyre.drift.monitor_run import CheckPerformance, CheckReport, performance_report_path
from gyre.drift.profile import build_profile
from gyre.drift.window import write_prediction_batch
from gyre.store.layout import feedback_batch_path, feedback_dir
from gyre.store.store import ArtifactStore
from gyre.store.termination import TERMINATION_MESSAGE_LIMIT

PROFILE = "datasets/ml/churn/" + "a" * 64 + "/profile.json"
MODEL = "models/ml/churn-a"


def setup_store(tmp_path: Path, *, threshold: float) -> str:
    """A model that learnt `x > 0` (test accuracy 0.95 on 500 rows), serving inputs distributed exactly as in
    training, whose true labels now follow `x > threshold`; and 300 rows an older version logged."""
    rng = np.random.default_rng(0)
    url = "file://" + str(tmp_path)
    store = ArtifactStore(url)
    store.write_bytes(PROFILE, build_profile(pd.DataFrame({"x": rng.normal(0, 1, 5000)})).to_json().encode())
    manifest = model_manifest([0, 1], {"accuracy": 0.95, "f1_macro": 0.95}, test_rows=500)
    store.write_bytes(f"{MODEL}/manifest.json", manifest.to_bytes())
    now = time.time()
    x = rng.normal(0, 1, 2000)
    rows = [
        {
            "id": f"req-{i}",
            "ts": now - 600 + i * 0.1,
            "model": "churn",
            "version": "churn-a",
            "inputs": {"x": float(v)},
            "outputs": {"predict": int(v > 0), "predict_proba": [float(v <= 0), float(v > 0)]},
        }
        for i, v in enumerate(x)
    ]
    old = [{**r, "id": f"old-{i}", "version": "churn-0"} for i, r in enumerate(rows[:300])]
    write_prediction_batch(store, "ml", "churn", "srv-0", old + rows, now_ms=int(now * 1000))
    labels = [{"id": f"req-{i}", "label": int(v > threshold), "ts": now - 60} for i, v in enumerate(x[:1000])]
    labels += [{"id": f"old-{i}", "label": 1} for i in range(50)] + [{"id": "nobody", "label": 1}]
    batch = tmp_path / feedback_batch_path("ml", "churn", int(now * 1000), "srv-0")
    batch.parent.mkdir(parents=True, exist_ok=True)
    batch.write_bytes(gzip.compress(b"".join(orjson.dumps(r) + b"\n" for r in labels)))
    bulk = tmp_path / feedback_dir("ml", "churn") / "late.csv"
    pd.DataFrame(
        {"id": [f"req-{i}" for i in range(1000, 1500)], "label": [int(v > threshold) for v in x[1000:1500]]}
    ).to_csv(bulk, index=False)
    return url


def run(
    tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch, *, model: str = MODEL
) -> tuple[int, CheckReport]:
    log = tmp_path / "termination-log"
    monkeypatch.setenv("GYRE_TERMINATION_LOG", str(log))
    monkeypatch.setenv("GYRE_DRIFT_CONFIG", json.dumps({"columns": ["x"]}))
    monkeypatch.setenv("GYRE_PERFORMANCE_CONFIG", json.dumps({"minLabelledRows": 200, "seed": 4}))
    args = ["--store", url, "--namespace", "ml", "--deployment", "churn", "--monitor", "m", "--check", "4"]
    args += ["--profile", PROFILE, "--performance-baseline", model, "--model-version", "churn-a"]
    code = main(["drift", "run", *args, "--performance-max-age-seconds", "3600"])
    return code, CheckReport.model_validate_json(log.read_text())


def test_concept_drift_is_no_input_drift_but_degraded_performance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = setup_store(tmp_path, threshold=0.8)
    code, report = run(tmp_path, url, monkeypatch)
    assert code == 0
    assert report.verdict == "no_drift", "the inputs are distributed exactly as in training"
    perf = report.performance
    assert perf is not None and perf.verdict == "degraded", perf
    assert perf.model_version == "churn-a" and perf.labelled_rows == 1500
    assert perf.prediction_rows == 2300 and perf.baseline_test_rows == 500
    assert perf.unknown_ids == 1, "old-version ids are known, only 'nobody' is unknown"
    accuracy = next(m for m in perf.metrics if m.name == "accuracy")
    assert accuracy.degraded and accuracy.value is not None and accuracy.value < 0.85
    assert perf.label_delay_seconds is not None and perf.label_delay_seconds > 0
    stored = json.loads(ArtifactStore(url).read_bytes(performance_report_path("ml", "m", 4)))
    assert stored["verdict"] == "degraded" and stored["seed"] == 4
    assert stored["join"]["otherVersionLabels"] == 50


def test_the_rule_the_model_learnt_still_holding_is_ok(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = setup_store(tmp_path, threshold=0.0)
    _, report = run(tmp_path, url, monkeypatch, model=f"{url}/{MODEL}")  # a model given by its URL
    assert report.performance is not None and report.performance.verdict == "ok"


def test_a_missing_manifest_fails_only_the_performance_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = setup_store(tmp_path, threshold=0.8)
    (tmp_path / MODEL / "manifest.json").unlink()
    code, report = run(tmp_path, url, monkeypatch)
    assert code == 0 and report.verdict == "no_drift"
    assert report.performance is not None and report.performance.verdict is None
    assert report.performance.error and "manifest.json" in report.performance.error


def test_the_termination_message_keeps_the_performance_part_within_4k() -> None:
    metric = MetricPerformance(name="accuracy", value=0.7, low=0.68, high=0.72, baseline=0.9, degraded=True)
    report = CheckReport(
        check=1,
        verdict="drift",
        features=[{"name": f"feature_{i:04d}", "drifted": True, "score": 0.123456} for i in range(200)],  # type: ignore[misc]
        error=None,
        performance=CheckPerformance(verdict="degraded", message="x" * 5000, metrics=[metric] * 3),
    )
    text = report.to_termination_message()
    assert len(text.encode()) <= TERMINATION_MESSAGE_LIMIT
    parsed = CheckReport.model_validate_json(text)
    assert parsed.performance is not None and parsed.performance.verdict == "degraded"
    assert len(parsed.performance.metrics) == 3 and parsed.features == [] and parsed.features_truncated
