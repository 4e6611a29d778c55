"""The Kubeflow pipeline's steps run on the project image as KFP launches them: the compiled command and arguments
(the lightweight component's source, KFP's executor), in a restricted pod, with nothing installed at run time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml
from e2ekube import Kube

from gyre.data.fingerprint import fingerprint_frame
from gyre.data.sources import load_source

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def test_the_fingerprint_step_runs_on_the_image_as_kfp_launches_it(
    kube_api: ApiClient, k8s_namespace: str, gyre_image: str
) -> None:
    compiled = next(yaml.safe_load_all((ROOT / "pipelines/gyre_training_pipeline.yaml").read_text()))
    container = compiled["deploymentSpec"]["executors"]["exec-fingerprint-op"]["container"]
    # What the KFP launcher passes as {{$}}; the executor's output goes to the termination message.
    executor_input = {
        "inputs": {"parameterValues": {"source": "builtin://iris"}},
        "outputs": {
            "parameters": {"Output": {"outputFile": "/tmp/fingerprint"}},
            "outputFile": "/dev/termination-log",
        },
    }
    args = [a.replace("{{$}}", json.dumps(executor_input)) for a in container["args"]]
    kube = Kube(kube_api, k8s_namespace, image=gyre_image)
    message = kube.run_pod("fingerprint", [*container["command"], *args], timeout=300)
    output = json.loads(message)["parameterValues"]["Output"]
    assert output == fingerprint_frame(load_source("builtin://iris"))
