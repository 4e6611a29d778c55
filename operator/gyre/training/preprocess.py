"""Preprocessing chosen from the schema, wrapped with the estimator into one scikit-learn Pipeline.

The saved artifact therefore takes raw named features (after `gyre.training.features.coerce_features`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from gyre.training.manifest import FeatureSpec

__all__ = ["build_pipeline", "build_preprocessor"]


def build_preprocessor(
    features: Sequence[FeatureSpec],
    *,
    numeric: Literal["standard", "robust", "none"] = "standard",
    categorical: Literal["onehot", "ordinal"] = "onehot",
    impute: bool = True,
) -> Any:
    """A ColumnTransformer: numbers are imputed (median) and scaled; strings are one-hot (or ordinal) encoded.

    Unknown categories at prediction time are ignored (one-hot: all zeros; ordinal: -1), never an error. Missing
    strings are the category "" (see gyre.training.features), so no string imputation is needed; it also keeps the
    graph convertible to ONNX.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, RobustScaler, StandardScaler

    numbers = [f.name for f in features if f.dtype == "number"]
    strings = [f.name for f in features if f.dtype == "string"]
    transformers: list[tuple[str, Any, list[str]]] = []
    if numbers:
        steps: list[tuple[str, Any]] = []
        if impute:
            steps.append(("impute", SimpleImputer(strategy="median")))
        if numeric == "standard":
            steps.append(("scale", StandardScaler()))
        elif numeric == "robust":
            steps.append(("scale", RobustScaler()))
        transformers.append(("numeric", Pipeline(steps) if steps else "passthrough", numbers))
    if strings:
        encoder: Any
        if categorical == "onehot":
            encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
        else:
            encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
        transformers.append(("categorical", encoder, strings))
    return ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=True)


def build_pipeline(features: Sequence[FeatureSpec], estimator: Any, **options: Any) -> Any:
    """Pipeline([("preprocess", ColumnTransformer), ("model", estimator)])."""
    from sklearn.pipeline import Pipeline

    return Pipeline([("preprocess", build_preprocessor(features, **options)), ("model", estimator)])
