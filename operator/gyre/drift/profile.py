"""Reference profiles: everything a drift check needs to know about the reference data, in one small JSON file.

A profile is built once per Dataset version (by the profiling Job) and stored as `profile.json` beside the data.
Drift checks read it instead of the raw reference, so a check costs O(current window), not O(reference).

Per column it keeps exact summary statistics (counts, missing rate, mean/std/min/max, reference-quantile bins with
their exact reference fractions, value frequencies) and a bounded numeric sample for the tests that need the
reference distribution itself (KS, Wasserstein).

The numeric sample: when the column has at most `sample_size` non-missing values it holds all of them (sorted), and
tests on it are exact. Above that it holds the reference quantiles at the probability levels (i + 0.5) / m,
i = 0..m-1 (a perfectly stratified sample; each point is an observed value). Compared with a uniform random sample
of the same size this bounds the error deterministically: the sample's CDF is within 1 / (2m) of the reference CDF
everywhere (so a KS statistic moves by at most 1 / (2m), 1e-4 for m = 5000), and the Wasserstein-1 distance between
the sample and the reference is at most (max - min) / m. A random sample of 5,000 has a KS error of about 0.019 at 95%
(DKW bound) and is not reproducible without a seed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from gyre.api.dataset import ColumnKind  # re-exported: the drift tests are chosen by it
from gyre.data import schema
from gyre.data.errors import DataError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = [
    "DEFAULT_PSI_BINS",
    "DEFAULT_SAMPLE_SIZE",
    "DEFAULT_TOP_K",
    "DISCRETE_MAX_UNIQUE",
    "OTHER",
    "PROFILE_FILE",
    "TAIL_BUCKETS",
    "ColumnKind",
    "ColumnProfile",
    "ProfileError",
    "ReferenceProfile",
    "arrow_category_counts",
    "arrow_column_profile",
    "arrow_numeric_values",
    "build_profile",
    "canonical_categories",
    "category_counts",
    "infer_kind",
    "numeric_values",
    "tail_bucket",
]

PROFILE_FILE = "profile.json"
OTHER = "__other__"
"""The bucket that collects categories beyond the top K."""

DEFAULT_SAMPLE_SIZE = 5000
DEFAULT_TOP_K = 200
DEFAULT_PSI_BINS = 10
TAIL_BUCKETS = 256
"""Categories beyond the top K are counted in this many hashed buckets (`tail_counts`), so a window made of values
the top K never had is still compared with the reference's tail, not with one `__other__` bucket."""
DISCRETE_MAX_UNIQUE = 20
"""Numeric columns with at most this many distinct values also keep exact value frequencies (they are tested like
categories when they have few values, as Evidently does)."""


class ProfileError(ValueError):
    """The frame or the schema cannot be profiled (unknown column, unsupported dtype, non-numeric numeric column)."""


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class ColumnProfile(_Model):
    """The reference summary of one column."""

    kind: ColumnKind
    count: int
    """Non-missing values."""
    missing: int
    """Missing values (null, NaN, and for numeric columns also +/-inf)."""
    missing_rate: float
    n_unique: int
    """Distinct non-missing values (exact, even when `values` is truncated)."""
    mean: float | None = None
    std: float | None = None
    """Population standard deviation (ddof=0), the normaliser of the Wasserstein test."""
    min: float | None = None
    max: float | None = None
    bin_edges: list[float] | None = None
    """Inner cut points of the reference-quantile bins (deduplicated); bin i holds edges[i-1] < x <= edges[i]."""
    bin_fractions: list[float] | None = None
    """Exact reference fraction in each bin (len(bin_edges) + 1 entries)."""
    values: list[str] | list[float] | None = None
    """Most frequent values, most frequent first: canonical strings for categorical and binary columns, floats for
    numeric columns with at most DISCRETE_MAX_UNIQUE distinct values."""
    counts: list[int] | None = None
    """Reference count of each entry of `values`."""
    other_count: int = 0
    """Non-missing reference values outside `values` (the `__other__` bucket)."""
    tail_counts: list[int] | None = None
    """Reference counts of the values outside `values`, by hashed bucket (`tail_bucket`, TAIL_BUCKETS entries);
    None when nothing was truncated, or in profiles written before it existed (then the tail is one bucket)."""
    sample: list[float] | None = None
    """Sorted numeric sample: every value, or stratified quantiles (see the module docstring)."""
    sample_exact: bool = False
    """Whether `sample` holds every non-missing reference value."""

    @property
    def truncated(self) -> bool:
        """Whether some categories were folded into `__other__`."""
        return self.other_count > 0

    def frequency_table(self) -> dict[Any, int]:
        """Value -> reference count, with `__other__` when truncated."""
        table: dict[Any, int] = dict(zip(self.values or [], self.counts or [], strict=True))
        if self.other_count:
            table[OTHER] = self.other_count
        return table


class ReferenceProfile(_Model):
    """The stored reference of a Dataset version (`profile.json`)."""

    format_version: Literal[1] = 1
    row_count: int
    """Rows in the reference data."""
    sample_size: int = DEFAULT_SAMPLE_SIZE
    top_k: int = DEFAULT_TOP_K
    psi_bins: int = DEFAULT_PSI_BINS
    created_at: datetime = Field(default_factory=lambda: datetime.now(tz=UTC))
    columns: dict[str, ColumnProfile]

    def to_json(self) -> str:
        """Serialise to the `profile.json` format (compact, camelCase keys, exact float round trip)."""
        return self.model_dump_json(by_alias=True)

    @classmethod
    def from_json(cls, data: str | bytes) -> ReferenceProfile:
        """Parse a `profile.json`; raises pydantic.ValidationError on a malformed file."""
        return cls.model_validate_json(data)

    def kinds(self) -> dict[str, ColumnKind]:
        """Column -> kind, in column order (the schema the profile was built with)."""
        return {name: col.kind for name, col in self.columns.items()}


def infer_kind(series: pd.Series) -> ColumnKind:
    """The drift kind of a column: gyre.data's schema rule (gyre.data.schema.infer_kind).

    bool, numbers that are exactly {0, 1}, or any other dtype with exactly two distinct values -> binary; other
    numbers -> numeric; strings, categories and mixed objects -> categorical. Datetimes, timedeltas and complex
    numbers are not drift features: ProfileError.
    """
    try:
        return schema.infer_kind(series)
    except DataError:
        raise ProfileError(
            f"column {series.name!r} has dtype {series.dtype}, which drift checks do not support"
        ) from None


def _category_key(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    return str(value)


def canonical_categories(series: pd.Series) -> pd.Series:
    """Non-missing values of a categorical column as canonical strings, so that reference data read from CSV and
    live inputs read from JSON agree: True -> "true", 3 and 3.0 -> "3", "a" -> "a"."""
    import pandas as pd

    values = series.dropna()
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return values.map({True: "true", False: "false"}).astype(object)
    if pd.api.types.is_integer_dtype(dtype):
        return values.astype("int64").astype(str)
    if pd.api.types.is_float_dtype(dtype):
        arr = values.to_numpy(dtype=float)
        if np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            return pd.Series(arr.astype(np.int64), index=values.index).astype(str)
        return values.map(_category_key)
    if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        return values.astype(str)
    return values.map(_category_key)


def category_counts(series: pd.Series) -> tuple[dict[str, int], int]:
    """Canonical category -> count of a column, and its number of missing entries.

    Counts the raw values first (hashing, in pandas) and canonicalises only the distinct ones, so the cost is one
    pass over the data whatever its dtype.
    """
    import pandas as pd

    vc = series.value_counts(dropna=True, sort=False)
    vc = vc[vc > 0]  # a pandas Categorical lists its unused categories with count 0
    keys = canonical_categories(pd.Series(vc.index.to_numpy(dtype=object), dtype=object).infer_objects())
    counts: dict[str, int] = {}
    for key, count in zip(keys.tolist(), vc.to_numpy().tolist(), strict=True):
        counts[key] = counts.get(key, 0) + int(count)
    return counts, int(series.size) - int(vc.sum())


def numeric_values(series: pd.Series) -> tuple[np.ndarray[Any, np.dtype[np.float64]], int]:
    """Finite float values of a numeric column and the number of missing entries (null, NaN, +/-inf, and values that
    are not numbers, so that a broken feature shows up as a rising missing rate rather than an error)."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(series.dtype):
        series = series.astype(float)
    if pd.api.types.is_numeric_dtype(series.dtype):
        arr = series.to_numpy(dtype=float, na_value=np.nan)
    else:
        arr = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    finite = np.isfinite(arr)
    values = arr[finite] if not finite.all() else arr
    return np.ascontiguousarray(values, dtype=np.float64), int(arr.size - values.size)


def _arrow_is_plain(column: pa.ChunkedArray) -> bool:
    import pyarrow as pa

    t = column.type
    return bool(
        pa.types.is_boolean(t)
        or pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_string(t)
        or pa.types.is_large_string(t)
    )


def _decoded(column: pa.ChunkedArray) -> pa.ChunkedArray:
    import pyarrow as pa

    if pa.types.is_dictionary(column.type):
        return column.cast(column.type.value_type)
    return column


def arrow_numeric_values(column: pa.ChunkedArray) -> tuple[np.ndarray[Any, np.dtype[np.float64]], int]:
    """`numeric_values` of an Arrow column (a Parquet column read without pandas): the same values and count.
    Numbers and bools are cast in Arrow; any other type goes through pandas, as `numeric_values` does."""
    import pyarrow as pa

    column = _decoded(column)
    t = column.type
    if not (pa.types.is_boolean(t) or pa.types.is_integer(t) or pa.types.is_floating(t)):
        return numeric_values(column.to_pandas())
    arr = _float64_with_nan(column.cast(pa.float64()))
    finite = np.isfinite(arr)
    values = arr[finite] if not finite.all() else arr
    return np.ascontiguousarray(values, dtype=np.float64), int(arr.size - values.size)


def _float64_with_nan(column: pa.ChunkedArray) -> np.ndarray[Any, np.dtype[np.float64]]:
    # Straight from the Arrow buffers: pyarrow's own to_numpy and fill_null import pandas (half a second).
    parts = []
    for chunk in column.chunks:
        end = chunk.offset + len(chunk)
        validity, data = chunk.buffers()
        values = np.frombuffer(data, dtype=np.float64, count=end)[chunk.offset :]
        if chunk.null_count:
            bits = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), count=end, bitorder="little")
            values = np.where(bits[chunk.offset :].astype(bool), values, np.nan)
        parts.append(values)
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.float64)


def arrow_category_counts(column: pa.ChunkedArray) -> tuple[dict[str, int], int]:
    """`category_counts` of an Arrow column: counted in Arrow, then the distinct values canonicalised as
    `canonical_categories` does for the same pandas dtypes (bool, integer, float, string). NaN is missing, as in
    pandas. Other types go through pandas."""
    import pyarrow as pa
    import pyarrow.compute as pc

    column = _decoded(column)
    if not _arrow_is_plain(column):
        return category_counts(column.to_pandas())
    if pa.types.is_floating(column.type):
        column = pc.if_else(pc.is_nan(column), pa.scalar(None, column.type), column)
    vc = pc.value_counts(column)
    keys = vc.field("values").to_pylist()
    tallies = vc.field("counts").to_pylist()
    counts: dict[str, int] = {}
    for key, count in zip(keys, tallies, strict=True):
        if key is None:
            continue
        canonical = _category_key(key)
        counts[canonical] = counts.get(canonical, 0) + int(count)
    return counts, len(column) - sum(counts.values())


def _reference_numeric_values(series: pd.Series) -> tuple[np.ndarray[Any, np.dtype[np.float64]], int]:
    import pandas as pd

    if not (pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype)):
        coerced = pd.to_numeric(series, errors="coerce")
        bad = coerced.isna() & series.notna()
        if bad.any():
            example = series[bad].iloc[0]
            raise ProfileError(f"numeric column {series.name!r} holds a non-numeric value {example!r}")
    return numeric_values(series)


def quantile_bin_edges(sorted_values: np.ndarray[Any, np.dtype[np.float64]], n_bins: int) -> list[float]:
    """Inner cut points at the reference quantiles 1/n .. (n-1)/n, deduplicated (discrete data gives fewer bins)."""
    if sorted_values.size == 0 or n_bins < 2:
        return []
    n = sorted_values.size
    # The inverted-CDF quantile at i / n_bins is the ceil(i * n / n_bins)-th order statistic (exact integers).
    ranks = (np.arange(1, n_bins, dtype=np.int64) * n + n_bins - 1) // n_bins
    unique = np.unique(sorted_values[np.maximum(ranks, 1) - 1])
    # An edge at the maximum would leave an empty last bin: drop it.
    unique = unique[unique < sorted_values[-1]]
    return [float(x) for x in unique]


def bin_counts(
    values: np.ndarray[Any, np.dtype[np.float64]], edges: list[float] | np.ndarray[Any, np.dtype[np.float64]]
) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Counts per bin: bin i holds edges[i-1] < x <= edges[i] (len(edges) + 1 bins)."""
    idx = np.searchsorted(np.asarray(edges, dtype=float), values, side="left")
    return np.bincount(idx, minlength=len(edges) + 1).astype(np.int64)


def _stratified_sample(sorted_values: np.ndarray[Any, np.dtype[np.float64]], size: int) -> list[float]:
    n = sorted_values.size
    if n <= size:
        return sorted_values.tolist()  # type: ignore[no-any-return]
    # Order statistics at the probability levels (i + 0.5) / size (inverted CDF: observed values only).
    positions = np.ceil((np.arange(size) + 0.5) / size * n).astype(np.int64) - 1
    return sorted_values[np.clip(positions, 0, n - 1)].tolist()  # type: ignore[no-any-return]


def _numeric_profile(
    series: pd.Series, kind: ColumnKind, *, sample_size: int, psi_bins: int, top_k: int
) -> ColumnProfile:
    values, missing = _reference_numeric_values(series)
    return _numeric_values_profile(
        values, missing, int(series.size), kind, sample_size=sample_size, psi_bins=psi_bins, top_k=top_k
    )


def _numeric_values_profile(
    values: np.ndarray[Any, np.dtype[np.float64]],
    missing: int,
    total: int,
    kind: ColumnKind,
    *,
    sample_size: int,
    psi_bins: int,
    top_k: int,
) -> ColumnProfile:
    count = int(values.size)
    if count == 0:
        return ColumnProfile(
            kind=kind, count=0, missing=missing, missing_rate=_rate(missing, total), n_unique=0
        )
    values = np.sort(values)
    distinct_mask = np.empty(count, dtype=bool)
    distinct_mask[0] = True
    np.not_equal(values[1:], values[:-1], out=distinct_mask[1:])
    n_unique = int(distinct_mask.sum())
    edges = quantile_bin_edges(values, psi_bins)
    # The values are sorted: a bin's count is the distance between its edges' positions (bin_counts' rule).
    at_edges = np.searchsorted(values, np.asarray(edges, dtype=float), side="right")
    fractions = np.diff(np.concatenate([[0], at_edges, [count]])) / count
    value_list: list[float] | None = None
    counts: list[int] | None = None
    if n_unique <= max(DISCRETE_MAX_UNIQUE, 0) and n_unique <= top_k:
        starts = np.flatnonzero(distinct_mask)
        run_counts = np.diff(np.append(starts, count))
        order = np.lexsort((values[starts], -run_counts))
        value_list = [float(values[starts][i]) for i in order]
        counts = [int(run_counts[i]) for i in order]
    return ColumnProfile(
        kind=kind,
        count=count,
        missing=missing,
        missing_rate=_rate(missing, total),
        n_unique=n_unique,
        mean=float(values.mean()),
        std=float(values.std()),
        min=float(values[0]),
        max=float(values[-1]),
        bin_edges=edges,
        bin_fractions=[float(x) for x in fractions],
        values=value_list,
        counts=counts,
        sample=_stratified_sample(values, sample_size),
        sample_exact=count <= sample_size,
    )


def _categorical_profile(series: pd.Series, kind: ColumnKind, *, top_k: int) -> ColumnProfile:
    counts, missing = category_counts(series)
    return _counts_profile(counts, missing, int(series.size), kind, top_k=top_k)


def _counts_profile(
    counts: dict[str, int], missing: int, total: int, kind: ColumnKind, *, top_k: int
) -> ColumnProfile:
    count = total - missing
    # Most frequent first, ties by value, so the profile is deterministic.
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    kept = items[:top_k]
    tail = items[top_k:]
    other = sum(c for _, c in tail)
    tail_counts = None
    if tail:
        buckets = tail_bucket([k for k, _ in tail])
        weights = np.asarray([c for _, c in tail], dtype=np.int64)
        tail_counts = np.bincount(buckets, weights=weights, minlength=TAIL_BUCKETS).astype(np.int64).tolist()
    return ColumnProfile(
        kind=kind,
        count=count,
        missing=missing,
        missing_rate=_rate(missing, total),
        n_unique=len(items),
        values=[str(k) for k, _ in kept],
        counts=[int(c) for _, c in kept],
        other_count=int(other),
        tail_counts=tail_counts,
    )


def arrow_column_profile(
    column: pa.ChunkedArray,
    kind: ColumnKind | None = None,
    *,
    categorical: bool = False,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    top_k: int = DEFAULT_TOP_K,
    psi_bins: int = DEFAULT_PSI_BINS,
) -> ColumnProfile | None:
    """The profile `build_profile` gives the pandas conversion of an Arrow column (a Parquet column), computed in
    Arrow and numpy for bool, integer, float and string columns; None for other types (profile those through
    pandas). `kind` None infers it by gyre.data's rule (`infer_kind`); `categorical` says that pandas reads the
    column as a Categorical (from the file's pandas metadata), which that rule never calls numeric."""
    import pyarrow as pa
    import pyarrow.compute as pc

    categories = categorical or pa.types.is_dictionary(column.type)
    column = _decoded(column)
    if not _arrow_is_plain(column):
        return None
    numeric_type = not (
        categories or pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
    )
    if kind is None:
        if pa.types.is_boolean(column.type) and not categories:
            kind = ColumnKind.BINARY
        elif numeric_type:
            # As infer_kind: NaN is missing, inf a value; exactly the two values 0 and 1 make a flag.
            raw = _float64_with_nan(column.cast(pa.float64()))
            raw = raw[~np.isnan(raw)]
            head = np.unique(raw[:1000])
            distinct = head if head.size > 2 else np.unique(raw)
            flag = distinct.size == 2 and bool(np.isin(distinct, [0.0, 1.0]).all())
            kind = ColumnKind.BINARY if flag else ColumnKind.NUMERIC
        else:
            present = column.drop_null()
            head = pc.count_distinct(present.slice(0, 1000)).as_py()
            distinct = head if head > 2 else pc.count_distinct(present).as_py()
            kind = ColumnKind.BINARY if distinct == 2 else ColumnKind.CATEGORICAL
    total = len(column)
    if kind is ColumnKind.NUMERIC:
        if not numeric_type:
            return None  # strings declared numeric: pandas' coercion and its error message
        values, missing = arrow_numeric_values(column)
        return _numeric_values_profile(
            values, missing, total, kind, sample_size=sample_size, psi_bins=psi_bins, top_k=top_k
        )
    counts, missing = arrow_category_counts(column)
    return _counts_profile(counts, missing, total, kind, top_k=top_k)


def tail_bucket(keys: list[str]) -> np.ndarray[Any, np.dtype[np.int64]]:
    """The hashed bucket (0..TAIL_BUCKETS-1) of each canonical category: a fixed-key SipHash (pandas'), so the same
    value lands in the same bucket in every process and version."""
    from pandas.util import hash_array

    if not keys:
        return np.empty(0, dtype=np.int64)
    hashed: np.ndarray[Any, np.dtype[np.uint64]] = hash_array(
        np.asarray(keys, dtype=object), categorize=False
    )
    return (hashed % np.uint64(TAIL_BUCKETS)).astype(np.int64)


def _rate(part: int, total: int) -> float:
    return part / total if total else 0.0


def _resolve_schema(frame: pd.DataFrame, schema: Mapping[str, Any] | None) -> dict[str, ColumnKind]:
    if schema is None:
        return {str(name): infer_kind(frame[name]) for name in frame.columns}
    resolved: dict[str, ColumnKind] = {}
    unknown = [name for name in schema if name not in frame.columns]
    if unknown:
        raise ProfileError(f"schema names columns the data does not have: {sorted(unknown)}")
    for name, spec in schema.items():
        kind = spec.get("kind") if isinstance(spec, Mapping) else getattr(spec, "kind", spec)
        if kind is None:
            resolved[name] = infer_kind(frame[name])
            continue
        try:
            resolved[name] = ColumnKind(str(kind.value if isinstance(kind, ColumnKind) else kind))
        except ValueError:
            raise ProfileError(
                f"column {name!r}: unknown kind {kind!r} (expected numeric, categorical or binary)"
            ) from None
    return resolved


def build_profile(
    frame: pd.DataFrame,
    schema: Mapping[str, Any] | None = None,
    *,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    top_k: int = DEFAULT_TOP_K,
    psi_bins: int = DEFAULT_PSI_BINS,
) -> ReferenceProfile:
    """Profile a reference frame.

    `schema` maps column -> kind ("numeric" / "categorical" / "binary", a ColumnKind, an object with a `.kind`, or a
    mapping with a "kind" key); only those columns are profiled. Without a schema every column is profiled with
    `infer_kind`. Raises ProfileError for unknown columns or kinds, unsupported dtypes, and numeric columns holding
    non-numeric values.
    """
    if sample_size < 1 or top_k < 1 or psi_bins < 2:
        raise ProfileError("sample_size and top_k must be >= 1 and psi_bins >= 2")
    kinds = _resolve_schema(frame, schema)
    columns: dict[str, ColumnProfile] = {}
    for name, kind in kinds.items():
        series = frame[name]
        if kind is ColumnKind.NUMERIC:
            columns[name] = _numeric_profile(
                series, kind, sample_size=sample_size, psi_bins=psi_bins, top_k=top_k
            )
        else:
            columns[name] = _categorical_profile(series, kind, top_k=top_k)
    profile = ReferenceProfile(
        row_count=len(frame), sample_size=sample_size, top_k=top_k, psi_bins=psi_bins, columns=columns
    )
    _check_finite(profile)
    return profile


def _check_finite(profile: ReferenceProfile) -> None:
    # JSON cannot hold NaN or inf; every float here comes from finite values, this guards the invariant.
    for name, col in profile.columns.items():
        for field in (col.mean, col.std, col.min, col.max):
            if field is not None and not math.isfinite(field):
                raise ProfileError(f"column {name!r}: non-finite summary statistic")
