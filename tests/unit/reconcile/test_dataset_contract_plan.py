"""Data contracts and sql sources in the Dataset plan, and what a TrainingRun may then train on.

A version that breaks spec.expectations is recorded (history, ContractSatisfied=False, one Warning) and never
becomes the current version; TrainingRuns resolve only good versions; a sql refresh with a watermark appends to the
current version unless the newest read was bad.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from gyre.api.common import find_condition
from gyre.api.dataset import DatasetSpec, DatasetStatus
from gyre.api.trainingrun import TrainingRunSpec
from gyre.builders.meta import Owner
from gyre.builders.settings import OperatorSettings
from gyre.data.report import ColumnInfo, ProfileReport
from gyre.policy.sources import SourcePolicy
from gyre.reconcile.dataset import ObservedDataset, plan_dataset
from gyre.reconcile.observed import JobOutcome, JobView, PodResult
from gyre.reconcile.plan import Create
from gyre.reconcile.trainingrun import DatasetInput, DatasetProblem, DatasetView, resolve_dataset

OWNER = Owner(kind="Dataset", name="orders", namespace="ml", uid="uid-d")
SETTINGS = OperatorSettings(artifact_store="pvc://gyre-artifacts", image="gyre:test")
DONE = JobOutcome(True, True, completion_time="2026-12-01T12:01:00Z")
GOOD, BAD, GOOD2 = ("sha256:" + c * 64 for c in "abc")
SQL = {
    "host": "db.example.com",
    "database": "shop",
    "userSecretRef": {"name": "db", "key": "user"},
    "passwordSecretRef": {"name": "db", "key": "password"},
    "query": "SELECT * FROM orders ORDER BY id",
    "watermark": "id",
}
EXPECT = {"minRows": 100, "columns": [{"name": "amount", "min": 0}]}


def spec(**overrides: Any) -> DatasetSpec:
    body = {"source": {"sql": SQL}, "target": "returned", "expectations": EXPECT, "refreshInterval": "1h"}
    return DatasetSpec.model_validate(body | overrides)


def observed(status: DatasetStatus | None = None, **kw: Any) -> ObservedDataset:
    from datetime import UTC, datetime

    base = ObservedDataset(
        owner=OWNER,
        spec=kw.pop("spec", spec()),
        spec_error=None,
        status=status or DatasetStatus(),
        settings=SETTINGS,
        now=datetime(2026, 12, 1, 12, 0, tzinfo=UTC),
    )
    return replace(base, **kw)


def pod(fingerprint: str, failures: list[str] | None = None, watermark: str = "1000") -> PodResult:
    report = ProfileReport(
        phase="Succeeded",
        fingerprint=fingerprint,
        rows=1000,
        columns=[
            ColumnInfo(name="amount", kind="numeric", dtype="float64"),
            ColumnInfo(name="returned", kind="binary", dtype="bool"),
        ],
        data_uri=f"pvc://gyre-artifacts/datasets/ml/orders/{fingerprint[7:]}/data.parquet",
        watermark=watermark,
        contract_checked=True,
        contract_failures=failures,
    )
    return PodResult("p", None, 0, "Completed", report.to_termination_message())


def finish(status: DatasetStatus, result: PodResult, **kw: Any) -> Any:
    """Plan once the current Job finished with `result`."""
    job = JobView(status.job_name or "", "uid-d", "profiler", DONE)
    return plan_dataset(observed(status, jobs=[job], pods=[result], **kw))


def refresh(status: DatasetStatus, request: str, **kw: Any) -> Any:
    return plan_dataset(observed(status, refresh_request=request, **kw))


def good_version() -> DatasetStatus:
    started = plan_dataset(observed()).status
    return finish(started, pod(GOOD)).status  # type: ignore[no-any-return]


def condition(status: DatasetStatus, kind: str) -> tuple[str, str] | None:
    found = find_condition(status.conditions or [], kind)
    return None if found is None else (found.status, found.reason)


def job_args(plan: Any) -> list[str]:
    (job,) = [a.body for a in plan.actions if isinstance(a, Create) and a.body["kind"] == "Job"]
    return job["spec"]["template"]["spec"]["containers"][0]["args"]  # type: ignore[no-any-return]


def test_a_version_that_satisfies_the_contract_becomes_current_with_contract_satisfied() -> None:
    status = good_version()
    assert (status.phase, status.version, status.fingerprint, status.watermark) == ("Ready", 1, GOOD, "1000")
    assert condition(status, "ContractSatisfied") == ("True", "ExpectationsMet")
    assert status.contract is not None and status.contract.satisfied


def test_a_refresh_that_breaks_the_contract_is_recorded_but_the_last_good_version_stays_current() -> None:
    status = good_version()
    refreshing = refresh(status, "r1").status
    plan = finish(refreshing, pod(BAD, ["column amount: 3 values below the minimum 0 (lowest -5)"]))
    new = plan.status
    assert (new.phase, new.version, new.fingerprint, new.data_uri) == ("Ready", 1, GOOD, status.data_uri)
    assert condition(new, "Ready") == ("True", "Profiled")
    assert condition(new, "ContractSatisfied") == ("False", "ContractViolated")
    assert [(h.version, h.fingerprint, h.contract_violated) for h in new.history or []] == [
        (2, BAD, True),
        (1, GOOD, None),
    ]
    assert new.contract is not None and new.contract.failures == [
        "column amount: 3 values below the minimum 0 (lowest -5)"
    ]
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "ContractViolated")]
    assert "values below the minimum 0" in plan.events[0].message
    assert "version 1 stays current" in plan.events[0].message


def test_the_same_bad_data_read_again_is_not_a_new_version_nor_a_new_warning() -> None:
    status = good_version()
    bad = finish(refresh(status, "r1").status, pod(BAD, ["broken"])).status
    again = finish(refresh(bad, "r2").status, pod(BAD, ["broken"]))
    assert [h.version for h in again.status.history or []] == [2, 1]
    assert again.events == []


def test_good_data_after_bad_becomes_the_next_version_and_the_condition_recovers() -> None:
    status = good_version()
    bad = finish(refresh(status, "r1").status, pod(BAD, ["broken"])).status
    plan = finish(refresh(bad, "r2").status, pod(GOOD2))
    assert (plan.status.version, plan.status.fingerprint) == (3, GOOD2)
    assert condition(plan.status, "ContractSatisfied") == ("True", "ExpectationsMet")
    assert [(e.type, e.reason) for e in plan.events] == [("Normal", "NewVersion")]


def test_the_source_fixed_back_to_the_last_good_data_clears_the_violation_with_a_normal_event() -> None:
    status = good_version()
    bad = finish(refresh(status, "r1").status, pod(BAD, ["broken"])).status
    plan = finish(refresh(bad, "r2").status, pod(GOOD))
    assert (plan.status.version, plan.status.fingerprint) == (1, GOOD)
    assert condition(plan.status, "ContractSatisfied") == ("True", "ExpectationsMet")
    assert [(e.type, e.reason) for e in plan.events] == [("Normal", "ExpectationsMet")]


def test_a_first_version_that_breaks_the_contract_leaves_the_dataset_not_ready() -> None:
    started = plan_dataset(observed()).status
    plan = finish(started, pod(BAD, ["4 rows, at least 100 expected"]))
    assert plan.status.phase == "Failed" and plan.status.fingerprint is None
    assert condition(plan.status, "Ready") == ("False", "ContractViolated")
    assert [e.reason for e in plan.events] == ["ContractViolated"]


def test_a_report_cut_to_fit_still_carries_the_verdict() -> None:
    report = ProfileReport(
        phase="Succeeded",
        fingerprint=BAD,
        contract_checked=True,
        contract_failures=[f"f{i}" * 400 for i in range(50)],
    )
    parsed = ProfileReport.from_termination_message(report.to_termination_message())
    assert parsed.contract_violated and parsed.contract_failure_count == 50
    assert len(parsed.contract_failures or []) <= 8


def test_removing_the_expectations_removes_the_condition() -> None:
    status = good_version()
    started = plan_dataset(
        observed(status, owner=replace(OWNER, generation=2), spec=spec(expectations=None))
    ).status
    report = ProfileReport(phase="Succeeded", fingerprint=GOOD, rows=1000, data_uri="pvc://x/data.parquet")
    plan = finish(
        started,
        PodResult("p", None, 0, "Completed", report.to_termination_message()),
        owner=replace(OWNER, generation=2),
    )
    assert condition(plan.status, "ContractSatisfied") is None and plan.status.contract is None


def test_a_sql_refresh_with_a_watermark_appends_to_the_current_version() -> None:
    status = good_version()
    args = job_args(refresh(status, "r1"))
    assert args[args.index("--previous-fingerprint") + 1] == GOOD
    assert args[args.index("--after") + 1] == "1000"
    assert args[args.index("--source") + 1] == "postgresql://db.example.com:5432/shop"


def test_a_scheduled_refresh_of_a_sql_source_is_incremental_too() -> None:
    from datetime import timedelta

    status = good_version()
    assert status.last_profile_time is not None
    later = status.last_profile_time + timedelta(hours=1, seconds=1)
    assert job_args(plan_dataset(observed(status, now=later, refresh_due_check=True)))[-2:] == [
        "--after",
        "1000",
    ]
    early = plan_dataset(observed(status, now=later - timedelta(minutes=2), refresh_due_check=True))
    assert [a for a in early.actions if isinstance(a, Create)] == []


def test_a_spec_change_and_a_refresh_after_a_bad_version_read_everything() -> None:
    status = good_version()
    changed = plan_dataset(observed(status, owner=replace(OWNER, generation=2), spec=spec(historyLimit=5)))
    assert "--previous-fingerprint" not in job_args(changed)
    bad = finish(refresh(status, "r1").status, pod(BAD, ["broken"])).status
    assert "--previous-fingerprint" not in job_args(refresh(bad, "r2"))


def test_a_sql_host_the_policy_refuses_starts_no_job() -> None:
    settings = SETTINGS.model_copy(update={"source_policy": SourcePolicy(hosts=("*.internal.example.com",))})
    plan = plan_dataset(observed(settings=settings))
    assert [a for a in plan.actions if isinstance(a, Create)] == []
    assert condition(plan.status, "Ready") == ("False", "SourceRefused")
    assert "postgresql://db.example.com:5432/shop" in plan.events[0].message


def test_a_sql_source_may_not_use_the_artifact_store_secret() -> None:
    settings = SETTINGS.model_copy(update={"artifact_secret": "gyre-store"})
    stolen = spec(
        source={"sql": SQL | {"passwordSecretRef": {"name": "gyre-store", "key": "AWS_SECRET_ACCESS_KEY"}}}
    )
    plan = plan_dataset(observed(settings=settings, spec=stolen))
    assert [a for a in plan.actions if isinstance(a, Create)] == []
    assert condition(plan.status, "Ready") == ("False", "SourceRefused")
    assert "artifact store's Secret gyre-store" in plan.events[0].message
    assert creates_job(plan_dataset(observed(settings=settings)))


def creates_job(plan: Any) -> bool:
    return any(isinstance(a, Create) and a.body["kind"] == "Job" for a in plan.actions)


def run_spec(**ref: Any) -> TrainingRunSpec:
    body = {"datasetRef": {"name": "orders", **ref}, "estimator": {"kind": "RandomForestClassifier"}}
    return TrainingRunSpec.model_validate(body)


def test_a_training_run_gets_the_last_good_version_never_the_bad_one() -> None:
    status = good_version()
    bad = finish(refresh(status, "r1").status, pod(BAD, ["broken"])).status
    view = DatasetView(spec=spec(), status=bad)
    resolved = resolve_dataset(run_spec(), view)
    assert isinstance(resolved, DatasetInput) and resolved.fingerprint == GOOD
    pinned = resolve_dataset(run_spec(fingerprint=BAD), view)
    assert isinstance(pinned, DatasetProblem) and pinned.reason == "ContractViolated" and pinned.permanent


def test_a_current_version_marked_as_breaking_the_contract_is_not_trained_on() -> None:
    status = good_version()
    assert status.contract is not None
    status.contract = status.contract.model_copy(update={"satisfied": False})
    resolved = resolve_dataset(run_spec(), DatasetView(spec=spec(), status=status))
    assert isinstance(resolved, DatasetProblem) and resolved.reason == "ContractViolated"
