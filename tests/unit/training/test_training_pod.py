"""`gyre train` as the Job runs it: spec from the environment, data from the store, report to the log."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from gyre.api.trainingrun import TrainingRunSpec
from gyre.cli import main
from gyre.data.report import ProfileReport
from gyre.training.manifest import ModelManifest
from gyre.training.report import TrainReport


@pytest.fixture
def profiled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, ProfileReport, Path]:
    log = tmp_path / "termination-log"
    monkeypatch.setenv("GYRE_TERMINATION_LOG", str(log))
    store = f"file://{tmp_path}/store"
    assert (
        main(
            ["profile", "--store", store, "--namespace", "ns", "--name", "iris", "--source", "builtin://iris"]
        )
        == 0
    )
    return store, ProfileReport.from_termination_message(log.read_text()), log


def _spec(**extra: object) -> str:
    spec = {
        "datasetRef": {"name": "iris"},
        "target": "target",
        "estimator": {"kind": "RandomForestClassifier", "params": {"n_estimators": 5}},
        **extra,
    }
    return json.dumps(spec)


def test_trial_of_a_search_writes_its_own_directory(
    profiled: tuple[str, ProfileReport, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, dataset, log = profiled
    search = {"strategy": "grid", "space": {"max_depth": {"values": [2, 3]}}}
    monkeypatch.setenv("GYRE_TRAINING_SPEC", _spec(search=search, gates=[{"metric": "accuracy", "min": 0.5}]))
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "1")
    assert dataset.data_uri and dataset.fingerprint
    args = ["train", "--store", store, "--run", "ns/iris-rf", "--dataset-uri", dataset.data_uri]
    assert main([*args, "--dataset-fingerprint", dataset.fingerprint]) == 0
    report = TrainReport.from_termination_message(log.read_text())
    assert report.phase == "Succeeded" and report.trial_index == 1
    assert report.params == {"n_estimators": 5, "max_depth": 3}
    assert report.gates is not None and report.gates.passed
    assert report.model_uri and report.model_uri.endswith("/models/ns/iris-rf/trials/1")
    directory = Path(report.model_uri.removeprefix("file://"))
    manifest = ModelManifest.model_validate_json((directory / "manifest.json").read_text())
    assert manifest.lineage.training_run == "ns/iris-rf" and manifest.lineage.trial == 1
    assert manifest.dataset is not None and manifest.dataset.fingerprint == dataset.fingerprint
    digest = hashlib.sha256((directory / "manifest.json").read_bytes()).hexdigest()
    assert json.loads((directory / "report.json").read_text())["modelSha256"] == digest == manifest.sha256()


def test_changed_data_is_refused(
    profiled: tuple[str, ProfileReport, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, dataset, log = profiled
    monkeypatch.setenv("GYRE_TRAINING_SPEC", _spec())
    assert dataset.data_uri
    args = ["train", "--store", store, "--run", "ns/r", "--dataset-uri", dataset.data_uri]
    assert main([*args, "--dataset-fingerprint", "sha256:" + "0" * 64]) == 1
    assert TrainReport.from_termination_message(log.read_text()).reason == "DatasetMismatch"


def test_invalid_spec_and_missing_trial_index(
    profiled: tuple[str, ProfileReport, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, dataset, log = profiled
    assert dataset.data_uri
    args = ["train", "--store", store, "--run", "ns/r", "--dataset-uri", dataset.data_uri]
    monkeypatch.setenv("GYRE_TRAINING_SPEC", '{"estimator": {"kind": "os.system"}}')
    assert main(args) == 1
    assert TrainReport.from_termination_message(log.read_text()).reason == "InvalidSpec"
    monkeypatch.setenv(
        "GYRE_TRAINING_SPEC", _spec(search={"strategy": "grid", "space": {"max_depth": {"values": [2]}}})
    )
    monkeypatch.delenv("JOB_COMPLETION_INDEX", raising=False)
    assert main(args) == 1
    assert TrainReport.from_termination_message(log.read_text()).reason == "InvalidSearch"


def test_train_report_fits_the_termination_limit() -> None:
    report = TrainReport(
        phase="Failed",
        trial_index=3,
        model_uri="s3://bucket/models/ns/run/trials/3",
        model_sha256="f" * 64,
        dataset_fingerprint="sha256:" + "0" * 64,
        metrics={f"metric_{i}": i / 7 for i in range(200)},
        params={f"param_{i}": "x" * 50 for i in range(100)},
        error="boom " * 5000,
        reason="TrainingFailed",
    )
    message = report.to_termination_message()
    assert len(message.encode()) <= 4096
    parsed = TrainReport.from_termination_message(message)
    assert parsed.truncated and parsed.reason == "TrainingFailed" and parsed.trial_index == 3
    assert parsed.model_sha256 == "f" * 64 and parsed.dataset_fingerprint == report.dataset_fingerprint
    small = TrainReport(phase="Succeeded", metrics={"accuracy": 0.9})
    assert TrainReport.from_termination_message(small.to_termination_message()) == small


def test_the_training_job_applies_the_features_it_receives_from_the_operator(
    profiled: tuple[str, ProfileReport, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The spec as the Job builder serialises it (GYRE_TRAINING_SPEC) carries spec.features into the pod."""
    store, dataset, log = profiled
    spec = TrainingRunSpec.model_validate(
        {
            "datasetRef": {"name": "iris"},
            "target": "target",
            "estimator": {"kind": "LogisticRegression"},
            "features": {
                "columns": ["petal length (cm)", "petal width (cm)"],
                "transforms": [
                    {"columns": ["petal length (cm)"], "steps": [{"log": {}}, {"standardize": {}}]}
                ],
            },
        }
    )
    monkeypatch.setenv("GYRE_TRAINING_SPEC", spec.model_dump_json(by_alias=True, exclude_none=True))
    assert dataset.data_uri
    assert main(["train", "--store", store, "--run", "ns/petals", "--dataset-uri", dataset.data_uri]) == 0
    report = TrainReport.from_termination_message(log.read_text())
    assert report.phase == "Succeeded" and report.model_uri
    manifest = ModelManifest.model_validate_json(
        (Path(report.model_uri.removeprefix("file://")) / "manifest.json").read_text()
    )
    assert [f.name for f in manifest.features] == ["petal length (cm)", "petal width (cm)"]
    assert manifest.transforms == [
        {
            "columns": ["petal length (cm)"],
            "steps": [{"log": {"offset": 1.0}}, {"standardize": {"method": "standard"}}],
        }
    ]


def test_a_retrain_writes_a_card_that_states_its_intended_use_and_links_the_check_report(
    profiled: tuple[str, ProfileReport, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, dataset, log = profiled
    report_path = Path(store.removeprefix("file://")) / "drift/ns/iris-monitor/00000003.html"
    report_path.parent.mkdir(parents=True)
    report_path.write_text("<!DOCTYPE html><p>drift</p>")
    card = {"intendedUse": "Sorting irises.", "owners": ["ml-team"]}
    monkeypatch.setenv("GYRE_TRAINING_SPEC", _spec(card=card, gates=[{"metric": "accuracy", "min": 0.5}]))
    monkeypatch.setenv("GYRE_TRIGGER", "drift:ns/iris-monitor#3")
    assert dataset.data_uri and dataset.fingerprint
    args = ["train", "--store", store, "--run", "ns/iris-rf", "--dataset-uri", dataset.data_uri]
    assert main([*args, "--dataset-fingerprint", dataset.fingerprint, "--dataset-version", "2"]) == 0
    report = TrainReport.from_termination_message(log.read_text())
    assert report.card is True and report.model_uri and report.model_uri.endswith("/models/ns/iris-rf")
    directory = Path(report.model_uri.removeprefix("file://"))
    md = (directory / "card.md").read_text()
    assert md.startswith("# Model card: ns/iris-rf\n")
    assert "## Intended use\n\nSorting irises." in md and "Owners: ml-team" in md
    assert f"| iris | 2 | {dataset.fingerprint} |" in md
    assert f"| accuracy | min 0.5 | {report.metrics['accuracy']:.4f} | passed |" in md
    assert "Retrained because the drift check #3 of ns/iris-monitor asked for it." in md
    assert f"[the check report](<file://{report_path}>)" in md
    digest = hashlib.sha256((directory / "manifest.json").read_bytes()).hexdigest()
    assert digest == report.model_sha256 and f"| {digest} |" in md
    assert (directory / "card.html").read_text().startswith("<!DOCTYPE html>")
