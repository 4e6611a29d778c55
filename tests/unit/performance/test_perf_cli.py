"""`gyre perf check` on local files, through the real `gyre` entry point."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from perf_factories import model_manifest

from gyre.cli import main
from gyre.drift.window import write_prediction_batch

NOW = 1_800_000_000.0


def _manifest(path: Path, accuracy: float) -> Path:
    path.write_bytes(
        model_manifest(["no", "yes"], {"accuracy": accuracy, "f1_macro": accuracy}, test_rows=1000).to_bytes()
    )
    return path


def check_args(files: tuple[Path, Path], manifest: Path) -> list[str]:
    predictions, labels = files
    return [
        "perf",
        "check",
        "--predictions",
        str(predictions),
        "--labels",
        str(labels),
        "--baseline",
        str(manifest),
    ]


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    """800 logged predictions with ids, right 75 % of the time, and their labels in a CSV."""
    rng = np.random.default_rng(0)
    truth = rng.choice(["no", "yes"], 800)
    right = rng.random(800) < 0.75
    predicted = np.where(right, truth, np.where(truth == "yes", "no", "yes"))
    rows = [
        {"id": f"req-{i}", "ts": NOW - 600 + i / 2, "inputs": {"x": float(i)}, "outputs": {"predict": p}}
        for i, p in enumerate(predicted.tolist())
    ]
    write_prediction_batch(str(tmp_path / "store"), "ml", "churn", "srv-0", rows, now_ms=int(NOW * 1000))
    labels = tmp_path / "labels.csv"
    pd.DataFrame(
        {"id": [f"req-{i}" for i in range(800)] + ["req-0", "ghost"], "label": [*truth, "yes", "no"]}
    ).to_csv(labels, index=False)
    return tmp_path / "store" / "predictions", labels


def test_check_reports_a_degraded_model_with_its_join_counts(
    files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = _manifest(tmp_path / "manifest.json", 0.92)
    code = main(check_args(files, manifest))
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "degraded"
    assert report["labelledRows"] == 800
    assert report["join"]["duplicateLabels"] == 1 and report["join"]["unknownIds"] == 1
    assert report["baselineTestRows"] == 1000
    accuracy = next(m for m in report["metrics"] if m["name"] == "accuracy")
    assert accuracy["low"] < accuracy["value"] < accuracy["high"] < 0.92


def test_check_of_a_model_performing_as_tested_is_ok(
    files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = _manifest(tmp_path / "manifest.json", 0.75)
    out = tmp_path / "report.json"
    args = check_args(files, manifest)
    assert main([*args, "--output", str(out)]) == 0
    assert json.loads(out.read_text())["verdict"] == "ok"
    assert capsys.readouterr().err.startswith("ok: ")


def test_max_age_leaves_older_predictions_out_of_the_window(
    files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = _manifest(tmp_path / "manifest.json", 0.75)
    args = check_args(files, manifest)
    assert main([*args, "--max-age", "300s", "--now", str(NOW)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["labelledRows"] == 200  # ts NOW-300 .. NOW-200.5, at 2 rows a second
    assert report["verdict"] == "ok"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--metric", "rmse"], "not classification metrics"),
        (["--max-drop", "accuracy"], "expected METRIC=NUMBER"),
        (["--confidence", "2"], "invalid option confidence"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    files: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    manifest = _manifest(tmp_path / "manifest.json", 0.9)
    args = check_args(files, manifest)
    assert main([*args, *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_a_missing_baseline_exits_2(
    files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(check_args(files, tmp_path / "nope.json")) == 2
    assert "no such file" in capsys.readouterr().err
