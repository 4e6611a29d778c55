"""The model manifest: what the trainer writes beside a model and what the server trusts before loading it."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from gyre.api.dataset import ColumnKind
from gyre.api.trainingrun import Task

__all__ = [
    "MANIFEST_FILE",
    "ArtifactRef",
    "DatasetRef",
    "FeatureSpec",
    "Lineage",
    "ModelManifest",
    "NativeModelRef",
    "OnnxInfo",
    "TargetSpec",
]

MANIFEST_FILE = "manifest.json"


class _Model(BaseModel):
    # camelCase on disk, snake_case in Python (as in gyre.api).
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class FeatureSpec(_Model):
    """One input feature of the model."""

    name: str
    kind: ColumnKind
    dtype: Literal["number", "string"] = "number"
    """How values are fed to the model (gyre.training.features.coerce_features): numbers become float64 (missing:
    NaN); strings become str (missing: the empty string)."""
    categories: list[str | int | float | bool] | None = None
    """Known categories seen in training (categorical and binary columns)."""


class TargetSpec(_Model):
    """The predicted column."""

    name: str
    classes: list[str | int | float | bool] | None = None
    """Class labels in the order of predict_proba columns; None for regression."""


class DatasetRef(_Model):
    """The dataset version a model was trained on."""

    uri: str
    fingerprint: str
    version: int | None = None
    name: str | None = None


class ArtifactRef(_Model):
    """The skops file and its sha256."""

    path: str = "model.skops"
    sha256: str
    allowed_types: list[str] = Field(default_factory=list)
    """Types beyond Gyre's allowlist that `gyre model import --allow-type` explicitly allowed in this file. The
    loader honours them only for a pinned model (the pin covers this manifest), never for an unpinned load."""


class NativeModelRef(_Model):
    """A gradient-boosted model's booster, in its library's own format (never pickle). The skops file then holds
    only the preprocessing before it; the loader rebuilds the Pipeline from both (gyre.training.boosting)."""

    path: str
    sha256: str
    format: Literal["xgboost-ubj", "lightgbm-text"]
    """xgboost-ubj: XGBoost's UBJSON model; lightgbm-text: LightGBM's text model."""


class OnnxInfo(_Model):
    """The optional ONNX twin of the model, kept only when proven equivalent on held-out rows; or the model itself
    when it was imported as an ONNX graph."""

    status: Literal["verified", "unavailable", "imported"]
    """verified: an ONNX twin equivalent to the scikit-learn model; unavailable: none (served with scikit-learn);
    imported: the model is this ONNX graph (`gyre model import --from-onnx`), with no scikit-learn form."""
    path: str | None = None
    sha256: str | None = None
    reason: str = ""
    max_abs_proba_diff: float | None = None
    """Largest |onnx - sklearn| over the verification rows: probabilities (classification) or predictions."""
    inputs: dict[str, str] | None = None
    """Feature name -> ONNX input name; each input is an [N, 1] tensor, float32 for number features and string
    for string features."""
    outputs: list[str] | None = None
    """ONNX output names: [label, probabilities] for classifiers, [variable] for regressors."""
    verified_rows: int | None = None
    """How many rows the equivalence check ran on."""
    verified_on: str | None = None
    """Which rows: `held-out` (training), `sample:<file>` (rows an import was given) or `generated` (rows an
    import derived from the model's tree splits and learnt feature ranges). None: held-out (older manifests)."""


class Lineage(_Model):
    """Where a model came from."""

    training_run: str | None = None
    """namespace/name of the TrainingRun that produced the model."""
    trial: int | None = None
    trigger: str = "manual"
    """What caused the run: manual, search, or drift:<namespace>/<monitor>#<check>."""


class ModelManifest(_Model):
    """`manifest.json`: everything known about a model directory.

    The sha256 of manifest.json's exact bytes is the model's digest (TrainingRun status.modelSha256, the server's
    --expect-sha256). The manifest records the sha256 of every file the server reads (artifact, native, onnx), so
    that one digest pins them all.
    """

    format_version: Literal[1] = 1
    name: str
    task: Task
    estimator: str
    params: dict[str, Any] = Field(default_factory=dict)
    features: list[FeatureSpec]
    transforms: list[dict[str, Any]] | None = None
    """spec.features.transforms the model was trained with (camelCase, as in the TrainingRun); the fitted steps are
    inside the model file, so serving applies them exactly as training did."""
    target: TargetSpec
    metrics: dict[str, float] = Field(default_factory=dict)
    test_rows: int | None = None
    """Rows of the held-out split `metrics` were measured on (performance checks weigh the baseline's own
    uncertainty with it); None for imported models and older manifests."""
    dataset: DatasetRef | None = None
    """The data the model was trained on; None for imported models."""
    artifact: ArtifactRef | None
    """The skops file; None for a model imported as an ONNX graph (onnx.status `imported`)."""
    native: NativeModelRef | None = None
    """XGBoost and LightGBM kinds: the booster's own model file, pinned like the others."""
    onnx: OnnxInfo
    seed: int
    image: str | None = None
    libraries: dict[str, str] = Field(default_factory=dict)
    created_at: datetime
    lineage: Lineage = Field(default_factory=Lineage)

    def to_json(self) -> str:
        """The manifest as written to manifest.json (camelCase keys); `native` and `testRows` only when set, so
        the manifests of other models keep their exact bytes."""
        exclude = {name for name in ("native", "test_rows") if getattr(self, name) is None}
        return self.model_dump_json(by_alias=True, indent=2, exclude=exclude or None)

    def to_bytes(self) -> bytes:
        """The exact bytes of manifest.json: the input of the model's digest."""
        return self.to_json().encode()

    def sha256(self) -> str:
        """The model's digest: hex sha256 of `to_bytes()`, i.e. of manifest.json as written."""
        return hashlib.sha256(self.to_bytes()).hexdigest()
