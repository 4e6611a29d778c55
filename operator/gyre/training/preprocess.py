"""Preprocessing chosen from the schema and spec.features, wrapped with the estimator into one scikit-learn Pipeline.

The saved artifact therefore takes raw named features (after `gyre.training.features.coerce_features`): the
feature transforms are fitted at training and applied by the same fitted objects at serving, from one definition.

Each transform of spec.features compiles to one ColumnTransformer entry (a TF-IDF step, to one entry per column);
columns without a transform get the default preprocessing (numbers imputed and scaled, strings one-hot encoded with
rare categories grouped and a cap on columns).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from gyre.api.features import FeatureTransform, TransformStep
from gyre.training.manifest import FeatureSpec

__all__ = [
    "DEFAULT_MAX_CATEGORIES",
    "FEATURE_TYPES",
    "ONNX_UNSUPPORTED_STEPS",
    "FeatureCompileError",
    "PreprocessOptions",
    "build_pipeline",
    "build_preprocessor",
    "encoded_width",
    "onnx_blockers",
]

DEFAULT_MAX_CATEGORIES = 50

# Every type spec.features compiles to (and their fitted internals), by module-qualified name, for the skops
# allowlist (gyre.training.artifact.gyre_allowlist). Data and fixed formulas only: no function.
FEATURE_TYPES: tuple[str, ...] = (
    "sklearn.preprocessing._data.MinMaxScaler",
    "sklearn.preprocessing._data.PowerTransformer",
    "sklearn.preprocessing._discretization.KBinsDiscretizer",
    "sklearn.preprocessing._target_encoder.TargetEncoder",
    "sklearn.feature_extraction.text.TfidfVectorizer",
    "sklearn.feature_extraction.text.TfidfTransformer",
    "sklearn.model_selection._split.KFold",
    "gyre.training.transformers.Clip",
    "gyre.training.transformers.Log",
    "gyre.training.transformers.Cyclic",
    "gyre.training.transformers.DateParts",
    "gyre.training.transformers.HashingEncoder",
    "gyre.training.transformers.RareCategories",
)

# Steps whose compiled transformer has no ONNX converter: a model using one is served through scikit-learn.
ONNX_UNSUPPORTED_STEPS: dict[str, str] = {
    "dateParts": "dateParts parses text dates, which ONNX cannot",
    "hash": "hash has no ONNX converter for string hashing",
}


class FeatureCompileError(ValueError):
    """spec.features does not fit the data (a step on a column of the wrong type, the target transformed)."""

    reason = "InvalidFeatures"


@dataclass(frozen=True)
class PreprocessOptions:
    """The default preprocessing of columns without a transform, and what the estimator accepts."""

    numeric: Literal["standard", "robust", "none"] = "standard"
    categorical: Literal["onehot", "ordinal"] = "onehot"
    impute: bool = True
    max_categories: int = DEFAULT_MAX_CATEGORIES
    min_frequency: int = 1
    sparse: bool = False
    """The estimator accepts scipy sparse input: encoders then output sparse matrices."""
    seed: int = 42
    transforms: Sequence[FeatureTransform] = field(default_factory=tuple)


def _onehot(max_categories: int, min_frequency: int, sparse: bool, dtype: str = "string") -> Any:
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    from gyre.training.transformers import RareCategories

    if dtype == "number":
        # infrequent_if_exist: an unseen category joins the rare ones' column (all zeros when none was rare).
        # skl2onnx cannot convert the grouping, so such a model is served by scikit-learn (the manifest says so).
        return OneHotEncoder(
            handle_unknown="infrequent_if_exist",
            max_categories=max_categories,
            min_frequency=min_frequency,
            sparse_output=sparse,
            dtype="float64",
        )
    # The same grouping for strings, done before the encoder: it converts to ONNX and the encoder stores only the
    # kept categories.
    return Pipeline(
        [
            ("group", RareCategories(max_categories=max_categories, min_frequency=min_frequency)),
            ("encode", OneHotEncoder(handle_unknown="ignore", sparse_output=sparse, dtype="float64")),
        ]
    )


def _impute(step: Any, dtype: str) -> Any:
    import numpy as np
    from sklearn.impute import SimpleImputer

    strategy = {"mostFrequent": "most_frequent"}.get(step.strategy, step.strategy)
    if dtype == "string":
        if strategy in ("mean", "median"):
            raise FeatureCompileError(
                f"impute strategy {step.strategy} needs number columns; use mostFrequent"
            )
        if strategy == "constant" and step.category is None:
            raise FeatureCompileError("impute constant on string columns needs category, not value")
        return SimpleImputer(missing_values="", strategy=strategy, fill_value=step.category)
    if strategy == "constant" and step.value is None:
        raise FeatureCompileError("impute constant on number columns needs value, not category")
    return SimpleImputer(missing_values=np.nan, strategy=strategy, fill_value=step.value)


def _step(step: TransformStep, dtype: str, options: PreprocessOptions) -> Any:
    from sklearn import preprocessing as sk

    from gyre.training import transformers as gt

    kind, params = step.kind(), step.params()
    if kind == "impute":
        return _impute(params, dtype)
    if kind in ("clip", "log", "power", "standardize", "bucketize", "cyclic") and dtype != "number":
        raise FeatureCompileError(f"{kind} needs number columns")
    if kind == "clip":
        return gt.Clip(min=params.min, max=params.max)
    if kind == "log":
        return gt.Log(offset=params.offset)
    if kind == "power":
        method = "box-cox" if params.method == "boxCox" else "yeo-johnson"
        return sk.PowerTransformer(method=method, standardize=params.standardize)
    if kind == "standardize":
        return {"standard": sk.StandardScaler, "robust": sk.RobustScaler, "minMax": sk.MinMaxScaler}[
            params.method
        ]()
    if kind == "bucketize":
        return sk.KBinsDiscretizer(
            n_bins=params.bins,
            strategy=params.strategy,
            encode="onehot-dense" if params.encode == "oneHot" else "ordinal",
            quantile_method="averaged_inverted_cdf",
            subsample=200_000,
            random_state=options.seed,
        )
    if kind == "cyclic":
        return gt.Cyclic(period=params.period)
    if kind == "dateParts":
        return gt.DateParts(parts=list(params.parts), cyclic=params.cyclic)
    if kind == "oneHot":
        return _onehot(params.max_categories, params.min_frequency, options.sparse, dtype)
    if kind == "targetEncode":
        from sklearn.model_selection import KFold

        # A seeded splitter: the cross-fitting is then reproducible (TargetEncoder's own random_state is deprecated).
        return sk.TargetEncoder(
            smooth="auto" if params.smoothing is None else params.smoothing,
            cv=KFold(n_splits=5, shuffle=True, random_state=options.seed),
        )
    if kind == "hash":
        return gt.HashingEncoder(n_features=params.n_features)
    raise AssertionError(f"unhandled step {kind}")  # pragma: no cover - STEP_KINDS and this function disagree


def _tfidf(step: TransformStep) -> Any:
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer

    params = step.params()
    return TfidfVectorizer(
        max_features=params.max_features,
        ngram_range=(1, params.ngram_max),
        min_df=params.min_df,
        lowercase=params.lowercase,
        dtype=np.float64,
    )


def _transform_entries(
    index: int, transform: FeatureTransform, dtypes: Mapping[str, str], options: PreprocessOptions
) -> list[tuple[str, Any, Any]]:
    from sklearn.pipeline import Pipeline

    columns = list(transform.columns)
    first = transform.steps[0].kind()
    kinds = {dtypes[c] for c in columns}
    if first == "tfidf":
        numbers = [c for c in columns if dtypes[c] == "number"]
        if numbers:
            raise FeatureCompileError(f"tfidf needs text columns; {', '.join(numbers)} hold numbers")
        # A scalar column selects a 1-D column: TfidfVectorizer reads one document per row.
        return [
            (f"features{index}c{j}", _tfidf(transform.steps[0]), column) for j, column in enumerate(columns)
        ]
    if first == "dateParts":
        dtype = "number"  # dateParts reads text or numbers and hands numbers on
    elif len(kinds) > 1:
        raise FeatureCompileError(
            f"transform {index} mixes number and string columns ({', '.join(columns)}); split it in two"
        )
    else:
        dtype = kinds.pop()
    steps = []
    for step in transform.steps:
        try:
            steps.append((step.kind(), _step(step, dtype, options)))
        except FeatureCompileError as exc:
            raise FeatureCompileError(
                f"spec.features.transforms[{index}] ({', '.join(columns)}): {exc}"
            ) from None
    return [(f"features{index}", Pipeline(steps) if len(steps) > 1 else steps[0][1], columns)]


def _default_entries(
    features: Sequence[FeatureSpec], options: PreprocessOptions
) -> list[tuple[str, Any, Any]]:
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder, RobustScaler, StandardScaler

    numbers = [f.name for f in features if f.dtype == "number"]
    strings = [f.name for f in features if f.dtype == "string"]
    entries: list[tuple[str, Any, Any]] = []
    if numbers:
        steps: list[tuple[str, Any]] = []
        if options.impute:
            steps.append(("impute", SimpleImputer(strategy="median")))
        if options.numeric == "standard":
            steps.append(("scale", StandardScaler()))
        elif options.numeric == "robust":
            steps.append(("scale", RobustScaler()))
        entries.append(("numeric", Pipeline(steps) if steps else "passthrough", numbers))
    if strings:
        encoder: Any
        if options.categorical == "onehot":
            encoder = _onehot(options.max_categories, options.min_frequency, options.sparse)
        else:
            encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
        entries.append(("categorical", encoder, strings))
    return entries


def build_preprocessor(features: Sequence[FeatureSpec], options: PreprocessOptions | None = None) -> Any:
    """A ColumnTransformer: the transforms of spec.features, then the default preprocessing of the other columns.

    Defaults: numbers are imputed (median) and scaled; strings are one-hot encoded with at most max_categories
    columns each (the rarest and unseen categories share one), or ordinal encoded. Missing strings are the category
    "" (see gyre.training.features), so no string imputation is needed; it also keeps the graph convertible to
    ONNX. The output is sparse only when options.sparse (the estimator accepts it) and mostly zeros.
    Raises FeatureCompileError when a transform does not fit its columns' types.
    """
    from sklearn.compose import ColumnTransformer

    options = options or PreprocessOptions()
    dtypes = {f.name: f.dtype for f in features}
    unknown = [c for t in options.transforms for c in t.columns if c not in dtypes]
    if unknown:
        raise FeatureCompileError(
            f"spec.features.transforms name column(s) that are not inputs: {', '.join(unknown)}"
        )
    transformed = {c for t in options.transforms for c in t.columns}
    entries: list[tuple[str, Any, Any]] = []
    for index, transform in enumerate(options.transforms):
        entries.extend(_transform_entries(index, transform, dtypes, options))
    entries.extend(_default_entries([f for f in features if f.name not in transformed], options))
    return ColumnTransformer(
        entries,
        remainder="drop",
        verbose_feature_names_out=True,
        sparse_threshold=0.3 if options.sparse else 0.0,
    )


def build_pipeline(
    features: Sequence[FeatureSpec], estimator: Any, options: PreprocessOptions | None = None
) -> Any:
    """Pipeline([("preprocess", ColumnTransformer), ("model", estimator)])."""
    from sklearn.pipeline import Pipeline

    return Pipeline([("preprocess", build_preprocessor(features, options)), ("model", estimator)])


def _step_width(step: TransformStep, distinct: int) -> int:
    kind, params = step.kind(), step.params()
    if kind == "bucketize":
        return int(params.bins) if params.encode == "oneHot" else 1
    if kind == "cyclic":
        return 2
    if kind == "dateParts":
        periodic = sum(p != "year" for p in params.parts) if params.cyclic else 0
        return len(params.parts) + periodic
    if kind == "oneHot":
        return min(int(params.max_categories), distinct + 1)
    if kind == "tfidf":
        return int(params.max_features)
    return 1


def encoded_width(
    features: Sequence[FeatureSpec], distinct: Mapping[str, int], options: PreprocessOptions, classes: int = 2
) -> int:
    """An upper bound on the number of columns the preprocessor outputs, from the spec and each column's number
    of distinct values (`distinct`), without fitting anything: what a dense matrix of the training rows costs."""
    width = 0
    transformed: set[str] = set()
    for transform in options.transforms:
        transformed.update(transform.columns)
        last = transform.steps[-1]
        if last.kind() == "hash":
            width += int(last.params().n_features)
            continue
        for column in transform.columns:
            # The encoding step decides the width; a multiclass target encoding gives one column per class.
            step_width = max(_step_width(s, distinct.get(column, 1)) for s in transform.steps)
            width += step_width * (classes if last.kind() == "targetEncode" and classes > 2 else 1)
    for feature in features:
        if feature.name in transformed:
            continue
        if feature.dtype == "string" and options.categorical == "onehot":
            width += min(options.max_categories, distinct.get(feature.name, 1) + 1)
        else:
            width += 1
    return width


def onnx_blockers(transforms: Sequence[FeatureTransform], features: Sequence[FeatureSpec] = ()) -> list[str]:
    """Why a pipeline compiled from these transforms cannot have an ONNX twin (empty: it may)."""
    numbers = {f.name for f in features if f.dtype == "number"}
    found: list[str] = []
    for index, transform in enumerate(transforms):
        for step in transform.steps:
            reason = ONNX_UNSUPPORTED_STEPS.get(step.kind())
            if step.kind() == "oneHot" and numbers.intersection(transform.columns):
                reason = "oneHot of number columns has no ONNX converter (skl2onnx takes string or integer categories)"
            if reason:
                found.append(f"spec.features.transforms[{index}] ({', '.join(transform.columns)}): {reason}")
    return found
