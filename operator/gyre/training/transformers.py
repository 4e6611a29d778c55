"""Gyre's own scikit-learn transformers, for feature steps scikit-learn has no class for.

They hold plain data only (floats, strings, numpy arrays), so skops saves and loads them without code, and they are
on Gyre's trusted-type allowlist (gyre.training.artifact.gyre_allowlist). `register_onnx_converters` teaches
skl2onnx the ones that have an ONNX equivalent (Clip, Log, Cyclic, RareCategories); DateParts (text parsing) and HashingEncoder
(string hashing) have none, so a model that uses them is served through scikit-learn, with that reason in its
manifest.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = [
    "CUSTOM_TRANSFORMERS",
    "INFREQUENT",
    "ONNX_CONVERTIBLE",
    "Clip",
    "Cyclic",
    "DateParts",
    "HashingEncoder",
    "Log",
    "RareCategories",
    "onnx_options",
    "register_onnx_converters",
]

_PERIODS = {"month": 12.0, "day": 31.0, "dayOfWeek": 7.0, "dayOfYear": 366.0, "hour": 24.0, "minute": 60.0}


def _numbers(x: Any) -> np.ndarray[Any, Any]:
    array = np.asarray(x, dtype=np.float64)
    return array.reshape(-1, 1) if array.ndim == 1 else array


def _names(est: Any, input_features: Sequence[str] | None) -> list[str]:
    if input_features is not None:
        return [str(n) for n in input_features]
    names = getattr(est, "feature_names_in_", None)
    if names is not None:
        return [str(n) for n in names]
    return [f"x{i}" for i in range(est.n_features_in_)]


class _Stateless(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """A numeric transform that learns nothing but the input's width (and names)."""

    def fit(self, x: Any, y: Any = None) -> _Stateless:
        validate_data(self, x, skip_check_array=True, reset=True)
        self.n_features_in_ = _numbers(x).shape[1]
        return self


class Clip(OneToOneFeatureMixin, _Stateless):  # type: ignore[misc]
    """Bound every column to [min, max] (either may be None); NaN stays NaN."""

    def __init__(self, min: float | None = None, max: float | None = None) -> None:
        self.min = min
        self.max = max

    def transform(self, x: Any) -> np.ndarray[Any, Any]:
        check_is_fitted(self, "n_features_in_")
        result: np.ndarray[Any, Any] = np.clip(_numbers(x), self.min, self.max)
        return result


class Log(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """log(x + offset). Fitting refuses values at or below -offset; at transform such values are raised to the
    smallest x + offset seen in training, per column (floor_), so the model never sees -inf or NaN from here."""

    def __init__(self, offset: float = 1.0) -> None:
        self.offset = offset

    def fit(self, x: Any, y: Any = None) -> Log:
        validate_data(self, x, skip_check_array=True, reset=True)
        shifted = _numbers(x) + self.offset
        self.n_features_in_ = shifted.shape[1]
        with np.errstate(invalid="ignore"):
            low = np.nanmin(np.where(np.isnan(shifted), np.inf, shifted), axis=0)
        bad = np.flatnonzero(low <= 0)
        if bad.size:
            raise ValueError(
                f"log needs values above {-self.offset:g}; column {bad[0]} has {low[bad[0]] - self.offset:g}: "
                "add a clip step before log, or raise log.offset"
            )
        self.floor_ = np.where(np.isfinite(low), low, 1.0)
        return self

    def transform(self, x: Any) -> np.ndarray[Any, Any]:
        check_is_fitted(self, "floor_")
        result: np.ndarray[Any, Any] = np.log(np.maximum(_numbers(x) + self.offset, self.floor_))
        return result


class Cyclic(_Stateless):
    """sin(2*pi*x/period) for every column, then cos(2*pi*x/period) for every column."""

    def __init__(self, period: float = 1.0) -> None:
        self.period = period

    def transform(self, x: Any) -> np.ndarray[Any, Any]:
        check_is_fitted(self, "n_features_in_")
        angle = _numbers(x) * (2 * math.pi / self.period)
        return np.hstack([np.sin(angle), np.cos(angle)])

    def get_feature_names_out(self, input_features: Sequence[str] | None = None) -> np.ndarray[Any, Any]:
        names = _names(self, input_features)
        return np.asarray([f"{n}_sin" for n in names] + [f"{n}_cos" for n in names], dtype=object)


class DateParts(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Parse each column as a date (ISO 8601 text or datetime) into `parts`; with `cyclic`, periodic parts become
    sin and cos. Unparseable and missing dates take each part's training median (fill_)."""

    def __init__(
        self, parts: Sequence[str] = ("year", "month", "day", "dayOfWeek"), cyclic: bool = False
    ) -> None:
        self.parts = parts
        self.cyclic = cyclic

    def _parts(self, x: Any) -> np.ndarray[Any, Any]:
        import pandas as pd

        frame = (
            x
            if isinstance(x, pd.DataFrame)
            else pd.DataFrame(np.asarray(x, dtype=object).reshape(len(x), -1))
        )
        blocks = []
        for column in frame.columns:
            values = frame[column]
            if values.dtype == object:
                values = values.replace({"": None})
            when = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
            accessor = when.dt
            by_part = {
                "year": accessor.year,
                "month": accessor.month,
                "day": accessor.day,
                "dayOfWeek": accessor.day_of_week,
                "dayOfYear": accessor.day_of_year,
                "hour": accessor.hour,
                "minute": accessor.minute,
            }
            blocks.append(np.column_stack([by_part[p].to_numpy(dtype=np.float64) for p in self.parts]))
        return np.hstack(blocks)

    def fit(self, x: Any, y: Any = None) -> DateParts:
        validate_data(self, x, skip_check_array=True, reset=True)
        parts = self._parts(x)
        self.n_features_in_ = parts.shape[1] // len(self.parts)
        if np.isnan(parts).all(axis=0).any():
            raise ValueError(
                "dateParts found no parseable date in a column; give ISO 8601 dates such as 2024-05-31"
            )
        self.fill_ = np.nanmedian(parts, axis=0)
        return self

    def transform(self, x: Any) -> np.ndarray[Any, Any]:
        check_is_fitted(self, "fill_")
        parts = self._parts(x)
        parts = np.where(np.isnan(parts), self.fill_, parts)
        if not self.cyclic:
            return parts
        out = []
        for j in range(parts.shape[1]):
            part = self.parts[j % len(self.parts)]
            if part in _PERIODS:
                angle = parts[:, j] * (2 * math.pi / _PERIODS[part])
                out.extend([np.sin(angle), np.cos(angle)])
            else:
                out.append(parts[:, j])
        return np.column_stack(out)

    def get_feature_names_out(self, input_features: Sequence[str] | None = None) -> np.ndarray[Any, Any]:
        names = []
        for column in _names(self, input_features):
            for part in self.parts:
                if self.cyclic and part in _PERIODS:
                    names.extend([f"{column}_{part}_sin", f"{column}_{part}_cos"])
                else:
                    names.append(f"{column}_{part}")
        return np.asarray(names, dtype=object)


class HashingEncoder(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Hash `<column index>=<value>` of every column into n_features columns (sparse counts, no sign flipping):
    bounded memory for any number of distinct values, and unseen values need no vocabulary."""

    def __init__(self, n_features: int = 1024) -> None:
        self.n_features = n_features

    def fit(self, x: Any, y: Any = None) -> HashingEncoder:
        validate_data(self, x, skip_check_array=True, reset=True)
        self.n_features_in_ = np.asarray(x, dtype=object).reshape(len(x), -1).shape[1]
        return self

    def transform(self, x: Any) -> Any:
        from sklearn.feature_extraction import FeatureHasher

        check_is_fitted(self, "n_features_in_")
        values = np.asarray(x, dtype=object).reshape(len(x), -1)
        rows = ([f"{j}={v}" for j, v in enumerate(row)] for row in values)
        hasher = FeatureHasher(n_features=self.n_features, input_type="string", alternate_sign=False)
        return hasher.transform(rows)

    def get_feature_names_out(self, input_features: Sequence[str] | None = None) -> np.ndarray[Any, Any]:
        return np.asarray([f"hash{i}" for i in range(self.n_features)], dtype=object)


INFREQUENT = "__infrequent__"
"""The category rare and unseen values of a string column become (RareCategories)."""


class RareCategories(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Keep each string column's most frequent categories (at most max_categories - 1, each seen in at least
    min_frequency rows) and replace every other value, unseen ones at serving included, by INFREQUENT.

    Before a OneHotEncoder(handle_unknown="ignore"), this is scikit-learn's max_categories/min_frequency grouping
    with handle_unknown="infrequent_if_exist", but the encoder then holds only the kept categories (a column with a
    million distinct values gives a small model file), and it converts to ONNX (a LabelEncoder per column).
    """

    def __init__(self, max_categories: int = 50, min_frequency: int = 1) -> None:
        self.max_categories = max_categories
        self.min_frequency = min_frequency

    def fit(self, x: Any, y: Any = None) -> RareCategories:
        import pandas as pd

        validate_data(self, x, skip_check_array=True, reset=True)
        values = np.asarray(x, dtype=object).reshape(len(x), -1)
        self.n_features_in_ = values.shape[1]
        self.kept_ = []
        for j in range(values.shape[1]):
            counts = pd.Series(values[:, j]).value_counts(sort=False)
            counts = counts[counts >= self.min_frequency]
            if len(counts) >= self.max_categories:
                # Most frequent first; ties by value, so the choice does not depend on row order.
                ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
                counts = counts[[k for k, _ in ranked[: self.max_categories - 1]]]
            self.kept_.append(np.asarray(sorted(counts.index.tolist()), dtype=object))
        return self

    def transform(self, x: Any) -> np.ndarray[Any, Any]:
        import pandas as pd

        check_is_fitted(self, "kept_")
        values = np.asarray(x, dtype=object).reshape(len(x), -1)
        out = np.empty_like(values)
        for j, kept in enumerate(self.kept_):
            column = values[:, j]
            out[:, j] = np.where(pd.Series(column).isin(kept).to_numpy(), column, INFREQUENT)
        return out

    def get_feature_names_out(self, input_features: Sequence[str] | None = None) -> np.ndarray[Any, Any]:
        return np.asarray(_names(self, input_features), dtype=object)


CUSTOM_TRANSFORMERS: tuple[type[Any], ...] = (Clip, Log, Cyclic, DateParts, HashingEncoder, RareCategories)
ONNX_CONVERTIBLE: frozenset[type[Any]] = frozenset({Clip, Log, Cyclic, RareCategories})


def _same_width(operator: Any) -> None:
    from skl2onnx.common.data_types import FloatTensorType

    n = operator.inputs[0].get_second_dimension()
    operator.outputs[0].type = FloatTensorType([None, n])


def _double_width(operator: Any) -> None:
    from skl2onnx.common.data_types import FloatTensorType

    n = operator.inputs[0].get_second_dimension()
    operator.outputs[0].type = FloatTensorType([None, 2 * n if n is not None else None])


def _convert_clip(scope: Any, operator: Any, container: Any) -> None:
    from skl2onnx.algebra.onnx_ops import OnnxIdentity, OnnxMax, OnnxMin

    est, opv = operator.raw_operator, container.target_opset
    node: Any = operator.inputs[0]
    if est.min is not None:
        node = OnnxMax(node, np.array([est.min], dtype=np.float32), op_version=opv)
    if est.max is not None:
        node = OnnxMin(node, np.array([est.max], dtype=np.float32), op_version=opv)
    OnnxIdentity(node, op_version=opv, output_names=operator.outputs[:1]).add_to(scope, container)


def _convert_log(scope: Any, operator: Any, container: Any) -> None:
    from skl2onnx.algebra.onnx_ops import OnnxAdd, OnnxLog, OnnxMax

    est, opv = operator.raw_operator, container.target_opset
    shifted = OnnxAdd(operator.inputs[0], np.array([est.offset], dtype=np.float32), op_version=opv)
    floored = OnnxMax(shifted, est.floor_.astype(np.float32), op_version=opv)
    OnnxLog(floored, op_version=opv, output_names=operator.outputs[:1]).add_to(scope, container)


def _convert_cyclic(scope: Any, operator: Any, container: Any) -> None:
    from skl2onnx.algebra.onnx_ops import OnnxConcat, OnnxCos, OnnxMul, OnnxSin

    est, opv = operator.raw_operator, container.target_opset
    angle = OnnxMul(
        operator.inputs[0], np.array([2 * math.pi / est.period], dtype=np.float32), op_version=opv
    )
    OnnxConcat(
        OnnxSin(angle, op_version=opv),
        OnnxCos(angle, op_version=opv),
        axis=1,
        op_version=opv,
        output_names=operator.outputs[:1],
    ).add_to(scope, container)


def _string_width(operator: Any) -> None:
    from skl2onnx.common.data_types import StringTensorType

    operator.outputs[0].type = StringTensorType([None, operator.inputs[0].get_second_dimension()])


def _convert_rare(scope: Any, operator: Any, container: Any) -> None:
    from skl2onnx.algebra.onnx_ops import OnnxConcat, OnnxGather, OnnxIdentity, OnnxLabelEncoder

    est, opv = operator.raw_operator, container.target_opset
    columns = []
    for j, kept in enumerate(est.kept_):
        column = OnnxGather(operator.inputs[0], np.array([j], dtype=np.int64), axis=1, op_version=opv)
        keys = [str(k) for k in kept] or [INFREQUENT]
        columns.append(
            OnnxLabelEncoder(
                column, keys_strings=keys, values_strings=keys, default_string=INFREQUENT, op_version=2
            )
        )
    node: Any = columns[0] if len(columns) == 1 else OnnxConcat(*columns, axis=1, op_version=opv)
    OnnxIdentity(node, op_version=opv, output_names=operator.outputs[:1]).add_to(scope, container)


def onnx_options(pipeline: Any) -> dict[int, dict[str, Any]]:
    """skl2onnx options for the text steps of a fitted pipeline: the "C" locale for TF-IDF's lowercasing, because
    onnxruntime's default (en_US.UTF-8) is often not installed, which fails the session. The held-out
    verification still decides whether the graph is kept."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    preprocess = pipeline.steps[0][1] if hasattr(pipeline, "steps") else None
    found: dict[int, dict[str, Any]] = {}
    for _name, transformer, _columns in getattr(preprocess, "transformers_", []):
        if isinstance(transformer, TfidfVectorizer):
            found[id(transformer)] = {"locale": "C"}
    return found


_registered = False


def register_onnx_converters() -> None:
    """Teach skl2onnx Clip, Log, Cyclic and RareCategories (idempotent)."""
    global _registered
    if _registered:
        return
    from skl2onnx import update_registered_converter

    for cls, shape, convert in (
        (Clip, _same_width, _convert_clip),
        (Log, _same_width, _convert_log),
        (Cyclic, _double_width, _convert_cyclic),
        (RareCategories, _string_width, _convert_rare),
    ):
        update_registered_converter(cls, f"Gyre{cls.__name__}", shape, convert)
    _registered = True
