"""`gyre profile` of a feedback source: the deployment's labelled predictions become a versioned table."""

from __future__ import annotations

import gzip
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest

from gyre.api.dataset import DatasetSpec
from gyre.cli import main
from gyre.data.report import ProfileReport
from gyre.drift.window import write_prediction_batch
from gyre.store import ArtifactStore, dataset_data_path, feedback_batch_path, feedback_dir

FEATURES = ["x1", "x2"]
MANIFEST: dict[str, Any] = {
    "name": "m",
    "task": "classification",
    "estimator": "LogisticRegression",
    "features": [{"name": "x1", "kind": "numeric"}, {"name": "x2", "kind": "numeric"}],
    "target": {"name": "y", "classes": [0, 1]},
    "artifact": {"sha256": "0" * 64},
    "onnx": {"status": "unavailable"},
    "seed": 0,
    "createdAt": "2026-12-01T00:00:00Z",
}


class Loop:
    """A local store with one deployment's prediction log and labels, and the served model's manifest."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.log = tmp_path / "termination-log"
        monkeypatch.setenv("GYRE_TERMINATION_LOG", str(self.log))
        self.url = f"file://{tmp_path}/store"
        self.store = ArtifactStore(self.url)
        model = tmp_path / "model"
        model.mkdir()
        raw = json.dumps(MANIFEST).encode()
        (model / "manifest.json").write_bytes(raw)
        self.model_uri = f"file://{model}"
        self.sha = hashlib.sha256(raw).hexdigest()
        self.now = time.time()

    def predict(self, rows: list[tuple[str, float, float]], *, age: float = 60.0) -> None:
        ts = self.now - age
        logged = [
            {
                "ts": ts + i,
                "id": ident,
                "model": "m",
                "version": "v1",
                "inputs": {"x1": a, "x2": b},
                "outputs": {},
            }
            for i, (ident, a, b) in enumerate(rows)
        ]
        write_prediction_batch(self.store, "ns", "dep", "pod-a", logged, now_ms=int((ts + len(rows)) * 1000))

    def label(self, labels: list[tuple[str, Any]]) -> None:
        lines = b"".join(orjson.dumps({"id": i, "label": v, "ts": self.now}) + b"\n" for i, v in labels)
        path = feedback_batch_path("ns", "dep", int(self.now * 1000), "pod-a")
        self.store.write_bytes(path, gzip.compress(lines))

    def profile(
        self, feedback: dict[str, Any], *extra: str, schema: dict[str, Any] | None = None
    ) -> ProfileReport:
        spec: dict[str, Any] = {"source": {"feedback": {"deploymentRef": {"name": "dep"}, **feedback}}}
        if schema:
            spec["schema"] = schema
        env = DatasetSpec.model_validate(spec).model_dump_json(by_alias=True, exclude_none=True)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("GYRE_DATASET_SPEC", env)
            args = [
                "profile",
                "--store",
                self.url,
                "--namespace",
                "ns",
                "--name",
                "fb",
                "--source",
                "feedback://dep",
            ]
            main([*args, "--model-uri", self.model_uri, "--model-sha256", self.sha, *extra])
        return ProfileReport.from_termination_message(self.log.read_text())

    def earlier_version(self, earlier: pd.DataFrame) -> list[str]:
        """Store `earlier` as a version of Dataset `base`, label one prediction; the profile args to merge with it."""
        fingerprint = "sha256:" + "e" * 64
        self.store.write_bytes(dataset_data_path("ns", "base", fingerprint), earlier.to_parquet(index=False))
        self.predict([("a", 1.0, 2.0)])
        self.label([("a", 0)])
        return ["--merge-dataset", "base", "--merge-fingerprint", fingerprint]

    def table(self, report: ProfileReport) -> pd.DataFrame:
        assert report.data_uri is not None
        return pd.read_parquet(report.data_uri.removeprefix("file://"))


@pytest.fixture
def loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Loop:
    return Loop(tmp_path, monkeypatch)


def test_labelled_predictions_become_a_table_of_features_and_the_models_target(loop: Loop) -> None:
    loop.predict([("a", 1.0, 2.0), ("b", 3.0, 4.0), ("c", 5.0, 6.0)])
    loop.label([("b", 1), ("a", "0"), ("zzz", 1)])
    report = loop.profile({})
    assert report.phase == "Succeeded", report.error
    assert report.target == "y" and report.rows == 2
    assert [c.name for c in report.columns or []] == ["x1", "x2", "y"]
    table = loop.table(report)
    # In prediction order; the label "0" is the model's class 0; the unknown id and the unlabelled row are not in it.
    assert table.to_dict("list") == {"x1": [1.0, 3.0], "x2": [2.0, 4.0], "y": [0, 1]}
    assert report.profile_uri is not None
    again = loop.profile({})
    assert again.fingerprint == report.fingerprint and again.reused


def test_the_first_label_of_a_prediction_wins(loop: Loop) -> None:
    loop.predict([("a", 1.0, 2.0)])
    loop.label([("a", 1)])
    loop.store.write_bytes(f"{feedback_dir('ns', 'dep')}/late/relabel.csv", b"id,label,ts\na,0,9999999999\n")
    assert loop.table(loop.profile({}))["y"].tolist() == [1]


def test_fewer_labelled_rows_than_min_rows_fail_with_the_counts(loop: Loop) -> None:
    loop.predict([("a", 1.0, 2.0), ("b", 3.0, 4.0)])
    loop.label([("a", 1), ("nope", 0)])
    report = loop.profile({"minRows": 2})
    assert report.phase == "Failed" and report.reason == "InsufficientFeedback"
    assert (
        report.error is not None
        and "1 labelled predictions" in report.error
        and "1 with unknown ids" in report.error
    )


def test_predictions_older_than_max_age_are_left_out(loop: Loop) -> None:
    loop.predict([("old", 9.0, 9.0)], age=7200)
    loop.predict([("new", 1.0, 1.0)])
    loop.label([("old", 1), ("new", 0)])
    assert loop.table(loop.profile({"maxAge": "1h"}))["x1"].tolist() == [1.0]


def test_merge_with_appends_the_feedback_to_an_earlier_version(loop: Loop) -> None:
    merge = loop.earlier_version(pd.DataFrame({"x2": [0.5], "x1": [0.25], "y": [1]}))
    report = loop.profile({"mergeWith": {"datasetRef": {"name": "base"}}}, *merge)
    assert report.phase == "Succeeded", report.error
    assert loop.table(report).to_dict("list") == {"x2": [0.5, 2.0], "x1": [0.25, 1.0], "y": [1, 0]}


def test_a_merge_version_with_other_columns_fails_naming_them(loop: Loop) -> None:
    merge = loop.earlier_version(pd.DataFrame({"x1": [0.25], "x2": [0.5], "id": [7], "y": [1]}))
    report = loop.profile({"mergeWith": {"datasetRef": {"name": "base"}}}, *merge)
    assert report.phase == "Failed" and report.reason == "SchemaMismatch"
    assert report.error is not None and "columns the feedback table lacks: id" in report.error
    assert "spec.schema.drop" in report.error
    # Dropping the column the model does not use makes the schemas agree.
    report = loop.profile({"mergeWith": {"datasetRef": {"name": "base"}}}, *merge, schema={"drop": ["id"]})
    assert report.phase == "Succeeded" and report.rows == 2


def test_a_manifest_other_than_the_served_one_is_refused(loop: Loop) -> None:
    loop.sha = "1" * 64
    report = loop.profile({})
    assert report.phase == "Failed" and report.reason == "ModelUnreadable" and "1111" in (report.error or "")
