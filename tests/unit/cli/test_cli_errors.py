"""Every `gyre` error is one line on stderr with a non-zero exit code; --verbose adds the traceback. The real
command runs in a subprocess, as a user runs it."""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
from pathlib import Path

import joblib
import pytest
from sklearn.datasets import load_iris
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.tree import DecisionTreeClassifier

from gyre.training.importer import import_joblib

IRIS = "sepal_length,sepal_width,petal_length,petal_width"


def gyre(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gyre.cli", *args], capture_output=True, text=True, timeout=240, cwd=cwd
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    x, y = load_iris(return_X_y=True)
    joblib.dump(DecisionTreeClassifier(max_depth=2, random_state=0).fit(x, y), root / "model.joblib")
    import_joblib(
        root / "model.joblib",
        name="iris",
        feature_names=IRIS.split(","),
        out_dir=root / "model",
        trust_pickle=True,
    )
    return root / "model"


@pytest.fixture
def busy_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def test_serve_on_a_port_in_use_is_one_line(model_dir: Path, busy_port: int) -> None:
    result = gyre("serve", "--model-dir", str(model_dir), "--host", "127.0.0.1", "--port", str(busy_port))
    assert result.returncode == 1
    line = one_line(result)
    assert line.startswith(f"gyre serve: cannot listen on 127.0.0.1:{busy_port}: ")
    assert "in use" in line


def test_serve_on_a_host_this_machine_does_not_have_is_one_line(model_dir: Path) -> None:
    # 203.0.113.0/24 is documentation space (RFC 5737): no interface holds it.
    result = gyre("serve", "--model-dir", str(model_dir), "--host", "203.0.113.7", "--port", "0")
    assert result.returncode == 1
    assert one_line(result).startswith("gyre serve: cannot listen on 203.0.113.7:0: ")


def test_verbose_adds_the_traceback_before_the_line(model_dir: Path, busy_port: int) -> None:
    for args in (["--verbose", "serve"], ["serve", "--verbose"]):
        result = gyre(*args, "--model-dir", str(model_dir), "--host", "127.0.0.1", "--port", str(busy_port))
        assert result.returncode == 1
        assert "Traceback (most recent call last)" in result.stderr
        assert result.stderr.strip().splitlines()[-1].startswith("gyre serve: cannot listen on")


def test_import_of_a_file_that_is_not_joblib_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "model.joblib").write_text("not a pickle\n")
    result = gyre(
        "model", "import", "--from-joblib", str(tmp_path / "model.joblib"), "--trust-pickle", "--name", "m",
        "--feature-names", "a", "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert result.returncode == 2
    assert one_line(result).startswith(f"gyre model import: {tmp_path / 'model.joblib'} is not a joblib file")


def test_an_unexpected_error_is_one_line_and_verbose_shows_where(tmp_path: Path) -> None:
    args = ["model", "import", "--from-skops", str(tmp_path), "--name", "m", "--feature-names", "a"]
    result = gyre(*args, "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    assert one_line(result) == f"gyre model: Is a directory: {tmp_path} (--verbose for the traceback)"
    verbose = gyre(*args, "--out", str(tmp_path / "out"), "--verbose")
    assert verbose.returncode == 1 and "IsADirectoryError" in verbose.stderr and "Traceback" in verbose.stderr


def test_import_prints_how_many_rows_verified_the_twin(tmp_path: Path) -> None:
    x, y = load_iris(return_X_y=True)
    model = Pipeline(
        [("impute", SimpleImputer()), ("tree", DecisionTreeClassifier(max_depth=3, random_state=0))]
    )
    joblib.dump(model.fit(x, y), tmp_path / "model.joblib")
    result = gyre(
        "model", "import", "--from-joblib", str(tmp_path / "model.joblib"), "--trust-pickle", "--name", "m",
        "--feature-names", IRIS, "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "ONNX twin verified on " in result.stdout and " rows (generated)" in result.stdout


def train_local(dataset: str, out: Path) -> subprocess.CompletedProcess[str]:
    args = [
        "--dataset",
        dataset,
        "--target",
        "target",
        "--estimator",
        "LogisticRegression",
        "--out",
        str(out),
    ]
    return gyre("train", "--local", *args)


def test_train_local_with_out_naming_a_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "model").write_text("")
    result = train_local("builtin://iris", tmp_path / "model")
    assert result.returncode != 0
    assert result.stdout == ""
    assert one_line(result) == (
        f"gyre train: InvalidArguments: --out {tmp_path / 'model'} is a file; give a directory for the model"
    )


def test_train_local_failures_go_to_stderr_not_json_on_stdout(tmp_path: Path) -> None:
    result = train_local("builtin://nope", tmp_path / "model")
    assert result.returncode != 0
    assert result.stdout == ""
    assert one_line(result).startswith("gyre train: UnknownBuiltin: unknown builtin dataset 'nope'")


def test_a_run_through_the_command_exits_0_with_its_whole_report_and_model(tmp_path: Path) -> None:
    # The command skips the interpreter's final garbage collection (gyre.cli.run): what it wrote must be whole.
    result = train_local("builtin://iris", tmp_path / "model")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["phase"] == "Succeeded"
    manifest = json.loads((tmp_path / "model" / "manifest.json").read_text())
    assert (
        report["modelSha256"]
        == hashlib.sha256((tmp_path / "model" / "manifest.json").read_bytes()).hexdigest()
    )
    assert (
        manifest["artifact"]["sha256"]
        == hashlib.sha256((tmp_path / "model" / "model.skops").read_bytes()).hexdigest()
    )
