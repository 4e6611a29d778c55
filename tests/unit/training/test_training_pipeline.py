"""The Kubeflow pipeline: compiles, wires profile -> train -> gates, and its container commands really work.

The last test runs each compiled container command locally (placeholders substituted as the KFP launcher would),
with the venv's `gyre` on PATH instead of the image: the commands, not a mock, are what is checked.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gyre_training_pipeline", ROOT / "pipelines" / "gyre_training_pipeline.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("kfp") / "pipeline.yaml"
    _module().compile_pipeline(path)
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def test_pipeline_has_profile_train_and_gated_check(compiled: dict[str, Any]) -> None:
    executors = compiled["deploymentSpec"]["executors"]
    assert set(executors) == {"exec-profile-op", "exec-train-op", "exec-gates-op"}
    assert {e["container"]["image"] for e in executors.values()} == {"gyre:dev"}
    tasks = compiled["root"]["dag"]["tasks"]
    assert tasks["train-op"]["dependentTasks"] == ["profile-op"]
    report_in = tasks["train-op"]["inputs"]["parameters"]["dataset_report"]["taskOutputParameter"]
    assert report_in == {"outputParameterKey": "report", "producerTask": "profile-op"}
    assert "gates-op" in compiled["components"]["comp-condition-1"]["dag"]["tasks"]
    assert tasks["condition-1"]["triggerPolicy"]["condition"].endswith("== true")


def test_committed_yaml_is_up_to_date(compiled: dict[str, Any]) -> None:
    committed = yaml.safe_load((ROOT / "pipelines" / "gyre_training_pipeline.yaml").read_text())
    committed.pop("sdkVersion", None)
    fresh = dict(compiled)
    fresh.pop("sdkVersion", None)
    assert committed == fresh, "run: python pipelines/gyre_training_pipeline.py"


def _run(executor: dict[str, Any], values: dict[str, str], env: dict[str, str]) -> None:
    def substitute(arg: str) -> str:
        return re.sub(
            r"\{\{\$\.(inputs|outputs)\.parameters\['(\w+)'\](\.output_file)?\}\}",
            lambda m: values[m.group(2)],
            arg,
        )

    container = executor["container"]
    command = [*container["command"], *(substitute(a) for a in container["args"])]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr + done.stdout


def test_container_commands_run_end_to_end(compiled: dict[str, Any], tmp_path: Path) -> None:
    executors = compiled["deploymentSpec"]["executors"]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    store = f"file://{tmp_path}/store"
    profile_out = tmp_path / "outputs" / "profile" / "report"
    common = {
        "store": store,
        "namespace": "kubeflow",
        "name": "iris",
        "source": "builtin://iris",
        "target": "target",
    }
    _run(executors["exec-profile-op"], {**common, "report": str(profile_out)}, env)
    spec = {"datasetRef": {"name": "iris"}, "estimator": {"kind": "DecisionTreeClassifier"}}
    spec["gates"] = [{"metric": "accuracy", "min": 0.5}]
    train_out = tmp_path / "outputs" / "train" / "report"
    values = {"store": store, "run": "kubeflow/iris-dt", "training_spec": json.dumps(spec)}
    _run(
        executors["exec-train-op"],
        {**values, "dataset_report": profile_out.read_text(), "report": str(train_out)},
        env,
    )
    report = json.loads(train_out.read_text())
    assert report["phase"] == "Succeeded" and report["gates"]["passed"]
    assert (tmp_path / "store" / "models" / "kubeflow" / "iris-dt" / "manifest.json").is_file()
    _run(executors["exec-gates-op"], {"train_report": train_out.read_text()}, env)
