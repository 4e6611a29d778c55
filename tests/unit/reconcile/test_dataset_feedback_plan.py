"""plan_dataset for a feedback source: it waits for its deployment's model and its mergeWith version, then reads."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from gyre.api.common import find_condition
from gyre.api.dataset import DatasetSpec, DatasetStatus, DatasetVersion
from gyre.api.modeldeployment import ModelDeploymentStatus, ModelVersion
from gyre.builders.meta import Owner
from gyre.builders.settings import OperatorSettings
from gyre.policy.sources import SourcePolicy
from gyre.reconcile.dataset import FeedbackInputs, ObservedDataset, plan_dataset
from gyre.reconcile.plan import Create

NOW = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
OWNER = Owner(kind="Dataset", name="iris-feedback", namespace="ml", uid="uid-f", generation=1)
SETTINGS = OperatorSettings(artifact_store="pvc://gyre-artifacts", image="gyre:test")
MODEL_URI = "pvc://gyre-artifacts/models/ml/iris-rf"
FP_CURRENT = "sha256:" + "a" * 64
FP_OLD = "sha256:" + "b" * 64
SERVING = ModelDeploymentStatus(
    model_version=ModelVersion(training_run="iris-rf", uri=MODEL_URI, sha256="c" * 64)
)


def spec(**feedback: Any) -> DatasetSpec:
    return DatasetSpec.model_validate(
        {"source": {"feedback": {"deploymentRef": {"name": "iris"}, **feedback}}}
    )


def observed(
    dataset_spec: DatasetSpec,
    inputs: FeedbackInputs | None,
    status: DatasetStatus | None = None,
    settings: OperatorSettings = SETTINGS,
) -> ObservedDataset:
    return ObservedDataset(
        owner=OWNER,
        spec=dataset_spec,
        spec_error=None,
        status=status or DatasetStatus(),
        settings=settings,
        now=NOW,
        feedback=inputs,
    )


def job_args(plan_actions: list[Any]) -> list[str]:
    (job,) = [a.body for a in plan_actions if isinstance(a, Create) and a.body["kind"] == "Job"]
    args: list[str] = job["spec"]["template"]["spec"]["containers"][0]["args"]
    return args


def ready(status: DatasetStatus) -> tuple[str, str, str]:
    cond = find_condition(status.conditions or [], "Ready")
    assert cond is not None
    return cond.status, cond.reason, cond.message


MERGE_STATUS = DatasetStatus(
    phase="Ready",
    version=3,
    fingerprint=FP_CURRENT,
    history=[
        DatasetVersion(version=3, fingerprint=FP_CURRENT, rows=150, created_at=NOW),
        DatasetVersion(version=2, fingerprint=FP_OLD, rows=100, created_at=NOW),
    ],
)


def test_a_feedback_source_reads_the_served_models_log_in_a_profiling_job() -> None:
    plan = plan_dataset(observed(spec(), FeedbackInputs(deployment=SERVING)))
    args = job_args(plan.actions)
    assert args[args.index("--source") + 1] == "feedback://iris"
    assert args[args.index("--model-uri") + 1] == MODEL_URI
    assert args[args.index("--model-sha256") + 1] == "c" * 64
    assert "--merge-dataset" not in args
    assert plan.status.phase == "Profiling"


def test_without_its_deployment_the_dataset_waits_pending_and_says_why_once() -> None:
    plan = plan_dataset(observed(spec(), FeedbackInputs(deployment=None)))
    assert plan.actions == [] and plan.status.phase == "Pending"
    assert ready(plan.status) == ("False", "FeedbackNotReady", "ModelDeployment iris does not exist")
    assert [(e.type, e.reason) for e in plan.events] == [("Normal", "FeedbackNotReady")]
    again = plan_dataset(observed(spec(), FeedbackInputs(deployment=None), plan.status))
    assert again.actions == [] and again.events == [] and again.status == plan.status


def test_a_waiting_dataset_starts_its_read_once_the_deployment_serves_a_model() -> None:
    waiting = plan_dataset(observed(spec(), FeedbackInputs(deployment=ModelDeploymentStatus()))).status
    assert "serves no model yet" in ready(waiting)[2]
    plan = plan_dataset(observed(spec(), FeedbackInputs(deployment=SERVING), waiting))
    assert job_args(plan.actions) and plan.status.phase == "Profiling"


@pytest.mark.parametrize(
    ("version", "fingerprint"),
    [(None, FP_CURRENT), (3, FP_CURRENT), (2, FP_OLD)],
)
def test_merge_with_pins_the_named_version_of_the_other_dataset(
    version: int | None, fingerprint: str
) -> None:
    merge: dict[str, Any] = {"datasetRef": {"name": "iris"}}
    if version is not None:
        merge["version"] = version
    plan = plan_dataset(
        observed(spec(mergeWith=merge), FeedbackInputs(deployment=SERVING, merge=MERGE_STATUS))
    )
    args = job_args(plan.actions)
    assert args[args.index("--merge-dataset") + 1] == "iris"
    assert args[args.index("--merge-fingerprint") + 1] == fingerprint


@pytest.mark.parametrize(
    ("merge", "inputs", "says"),
    [
        (
            {"datasetRef": {"name": "iris"}},
            FeedbackInputs(deployment=SERVING),
            "Dataset iris (mergeWith) does not exist",
        ),
        (
            {"datasetRef": {"name": "iris"}, "version": 1},
            FeedbackInputs(deployment=SERVING, merge=MERGE_STATUS),
            "has no version 1 in its history (kept: 3, 2)",
        ),
        (
            {"datasetRef": {"name": "iris"}},
            FeedbackInputs(deployment=SERVING, merge=DatasetStatus(phase="Profiling")),
            "has no profiled version yet",
        ),
        (
            {"datasetRef": {"name": "iris-feedback"}},
            FeedbackInputs(deployment=SERVING, merge=MERGE_STATUS),
            "mergeWith names this Dataset itself",
        ),
    ],
)
def test_a_merge_version_that_cannot_be_read_holds_the_dataset_with_the_reason(
    merge: dict[str, Any], inputs: FeedbackInputs, says: str
) -> None:
    plan = plan_dataset(observed(spec(mergeWith=merge), inputs))
    assert plan.actions == [] and plan.status.phase == "Pending"
    status, reason, message = ready(plan.status)
    assert (status, reason) == ("False", "FeedbackNotReady") and says in message


def test_a_policy_without_the_feedback_scheme_refuses_the_source() -> None:
    policy = SourcePolicy(schemes=("builtin", "file"))
    settings = SETTINGS.model_copy(update={"source_policy": policy})
    plan = plan_dataset(observed(spec(), FeedbackInputs(deployment=SERVING), settings=settings))
    assert plan.actions == [] and plan.status.phase == "Failed"
    _, reason, message = ready(plan.status)
    assert reason == "SourceRefused" and "scheme feedback:// is not allowed" in message


def test_a_merge_version_counts_from_one() -> None:
    merge = {"datasetRef": {"name": "y"}, "version": 0}
    with pytest.raises(ValidationError, match="version"):
        spec(mergeWith=merge)


@pytest.mark.parametrize(
    ("reason", "phase"), [("InsufficientFeedback", "Pending"), ("SchemaMismatch", "Failed")]
)
def test_too_few_labels_on_the_first_read_leave_the_dataset_pending_not_failed(
    reason: str, phase: str
) -> None:
    from gyre.data.report import ProfileReport
    from gyre.reconcile.dataset import apply_profile_result

    report = ProfileReport(phase="Failed", reason=reason, error="why")
    status, said, _ = apply_profile_result(
        DatasetStatus(phase="Profiling"),
        report,
        history_limit=10,
        generation=1,
        finished_at=NOW,
        refresh=False,
    )
    assert status.phase == phase and said == reason
    assert ready(status) == ("False", reason, "why")


def test_a_feedback_dataset_waiting_for_labels_is_re_read_on_its_schedule() -> None:
    from datetime import timedelta

    from gyre.api.common import set_condition

    dataset_spec = DatasetSpec.model_validate(
        {"source": {"feedback": {"deploymentRef": {"name": "iris"}}}, "refreshInterval": "10m"}
    )
    conditions = set_condition([], "Ready", "False", "InsufficientFeedback", "0 labelled", generation=1)
    waiting = DatasetStatus(
        phase="Pending",
        observed_generation=1,
        conditions=conditions,
        last_profile_time=NOW - timedelta(hours=1),
    )
    obs = observed(dataset_spec, FeedbackInputs(deployment=SERVING), waiting)
    plan = plan_dataset(ObservedDataset(**{**obs.__dict__, "refresh_due_check": True}))
    assert job_args(plan.actions)
    assert find_condition(plan.status.conditions or [], "Refreshing") is not None
