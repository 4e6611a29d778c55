"""Which watch events reach the TrainingRun handlers, and what a write the API server refuses for good leaves on
the run. No API server: the filters read kopf's keyword arguments, the applier talks to a stand-in for kube."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import kopf
import pytest
from kubernetes.client.exceptions import ApiException

from gyre.api.common import find_condition
from gyre.api.trainingrun import TrainingRunStatus
from gyre.builders.meta import LABEL_INSTANCE, Owner
from gyre.builders.settings import OperatorSettings
from gyre.controllers import common, kube
from gyre.controllers.trainingrun import _job_ended, _may_change
from gyre.reconcile.observed import JobOutcome, JobView
from gyre.reconcile.plan import Create, Plan

MINE = {LABEL_INSTANCE: "unit"}
UID = "uid-run"
RUNNING_JOB = JobView("run-train", UID, "trainer", JobOutcome(False, False))
DONE_JOB = JobView("run-train", UID, "trainer", JobOutcome(True, True))


@pytest.fixture(autouse=True)
def instance() -> Iterator[None]:
    common.configure(
        OperatorSettings(artifact_store="pvc://gyre-artifacts", image="gyre:test", instance="unit")
    )
    yield
    common.configure(None)


def run_event(phase: str | None, type_: str | None, *jobs: JobView, labels: dict[str, str] = MINE) -> bool:
    body: dict[str, Any] = {"metadata": {"name": "run", "namespace": "ml", "uid": UID, "labels": labels}}
    if phase is not None:
        body["status"] = {"phase": phase}
    return _may_change(labels=labels, body=body, type=type_, gyre_jobs={UID: list(jobs)} if jobs else {})


def test_a_new_run_is_planned() -> None:
    assert run_event(None, "ADDED")


def test_the_runs_own_status_write_landing_while_its_job_runs_is_not_planned() -> None:
    assert not run_event("Running", "MODIFIED", RUNNING_JOB)
    assert not run_event("Running", "MODIFIED")  # the Job index lags its create


def test_a_running_run_whose_indexed_job_finished_is_planned() -> None:
    assert run_event("Running", "MODIFIED", DONE_JOB)


def test_a_finished_run_is_not_planned_again_but_every_run_listed_at_start_up_is() -> None:
    assert not run_event("Succeeded", "MODIFIED", DONE_JOB)
    assert run_event("Succeeded", None, DONE_JOB)
    assert run_event("Running", None)


def test_a_deleted_run_or_another_instances_run_is_not_planned() -> None:
    assert not run_event(None, "DELETED")
    assert not run_event(None, "ADDED", labels={LABEL_INSTANCE: "other"})


def job_body(*conditions: dict[str, str]) -> dict[str, Any]:
    return {"metadata": {"name": "run-train", "labels": MINE}, "status": {"conditions": list(conditions)}}


def test_only_a_finished_or_deleted_training_job_reaches_its_run() -> None:
    assert not _job_ended(labels=MINE, body=job_body(), type="MODIFIED")
    assert not _job_ended(
        labels=MINE, body=job_body({"type": "Complete", "status": "False"}), type="MODIFIED"
    )
    assert _job_ended(labels=MINE, body=job_body({"type": "Complete", "status": "True"}), type="MODIFIED")
    assert _job_ended(labels=MINE, body=job_body({"type": "Failed", "status": "True"}), type=None)
    assert _job_ended(labels=MINE, body=job_body(), type="DELETED")
    assert not _job_ended(labels={}, body=job_body({"type": "Complete", "status": "True"}), type="MODIFIED")


def test_a_job_the_api_server_refuses_as_invalid_leaves_synced_false_and_one_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 422 on the Job create is permanent until something changes: the run gets Synced=False (which the retry
    timer filters on) and a Warning Event, not a silent error log; the planned Running status is not written."""
    owner = Owner(kind="TrainingRun", name="run", namespace="ml", uid=UID)
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "run-train", "namespace": "ml"}}
    planned = Plan(TrainingRunStatus(phase="Running", job_name="run-train"), actions=[Create(job)])
    patches: list[dict[str, Any]] = []
    events: list[tuple[str, str, str]] = []

    def invalid(namespace: str, action: Any) -> None:
        exc = ApiException(status=422, reason="Unprocessable Entity")
        exc.body = json.dumps({"message": 'Job.batch "run-train" is invalid: spec.template: Required value'})
        raise exc

    monkeypatch.setattr(kube, "_execute_one", invalid)
    monkeypatch.setattr(kube, "patch_status", lambda kind, ns, name, patch: patches.append(patch))
    monkeypatch.setattr(
        common, "emit", lambda o, type_, reason, message: events.append((type_, reason, message))
    )

    with pytest.raises(kopf.TemporaryError):
        common.apply_plan(owner, TrainingRunStatus(), planned)
    assert len(patches) == 1 and "phase" not in patches[0] and "jobName" not in patches[0]
    synced = find_condition(TrainingRunStatus.model_validate(patches[0]).conditions or [], "Synced")
    assert synced is not None and synced.status == "False" and synced.reason == "WriteRejected"
    assert "creating Job run-train was refused by the API server (422" in synced.message
    assert "spec.template: Required value" in synced.message
    assert [(t, r) for t, r, _ in events] == [("Warning", "WriteRejected")]
