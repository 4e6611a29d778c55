"""The model manifest: what the trainer writes beside a model and what the server trusts before loading it."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from gyre.api.dataset import ColumnKind
from gyre.api.trainingrun import FeatureImportance, Task

__all__ = [
    "MANIFEST_FILE",
    "ArtifactRef",
    "ClassMetrics",
    "ColumnSummary",
    "DataSummary",
    "DatasetRef",
    "Evaluation",
    "FeatureSpec",
    "Importances",
    "Lineage",
    "MetricInterval",
    "ModelManifest",
    "NativeModelRef",
    "OnnxInfo",
    "SliceEntry",
    "SliceSummary",
    "TargetSpec",
]

MANIFEST_FILE = "manifest.json"
_OMITTED_WHEN_NONE = (
    "native",
    "test_rows",
    "importances",
    "reference_mean",
    "evaluation",
    "data_summary",
    "slices",
)


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


class SliceEntry(_Model):
    """One slice of the test split: the rows where `column` has `value` (gyre.training.slices)."""

    column: str
    value: str
    count: int
    metrics: dict[str, float] = Field(default_factory=dict)


class SliceSummary(_Model):
    """TrainingRun spec.slices measured: every slice, and per metric the widest gap between the large enough slices
    of any one column. Its shape is a contract (the model card renders it): columns, metric, slices, gaps."""

    columns: list[str]
    metric: str
    """The first slice metric: the one that ranks slices."""
    slices: list[SliceEntry]
    gaps: dict[str, float] = Field(default_factory=dict)


class MetricInterval(_Model):
    """A confidence interval of one metric."""

    low: float
    high: float


class ClassMetrics(_Model):
    """Precision, recall and F1 of one class on the test split."""

    label: str
    precision: float
    recall: float
    f1: float
    support: int
    """Test rows whose true class is this one."""


class Evaluation(_Model):
    """How the model did on its held-out test split beyond the point metrics (gyre.governance.evaluation)."""

    rows_train: int
    rows_test: int
    interval_method: Literal["bootstrap-percentile"] = "bootstrap-percentile"
    """Each metric recomputed on `resamples` resamples (with replacement) of the test rows' predictions; the
    interval spans the middle `confidence_level` of the resampled values."""
    confidence_level: float = 0.95
    resamples: int
    seed: int
    """Seed of the resampling, so the intervals can be recomputed exactly."""
    intervals: dict[str, MetricInterval] = Field(default_factory=dict)
    """Metric name -> interval; a metric no resample could compute (e.g. roc_auc when a class is rare) has none."""
    classes: list[str] | None = None
    """Class labels as text, in the order of `per_class` and of the confusion matrix's rows and columns."""
    per_class: list[ClassMetrics] | None = None
    confusion_matrix: list[list[int]] | None = None
    """Rows: true class; columns: predicted class."""


class ColumnSummary(_Model):
    """One column of the training data, summarised."""

    name: str
    kind: ColumnKind
    missing_rate: float
    distinct: int
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None
    top: list[str] | None = None
    """Most frequent values (categorical and binary columns), most frequent first."""


class DataSummary(_Model):
    """A summary of the dataset version the model was trained on: its features and target, before the split."""

    rows: int
    columns: list[ColumnSummary]


class Importances(_Model):
    """Permutation importances of the raw input columns on the test split (gyre.training.importance)."""

    method: Literal["permutation"] = "permutation"
    metric: str
    """The metric each shuffle is scored with: the run's primary metric when it is computable on the rows."""
    repeats: int
    """Shuffles per column."""
    seed: int
    """Seed of the row sample and of the shuffles: the same model, rows and seed give the same importances."""
    rows: int
    """Test rows used (a seeded sample when the test split has more)."""
    features: list[FeatureImportance]
    """Every input column, most important first: mean and standard deviation of the metric's drop."""


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
    importances: Importances | None = None
    """Permutation importances on the test split; None for imported models."""
    reference_mean: list[float] | None = None
    """Linear models: the mean of the training rows after preprocessing, one value per column the estimator sees.
    The reference point of their exact per-prediction attributions (gyre.serving.explain)."""
    slices: SliceSummary | None = None
    """spec.slices: metrics per slice of the test split; absent when the run names no slice columns."""
    evaluation: Evaluation | None = None
    """Confidence intervals, per-class metrics and the confusion matrix on the test split (trained models)."""
    data_summary: DataSummary | None = None
    """The training data's columns, summarised for the model card (trained models)."""

    def to_json(self) -> str:
        """The manifest as written to manifest.json (camelCase keys); optional sections only when present, so the
        manifests of other models keep their exact bytes."""
        absent = {name for name in _OMITTED_WHEN_NONE if getattr(self, name) is None}
        return self.model_dump_json(by_alias=True, indent=2, exclude=absent or None)

    def to_bytes(self) -> bytes:
        """The exact bytes of manifest.json: the input of the model's digest."""
        return self.to_json().encode()

    def sha256(self) -> str:
        """The model's digest: hex sha256 of `to_bytes()`, i.e. of manifest.json as written."""
        return hashlib.sha256(self.to_bytes()).hexdigest()
