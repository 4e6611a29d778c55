"""Drift checks: a reference profile against a window of current data, column by column, then the dataset verdict.

Two presets (`DriftConfig.preset`, documented with measurements in docs/drift.md):

**gyre** (the default). Every column gets a significance test and an effect size, and drifts when the change is both
significant after the Benjamini-Hochberg correction across all the tests of the check (false discovery rate `alpha`,
default 0.05) and at least a small effect:

| column | test (p-value) | effect size | minimum effect |
|--------|----------------|-------------|----------------|
| numeric, > 20 distinct reference values | `ks_welch`: KS and Welch's test of means, Bonferroni-combined (2 min p) | Wasserstein-1 / reference std | 0.02 sd |
| categorical, binary, numeric with <= 20 distinct values | `chisquare`: two-sample homogeneity test | total variation distance | 0.01 |
| missing rate (every column) | one-sided two-proportion z-test | rise of the missing rate | 0.02 |

**evidently**: Evidently's documented rule (its DataDriftPreset), decided per column on the non-missing reference
values and the distinct non-missing values of reference and current together (n_values):

| reference values | numeric, n_values > 5 | numeric n_values <= 5, categorical, binary |
|------------------|-----------------------|---------------------------------------------|
| <= 1000          | KS (p < 0.05)         | chi-squared (p < 0.05), or the proportion z-test (p < 0.05) when n_values <= 2 |
| > 1000           | Wasserstein / std (>= 0.1) | Jensen-Shannon distance (>= 0.1), whatever n_values |

with the missing-rate rule below and no correction for multiplicity. In both presets the dataset drifts when drifted
columns / evaluated columns >= drift_share (default 0.5, Evidently's `>=`), and a per-column override (method and/or
threshold) decides that column by Evidently's threshold rule, outside the correction.

Chi-squared is always the two-sample test of homogeneity (see stats.chisquare_pvalue); Evidently's goodness-of-fit
variant is anti-conservative on small references. Categories beyond the profile's top K are compared through
hashed tail buckets (profile.TAIL_BUCKETS), so a window of values the reference never had shows up as drift even
when the reference had a million distinct values.

Missing values: the evidently preset flags a column whose missing rate rose by at least `missing_min_increase`
(default 0.05) with a one-sided two-proportion z-test p < `missing_alpha` (0.05); the gyre preset puts that p-value
in the corrected family with a minimum rise of 0.02. `missing_counts_as_drift` (default true) decides whether that
flag makes the column drift.

Outcomes are explicit, never NaN: see ColumnStatus. A constant reference column (std 0) is compared like any
other: with few distinct values by frequencies, otherwise by Wasserstein normalised by max(std, 0.001), as Evidently
does, so any spread of the current values is drift. A category the reference never saw is counted
(`unseenCategories`) and enters the tests as a category with reference frequency 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from gyre.drift import stats
from gyre.drift.profile import (
    OTHER,
    TAIL_BUCKETS,
    ColumnKind,
    ColumnProfile,
    ReferenceProfile,
    arrow_category_counts,
    arrow_numeric_values,
    bin_counts,
    category_counts,
    numeric_values,
    tail_bucket,
)

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = [
    "DEFAULT_THRESHOLDS",
    "GYRE_MIN_EFFECT",
    "NUMERIC_ONLY_METHODS",
    "P_VALUE_METHODS",
    "SMALL_REFERENCE_MAX",
    "Chart",
    "ColumnDrift",
    "ColumnOverride",
    "ColumnStatus",
    "CurrentData",
    "DriftConfig",
    "DriftConfigError",
    "DriftReport",
    "Method",
    "Preset",
    "Verdict",
    "check",
    "check_frame",
    "default_method",
    "resolve_columns",
]

# The order of gyre.api.driftmonitor.DriftMethod: pydantic caches a Literal's schema under its (unordered) set of
# values, so a different order here, built first, would reorder the enum of the generated DriftMonitor CRD.
Method = Literal["psi", "ks", "ks_welch", "chisquare", "z", "jensenshannon", "wasserstein"]
Preset = Literal["gyre", "evidently"]
EffectMeasure = Literal["wasserstein_sd", "tvd"]
ColumnStatus = Literal["ok", "all_missing", "mostly_missing", "insufficient_data"]
"""ok: the value test ran. all_missing / mostly_missing: the window has at least min_rows rows for the column but
fewer than min_rows non-missing values (none at all for all_missing): the value test cannot run and the verdict comes
from the missing-rate rule alone. insufficient_data: fewer than min_rows rows, or a reference without values: the
column is not evaluated and does not count in the drift share."""
Verdict = Literal["drift", "no_drift", "insufficient_data"]

P_VALUE_METHODS: frozenset[str] = frozenset({"ks_welch", "ks", "chisquare", "z"})
"""Drift when score < threshold; for the others (distances) drift when score >= threshold."""
NUMERIC_ONLY_METHODS: frozenset[str] = frozenset({"ks_welch", "ks", "wasserstein"})
DEFAULT_THRESHOLDS: dict[str, float] = {
    "ks_welch": 0.05,
    "ks": 0.05,
    "chisquare": 0.05,
    "z": 0.05,
    "jensenshannon": 0.1,
    "wasserstein": 0.1,
    "psi": 0.1,
}
GYRE_MIN_EFFECT: dict[str, float] = {"wasserstein_sd": 0.02, "tvd": 0.01, "missing": 0.02}
"""The gyre preset's smallest effects worth a verdict (docs/drift.md: set from the measured power tables)."""
CHART_BINS = 30
CHART_BARS = 20
SMALL_REFERENCE_MAX = 1000
"""Evidently's split between small and large references (non-missing values)."""

FloatArray = np.ndarray[Any, np.dtype[np.float64]]


class DriftConfigError(ValueError):
    """The check configuration does not fit the profile (unknown column, a numeric-only test on a category...)."""


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class ColumnOverride(_Model):
    """A per-column choice of test and/or threshold, or of the gyre preset's minimum effects."""

    method: Method | None = None
    threshold: float | None = Field(default=None, gt=0)
    min_effect: float | None = Field(default=None, ge=0)
    """gyre preset: this column's minimum effect (in its effect measure), in place of min_effect_numeric or
    min_effect_categorical. Only for a column decided by the corrected test, so not with method or threshold."""
    missing_min_increase: float | None = Field(default=None, ge=0, le=1)
    """This column's smallest rise of the missing rate that counts, in place of the config's."""

    @model_validator(mode="after")
    def _min_effect_needs_the_corrected_test(self) -> ColumnOverride:
        if self.min_effect is not None and (self.method is not None or self.threshold is not None):
            raise ValueError("minEffect applies to the corrected test, which method and threshold replace")
        return self


class DriftConfig(_Model):
    """How a check decides (the DriftMonitor spec maps onto this)."""

    preset: Preset = "gyre"
    """gyre: significance (Benjamini-Hochberg across columns) and a minimum effect; evidently: Evidently's
    defaults (see the module docstring)."""
    alpha: float = Field(default=0.05, gt=0, lt=1)
    """gyre preset: the false discovery rate across the check's tests."""
    min_effect_numeric: float = Field(default=GYRE_MIN_EFFECT["wasserstein_sd"], ge=0)
    """gyre preset: smallest Wasserstein distance, in reference standard deviations, that counts as drift."""
    min_effect_categorical: float = Field(default=GYRE_MIN_EFFECT["tvd"], ge=0, le=1)
    """gyre preset: smallest total variation distance that counts as drift."""
    drift_share: float = Field(default=0.5, gt=0, le=1)
    """The dataset drifts when drifted / evaluated columns >= drift_share."""
    min_rows: int = Field(default=30, ge=1)
    """Fewer current rows (or non-missing values) than this per column: no value test on that column."""
    columns: list[str] | None = None
    """Columns to check; None means every profiled column."""
    overrides: dict[str, ColumnOverride] = Field(default_factory=dict)
    missing_alpha: float = Field(default=0.05, gt=0, lt=1)
    """evidently preset: p-value below which a rising missing rate is significant (gyre uses `alpha`, corrected)."""
    missing_min_increase: float | None = Field(default=None, ge=0, le=1)
    """Smallest rise of the missing rate (absolute) that counts; None: 0.02 (gyre) or 0.05 (evidently)."""
    missing_counts_as_drift: bool = True
    """Whether a significant rise of the missing rate makes the column drift."""

    def min_missing_increase(self) -> float:
        """`missing_min_increase`, or the preset's default."""
        if self.missing_min_increase is not None:
            return self.missing_min_increase
        return GYRE_MIN_EFFECT["missing"] if self.preset == "gyre" else 0.05


class Chart(_Model):
    """The two distributions a report draws for a column: shares per bin (numeric) or per category."""

    kind: Literal["histogram", "bars"]
    labels: list[str]
    """Bars: category labels. Histogram: one label per bin (its range)."""
    edges: list[float] | None = None
    """Histogram: len(labels) + 1 bin edges; values beyond the ends are counted in the end bins."""
    reference: list[float]
    current: list[float]


class ColumnDrift(_Model):
    """The outcome for one column."""

    column: str
    kind: ColumnKind
    method: Method | None
    """None only when the column was not evaluated for lack of data."""
    score: float | None
    """p-value (ks, chisquare, z) or distance; None when the value test did not run."""
    threshold: float | None
    drifted: bool
    status: ColumnStatus
    value_drifted: bool = False
    missing_drifted: bool = False
    missing_rate_reference: float
    missing_rate_current: float | None
    missing_pvalue: float | None = None
    current_count: int
    """Non-missing current values."""
    current_rows: int
    unseen_categories: int | None = None
    """Distinct current values the reference never had (categorical columns and discrete numeric ones). None when
    the reference frequencies are truncated to the top K (values outside it fold into __other__)."""
    unseen_share: float | None = None
    """Share of current values that are unseen categories."""
    pvalue: float | None = None
    """The value test's p-value, before correction (None for distance methods)."""
    pvalue_adjusted: float | None = None
    """gyre preset: the Benjamini-Hochberg adjusted p-value, compared with alpha."""
    effect: float | None = None
    """Effect size: Wasserstein-1 / reference std (numeric) or total variation distance (the others)."""
    effect_measure: EffectMeasure | None = None
    effect_threshold: float | None = None
    """gyre preset: the minimum effect for drift (the column's override, else the preset's default)."""
    missing_min_increase: float | None = None
    """The smallest rise of the missing rate that counted for this column (its override, else the config's)."""
    missing_pvalue_adjusted: float | None = None
    chart: Chart | None = None
    message: str = ""


class DriftReport(_Model):
    """The outcome of one check."""

    format_version: Literal[1] = 1
    checked_at: datetime = Field(default_factory=lambda: datetime.now(tz=UTC))
    reference_rows: int
    current_rows: int
    columns: list[ColumnDrift]
    number_of_columns: int
    """Columns evaluated (status other than insufficient_data)."""
    number_of_drifted_columns: int
    drift_share: float
    """drifted / evaluated columns (0 when none was evaluated)."""
    drift_share_threshold: float
    preset: Preset = "gyre"
    alpha: float | None = None
    """gyre preset: the false discovery rate the p-values were corrected to."""
    dataset_drift: bool
    verdict: Verdict
    drifted_columns: list[str]
    insufficient_columns: list[str]
    window: dict[str, Any] | None = None
    """What the current data was (files, time range) when it came from the prediction log."""

    @model_validator(mode="after")
    def _consistent(self) -> DriftReport:
        if self.dataset_drift != (self.verdict == "drift"):
            raise ValueError("dataset_drift must agree with verdict")
        return self

    def to_json(self) -> str:
        """JSON with camelCase keys."""
        return self.model_dump_json(by_alias=True, indent=1)

    def summary(self) -> dict[str, Any]:
        """A compact dict for a termination message or a status field (well under 4 KiB for ~100 columns)."""
        return {
            "verdict": self.verdict,
            "driftShare": round(self.drift_share, 4),
            "drifted": self.drifted_columns,
            "evaluated": self.number_of_columns,
            "currentRows": self.current_rows,
        }


class _NumericAcc:
    __slots__ = ("chunks", "missing")

    def __init__(self) -> None:
        self.chunks: list[FloatArray] = []
        self.missing = 0


class _CategoryAcc:
    __slots__ = ("counts", "missing")

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.missing = 0


class CurrentData:
    """Current-side data of the profiled columns, accumulated chunk by chunk.

    Numeric columns keep their finite values (KS and Wasserstein need the distribution); categorical columns keep
    only value counts. Memory is therefore bounded by the window's row cap times the numeric columns, whatever the
    size of the log files or of the raw records.
    """

    def __init__(self, profile: ReferenceProfile, columns: Iterable[str] | None = None) -> None:
        names = list(columns) if columns is not None else list(profile.columns)
        self.rows = 0
        self._numeric: dict[str, _NumericAcc] = {}
        self._categorical: dict[str, _CategoryAcc] = {}
        self._cache: dict[str, FloatArray] = {}
        for name in names:
            if profile.columns[name].kind is ColumnKind.NUMERIC:
                self._numeric[name] = _NumericAcc()
            else:
                self._categorical[name] = _CategoryAcc()

    def add_frame(self, frame: pd.DataFrame) -> None:
        """Add a chunk of rows; a profiled column absent from the frame counts as missing in every row."""
        n = len(frame)
        if n == 0:
            return
        self.rows += n
        self._cache.clear()
        for name, num in self._numeric.items():
            if name not in frame.columns:
                num.missing += n
                continue
            values, missing = numeric_values(frame[name])
            num.missing += missing
            if values.size:
                num.chunks.append(values)
        for name, cat in self._categorical.items():
            if name not in frame.columns:
                cat.missing += n
                continue
            counts, missing = category_counts(frame[name])
            cat.missing += missing
            for key, count in counts.items():
                cat.counts[key] = cat.counts.get(key, 0) + count

    def add_table(self, table: pa.Table) -> None:
        """Add an Arrow table (a Parquet file read without pandas): the same counts and values as `add_frame` of
        its pandas conversion, without importing pandas for the usual column types."""
        n = table.num_rows
        if n == 0:
            return
        self.rows += n
        self._cache.clear()
        names = set(table.column_names)
        for name, num in self._numeric.items():
            if name not in names:
                num.missing += n
                continue
            values, missing = arrow_numeric_values(table.column(name))
            num.missing += missing
            if values.size:
                num.chunks.append(values)
        for name, cat in self._categorical.items():
            if name not in names:
                cat.missing += n
                continue
            counts, missing = arrow_category_counts(table.column(name))
            cat.missing += missing
            for key, count in counts.items():
                cat.counts[key] = cat.counts.get(key, 0) + count

    def add_records(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Add rows given as {feature: value} mappings (the `inputs` of prediction log rows)."""
        import pandas as pd

        if records:
            self.add_frame(pd.DataFrame.from_records(list(records)))

    def numeric(self, name: str) -> FloatArray:
        """All finite current values of a numeric column, sorted (KS and Wasserstein need them so; sorted once)."""
        if name not in self._cache:
            chunks = self._numeric[name].chunks
            merged = np.concatenate(chunks) if chunks else np.empty(0, dtype=np.float64)
            merged.sort()
            # Keep one array instead of the chunks: halves peak memory for the tests that follow.
            self._numeric[name].chunks = [merged] if merged.size else []
            self._cache[name] = merged
        return self._cache[name]

    def category_counts(self, name: str) -> dict[str, int]:
        """Canonical category -> count in the current data."""
        return self._categorical[name].counts

    def missing(self, name: str) -> int:
        """Missing current entries of a column."""
        acc = self._numeric.get(name) or self._categorical[name]
        return acc.missing

    def count(self, name: str) -> int:
        """Non-missing current values of a column."""
        if name in self._numeric:
            return sum(int(c.size) for c in self._numeric[name].chunks)
        return sum(self._categorical[name].counts.values())


def default_method(col: ColumnProfile, n_values: int) -> Method:
    """Evidently's default test for a column (see the module docstring)."""
    numeric = col.kind is ColumnKind.NUMERIC
    if col.count <= SMALL_REFERENCE_MAX:
        if numeric and n_values > 5:
            return "ks"
        return "chisquare" if n_values > 2 else "z"
    if numeric and n_values > 5:
        return "wasserstein"
    return "jensenshannon"


class _Table:
    """Reference and current counts aligned on the same keys."""

    def __init__(self, keys: list[Any], ref: FloatArray, cur: FloatArray, unseen: int | None, unseen_n: int):
        self.keys = keys
        self.ref = ref
        self.cur = cur
        self.unseen = unseen
        self.unseen_n = unseen_n

    @property
    def n_values(self) -> int:
        return int(np.count_nonzero((self.ref > 0) | (self.cur > 0)))

    def sorted(self) -> _Table:
        order = sorted(range(len(self.keys)), key=lambda i: self.keys[i])
        idx = np.asarray(order, dtype=np.int64)
        return _Table([self.keys[i] for i in order], self.ref[idx], self.cur[idx], self.unseen, self.unseen_n)


_TAIL_PREFIX = "\x00tail:"
"""Key prefix of the hashed tail buckets in a table (no canonical category starts with NUL)."""


def _category_table(col: ColumnProfile, counts: Mapping[str, int]) -> _Table:
    ref_table = col.frequency_table()
    tail = col.tail_counts if col.truncated else None
    if tail is not None:
        ref_table.pop(OTHER, None)
    keys: list[Any] = list(ref_table)
    ref = [float(v) for v in ref_table.values()]
    cur_by_key: dict[Any, float] = dict.fromkeys(keys, 0.0)
    unseen_keys: dict[str, int] = {}
    outside: list[str] = []
    for key, count in counts.items():
        if key in cur_by_key and key != OTHER:
            cur_by_key[key] += count
        elif tail is not None:
            outside.append(key)
        elif col.truncated:
            cur_by_key[OTHER] += count
        else:
            unseen_keys[key] = unseen_keys.get(key, 0) + count
    if tail is not None:
        # Values beyond the top K go to their hashed bucket on both sides (see profile.TAIL_BUCKETS).
        cur_tail = np.zeros(TAIL_BUCKETS)
        if outside:
            np.add.at(cur_tail, tail_bucket(outside), [counts[k] for k in outside])
        for i in range(TAIL_BUCKETS):
            keys.append(f"{_TAIL_PREFIX}{i}")
            ref.append(float(tail[i]))
            cur_by_key[keys[-1]] = float(cur_tail[i])
    for key in sorted(unseen_keys):
        keys.append(key)
        ref.append(0.0)
        cur_by_key[key] = float(unseen_keys[key])
    unseen = None if col.truncated else len(unseen_keys)
    return _Table(
        keys,
        np.asarray(ref, dtype=float),
        np.asarray([cur_by_key[k] for k in keys], dtype=float),
        unseen,
        sum(unseen_keys.values()),
    )


def _numeric_value_table(col: ColumnProfile, values: FloatArray) -> _Table:
    uniq, cnt = np.unique(values, return_counts=True)
    counts = {float(u): int(c) for u, c in zip(uniq, cnt, strict=True)}
    ref_values = [float(v) for v in (col.values or [])]
    ref_counts = [float(c) for c in (col.counts or [])]
    known = set(ref_values)
    unseen = sorted(k for k in counts if k not in known)
    keys: list[Any] = ref_values + unseen
    ref = np.asarray(ref_counts + [0.0] * len(unseen), dtype=float)
    cur = np.asarray([counts.get(k, 0) for k in keys], dtype=float)
    return _Table(keys, ref, cur, len(unseen), sum(counts[k] for k in unseen))


def _numeric_bin_table(col: ColumnProfile, values: FloatArray) -> _Table:
    edges = col.bin_edges or []
    ref = np.asarray(col.bin_fractions or [1.0], dtype=float) * col.count
    cur = bin_counts(values, edges).astype(float)
    return _Table(list(range(len(edges) + 1)), ref, cur, None, 0)


def _evaluate(
    method: Method, col: ColumnProfile, table: _Table | None, current: FloatArray | None
) -> tuple[float, _Table | None]:
    if method in ("ks", "ks_welch"):
        assert current is not None and col.sample is not None
        ref_sample = np.asarray(col.sample, dtype=float)
        p = stats.ks_pvalue(ref_sample, current, n_ref=col.count, sample_exact=col.sample_exact)
        if method == "ks_welch":
            welch = stats.welch_pvalue(col.mean or 0.0, col.std or 0.0, col.count, current)
            p = min(1.0, 2 * min(p, welch))
        return p, table
    if method == "wasserstein":
        assert current is not None and col.sample is not None and col.std is not None
        return stats.wasserstein_normed(np.asarray(col.sample, dtype=float), current, col.std), table
    assert table is not None
    if method == "chisquare":
        return stats.chisquare_pvalue(table.ref, table.cur), table
    if method == "z":
        sorted_table = table.sorted()
        return stats.proportions_z_pvalue(sorted_table.ref, sorted_table.cur), table
    if method == "jensenshannon":
        return stats.jensenshannon_distance(table.ref, table.cur), table
    return stats.psi(table.ref / table.ref.sum(), table.cur), table


def _effect(
    col: ColumnProfile, table: _Table | None, values: FloatArray | None
) -> tuple[float, EffectMeasure]:
    if table is not None and (col.kind is not ColumnKind.NUMERIC or col.values is not None):
        return stats.total_variation(table.ref, table.cur), "tvd"
    assert values is not None and col.sample is not None
    return stats.wasserstein_normed(
        np.asarray(col.sample, dtype=float), values, col.std or 0.0
    ), "wasserstein_sd"


def _label(key: Any) -> str:
    if isinstance(key, float):
        return str(int(key)) if key.is_integer() else f"{key:.6g}"
    return str(key)


def _chart(col: ColumnProfile, table: _Table | None, values: FloatArray | None) -> Chart:
    """Reference and current shares to draw: bars for categories and discrete numbers, else a histogram."""
    if table is not None and (col.kind is not ColumnKind.NUMERIC or col.values is not None):
        ref = table.ref / max(table.ref.sum(), 1.0)
        cur = table.cur / max(table.cur.sum(), 1.0)
        tail = np.asarray([isinstance(k, str) and k.startswith((_TAIL_PREFIX, OTHER)) for k in table.keys])
        order = [i for i in np.argsort(-np.maximum(ref, cur), kind="stable") if not tail[i]]
        shown, rest = order[:CHART_BARS], order[CHART_BARS:]
        labels = [_label(table.keys[i]) for i in shown]
        ref_out, cur_out = [float(ref[i]) for i in shown], [float(cur[i]) for i in shown]
        others = np.asarray(rest + list(np.flatnonzero(tail)), dtype=np.int64)
        if others.size:
            labels.append(f"other ({others.size} values or buckets)" if rest else "other (beyond the top K)")
            ref_out.append(float(ref[others].sum()))
            cur_out.append(float(cur[others].sum()))
        return Chart(kind="bars", labels=labels, reference=_round(ref_out), current=_round(cur_out))
    assert values is not None and col.sample is not None
    sample = np.asarray(col.sample, dtype=float)
    both = np.quantile(values, [0.005, 0.995]) if values.size else sample[[0, -1]]
    lo = float(min(np.quantile(sample, 0.005), both[0]))
    hi = float(max(np.quantile(sample, 0.995), both[1]))
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, CHART_BINS + 1)
    ref_h = np.histogram(np.clip(sample, lo, hi), edges)[0] / max(sample.size, 1)
    cur_h = np.histogram(np.clip(values, lo, hi), edges)[0] / max(values.size, 1)
    labels = [f"{edges[i]:.4g} to {edges[i + 1]:.4g}" for i in range(CHART_BINS)]
    return Chart(
        kind="histogram",
        labels=labels,
        edges=[float(f"{e:.6g}") for e in edges],
        reference=_round(ref_h.tolist()),
        current=_round(cur_h.tolist()),
    )


def _round(xs: list[float]) -> list[float]:
    return [round(float(x), 5) for x in xs]


def _check_column(name: str, col: ColumnProfile, current: CurrentData, config: DriftConfig) -> ColumnDrift:
    """The column's tests and effect; in the gyre preset the verdict is left to `_decide_corrected`."""
    override = config.overrides.get(name, ColumnOverride())
    count = current.count(name)
    missing = current.missing(name)
    rows = count + missing
    ref_total = col.count + col.missing
    base: dict[str, Any] = {
        "column": name,
        "kind": col.kind,
        "missing_rate_reference": col.missing_rate,
        "missing_rate_current": missing / rows if rows else None,
        "current_count": count,
        "current_rows": rows,
    }
    if rows < config.min_rows:
        return ColumnDrift(
            **base,
            method=override.method,
            score=None,
            threshold=None,
            drifted=False,
            status="insufficient_data",
            message=f"{rows} current rows, fewer than minRows={config.min_rows}",
        )

    missing_floor = (
        override.missing_min_increase
        if override.missing_min_increase is not None
        else config.min_missing_increase()
    )
    missing_p = stats.proportion_increase_pvalue(col.missing, ref_total, missing, rows)
    missing_rise = missing / rows - col.missing_rate >= missing_floor
    missing_drifted = missing_rise and missing_p < config.missing_alpha
    base["missing_pvalue"] = missing_p
    base["missing_drifted"] = missing_drifted
    base["missing_min_increase"] = missing_floor
    missing_note = (
        f"missing rate rose from {col.missing_rate:.3f} to {missing / rows:.3f}" if missing_drifted else ""
    )

    if col.count == 0:
        return ColumnDrift(
            **base,
            method=override.method,
            score=None,
            threshold=None,
            drifted=False,
            status="insufficient_data",
            message="the reference column has no values",
        )
    if count < config.min_rows:
        status: ColumnStatus = "all_missing" if count == 0 else "mostly_missing"
        if not config.missing_counts_as_drift:
            status = "insufficient_data"
        return ColumnDrift(
            **base,
            method=override.method,
            score=None,
            threshold=None,
            drifted=missing_drifted and config.missing_counts_as_drift,
            status=status,
            message=f"{count} non-missing current values, fewer than minRows={config.min_rows}"
            + (f"; {missing_note}" if missing_note else ""),
        )

    values: FloatArray | None = None
    table: _Table | None = None
    if col.kind is ColumnKind.NUMERIC:
        values = current.numeric(name)
        if col.values is not None:
            table = _numeric_value_table(col, values)
            n_values = table.n_values
        else:
            n_values = col.n_unique  # > DISCRETE_MAX_UNIQUE, so > 5 whatever the current values
    else:
        table = _category_table(col, current.category_counts(name))
        n_values = table.n_values

    corrected = config.preset == "gyre" and override.method is None and override.threshold is None
    if corrected:
        method: Method = "chisquare" if table is not None else "ks_welch"
    else:
        method = override.method or default_method(col, n_values)
    threshold = override.threshold if override.threshold is not None else DEFAULT_THRESHOLDS[method]
    if col.kind is ColumnKind.NUMERIC and table is None and method not in NUMERIC_ONLY_METHODS:
        assert values is not None
        table = _numeric_bin_table(col, values)
    score, table = _evaluate(method, col, table, values)
    effect, measure = _effect(col, table, values)
    value_drifted = score < threshold if method in P_VALUE_METHODS else score >= threshold
    drifted = value_drifted or (missing_drifted and config.missing_counts_as_drift)
    messages = [m for m in (missing_note,) if m]
    if table is not None and table.unseen:
        messages.append(f"{table.unseen} unseen categories ({table.unseen_n} values)")
    return ColumnDrift(
        **base,
        method=method,
        score=score,
        threshold=threshold,
        drifted=bool(drifted),
        status="ok",
        value_drifted=bool(value_drifted),
        unseen_categories=table.unseen if table is not None else None,
        unseen_share=(table.unseen_n / count) if table is not None and table.unseen is not None else None,
        pvalue=score if method in P_VALUE_METHODS else None,
        effect=effect,
        effect_measure=measure,
        effect_threshold=_min_effect(config, override, measure) if corrected else None,
        chart=_chart(col, table, values),
        message="; ".join(messages),
    )


def _min_effect(config: DriftConfig, override: ColumnOverride, measure: EffectMeasure) -> float:
    if override.min_effect is not None:
        return override.min_effect
    return config.min_effect_numeric if measure == "wasserstein_sd" else config.min_effect_categorical


def _decide_corrected(results: list[ColumnDrift], config: DriftConfig) -> list[ColumnDrift]:
    """gyre preset: Benjamini-Hochberg over every p-value of the check (the value tests of the columns without an
    override, and the missing-rate tests of every column with enough rows), then significance and a minimum effect.

    Invariant: a column drifts in its values only when its adjusted p-value < alpha and its effect >= its minimum
    effect; in its missing rate only when that test's adjusted p-value < alpha and the rate rose by at least
    its missing_min_increase (the column's override, else the config's).
    """
    family: list[tuple[int, str, float]] = []
    for i, r in enumerate(results):
        if r.effect_threshold is not None and r.pvalue is not None:
            family.append((i, "value", r.pvalue))
        if r.status != "insufficient_data" and r.missing_pvalue is not None:
            family.append((i, "missing", r.missing_pvalue))
    adjusted = stats.benjamini_hochberg([p for _, _, p in family])
    out = [r.model_copy() for r in results]
    for (i, which, _), q in zip(family, adjusted, strict=True):
        r = out[i]
        if which == "value":
            r.pvalue_adjusted = q
            r.score, r.threshold = q, config.alpha
            assert r.effect is not None and r.effect_threshold is not None
            r.value_drifted = q < config.alpha and r.effect >= r.effect_threshold
        else:
            r.missing_pvalue_adjusted = q
            rise = (r.missing_rate_current or 0.0) - r.missing_rate_reference
            floor = r.missing_min_increase
            r.missing_drifted = q < config.alpha and rise >= (
                floor if floor is not None else config.min_missing_increase()
            )
    for r in out:
        if r.status == "insufficient_data":
            continue
        missing = r.missing_drifted and config.missing_counts_as_drift
        r.drifted = bool(r.value_drifted or missing)
        notes = [m for m in r.message.split("; ") if m and not m.startswith("missing rate rose")]
        if r.missing_drifted:
            notes.insert(
                0, f"missing rate rose from {r.missing_rate_reference:.3f} to {r.missing_rate_current:.3f}"
            )
        r.message = "; ".join(notes)
    return out


def resolve_columns(profile: ReferenceProfile, config: DriftConfig) -> list[str]:
    """The columns a check covers; raises DriftConfigError when the configuration does not fit the profile."""
    names = config.columns if config.columns is not None else list(profile.columns)
    unknown = sorted({*names, *config.overrides} - set(profile.columns))
    if unknown:
        raise DriftConfigError(f"columns not in the reference profile: {unknown}")
    for name, override in config.overrides.items():
        col = profile.columns[name]
        if override.method in NUMERIC_ONLY_METHODS and col.kind is not ColumnKind.NUMERIC:
            raise DriftConfigError(
                f"column {name!r} is {col.kind.value}: {override.method} needs a numeric column"
            )
        measured_by_tvd = col.kind is not ColumnKind.NUMERIC or col.values is not None
        if override.min_effect is not None and override.min_effect > 1 and measured_by_tvd:
            raise DriftConfigError(
                f"column {name!r}: its effect is a total variation distance (0 to 1), so minEffect "
                f"{override.min_effect} can never be reached; use a value up to 1"
            )
    if not names:
        raise DriftConfigError("no columns to check")
    return names


def check(profile: ReferenceProfile, current: CurrentData, config: DriftConfig | None = None) -> DriftReport:
    """Compare accumulated current data with the reference profile. Raises DriftConfigError for a configuration
    that does not fit the profile; data problems become column statuses, never exceptions."""
    config = config or DriftConfig()
    names = resolve_columns(profile, config)
    results = [_check_column(name, profile.columns[name], current, config) for name in names]
    if config.preset == "gyre":
        results = _decide_corrected(results, config)
    evaluated = [r for r in results if r.status != "insufficient_data"]
    drifted = [r.column for r in evaluated if r.drifted]
    share = len(drifted) / len(evaluated) if evaluated else 0.0
    if not evaluated:
        verdict: Verdict = "insufficient_data"
    else:
        verdict = "drift" if share >= config.drift_share else "no_drift"
    return DriftReport(
        reference_rows=profile.row_count,
        current_rows=current.rows,
        columns=results,
        number_of_columns=len(evaluated),
        number_of_drifted_columns=len(drifted),
        drift_share=share,
        drift_share_threshold=config.drift_share,
        preset=config.preset,
        alpha=config.alpha if config.preset == "gyre" else None,
        dataset_drift=verdict == "drift",
        verdict=verdict,
        drifted_columns=drifted,
        insufficient_columns=[r.column for r in results if r.status == "insufficient_data"],
    )


def check_frame(
    profile: ReferenceProfile, frame: pd.DataFrame, config: DriftConfig | None = None
) -> DriftReport:
    """Check a current DataFrame against the profile (columns the profile lacks are ignored)."""
    config = config or DriftConfig()
    current = CurrentData(profile, resolve_columns(profile, config))
    current.add_frame(frame)
    return check(profile, current, config)
