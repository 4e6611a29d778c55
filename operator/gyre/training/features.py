"""The model's input contract: how raw feature values are coerced before the pipeline (or ONNX) sees them.

Trainer, ONNX verification and the model server all go through `coerce_features`, so a value means the same thing
at training and at serving time:

- `number` features become float64; missing values (None, NaN, "") become NaN and are imputed by the pipeline.
- `string` features become Python str; missing values become "" (a category of its own, learnt like any other);
  numbers and booleans are formatted with str() (True -> "True", 3 -> "3").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from gyre.training.manifest import FeatureSpec

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["MISSING_CATEGORY", "FeatureInputError", "coerce_features", "feature_dtype", "onnx_feeds"]

MISSING_CATEGORY = ""


class FeatureInputError(ValueError):
    """Inputs do not match the model's features (missing column, non-numeric value for a number feature)."""


def feature_dtype(kind: str, series: pd.Series[Any]) -> Literal["number", "string"]:
    """How a column of this kind is fed to the model: numeric kinds and 0/1 flags are numbers, the rest strings."""
    from pandas.api import types

    if kind == "numeric":
        return "number"
    if kind == "binary" and types.is_numeric_dtype(series.dtype) and not types.is_bool_dtype(series.dtype):
        return "number"
    return "string"


def _to_str(value: Any) -> str:
    if value is None:
        return MISSING_CATEGORY
    if isinstance(value, float) and np.isnan(value):
        return MISSING_CATEGORY
    if value is getattr(np, "nan", None):
        return MISSING_CATEGORY
    try:
        import pandas as pd

        if value is pd.NA or value is pd.NaT:
            return MISSING_CATEGORY
    except ImportError:  # pragma: no cover - pandas is a dependency
        pass
    return str(value)


def coerce_features(frame: pd.DataFrame, features: Sequence[FeatureSpec]) -> pd.DataFrame:
    """A new frame holding exactly the model's features, in order, with the contract's types.

    Raises FeatureInputError naming the missing columns or the first non-numeric value of a number feature.
    """
    import pandas as pd

    missing = [f.name for f in features if f.name not in frame.columns]
    if missing:
        raise FeatureInputError(f"missing feature(s): {', '.join(missing)}")
    columns: dict[str, Any] = {}
    for feature in features:
        series = frame[feature.name]
        if feature.dtype == "number":
            if series.dtype == object or pd.api.types.is_string_dtype(series.dtype):
                series = series.replace({"": None})
            try:
                columns[feature.name] = pd.to_numeric(series, errors="raise").astype("float64")
            except (ValueError, TypeError) as exc:
                raise FeatureInputError(f"feature {feature.name!r} must be numeric: {exc}") from None
        else:
            columns[feature.name] = pd.Series(
                [_to_str(v) for v in series.astype(object).tolist()], index=series.index, dtype=object
            )
    return pd.DataFrame(columns, index=frame.index)


def onnx_feeds(
    coerced: pd.DataFrame, features: Sequence[FeatureSpec], inputs: Mapping[str, str]
) -> dict[str, Any]:
    """onnxruntime feeds from a coerced frame: one [n, 1] tensor per feature (float32 or string)."""
    feeds: dict[str, Any] = {}
    for feature in features:
        column = coerced[feature.name]
        if feature.dtype == "number":
            feeds[inputs[feature.name]] = column.to_numpy(dtype=np.float32).reshape(-1, 1)
        else:
            feeds[inputs[feature.name]] = column.to_numpy(dtype=object).reshape(-1, 1)
    return feeds
