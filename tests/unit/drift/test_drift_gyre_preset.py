"""The default preset (gyre): significance corrected across columns, a minimum effect, and the defects it fixes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from gyre.drift.check import (
    ColumnDrift,
    ColumnOverride,
    DriftConfig,
    DriftConfigError,
    DriftReport,
    check_frame,
)
from gyre.drift.profile import TAIL_BUCKETS, build_profile


def _col(report: DriftReport, name: str) -> ColumnDrift:
    return next(c for c in report.columns if c.column == name)


def _mixed(n: int, rng: np.random.Generator) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "num": rng.normal(0.0, 1.0, n),
            "skewed": rng.lognormal(0.0, 0.7, n),
            "count": rng.poisson(3.0, n),
            "cat": rng.choice(["a", "b", "c", "d"], n, p=[0.4, 0.3, 0.2, 0.1]),
            "bin": rng.choice(["yes", "no"], n, p=[0.3, 0.7]),
            "ids": rng.choice([f"id{i}" for i in range(400)], n),
        }
    )


BOTH_PRESETS = [DriftConfig(), DriftConfig(preset="evidently")]


# --- the three defects --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("config", BOTH_PRESETS, ids=["gyre", "evidently"])
def test_unseen_categories_dominating_the_window_are_drift(config: DriftConfig) -> None:
    rng = np.random.default_rng(1)
    profile = build_profile(pd.DataFrame({"c": rng.choice(["a", "b", "c"], 5000)}))
    current = pd.DataFrame({"c": np.where(rng.random(1000) < 0.7, rng.choice(["x", "y"], 1000), "a")})
    col = _col(check_frame(profile, current, config), "c")
    assert col.drifted and col.value_drifted
    assert col.unseen_categories == 2 and col.unseen_share == pytest.approx(0.7, abs=0.05)


@pytest.mark.parametrize("config", BOTH_PRESETS, ids=["gyre", "evidently"])
def test_a_high_cardinality_reference_still_sees_a_window_of_three_new_values(config: DriftConfig) -> None:
    # 300,000 distinct reference values are cut to the top 200; the rest are kept as hashed tail buckets.
    profile = build_profile(pd.DataFrame({"c": [f"user-{i}" for i in range(300_000)]}))
    assert profile.columns["c"].truncated and len(profile.columns["c"].tail_counts or []) == TAIL_BUCKETS
    current = pd.DataFrame({"c": np.random.default_rng(2).choice(["new-a", "new-b", "new-c"], 1000)})
    col = _col(check_frame(profile, current, config), "c")
    assert col.drifted, col
    assert col.effect is not None and col.effect > 0.9  # nearly all the mass moved
    if config.preset == "evidently":
        assert col.method == "jensenshannon" and col.score is not None and col.score > 0.5  # was 0.008


@pytest.mark.parametrize(
    ("reference", "current_rows"),
    [
        ([f"v{i}" for i in range(1000)], 30),  # truncated small reference: chi-squared used to give p = 0.36
        (["a", "b", "c"] * 300, 30),  # small reference, nothing truncated
        (["a", "b", "c"] * 30_000, 5000),  # large reference
    ],
    ids=["truncated-1000", "small-900", "large-90000"],
)
@pytest.mark.parametrize("config", BOTH_PRESETS, ids=["gyre", "evidently"])
def test_a_total_change_of_vocabulary_is_drift(
    reference: list[str], current_rows: int, config: DriftConfig
) -> None:
    profile = build_profile(pd.DataFrame({"c": reference}))
    current = pd.DataFrame({"c": np.random.default_rng(3).choice(["x", "y", "z"], current_rows)})
    col = _col(check_frame(profile, current, config), "c")
    assert col.drifted and col.value_drifted, col
    assert col.effect == pytest.approx(1.0, abs=0.02)


def test_hashed_tail_buckets_hold_their_level_on_a_stable_high_cardinality_column() -> None:
    flagged = 0
    for seed in range(30):
        rng = np.random.default_rng(100 + seed)
        ids = np.array([f"id{i}" for i in range(3000)])
        profile = build_profile(pd.DataFrame({"c": rng.choice(ids, 20_000)}))
        col = _col(check_frame(profile, pd.DataFrame({"c": rng.choice(ids, 2000)})), "c")
        assert col.pvalue is not None
        flagged += col.pvalue < 0.05
    # Uncorrected p-values of a calibrated test: about 5% below 0.05 (99.9% binomial band).
    assert flagged <= stats.binom.ppf(0.999, 30, 0.05)


# --- the rule -----------------------------------------------------------------------------------------------------


def test_default_preset_reports_a_test_a_p_value_and_an_effect_for_every_column() -> None:
    rng = np.random.default_rng(4)
    report = check_frame(build_profile(_mixed(5000, rng)), _mixed(1000, rng))
    assert report.preset == "gyre" and report.alpha == 0.05
    methods = {c.column: c.method for c in report.columns}
    assert methods == {
        "num": "ks_welch",
        "skewed": "ks_welch",
        "count": "chisquare",
        "cat": "chisquare",
        "bin": "chisquare",
        "ids": "chisquare",
    }
    for col in report.columns:
        assert col.pvalue is not None and col.pvalue_adjusted is not None and col.effect is not None
        assert col.effect_measure == ("wasserstein_sd" if col.method == "ks_welch" else "tvd")
        assert col.score == col.pvalue_adjusted and col.threshold == 0.05


def test_adjusted_p_values_are_benjamini_hochberg_over_every_test_of_the_check() -> None:
    rng = np.random.default_rng(5)
    ref = _mixed(4000, rng)
    cur = _mixed(800, rng)
    cur["num"] += 0.15
    cur.loc[rng.random(800) < 0.1, "cat"] = None
    report = check_frame(build_profile(ref), cur)
    family = [c.pvalue for c in report.columns] + [c.missing_pvalue for c in report.columns]
    expected = stats.false_discovery_control(np.asarray(family, dtype=float))
    got = [c.pvalue_adjusted for c in report.columns] + [c.missing_pvalue_adjusted for c in report.columns]
    np.testing.assert_allclose(np.asarray(got, dtype=float), expected, rtol=1e-12)
    assert _col(report, "num").drifted and _col(report, "cat").missing_drifted


def test_a_significant_change_below_the_minimum_effect_is_not_drift() -> None:
    rng = np.random.default_rng(6)
    n = 400_000
    profile = build_profile(pd.DataFrame({"x": rng.normal(0.0, 1.0, n)}))
    col = _col(check_frame(profile, pd.DataFrame({"x": rng.normal(0.012, 1.0, n)})), "x")
    assert (
        col.pvalue_adjusted is not None and col.pvalue_adjusted < 0.05
    )  # 0.012 sd is visible at this size...
    assert (
        col.effect is not None and col.effect < col.effect_threshold == 0.02
    )  # ...but below the minimum effect
    assert not col.drifted


@pytest.mark.parametrize(
    ("name", "change"),
    [
        ("mean shift 0.05 sd", lambda f, rng: f.assign(num=f["num"] + 0.05)),
        ("scale x1.2", lambda f, rng: f.assign(num=f["num"] * 1.2)),
        ("share +3 points", lambda f, rng: f.assign(cat=np.where(rng.random(len(f)) < 0.05, "a", f["cat"]))),
        (
            "new category on 5%",
            lambda f, rng: f.assign(cat=np.where(rng.random(len(f)) < 0.05, "new", f["cat"])),
        ),
        (
            "missing +5 points",
            lambda f, rng: f.assign(num=np.where(rng.random(len(f)) < 0.05, np.nan, f["num"])),
        ),
    ],
)
def test_small_planted_changes_are_caught_at_100k_by_10k(name: str, change: object) -> None:
    rng = np.random.default_rng(7)
    profile = build_profile(_mixed(100_000, rng))
    current = change(_mixed(10_000, rng), rng)  # type: ignore[operator]
    report = check_frame(profile, current)
    column = "cat" if "categ" in name or "share" in name else "num"
    assert report.drifted_columns == [column], (
        name,
        [(c.column, c.pvalue_adjusted, c.effect) for c in report.columns],
    )


def test_false_positive_rate_per_column_stays_within_alpha_plus_two_points_on_small_tables() -> None:
    seeds = 40
    hits = 0
    total = 0
    for seed in range(seeds):
        rng = np.random.default_rng(1000 + seed)
        report = check_frame(build_profile(_mixed(1000, rng)), _mixed(1000, rng))
        hits += report.number_of_drifted_columns
        total += report.number_of_columns
    assert hits / total <= 0.07, f"{hits} false alarms in {total} stable columns"


def test_missing_counts_as_drift_false_reports_the_rise_without_a_drift() -> None:
    rng = np.random.default_rng(8)
    profile = build_profile(_mixed(5000, rng))
    current = _mixed(2000, rng)
    current.loc[rng.random(2000) < 0.3, "skewed"] = np.nan
    strict = _col(check_frame(profile, current), "skewed")
    relaxed = _col(check_frame(profile, current, DriftConfig(missing_counts_as_drift=False)), "skewed")
    assert strict.drifted and strict.missing_drifted
    assert relaxed.missing_drifted and not relaxed.drifted


def test_a_per_column_override_is_decided_by_its_threshold_outside_the_correction() -> None:
    rng = np.random.default_rng(9)
    profile = build_profile(_mixed(5000, rng))
    current = _mixed(1000, rng)
    config = DriftConfig(overrides={"num": ColumnOverride(method="wasserstein", threshold=1e-6)})
    report = check_frame(profile, current, config)
    num = _col(report, "num")
    assert num.method == "wasserstein" and num.drifted and num.pvalue_adjusted is None
    assert num.effect_threshold is None
    assert all(c.pvalue_adjusted is not None for c in report.columns if c.column != "num")


def test_each_column_carries_the_distributions_a_report_draws() -> None:
    rng = np.random.default_rng(10)
    report = check_frame(build_profile(_mixed(5000, rng)), _mixed(1000, rng))
    for col in report.columns:
        chart = col.chart
        assert chart is not None
        assert chart.kind == ("histogram" if col.method == "ks_welch" else "bars")
        assert len(chart.labels) == len(chart.reference) == len(chart.current)
        assert sum(chart.reference) == pytest.approx(1.0, abs=1e-3)
        assert sum(chart.current) == pytest.approx(1.0, abs=1e-3)
    assert len(_col(report, "ids").chart.labels) == 21  # type: ignore[union-attr]  # top 20 + the rest


def test_a_features_minimum_effect_overrides_the_default_floor_in_both_directions() -> None:
    rng = np.random.default_rng(11)
    profile = build_profile(_mixed(100_000, rng))
    current = _mixed(10_000, rng).assign(num=lambda f: f["num"] + 0.1)  # 0.1 sd: drift by default
    default = check_frame(profile, current)
    assert _col(default, "num").drifted and _col(default, "num").effect_threshold == 0.02
    # A team that retrains only for a shift of 0.2 sd sets a higher floor: significant, reported, not drift.
    raised = check_frame(profile, current, DriftConfig(overrides={"num": ColumnOverride(min_effect=0.2)}))
    num = _col(raised, "num")
    assert num.pvalue_adjusted is not None and num.pvalue_adjusted < 0.05
    assert num.effect_threshold == 0.2 and not num.drifted and raised.drifted_columns == []
    # A lower floor on a categorical column lets a small but significant change through.
    shifted = _mixed(100_000, rng)
    shifted["cat"] = np.where(rng.random(100_000) < 0.015, "a", shifted["cat"])  # "a" +0.9 points
    assert "cat" not in check_frame(profile, shifted).drifted_columns
    lowered = check_frame(profile, shifted, DriftConfig(overrides={"cat": ColumnOverride(min_effect=0.005)}))
    assert lowered.drifted_columns == ["cat"] and _col(lowered, "cat").effect_threshold == 0.005


def test_a_features_minimum_missing_rise_overrides_the_default() -> None:
    rng = np.random.default_rng(12)
    profile = build_profile(_mixed(100_000, rng))
    current = _mixed(10_000, rng)
    current.loc[rng.random(10_000) < 0.05, "skewed"] = np.nan  # 5 points: drift by default (2 points)
    assert _col(check_frame(profile, current), "skewed").drifted
    config = DriftConfig(overrides={"skewed": ColumnOverride(missing_min_increase=0.1)})
    col = _col(check_frame(profile, current, config), "skewed")
    assert col.missing_min_increase == 0.1 and not col.missing_drifted and not col.drifted


def test_a_minimum_effect_above_one_on_a_categorical_column_is_a_configuration_error() -> None:
    rng = np.random.default_rng(13)
    profile = build_profile(_mixed(1000, rng))
    with pytest.raises(DriftConfigError, match="total variation"):
        check_frame(profile, _mixed(500, rng), DriftConfig(overrides={"cat": ColumnOverride(min_effect=1.5)}))


def test_the_report_shows_the_floors_a_feature_was_held_to() -> None:
    from gyre.drift.html import render_html

    rng = np.random.default_rng(14)
    profile = build_profile(_mixed(5000, rng))
    overrides = {"num": ColumnOverride(min_effect=0.25, missing_min_increase=0.07)}
    report = check_frame(profile, _mixed(1000, rng), DriftConfig(overrides=overrides))
    json_col = next(c for c in json.loads(report.to_json())["columns"] if c["column"] == "num")
    assert (json_col["effectThreshold"], json_col["missingMinIncrease"]) == (0.25, 0.07)
    assert _col(report, "cat").effect_threshold == 0.01 and _col(report, "cat").missing_min_increase == 0.02
    page = render_html(report)
    assert "minimum 0.250" in page and "a rise of 0.070 counts" in page
