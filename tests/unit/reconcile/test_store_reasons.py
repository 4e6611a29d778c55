"""A pod's store refusal reaches the Dataset's status and a Warning Event with its own reason, no credential."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gyre.api.common import find_condition
from gyre.api.dataset import DatasetSpec, DatasetStatus
from gyre.api.reasons import Reason
from gyre.builders.meta import Owner
from gyre.builders.settings import OperatorSettings
from gyre.data.report import ProfileReport
from gyre.reconcile.dataset import ObservedDataset, plan_dataset
from gyre.reconcile.observed import JobOutcome, JobView, PodResult

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
OWNER = Owner(kind="Dataset", name="iris", namespace="team-a", uid="uid-d")
SETTINGS = OperatorSettings(artifact_store="s3://bucket/gyre", artifact_secret="gyre-store")
SPEC = DatasetSpec.model_validate({"source": {"uri": "builtin://iris"}})


def observed(status: DatasetStatus, **kw: object) -> ObservedDataset:
    return ObservedDataset(
        owner=OWNER, spec=SPEC, spec_error=None, status=status, settings=SETTINGS, now=NOW, **kw
    )


@pytest.mark.parametrize(
    ("reason", "error"),
    [
        (Reason.STORE_CREDENTIALS_MISSING, "the store Secret 'gyre-store' of this namespace is missing"),
        (Reason.STORE_ACCESS_DENIED, "access denied to s3://bucket/gyre/team-b/datasets/x"),
    ],
)
def test_a_store_failure_is_the_ready_condition_and_a_warning(reason: Reason, error: str) -> None:
    profiling = plan_dataset(observed(DatasetStatus())).status
    assert profiling.job_name
    failed = JobView(
        profiling.job_name, "uid-d", "profiler", JobOutcome(True, False, "BackoffLimitExceeded", "x")
    )
    report = ProfileReport(phase="Failed", reason=reason, error=error)
    pod = PodResult("p", None, 1, "Error", report.to_termination_message())
    plan = plan_dataset(observed(profiling, jobs=[failed], pods=[pod]))
    condition = find_condition(plan.status.conditions or [], "Ready")
    assert condition is not None and condition.status == "False"
    assert condition.reason == reason and condition.message and error in condition.message
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", reason)]
    assert error in plan.events[0].message
