"""Drift checks with `preset: evidently` on generated data: calibration, power, parity with scipy, and the edge cases
a monitor meets. The default preset (gyre) has its own tests in test_drift_gyre_preset.py."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from gyre.drift.check import (
    ColumnDrift,
    ColumnOverride,
    DriftConfig,
    DriftConfigError,
    DriftReport,
    check_frame,
    default_method,
)
from gyre.drift.profile import ColumnKind, ColumnProfile, ReferenceProfile, build_profile


def _check_ev(
    profile: ReferenceProfile, frame: pd.DataFrame, config: DriftConfig | None = None
) -> DriftReport:
    """check_frame with the evidently preset (and whatever else `config` sets)."""
    return check_frame(profile, frame, (config or DriftConfig()).model_copy(update={"preset": "evidently"}))


def _mixed(n: int, rng: np.random.Generator, *, shift: float = 0.0, scale: float = 1.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "num": rng.normal(shift, scale, n),
            "cat": rng.choice(["a", "b", "c", "d"], n, p=[0.4, 0.3, 0.2, 0.1]),
            "bin": rng.choice(["yes", "no"], n, p=[0.3, 0.7]),
        }
    )


def _col(report: DriftReport, name: str) -> ColumnDrift:
    return next(c for c in report.columns if c.column == name)


# --- calibration -------------------------------------------------------------------------------------------------


def test_no_drift_false_positive_rate_is_near_alpha_for_p_value_tests() -> None:
    seeds = 200
    hits = {"num": 0, "cat": 0, "bin": 0}
    methods: dict[str, set[str]] = {name: set() for name in hits}
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        profile = build_profile(_mixed(600, rng))
        report = _check_ev(profile, _mixed(400, rng))
        for col in report.columns:
            hits[col.column] += col.drifted
            methods[col.column].add(str(col.method))
    assert methods == {"num": {"ks"}, "cat": {"chisquare"}, "bin": {"z"}}
    # Two-sided 99.9% binomial band around alpha = 0.05: a calibrated test lands inside it.
    low, high = stats.binom.ppf([0.0005, 0.9995], seeds, 0.05)
    for name, count in hits.items():
        assert low <= count <= high, f"{name}: {count} false positives in {seeds} null checks"


def test_no_drift_large_reference_distances_stay_below_threshold() -> None:
    for seed in range(10):
        rng = np.random.default_rng(1000 + seed)
        profile = build_profile(_mixed(20_000, rng))
        report = _check_ev(profile, _mixed(5_000, rng))
        assert {c.column: c.method for c in report.columns} == {
            "num": "wasserstein",
            "cat": "jensenshannon",
            "bin": "jensenshannon",
        }
        assert report.verdict == "no_drift"
        assert all(c.score is not None and c.score < 0.05 for c in report.columns)


# --- power -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_ref", [800, 50_000])
def test_mean_shift_is_detected(n_ref: int) -> None:
    rng = np.random.default_rng(7)
    profile = build_profile(_mixed(n_ref, rng))
    col = _col(_check_ev(profile, _mixed(2_000, rng, shift=0.5)), "num")
    assert col.drifted and col.status == "ok"
    assert col.method == ("ks" if n_ref <= 1000 else "wasserstein")


@pytest.mark.parametrize("n_ref", [800, 50_000])
def test_variance_change_is_detected(n_ref: int) -> None:
    rng = np.random.default_rng(8)
    profile = build_profile(_mixed(n_ref, rng))
    assert _col(_check_ev(profile, _mixed(2_000, rng, scale=2.0)), "num").drifted


@pytest.mark.parametrize("n_ref", [800, 50_000])
def test_category_frequency_change_is_detected(n_ref: int) -> None:
    rng = np.random.default_rng(9)
    profile = build_profile(_mixed(n_ref, rng))
    current = _mixed(2_000, rng)
    current["cat"] = rng.choice(["a", "b", "c", "d"], 2_000, p=[0.1, 0.2, 0.3, 0.4])
    current["bin"] = rng.choice(["yes", "no"], 2_000, p=[0.6, 0.4])
    report = _check_ev(profile, current)
    assert _col(report, "cat").drifted and _col(report, "bin").drifted
    assert not _col(report, "num").drifted


@pytest.mark.parametrize("n_ref", [800, 50_000])
def test_new_category_is_detected_and_counted(n_ref: int) -> None:
    rng = np.random.default_rng(10)
    profile = build_profile(_mixed(n_ref, rng))
    current = _mixed(2_000, rng)
    current.loc[:599, "cat"] = "zzz"
    col = _col(_check_ev(profile, current), "cat")
    assert col.drifted
    assert col.unseen_categories == 1
    assert col.unseen_share == pytest.approx(0.3)
    assert "unseen" in col.message


def test_rising_missing_rate_is_flagged_even_when_values_look_alike() -> None:
    rng = np.random.default_rng(11)
    profile = build_profile(_mixed(5_000, rng))
    current = _mixed(2_000, rng)
    current.loc[current.index[:600], "num"] = np.nan
    col = _col(_check_ev(profile, current), "num")
    assert not col.value_drifted
    assert col.missing_drifted and col.drifted
    assert col.missing_rate_current == pytest.approx(0.3)
    assert "missing rate rose" in col.message
    # Reported but not counted when the monitor asks for Evidently's behaviour.
    relaxed = _check_ev(profile, current, DriftConfig(missing_counts_as_drift=False))
    col = _col(relaxed, "num")
    assert col.missing_drifted and not col.drifted


def test_small_missing_fluctuation_is_not_flagged() -> None:
    rng = np.random.default_rng(12)
    reference = _mixed(5_000, rng)
    reference.loc[reference.index[:250], "num"] = np.nan  # 5%
    current = _mixed(2_000, rng)
    current.loc[current.index[:120], "num"] = np.nan  # 6%
    col = _col(_check_ev(build_profile(reference), current), "num")
    assert not col.missing_drifted


# --- parity with scipy on the same data ---------------------------------------------------------------------------


def test_scores_match_scipy_when_the_sample_holds_the_whole_reference() -> None:
    rng = np.random.default_rng(20)
    ref = _mixed(900, rng)
    cur = _mixed(700, rng, shift=0.1)
    ref.loc[ref.index[::17], "num"] = np.nan
    report = _check_ev(build_profile(ref), cur)
    r_num, c_num = ref["num"].dropna().to_numpy(), cur["num"].to_numpy()
    assert _col(report, "num").score == pytest.approx(stats.ks_2samp(r_num, c_num).pvalue, abs=1e-9)

    keys = sorted(set(ref["cat"]) | set(cur["cat"]))
    r_counts = ref["cat"].value_counts().reindex(keys, fill_value=0).to_numpy(float)
    c_counts = cur["cat"].value_counts().reindex(keys, fill_value=0).to_numpy(float)
    chi = stats.chi2_contingency(np.vstack([r_counts, c_counts]), correction=False).pvalue
    assert _col(report, "cat").score == pytest.approx(chi, abs=1e-9)

    # The two-proportion z-test is the uncorrected chi-squared test of the 2x2 table (z^2 = chi^2).
    table = [
        [int((ref["bin"] == "no").sum()), int((ref["bin"] == "yes").sum())],
        [int((cur["bin"] == "no").sum()), int((cur["bin"] == "yes").sum())],
    ]
    z_ref = stats.chi2_contingency(table, correction=False).pvalue
    assert _col(report, "bin").score == pytest.approx(z_ref, abs=1e-9)


def test_distances_match_scipy_on_large_references() -> None:
    rng = np.random.default_rng(21)
    ref = _mixed(4_000, rng)  # > 1000 rows: distances; <= 5000 values: the sample is exact
    cur = _mixed(3_000, rng, shift=0.2)
    cur.loc[:99, "cat"] = "new"
    report = _check_ev(build_profile(ref), cur)
    r_num, c_num = ref["num"].to_numpy(), cur["num"].to_numpy()
    wd = stats.wasserstein_distance(r_num, c_num) / np.std(r_num)
    assert _col(report, "num").score == pytest.approx(wd, abs=1e-9)

    keys = sorted(set(ref["cat"]) | set(cur["cat"]))
    p = ref["cat"].value_counts().reindex(keys, fill_value=0).to_numpy(float)
    q = cur["cat"].value_counts().reindex(keys, fill_value=0).to_numpy(float)
    assert _col(report, "cat").score == pytest.approx(jensenshannon(p / p.sum(), q / q.sum()), abs=1e-9)


def test_psi_matches_the_textbook_formula_on_reference_deciles() -> None:
    rng = np.random.default_rng(22)
    ref = rng.normal(0, 1, 10_000)
    cur = rng.normal(0.3, 1, 4_000)
    report = _check_ev(
        build_profile(pd.DataFrame({"v": ref})),
        pd.DataFrame({"v": cur}),
        DriftConfig(overrides={"v": ColumnOverride(method="psi")}),
    )
    edges = np.quantile(ref, np.arange(1, 10) / 10, method="inverted_cdf")
    r = np.bincount(np.searchsorted(edges, ref, side="left"), minlength=10) / ref.size
    c = np.bincount(np.searchsorted(edges, cur, side="left"), minlength=10) / cur.size
    expected = float(np.sum((c - r) * np.log(c / r)))
    col = _col(report, "v")
    assert col.score == pytest.approx(expected, abs=1e-9)
    assert col.drifted


def test_bounded_sample_agrees_with_raw_data_tests() -> None:
    rng = np.random.default_rng(23)
    ref = rng.normal(0, 1, 200_000)
    profile = build_profile(pd.DataFrame({"v": ref}))
    assert not profile.columns["v"].sample_exact
    for shift, drifted in ((0.0, False), (0.05, False), (0.3, True)):
        cur = rng.normal(shift, 1, 20_000)
        report = _check_ev(profile, pd.DataFrame({"v": cur}))
        col = _col(report, "v")
        raw = stats.wasserstein_distance(ref, cur) / np.std(ref)
        assert col.score == pytest.approx(raw, abs=0.01)
        assert col.drifted is drifted
        ks = _col(
            _check_ev(
                profile, pd.DataFrame({"v": cur}), DriftConfig(overrides={"v": ColumnOverride(method="ks")})
            ),
            "v",
        )
        raw_ks = stats.ks_2samp(ref, cur)
        if raw_ks.pvalue < 1e-6 or raw_ks.pvalue > 0.2:  # clear cases: the verdicts must agree
            assert ks.drifted is bool(raw_ks.pvalue < 0.05)


# --- default test selection (Evidently's rule) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "count", "n_values", "method"),
    [
        ("numeric", 1000, 6, "ks"),
        ("numeric", 1000, 5, "chisquare"),
        ("numeric", 1000, 2, "z"),
        ("categorical", 1000, 3, "chisquare"),
        ("categorical", 1000, 2, "z"),
        ("binary", 1000, 2, "z"),
        ("binary", 1000, 3, "chisquare"),
        ("numeric", 1001, 6, "wasserstein"),
        ("numeric", 1001, 5, "jensenshannon"),
        ("categorical", 1001, 50, "jensenshannon"),
        ("binary", 1001, 2, "jensenshannon"),
    ],
)
def test_default_method_follows_evidently(kind: str, count: int, n_values: int, method: str) -> None:
    col = ColumnProfile(kind=ColumnKind(kind), count=count, missing=0, missing_rate=0.0, n_unique=n_values)
    assert default_method(col, n_values) == method


def test_discrete_numeric_column_counts_current_values_in_n_values() -> None:
    rng = np.random.default_rng(30)
    ref = pd.DataFrame({"k": rng.integers(0, 4, 500).astype(float)})
    profile = build_profile(ref, {"k": "numeric"})
    same = _check_ev(profile, pd.DataFrame({"k": rng.integers(0, 4, 300).astype(float)}))
    assert _col(same, "k").method == "chisquare"
    wider = _check_ev(profile, pd.DataFrame({"k": rng.integers(0, 8, 300).astype(float)}))
    assert _col(wider, "k").method == "ks"


# --- dataset verdict ---------------------------------------------------------------------------------------------


def test_drift_share_uses_greater_or_equal() -> None:
    rng = np.random.default_rng(40)
    ref = pd.DataFrame({f"x{i}": rng.normal(0, 1, 3000) for i in range(4)})
    cur = pd.DataFrame({f"x{i}": rng.normal(1.0 if i < 2 else 0.0, 1, 2000) for i in range(4)})
    profile = build_profile(ref)
    report = _check_ev(profile, cur)
    assert report.drifted_columns == ["x0", "x1"]
    assert report.drift_share == 0.5
    assert report.verdict == "drift" and report.dataset_drift
    assert _check_ev(profile, cur, DriftConfig(drift_share=0.75)).verdict == "no_drift"


# --- edge cases --------------------------------------------------------------------------------------------------


def test_tiny_window_is_insufficient_data_not_a_verdict() -> None:
    rng = np.random.default_rng(50)
    profile = build_profile(_mixed(3000, rng))
    report = _check_ev(profile, _mixed(10, rng, shift=5.0))
    assert report.verdict == "insufficient_data"
    assert not report.dataset_drift
    assert report.insufficient_columns == ["num", "cat", "bin"]
    assert all(c.status == "insufficient_data" and c.score is None for c in report.columns)


def test_all_missing_current_column_is_reported_through_the_missing_rule() -> None:
    rng = np.random.default_rng(51)
    profile = build_profile(_mixed(3000, rng))
    current = _mixed(500, rng)
    current["num"] = np.nan
    current = current.drop(columns=["cat"])  # a feature the clients stopped sending
    report = _check_ev(profile, current)
    for name in ("num", "cat"):
        col = _col(report, name)
        assert col.status == "all_missing"
        assert col.drifted and col.missing_drifted and col.score is None
    assert report.verdict == "drift"


def test_mostly_missing_current_column() -> None:
    rng = np.random.default_rng(52)
    profile = build_profile(_mixed(3000, rng))
    current = _mixed(500, rng)
    current.loc[current.index[10:], "num"] = np.nan
    col = _col(_check_ev(profile, current), "num")
    assert col.status == "mostly_missing" and col.drifted


def test_constant_reference_column_has_defined_outcomes() -> None:
    for n in (500, 5000):  # small (z-test) and large (Jensen-Shannon) references
        profile = build_profile(pd.DataFrame({"c": np.full(n, 3.0)}), {"c": "numeric"})
        assert profile.columns["c"].std == 0.0
        same = _col(_check_ev(profile, pd.DataFrame({"c": np.full(200, 3.0)})), "c")
        assert same.status == "ok" and not same.drifted
        assert same.score in (0.0, 1.0)
        moved = _col(_check_ev(profile, pd.DataFrame({"c": np.full(200, 4.0)})), "c")
        assert moved.drifted
        spread = _col(_check_ev(profile, pd.DataFrame({"c": np.linspace(2, 4, 200)})), "c")
        assert spread.drifted and spread.score is not None and np.isfinite(spread.score)


def test_reference_without_values_is_not_evaluated() -> None:
    ref = pd.DataFrame({"x": [np.nan] * 100, "y": np.arange(100.0)})
    profile = build_profile(ref, {"x": "numeric", "y": "numeric"})
    report = _check_ev(profile, pd.DataFrame({"x": np.arange(50.0), "y": np.arange(50.0)}))
    assert _col(report, "x").status == "insufficient_data"
    assert report.number_of_columns == 1


def test_truncated_categories_fold_into_other() -> None:
    rng = np.random.default_rng(53)
    ref = pd.DataFrame({"city": rng.choice([f"c{i}" for i in range(300)], 20_000)})
    profile = build_profile(ref, top_k=50)
    cur = pd.DataFrame({"city": rng.choice([f"c{i}" for i in range(300)], 5_000)})
    col = _col(_check_ev(profile, cur), "city")
    assert col.unseen_categories is None
    assert not col.drifted


def test_report_never_contains_nan_or_infinity() -> None:
    rng = np.random.default_rng(54)
    ref = _mixed(800, rng)
    ref["const"] = 1.0
    cur = _mixed(300, rng, shift=3)
    cur["const"] = np.linspace(0, 100, 300)
    cur.loc[:50, "cat"] = "new"
    text = _check_ev(build_profile(ref), cur).to_json()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text)["verdict"] == "drift"


def test_non_numeric_live_values_count_as_missing() -> None:
    rng = np.random.default_rng(55)
    profile = build_profile(_mixed(2000, rng))
    current = _mixed(400, rng).astype({"num": object})
    current.loc[current.index[:200], "num"] = "oops"
    col = _col(_check_ev(profile, current), "num")
    assert col.missing_rate_current == pytest.approx(0.5) and col.missing_drifted


def test_configuration_errors_are_explicit() -> None:
    rng = np.random.default_rng(56)
    profile = build_profile(_mixed(500, rng))
    current = _mixed(100, rng)
    with pytest.raises(DriftConfigError, match="not in the reference profile"):
        _check_ev(profile, current, DriftConfig(overrides={"nope": ColumnOverride(method="psi")}))
    with pytest.raises(DriftConfigError, match="needs a numeric column"):
        _check_ev(profile, current, DriftConfig(overrides={"cat": ColumnOverride(method="wasserstein")}))
    report = _check_ev(
        profile, current, DriftConfig(columns=["cat"], overrides={"cat": ColumnOverride(threshold=1e-300)})
    )
    assert [c.column for c in report.columns] == ["cat"]
    assert report.columns[0].threshold == 1e-300


def test_camel_case_config_from_a_monitor_spec() -> None:
    config = DriftConfig.model_validate(
        {"driftShare": 0.3, "minRows": 100, "overrides": {"num": {"method": "psi", "threshold": 0.2}}}
    )
    assert config.drift_share == 0.3 and config.min_rows == 100
    assert config.overrides["num"].method == "psi"


@pytest.mark.parametrize("seed", range(25))
def test_awkward_random_data_always_gives_a_finite_explained_report(seed: int) -> None:
    rng = np.random.default_rng(seed)
    shapes = ["constant", "some_nan", "some_inf", "few_values", "all_nan", "categories"]

    def column(shape: str, n: int, *, current: bool) -> pd.Series:
        if shape == "constant":
            return pd.Series(np.full(n, 1.5 if current and rng.random() < 0.5 else 2.5))
        if shape == "some_nan":
            values = rng.normal(size=n)
            values[rng.random(n) < rng.random()] = np.nan
            return pd.Series(values)
        if shape == "some_inf":
            values = rng.normal(size=n)
            values[rng.random(n) < 0.1] = np.inf
            return pd.Series(values)
        if shape == "few_values":
            return pd.Series(rng.integers(0, rng.integers(1, 8), n).astype(float))
        if shape == "all_nan":
            return pd.Series(np.full(n, np.nan))
        labels = np.array(["a", "b", "z" if current else "c", None], dtype=object)
        return pd.Series(rng.choice(labels, n), dtype=object)

    picked = {f"k{i}": shapes[int(rng.integers(0, len(shapes)))] for i in range(6)}
    n_ref, n_cur = int(rng.integers(1, 3000)), int(rng.integers(0, 500))
    ref = pd.DataFrame({name: column(shape, n_ref, current=False) for name, shape in picked.items()})
    cur = pd.DataFrame({name: column(shape, n_cur, current=True) for name, shape in picked.items()})
    schema = {name: "categorical" if shape == "categories" else "numeric" for name, shape in picked.items()}
    report = _check_ev(build_profile(ref, schema), cur)
    text = report.to_json()
    assert "NaN" not in text and "Infinity" not in text
    for col in report.columns:
        if col.status == "ok":
            assert col.score is not None and np.isfinite(col.score) and col.method is not None
        else:
            assert col.score is None and col.message
    assert report.verdict in ("drift", "no_drift", "insufficient_data")
