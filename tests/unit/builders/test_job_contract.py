"""The contract between the Jobs the operator builds and the in-pod `gyre profile` / `gyre train` commands.

Each Job's container command and env are executed in-process with the real CLI against a file:// store, and the
termination message is folded back into status by the controllers' own functions: the loop a pod would close,
minus Kubernetes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gyre import cli
from gyre.api.common import find_condition
from gyre.api.dataset import DatasetSpec, DatasetStatus
from gyre.api.trainingrun import TrainingRunSpec, TrainingRunStatus
from gyre.builders.job import DatasetInput, build_profile_job, build_training_job
from gyre.builders.meta import Owner
from gyre.builders.settings import OperatorSettings
from gyre.data.report import ProfileReport
from gyre.reconcile.dataset import apply_profile_result
from gyre.reconcile.trainingrun import DatasetView, apply_training_result, resolve_dataset
from gyre.training.report import TrainReport

NS = "ml"
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def run_container(
    job: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: dict[str, str] | None = None
) -> str:
    """Run the Job's container command in-process; return what it wrote to its termination log."""
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["gyre"]
    for item in container["env"]:
        monkeypatch.setenv(item["name"], item["value"])
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    log = tmp_path / f"termination-{job['metadata']['name']}"
    monkeypatch.setenv("GYRE_TERMINATION_LOG", str(log))
    code = cli.main(container["args"])
    message = log.read_text()
    assert code == 0, message
    return message


def test_profile_then_train_through_the_real_entrypoints(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = OperatorSettings(artifact_store=f"file://{tmp_path}/store")

    # Dataset: build the profiling Job, run it, record the report.
    ds_owner = Owner(kind="Dataset", name="iris", namespace=NS, uid="u-ds")
    ds_spec = DatasetSpec.model_validate({"source": {"uri": "builtin://iris"}, "target": "target"})
    profile = build_profile_job(ds_owner, ds_spec, settings, revision="g1")
    report = ProfileReport.from_termination_message(run_container(profile, monkeypatch, tmp_path))
    status, reason, _ = apply_profile_result(
        DatasetStatus(phase="Profiling"),
        report,
        history_limit=10,
        generation=1,
        finished_at=T0,
        refresh=False,
    )
    assert (status.phase, status.version, reason) == ("Ready", 1, "NewVersion")
    assert status.fingerprint is not None and status.fingerprint.startswith("sha256:")
    assert status.rows == 150

    # TrainingRun: resolve that version, build the Job, run it, record the result and the gates.
    run_spec = TrainingRunSpec.model_validate(
        {
            "datasetRef": {"name": "iris", "fingerprint": status.fingerprint},
            "estimator": {"kind": "LogisticRegression", "params": {"max_iter": 200}},
            "gates": [{"metric": "accuracy", "min": 0.8}],
        }
    )
    dataset_obj = DatasetView(spec=ds_spec, status=status)
    resolved = resolve_dataset(run_spec, dataset_obj)
    assert isinstance(resolved, DatasetInput)
    run_owner = Owner(kind="TrainingRun", name="iris-lr", namespace=NS, uid="u-tr")
    job = build_training_job(run_owner, run_spec, settings, resolved, trigger="drift:ml/mon")
    train = TrainReport.from_termination_message(run_container(job, monkeypatch, tmp_path))
    assert train.phase == "Succeeded", train.error
    assert train.dataset_fingerprint == status.fingerprint
    result, events = apply_training_result(
        TrainingRunStatus(phase="Running"), run_spec, {0: train}, generation=1, finished_at=T0
    )
    assert result.phase == "Succeeded"
    assert result.score is not None and result.score >= 0.8
    assert result.model_uri and result.model_sha256
    validated = find_condition(result.conditions or [], "Validated")
    assert validated is not None and validated.status == "True"
    assert [e.reason for e in events] == ["Succeeded"]


def test_search_trials_select_their_index(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    settings = OperatorSettings(artifact_store=f"file://{tmp_path}/store")
    ds_owner = Owner(kind="Dataset", name="iris", namespace=NS, uid="u-ds")
    ds_spec = DatasetSpec.model_validate({"source": {"uri": "builtin://iris"}, "target": "target"})
    profile = build_profile_job(ds_owner, ds_spec, settings, revision="g1")
    report = ProfileReport.from_termination_message(run_container(profile, monkeypatch, tmp_path))
    status, _, _ = apply_profile_result(
        DatasetStatus(), report, history_limit=10, generation=1, finished_at=T0, refresh=False
    )
    run_spec = TrainingRunSpec.model_validate(
        {
            "datasetRef": {"name": "iris"},
            "estimator": {"kind": "DecisionTreeClassifier"},
            "search": {"strategy": "grid", "space": {"max_depth": {"values": [1, 4]}}},
        }
    )
    dataset_obj = DatasetView(spec=ds_spec, status=status)
    resolved = resolve_dataset(run_spec, dataset_obj)
    assert isinstance(resolved, DatasetInput)
    job = build_training_job(
        Owner(kind="TrainingRun", name="iris-dt", namespace=NS, uid="u"), run_spec, settings, resolved
    )
    assert job["spec"]["completions"] == 2
    reports = {}
    for index in range(2):
        # The Job controller sets JOB_COMPLETION_INDEX in each pod of an Indexed Job.
        message = run_container(job, monkeypatch, tmp_path, env={"JOB_COMPLETION_INDEX": str(index)})
        reports[index] = TrainReport.from_termination_message(message)
    assert [r.params.get("max_depth") for r in reports.values()] == [1, 4]
    result, _ = apply_training_result(
        TrainingRunStatus(phase="Running"), run_spec, reports, generation=1, finished_at=T0
    )
    # A depth-4 tree beats a stump on iris.
    assert result.best_trial == 1
    assert result.trials is not None and len(result.trials) == 2
