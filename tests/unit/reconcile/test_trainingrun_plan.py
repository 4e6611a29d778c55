"""plan_trainingrun on plain data: every decision the TrainingRun controller makes, without an API server."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from gyre.api.common import find_condition
from gyre.api.dataset import DatasetSpec, DatasetStatus
from gyre.api.trainingrun import TrainingRunSpec, TrainingRunStatus
from gyre.builders.meta import Owner
from gyre.builders.settings import OperatorSettings
from gyre.reconcile.observed import JobOutcome, JobView, PodResult
from gyre.reconcile.plan import Create, status_patch
from gyre.reconcile.trainingrun import DatasetView, ObservedTrainingRun, plan_trainingrun, plan_would_change
from gyre.training.report import GateOutcome, TrainReport

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
FP = "sha256:" + "b" * 64
OWNER = Owner(kind="TrainingRun", name="iris-rf", namespace="ml", uid="uid-1")
SETTINGS = OperatorSettings(artifact_store="pvc://gyre-artifacts", image="gyre:test")
RUNNING_JOB = JobView("iris-rf-train", "uid-1", "trainer", JobOutcome(False, False))


def ready_dataset(**status: Any) -> DatasetView:
    body: dict[str, Any] = {
        "phase": "Ready",
        "fingerprint": FP,
        "version": 2,
        "dataUri": f"file:///s/datasets/ml/iris/{'b' * 64}/data.parquet",
        "columns": [{"name": n, "kind": "numeric", "dtype": "float64"} for n in ("petal", "sepal", "target")],
        "columnCount": 3,
        **status,
    }
    spec = DatasetSpec.model_validate({"source": {"uri": "builtin://iris"}, "target": "target"})
    return DatasetView(spec=spec, status=DatasetStatus.model_validate(body))


def observed(status: TrainingRunStatus | None = None, **kw: Any) -> ObservedTrainingRun:
    spec_body = {"datasetRef": {"name": "iris"}, "estimator": {"kind": "RandomForestClassifier"}}
    overrides = kw.pop("spec", {})
    spec_body.update(overrides or {})
    base = ObservedTrainingRun(
        owner=OWNER,
        spec=None if overrides is None else TrainingRunSpec.model_validate(spec_body),
        spec_error=None,
        status=status or TrainingRunStatus(),
        settings=SETTINGS,
        now=NOW,
        dataset=ready_dataset(),
    )
    return replace(base, **kw)


def running() -> TrainingRunStatus:
    """The status right after the Job was created."""
    return plan_trainingrun(observed()).status


def kinds(plan_actions: list[Any]) -> list[str]:
    return [a.body["kind"] for a in plan_actions if isinstance(a, Create)]


def test_a_new_run_on_a_ready_dataset_creates_its_claim_and_job_and_says_started() -> None:
    plan = plan_trainingrun(observed())
    assert kinds(plan.actions) == ["PersistentVolumeClaim", "Job"]
    assert plan.status.phase == "Running" and plan.status.job_name == "iris-rf-train"
    assert plan.status.dataset_fingerprint == FP and plan.status.dataset_version == 2
    assert [(e.type, e.reason) for e in plan.events] == [("Normal", "Started")]


def test_a_run_whose_job_exists_already_creates_nothing_and_posts_no_second_started() -> None:
    plan = plan_trainingrun(observed(job=RUNNING_JOB))
    assert plan.actions == [] and plan.events == []
    assert plan.status.phase == "Running"


def test_a_running_run_with_a_running_job_is_steady_and_writes_nothing() -> None:
    status = running()
    plan = plan_trainingrun(observed(status, job=RUNNING_JOB))
    assert plan.actions == [] and plan.events == []
    assert status_patch(status, plan.status) == {}


@pytest.mark.parametrize(
    ("dataset", "reason"),
    [(None, "DatasetNotFound"), (ready_dataset(phase="Profiling"), "DatasetNotReady")],
)
def test_a_run_waits_for_its_dataset_and_says_why_only_once(dataset: DatasetView | None, reason: str) -> None:
    first = plan_trainingrun(observed(dataset=dataset))
    # Pending is what the controller's timer plans again every WAIT_SECONDS.
    assert first.status.phase == "Pending" and first.actions == []
    assert [e.reason for e in first.events] == [reason]
    again = plan_trainingrun(observed(first.status, dataset=dataset))
    assert again.events == [] and status_patch(first.status, again.status) == {}


def test_a_permanent_dataset_problem_fails_the_run_with_a_warning() -> None:
    plan = plan_trainingrun(observed(spec={"features": ["nope"]}))
    assert plan.status.phase == "Failed" and plan.actions == []
    failed = find_condition(plan.status.conditions or [], "Failed")
    assert failed is not None and failed.reason == "UnknownColumns" and "nope" in failed.message
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "UnknownColumns")]


def test_a_transform_on_a_column_the_dataset_lacks_fails_the_run_with_a_warning_naming_it() -> None:
    features = {"columns": ["petal"], "transforms": [{"columns": ["ghost"], "steps": [{"log": {}}]}]}
    plan = plan_trainingrun(observed(spec={"features": features}))
    assert plan.status.phase == "Failed" and plan.actions == []
    failed = find_condition(plan.status.conditions or [], "Failed")
    assert failed is not None and failed.reason == "UnknownColumns"
    assert "no column(s) ghost" in failed.message
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "UnknownColumns")]


def test_an_invalid_stored_spec_fails_the_run_instead_of_crash_looping() -> None:
    plan = plan_trainingrun(observed(spec=None, spec_error="spec.estimator.kind: Input should be ..."))
    assert plan.status.phase == "Failed" and plan.actions == []
    assert [e.reason for e in plan.events] == ["InvalidSpec"]


def test_a_search_over_the_trial_limit_fails_before_any_job() -> None:
    space = {"n_estimators": {"values": list(range(1, 31))}, "max_depth": {"values": list(range(1, 31))}}
    plan = plan_trainingrun(observed(spec={"search": {"strategy": "grid", "space": space}}))
    assert plan.status.phase == "Failed" and plan.actions == []
    assert [e.reason for e in plan.events] == ["SearchTooLarge"]


def test_a_running_run_whose_job_vanished_fails_with_job_missing() -> None:
    plan = plan_trainingrun(observed(running(), job=None))
    assert plan.status.phase == "Failed" and plan.actions == []
    assert [e.reason for e in plan.events] == ["JobMissing"]


def test_a_finished_job_is_folded_into_metrics_model_and_gates() -> None:
    report = TrainReport(
        phase="Succeeded",
        metrics={"accuracy": 0.95},
        model_uri="file:///s/models/ml/iris-rf",
        model_sha256="f" * 64,
        gates=GateOutcome(passed=True),
    )
    done = replace(RUNNING_JOB, outcome=JobOutcome(True, True, completion_time="2026-12-01T12:05:00Z"))
    pods = [PodResult("iris-rf-train-x", None, 0, "Completed", report.to_termination_message())]
    plan = plan_trainingrun(
        observed(running(), spec={"gates": [{"metric": "accuracy", "min": 0.9}]}, job=done, pods=pods)
    )
    assert plan.status.phase == "Succeeded" and plan.status.model_uri == "file:///s/models/ml/iris-rf"
    validated = find_condition(plan.status.conditions or [], "Validated")
    assert validated is not None and validated.status == "True"
    assert [e.reason for e in plan.events] == ["Succeeded"]


def test_a_job_that_failed_before_any_pod_ran_explains_the_stuck_pod() -> None:
    failed = replace(RUNNING_JOB, outcome=JobOutcome(True, False, "DeadlineExceeded", "too slow"))
    pods = [PodResult("iris-rf-train-x", None, None, "ImagePullBackOff", "no such image", terminated=False)]
    plan = plan_trainingrun(observed(running(), job=failed, pods=pods))
    assert plan.status.phase == "Failed"
    message = plan.events[0].message
    assert "too slow" in message and "never ran: ImagePullBackOff (no such image)" in message


@pytest.mark.parametrize("phase", ["Succeeded", "Failed"])
def test_a_finished_run_is_never_changed_again(phase: str) -> None:
    status = TrainingRunStatus(phase=phase, job_name="iris-rf-train")  # type: ignore[arg-type]
    plan = plan_trainingrun(observed(status, job=None, dataset=None))
    assert plan.actions == [] and plan.events == [] and status_patch(status, plan.status) == {}


def test_a_run_asking_for_an_image_outside_the_policy_fails_with_the_reason_and_creates_nothing() -> None:
    plan = plan_trainingrun(observed(spec={"image": "evil.example.com/miner:1"}))
    assert plan.actions == [] and plan.status.phase == "Failed"
    failed = find_condition(plan.status.conditions or [], "Failed")
    assert failed is not None and failed.reason == "ImageNotAllowed"
    assert "evil.example.com/miner:1" in failed.message and "policy.images" in failed.message
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "ImageNotAllowed")]


def test_a_run_asking_for_an_image_the_admin_allowed_trains_with_it() -> None:
    settings = SETTINGS.model_copy(update={"allowed_images": ("registry.example.com/ml/",)})
    plan = plan_trainingrun(observed(spec={"image": "registry.example.com/ml/trainer:2"}, settings=settings))
    job = next(a.body for a in plan.actions if isinstance(a, Create) and a.body["kind"] == "Job")
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example.com/ml/trainer:2"
    assert plan.status.phase == "Running"


FINISHED_JOB = replace(RUNNING_JOB, outcome=JobOutcome(True, False, "DeadlineExceeded", "too slow"))


def test_a_running_run_whose_job_runs_needs_no_plan_and_its_plan_is_indeed_empty() -> None:
    status = running()
    assert not plan_would_change(status.phase, RUNNING_JOB)
    plan = plan_trainingrun(observed(status, job=RUNNING_JOB))
    assert plan.actions == [] and plan.events == [] and status_patch(status, plan.status) == {}


@pytest.mark.parametrize("job", [None, RUNNING_JOB, FINISHED_JOB])
def test_a_finished_run_needs_no_plan_whatever_its_job_and_its_plan_is_indeed_empty(
    job: JobView | None,
) -> None:
    finished = plan_trainingrun(observed(running(), job=FINISHED_JOB)).status
    assert finished.phase == "Failed"
    assert not plan_would_change(finished.phase, job)
    plan = plan_trainingrun(observed(finished, job=job))
    assert plan.actions == [] and plan.events == [] and status_patch(finished, plan.status) == {}


def test_a_running_run_whose_job_is_not_in_the_index_yet_waits_for_the_jobs_own_events() -> None:
    assert not plan_would_change("Running", None)


@pytest.mark.parametrize(
    ("phase", "job"), [(None, None), ("Pending", None), ("Running", FINISHED_JOB), ("Pending", RUNNING_JOB)]
)
def test_a_new_or_waiting_run_and_a_run_whose_job_finished_are_planned(
    phase: str | None, job: JobView | None
) -> None:
    assert plan_would_change(phase, job)
