"""TrainingRuns and search trials logged to a real MLflow tracking server, read back through MLflow's own client.

The training runs in-process exactly as in its Job (`gyre train` with the env the builder writes: the tracking
server, the experiment, the TrainingRun's uid), on data profiled into a file store by `gyre profile`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from gyre.cli import main
from gyre.data.report import ProfileReport
from gyre.training.report import TrainReport
from mlflowserver import MlflowServer, free_port

UID = "6f1c1d2e-0000-4000-8000-000000000001"


@pytest.fixture
def profiled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, ProfileReport, Path]:
    """A Dataset version with a sensitive column, profiled into a file store as the profiling Job does."""
    log = tmp_path / "termination-log"
    monkeypatch.setenv("GYRE_TERMINATION_LOG", str(log))
    store = f"file://{tmp_path}/store"
    rng = np.random.default_rng(0)
    n = 300
    x = rng.choice([-1.0, 1.0], size=n) * rng.uniform(0.5, 1.0, size=n)
    group = np.where(rng.uniform(size=n) < 0.25, "b", "a")
    frame = pd.DataFrame({"x": x, "noise": rng.normal(size=n), "group": group})
    frame["label"] = np.where(group == "a", x > 0, x <= 0).astype(int)
    source = tmp_path / "store" / "sources" / "ml" / "loans.csv"
    source.parent.mkdir(parents=True)
    frame.to_csv(source, index=False)
    args = [
        "profile",
        "--store",
        store,
        "--namespace",
        "ml",
        "--name",
        "loans",
        "--source",
        f"file://{source}",
    ]
    assert main([*args, "--target", "label"]) == 0
    return store, ProfileReport.from_termination_message(log.read_text()), log


def train_in_job(
    monkeypatch: pytest.MonkeyPatch,
    profiled: tuple[str, ProfileReport, Path],
    spec: dict[str, Any],
    tracking_uri: str,
    *,
    experiment: str,
    trial: int | None = None,
) -> TrainReport:
    store, dataset, log = profiled
    assert dataset.data_uri and dataset.fingerprint
    monkeypatch.setenv("GYRE_TRAINING_SPEC", json.dumps(spec))
    monkeypatch.setenv("GYRE_TRIGGER", "drift:ml/loans-monitor#3")
    monkeypatch.setenv("GYRE_DATASET_VERSION", "4")
    monkeypatch.setenv("GYRE_IMAGE", "registry.example/gyre@sha256:" + "c" * 64)
    monkeypatch.setenv("GYRE_TRACKING_URI", tracking_uri)
    monkeypatch.setenv("GYRE_TRACKING_EXPERIMENT", experiment)
    monkeypatch.setenv("GYRE_TRAINING_RUN_UID", UID)
    if trial is not None:
        monkeypatch.setenv("JOB_COMPLETION_INDEX", str(trial))
    args = ["train", "--store", store, "--run", "ml/loans-dt", "--dataset-uri", dataset.data_uri, "--no-onnx"]
    assert main([*args, "--dataset-fingerprint", dataset.fingerprint, "--target", "label"]) == 0
    return TrainReport.from_termination_message(log.read_text())


def spec(**extra: Any) -> dict[str, Any]:
    return {
        "datasetRef": {"name": "loans"},
        "target": "label",
        "estimator": {"kind": "DecisionTreeClassifier", "params": {"max_depth": 1}},
        "gates": [{"metric": "accuracy", "min": 0.5}],
        "slices": {"columns": ["group"], "excludeFromFeatures": ["group"], "minCount": 5},
        **extra,
    }


def test_a_run_is_logged_with_params_metrics_lineage_and_its_manifest(
    tracking_server: MlflowServer, monkeypatch: pytest.MonkeyPatch, profiled: tuple[str, ProfileReport, Path]
) -> None:
    report = train_in_job(monkeypatch, profiled, spec(), tracking_server.uri, experiment="ml/loans")
    assert report.phase == "Succeeded"
    assert report.tracking is not None and report.tracking.logged, report.tracking
    [run] = tracking_server.read("ml/loans")["runs"]
    assert run["run_id"] == report.tracking.run_id and run["status"] == "FINISHED"
    assert run["name"] == "loans-dt"
    assert run["params"]["max_depth"] == "1" and run["params"]["estimator"] == "DecisionTreeClassifier"
    assert run["params"]["target"] == "label"
    assert run["metrics"]["accuracy"] == pytest.approx(report.metrics["accuracy"])
    # The slices: perfect on group a, wrong on b, and the gap between them.
    assert run["metrics"]["slice.group.a.accuracy"] == 1.0
    assert run["metrics"]["slice.group.b.accuracy"] == 0.0
    assert run["metrics"]["slice_gap.accuracy"] == 1.0
    tags = run["tags"]
    _store, dataset, _log = profiled
    assert {k: tags[k] for k in tags if k.startswith("gyre.") and k != "gyre.gates.message"} == {
        "gyre.trainingrun.namespace": "ml",
        "gyre.trainingrun.name": "loans-dt",
        "gyre.trainingrun.uid": UID,
        "gyre.role": "run",
        "gyre.dataset": "loans",
        "gyre.dataset.uri": dataset.data_uri,
        "gyre.dataset.version": "4",
        "gyre.dataset.fingerprint": dataset.fingerprint,
        "gyre.trigger": "drift:ml/loans-monitor#3",
        "gyre.image": "registry.example/gyre@sha256:" + "c" * 64,
        "gyre.estimator": "DecisionTreeClassifier",
        "gyre.task": "classification",
        "gyre.phase": "Succeeded",
        "gyre.model.uri": report.model_uri,
        "gyre.model.sha256": report.model_sha256,
        "gyre.onnx": "unavailable",
        "gyre.gates.passed": "true",
    }
    assert run["artifacts"] == ["card.html", "card.md", "manifest.json", "report.json"]
    assert report.model_uri is not None
    stored = Path(report.model_uri.removeprefix("file://")) / "manifest.json"
    assert run["manifest"] == stored.read_text()

    # The Job's pod is retried: the same TrainingRun (uid) reuses its run instead of adding one.
    again = train_in_job(monkeypatch, profiled, spec(), tracking_server.uri, experiment="ml/loans")
    assert again.tracking is not None and again.tracking.run_id == report.tracking.run_id
    assert [r["run_id"] for r in tracking_server.read("ml/loans")["runs"]] == [report.tracking.run_id]


def test_search_trials_are_child_runs_of_one_parent_that_ends_with_the_best_trial(
    tracking_server: MlflowServer, monkeypatch: pytest.MonkeyPatch, profiled: tuple[str, ProfileReport, Path]
) -> None:
    search = {"strategy": "grid", "space": {"max_depth": {"values": [1, 2, 4]}}}
    reports = {
        trial: train_in_job(
            monkeypatch,
            profiled,
            spec(search=search),
            tracking_server.uri,
            experiment="ml/search",
            trial=trial,
        )
        for trial in (2, 0, 1)
    }
    runs = tracking_server.read("ml/search")["runs"]
    [parent] = [r for r in runs if r["tags"].get("gyre.role") == "parent"]
    children = {int(r["tags"]["gyre.trial"]): r for r in runs if r["tags"].get("gyre.role") == "trial"}
    assert sorted(children) == [0, 1, 2] and len(runs) == 4
    for trial, child in children.items():
        assert child["tags"]["mlflow.parentRunId"] == parent["run_id"]
        assert child["params"]["max_depth"] == str(search["space"]["max_depth"]["values"][trial])
        assert child["run_id"] == reports[trial].tracking.run_id  # type: ignore[union-attr]
        assert child["name"] == f"loans-dt-trial-{trial}"
        assert child["artifacts"] == ["card.html", "card.md", "manifest.json", "report.json"]
    assert all(
        r.tracking is not None and r.tracking.parent_run_id == parent["run_id"] for r in reports.values()
    )
    # The parent: the search's own params, the lineage, and (once every trial finished) the best trial's metrics.
    assert parent["status"] == "FINISHED" and parent["name"] == "loans-dt"
    assert parent["params"]["search.strategy"] == "grid" and parent["params"]["search.metric"] == "accuracy"
    assert json.loads(parent["params"]["search.space"]) == {
        "max_depth": {"values": [1, 2, 4], "log": False, "type": "float"}
    }
    assert parent["tags"]["gyre.dataset.version"] == "4" and parent["tags"]["gyre.trainingrun.uid"] == UID
    scores = {t: c["metrics"]["accuracy"] for t, c in children.items()}
    best = min(scores, key=lambda t: (-scores[t], t))
    assert parent["tags"]["gyre.best_trial"] == str(best)
    assert parent["tags"]["gyre.trials.done"] == "3"
    assert parent["metrics"]["accuracy"] == scores[best]
    # The most complete view is the latest: its step is the number of trials finished.
    assert max(parent["history"]["accuracy"])[0] == 3


def test_an_unreachable_tracking_server_is_reported_and_training_stands(
    monkeypatch: pytest.MonkeyPatch, profiled: tuple[str, ProfileReport, Path]
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    report = train_in_job(monkeypatch, profiled, spec(), closed, experiment="ml/nowhere")
    assert report.phase == "Succeeded" and report.model_sha256
    assert report.tracking is not None and not report.tracking.logged
    assert report.tracking.message is not None
    assert f"cannot reach the MLflow server at {closed}" in report.tracking.message


def test_a_run_whose_training_failed_is_logged_as_failed_with_its_reason(
    tracking_server: MlflowServer, monkeypatch: pytest.MonkeyPatch, profiled: tuple[str, ProfileReport, Path]
) -> None:
    bad = spec(estimator={"kind": "DecisionTreeClassifier", "params": {"max_depth": -3}})
    store, dataset, log = profiled
    assert dataset.data_uri and dataset.fingerprint
    monkeypatch.setenv("GYRE_TRAINING_SPEC", json.dumps(bad))
    monkeypatch.setenv("GYRE_TRACKING_URI", tracking_server.uri)
    monkeypatch.setenv("GYRE_TRACKING_EXPERIMENT", "ml/failed")
    monkeypatch.setenv("GYRE_TRAINING_RUN_UID", UID)
    args = ["train", "--store", store, "--run", "ml/loans-dt", "--dataset-uri", dataset.data_uri, "--no-onnx"]
    assert main([*args, "--dataset-fingerprint", dataset.fingerprint, "--target", "label"]) == 1
    report = TrainReport.from_termination_message(log.read_text())
    assert report.phase == "Failed" and report.tracking is not None and report.tracking.logged
    [run] = tracking_server.read("ml/failed")["runs"]
    assert run["status"] == "FAILED" and run["artifacts"] == []
    assert run["tags"]["gyre.error.reason"] == report.reason
    assert run["tags"]["gyre.error"] == report.error
    assert run["tags"]["gyre.trainingrun.uid"] == UID and run["tags"]["gyre.dataset"] == "loans"
