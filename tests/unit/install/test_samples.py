"""Every sample in manifests/samples/ is a valid object of its kind, so `kubectl apply -k` of them is admitted."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from gyre.api.dataset import DatasetSpec
from gyre.api.driftmonitor import DriftMonitorSpec
from gyre.api.modeldeployment import ModelDeploymentSpec
from gyre.api.trainingrun import TrainingRunSpec

SAMPLES = Path(__file__).resolve().parents[3] / "manifests/samples"
SPECS: dict[str, type[BaseModel]] = {
    "Dataset": DatasetSpec,
    "TrainingRun": TrainingRunSpec,
    "ModelDeployment": ModelDeploymentSpec,
    "DriftMonitor": DriftMonitorSpec,
}


@pytest.mark.parametrize(
    "path", sorted(p.name for p in SAMPLES.glob("*.yaml") if p.name != "kustomization.yaml")
)
def test_sample_is_valid(path: str) -> None:
    docs = [d for d in yaml.safe_load_all((SAMPLES / path).read_text()) if d["apiVersion"] != "v1"]
    assert docs, "a sample holds a Gyre object (besides any Secret it needs)"
    for doc in docs:
        assert doc["apiVersion"] == "gyre.dev/v1alpha1"
        SPECS[doc["kind"]].model_validate(doc["spec"])


def test_kustomization_lists_existing_files() -> None:
    kustomization = yaml.safe_load((SAMPLES / "kustomization.yaml").read_text())
    for resource in kustomization["resources"]:
        assert (SAMPLES / resource).exists(), resource
