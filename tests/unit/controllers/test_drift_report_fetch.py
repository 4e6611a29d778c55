"""`gyre drift report`: the HTML report a DriftMonitor links, fetched through the store (kube.get faked)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gyre.cli import main
from gyre.controllers import kube
from gyre.controllers.drift_report import ReportUnavailable, fetch_report_html, store_relative
from gyre.store.store import ArtifactStore


def _monitor(status: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "m", "namespace": "ml"}, "spec": {}, "status": status}


@pytest.mark.parametrize(
    ("uri", "relative"),
    [
        ("file:///var/lib/gyre/artifacts/drift/ml/m/00000003.html", "drift/ml/m/00000003.html"),
        ("s3://bucket/prefix/drift/ml/m/00000012.html", "drift/ml/m/00000012.html"),
    ],
)
def test_store_relative_keeps_the_path_under_the_store_root(uri: str, relative: str) -> None:
    assert store_relative(uri) == relative


def test_report_is_read_through_the_given_store_whatever_root_the_pod_saw(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    store = ArtifactStore("file://" + str(tmp_path))
    store.write_bytes("drift/ml/m/00000003.html", b"<!DOCTYPE html><p>report</p>")
    status = {"htmlReportUri": "file:///var/lib/gyre/artifacts/drift/ml/m/00000003.html"}
    monkeypatch.setattr(kube, "get", lambda *a: _monitor(status))
    out = tmp_path / "out.html"
    assert main(["drift", "report", "ml/m", "--store", store.url, "-o", str(out)]) == 0
    assert out.read_bytes() == b"<!DOCTYPE html><p>report</p>"


@pytest.mark.parametrize(
    ("found", "status", "why"),
    [
        (False, {}, "not found"),
        (True, {}, "no HTML report yet"),
        (True, {"htmlReportUri": "file:///nowhere/drift/ml/m/00000001.html"}, "artifact not found"),
    ],
)
def test_no_report_to_fetch_is_explained(
    found: bool, status: dict[str, Any], why: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GYRE_ARTIFACT_STORE", raising=False)
    monkeypatch.setattr(kube, "get", lambda *a: _monitor(status) if found else None)
    with pytest.raises(ReportUnavailable, match=why):
        fetch_report_html("ml", "m")


def test_a_malformed_monitor_argument_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["drift", "report", "just-a-name"]) == 2
    assert "NAMESPACE/MONITOR" in capsys.readouterr().err
