"""TrainingRun: train one scikit-learn model (or search over many) on a Dataset inside a Kubernetes Job."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import ConfigDict, Field, model_validator

from gyre.api.common import (
    METRIC_PATTERN,
    ApiModel,
    Condition,
    Fingerprint,
    ResourceRequirements,
    StatusModel,
    bounds_rules,
)
from gyre.api.features import FeaturesSpec
from gyre.api.slices import SlicesSpec, SlicesStatus
from gyre.api.tracking import TrackingSpec, TrackingStatus

__all__ = [
    "BOOSTED_KINDS",
    "CLASSIFIERS",
    "DEFAULT_METRICS",
    "ESTIMATOR_ALLOWLIST",
    "LOWER_IS_BETTER",
    "REGRESSORS",
    "CardSpec",
    "DatasetReference",
    "EarlyStopping",
    "EstimatorKind",
    "EstimatorSpec",
    "FeatureImportance",
    "Gate",
    "ImportanceSummary",
    "Lineage",
    "ModelCardStatus",
    "OnnxStatus",
    "ParamSpace",
    "Preprocessing",
    "SearchSpec",
    "SplitSpec",
    "Task",
    "TrainingPhase",
    "TrainingRunSpec",
    "TrainingRunStatus",
    "TrialStatus",
    "default_goal",
    "primary_metric",
    "task_of",
]

EstimatorKind = Literal[
    "LogisticRegression",
    "RandomForestClassifier",
    "GradientBoostingClassifier",
    "HistGradientBoostingClassifier",
    "ExtraTreesClassifier",
    "DecisionTreeClassifier",
    "KNeighborsClassifier",
    "SVC",
    "GaussianNB",
    "LinearRegression",
    "Ridge",
    "Lasso",
    "ElasticNet",
    "RandomForestRegressor",
    "GradientBoostingRegressor",
    "HistGradientBoostingRegressor",
    "ExtraTreesRegressor",
    "DecisionTreeRegressor",
    "KNeighborsRegressor",
    "SVR",
    "XGBClassifier",
    "XGBRegressor",
    "LGBMClassifier",
    "LGBMRegressor",
]
Task = Literal["classification", "regression"]
TrainingPhase = Literal["Pending", "Running", "Succeeded", "Failed"]

# The allowlist, the one place an estimator is added: kind -> (scikit-learn module that defines the class, task).
# Fixed strings: user input only ever selects a key, never an import path (gyre.training.estimators imports them).
ESTIMATOR_ALLOWLIST: dict[EstimatorKind, tuple[str, Task]] = {
    "LogisticRegression": ("sklearn.linear_model", "classification"),
    "RandomForestClassifier": ("sklearn.ensemble", "classification"),
    "GradientBoostingClassifier": ("sklearn.ensemble", "classification"),
    "HistGradientBoostingClassifier": ("sklearn.ensemble", "classification"),
    "ExtraTreesClassifier": ("sklearn.ensemble", "classification"),
    "DecisionTreeClassifier": ("sklearn.tree", "classification"),
    "KNeighborsClassifier": ("sklearn.neighbors", "classification"),
    "SVC": ("sklearn.svm", "classification"),
    "GaussianNB": ("sklearn.naive_bayes", "classification"),
    "LinearRegression": ("sklearn.linear_model", "regression"),
    "Ridge": ("sklearn.linear_model", "regression"),
    "Lasso": ("sklearn.linear_model", "regression"),
    "ElasticNet": ("sklearn.linear_model", "regression"),
    "RandomForestRegressor": ("sklearn.ensemble", "regression"),
    "GradientBoostingRegressor": ("sklearn.ensemble", "regression"),
    "HistGradientBoostingRegressor": ("sklearn.ensemble", "regression"),
    "ExtraTreesRegressor": ("sklearn.ensemble", "regression"),
    "DecisionTreeRegressor": ("sklearn.tree", "regression"),
    "KNeighborsRegressor": ("sklearn.neighbors", "regression"),
    "SVR": ("sklearn.svm", "regression"),
    # Gradient-boosting libraries, through Gyre's thin subclasses of their scikit-learn classes (any class labels,
    # rebuilt from the library's own model file): gyre.training.boosted.
    "XGBClassifier": ("gyre.training.boosted", "classification"),
    "XGBRegressor": ("gyre.training.boosted", "regression"),
    "LGBMClassifier": ("gyre.training.boosted", "classification"),
    "LGBMRegressor": ("gyre.training.boosted", "regression"),
}
# Kinds saved in their library's own format (XGBoost UBJSON, LightGBM text), never in the skops file, and the only
# kinds that support early stopping.
BOOSTED_KINDS: tuple[EstimatorKind, ...] = (
    "XGBClassifier",
    "XGBRegressor",
    "LGBMClassifier",
    "LGBMRegressor",
)
if set(ESTIMATOR_ALLOWLIST) != set(get_args(EstimatorKind)):  # pragma: no cover - an incomplete edit
    raise AssertionError("ESTIMATOR_ALLOWLIST and EstimatorKind must name the same estimators")

CLASSIFIERS: frozenset[str] = frozenset(
    kind for kind, (_module, task) in ESTIMATOR_ALLOWLIST.items() if task == "classification"
)
REGRESSORS: frozenset[str] = frozenset(ESTIMATOR_ALLOWLIST) - CLASSIFIERS

DEFAULT_METRICS: dict[Task, tuple[str, ...]] = {
    "classification": ("accuracy", "f1_macro"),
    "regression": ("r2", "rmse", "mae"),
}
# Error-like metrics: smaller is better (decides the default search goal and how gates read).
LOWER_IS_BETTER: frozenset[str] = frozenset({"rmse", "mse", "mae", "mape", "log_loss", "median_ae"})


def task_of(kind: str) -> Task:
    """The learning task an estimator kind solves."""
    return "classification" if kind in CLASSIFIERS else "regression"


def default_goal(metric: str) -> Literal["maximize", "minimize"]:
    """Whether a metric is better high (accuracy, r2) or low (rmse, log_loss)."""
    return "minimize" if metric in LOWER_IS_BETTER else "maximize"


def primary_metric(spec: TrainingRunSpec) -> tuple[str, str]:
    """(metric, goal) that ranks models: search.metric/goal, else the first metric, else the task's default."""
    task = task_of(spec.estimator.kind)
    metric = (spec.search.metric if spec.search else None) or (spec.metrics or DEFAULT_METRICS[task])[0]
    goal = (spec.search.goal if spec.search else None) or default_goal(metric)
    return metric, goal


class DatasetReference(ApiModel):
    """The Dataset to train on, optionally pinned to one exact version."""

    name: str = Field(min_length=1, max_length=253)
    """Name of a Dataset in the same namespace."""
    fingerprint: Fingerprint | None = None
    """Train only on this exact content (`sha256:<64 hex>`); the run fails with a clear condition when the
    Dataset's current version differs. Unset means the Dataset's current version when the run starts."""


class EarlyStopping(ApiModel):
    """Stop adding boosting rounds once a validation split stops improving (boosted kinds only)."""

    rounds: int = Field(ge=1, le=10000)
    """Stop after this many rounds without improvement of the library's default validation metric."""
    validation_fraction: float = Field(default=0.1, gt=0, lt=1)
    """Fraction of the training rows held out to watch (carved from the train split, never the test split)."""


class EstimatorSpec(ApiModel):
    """The estimator to fit: a scikit-learn class, or XGBoost or LightGBM through their scikit-learn API."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.earlyStopping) || self.kind in "
                    + "["
                    + ", ".join(f"'{kind}'" for kind in BOOSTED_KINDS)
                    + "]",
                    "message": "earlyStopping needs a gradient-boosting library kind: "
                    + ", ".join(BOOSTED_KINDS),
                },
            ]
        }
    )

    kind: EstimatorKind
    """Estimator class from Gyre's allowlist; the task (classification or regression) follows from it."""
    params: dict[str, Any] | None = Field(default=None, max_length=64)
    """Constructor arguments, e.g. `{n_estimators: 200, max_depth: 8}`; validated by the trainer against the
    estimator's signature."""
    early_stopping: EarlyStopping | None = None
    """Early stopping on a validation split (XGBoost and LightGBM kinds); the best iteration is recorded in the
    metrics as `best_iteration`."""

    @model_validator(mode="after")
    def _early_stopping_needs_boosting(self) -> EstimatorSpec:
        if self.early_stopping is not None and self.kind not in BOOSTED_KINDS:
            raise ValueError(f"earlyStopping needs one of {', '.join(BOOSTED_KINDS)}, not {self.kind}")
        return self


class Preprocessing(ApiModel):
    """Feature preprocessing, chosen per column kind from the Dataset's schema."""

    numeric: Literal["standard", "robust", "none"] = "standard"
    """Scaling of numeric columns."""
    categorical: Literal["onehot", "ordinal"] = "onehot"
    """Encoding of categorical columns; unseen categories at prediction time are ignored (onehot) or mapped to
    -1 (ordinal)."""
    impute: bool = True
    """Fill missing numbers with the column's training median instead of failing. XGBoost and LightGBM are left
    their missing numbers: they learn at each split where missing values go."""
    max_categories: int = Field(default=50, ge=2, le=10000)
    """onehot: at most this many columns per categorical column; the rarest categories (and unseen ones at
    serving) share one "infrequent" column, so a column with a million distinct values stays small."""
    min_frequency: int = Field(default=1, ge=1)
    """onehot: categories seen in fewer training rows than this are grouped as infrequent."""


class SplitSpec(ApiModel):
    """The train/test split the metrics are measured on."""

    test_size: float = Field(default=0.2, gt=0, lt=1)
    """Fraction of rows held out for evaluation, between 0 and 1 exclusive."""
    stratify: bool | None = None
    """Keep class proportions in both parts; defaults to true for classification, false for regression."""
    seed: int = Field(default=42, ge=0, le=2**31 - 1)
    """Random seed of the split and of the estimator, so reruns are reproducible."""


class Gate(ApiModel):
    """A bound a metric must meet for the model to count as validated (and be promotable)."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": bounds_rules("gate")})

    metric: str = Field(pattern=METRIC_PATTERN, max_length=64)
    """Metric name, as reported in status.metrics (e.g. accuracy, f1_macro, r2, rmse)."""
    min: float | None = None
    """The metric must be at least this."""
    max: float | None = None
    """The metric must be at most this."""


CardText = Annotated[str, Field(min_length=1, max_length=4000)]
CardOwner = Annotated[str, Field(min_length=1, max_length=256)]


class CardSpec(ApiModel):
    """What people state about the model, printed at the top of its model card."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.intendedUse) || has(self.limitations) || has(self.owners)",
                    "message": "spec.card needs at least one of intendedUse, limitations or owners",
                },
            ]
        }
    )

    intended_use: CardText | None = None
    """What the model is for and who may rely on it (plain text or Markdown; shown as text, never as HTML)."""
    limitations: CardText | None = None
    """Known limits: populations, ranges or uses the model was not trained or validated for."""
    owners: list[CardOwner] | None = Field(default=None, min_length=1, max_length=16)
    """Who answers for the model: people, teams or addresses."""

    @model_validator(mode="after")
    def _something_stated(self) -> CardSpec:
        if self.intended_use is None and self.limitations is None and self.owners is None:
            raise ValueError("spec.card needs at least one of intendedUse, limitations or owners")
        return self


class ParamSpace(ApiModel):
    """The values one hyperparameter may take: a list, or a numeric range (random search only)."""

    # CEL cannot see `values` (its items are untyped JSON), so "values or a range, not both" is checked by the
    # model validator below (the operator reports it as InvalidSpec); the range rules are enforced at admission.
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.low) == has(self.high)",
                    "message": "a range needs both low and high (or give explicit values instead)",
                },
                {
                    "rule": "!has(self.low) || !has(self.high) || self.low < self.high",
                    "message": "low must be less than high",
                },
                {
                    "rule": "!self.log || (has(self.low) && self.low > 0.0)",
                    "message": "log scale needs a range with low > 0",
                },
            ]
        }
    )

    values: list[Any] | None = Field(default=None, min_length=1, max_length=256)
    """Explicit candidate values, e.g. `[50, 100, 200]` or `[gini, entropy]`."""
    low: float | None = None
    """Lower bound of a range (inclusive)."""
    high: float | None = None
    """Upper bound of a range (inclusive for int, exclusive for float)."""
    log: bool = False
    """Sample the range on a log scale (learning rates, regularisation strengths)."""
    type: Literal["int", "float"] = "float"
    """Whether a range yields integers or floats."""

    @model_validator(mode="after")
    def _values_or_range(self) -> ParamSpace:
        has_range = self.low is not None or self.high is not None
        if (self.values is not None) == has_range:
            raise ValueError("give either values, or both low and high")
        return self


class SearchSpec(ApiModel):
    """Hyperparameter search: every trial is one index of an Indexed Job, run in parallel."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.strategy != 'random' || has(self.trials)",
                    "message": "random search needs trials (the number of sampled configurations)",
                },
                {
                    "rule": "self.strategy != 'grid' || !has(self.trials)",
                    "message": "grid search runs every combination; remove trials or use strategy random",
                },
                {
                    "rule": "self.strategy != 'grid' || self.space.all(p, !has(self.space[p].low))",
                    "message": "grid search needs explicit values for every parameter; low/high ranges need "
                    "strategy random",
                },
            ]
        }
    )

    strategy: Literal["grid", "random"]
    """grid tries every combination of values; random samples `trials` configurations."""
    space: dict[str, ParamSpace] = Field(min_length=1, max_length=16)
    """Estimator parameter name -> candidate values or range; merged over estimator.params per trial."""
    trials: int | None = Field(default=None, ge=1, le=500)
    """Number of random configurations (random search only)."""
    parallelism: int = Field(default=2, ge=1, le=64)
    """How many trials run at once."""
    metric: str | None = Field(default=None, pattern=METRIC_PATTERN, max_length=64)
    """The metric that picks the best trial; defaults to the first of spec.metrics."""
    goal: Literal["maximize", "minimize"] | None = None
    """Whether the best trial has the highest or lowest metric; defaults from the metric (rmse: minimize)."""

    def trial_count(self) -> int:
        """How many trials the search runs: the grid's size, or `trials` for random search."""
        if self.strategy == "random":
            return self.trials or 1
        count = 1
        for param in self.space.values():
            count *= len(param.values or [None])
        return count


class TrainingRunSpec(ApiModel):
    """Desired state of a TrainingRun. A run is a record of what was trained, so the spec is immutable."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self == oldSelf",
                    "message": "a TrainingRun's spec is immutable; create a new TrainingRun instead",
                },
                {
                    "rule": "!has(self.slices) || !has(self.slices.excludeFromFeatures) || !has(self.features) || "
                    "((!has(self.features.columns) || self.slices.excludeFromFeatures.all(c, "
                    "!(c in self.features.columns))) && (!has(self.features.transforms) || "
                    "self.features.transforms.all(t, self.slices.excludeFromFeatures.all(c, !(c in t.columns)))))",
                    "message": "a column in slices.excludeFromFeatures cannot also be named in spec.features",
                },
                {
                    "rule": "!has(self.slices) || !has(self.target) || !(self.target in self.slices.columns)",
                    "message": "the target cannot be a slice column; slice by an input or another column",
                },
            ]
        }
    )

    dataset_ref: DatasetReference
    """The Dataset to train on."""
    target: str | None = Field(default=None, max_length=256)
    """Column to predict; defaults to the Dataset's target."""
    features: FeaturesSpec | None = None
    """Columns to train on (default: every column except the target) and declarative transforms on them (impute,
    clip, log, power, standardize, bucketize, cyclic, dateParts, oneHot, targetEncode, hash, tfidf), saved inside
    the model so serving applies them exactly as training did."""
    estimator: EstimatorSpec
    """The estimator and its parameters."""
    preprocessing: Preprocessing | None = None
    """Scaling, encoding and imputation; defaults suit most tabular data."""
    split: SplitSpec | None = None
    """Train/test split; defaults to 20% held out, seed 42."""
    metrics: list[str] | None = Field(default=None, max_length=16)
    """Metrics to compute on the test split; defaults to accuracy and f1_macro (classification) or r2, rmse and
    mae (regression)."""
    gates: list[Gate] | None = Field(default=None, max_length=16)
    """Bounds the metrics must meet for the model to be validated; a model that fails a gate is never promoted."""
    search: SearchSpec | None = None
    """Hyperparameter search; unset trains once with estimator.params."""
    slices: SlicesSpec | None = None
    """Columns (a region, a sensitive attribute) whose values split the test rows into slices, each measured on its
    own, with counts, and optional gates on the gap between slices (docs/fairness.md)."""
    tracking: TrackingSpec | None = None
    """Log the run (and each search trial, as a child run) to an MLflow tracking server; default: the operator's
    server when it has one (docs/tracking.md)."""
    resources: ResourceRequirements | None = None
    """Resources of each training container."""
    image: str | None = Field(default=None, max_length=512)
    """Image of the training Job; defaults to the operator's GYRE_IMAGE."""
    active_deadline_seconds: int = Field(default=3600, ge=10, le=7 * 86400)
    """Fail the run when its Job runs longer than this."""
    backoff_limit: int = Field(default=0, ge=0, le=10)
    """Pod retries before the Job fails; training is deterministic, so retries only help with evictions."""
    card: CardSpec | None = None
    """Intended use, limitations and owners, stated in the model card written beside the model
    (docs/model-cards.md)."""

    @model_validator(mode="after")
    def _slices_fit_features(self) -> TrainingRunSpec:
        if self.slices is None:
            return self
        named = set(self.features.named_columns()) if self.features else set()
        both = [c for c in self.slices.exclude_from_features or [] if c in named]
        if both:
            raise ValueError(
                f"slices.excludeFromFeatures names {', '.join(both)}, which spec.features uses as input"
            )
        if self.target is not None and self.target in self.slices.columns:
            raise ValueError(f"the target {self.target!r} cannot be a slice column")
        return self


class OnnxStatus(StatusModel):
    """Whether the model also exists as a verified ONNX graph."""

    status: Literal["verified", "unavailable"]
    """verified: the server can use onnxruntime; unavailable: it uses scikit-learn."""
    reason: str | None = None
    """Why conversion was not possible or not proven equivalent."""


class TrialStatus(StatusModel):
    """One trial of a hyperparameter search."""

    index: int
    """Trial index (the Job completion index)."""
    phase: Literal["Succeeded", "Failed"]
    """Whether the trial produced a model."""
    params: dict[str, Any] | None = None
    """The estimator parameters the trial used."""
    metrics: dict[str, float] | None = None
    """The trial's metrics on the test split."""
    message: str | None = None
    """Why the trial failed."""


class FeatureImportance(StatusModel):
    """How much the primary metric worsens when one input column's values are shuffled on the test split."""

    name: str
    """The input column (as the user names it, before any spec.features transform)."""
    mean: float
    """Mean drop of the metric over the repeats (an error metric's rise): larger matters more, ~0 not at all."""
    std: float
    """Standard deviation of the drop over the repeats."""


class ImportanceSummary(StatusModel):
    """The model's most important input columns by permutation importance (all of them: manifest.json
    `importances`)."""

    metric: str
    """The metric the importances are measured with (the primary metric when it was computable)."""
    repeats: int
    """Shuffles per column."""
    rows: int
    """Test rows the shuffles ran on (a seeded sample when the test split is larger)."""
    top: list[FeatureImportance]
    """The most important columns, most important first."""


class Lineage(StatusModel):
    """Where the model came from."""

    dataset: str | None = None
    """Name of the Dataset."""
    dataset_version: int | None = None
    """Version of the Dataset trained on."""
    dataset_fingerprint: Fingerprint | None = None
    """Fingerprint of the content trained on."""
    trigger: str | None = None
    """What started the run: manual, or drift:<namespace>/<monitor>#<check> for a DriftMonitor's retrain."""
    cause: Literal["manual", "input_drift", "performance"] | None = None
    """Why: manual, or what the DriftMonitor's retrain answered (input drift, or degraded performance)."""
    monitor: str | None = None
    """The DriftMonitor (same namespace) whose check started the run."""
    check: int | None = None
    """That monitor's check number."""
    image: str | None = None
    """The image that trained the model."""


class ModelCardStatus(StatusModel):
    """Where the model card of the (best) model is: beside the model in the artifact store."""

    markdown_uri: str | None = None
    """The card as Markdown (`card.md` in the model directory)."""
    html_uri: str | None = None
    """The card as one self-contained HTML page (`card.html`); `gyre card NAMESPACE/RUN --html` fetches it."""


class TrainingRunStatus(StatusModel):
    """Observed state of a TrainingRun."""

    phase: TrainingPhase | None = None
    """Pending, Running, Succeeded or Failed."""
    task: Task | None = None
    """classification or regression."""
    job_name: str | None = None
    """The training Job."""
    start_time: datetime | None = None
    """When the Job was created."""
    completion_time: datetime | None = None
    """When the run finished."""
    primary_metric: str | None = None
    """The metric that ranks models (search.metric or the first metric)."""
    score: float | None = None
    """Value of the primary metric for the (best) model."""
    metrics: dict[str, float] | None = None
    """Metrics of the (best) model on the test split."""
    params: dict[str, Any] | None = None
    """Estimator parameters of the (best) model."""
    model_uri: str | None = None
    """Model directory in the artifact store (model.skops, manifest.json, optional model.onnx)."""
    model_sha256: str | None = None
    """The model's digest: sha256 of its manifest.json, which records the sha256 of model.skops and model.onnx, so
    this one digest pins every file served. The server refuses to start on any mismatch."""
    onnx: OnnxStatus | None = None
    """ONNX conversion outcome."""
    dataset_fingerprint: Fingerprint | None = None
    """Fingerprint of the Dataset version trained on."""
    dataset_version: int | None = None
    """Version of the Dataset trained on."""
    dataset_uri: str | None = None
    """The content-addressed data the Job read."""
    trials: list[TrialStatus] | None = None
    """Search trials, by index."""
    best_trial: int | None = None
    """Index of the winning trial."""
    importances: ImportanceSummary | None = None
    """The (best) model's top input columns by permutation importance on the test split."""
    lineage: Lineage | None = None
    """Dataset, trigger and image that produced the model."""
    slices: SlicesStatus | None = None
    """spec.slices: the worst slices and the gap of each metric across each column (all slices: manifest.json)."""
    tracking: TrackingStatus | None = None
    """The MLflow experiment and run this run was logged as (condition Tracked)."""
    card: ModelCardStatus | None = None
    """The model card (docs/model-cards.md): intended use, data, training, metrics with confidence intervals,
    gates and lineage."""
    conditions: list[Condition] | None = None
    """DatasetReady, Running, Succeeded, Failed and Validated (gates passed or which gate failed)."""
    observed_generation: int | None = None
    """The metadata.generation this status describes."""
