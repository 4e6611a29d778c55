"""The Kubeflow pipeline: compiles to the committed YAML, is wired as KFP users expect, and really runs.

`kfp.local` with the SubprocessRunner runs every step as KFP would run it in a pod (the lightweight component's
executor, artifacts in a pipeline root), in this venv instead of the image: no Docker, no mocks.
"""

from __future__ import annotations

import importlib.util
import json
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


PIPELINE = _module()
SPEC = {
    "datasetRef": {"name": "iris"},
    "estimator": {"kind": "DecisionTreeClassifier"},
    "gates": [{"metric": "accuracy", "min": 0.5}],
}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("kfp") / "pipeline.yaml"
    PIPELINE.compile_pipeline(path)
    docs = list(yaml.safe_load_all(path.read_text()))
    return {"pipeline": docs[0], "platform": docs[1] if len(docs) > 1 else {}}


def test_committed_yaml_is_up_to_date(compiled: dict[str, Any]) -> None:
    committed = list(yaml.safe_load_all((ROOT / "pipelines" / "gyre_training_pipeline.yaml").read_text()))
    fresh = [compiled["pipeline"], compiled["platform"]]
    for doc in (*committed, *fresh):
        doc.pop("sdkVersion", None)
    assert committed == fresh, "run: python pipelines/gyre_training_pipeline.py"


def test_every_step_is_a_lightweight_component_on_the_image_parameter(compiled: dict[str, Any]) -> None:
    executors = compiled["pipeline"]["deploymentSpec"]["executors"]
    assert set(executors) == {"exec-fingerprint-op", "exec-profile-op", "exec-train-op", "exec-gates-op"}
    for executor in executors.values():
        container = executor["container"]
        assert container["image"] == "{{$.inputs.parameters['pipelinechannel--image']}}"
        command = " ".join(container["command"])
        assert "kfp.dsl.executor_main" in command  # a Python function run by KFP's executor, not a shell line
        assert "pip install" not in command  # the image carries kfp: nothing is installed at run time
    inputs = compiled["pipeline"]["root"]["inputDefinitions"]["parameters"]
    assert inputs["image"]["defaultValue"] == PIPELINE.DEFAULT_IMAGE


def test_outputs_are_typed_artifacts(compiled: dict[str, Any]) -> None:
    components = compiled["pipeline"]["components"]

    def artifacts(name: str) -> dict[str, str]:
        outs = components[name].get("outputDefinitions", {}).get("artifacts", {})
        return {key: out["artifactType"]["schemaTitle"] for key, out in outs.items()}

    assert artifacts("comp-profile-op") == {"dataset": "system.Dataset"}
    assert artifacts("comp-train-op") == {"model": "system.Model", "metrics": "system.Metrics"}
    assert compiled["pipeline"]["root"]["outputDefinitions"]["artifacts"]["Output"]["artifactType"] == {
        "schemaTitle": "system.Model",
        "schemaVersion": "0.0.1",
    }


def test_the_profile_is_cached_by_the_data_fingerprint_which_is_never_cached(
    compiled: dict[str, Any],
) -> None:
    tasks = compiled["pipeline"]["root"]["dag"]["tasks"]
    assert tasks["fingerprint-op"]["cachingOptions"].get("enableCache", False) is False
    assert tasks["profile-op"]["cachingOptions"]["enableCache"] is True
    key = tasks["profile-op"]["inputs"]["parameters"]["fingerprint"]["taskOutputParameter"]
    assert key == {"outputParameterKey": "Output", "producerTask": "fingerprint-op"}
    train_in = tasks["train-op"]["inputs"]["artifacts"]["dataset"]["taskOutputArtifact"]
    assert train_in == {"outputArtifactKey": "dataset", "producerTask": "profile-op"}


def test_store_credentials_come_from_a_secret_through_kfp_kubernetes(compiled: dict[str, Any]) -> None:
    executors = compiled["platform"]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert set(executors) == {"exec-fingerprint-op", "exec-profile-op", "exec-train-op", "exec-gates-op"}
    for executor in executors.values():
        (secret,) = executor["secretAsEnv"]
        # The pipeline parameter store_secret (as the gates step's sub-DAG inside dsl.If names it).
        name = secret["secretNameParameter"]["componentInputParameter"]
        assert name in ("store_secret", "pipelinechannel--store_secret")
        assert secret["optional"] is True
        assert {kv["secretKey"] for kv in secret["keyToEnv"]} == set(PIPELINE.STORE_KEYS)


@pytest.fixture(scope="module")
def local_runner(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from kfp import local

    root = tmp_path_factory.mktemp("kfp-root")
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root))
    return root


def test_kfp_local_runs_the_pipeline_and_yields_a_model_with_lineage(
    local_runner: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    task = PIPELINE.gyre_training_pipeline(
        store=f"file://{store}", run="kubeflow/iris-dt", training_spec=json.dumps(SPEC)
    )
    model = task.output
    report = json.loads(Path(model.path).read_text())
    assert report["phase"] == "Succeeded" and report["gates"]["passed"]
    assert model.metadata["modelUri"] == f"file://{store}/models/kubeflow/iris-dt"
    assert (store / "models" / "kubeflow" / "iris-dt" / "manifest.json").is_file()
    assert model.metadata["datasetFingerprint"].startswith("sha256:")
    assert model.metadata["gatesPassed"] is True


def test_a_model_that_fails_its_gates_fails_the_pipeline(local_runner: Path, tmp_path: Path) -> None:
    spec = {**SPEC, "gates": [{"metric": "accuracy", "min": 1.01}]}
    with pytest.raises(RuntimeError, match="gates-op"):
        PIPELINE.gyre_training_pipeline(
            store=f"file://{tmp_path}/store", run="kubeflow/iris-gated", training_spec=json.dumps(spec)
        )


def test_a_changed_object_at_the_same_uri_gets_a_new_fingerprint(local_runner: Path, tmp_path: Path) -> None:
    data = tmp_path / "table.csv"
    data.write_text("x,target\n1,0\n2,1\n")
    before = PIPELINE.fingerprint_op(source=f"file://{data}").output
    assert PIPELINE.fingerprint_op(source=f"file://{data}").output == before
    data.write_text("x,target\n1,0\n3,1\n")
    assert PIPELINE.fingerprint_op(source=f"file://{data}").output != before
