"""Reference profiles: what the profiling Job stores and every drift check trusts."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from gyre.drift.profile import (
    OTHER,
    ColumnKind,
    ProfileError,
    ReferenceProfile,
    build_profile,
    canonical_categories,
    infer_kind,
)


def _frame(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(10.0, 2.0, n)
    x[::10] = np.nan
    return pd.DataFrame(
        {
            "x": x,
            "color": rng.choice(["red", "green", "blue"], n, p=[0.5, 0.3, 0.2]),
            "flag": rng.integers(0, 2, n),
            "level": rng.integers(1, 5, n),
        }
    )


def test_round_trip_is_exact() -> None:
    profile = build_profile(_frame())
    text = profile.to_json()
    again = ReferenceProfile.from_json(text)
    assert again == profile
    assert again.to_json() == text
    raw = json.loads(text)
    assert raw["formatVersion"] == 1
    assert raw["rowCount"] == 2000
    assert "missingRate" in raw["columns"]["x"]


def test_numeric_summary_matches_numpy() -> None:
    frame = _frame()
    col = build_profile(frame).columns["x"]
    values = frame["x"].dropna().to_numpy()
    assert col.kind is ColumnKind.NUMERIC
    assert col.count == values.size == 1800
    assert col.missing == 200
    assert col.missing_rate == pytest.approx(0.1)
    assert col.mean == pytest.approx(values.mean(), abs=1e-12)
    assert col.std == pytest.approx(values.std(), abs=1e-12)
    assert (col.min, col.max) == (values.min(), values.max())
    # All 1,800 values fit in the sample: it is the sorted data itself.
    assert col.sample_exact
    assert col.sample == sorted(values.tolist())


def test_psi_bins_are_reference_deciles_with_exact_fractions() -> None:
    frame = _frame()
    col = build_profile(frame).columns["x"]
    assert col.bin_edges is not None and col.bin_fractions is not None
    assert len(col.bin_edges) == 9
    assert len(col.bin_fractions) == 10
    assert sum(col.bin_fractions) == pytest.approx(1.0)
    assert all(f == pytest.approx(0.1, abs=0.002) for f in col.bin_fractions)
    values = frame["x"].dropna().to_numpy()
    below_first = np.mean(values <= col.bin_edges[0])
    assert col.bin_fractions[0] == pytest.approx(below_first)


def test_discrete_numeric_bins_are_deduplicated_and_keep_frequencies() -> None:
    frame = _frame()
    col = build_profile(frame, {"level": "numeric"}).columns["level"]
    assert col.n_unique == 4
    assert col.bin_edges is not None and len(col.bin_edges) == 3
    assert col.values is not None and sorted(col.values) == [1.0, 2.0, 3.0, 4.0]
    assert sum(col.counts or []) == 2000


def test_categories_are_capped_with_an_other_bucket() -> None:
    frame = pd.DataFrame({"city": [f"c{i % 50}" for i in range(1000)] + ["c0"] * 100})
    col = build_profile(frame, {"city": "categorical"}, top_k=10).columns["city"]
    assert col.values is not None and len(col.values) == 10
    assert col.values[0] == "c0" and col.counts is not None and col.counts[0] == 120
    assert col.other_count == 1100 - sum(col.counts)
    assert col.truncated
    assert col.n_unique == 50
    assert col.frequency_table()[OTHER] == col.other_count


def test_large_column_keeps_a_stratified_sample_close_to_the_reference() -> None:
    rng = np.random.default_rng(1)
    values = rng.exponential(3.0, 200_000)
    col = build_profile(pd.DataFrame({"v": values}), sample_size=1000).columns["v"]
    assert not col.sample_exact
    assert col.sample is not None and len(col.sample) == 1000
    assert col.sample == sorted(col.sample)
    # The sample's CDF is within 1/(2m) (+ rounding) of the reference CDF everywhere.
    sample = np.asarray(col.sample)
    grid = np.quantile(values, np.linspace(0.001, 0.999, 500))
    ref_cdf = np.searchsorted(np.sort(values), grid, side="right") / values.size
    sample_cdf = np.searchsorted(sample, grid, side="right") / sample.size
    assert np.max(np.abs(ref_cdf - sample_cdf)) <= 1 / 2000 + 1e-3


def test_infer_kind() -> None:
    assert infer_kind(pd.Series([1.5, 2.5, 3.5])) is ColumnKind.NUMERIC
    assert infer_kind(pd.Series([0, 1, 1, None])) is ColumnKind.BINARY
    assert infer_kind(pd.Series([True, False])) is ColumnKind.BINARY
    assert infer_kind(pd.Series(["a", "b", "c"])) is ColumnKind.CATEGORICAL
    assert infer_kind(pd.Series(["yes", "no", None])) is ColumnKind.BINARY
    assert infer_kind(pd.Series([1.5, 2.5, 1.5])) is ColumnKind.NUMERIC  # two values, but not a 0/1 flag
    assert infer_kind(pd.Series(["only"])) is ColumnKind.CATEGORICAL
    with pytest.raises(ProfileError, match="dtype"):
        infer_kind(pd.Series(pd.to_datetime(["2026-01-01", "2026-01-02"])))


def test_canonical_categories_agree_across_csv_and_json_types() -> None:
    from_csv = canonical_categories(pd.Series([1, 2, 3]))
    from_json = canonical_categories(pd.Series([1.0, 2.0, None, 3.0]))
    mixed = canonical_categories(pd.Series([1, "2", 3.0, True], dtype=object))
    assert from_csv.tolist() == from_json.tolist() == ["1", "2", "3"]
    assert mixed.tolist() == ["1", "2", "3", "true"]


def test_schema_errors_are_explained() -> None:
    frame = _frame()
    with pytest.raises(ProfileError, match="does not have"):
        build_profile(frame, {"nope": "numeric"})
    with pytest.raises(ProfileError, match="unknown kind"):
        build_profile(frame, {"x": "ordinal"})
    with pytest.raises(ProfileError, match="non-numeric"):
        build_profile(frame, {"color": "numeric"})


def test_schema_accepts_objects_with_a_kind() -> None:
    class Feature:
        kind = "categorical"

    profile = build_profile(_frame(), {"level": Feature(), "x": {"kind": "numeric"}})
    assert profile.kinds() == {"level": ColumnKind.CATEGORICAL, "x": ColumnKind.NUMERIC}


def test_all_missing_and_empty_columns_profile_without_nan() -> None:
    frame = pd.DataFrame({"x": [np.nan] * 5, "c": [None] * 5})
    profile = build_profile(frame, {"x": "numeric", "c": "categorical"})
    assert profile.columns["x"].count == 0 and profile.columns["x"].missing_rate == 1.0
    assert profile.columns["x"].mean is None
    assert "NaN" not in profile.to_json()


def test_unused_pandas_categories_are_not_values() -> None:
    series = pd.Series(pd.Categorical(["a", "b", "a"], categories=["a", "b", "c"]))
    col = build_profile(pd.DataFrame({"c": series}), {"c": "categorical"}).columns["c"]
    assert col.values == ["a", "b"] and col.counts == [2, 1] and col.n_unique == 2
