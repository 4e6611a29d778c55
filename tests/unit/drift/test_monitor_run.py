"""`gyre drift run`, the DriftMonitor's check Job entrypoint, on a local artifact store."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gyre.cli import main
from gyre.drift.monitor_run import CheckFeature, CheckReport, check_html_path, check_report_path
from gyre.drift.profile import build_profile
from gyre.drift.window import write_prediction_batch
from gyre.store.store import ArtifactStore

PROFILE = "datasets/ml/iris/" + "a" * 64 + "/profile.json"


def setup_store(tmp_path: Path, shift: float) -> str:
    rng = np.random.default_rng(0)
    reference = pd.DataFrame(
        {"x": rng.normal(0, 1, 5000), "y": rng.normal(5, 2, 5000), "target": rng.integers(0, 2, 5000)}
    )
    url = "file://" + str(tmp_path)
    store = ArtifactStore(url)
    store.write_bytes(PROFILE, build_profile(reference).to_json().encode())
    now = time.time()
    rows = [
        {"ts": now, "model": "iris", "version": "v1", "inputs": {"x": float(x), "y": float(y)}, "outputs": 0}
        for x, y in zip(rng.normal(shift, 1, 2000), rng.normal(5, 2, 2000), strict=True)
    ]
    write_prediction_batch(store, "ml", "iris", "pod-a", rows)
    return url


def run(
    tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch, config: dict[str, object]
) -> tuple[int, CheckReport]:
    log = tmp_path / "termination-log"
    monkeypatch.setenv("GYRE_TERMINATION_LOG", str(log))
    monkeypatch.setenv("GYRE_DRIFT_CONFIG", json.dumps(config))
    code = main(
        [
            "drift",
            "run",
            "--store",
            url,
            "--namespace",
            "ml",
            "--deployment",
            "iris",
            "--monitor",
            "m",
            "--check",
            "3",
            "--profile",
            PROFILE,
        ]
    )
    return code, CheckReport.model_validate_json(log.read_text())


def test_shifted_inputs_drift_and_the_full_report_is_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = setup_store(tmp_path, shift=1.5)
    code, report = run(tmp_path, url, monkeypatch, {"columns": ["x", "y"], "driftShare": 0.5})
    assert code == 0
    assert report.verdict == "drift" and report.check == 3
    by_name = {f.name: f for f in report.features}
    assert by_name["x"].drifted and not by_name["y"].drifted
    assert set(by_name) == {"x", "y"}, "the target is not an input and must not be compared"
    stored = json.loads(ArtifactStore(url).read_bytes(check_report_path("ml", "m", 3)))
    assert stored["verdict"] == "drift"
    assert by_name["x"].effect is not None and by_name["x"].effect > 1.0


def test_each_check_writes_an_html_report_beside_its_json_and_reports_its_uri(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = setup_store(tmp_path, shift=1.5)
    _, report = run(tmp_path, url, monkeypatch, {"columns": ["x", "y"]})
    store = ArtifactStore(url)
    assert report.html_report_uri == store.uri(check_html_path("ml", "m", 3))
    assert report.report_uri is not None and report.html_report_uri == report.report_uri.replace(
        ".json", ".html"
    )
    page = store.read_bytes(check_html_path("ml", "m", 3)).decode()
    assert page.startswith("<!DOCTYPE html>") and page.count('<svg class="chart"') == 2


def test_same_distribution_does_not_drift(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = setup_store(tmp_path, shift=0.0)
    code, report = run(tmp_path, url, monkeypatch, {"columns": ["x", "y"]})
    assert code == 0 and report.verdict == "no_drift"


def test_too_few_rows_give_no_verdict(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = setup_store(tmp_path, shift=3.0)
    code, report = run(tmp_path, url, monkeypatch, {"columns": ["x", "y"], "minRows": 5000})
    assert code == 0 and report.verdict == "insufficient_data"


def test_a_missing_profile_is_reported_not_raised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "termination-log"
    monkeypatch.setenv("GYRE_TERMINATION_LOG", str(log))
    code = main(
        [
            "drift",
            "run",
            "--store",
            "file://" + str(tmp_path),
            "--namespace",
            "ml",
            "--deployment",
            "d",
            "--monitor",
            "m",
            "--check",
            "1",
            "--profile",
            "nope.json",
        ]
    )
    assert code == 1
    assert CheckReport.model_validate_json(log.read_text()).error


def test_termination_message_fits_4k_by_dropping_features() -> None:
    many = [
        CheckFeature(
            name=f"feature_{i:04d}", method="wasserstein", score=0.123456, threshold=0.1, drifted=True
        )
        for i in range(300)
    ]
    text = CheckReport(check=1, verdict="drift", drift_share=1.0, features=many).to_termination_message()
    assert len(text.encode()) <= 4096
    parsed = CheckReport.model_validate_json(text)
    assert parsed.features_truncated and 0 < len(parsed.features) < 300
