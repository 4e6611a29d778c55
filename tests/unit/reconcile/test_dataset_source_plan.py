"""plan_dataset and the source policy: a refused source is a condition and one Warning Event, never a Job."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gyre.api.common import find_condition
from gyre.api.dataset import DatasetSpec, DatasetStatus
from gyre.builders.meta import Owner
from gyre.builders.settings import OperatorSettings
from gyre.data.report import ColumnInfo, ProfileReport
from gyre.policy.sources import SourcePolicy
from gyre.reconcile.dataset import ObservedDataset, plan_dataset
from gyre.reconcile.observed import JobOutcome, JobView, PodResult
from gyre.reconcile.plan import Create

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
OWNER = Owner(kind="Dataset", name="d", namespace="ml", uid="uid-d", generation=1)
SETTINGS = OperatorSettings(artifact_store="pvc://gyre-artifacts", image="gyre:test")
METADATA = "http://169.254.169.254/latest/meta-data/iam/security-credentials/node.csv"
OWN_FILE = "file:///var/lib/gyre/artifacts/sources/iris.csv"


def observed(
    uri: str,
    status: DatasetStatus | None = None,
    settings: OperatorSettings = SETTINGS,
    owner: Owner = OWNER,
    **kw: Any,
) -> ObservedDataset:
    spec = DatasetSpec.model_validate({"source": {"uri": uri}, "target": "target"})
    return ObservedDataset(
        owner=owner,
        spec=spec,
        spec_error=None,
        status=status or DatasetStatus(),
        settings=settings,
        now=NOW,
        **kw,
    )


def jobs(plan_actions: list[Any]) -> list[str]:
    return [
        a.body["metadata"]["name"] for a in plan_actions if isinstance(a, Create) and a.body["kind"] == "Job"
    ]


def test_a_refused_source_fails_the_dataset_with_the_reason_and_creates_no_job() -> None:
    plan = plan_dataset(observed(METADATA))
    assert plan.actions == []
    assert plan.status.phase == "Failed" and plan.status.observed_generation == 1
    ready = find_condition(plan.status.conditions or [], "Ready")
    assert ready is not None and (ready.status, ready.reason) == ("False", "SourceRefused")
    assert "169.254.0.0/16" in ready.message and "refusedHosts in policy.sources" in ready.message
    assert [(e.type, e.reason, e.message) for e in plan.events] == [
        ("Warning", "SourceRefused", ready.message)
    ]


def test_a_refused_dataset_is_steady_and_says_so_once() -> None:
    first = plan_dataset(observed(METADATA)).status
    again = plan_dataset(observed(METADATA, first))
    assert again.actions == [] and again.events == [] and again.status == first


def test_a_file_in_the_namespaces_own_sources_area_is_profiled() -> None:
    plan = plan_dataset(observed(OWN_FILE))
    assert len(jobs(plan.actions)) == 1 and plan.status.phase == "Profiling"


def test_the_profiling_job_carries_the_policy_the_pod_enforces() -> None:
    policy = SourcePolicy(file_roots=("/data",))
    plan = plan_dataset(
        observed("file:///data/x.csv", settings=SETTINGS.model_copy(update={"source_policy": policy}))
    )
    job = next(a.body for a in plan.actions if isinstance(a, Create) and a.body["kind"] == "Job")
    env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert SourcePolicy.from_json(env["GYRE_SOURCE_POLICY"]) == policy


def test_once_an_admin_allows_the_source_the_read_starts() -> None:
    refused = plan_dataset(observed("file:///data/x.csv")).status
    assert refused.phase == "Failed"
    allowing = SETTINGS.model_copy(update={"source_policy": SourcePolicy(file_roots=("/data",))})
    plan = plan_dataset(observed("file:///data/x.csv", refused, settings=allowing))
    assert len(jobs(plan.actions)) == 1 and plan.status.phase == "Profiling"


def test_a_refresh_of_a_source_refused_since_keeps_the_current_version() -> None:
    status = plan_dataset(observed(OWN_FILE)).status
    report = ProfileReport(
        phase="Succeeded",
        fingerprint="sha256:" + "a" * 64,
        rows=3,
        columns=[ColumnInfo(name="x", kind="numeric", dtype="float64")],
        data_uri="file:///s/data.parquet",
        profile_uri="file:///s/profile.json",
    )
    done = JobView(
        status.job_name or "",
        "uid-d",
        "profiler",
        JobOutcome(True, True, completion_time="2026-12-01T12:01:00Z"),
    )
    pod = PodResult("p", None, 0, "Completed", report.to_termination_message())
    ready = plan_dataset(observed(OWN_FILE, status, jobs=[done], pods=[pod])).status
    assert ready.phase == "Ready"
    narrower = SETTINGS.model_copy(update={"source_policy": SourcePolicy(schemes=("builtin",))})
    plan = plan_dataset(
        observed(OWN_FILE, ready, settings=narrower, jobs=[done], refresh_request="2026-12-01T13:00:00Z")
    )
    assert jobs(plan.actions) == [] and plan.status.phase == "Ready"
    refreshing = find_condition(plan.status.conditions or [], "Refreshing")
    assert refreshing is not None and (refreshing.status, refreshing.reason) == ("False", "SourceRefused")
    assert [e.reason for e in plan.events] == ["SourceRefused"]
    assert "adding 'file' to schemes" in refreshing.message


def test_a_refusal_reported_by_the_pod_does_not_start_the_read_again() -> None:
    # The operator cannot see what a name resolves to; the pod refused it, and that Job stays the answer.
    uri = "https://data.example.com/x.csv"
    status = plan_dataset(observed(uri)).status
    refused = ProfileReport(
        phase="Failed", reason="SourceRefused", error="host resolves only to refused addresses"
    )
    finished = JobView(
        status.job_name or "", "uid-d", "profiler", JobOutcome(True, False, "BackoffLimitExceeded")
    )
    pod = PodResult("p", None, 1, "Error", refused.to_termination_message())
    failed = plan_dataset(observed(uri, status, jobs=[finished], pods=[pod]))
    assert failed.status.phase == "Failed" and [e.reason for e in failed.events] == ["SourceRefused"]
    again = plan_dataset(observed(uri, failed.status, jobs=[finished]))
    assert again.actions == [] and again.events == [] and again.status == failed.status
