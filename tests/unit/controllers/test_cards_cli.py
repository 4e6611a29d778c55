"""`gyre card` and `gyre runs compare`: status from the cluster (kube.get faked), card and manifest from the store."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from gyre.api.trainingrun import TrainingRunStatus
from gyre.cli import main
from gyre.controllers import kube
from gyre.governance.compare import RunFacts, compare, format_json, format_table
from gyre.store.store import ArtifactStore

POD_ROOT = "file:///var/lib/gyre/artifacts"  # the root the training pod saw; the CLI reads through --store


def _run(name: str, status: dict[str, Any], kind: str = "RandomForestClassifier") -> dict[str, Any]:
    spec = {"datasetRef": {"name": "iris"}, "estimator": {"kind": kind}}
    return {"metadata": {"name": name, "namespace": "ml"}, "spec": spec, "status": status}


def _status(name: str, **extra: Any) -> dict[str, Any]:
    uri = f"{POD_ROOT}/models/ml/{name}"
    return {
        "phase": "Succeeded",
        "task": "classification",
        "modelUri": uri,
        "modelSha256": name * 2,
        "card": {"markdownUri": f"{uri}/card.md", "htmlUri": f"{uri}/card.html"},
        "datasetVersion": 3,
        "datasetFingerprint": "sha256:" + "ab" * 32,
        "lineage": {"dataset": "iris", "trigger": "manual", "image": "gyre:1"},
        "params": {"n_estimators": 50},
        "metrics": {"accuracy": 0.9, "f1_macro": 0.8997},
        **extra,
    }


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore("file://" + str(tmp_path / "store"))


def test_the_card_is_printed_from_the_uri_the_status_links(
    store: ArtifactStore, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    store.write_bytes("models/ml/rf/card.md", b"# Model card: ml/rf\n")
    store.write_bytes("models/ml/rf/card.html", b"<!DOCTYPE html><h1>card</h1>")
    monkeypatch.setattr(kube, "get", lambda *a: _run("rf", _status("rf")))
    assert main(["card", "ml/rf", "--store", store.url]) == 0
    assert capsys.readouterr().out == "# Model card: ml/rf\n"
    out = tmp_path / "card.html"
    assert main(["card", "ml/rf", "--html", "--store", store.url, "-o", str(out)]) == 0
    assert out.read_bytes() == b"<!DOCTYPE html><h1>card</h1>"


def test_a_search_run_links_the_card_of_its_best_trial(
    store: ArtifactStore, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    store.write_bytes("models/ml/models/trials/2/card.md", b"trial 2")
    uri = f"{POD_ROOT}/models/ml/models/trials/2"
    status = _status("models", modelUri=uri, card={"markdownUri": f"{uri}/card.md"})
    monkeypatch.setattr(kube, "get", lambda *a: _run("models", status))
    assert main(["card", "ml/models", "--store", store.url]) == 0
    assert capsys.readouterr().out == "trial 2"


@pytest.mark.parametrize(
    ("obj", "why"),
    [
        (None, "not found"),
        (_run("rf", {"phase": "Running"}), "links no model card .*it is Running"),
        (_run("rf", _status("rf")), "artifact not found"),
    ],
)
def test_no_card_to_fetch_is_explained_with_exit_2(
    obj: dict[str, Any] | None, why: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GYRE_ARTIFACT_STORE", raising=False)
    monkeypatch.setattr(kube, "get", lambda *a: obj)
    assert main(["card", "ml/rf"]) == 2
    assert re.search(why, capsys.readouterr().err)


def _manifest(seed: int, low: float) -> bytes:
    return json.dumps(
        {"seed": seed, "evaluation": {"intervals": {"accuracy": {"low": low, "high": 1.0}}}}
    ).encode()


def test_compare_lines_runs_up_and_marks_the_fields_that_differ(
    store: ArtifactStore, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    store.write_bytes("models/ml/rf/manifest.json", _manifest(42, 0.7667))
    store.write_bytes("models/ml/lr/manifest.json", _manifest(42, 0.8))
    runs = {
        "rf": _run("rf", _status("rf")),
        "lr": _run(
            "lr",
            _status(
                "lr",
                params={"C": 0.5},
                metrics={"accuracy": 0.93},
                datasetVersion=4,
                lineage={"dataset": "iris", "trigger": "drift:ml/mon#3", "image": "gyre:1"},
            ),
            kind="LogisticRegression",
        ),
    }
    monkeypatch.setattr(kube, "get", lambda _v, _k, _ns, name: runs[name])
    assert main(["runs", "compare", "ml/rf", "ml/lr", "--store", store.url, "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    rows = {r["field"]: r for r in doc["rows"]}
    assert doc["runs"] == ["ml/rf", "ml/lr"]
    assert rows["estimator"] == {
        "field": "estimator",
        "values": ["RandomForestClassifier", "LogisticRegression"],
        "differs": True,
    }
    assert rows["dataset version"]["values"] == ["3", "4"] and rows["dataset version"]["differs"]
    assert rows["trigger"]["values"] == ["manual", "drift:ml/mon#3"]
    assert rows["dataset"]["differs"] is False and rows["seed"] == {
        "field": "seed",
        "values": ["42", "42"],
        "differs": False,
    }
    assert rows["param n_estimators"]["values"] == ["50", "-"] and rows["param C"]["values"] == ["-", "0.5"]
    assert rows["metric accuracy"]["values"] == ["0.9000 [0.7667, 1.0000]", "0.9300 [0.8000, 1.0000]"]
    assert rows["metric f1_macro"]["values"] == ["0.8997", "-"]

    assert main(["runs", "compare", "ml/rf", "ml/lr", "--store", store.url]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["field", "ml/rf", "ml/lr"]
    assert table[-1] == "* the runs differ"
    marked = {line.split("  ")[1].strip() for line in table[1 : table.index("")] if line.startswith("*")}
    assert {"estimator", "dataset version", "trigger", "param C", "metric accuracy"} <= marked
    assert "dataset" not in marked and "seed" not in marked and "task" not in marked


def test_a_run_without_a_model_is_compared_on_its_status_with_a_note() -> None:
    done = RunFacts("ml/a", TrainingRunStatus.model_validate(_status("a")), "SVC", manifest={"seed": 1})
    pending = RunFacts(
        "ml/b", TrainingRunStatus(phase="Running"), "SVC", note="no model yet (status.modelUri)"
    )
    rows = compare([done, pending])
    assert next(r for r in rows if r.field == "phase").values == ["Succeeded", "Running"]
    assert "ml/b: no model yet (status.modelUri)" in format_table([done, pending], rows)
    assert json.loads(format_json([done, pending], rows))["notes"] == {
        "ml/b": "no model yet (status.modelUri)"
    }


def test_a_malformed_run_argument_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["card", "just-a-name"]) == 2
    assert main(["runs", "compare", "ml/a", "nope"]) == 2
    assert "NAMESPACE/RUN" in capsys.readouterr().err
