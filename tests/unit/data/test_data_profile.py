"""`gyre profile`: the profiling entrypoint and its report."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from gyre.cli import main
from gyre.data.report import ColumnInfo, ProfileReport
from gyre.store import TERMINATION_MESSAGE_LIMIT


def test_profile_writes_content_addressed_copy_profile_and_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "termination-log"
    monkeypatch.setenv("GYRE_TERMINATION_LOG", str(log))
    store = f"file://{tmp_path}/store"
    args = ["profile", "--store", store, "--namespace", "ns", "--name", "iris", "--source", "builtin://iris"]
    assert main([*args, "--target", "target"]) == 0
    report = ProfileReport.from_termination_message(log.read_text())
    assert report.phase == "Succeeded" and report.rows == 150 and not report.reused
    assert report.fingerprint is not None and report.data_uri and report.profile_uri
    assert report.data_uri.endswith(f"/datasets/ns/iris/{report.fingerprint[7:]}/data.parquet")
    copy = pd.read_parquet(report.data_uri.removeprefix("file://"))
    assert copy.shape == (150, 5)
    profile = json.loads(Path(report.profile_uri.removeprefix("file://")).read_text())
    assert set(profile["columns"]) == {c.name for c in report.columns or []}
    assert capsys.readouterr().out.strip() == log.read_text()
    # Same content again: the copy is reused, the fingerprint identical.
    assert main(args) == 0
    again = ProfileReport.from_termination_message(log.read_text())
    assert again.reused and again.fingerprint == report.fingerprint


def test_profile_failure_is_a_report_with_a_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "termination-log"
    monkeypatch.setenv("GYRE_TERMINATION_LOG", str(log))
    store = f"file://{tmp_path}/store"
    base = ["profile", "--store", store, "--namespace", "ns", "--name", "d"]
    assert main([*base, "--source", "builtin://iris", "--target", "label"]) == 1
    assert ProfileReport.from_termination_message(log.read_text()).reason == "TargetMissing"
    assert main([*base, "--source", "builtin://nope"]) == 1
    assert ProfileReport.from_termination_message(log.read_text()).reason == "UnknownBuiltin"


def test_dataset_spec_env_applies_csv_options_and_schema_overrides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The namespace's own sources/ area of a file:// store, which the default source policy lets it read.
    data = tmp_path / "s" / "sources" / "ns" / "d.csv"
    data.parent.mkdir(parents=True)
    data.write_text("id;zip;y\n1;1000;a\n2;2000;b\n3;1000;a\n")
    log = tmp_path / "termination-log"
    monkeypatch.setenv("GYRE_TERMINATION_LOG", str(log))
    spec = {
        "source": {"uri": f"file://{data}", "csv": {"delimiter": ";"}},
        "schema": {"kinds": {"zip": "categorical"}, "drop": ["id"]},
    }
    monkeypatch.setenv("GYRE_DATASET_SPEC", json.dumps(spec))
    source = f"file://{data}"
    assert (
        main(
            [
                "profile",
                "--store",
                f"file://{tmp_path}/s",
                "--namespace",
                "ns",
                "--name",
                "d",
                "--source",
                source,
            ]
        )
        == 0
    )
    report = ProfileReport.from_termination_message(log.read_text())
    assert [(c.name, c.kind) for c in report.columns or []] == [("zip", "categorical"), ("y", "binary")]


def test_profile_report_fits_the_termination_limit_for_wide_data() -> None:
    columns = [
        ColumnInfo(name=f"a_rather_long_column_name_{i:05d}", kind="numeric", dtype="float64")
        for i in range(500)
    ]
    report = ProfileReport(
        phase="Succeeded",
        fingerprint="sha256:" + "0" * 64,
        rows=10,
        columns=columns,
        data_uri="s3://bucket/datasets/ns/d/x/data.parquet",
        profile_uri="s3://bucket/datasets/ns/d/x/profile.json",
    )
    message = report.to_termination_message()
    assert len(message.encode()) <= TERMINATION_MESSAGE_LIMIT
    parsed = ProfileReport.from_termination_message(message)
    assert parsed.columns_truncated and parsed.column_count == 500
    assert parsed.columns and parsed.columns[0].name == columns[0].name
    assert parsed.fingerprint == report.fingerprint and parsed.profile_uri == report.profile_uri
