"""TrainingRun slices as the operator sees them: columns checked against the Dataset, status, slice gates."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gyre.api.common import find_condition
from gyre.api.dataset import DatasetSpec, DatasetStatus
from gyre.api.slices import SliceGap, SliceResult, SlicesStatus
from gyre.api.trainingrun import TrainingRunSpec, TrainingRunStatus
from gyre.builders.meta import Owner
from gyre.builders.settings import OperatorSettings
from gyre.reconcile.plan import Event
from gyre.reconcile.trainingrun import (
    DatasetProblem,
    DatasetView,
    ObservedTrainingRun,
    apply_training_result,
    plan_trainingrun,
    resolve_dataset,
)
from gyre.training.report import GateOutcome, TrainReport

T0 = datetime(2026, 11, 1, tzinfo=UTC)
B = "sha256:" + "b" * 64


def spec(slices: dict[str, Any], **overrides: Any) -> TrainingRunSpec:
    body: dict[str, Any] = {
        "datasetRef": {"name": "loans"},
        "estimator": {"kind": "LogisticRegression"},
        "slices": slices,
    }
    body.update(overrides)
    return TrainingRunSpec.model_validate(body)


def dataset() -> DatasetView:
    status = DatasetStatus.model_validate(
        {
            "phase": "Ready",
            "fingerprint": B,
            "version": 1,
            "dataUri": f"file:///s/datasets/ml/loans/{'b' * 64}/data.parquet",
            "columns": [
                {"name": n, "kind": k, "dtype": "object"}
                for n, k in (("income", "numeric"), ("region", "categorical"), ("approved", "binary"))
            ],
            "columnCount": 3,
        }
    )
    return DatasetView(
        DatasetSpec.model_validate({"source": {"uri": "builtin://iris"}, "target": "approved"}), status
    )


def test_a_slice_column_the_dataset_lacks_fails_the_run_with_its_name() -> None:
    got = resolve_dataset(spec({"columns": ["region", "sex"]}), dataset())
    assert isinstance(got, DatasetProblem) and got.permanent and got.reason == "UnknownColumns"
    assert got.message.startswith(
        "spec.slices.columns names sex, not in Dataset loans; it has: income, region"
    )


def test_the_dataset_target_is_not_a_slice_column() -> None:
    got = resolve_dataset(spec({"columns": ["approved"]}), dataset())
    assert isinstance(got, DatasetProblem) and (got.reason, got.permanent) == ("InvalidSpec", True)


def test_a_slice_metric_the_task_lacks_is_a_condition_and_a_warning() -> None:
    owner = Owner(kind="TrainingRun", name="run", namespace="ml", uid="u1", generation=1)
    obs = ObservedTrainingRun(
        owner=owner,
        spec=spec({"columns": ["region"], "metrics": ["rmse"]}),
        spec_error=None,
        status=TrainingRunStatus(),
        settings=OperatorSettings(),
        now=T0,
        dataset=dataset(),
    )
    plan = plan_trainingrun(obs)
    failed = find_condition(plan.status.conditions or [], "Failed")
    assert plan.status.phase == "Failed" and failed is not None and failed.reason == "InvalidSpec"
    assert failed.message is not None and failed.message.startswith(
        "spec.slices: rmse is not a classification"
    )
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "InvalidSpec")]
    assert plan.actions == []


def measured(lowest: float, highest: float) -> SlicesStatus:
    return SlicesStatus(
        columns=["region"],
        metric="accuracy",
        min_count=30,
        total=3,
        slices=[
            SliceResult(column="region", value="south", count=40, metrics={"accuracy": lowest}),
            SliceResult(column="region", value="north", count=50, metrics={"accuracy": highest}),
            SliceResult(column="region", value="east", count=3, metrics={"accuracy": 0.0}),
        ],
        gaps=[
            SliceGap(
                metric="accuracy",
                column="region",
                gap=highest - lowest,
                lowest="south",
                lowest_score=lowest,
                highest="north",
                highest_score=highest,
            )
        ],
    )


def report(slices: SlicesStatus) -> TrainReport:
    return TrainReport(
        phase="Succeeded",
        metrics={"accuracy": 0.9},
        model_uri="file:///s/models/ml/run",
        model_sha256="f" * 64,
        gates=GateOutcome(passed=True),
        slices=slices,
    )


def test_status_carries_the_slices_and_validated_names_the_failed_slice_gate() -> None:
    s = spec(
        {"columns": ["region"], "gates": [{"metric": "accuracy", "maxGap": 0.1}]},
        gates=[{"metric": "accuracy", "min": 0.8}],
    )
    status, events = apply_training_result(
        TrainingRunStatus(phase="Running"), s, {0: report(measured(0.7, 0.95))}, generation=1, finished_at=T0
    )
    assert status.slices == measured(0.7, 0.95)
    validated = find_condition(status.conditions or [], "Validated")
    message = (
        "slice gate accuracy gap across region 0.25 > maxGap 0.1 (region=south 0.7 vs region=north 0.95)"
    )
    assert validated is not None and (validated.status, validated.reason, validated.message) == (
        "False",
        "GatesFailed",
        message,
    )
    assert Event("Warning", "GatesFailed", message) in events


def test_both_kinds_of_gates_passing_validate_the_model() -> None:
    s = spec(
        {"columns": ["region"], "gates": [{"metric": "accuracy", "maxGap": 0.1, "min": 0.8}]},
        gates=[{"metric": "accuracy", "min": 0.8}],
    )
    status, _ = apply_training_result(
        TrainingRunStatus(phase="Running"), s, {0: report(measured(0.88, 0.93))}, generation=1, finished_at=T0
    )
    validated = find_condition(status.conditions or [], "Validated")
    assert validated is not None and (validated.status, validated.message) == ("True", "all 3 gates passed")


def test_a_report_without_slices_fails_the_slice_gate_rather_than_passing_it() -> None:
    s = spec({"columns": ["region"], "gates": [{"metric": "accuracy", "maxGap": 0.1}]})
    bare = TrainReport(
        phase="Succeeded", metrics={"accuracy": 0.9}, model_uri="file:///s/m", model_sha256="f" * 64
    )
    status, _ = apply_training_result(
        TrainingRunStatus(phase="Running"), s, {0: bare}, generation=1, finished_at=T0
    )
    validated = find_condition(status.conditions or [], "Validated")
    assert validated is not None and validated.status == "False"
    assert validated.message is not None and "not measured" in validated.message
