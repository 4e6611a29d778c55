"""plan_dataset on plain data: profiling, versions, refreshes and the bounded Job history."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from gyre.api.common import find_condition
from gyre.api.dataset import DatasetSpec, DatasetStatus
from gyre.builders.meta import Owner
from gyre.builders.settings import OperatorSettings
from gyre.data.report import ColumnInfo, ProfileReport
from gyre.reconcile.dataset import ObservedDataset, plan_dataset
from gyre.reconcile.observed import JobOutcome, JobView, PodResult
from gyre.reconcile.plan import Create, Delete, status_patch

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
OWNER = Owner(kind="Dataset", name="iris", namespace="ml", uid="uid-d")
SETTINGS = OperatorSettings(artifact_store="pvc://gyre-artifacts", image="gyre:test")
DONE = JobOutcome(True, True, completion_time="2026-12-01T12:01:00Z")
FAILED = JobOutcome(True, False, "BackoffLimitExceeded", "failed")


def observed(status: DatasetStatus | None = None, **kw: Any) -> ObservedDataset:
    overrides = kw.pop("spec", {})
    spec = (
        None
        if overrides is None
        else DatasetSpec.model_validate(
            {"source": {"uri": "builtin://iris"}, "target": "target", **overrides}
        )
    )
    base = ObservedDataset(
        owner=OWNER, spec=spec, spec_error=None, status=status or DatasetStatus(), settings=SETTINGS, now=NOW
    )
    return replace(base, **kw)


RUNNING = JobOutcome(False, False)


def job(name: str, outcome: JobOutcome = RUNNING, created: str = "") -> JobView:
    return JobView(name, "uid-d", "profiler", outcome, created=created)


def report_pod(fingerprint: str) -> PodResult:
    report = ProfileReport(
        phase="Succeeded",
        fingerprint=fingerprint,
        rows=150,
        columns=[ColumnInfo(name="x", kind="numeric", dtype="float64")],
        data_uri="file:///s/d/data.parquet",
        profile_uri="file:///s/d/profile.json",
    )
    return PodResult("p", None, 0, "Completed", report.to_termination_message())


def creates(plan_actions: list[Any]) -> list[str]:
    return [a.body["kind"] for a in plan_actions if isinstance(a, Create)]


def profiling() -> DatasetStatus:
    return plan_dataset(observed()).status


def ready(fingerprint: str = "sha256:" + "a" * 64) -> DatasetStatus:
    status = profiling()
    current = job(status.job_name or "", DONE)
    return plan_dataset(observed(status, jobs=[current], pods=[report_pod(fingerprint)])).status


def test_a_new_dataset_starts_one_profiling_job_and_says_so() -> None:
    plan = plan_dataset(observed())
    assert creates(plan.actions) == ["PersistentVolumeClaim", "Job"]
    assert plan.status.phase == "Profiling" and plan.status.job_name
    assert [e.reason for e in plan.events] == ["Profiling"]


def test_a_dataset_whose_job_runs_is_steady_and_writes_nothing() -> None:
    status = profiling()
    plan = plan_dataset(observed(status, jobs=[job(status.job_name or "")]))
    assert plan.actions == [] and plan.events == [] and status_patch(status, plan.status) == {}


def test_a_finished_job_becomes_version_one_and_ready() -> None:
    status = profiling()
    plan = plan_dataset(
        observed(status, jobs=[job(status.job_name or "", DONE)], pods=[report_pod("sha256:" + "a" * 64)])
    )
    assert (plan.status.phase, plan.status.version) == ("Ready", 1)
    assert [(e.type, e.reason) for e in plan.events] == [("Normal", "NewVersion")]


def test_a_spec_change_starts_a_job_of_another_name() -> None:
    status = ready()
    plan = plan_dataset(observed(status, owner=replace(OWNER, generation=2), spec={"historyLimit": 3}))
    assert creates(plan.actions) == ["PersistentVolumeClaim", "Job"]
    assert plan.status.job_name != status.job_name and plan.status.phase == "Profiling"


def test_a_refresh_request_starts_a_job_named_by_the_request_and_only_once() -> None:
    status = ready()
    plan = plan_dataset(observed(status, refresh_request="2026-12-01T12:00:00Z"))
    assert creates(plan.actions) == ["PersistentVolumeClaim", "Job"]
    refreshing = find_condition(plan.status.conditions or [], "Refreshing")
    assert refreshing is not None and (refreshing.status, refreshing.reason) == ("True", "RefreshRequested")
    assert plan.status.phase == "Ready"  # the current version stays usable while it re-reads
    existing = job(plan.status.job_name or "")
    again = plan_dataset(observed(status, jobs=[existing], refresh_request="2026-12-01T12:00:00Z"))
    assert creates(again.actions) == [] and again.status.job_name == plan.status.job_name


def test_a_refresh_is_due_only_after_the_interval() -> None:
    status = ready()
    status.last_profile_time = NOW - timedelta(minutes=5)
    early = plan_dataset(observed(status, spec={"refreshInterval": "10m"}, refresh_due_check=True))
    assert creates(early.actions) == []
    late = plan_dataset(observed(status, spec={"refreshInterval": "2m"}, refresh_due_check=True))
    assert creates(late.actions) == ["PersistentVolumeClaim", "Job"]


def test_a_failed_refresh_keeps_the_current_version_ready() -> None:
    status = ready()
    refreshing = plan_dataset(observed(status, refresh_request="r1")).status
    failed = job(refreshing.job_name or "", FAILED)
    plan = plan_dataset(observed(refreshing, jobs=[failed]))
    assert plan.status.phase == "Ready" and plan.status.version == 1
    condition = find_condition(plan.status.conditions or [], "Refreshing")
    assert condition is not None and condition.status == "False"
    assert [e.type for e in plan.events] == ["Warning"]


def test_a_vanished_profiling_job_is_recreated_but_a_vanished_refresh_is_settled() -> None:
    status = profiling()
    recreate = plan_dataset(observed(status))
    assert creates(recreate.actions) == ["PersistentVolumeClaim", "Job"]
    assert recreate.status.job_name == status.job_name
    refreshing = plan_dataset(observed(ready(), refresh_request="r1")).status
    settled = plan_dataset(observed(refreshing))
    condition = find_condition(settled.status.conditions or [], "Refreshing")
    assert condition is not None and (condition.status, condition.reason) == ("False", "JobMissing")
    assert creates(settled.actions) == []


def test_old_finished_jobs_are_pruned_to_the_last_good_and_last_failed_one() -> None:
    status = ready()
    jobs = [
        job(status.job_name or "", DONE, created="2026-12-01T12:00:00Z"),
        job("iris-profile-old1", DONE, created="2026-11-30T12:00:00Z"),
        job("iris-profile-old2", DONE, created="2026-11-29T12:00:00Z"),
        job("iris-profile-bad1", FAILED, created="2026-11-30T13:00:00Z"),
        job("iris-profile-bad2", FAILED, created="2026-11-28T13:00:00Z"),
        job("iris-profile-live", RUNNING, created="2026-11-27T13:00:00Z"),
    ]
    plan = plan_dataset(observed(status, jobs=jobs))
    deleted = sorted(a.name for a in plan.actions if isinstance(a, Delete))
    assert deleted == ["iris-profile-bad2", "iris-profile-old1", "iris-profile-old2"]


def test_an_invalid_spec_fails_once_with_one_warning() -> None:
    first = plan_dataset(observed(spec=None, spec_error="spec.source.uri: bad"))
    assert first.status.phase == "Failed" and [e.reason for e in first.events] == ["InvalidSpec"]
    again = plan_dataset(observed(first.status, spec=None, spec_error="spec.source.uri: bad"))
    assert again.events == [] and status_patch(first.status, again.status) == {}


def test_a_dataset_asking_for_an_image_outside_the_policy_fails_once_and_creates_no_job() -> None:
    first = plan_dataset(observed(spec={"image": "evil.example.com/reader:1"}))
    assert creates(first.actions) == [] and first.status.phase == "Failed"
    ready_condition = find_condition(first.status.conditions or [], "Ready")
    assert ready_condition is not None and ready_condition.reason == "ImageNotAllowed"
    assert "evil.example.com/reader:1" in ready_condition.message
    assert [(e.type, e.reason) for e in first.events] == [("Warning", "ImageNotAllowed")]
    again = plan_dataset(observed(first.status, spec={"image": "evil.example.com/reader:1"}))
    assert again.actions == [] and again.events == []


def test_a_refresh_refused_by_a_narrowed_policy_keeps_the_current_version() -> None:
    wide = SETTINGS.model_copy(update={"allowed_images": ("registry.example.com/ml/",)})
    spec = {"image": "registry.example.com/ml/reader:1"}
    status = plan_dataset(observed(spec=spec, settings=wide)).status
    current = job(status.job_name or "", DONE)
    status = plan_dataset(
        observed(status, spec=spec, settings=wide, jobs=[current], pods=[report_pod("sha256:" + "a" * 64)])
    ).status
    assert status.phase == "Ready"
    plan = plan_dataset(observed(status, spec=spec, jobs=[current], refresh_request="2026-12-01T13:00:00Z"))
    assert creates(plan.actions) == [] and plan.status.phase == "Ready" and plan.status.version == 1
    refreshing = find_condition(plan.status.conditions or [], "Refreshing")
    assert refreshing is not None and (refreshing.status, refreshing.reason) == ("False", "ImageNotAllowed")
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "ImageNotAllowed")]


def test_status_and_events_never_repeat_credentials_from_the_source_uri() -> None:
    wide = SETTINGS.model_copy(
        update={"source_policy": SETTINGS.source_policy.model_copy(update={"hosts": ("data.example.com",)})}
    )
    uri = "https://reader:hunter2@data.example.com/iris.csv?X-Amz-Signature=hunter2"
    first = plan_dataset(observed(spec={"source": {"uri": uri}}, settings=wide))
    assert creates(first.actions) == ["PersistentVolumeClaim", "Job"]
    refresh = plan_dataset(
        observed(
            ready(), spec={"source": {"uri": uri}}, settings=wide, refresh_request="2026-12-01T13:00:00Z"
        )
    )
    said = [first.status.model_dump_json(), refresh.status.model_dump_json()]
    said += [e.message for e in [*first.events, *refresh.events]]
    assert all("hunter2" not in text for text in said)
    assert any("https://***@data.example.com/iris.csv?***" in text for text in said)
