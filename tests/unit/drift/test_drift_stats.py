"""The numpy statistics agree with scipy's reference implementations, including ties, zeros and tails."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from gyre.drift import stats as gstats


@pytest.mark.parametrize("seed", range(20))
def test_wasserstein_matches_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    u = rng.normal(0, 1, rng.integers(1, 500))
    v = rng.standard_t(3, rng.integers(1, 500)) + rng.normal()
    if seed % 3 == 0:  # ties and discrete support
        u, v = np.round(u), np.round(v)
    assert gstats.wasserstein_distance(u, v) == pytest.approx(stats.wasserstein_distance(u, v), abs=1e-9)
    assert gstats.wasserstein_normed(u, v, 0.0) == pytest.approx(
        stats.wasserstein_distance(u, v) / 0.001, rel=1e-9
    )


@pytest.mark.parametrize("seed", range(20))
def test_jensenshannon_matches_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 30))
    p = rng.integers(0, 50, k).astype(float)
    q = rng.integers(0, 50, k).astype(float)
    p[0], q[-1] = 0.0, 0.0  # a category missing on each side
    p[1] += 1
    q[0] += 1
    assert gstats.jensenshannon_distance(p, q) == pytest.approx(
        jensenshannon(p / p.sum(), q / q.sum()), abs=1e-9
    )
    assert gstats.jensenshannon_distance(p, p) == 0.0


@pytest.mark.parametrize("seed", range(20))
def test_chisquare_matches_chi2_contingency(seed: int) -> None:
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 12))
    ref = rng.integers(1, 200, k).astype(float)
    cur = rng.integers(0, 200, k).astype(float)
    expected = stats.chi2_contingency(np.vstack([ref, cur]), correction=False).pvalue
    assert gstats.chisquare_pvalue(ref, cur) == pytest.approx(expected, abs=1e-9)


def test_chisquare_edge_cases() -> None:
    assert gstats.chisquare_pvalue(np.array([10.0, 0.0]), np.array([5.0, 0.0])) == 1.0
    # A category the reference never saw is an ordinary cell: many such values are significant.
    assert gstats.chisquare_pvalue(np.array([500.0, 500.0, 0.0]), np.array([100.0, 100.0, 80.0])) < 1e-12


@pytest.mark.parametrize(
    ("a", "b", "c", "d"), [(30, 70, 45, 55), (500, 500, 480, 520), (1, 999, 0, 50), (3, 0, 0, 3)]
)
def test_proportion_z_test_is_the_uncorrected_2x2_chi_squared(a: int, b: int, c: int, d: int) -> None:
    expected = stats.chi2_contingency([[a, b], [c, d]], correction=False).pvalue
    z = gstats.proportions_z_pvalue(np.array([a, b], dtype=float), np.array([c, d], dtype=float))
    assert z == pytest.approx(expected, abs=1e-9)


def test_proportion_z_test_single_category_is_identical() -> None:
    assert gstats.proportions_z_pvalue(np.array([10.0, 0.0]), np.array([7.0, 0.0])) == 1.0


def test_proportion_increase_is_one_sided() -> None:
    up = gstats.proportion_increase_pvalue(50, 1000, 80, 1000)
    down = gstats.proportion_increase_pvalue(80, 1000, 50, 1000)
    pooled = 130 / 2000
    z = (0.08 - 0.05) / np.sqrt(pooled * (1 - pooled) * (2 / 1000))
    assert up == pytest.approx(stats.norm.sf(z), abs=1e-12)
    assert down == pytest.approx(1 - up, abs=1e-12)
    assert gstats.proportion_increase_pvalue(0, 100, 0, 100) == 1.0
    assert gstats.proportion_increase_pvalue(0, 0, 5, 10) == 1.0


def test_ks_with_a_stratified_sample_tracks_the_raw_test() -> None:
    rng = np.random.default_rng(5)
    ref = np.sort(rng.normal(0, 1, 100_000))
    sample = ref[np.ceil((np.arange(5000) + 0.5) / 5000 * ref.size).astype(int) - 1]
    for shift in (0.0, 0.02, 0.1):
        cur = rng.normal(shift, 1, 20_000)
        raw = stats.ks_2samp(ref, cur)
        assert gstats.ks_statistic(np.sort(sample), np.sort(cur)) == pytest.approx(
            raw.statistic, abs=1e-4 + 1e-9
        )
        p = gstats.ks_pvalue(sample, cur, n_ref=ref.size, sample_exact=False)
        assert 0.0 <= p <= 1.0
        if raw.pvalue < 1e-6:
            assert p < 1e-5


def test_psi_fill_rule() -> None:
    filled = gstats.fill_zeros(np.array([0.0, 0.5, 0.5]))
    assert filled[0] == 1e-4
    tiny = gstats.fill_zeros(np.array([0.0, 0.00005, 0.99995]))
    assert tiny[0] == pytest.approx(0.00005 / 1e6)
    assert gstats.psi(np.array([0.5, 0.5]), np.array([50.0, 50.0])) == 0.0
    assert np.isfinite(gstats.psi(np.array([0.5, 0.5, 0.0]), np.array([10.0, 10.0, 80.0])))


@pytest.mark.parametrize("seed", range(5))
def test_benjamini_hochberg_gives_scipys_adjusted_p_values(seed: int) -> None:
    from scipy.stats import false_discovery_control

    from gyre.drift.stats import benjamini_hochberg

    rng = np.random.default_rng(seed)
    p = np.concatenate([rng.random(30), rng.random(10) * 1e-4, [1.0, 0.0, 0.5, 0.5]])
    np.testing.assert_allclose(benjamini_hochberg(p.tolist()), false_discovery_control(p), rtol=1e-12)
    assert benjamini_hochberg([]) == []


@pytest.mark.parametrize("d", [0.004, 0.01, 0.02, 0.05])
def test_large_sample_ks_p_value_is_the_limiting_law_and_close_to_scipys(d: float) -> None:
    from scipy import stats as sstats

    from gyre.drift.stats import ks_pvalue

    # A reference sample whose CDF steps are known: current values shifted so the KS distance is about d.
    ref = np.linspace(0.0, 1.0, 5000)
    cur = np.linspace(d, 1.0 + d, 100_000)
    n_ref = 1_000_000
    p = ks_pvalue(ref, cur, n_ref=n_ref, sample_exact=False)
    en = n_ref * cur.size / (n_ref + cur.size)
    stat = ks_statistic_of(ref, cur)
    assert p == pytest.approx(float(sstats.kstwobign.sf(stat * np.sqrt(en))), rel=1e-9)
    exact = float(sstats.kstwo.sf(stat, round(en)))
    # Conservative everywhere, and within 5% where a p-value can matter (far tails differ more, harmlessly).
    assert p >= exact and (exact < 1e-12 or p / exact < 1.05)


def ks_statistic_of(ref: np.ndarray, cur: np.ndarray) -> float:
    from gyre.drift.stats import ks_statistic

    return ks_statistic(np.sort(ref), np.sort(cur))


@pytest.mark.parametrize("df", [1, 2, 3, 4, 9, 49, 199, 455, 2000])
def test_chi_squared_tail_matches_scipys_chdtrc(df: int) -> None:
    from scipy.special import chdtrc

    for x in np.concatenate([[0.0, 1e-8, 0.5], np.linspace(0.1, 4, 25) * df, [df + 500.0, 50 * df + 1000.0]]):
        expected = float(chdtrc(df, x))
        got = gstats.chi2_sf(df, float(x))
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-300), (df, x)


def test_limiting_kolmogorov_tail_matches_scipys() -> None:
    from scipy.special import kolmogorov

    for y in np.concatenate([[0.0, 1e-3, 0.2], np.linspace(0.3, 3.0, 100), [0.999999, 1.0, 5.0, 8.0, 20.0]]):
        assert gstats.kolmogorov_sf(float(y)) == pytest.approx(float(kolmogorov(y)), rel=1e-9, abs=1e-300), y


@pytest.mark.parametrize("seed", range(10))
def test_ks_statistic_matches_ks_2samp_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref = np.sort(np.round(rng.normal(0, 1, 700 + seed * 50), 1 if seed % 2 else 3))
    cur = np.sort(np.round(rng.normal(0.1 * (seed % 3), 1.1, 300 + seed * 20), 1 if seed % 2 else 3))
    assert gstats.ks_statistic(ref, cur) == pytest.approx(stats.ks_2samp(ref, cur).statistic, abs=1e-12)
