"""The trainer: raw table in, fitted Pipeline plus held-out metrics out. Deterministic for a given seed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from gyre.api.dataset import ColumnKind
from gyre.api.features import FeatureTransform
from gyre.api.slices import SlicesSpec
from gyre.api.trainingrun import BOOSTED_KINDS, DEFAULT_METRICS, ESTIMATOR_ALLOWLIST, EarlyStopping, Task
from gyre.data.schema import infer_schema
from gyre.training.estimators import (
    LINEAR_ESTIMATORS,
    NATIVE_MISSING_ESTIMATORS,
    TREE_ESTIMATORS,
    EstimatorError,
    build_estimator,
    task_of,
)
from gyre.training.features import coerce_features, feature_dtype
from gyre.training.manifest import FeatureSpec, Importances, TargetSpec
from gyre.training.metrics import MetricError, compute_metrics, predict_test
from gyre.training.preprocess import (
    DEFAULT_MAX_CATEGORIES,
    FeatureCompileError,
    PreprocessOptions,
    build_pipeline,
    encoded_width,
    onnx_blockers,
)

if TYPE_CHECKING:
    import pandas as pd

    from gyre.training.slices import SliceEvaluation

__all__ = [
    "MAX_RECORDED_CATEGORIES",
    "SPARSE_ESTIMATORS",
    "TRAINER_ERRORS",
    "TrainOptions",
    "TrainingError",
    "TrainingResult",
    "check_dense_size",
    "memory_budget",
    "train_model",
]

# Estimators that fit on scipy sparse matrices: one-hot, hashing and TF-IDF outputs stay sparse for them. The others
# (HistGradientBoosting, GaussianNB, and estimators from outside scikit-learn, some of which read an absent sparse
# entry as missing rather than 0) get dense arrays.
SPARSE_ESTIMATORS: frozenset[str] = frozenset(
    kind for kind, (module, _task) in ESTIMATOR_ALLOWLIST.items() if module.startswith("sklearn.")
) - {"HistGradientBoostingClassifier", "HistGradientBoostingRegressor", "GaussianNB"}
MAX_RECORDED_CATEGORIES = 1000
"""A column with more distinct values has no category list in the manifest (it would grow with the data)."""


class TrainingError(Exception):
    """Training cannot proceed; `reason` is a CamelCase word for conditions and reports."""

    def __init__(self, message: str, reason: str = "TrainingFailed") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class TrainOptions:
    """What to train (mirrors the relevant parts of TrainingRunSpec)."""

    target: str
    estimator: str
    params: Mapping[str, Any] = field(default_factory=dict)
    features: Sequence[str] | None = None
    kinds: Mapping[str, ColumnKind] = field(default_factory=dict)
    """Column kinds from the Dataset's schema (overrides included); inferred when a column is absent."""
    numeric: Literal["standard", "robust", "none"] = "standard"
    categorical: Literal["onehot", "ordinal"] = "onehot"
    impute: bool = True
    max_categories: int = DEFAULT_MAX_CATEGORIES
    min_frequency: int = 1
    transforms: Sequence[FeatureTransform] = ()
    """spec.features.transforms, compiled into the pipeline (gyre.training.preprocess)."""
    test_size: float = 0.2
    stratify: bool | None = None
    seed: int = 42
    metrics: Sequence[str] | None = None
    early_stopping: EarlyStopping | None = None
    """Boosted kinds only: watch a validation part of the training rows (gyre.training.boosting.fit_boosted)."""
    slices: SlicesSpec | None = None
    """spec.slices: measure the model per slice of the test rows (gyre.training.slices); its excludeFromFeatures
    columns are left out of the default features."""
    primary_metric: str | None = None
    """The metric permutation importances are scored with (gyre.api.trainingrun.primary_metric); None: the first
    metric."""
    importances: bool = True
    """Compute permutation importances on the test split (gyre.training.importance)."""


@dataclass
class TrainingResult:
    """A fitted pipeline with everything the artifact writer needs."""

    pipeline: Any
    task: Task
    estimator: str
    params: dict[str, Any]
    metrics: dict[str, float]
    features: list[FeatureSpec]
    target: TargetSpec
    seed: int
    x_test: pd.DataFrame
    y_test: Any
    rows_train: int
    rows_test: int
    transforms: list[dict[str, Any]] = field(default_factory=list)
    """spec.features.transforms as given (camelCase), for the manifest."""
    onnx_blockers: list[str] = field(default_factory=list)
    """Why the pipeline cannot have an ONNX twin (steps without a converter); empty: try the conversion."""
    slices: SliceEvaluation | None = None
    """Metrics per slice of the test split, when spec.slices is set."""
    importances: Importances | None = None
    """Permutation importances of the input columns on the test split."""
    reference_mean: list[float] | None = None
    """Linear estimators: the mean training row after preprocessing (gyre.training.manifest.ModelManifest)."""
    test_predictions: tuple[Any, Any, list[Any] | None] | None = None
    """(predictions, probabilities, classes) on x_test (gyre.training.metrics.predict_test), made once and reused
    by the card's intervals and the ONNX check."""


def _python(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _feature_specs(
    frame: pd.DataFrame, names: Sequence[str], kinds: Mapping[str, ColumnKind]
) -> list[FeatureSpec]:
    inferred = {c.name: c.kind for c in infer_schema(frame[list(names)])}
    specs = []
    for name in names:
        kind = kinds.get(name, inferred[name])
        dtype = feature_dtype(kind, frame[name])
        categories: list[Any] | None = None
        if kind != "numeric":
            if dtype == "string":
                values = coerce_features(frame[[name]], [FeatureSpec(name=name, kind=kind, dtype="string")])[
                    name
                ]
                distinct = set(values.tolist())
                categories = sorted(distinct) if len(distinct) <= MAX_RECORDED_CATEGORIES else None
            else:
                unique = frame[name].dropna().unique()
                if len(unique) <= MAX_RECORDED_CATEGORIES:
                    categories = sorted(_python(v) for v in unique.tolist())
        specs.append(FeatureSpec(name=name, kind=kind, dtype=dtype, categories=categories))
    return specs


def memory_budget() -> int:
    """Bytes this process may use: the cgroup's memory limit (v2, then v1) when set, else the machine's RAM."""
    import os

    physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path, encoding="ascii") as fh:
                text = fh.read().strip()
        except OSError:
            continue
        if text.isdigit():
            return min(int(text), physical)
    return int(physical)


def check_dense_size(rows: int, width: int, estimator: str, budget: int) -> None:
    """TrainingError when a dense float64 matrix of rows x width would take more than half of `budget` bytes.

    Refusing before the fit turns what would be a MemoryError (or an OOM kill) into a message that says what to
    change.
    """
    need = rows * width * 8
    if need > budget // 2:
        gib = 1 << 30
        raise TrainingError(
            f"the encoded training data would take up to {need / gib:.1f} GiB ({rows} rows x {width} columns, "
            f"dense because {estimator} needs dense input), more than half of the {budget / gib:.1f} GiB this "
            "training may use: lower preprocessing.maxCategories or the oneHot maxCategories, hash nFeatures or "
            "tfidf maxFeatures of spec.features, or choose an estimator that accepts sparse input",
            reason="FeaturesTooLarge",
        )


def _target(frame: pd.DataFrame, target: str, task: str) -> Any:
    from pandas.api import types

    y = frame[target]
    if task == "regression":
        if not types.is_numeric_dtype(y.dtype) or types.is_bool_dtype(y.dtype):
            raise TrainingError(
                f"target {target!r} has dtype {y.dtype}; a regressor needs a numeric target",
                reason="InvalidTarget",
            )
        return y.to_numpy(dtype="float64")
    if types.is_float_dtype(y.dtype):
        values = y.to_numpy()
        if not (values == values.round()).all():
            raise TrainingError(
                f"target {target!r} holds non-integer floats; use a regressor or a label column",
                reason="InvalidTarget",
            )
        return values.astype("int64")
    if types.is_integer_dtype(y.dtype) or types.is_bool_dtype(y.dtype):
        return y.to_numpy()
    return y.astype(str).to_numpy(dtype=object)


def train_model(frame: pd.DataFrame, options: TrainOptions) -> TrainingResult:
    """Split (seeded, stratified for classification when possible), fit, and measure on the held-out part.

    Rows with a missing target are dropped. Raises TrainingError (or EstimatorError / MetricError, both with a
    reason) for bad targets, features, parameters or metric names.
    """
    from sklearn.model_selection import train_test_split

    if options.target not in frame.columns:
        raise TrainingError(f"target column {options.target!r} is not in the data", reason="TargetMissing")
    kept_out = set(options.slices.exclude_from_features or []) if options.slices else set()
    names = (
        list(options.features)
        if options.features
        else [c for c in frame.columns if c != options.target and c not in kept_out]
    )
    _check_slice_columns(frame, options, names)
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise TrainingError(
            f"feature column(s) not in the data: {', '.join(missing)}", reason="FeatureMissing"
        )
    transformed = [c for t in options.transforms for c in t.columns]
    absent = [c for c in transformed if c not in frame.columns]
    if absent:
        raise TrainingError(
            f"spec.features.transforms name column(s) not in the data: {', '.join(absent)}",
            reason="FeatureMissing",
        )
    names.extend(c for c in transformed if c not in names)
    if options.target in names:
        raise TrainingError(
            f"the target {options.target!r} cannot also be a feature", reason="InvalidFeatures"
        )
    if not names:
        raise TrainingError("no feature columns to train on", reason="InvalidFeatures")
    task = task_of(options.estimator)
    frame = frame[frame[options.target].notna()].reset_index(drop=True)
    if len(frame) < 4:
        raise TrainingError(f"only {len(frame)} rows with a target; need at least 4", reason="TooFewRows")
    try:
        features = _feature_specs(frame, names, options.kinds)
    except ValueError as exc:
        raise TrainingError(str(exc), reason=getattr(exc, "reason", "InvalidFeatures")) from exc
    x = coerce_features(frame, features)
    y = _target(frame, options.target, task)

    stratify = None
    want_stratify = options.stratify if options.stratify is not None else task == "classification"
    if want_stratify and task == "classification":
        import numpy as np

        _, counts = np.unique(y, return_counts=True)
        n_test = max(1, round(len(y) * options.test_size))
        if counts.min() >= 2 and n_test >= len(counts) and len(y) - n_test >= len(counts):
            stratify = y
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=options.test_size, random_state=options.seed, stratify=stratify
    )
    estimator = build_estimator(options.estimator, options.params, seed=options.seed)
    numeric = "none" if options.estimator in TREE_ESTIMATORS else options.numeric
    preprocess = PreprocessOptions(
        numeric=numeric,
        categorical=options.categorical,
        impute=options.impute and options.estimator not in NATIVE_MISSING_ESTIMATORS,
        max_categories=options.max_categories,
        min_frequency=options.min_frequency,
        sparse=options.estimator in SPARSE_ESTIMATORS,
        seed=options.seed,
        transforms=tuple(options.transforms),
    )
    try:
        pipeline = build_pipeline(features, estimator, preprocess)
    except FeatureCompileError as exc:
        raise TrainingError(str(exc), reason=exc.reason) from exc
    if not preprocess.sparse:
        distinct = {f.name: int(x_train[f.name].nunique()) for f in features if f.dtype == "string"}
        n_classes = len(set(y_train.tolist())) if task == "classification" else 1
        width = encoded_width(features, distinct, preprocess, n_classes)
        check_dense_size(len(x_train), width, options.estimator, memory_budget())
    best_iteration = None
    try:
        if options.estimator in BOOSTED_KINDS:
            from gyre.training.boosting import fit_boosted

            best_iteration = fit_boosted(
                pipeline,
                x_train,
                y_train,
                task=task,
                early_stopping=options.early_stopping,
                seed=options.seed,
            )
        else:
            pipeline.fit(x_train, y_train)
    except MemoryError:
        raise TrainingError(
            f"{options.estimator} ran out of memory on {len(x_train)} rows x {len(features)} features: lower "
            "preprocessing.maxCategories, or use a hash or targetEncode transform for high-cardinality columns",
            reason="OutOfMemory",
        ) from None
    except (ValueError, TypeError) as exc:
        raise TrainingError(f"{options.estimator} could not be fitted: {exc}", reason="FitFailed") from exc
    predictions = predict_test(task, pipeline, x_test)
    metrics = compute_metrics(task, pipeline, x_test, y_test, options.metrics, predictions=predictions)
    if best_iteration is not None:
        metrics["best_iteration"] = float(best_iteration)
    slices = _slices(options, task, pipeline, frame, x_test, y_test)
    classes = [_python(c) for c in pipeline.classes_] if task == "classification" else None
    importances = None
    if options.importances:
        from gyre.training.importance import permutation_importances

        importances = permutation_importances(
            pipeline,
            x_test,
            y_test,
            task=task,
            metric=options.primary_metric or next(iter(metrics), DEFAULT_METRICS[task][0]),
            seed=options.seed,
            classes=list(pipeline.classes_) if task == "classification" else None,
        )
    reference_mean = None
    if options.estimator in LINEAR_ESTIMATORS:
        import numpy as np

        encoded = pipeline[:-1].transform(x_train)
        reference_mean = [float(v) for v in np.asarray(encoded.mean(axis=0)).ravel()]
    return TrainingResult(
        pipeline=pipeline,
        task=task,
        estimator=options.estimator,
        params=dict(options.params),
        metrics=metrics,
        features=features,
        target=TargetSpec(name=options.target, classes=classes),
        seed=options.seed,
        x_test=x_test,
        y_test=y_test,
        rows_train=len(x_train),
        rows_test=len(x_test),
        transforms=[t.model_dump(by_alias=True, exclude_none=True) for t in options.transforms],
        onnx_blockers=onnx_blockers(options.transforms, features),
        importances=importances,
        reference_mean=reference_mean,
        slices=slices,
        test_predictions=predictions,
    )


def _check_slice_columns(frame: pd.DataFrame, options: TrainOptions, names: Sequence[str]) -> None:
    if options.slices is None:
        return
    absent = [c for c in options.slices.columns if c not in frame.columns]
    if absent:
        raise TrainingError(f"slice column(s) not in the data: {', '.join(absent)}", reason="FeatureMissing")
    if options.target in options.slices.columns:
        raise TrainingError(f"the target {options.target!r} cannot be a slice column", reason="InvalidSlices")
    inputs = [c for c in options.slices.exclude_from_features or [] if c in names]
    if inputs:
        raise TrainingError(
            f"slices.excludeFromFeatures column(s) {', '.join(inputs)} are among the model's features",
            reason="InvalidSlices",
        )


def _slices(
    options: TrainOptions, task: Task, pipeline: Any, frame: pd.DataFrame, x_test: pd.DataFrame, y_test: Any
) -> SliceEvaluation | None:
    if options.slices is None:
        return None
    from gyre.api.trainingrun import DEFAULT_METRICS
    from gyre.training.slices import evaluate_slices

    return evaluate_slices(
        options.slices,
        task=task,
        model=pipeline,
        x_test=x_test,
        y_test=y_test,
        slice_frame=frame.loc[x_test.index, list(options.slices.columns)],
        default_metrics=list(options.metrics or DEFAULT_METRICS[task]),
    )


# Re-exported for callers that catch every trainer error in one place.
TRAINER_ERRORS = (TrainingError, EstimatorError, MetricError)
