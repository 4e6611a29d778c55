"""Reports are believed only from the operator's own Job, running an allowed image, in pods that Job created."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from gyre.api.common import find_condition
from gyre.api.dataset import DatasetSpec, DatasetStatus
from gyre.api.trainingrun import TrainingRunSpec, TrainingRunStatus
from gyre.builders.meta import Owner
from gyre.builders.settings import OperatorSettings
from gyre.data.report import ColumnInfo, ProfileReport
from gyre.reconcile.dataset import ObservedDataset, plan_dataset
from gyre.reconcile.observed import job_view, pod_results, untrusted_result
from gyre.reconcile.plan import Create
from gyre.reconcile.trainingrun import DatasetView, ObservedTrainingRun, plan_trainingrun
from gyre.training.report import TrainReport

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
FP = "sha256:" + "b" * 64
SETTINGS = OperatorSettings(artifact_store="pvc://gyre-artifacts", image="gyre:test")
RUN = Owner(kind="TrainingRun", name="iris-rf", namespace="ml", uid="run-uid")
DATASET = Owner(kind="Dataset", name="iris", namespace="ml", uid="ds-uid")
JOB_UID = "job-uid"


def ready_dataset() -> DatasetView:
    status = DatasetStatus.model_validate(
        {
            "phase": "Ready",
            "fingerprint": FP,
            "version": 1,
            "dataUri": f"file:///s/datasets/ml/iris/{'b' * 64}/data.parquet",
            "columns": [{"name": n, "kind": "numeric", "dtype": "float64"} for n in ("x", "target")],
            "columnCount": 2,
        }
    )
    return DatasetView(
        DatasetSpec.model_validate({"source": {"uri": "builtin://iris"}, "target": "target"}), status
    )


def run_observed(**kw: Any) -> ObservedTrainingRun:
    spec = TrainingRunSpec.model_validate(
        {"datasetRef": {"name": "iris"}, "estimator": {"kind": "RandomForestClassifier"}}
    )
    fields: dict[str, Any] = {
        "owner": RUN,
        "spec": spec,
        "spec_error": None,
        "status": TrainingRunStatus(),
        "settings": SETTINGS,
        "now": NOW,
        "dataset": ready_dataset(),
    }
    fields.update(kw)
    return ObservedTrainingRun(**fields)


def finished(job: dict[str, Any]) -> dict[str, Any]:
    """The Job as the API server shows it once it completed."""
    job = copy.deepcopy(job)
    job["metadata"]["uid"] = JOB_UID
    job["status"] = {
        "conditions": [{"type": "Complete", "status": "True"}],
        "completionTime": "2026-12-01T12:05:00Z",
    }
    return job


def pod_of(job: dict[str, Any], message: str) -> dict[str, Any]:
    """The pod the Job controller creates from the template, terminated with `message`."""
    return {
        "metadata": {
            "name": f"{job['metadata']['name']}-abcde",
            "creationTimestamp": "2026-12-01T12:00:01Z",
            "ownerReferences": [
                {"kind": "Job", "name": job["metadata"]["name"], "uid": JOB_UID, "controller": True}
            ],
        },
        "spec": copy.deepcopy(job["spec"]["template"]["spec"]),
        "status": {"containerStatuses": [{"state": {"terminated": {"exitCode": 0, "message": message}}}]},
    }


def training_job() -> dict[str, Any]:
    plan = plan_trainingrun(run_observed())
    return finished(next(a.body for a in plan.actions if isinstance(a, Create) and a.body["kind"] == "Job"))


TRAINED = TrainReport(
    phase="Succeeded",
    metrics={"accuracy": 0.97},
    model_uri="file:///s/models/ml/iris-rf",
    model_sha256="c" * 64,
).to_termination_message()


def other_image(pod: dict[str, Any]) -> None:
    pod["spec"]["containers"][0]["image"] = "evil.example.com/fake:1"


def other_command(pod: dict[str, Any]) -> None:
    pod["spec"]["containers"][0]["command"] = ["sh", "-c", "echo fake > /dev/termination-log"]


def other_owner(pod: dict[str, Any]) -> None:
    pod["metadata"]["ownerReferences"][0]["uid"] = "someone-else"


def unowned(pod: dict[str, Any]) -> None:
    pod["metadata"]["ownerReferences"] = []


def pinned_by_webhook(pod: dict[str, Any]) -> None:
    pod["spec"]["containers"][0]["image"] = "gyre:test@sha256:" + "d" * 64


@pytest.mark.parametrize(
    ("tamper", "trusted"),
    [
        (lambda pod: None, True),
        (pinned_by_webhook, True),
        (other_image, False),
        (other_command, False),
        (other_owner, False),
        (unowned, False),
    ],
)
def test_a_training_report_is_believed_only_from_a_pod_of_the_runs_own_job(
    tamper: Callable[[dict[str, Any]], None], trusted: bool
) -> None:
    job = training_job()
    pod = pod_of(job, TRAINED)
    tamper(pod)
    running = plan_trainingrun(run_observed()).status
    plan = plan_trainingrun(run_observed(status=running, job=job_view(job), pods=pod_results([pod])))
    if trusted:
        assert plan.status.phase == "Succeeded" and plan.status.model_sha256 == "c" * 64
        return
    assert plan.status.phase == "Failed" and plan.status.model_uri is None and plan.status.metrics is None
    failed = find_condition(plan.status.conditions or [], "Failed")
    assert failed is not None and failed.reason == "UntrustedResult"
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "UntrustedResult")]


def test_a_job_of_the_same_name_created_by_someone_else_is_not_believed() -> None:
    job = training_job()
    job["metadata"]["ownerReferences"][0]["uid"] = "another-run"
    why = untrusted_result(RUN.uid, job_view(job), pod_results([pod_of(job, TRAINED)]), SETTINGS.image_policy)
    assert why is not None and "controlled by another object" in why


def test_a_job_whose_template_image_left_the_policy_is_not_believed() -> None:
    job = training_job()
    job["spec"]["template"]["spec"]["containers"][0]["image"] = "old.example.com/gyre:0.1"
    why = untrusted_result(RUN.uid, job_view(job), pod_results([pod_of(job, TRAINED)]), SETTINGS.image_policy)
    assert why is not None and "'old.example.com/gyre:0.1' is refused by the operator's image policy" in why


def test_a_profiling_report_from_a_foreign_image_fails_the_dataset_and_records_no_version() -> None:
    spec = DatasetSpec.model_validate({"source": {"uri": "builtin://iris"}, "target": "target"})
    first = plan_dataset(ObservedDataset(DATASET, spec, None, DatasetStatus(), SETTINGS, NOW))
    job = finished(next(a.body for a in first.actions if isinstance(a, Create) and a.body["kind"] == "Job"))
    report = ProfileReport(
        phase="Succeeded",
        fingerprint=FP,
        rows=150,
        columns=[ColumnInfo(name="x", kind="numeric", dtype="float64")],
        data_uri="file:///s/d/data.parquet",
        profile_uri="file:///s/d/profile.json",
    ).to_termination_message()
    pod = pod_of(job, report)
    other_image(pod)
    plan = plan_dataset(
        ObservedDataset(
            DATASET, spec, None, first.status, SETTINGS, NOW, jobs=[job_view(job)], pods=pod_results([pod])
        )
    )
    assert plan.status.phase == "Failed" and plan.status.fingerprint is None
    ready = find_condition(plan.status.conditions or [], "Ready")
    assert ready is not None and ready.reason == "UntrustedResult"
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "UntrustedResult")]
