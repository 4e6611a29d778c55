"""TrainingRun decisions that need no API server: which dataset version, which trial wins, what the gates say."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gyre.api.common import find_condition
from gyre.api.dataset import DatasetSpec, DatasetStatus
from gyre.api.trainingrun import TrainingRunSpec, TrainingRunStatus
from gyre.builders.job import DatasetInput
from gyre.reconcile.plan import Event
from gyre.reconcile.trainingrun import (
    DatasetProblem,
    DatasetView,
    apply_training_result,
    primary_metric,
    resolve_dataset,
)
from gyre.training.report import GateOutcome, TrainReport

T0 = datetime(2026, 11, 1, tzinfo=UTC)
A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64


def spec(**overrides: Any) -> TrainingRunSpec:
    body: dict[str, Any] = {"datasetRef": {"name": "iris"}, "estimator": {"kind": "RandomForestClassifier"}}
    body.update(overrides)
    return TrainingRunSpec.model_validate(body)


def dataset(phase: str = "Ready", target: str | None = "target", **status: Any) -> DatasetView:
    base: dict[str, Any] = {
        "phase": phase,
        "fingerprint": B,
        "version": 2,
        "dataUri": f"file:///s/datasets/ml/iris/{'b' * 64}/data.parquet",
        "columns": [{"name": n, "kind": "numeric", "dtype": "float64"} for n in ("petal", "sepal", "target")],
        "columnCount": 3,
        "history": [
            {"version": 2, "fingerprint": B, "rows": 150, "createdAt": "2026-11-02T00:00:00Z"},
            {"version": 1, "fingerprint": A, "rows": 140, "createdAt": "2026-11-01T00:00:00Z"},
        ],
    }
    base.update(status)
    spec = DatasetSpec.model_validate({"source": {"uri": "builtin://iris"}, "target": target})
    return DatasetView(spec=spec, status=DatasetStatus.model_validate(base))


def test_waiting_for_a_dataset_is_not_a_failure() -> None:
    missing = resolve_dataset(spec(), None)
    assert isinstance(missing, DatasetProblem) and (missing.reason, missing.permanent) == (
        "DatasetNotFound",
        False,
    )
    busy = resolve_dataset(spec(), dataset(phase="Profiling"))
    assert isinstance(busy, DatasetProblem) and (busy.reason, busy.permanent) == ("DatasetNotReady", False)
    assert "it is Profiling" in busy.message


def test_current_version_by_default() -> None:
    got = resolve_dataset(spec(), dataset())
    assert got == DatasetInput(
        name="iris",
        uri=f"file:///s/datasets/ml/iris/{'b' * 64}/data.parquet",
        fingerprint=B,
        version=2,
        target="target",
        columns=(("petal", "numeric"), ("sepal", "numeric"), ("target", "numeric")),
    )


def test_pinned_older_version_is_found_in_history() -> None:
    got = resolve_dataset(spec(datasetRef={"name": "iris", "fingerprint": A}), dataset())
    assert isinstance(got, DatasetInput)
    assert (got.fingerprint, got.version) == (A, 1)
    assert got.uri == f"file:///s/datasets/ml/iris/{'a' * 64}/data.parquet"


def test_pinned_unknown_fingerprint_fails_with_a_clear_message() -> None:
    pin = "sha256:" + "c" * 64
    got = resolve_dataset(spec(datasetRef={"name": "iris", "fingerprint": pin}), dataset())
    assert isinstance(got, DatasetProblem) and got.permanent
    assert got.reason == "FingerprintMismatch"
    assert pin in got.message and B in got.message and "status.history" in got.message


def test_unknown_target_or_features_fail() -> None:
    got = resolve_dataset(spec(target="label", features=["petal", "color"]), dataset())
    assert isinstance(got, DatasetProblem) and got.reason == "UnknownColumns"
    assert "label, color" in got.message
    got = resolve_dataset(spec(), dataset(target=None))
    assert isinstance(got, DatasetProblem) and got.reason == "NoTarget"


def test_primary_metric_defaults() -> None:
    assert primary_metric(spec()) == ("accuracy", "maximize")
    assert primary_metric(spec(estimator={"kind": "Ridge"})) == ("r2", "maximize")
    assert primary_metric(spec(estimator={"kind": "Ridge"}, metrics=["rmse", "r2"])) == ("rmse", "minimize")


def report(acc: float, index: int = 0, **kw: Any) -> TrainReport:
    return TrainReport(
        phase="Succeeded",
        trial_index=index,
        metrics={"accuracy": acc, "f1_macro": acc - 0.01},
        params={"n_estimators": 10 * (index + 1)},
        model_uri=f"file:///s/models/ml/run/trials/{index}",
        model_sha256="f" * 64,
        onnx="verified",
        gates=GateOutcome(passed=True),
        **kw,
    )


def apply(
    s: TrainingRunSpec, reports: dict[int, TrainReport]
) -> tuple[TrainingRunStatus, list[tuple[str, str, str]]]:
    return apply_training_result(TrainingRunStatus(phase="Running"), s, reports, generation=1, finished_at=T0)


def test_single_run_success_with_gates() -> None:
    status, events = apply(spec(gates=[{"metric": "accuracy", "min": 0.9}]), {0: report(0.95)})
    assert (status.phase, status.score, status.primary_metric) == ("Succeeded", 0.95, "accuracy")
    assert status.model_uri == "file:///s/models/ml/run/trials/0"
    assert status.onnx is not None and status.onnx.status == "verified"
    assert status.trials is None and status.best_trial is None
    validated = find_condition(status.conditions or [], "Validated")
    assert validated is not None and (validated.status, validated.reason) == ("True", "GatesPassed")
    assert [(e.type, e.reason) for e in events] == [("Normal", "Succeeded")]


def test_failed_gate_is_a_succeeded_run_that_is_not_validated() -> None:
    status, events = apply(spec(gates=[{"metric": "accuracy", "min": 0.99}]), {0: report(0.95)})
    assert status.phase == "Succeeded"
    validated = find_condition(status.conditions or [], "Validated")
    assert validated is not None and (validated.status, validated.message) == (
        "False",
        "accuracy 0.95 < min 0.99",
    )
    assert Event("Warning", "GatesFailed", "accuracy 0.95 < min 0.99") in events


def test_search_picks_the_best_trial_and_keeps_failed_ones() -> None:
    s = spec(search={"strategy": "grid", "space": {"n_estimators": {"values": [10, 20, 30]}}})
    failed = TrainReport(phase="Failed", trial_index=2, reason="TrainingFailed", error="bad params")
    status, _ = apply(s, {0: report(0.90, 0), 1: report(0.97, 1), 2: failed})
    assert (status.best_trial, status.score, status.params) == (1, 0.97, {"n_estimators": 20})
    assert status.trials is not None
    assert [(t.index, t.phase) for t in status.trials] == [(0, "Succeeded"), (1, "Succeeded"), (2, "Failed")]
    assert status.trials[2].message == "bad params"


def test_minimize_goal() -> None:
    s = spec(
        estimator={"kind": "Ridge"},
        search={"strategy": "grid", "metric": "rmse", "space": {"alpha": {"values": [0.1, 1.0]}}},
    )
    r0 = report(0.0, 0)
    r0.metrics = {"rmse": 3.0}
    r1 = report(0.0, 1)
    r1.metrics = {"rmse": 2.0}
    status, _ = apply(s, {0: r0, 1: r1})
    assert (status.best_trial, status.score) == (1, 2.0)


def test_all_failed_surfaces_the_pod_error() -> None:
    failed = TrainReport(
        phase="Failed", reason="OOMKilled", error="the container ran out of memory (limit 2Gi)"
    )
    status, events = apply(spec(), {0: failed})
    assert status.phase == "Failed"
    cond = find_condition(status.conditions or [], "Failed")
    assert cond is not None and (cond.status, cond.reason) == ("True", "OOMKilled")
    assert "out of memory" in cond.message
    assert events == [Event("Warning", "Failed", "the container ran out of memory (limit 2Gi)")]


def _succeeded(index: int, accuracy: float, *, card: bool | None = True) -> TrainReport:
    return TrainReport(
        phase="Succeeded",
        metrics={"accuracy": accuracy},
        model_uri=f"s3://b/models/ml/run/trials/{index}",
        model_sha256="d" * 64,
        card=card,
    )


def test_the_status_links_the_card_beside_the_best_trials_model() -> None:
    searched = spec(search={"strategy": "grid", "space": {"max_depth": {"values": [2, 4]}}})
    status, _ = apply_training_result(
        TrainingRunStatus(),
        searched,
        {0: _succeeded(0, 0.8), 1: _succeeded(1, 0.9)},
        generation=1,
        finished_at=T0,
    )
    assert status.card is not None
    assert status.card.markdown_uri == "s3://b/models/ml/run/trials/1/card.md"
    assert status.card.html_uri == "s3://b/models/ml/run/trials/1/card.html"


def test_a_model_whose_pod_wrote_no_card_links_none() -> None:
    status, _ = apply_training_result(
        TrainingRunStatus(), spec(), {0: _succeeded(0, 0.9, card=None)}, generation=1, finished_at=T0
    )
    assert status.phase == "Succeeded" and status.card is None


def test_the_best_trials_top_importances_are_in_status() -> None:
    from gyre.api.trainingrun import FeatureImportance, ImportanceSummary

    def top(name: str) -> ImportanceSummary:
        return ImportanceSummary(
            metric="accuracy", repeats=5, rows=30, top=[FeatureImportance(name=name, mean=0.3, std=0.01)]
        )

    s = spec(search={"strategy": "grid", "space": {"n_estimators": {"values": [10, 20]}}})
    status, _ = apply(s, {0: report(0.90, 0, importances=top("a")), 1: report(0.97, 1, importances=top("b"))})
    assert status.importances == top("b")
    dumped = status.model_dump(by_alias=True, exclude_none=True)
    assert dumped["importances"]["top"] == [{"name": "b", "mean": 0.3, "std": 0.01}]
