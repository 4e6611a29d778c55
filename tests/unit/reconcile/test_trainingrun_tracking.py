"""Which MLflow server a TrainingRun is logged to, and how the pods' outcomes become status and conditions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from gyre.api.common import find_condition
from gyre.api.trainingrun import TrainingRunSpec, TrainingRunStatus
from gyre.builders.meta import Owner
from gyre.builders.settings import OperatorSettings
from gyre.builders.tracking import resolve_tracking, tracking_env
from gyre.policy.sources import SourcePolicy
from gyre.reconcile.plan import Create, Event
from gyre.reconcile.trainingrun import apply_training_result
from gyre.training.report import TrackingOutcome, TrainReport

OWNER = Owner(kind="TrainingRun", name="loans-lr", namespace="ml", uid="u-1")
T0 = datetime(2026, 11, 1, tzinfo=UTC)
OPERATOR = OperatorSettings(tracking_uri="http://mlflow.mlops:5000", tracking_secret="mlflow")


def spec(**overrides: Any) -> TrainingRunSpec:
    body: dict[str, Any] = {"datasetRef": {"name": "loans"}, "estimator": {"kind": "LogisticRegression"}}
    body.update(overrides)
    return TrainingRunSpec.model_validate(body)


def env_of(s: TrainingRunSpec, settings: OperatorSettings) -> dict[str, Any]:
    plan = resolve_tracking(OWNER, s, settings)
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in tracking_env(OWNER, plan)}


def test_without_a_server_nothing_is_logged() -> None:
    assert resolve_tracking(OWNER, spec(), OperatorSettings()) is None
    assert resolve_tracking(OWNER, spec(tracking={"enabled": False}), OPERATOR) is None


def test_the_operators_server_with_the_namespaces_secret() -> None:
    got = env_of(spec(), OPERATOR)
    assert got["GYRE_TRACKING_URI"] == "http://mlflow.mlops:5000"
    assert got["GYRE_TRACKING_EXPERIMENT"] == "ml/loans"
    assert got["GYRE_TRAINING_RUN_UID"] == "u-1"
    assert got["MLFLOW_TRACKING_TOKEN"] == {
        "secretKeyRef": {"name": "mlflow", "key": "MLFLOW_TRACKING_TOKEN", "optional": True}
    }


def test_the_spec_names_its_own_server_experiment_and_credentials() -> None:
    ref = {"name": "team-mlflow", "key": "token"}
    s = spec(tracking={"uri": "https://mlflow.team.example", "experiment": "churn", "tokenSecretRef": ref})
    got = env_of(s, OPERATOR)
    assert (got["GYRE_TRACKING_URI"], got["GYRE_TRACKING_EXPERIMENT"]) == (
        "https://mlflow.team.example",
        "churn",
    )
    assert got["MLFLOW_TRACKING_TOKEN"] == {"secretKeyRef": {"name": "team-mlflow", "key": "token"}}
    assert "MLFLOW_TRACKING_USERNAME" not in got


def test_a_spec_server_the_source_policy_refuses_is_not_logged_to() -> None:
    metadata = spec(tracking={"uri": "http://169.254.169.254/latest"})
    plan = resolve_tracking(OWNER, metadata, OPERATOR)
    assert plan is not None and plan.uri is None
    assert plan.refusal is not None and plan.refusal.startswith(
        "spec.tracking.uri: source http://169.254.169.254"
    )
    assert tracking_env(OWNER, plan) == []
    strict = OperatorSettings(source_policy=SourcePolicy(hosts=("*.corp.example",)))
    assert resolve_tracking(OWNER, spec(tracking={"uri": "https://mlflow.corp.example"}), strict) is not None
    refused = resolve_tracking(OWNER, spec(tracking={"uri": "https://mlflow.elsewhere.example"}), strict)
    assert refused is not None and refused.refusal is not None and "(hosts)" in refused.refusal


def test_the_artifact_store_secret_is_never_a_tracking_credential() -> None:
    settings = OperatorSettings(artifact_store="s3://bucket", artifact_secret="store-keys")
    s = spec(tracking={"uri": "https://mlflow.example", "tokenSecretRef": {"name": "store-keys", "key": "k"}})
    plan = resolve_tracking(OWNER, s, settings)
    assert plan is not None and plan.uri is None
    assert plan.refusal is not None and "artifact store's Secret store-keys" in plan.refusal


def test_credentials_come_as_a_token_or_a_user_and_password() -> None:
    ref = {"name": "s", "key": "k"}
    with pytest.raises(ValidationError, match="go together"):
        spec(tracking={"usernameSecretRef": ref})
    with pytest.raises(ValidationError, match="not both"):
        spec(tracking={"tokenSecretRef": ref, "usernameSecretRef": ref, "passwordSecretRef": ref})
    with pytest.raises(ValidationError, match="uri"):
        spec(tracking={"uri": "http://user:secret@mlflow.example"})


def report(index: int, outcome: TrackingOutcome | None) -> TrainReport:
    return TrainReport(
        phase="Succeeded",
        trial_index=index,
        metrics={"accuracy": 0.9 + index / 100},
        model_uri=f"file:///s/models/ml/loans-lr/trials/{index}",
        model_sha256="f" * 64,
        tracking=outcome,
    )


def logged(run: str, parent: str | None = None) -> TrackingOutcome:
    return TrackingOutcome(
        logged=True,
        experiment_id="7",
        run_id=run,
        parent_run_id=parent,
        url=f"http://mlflow/#/experiments/7/runs/{run}",
        parent_url=f"http://mlflow/#/experiments/7/runs/{parent}" if parent else None,
    )


def test_a_logged_run_is_tracked_in_status() -> None:
    status, events = apply_training_result(
        TrainingRunStatus(phase="Running"), spec(), {0: report(0, logged("r1"))}, generation=1, finished_at=T0
    )
    assert status.tracking is not None and (status.tracking.experiment_id, status.tracking.run_id) == (
        "7",
        "r1",
    )
    assert status.tracking.url == "http://mlflow/#/experiments/7/runs/r1"
    tracked = find_condition(status.conditions or [], "Tracked")
    assert tracked is not None and (tracked.status, tracked.reason) == ("True", "Tracked")
    assert tracked.message == "logged as MLflow run r1 in experiment 7"
    assert not [e for e in events if e.type == "Warning"]


def test_a_search_points_at_its_parent_and_a_failed_trial_log_is_a_warning_not_a_failure() -> None:
    s = spec(search={"strategy": "grid", "space": {"C": {"values": [0.1, 1.0]}}})
    failed = TrackingOutcome(
        logged=False, message="MlflowError: cannot reach the MLflow server at http://mlflow"
    )
    reports = {0: report(0, logged("c0", "p")), 1: report(1, failed)}
    status, events = apply_training_result(
        TrainingRunStatus(phase="Running"), s, reports, generation=1, finished_at=T0
    )
    assert status.phase == "Succeeded" and status.best_trial == 1
    assert status.tracking is not None and (status.tracking.run_id, status.tracking.failed_trials) == ("p", 1)
    tracked = find_condition(status.conditions or [], "Tracked")
    message = "1 of 2 runs not logged to MLflow; trial 1: MlflowError: cannot reach the MLflow server at http://mlflow"
    assert tracked is not None and (tracked.status, tracked.reason, tracked.message) == (
        "False",
        "TrackingFailed",
        message,
    )
    assert Event("Warning", "TrackingFailed", message) in events


def test_no_tracked_condition_when_no_pod_tried() -> None:
    status, _ = apply_training_result(
        TrainingRunStatus(phase="Running"), spec(), {0: report(0, None)}, generation=1, finished_at=T0
    )
    assert status.tracking is None and find_condition(status.conditions or [], "Tracked") is None


def test_a_refused_server_trains_anyway_with_a_condition_and_one_warning() -> None:
    from gyre.api.dataset import DatasetSpec, DatasetStatus
    from gyre.reconcile.trainingrun import DatasetView, ObservedTrainingRun, plan_trainingrun

    dataset = DatasetView(
        DatasetSpec.model_validate({"source": {"uri": "builtin://iris"}, "target": "target"}),
        DatasetStatus.model_validate(
            {
                "phase": "Ready",
                "fingerprint": "sha256:" + "b" * 64,
                "version": 1,
                "dataUri": "file:///d/data.parquet",
            }
        ),
    )
    obs = ObservedTrainingRun(
        owner=OWNER,
        spec=spec(tracking={"uri": "http://localhost:5000"}),
        spec_error=None,
        status=TrainingRunStatus(),
        settings=OPERATOR,
        now=T0,
        dataset=dataset,
    )
    plan = plan_trainingrun(obs)
    assert plan.status.phase == "Running" and len(plan.actions) >= 1
    [job] = [a.body for a in plan.actions if isinstance(a, Create) and a.body["kind"] == "Job"]
    names = [e["name"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]]
    assert "GYRE_TRACKING_URI" not in names
    tracked = find_condition(plan.status.conditions or [], "Tracked")
    assert tracked is not None and (tracked.status, tracked.reason) == ("False", "TrackingRefused")
    assert [(e.type, e.reason) for e in plan.events if e.type == "Warning"] == [
        ("Warning", "TrackingRefused")
    ]
