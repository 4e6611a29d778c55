"""The model manifest: what the trainer writes beside a model and what the server trusts before loading it."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "MANIFEST_FILE",
    "ArtifactRef",
    "DatasetRef",
    "FeatureSpec",
    "Lineage",
    "ModelManifest",
    "OnnxInfo",
    "TargetSpec",
]

MANIFEST_FILE = "manifest.json"


class _Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")


class FeatureSpec(_Model):
    name: str
    kind: Literal["numeric", "categorical", "binary"]
    categories: list[str | int | float | bool] | None = None
    """Known categories seen in training (categorical and binary columns)."""


class TargetSpec(_Model):
    name: str
    classes: list[str | int | float | bool] | None = None
    """Class labels in the order of predict_proba columns; None for regression."""


class DatasetRef(_Model):
    uri: str
    fingerprint: str
    version: int | None = None
    name: str | None = None


class ArtifactRef(_Model):
    path: str = "model.skops"
    sha256: str


class OnnxInfo(_Model):
    status: Literal["verified", "unavailable"]
    path: str | None = None
    sha256: str | None = None
    reason: str = ""
    max_abs_proba_diff: float | None = Field(default=None, alias="maxAbsProbaDiff")


class Lineage(_Model):
    training_run: str | None = Field(default=None, alias="trainingRun")
    """namespace/name of the TrainingRun that produced the model."""
    trial: int | None = None
    trigger: str = "manual"
    """What caused the run: manual, search, or drift:<namespace>/<monitor>#<check>."""


class ModelManifest(_Model):
    format_version: Literal[1] = Field(default=1, alias="formatVersion")
    name: str
    task: Literal["classification", "regression"]
    estimator: str
    params: dict[str, Any] = Field(default_factory=dict)
    features: list[FeatureSpec]
    target: TargetSpec
    metrics: dict[str, float] = Field(default_factory=dict)
    dataset: DatasetRef
    artifact: ArtifactRef
    onnx: OnnxInfo
    seed: int
    image: str | None = None
    libraries: dict[str, str] = Field(default_factory=dict)
    created_at: datetime = Field(alias="createdAt")
    lineage: Lineage = Field(default_factory=Lineage)

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=2)
