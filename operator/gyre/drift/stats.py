"""The statistics behind drift checks: vectorised numpy/scipy, on reference summaries and current arrays.

Every function returns a finite float (a p-value or a distance) for valid input: the edge cases that make the
textbook formula undefined (a single category on both sides, a category never seen in the reference, a constant
reference) have an explicit answer here, documented per function, instead of a NaN.

The tests used on large references (Wasserstein, Jensen-Shannon, PSI), the z-tests, the chi-squared tail and the
limiting Kolmogorov law are plain numpy and math, checked against scipy to 1e-9 in tests/unit/drift: importing
scipy.special costs about half a second of CPU and scipy.stats more, which a check Job pays every run. scipy.stats
is imported lazily, for KS on small or exact references only.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "KS_ASYMPTOTIC_N",
    "WASSERSTEIN_MIN_STD",
    "benjamini_hochberg",
    "chi2_sf",
    "chisquare_pvalue",
    "fill_zeros",
    "jensenshannon_distance",
    "kolmogorov_sf",
    "ks_pvalue",
    "ks_statistic",
    "proportion_increase_pvalue",
    "proportions_z_pvalue",
    "psi",
    "total_variation",
    "wasserstein_distance",
    "wasserstein_normed",
    "welch_pvalue",
]

FloatArray = np.ndarray[Any, np.dtype[np.float64]]

KS_ASYMPTOTIC_N = 10_000
"""Above this effective size the KS p-value comes from the limiting Kolmogorov distribution."""
WASSERSTEIN_MIN_STD = 0.001
"""Floor of the normaliser: a constant reference (std 0) still gives a finite, very sensitive distance."""


def ks_statistic(ref_sorted: FloatArray, cur_sorted: FloatArray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic sup |F_ref - F_cur| of two sorted samples."""
    # Both CDFs are steps at the pooled values; where they differ most is at one of the reference's values or one
    # of the current ones, so each side is evaluated at the other's points (a smaller search than the pooled one).
    n_ref, n_cur = ref_sorted.size, cur_sorted.size
    at_ref = np.abs(
        np.arange(1, n_ref + 1) / n_ref - np.searchsorted(cur_sorted, ref_sorted, side="right") / n_cur
    )
    at_cur = np.abs(
        np.searchsorted(ref_sorted, cur_sorted, side="right") / n_ref - np.arange(1, n_cur + 1) / n_cur
    )
    # At tied values arange overstates the lower index: use the last position of each run of equal values.
    return float(max(_max_at_run_ends(ref_sorted, at_ref), _max_at_run_ends(cur_sorted, at_cur)))


def _max_at_run_ends(sorted_values: FloatArray, diffs: FloatArray) -> float:
    if sorted_values.size == 0:
        return 0.0
    ends = np.empty(sorted_values.size, dtype=bool)
    ends[-1] = True
    np.not_equal(sorted_values[1:], sorted_values[:-1], out=ends[:-1])
    return float(diffs[ends].max())


def kolmogorov_sf(y: float) -> float:
    """Survival function of the limiting Kolmogorov distribution, P(K > y) (`scipy.special.kolmogorov`): the
    alternating series 2 sum (-1)^(k-1) exp(-2 k^2 y^2) for y >= 1, and 1 minus its theta-function form
    sqrt(2 pi) / y sum exp(-(2k-1)^2 pi^2 / (8 y^2)) below, where that one converges faster."""
    if y <= 0:
        return 1.0
    if y < 1.0:
        t = math.pi**2 / (8.0 * y * y)
        cdf = math.sqrt(2.0 * math.pi) / y * sum(math.exp(-((2 * k - 1) ** 2) * t) for k in range(1, 12))
        return min(1.0, max(0.0, 1.0 - cdf))
    total = math.fsum((1.0 if k % 2 else -1.0) * math.exp(-2.0 * k * k * y * y) for k in range(1, 12))
    return min(1.0, max(0.0, 2.0 * total))


def chi2_sf(df: int, x: float) -> float:
    """Upper tail of the chi-squared distribution with `df` degrees of freedom (`scipy.special.chdtrc`): the
    regularised upper incomplete gamma function Q(df / 2, x / 2), from its power series below a + 1 and from its
    continued fraction above (evaluated by the modified Lentz method), to about 1e-14."""
    if x <= 0:
        return 1.0
    a, z = df / 2.0, x / 2.0
    log_front = a * math.log(z) - z - math.lgamma(a)
    tiny = 1e-300
    if z < a + 1.0:
        term = total = 1.0 / a
        ap = a
        for _ in range(100_000):
            ap += 1.0
            term *= z / ap
            total += term
            if term < total * 1e-17:
                break
        return min(1.0, max(0.0, 1.0 - math.exp(log_front) * total))
    b = z + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, 100_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-16:
            break
    return min(1.0, max(0.0, math.exp(log_front) * h))


def ks_pvalue(ref_sample: FloatArray, current: FloatArray, *, n_ref: int, sample_exact: bool) -> float:
    """Two-sided two-sample KS p-value.

    With the whole reference at hand (`sample_exact`) this is exactly `scipy.stats.ks_2samp`. With a stratified
    reference sample the statistic comes from the sample (error <= 1 / (2 * len(sample))) and the p-value from the
    Kolmogorov distribution of the effective size n_ref * n_cur / (n_ref + n_cur) at the true sizes, which is what
    `ks_2samp` itself uses once a sample exceeds 10,000 values; above KS_ASYMPTOTIC_N, from its limiting law.
    """
    n_cur = current.size
    en = n_ref * n_cur / (n_ref + n_cur)
    if not sample_exact and en > KS_ASYMPTOTIC_N:
        # The limiting law (kstwobign.sf) spares the scipy imports (about a second per check Job) and kstwo.sf's
        # ~0.2 s per call at n ~ 1e5; its p-value is a little larger (conservative, at most ~2% relative from
        # n = 10,000 on).
        d = ks_statistic(_sorted(ref_sample), _sorted(current))
        return kolmogorov_sf(d * math.sqrt(en))
    from scipy import stats as sstats

    if sample_exact:
        return float(sstats.ks_2samp(ref_sample, current).pvalue)
    d = ks_statistic(np.sort(ref_sample), np.sort(current))
    return float(np.clip(sstats.kstwo.sf(d, np.round(en)), 0.0, 1.0))


def wasserstein_normed(ref_sample: FloatArray, current: FloatArray, ref_std: float) -> float:
    """Wasserstein-1 distance divided by the reference standard deviation (floored at 0.001, as Evidently does)."""
    norm = max(ref_std, WASSERSTEIN_MIN_STD)
    return wasserstein_distance(ref_sample, current) / norm


def _sorted(values: FloatArray) -> FloatArray:
    """`values` sorted; returned as is when already sorted (the profile's sample, a cached current column)."""
    if values.size < 2 or bool(np.all(values[1:] >= values[:-1])):
        return values
    return np.sort(values)


def wasserstein_distance(u: FloatArray, v: FloatArray) -> float:
    """Wasserstein-1 distance of two equally weighted samples: the integral of |F_u - F_v| (as
    scipy.stats.wasserstein_distance)."""
    u_sorted = _sorted(u)
    v_sorted = _sorted(v)
    # Two sorted runs: the stable sort (a merge sort) merges them in one pass.
    grid = np.sort(np.concatenate([u_sorted, v_sorted]), kind="stable")
    widths = np.diff(grid)
    u_cdf = np.searchsorted(u_sorted, grid[:-1], side="right") / u_sorted.size
    v_cdf = np.searchsorted(v_sorted, grid[:-1], side="right") / v_sorted.size
    return float(np.sum(np.abs(u_cdf - v_cdf) * widths))


def chisquare_pvalue(ref_counts: FloatArray, cur_counts: FloatArray) -> float:
    """Two-sample chi-squared test of homogeneity of two aligned count vectors (the 2 x K contingency table,
    `scipy.stats.chi2_contingency` without continuity correction).

    Evidently instead runs a goodness-of-fit test with the reference frequencies as the truth, which ignores the
    reference's own sampling noise: with 600 reference and 400 current rows from the same 4-category distribution it
    flags about 20% of columns at alpha 0.05. The homogeneity test holds its level (tests/unit/drift). Categories
    absent on both sides are dropped; a single remaining category means identical distributions: p = 1. A category
    the reference never saw is an ordinary cell of the table.
    """
    ref = np.asarray(ref_counts, dtype=float)
    cur = np.asarray(cur_counts, dtype=float)
    keep = (ref > 0) | (cur > 0)
    if np.count_nonzero(keep) <= 1 or ref.sum() == 0 or cur.sum() == 0:
        return 1.0
    table = np.vstack([ref[keep], cur[keep]])
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    return chi2_sf(table.shape[1] - 1, statistic)


def jensenshannon_distance(ref_counts: FloatArray, cur_counts: FloatArray) -> float:
    """Jensen-Shannon distance (natural log, in [0, sqrt(ln 2)]) between two aligned count vectors.

    Defined for categories missing on either side, so unseen categories need no special case.
    """
    p = np.asarray(ref_counts, dtype=float)
    q = np.asarray(cur_counts, dtype=float)
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2
    kl_pm = np.sum(p[p > 0] * np.log(p[p > 0] / m[p > 0]))
    kl_qm = np.sum(q[q > 0] * np.log(q[q > 0] / m[q > 0]))
    # Rounding can leave a tiny negative for identical inputs.
    return math.sqrt(max(float(kl_pm + kl_qm) / 2, 0.0))


def proportions_z_pvalue(ref_counts: FloatArray, cur_counts: FloatArray) -> float:
    """Two-sided z-test for the difference of two independent proportions: the share of the first category
    (arrays aligned and sorted by category) in the reference against the current.

    When the pooled proportion is 0 or 1 (one category on both sides) the distributions are identical: p = 1.
    """
    ref = np.asarray(ref_counts, dtype=float)
    cur = np.asarray(cur_counts, dtype=float)
    n1, n2 = ref.sum(), cur.sum()
    p1, p2 = ref[0] / n1, cur[0] / n2
    pooled = (ref[0] + cur[0]) / (n1 + n2)
    var = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    if var <= 0:
        return 1.0
    z = (p1 - p2) / math.sqrt(var)
    # Two-sided normal tail 2 * sf(|z|) = erfc(|z| / sqrt 2), exact in the far tail too.
    return math.erfc(abs(z) / math.sqrt(2))


def fill_zeros(fractions: FloatArray) -> FloatArray:
    """Replace empty-bin fractions so the log in PSI stays finite: 1e-4, or min / 1e6 when the smallest non-zero
    fraction is itself <= 1e-4 (the rule Evidently uses)."""
    out = np.array(fractions, dtype=float)
    nonzero = out[out > 0]
    if nonzero.size == 0:
        return out
    smallest = float(nonzero.min())
    out[out == 0] = smallest / 1e6 if smallest <= 1e-4 else 1e-4
    return out


def psi(ref_fractions: FloatArray, cur_counts: FloatArray) -> float:
    """Population stability index sum((c - r) * ln(c / r)) over aligned bins (empty bins filled, see fill_zeros)."""
    ref = fill_zeros(np.asarray(ref_fractions, dtype=float))
    cur_raw = np.asarray(cur_counts, dtype=float)
    cur = fill_zeros(cur_raw / cur_raw.sum())
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def proportion_increase_pvalue(ref_part: int, ref_total: int, cur_part: int, cur_total: int) -> float:
    """One-sided p-value that the current proportion cur_part / cur_total is higher than the reference one
    (pooled two-proportion z-test). 1.0 when the pooled proportion is 0 or 1 or either total is 0."""
    if ref_total <= 0 or cur_total <= 0:
        return 1.0
    pooled = (ref_part + cur_part) / (ref_total + cur_total)
    var = pooled * (1 - pooled) * (1 / ref_total + 1 / cur_total)
    if var <= 0:
        return 1.0
    z = (cur_part / cur_total - ref_part / ref_total) / math.sqrt(var)
    return 0.5 * math.erfc(z / math.sqrt(2))


def welch_pvalue(ref_mean: float, ref_std: float, n_ref: int, current: FloatArray) -> float:
    """Two-sided Welch test of equal means from the reference's exact summary (mean, population std, count) and the
    current values, with the normal tail: every size it runs at (min_rows >= 30 per side) leaves the t and normal
    tails within a few percent of each other. Zero variance on both sides: p = 1 for equal means, else 0."""
    n_cur = current.size
    if n_cur == 0 or n_ref == 0:
        return 1.0
    cur_mean = float(current.mean())
    cur_var = float(current.var(ddof=1)) if n_cur > 1 else 0.0
    ref_var = ref_std**2 * n_ref / (n_ref - 1) if n_ref > 1 else 0.0
    se = math.sqrt(ref_var / n_ref + cur_var / n_cur)
    diff = abs(cur_mean - ref_mean)
    if se == 0:
        return 1.0 if diff == 0 else 0.0
    return math.erfc(diff / se / math.sqrt(2))


def total_variation(ref_counts: FloatArray, cur_counts: FloatArray) -> float:
    """Total variation distance between two aligned count vectors: the share of values that would have to move to
    turn one distribution into the other (0 to 1)."""
    p = np.asarray(ref_counts, dtype=float)
    q = np.asarray(cur_counts, dtype=float)
    return float(0.5 * np.abs(p / p.sum() - q / q.sum()).sum())


def benjamini_hochberg(pvalues: list[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values: min over k >= rank of p_(k) * m / k, capped at 1.

    The same numbers as `scipy.stats.false_discovery_control(p, method="bh")` (tests/unit/drift pins them), in
    numpy: importing scipy.stats costs about a second of CPU, which every scheduled check would pay for 5 lines.
    """
    p = np.asarray(pvalues, dtype=float)
    if p.size == 0:
        return []
    order = np.argsort(p, kind="stable")
    scaled = p[order] * p.size / np.arange(1, p.size + 1)
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    return [float(x) for x in adjusted]
