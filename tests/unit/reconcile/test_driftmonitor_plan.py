"""plan_driftmonitor on plain data: waiting, checks, verdicts, the retrain guard rails and steps, the Job history."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gyre.api.common import REFRESH_ANNOTATION, find_condition
from gyre.api.dataset import ColumnStatus, DatasetStatus
from gyre.api.driftmonitor import DriftMonitorSpec, DriftMonitorStatus
from gyre.api.features import FeaturesSpec
from gyre.api.modeldeployment import ModelDeploymentStatus, ModelVersion
from gyre.api.trainingrun import TrainingRunSpec, TrainingRunStatus
from gyre.builders.meta import Owner
from gyre.builders.settings import OperatorSettings
from gyre.drift.monitor_run import CheckFeature, CheckReport
from gyre.reconcile.driftmonitor import (
    DriftMonitorPlan,
    ObservedDriftMonitor,
    ServedRun,
    plan_driftmonitor,
)
from gyre.reconcile.observed import JobOutcome, JobView, PodResult
from gyre.reconcile.plan import Create, Delete, MergePatch, status_patch
from gyre.reconcile.trainingrun import DatasetView

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
FP = "sha256:" + "b" * 64
OWNER = Owner(kind="DriftMonitor", name="iris", namespace="ml", uid="uid-m", generation=1)
SETTINGS = OperatorSettings(artifact_store="pvc://gyre-artifacts", image="gyre:test")
RUNNING = JobOutcome(False, False)
DONE = JobOutcome(True, True, completion_time="2026-12-01T12:00:00Z")
FAILED = JobOutcome(True, False, "DeadlineExceeded", "too slow")
RETRAIN = {"enabled": True, "consecutiveChecks": 2, "cooldown": "1h", "maxPerDay": 3}

DEPLOYMENT = ModelDeploymentStatus(model_version=ModelVersion(training_run="iris-a"))
SERVED = ServedRun(
    name="iris-a",
    labels={"app": "iris", "gyre.dev/owner-kind": "ModelDeployment"},
    spec=TrainingRunSpec.model_validate(
        {
            "datasetRef": {"name": "iris", "fingerprint": FP},
            "estimator": {"kind": "RandomForestClassifier"},
        }
    ),
    status=TrainingRunStatus(phase="Succeeded", dataset_fingerprint=FP),
)
COLUMNS = [ColumnStatus(name=n, kind="numeric", dtype="float64") for n in ("sepal", "petal", "target")]
DATASET = DatasetView(
    spec=None,
    status=DatasetStatus(
        phase="Ready",
        fingerprint=FP,
        version=1,
        columns=COLUMNS,
        target="target",
        last_profile_time=NOW - timedelta(hours=1),
    ),
)


def spec(**over: Any) -> DriftMonitorSpec:
    base: dict[str, Any] = {"deploymentRef": {"name": "iris"}, "schedule": {"interval": "20s"}}
    return DriftMonitorSpec.model_validate({**base, **over})


def observed(status: DriftMonitorStatus | None = None, **kw: Any) -> ObservedDriftMonitor:
    base = ObservedDriftMonitor(
        owner=OWNER,
        spec=spec(),
        spec_error=None,
        status=status or DriftMonitorStatus(),
        settings=SETTINGS,
        now=NOW,
        deployment=DEPLOYMENT,
        served_run=SERVED,
        dataset=DATASET,
    )
    return replace(base, **kw)


def job(name: str, outcome: JobOutcome = RUNNING, created: str = "") -> JobView:
    return JobView(name, OWNER.uid, "drift-check", outcome, created=created)


def pod(report: CheckReport | str) -> PodResult:
    message = report if isinstance(report, str) else report.to_termination_message()
    return PodResult("iris-check-1-x", None, 0, "Completed", message)


def report(verdict: str | None = "drift", **kw: Any) -> CheckReport:
    features = [
        CheckFeature(name="sepal", method="psi", score=0.4, threshold=0.2, drifted=verdict == "drift"),
        CheckFeature(name="petal", method="psi", score=0.01, threshold=0.2, drifted=False),
    ]
    args: dict[str, Any] = {
        "check": 1,
        "verdict": verdict,
        "drift_share": 0.5 if verdict == "drift" else 0.0,
        "current_rows": 500,
        "features": features,
        "report_uri": "pvc://gyre-artifacts/drift/ml/iris/00000001.json",
        "html_report_uri": "pvc://gyre-artifacts/drift/ml/iris/00000001.html",
    }
    args.update(kw)
    return CheckReport(**args)


def condition(plan: DriftMonitorPlan, type_: str) -> tuple[str, str] | None:
    cond = find_condition(plan.status.conditions or [], type_)
    return (cond.status, cond.reason) if cond else None


def events(plan: DriftMonitorPlan) -> list[str]:
    return [e.reason for e in plan.events]


def kinds(plan: DriftMonitorPlan) -> list[str]:
    out = []
    for action in plan.actions:
        if isinstance(action, Create):
            out.append(f"Create {action.body['kind']}")
        else:
            out.append(f"{type(action).__name__} {action.kind}")
    return out


def checking(**status: Any) -> DriftMonitorStatus:
    """A monitor whose first check Job is under way."""
    plan = plan_driftmonitor(observed())
    return DriftMonitorStatus.model_validate({**plan.status.model_dump(), **status})


def collect(
    status: DriftMonitorStatus, pods: list[PodResult], outcome: JobOutcome = DONE, **kw: Any
) -> DriftMonitorPlan:
    current = job(status.job_name or "", outcome, created="2026-12-01T11:59:00Z")
    return plan_driftmonitor(observed(status, jobs=[current], pods=pods, **kw))


# --- the spec and what a check waits for ---------------------------------------------------------------------


def test_an_invalid_spec_says_why_once_per_generation() -> None:
    plan = plan_driftmonitor(observed(spec=None, spec_error="spec.schedule: Field required"))
    assert condition(plan, "Ready") == ("False", "InvalidSpec")
    assert events(plan) == ["InvalidSpec"] and plan.actions == []
    again = plan_driftmonitor(observed(plan.status, spec=None, spec_error="spec.schedule: Field required"))
    assert again.events == [] and status_patch(plan.status, again.status) == {}


@pytest.mark.parametrize(
    ("case", "changes", "reason"),
    [
        ("no deployment", {"deployment": None}, "DeploymentNotFound"),
        ("no served run", {"served_run": None}, "ReferenceUnknown"),
        ("no dataset", {"dataset": None}, "DatasetNotFound"),
        (
            "no profiled version",
            {"served_run": replace(SERVED, status=TrainingRunStatus()), "dataset": DATASET},
            "ReferenceNotReady",
        ),
    ],
)
def test_a_check_waits_for_what_it_compares_and_says_what_is_missing(
    case: str, changes: dict[str, Any], reason: str
) -> None:
    plan = plan_driftmonitor(observed(**changes))
    assert condition(plan, "Ready") == ("False", reason), case
    assert plan.actions == [] and plan.events == []
    assert plan.status.next_check_time == NOW, "it stays due, so the check starts as soon as it can"
    again = plan_driftmonitor(observed(plan.status, **changes))
    assert status_patch(plan.status, again.status) == {}, "waiting writes nothing"


def test_an_explicit_reference_dataset_is_used_even_without_a_served_run() -> None:
    explicit = spec(reference={"datasetRef": {"name": "iris"}})
    plan = plan_driftmonitor(observed(spec=explicit, served_run=None))
    assert kinds(plan) == ["Create PersistentVolumeClaim", "Create Job"]
    assert plan.status.reference_fingerprint == FP


# --- starting a check ----------------------------------------------------------------------------------------


def test_a_due_check_creates_its_job_comparing_the_model_features() -> None:
    plan = plan_driftmonitor(observed())
    assert kinds(plan) == ["Create PersistentVolumeClaim", "Create Job"]
    body = plan.actions[1].body  # type: ignore[union-attr]
    assert body["metadata"]["name"] == "iris-check-1"
    args = body["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--check") + 1] == "1" and "b" * 64 in args[args.index("--profile") + 1]
    env = {
        e["name"]: e["value"]
        for e in body["spec"]["template"]["spec"]["containers"][0]["env"]
        if "value" in e
    }
    config = json.loads(next(v for v in env.values() if v.startswith("{")))
    assert config["columns"] == ["sepal", "petal"], "the target is never compared"
    assert plan.status.job_name == "iris-check-1" and plan.status.reference_fingerprint == FP
    assert condition(plan, "Ready") == ("True", "Checking")
    assert plan.status.observed_generation == 1


def test_the_served_runs_feature_list_wins_over_the_dataset_columns() -> None:
    run = replace(SERVED, spec=SERVED.spec.model_copy(update={"features": FeaturesSpec(columns=["petal"])}))  # type: ignore[union-attr]
    body = plan_driftmonitor(observed(served_run=run)).actions[1].body  # type: ignore[union-attr]
    env = body["spec"]["template"]["spec"]["containers"][0]["env"]
    assert json.loads(next(e["value"] for e in env if e.get("value", "").startswith("{")))["columns"] == [
        "petal"
    ]


def test_a_check_job_that_exists_already_is_adopted_not_created_again() -> None:
    plan = plan_driftmonitor(observed(jobs=[job("iris-check-1")]))
    assert plan.actions == [] and plan.status.job_name == "iris-check-1"


def test_a_check_that_is_not_due_yet_waits_and_writes_nothing() -> None:
    status = DriftMonitorStatus(
        observed_generation=1, check_count=1, last_check_time=NOW, next_check_time=NOW + timedelta(seconds=20)
    )
    plan = plan_driftmonitor(observed(status))
    assert plan.actions == [] and plan.events == [] and status_patch(status, plan.status) == {}


def test_a_running_check_is_steady_state_no_action_no_event_no_status_change() -> None:
    status = checking()
    plan = plan_driftmonitor(observed(status, jobs=[job("iris-check-1")]))
    assert plan.actions == [] and plan.events == [] and status_patch(status, plan.status) == {}
    assert plan.report is None


def test_a_cron_schedule_sets_the_next_check_at_the_next_cron_time() -> None:
    plan = collect(checking(), [pod(report("no_drift"))], spec=spec(schedule={"cron": "*/15 * * * *"}))
    assert plan.status.next_check_time == NOW + timedelta(minutes=15)


# --- collecting a check --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "pods", "outcome", "jobs_seen", "why"),
    [
        ("the Job vanished", [], DONE, False, "the check Job vanished"),
        (
            "the check reported an error",
            [pod(report(None, error="no prediction log"))],
            DONE,
            True,
            "no prediction log",
        ),
        ("the pod died before reporting", [pod("Traceback: boom")], FAILED, True, "Traceback: boom"),
    ],
)
def test_a_failed_check_is_counted_and_explained(
    case: str, pods: list[PodResult], outcome: JobOutcome, jobs_seen: bool, why: str
) -> None:
    status = checking()
    if jobs_seen:
        plan = collect(status, pods, outcome)
    else:
        plan = plan_driftmonitor(observed(status, jobs=[], pods=pods))
    assert condition(plan, "Ready") == ("False", "CheckFailed"), case
    ready = find_condition(plan.status.conditions or [], "Ready")
    assert ready is not None and why in ready.message
    assert events(plan) == ["CheckFailed"]
    assert plan.status.check_count == 1 and plan.status.job_name is None
    assert plan.status.last_check_time == NOW and plan.status.next_check_time == NOW + timedelta(seconds=20)
    assert plan.report is None
    assert not any(isinstance(a, Create) for a in plan.actions), "the next check waits for its time"


def test_a_drifted_check_sets_drifted_counts_it_and_warns_once() -> None:
    plan = collect(checking(), [pod(report("drift"))])
    assert condition(plan, "Drifted") == ("True", "DriftDetected")
    assert condition(plan, "Ready") == ("True", "Checked")
    assert events(plan) == ["DriftDetected"]
    status = plan.status
    assert (status.verdict, status.drifted, status.drift_share, status.consecutive_drifted) == (
        "drift",
        True,
        0.5,
        1,
    )
    assert (
        status.rows_checked == 500
        and status.report_uri
        and status.html_report_uri == "pvc://gyre-artifacts/drift/ml/iris/00000001.html"
        and [f.name for f in status.features or []]
        == [
            "sepal",
            "petal",
        ]
    )
    assert plan.report is not None and plan.report.verdict == "drift", "the controller exports it as gauges"
    assert condition(plan, "Retraining") is None, "retraining is not enabled"
    # The next check drifts again: no second DriftDetected Event.
    second = collect(checking(**_after(status)), [pod(report("drift", check=2))])
    assert events(second) == [] and second.status.consecutive_drifted == 2


def _after(status: DriftMonitorStatus) -> dict[str, Any]:
    """The collected status as the fields the next check starts from."""
    keep = status.model_dump(exclude={"job_name", "next_check_time"})
    return {**keep, "job_name": f"iris-check-{(status.check_count or 0) + 1}"}


def test_drift_that_goes_away_resolves_with_an_event_and_resets_the_count() -> None:
    drifted = collect(checking(), [pod(report("drift"))]).status
    plan = collect(checking(**_after(drifted)), [pod(report("no_drift", check=2))])
    assert condition(plan, "Drifted") == ("False", "NoDrift")
    assert events(plan) == ["DriftResolved"] and plan.status.consecutive_drifted == 0


def test_insufficient_data_gives_no_verdict_and_keeps_the_hysteresis_count() -> None:
    drifted = collect(checking(), [pod(report("drift"))]).status
    plan = collect(checking(**_after(drifted)), [pod(report("insufficient_data", current_rows=12))])
    assert condition(plan, "Ready") == ("True", "InsufficientData")
    assert condition(plan, "Drifted") == ("True", "DriftDetected"), "the last verdict stands"
    assert plan.status.consecutive_drifted == 1 and plan.status.verdict == "insufficient_data"
    assert plan.events == [] and plan.report is None


# --- the retrain guard rails after a check -------------------------------------------------------------------


def _drifted_twice(**retrain: Any) -> DriftMonitorPlan:
    monitor = spec(retrain={**RETRAIN, **retrain})
    first = collect(checking(), [pod(report("drift"))], spec=monitor).status
    return collect(checking(**_after(first)), [pod(report("drift", check=2))], spec=monitor)


@pytest.mark.parametrize(
    ("case", "retrain", "status_over", "want", "want_events"),
    [
        ("hysteresis", {"consecutiveChecks": 3}, {}, ("False", "Hysteresis"), []),
        ("cooldown", {}, {"last_retrain_time": NOW - timedelta(minutes=10)}, ("False", "Cooldown"), []),
        (
            "daily cap",
            {"maxPerDay": 1},
            {"retrain_day": "2026-12-01", "retrains_today": 1},
            ("False", "DailyCap"),
            [],
        ),
        ("dry run", {"dryRun": True}, {}, ("False", "DryRun"), ["WouldRetrain"]),
        ("retrain", {}, {}, ("True", "DriftPersisted"), ["RetrainRequested"]),
    ],
)
def test_the_guard_rails_decide_after_each_drifted_check(
    case: str,
    retrain: dict[str, Any],
    status_over: dict[str, Any],
    want: tuple[str, str],
    want_events: list[str],
) -> None:
    monitor = spec(retrain={**RETRAIN, **retrain})
    first = collect(checking(), [pod(report("drift"))], spec=monitor).status
    start = checking(**{**_after(first), **status_over})
    plan = collect(start, [pod(report("drift", check=2))], spec=monitor)
    assert condition(plan, "Retraining") == want, case
    assert events(plan) == want_events, case


def test_a_dry_run_counts_as_a_retrain_for_the_guard_rails_but_creates_nothing() -> None:
    plan = _drifted_twice(dryRun=True)
    assert plan.status.last_retrain_time == NOW and plan.status.retrains_today == 1
    assert plan.status.pending_retrain_check is None and plan.actions == []


def test_the_daily_count_restarts_on_a_new_utc_day() -> None:
    monitor = spec(retrain=RETRAIN)
    first = collect(checking(), [pod(report("drift"))], spec=monitor).status
    yesterday = checking(**{**_after(first), "retrain_day": "2026-11-30", "retrains_today": 3})
    plan = collect(yesterday, [pod(report("drift", check=2))], spec=monitor)
    assert plan.status.retrain_day == "2026-12-01" and plan.status.retrains_today == 1
    assert condition(plan, "Retraining") == ("True", "DriftPersisted")


# --- the two-step retrain ------------------------------------------------------------------------------------


def test_a_retrain_first_asks_the_dataset_to_re_read_its_source() -> None:
    plan = _drifted_twice()
    assert plan.status.pending_retrain_check == 2 and plan.status.retrains_today == 1
    patches = [a for a in plan.actions if isinstance(a, MergePatch)]
    assert patches == [
        MergePatch(
            "gyre.dev/v1alpha1",
            "Dataset",
            "iris",
            {"metadata": {"annotations": {REFRESH_ANNOTATION: "2026-12-01T12:00:00Z"}}},
        )
    ]
    assert plan.status.refresh_requested_at == NOW


def pending(**over: Any) -> DriftMonitorStatus:
    """A monitor whose retrain of check 2 waits for the Dataset, asked at NOW."""
    base = {
        "observed_generation": 1,
        "check_count": 2,
        "last_check_time": NOW,
        "next_check_time": NOW + timedelta(hours=1),
        "pending_retrain_check": 2,
        "refresh_requested_at": NOW,
    }
    return DriftMonitorStatus.model_validate({**base, **over})


def dataset(**over: Any) -> DatasetView:
    return DatasetView(spec=None, status=DATASET.status.model_copy(update=over))


def test_a_pending_retrain_waits_quietly_while_the_dataset_re_reads() -> None:
    status = pending()
    plan = plan_driftmonitor(observed(status, spec=spec(retrain=RETRAIN), now=NOW + timedelta(minutes=5)))
    assert plan.actions == [] and plan.events == [] and status_patch(status, plan.status) == {}


def test_a_pending_retrain_gives_up_after_thirty_minutes() -> None:
    plan = plan_driftmonitor(observed(pending(), spec=spec(retrain=RETRAIN), now=NOW + timedelta(minutes=31)))
    assert events(plan) == ["RetrainFailed"] and "within 30m" in plan.events[0].message
    assert plan.status.pending_retrain_check is None and plan.status.refresh_requested_at is None


def test_a_dataset_that_fails_to_re_read_ends_the_retrain() -> None:
    plan = plan_driftmonitor(observed(pending(), spec=spec(retrain=RETRAIN), dataset=dataset(phase="Failed")))
    assert condition(plan, "Retraining") == ("False", "DatasetFailed")
    assert events(plan) == ["RetrainFailed"] and plan.status.pending_retrain_check is None


def test_once_the_dataset_has_re_read_the_retrain_run_is_created_from_the_served_run() -> None:
    refreshed = dataset(last_profile_time=NOW + timedelta(minutes=2), version=2)
    monitor = spec(retrain={**RETRAIN, "template": {"labels": {"tier": "gold"}}})
    plan = plan_driftmonitor(
        observed(pending(), spec=monitor, dataset=refreshed, now=NOW + timedelta(minutes=3))
    )
    assert kinds(plan) == ["Create TrainingRun"]
    run = plan.actions[0].body  # type: ignore[union-attr]
    assert run["metadata"]["name"] == "iris-retrain-2"
    assert run["spec"]["datasetRef"] == {"name": "iris"}, "the new run reads the Dataset's latest version"
    assert run["spec"]["estimator"]["kind"] == "RandomForestClassifier"
    assert run["metadata"]["labels"]["app"] == "iris" and run["metadata"]["labels"]["tier"] == "gold"
    TrainingRunSpec.model_validate(run["spec"])
    assert condition(plan, "Retraining") == ("True", "RetrainCreated")
    assert "version 2" in (find_condition(plan.status.conditions or [], "Retraining") or ()).message  # type: ignore[union-attr]
    assert events(plan) == ["RetrainCreated"]
    assert plan.status.last_retrain_run == "iris-retrain-2"
    assert plan.status.pending_retrain_check is None and plan.status.refresh_requested_at is None


def test_a_retrain_run_that_exists_already_is_not_created_again() -> None:
    refreshed = dataset(last_profile_time=NOW + timedelta(minutes=2))
    plan = plan_driftmonitor(
        observed(
            pending(), spec=spec(retrain=RETRAIN), dataset=refreshed, run_names={"iris-a", "iris-retrain-2"}
        )
    )
    assert plan.actions == [] and plan.status.last_retrain_run == "iris-retrain-2"


@pytest.mark.parametrize(
    ("case", "changes", "message"),
    [
        ("explicit reference, nothing served", {"served_run": None}, "no TrainingRun to retrain from"),
        ("served run no longer validates", {"served_run": replace(SERVED, spec=None)}, "does not validate"),
    ],
)
def test_a_retrain_without_a_usable_served_run_is_impossible(
    case: str, changes: dict[str, Any], message: str
) -> None:
    monitor = spec(retrain=RETRAIN, reference={"datasetRef": {"name": "iris"}})
    plan = plan_driftmonitor(observed(pending(), spec=monitor, **changes))
    assert condition(plan, "Retraining") == ("False", "NoServedRun"), case
    assert events(plan) == ["RetrainImpossible"] and message in plan.events[0].message
    assert plan.status.pending_retrain_check is None


def test_a_pending_retrain_whose_deployment_vanished_waits_and_says_so() -> None:
    plan = plan_driftmonitor(observed(pending(), spec=spec(retrain=RETRAIN), deployment=None))
    assert condition(plan, "Retraining") == ("False", "DeploymentNotFound")
    assert plan.status.pending_retrain_check == 2 and plan.actions == []


# --- bounded history -----------------------------------------------------------------------------------------


def finished_jobs(succeeded: int, failed: int) -> list[JobView]:
    jobs = [
        job(f"iris-check-{i}", DONE, created=f"2026-12-01T11:{i:02d}:00Z") for i in range(1, succeeded + 1)
    ]
    jobs += [
        job(f"iris-check-{i}", FAILED, created=f"2026-12-01T11:{i:02d}:00Z")
        for i in range(succeeded + 1, succeeded + failed + 1)
    ]
    return jobs


@pytest.mark.parametrize(
    ("case", "limits", "jobs", "deleted"),
    [
        ("within the limits", {}, finished_jobs(3, 1), []),
        ("three newest succeeded kept", {}, finished_jobs(5, 0), ["iris-check-1", "iris-check-2"]),
        ("last failed kept", {}, finished_jobs(0, 3), ["iris-check-1", "iris-check-2"]),
        (
            "limits from the spec",
            {"successfulJobsHistoryLimit": 1, "failedJobsHistoryLimit": 0},
            finished_jobs(2, 1),
            ["iris-check-1", "iris-check-3"],
        ),
    ],
)
def test_finished_check_jobs_are_pruned_to_the_history_limits(
    case: str, limits: dict[str, Any], jobs: list[JobView], deleted: list[str]
) -> None:
    status = DriftMonitorStatus(
        observed_generation=1,
        check_count=len(jobs),
        last_check_time=NOW,
        next_check_time=NOW + timedelta(seconds=5),
    )
    plan = plan_driftmonitor(observed(status, spec=spec(**limits), jobs=jobs))
    assert [a.name for a in plan.actions if isinstance(a, Delete)] == deleted, case
    assert all(a.kind == "Job" for a in plan.actions if isinstance(a, Delete))


def test_the_check_status_points_at_is_never_pruned_even_with_a_limit_of_zero() -> None:
    status = checking(job_name="iris-check-3", check_count=2)
    jobs = [*finished_jobs(2, 0), job("iris-check-3")]
    limits = spec(successfulJobsHistoryLimit=0, failedJobsHistoryLimit=0)
    plan = plan_driftmonitor(observed(status, spec=limits, jobs=jobs))
    assert [a.name for a in plan.actions if isinstance(a, Delete)] == ["iris-check-1", "iris-check-2"]
    # Once it is collected (its pods read in the same tick), a limit of zero deletes it too.
    collected = plan_driftmonitor(
        observed(
            status, spec=limits, jobs=[job("iris-check-3", DONE)], pods=[pod(report("no_drift", check=3))]
        )
    )
    assert [a.name for a in collected.actions if isinstance(a, Delete)] == ["iris-check-3"]
    assert collected.status.check_count == 3


def test_the_collected_check_joins_the_history_and_the_oldest_goes() -> None:
    status = checking(job_name="iris-check-4", check_count=3)
    jobs = [*finished_jobs(3, 0), job("iris-check-4", DONE, created="2026-12-01T11:04:00Z")]
    plan = plan_driftmonitor(observed(status, jobs=jobs, pods=[pod(report("no_drift", check=4))]))
    assert [a.name for a in plan.actions if isinstance(a, Delete)] == ["iris-check-1"]


FEEDBACK_RETRAIN = {**RETRAIN, "template": {"spec": {"datasetRef": {"name": "iris-feedback"}}}}


def test_a_retrain_on_feedback_refreshes_the_feedback_dataset_not_the_reference() -> None:
    monitor = spec(retrain=FEEDBACK_RETRAIN)
    feedback = dataset(last_profile_time=NOW - timedelta(hours=1), version=4)
    plan = plan_driftmonitor(
        observed(pending(refresh_requested_at=None), spec=monitor, retrain_dataset=feedback)
    )
    assert [(a.kind, a.name) for a in plan.actions if isinstance(a, MergePatch)] == [
        ("Dataset", "iris-feedback")
    ]
    assert plan.status.refresh_requested_at == NOW


def test_a_retrain_on_a_feedback_dataset_that_does_not_exist_waits_and_says_so() -> None:
    plan = plan_driftmonitor(
        observed(pending(refresh_requested_at=None), spec=spec(retrain=FEEDBACK_RETRAIN))
    )
    assert plan.actions == [] and plan.status.pending_retrain_check == 2
    assert condition(plan, "Retraining") == ("False", "DatasetNotFound")


def test_a_retrain_on_feedback_waits_for_the_feedback_dataset_then_trains_on_it() -> None:
    monitor = spec(retrain=FEEDBACK_RETRAIN)
    stale = dataset(last_profile_time=NOW - timedelta(hours=1))
    fresh_reference = dataset(last_profile_time=NOW + timedelta(minutes=2))
    waiting = plan_driftmonitor(
        observed(
            pending(),
            spec=monitor,
            dataset=fresh_reference,
            retrain_dataset=stale,
            now=NOW + timedelta(minutes=3),
        )
    )
    assert kinds(waiting) == [], "the reference Dataset's re-read does not count"
    refreshed = dataset(last_profile_time=NOW + timedelta(minutes=2), version=5)
    plan = plan_driftmonitor(
        observed(pending(), spec=monitor, retrain_dataset=refreshed, now=NOW + timedelta(minutes=3))
    )
    assert kinds(plan) == ["Create TrainingRun"]
    run = plan.actions[0].body  # type: ignore[union-attr]
    assert run["spec"]["datasetRef"] == {"name": "iris-feedback"}
    message = (find_condition(plan.status.conditions or [], "Retraining") or ()).message  # type: ignore[union-attr]
    assert "Dataset iris-feedback version 5" in message
