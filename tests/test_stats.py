"""The pure-Python statistics against scipy on the same numbers."""

from __future__ import annotations

import math

import ks_reference
import numpy as np
import pytest
import scipy.special as sp
import scipy.stats as ss
from scipy.spatial.distance import jensenshannon

from pytest_mlfunnel import stats

EXACT = {"rel": 1e-6, "abs": 1e-12}
ALTERNATIVES = ["two-sided", "greater", "less"]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261128)


def summary(values: np.ndarray) -> stats.GroupSummary:
    return stats.GroupSummary(len(values), float(values.mean()), float(values.var(ddof=1)))


# --------------------------------------------------------------------------- special functions
@pytest.mark.parametrize(("a", "b", "x"), [
    (0.5, 0.5, 0.3), (2.0, 3.0, 0.9), (50.0, 0.5, 0.97), (5e5, 0.5, 0.999995), (1.5, 40.0, 0.01),
])
def test_incomplete_beta_matches_scipy(a: float, b: float, x: float) -> None:
    assert stats.betainc(a, b, x) == pytest.approx(sp.betainc(a, b, x), **EXACT)


@pytest.mark.parametrize(("a", "x"), [(0.5, 0.1), (1.0, 3.0), (4.5, 2.0), (40.0, 55.0),
                                      (2000.0, 2100.0)])
def test_upper_incomplete_gamma_matches_scipy(a: float, x: float) -> None:
    assert stats.gammaincc(a, x) == pytest.approx(sp.gammaincc(a, x), **EXACT)


@pytest.mark.parametrize("df", [1.0, 2.5, 17.3, 400.0, 1e6])
@pytest.mark.parametrize("t", [-3.2, -0.4, 0.0, 1.1, 6.0])
def test_student_t_tail_matches_scipy(t: float, df: float) -> None:
    assert stats.t_sf(t, df) == pytest.approx(ss.t.sf(t, df), **EXACT)


@pytest.mark.parametrize("df", [2.0, 9.7, 1e5])
@pytest.mark.parametrize("p", [0.025, 0.9, 0.975, 0.999])
def test_student_t_quantile_matches_scipy(p: float, df: float) -> None:
    assert stats.t_ppf(p, df) == pytest.approx(ss.t.ppf(p, df), **EXACT)


# --------------------------------------------------------------------------- Welch
@pytest.mark.parametrize("alternative", ALTERNATIVES)
@pytest.mark.parametrize("sizes", [(3, 4), (250, 300), (20_000, 5_000)])
def test_welch_matches_scipy_ttest_ind(rng: np.random.Generator, alternative: str,
                                       sizes: tuple[int, int]) -> None:
    before = rng.normal(5.0, 1.0, sizes[0])
    after = rng.normal(5.1, 1.7, sizes[1])
    expected = ss.ttest_ind(after, before, equal_var=False, alternative=alternative)
    interval = expected.confidence_interval(0.9)
    result = stats.welch(summary(after), summary(before), alternative, 0.9)  # type: ignore[arg-type]
    assert result.statistic == pytest.approx(expected.statistic, **EXACT)
    assert result.df == pytest.approx(expected.df, **EXACT)
    assert result.p_value == pytest.approx(expected.pvalue, **EXACT)
    low, high = result.ci
    assert (low if low is not None else -math.inf) == pytest.approx(interval.low, **EXACT)
    assert (high if high is not None else math.inf) == pytest.approx(interval.high, **EXACT)


def test_welch_on_two_constant_groups_knows_the_difference_exactly() -> None:
    before, after = stats.GroupSummary(5, 4.0, 0.0), stats.GroupSummary(6, 4.5, 0.0)
    assert stats.welch(after, before, "greater").p_value == 0.0
    assert stats.welch(after, before, "less").p_value == 1.0
    same = stats.welch(stats.GroupSummary(6, 4.0, 0.0), before, "greater")
    assert same.p_value == 1.0
    assert same.difference == 0.0


def test_welch_needs_two_values_per_group() -> None:
    with pytest.raises(stats.StatsError, match="at least 2 values per group, got 5 and 1"):
        stats.welch(stats.GroupSummary(1, 3.0, math.nan), stats.GroupSummary(5, 3.0, 1.0))


# --------------------------------------------------------------------------- Mann-Whitney
@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_mann_whitney_normal_approximation_with_ties_matches_scipy(
        rng: np.random.Generator, alternative: str) -> None:
    before = rng.integers(0, 12, 400).astype(float)  # heavy ties
    after = rng.integers(1, 13, 350).astype(float)
    expected = ss.mannwhitneyu(after, before, alternative=alternative)
    result = stats.mann_whitney(list(after), list(before), alternative)  # type: ignore[arg-type]
    assert result.statistic == pytest.approx(expected.statistic, **EXACT)
    assert result.p_value == pytest.approx(expected.pvalue, **EXACT)


@pytest.mark.parametrize("alternative", ALTERNATIVES)
@pytest.mark.parametrize("sizes", [(5, 7), (8, 30), (3, 3)])
def test_mann_whitney_small_samples_use_the_exact_distribution_like_scipy(
        rng: np.random.Generator, alternative: str, sizes: tuple[int, int]) -> None:
    after = rng.normal(0.3, 1.0, sizes[0])
    before = rng.normal(0.0, 1.0, sizes[1])
    expected = ss.mannwhitneyu(after, before, alternative=alternative)  # method="auto": exact
    result = stats.mann_whitney(list(after), list(before), alternative)  # type: ignore[arg-type]
    assert result.p_value == pytest.approx(expected.pvalue, **EXACT)
    forced = ss.mannwhitneyu(after, before, alternative=alternative, method="asymptotic")
    assert stats.mann_whitney(list(after), list(before), alternative,  # type: ignore[arg-type]
                              method="asymptotic").p_value == pytest.approx(forced.pvalue, **EXACT)


# --------------------------------------------------------------------------- bootstrap
def test_bootstrap_is_reproducible_and_agrees_with_welch_on_normal_data(
        rng: np.random.Generator) -> None:
    before = [float(v) for v in rng.normal(10.0, 2.0, 300)]
    after = [float(v) for v in rng.normal(10.4, 2.0, 300)]
    first = stats.bootstrap(after, before, "greater", 0.95, resamples=1000, seed=7)
    again = stats.bootstrap(after, before, "greater", 0.95, resamples=1000, seed=7)
    assert first == again
    other_seed = stats.bootstrap(after, before, "greater", 0.95, resamples=1000, seed=8)
    assert other_seed.ci != first.ci
    welch = stats.welch(stats.GroupSummary.of(after), stats.GroupSummary.of(before), "greater")
    # Resampling error of a p-value near 0.01 from 1000 resamples is about 0.003.
    assert first.p_value == pytest.approx(welch.p_value, abs=0.015)
    assert first.ci[0] == pytest.approx(welch.ci[0], abs=0.1)
    assert first.ci[1] is None
    assert first.difference == pytest.approx(np.mean(after) - np.mean(before), **EXACT)


def test_bootstrap_p_value_is_never_zero(rng: np.random.Generator) -> None:
    before = list(rng.normal(0.0, 1.0, 50))
    after = list(rng.normal(5.0, 1.0, 50))
    result = stats.bootstrap(after, before, "greater", resamples=200, seed=1)
    assert result.p_value == pytest.approx(1 / 201)


# --------------------------------------------------------------------------- PSI
def psi_reference(reference: np.ndarray, current: np.ndarray, bins: int,
                  epsilon: float = 1e-4) -> float:
    """The documented formula, written directly in numpy: reference-quantile bins."""
    edges = np.unique(np.quantile(reference, np.arange(1, bins) / bins))
    r = np.bincount(np.searchsorted(edges, reference, side="right"),
                    minlength=len(edges) + 1) / len(reference)
    c = np.bincount(np.searchsorted(edges, current, side="right"),
                    minlength=len(edges) + 1) / len(current)
    r, c = np.maximum(r, epsilon), np.maximum(c, epsilon)
    return float(np.sum((c - r) * np.log(c / r)))


def bin_counts(values: np.ndarray, edges: np.ndarray) -> list[int]:
    """Counts in (< e0), [e0, e1), ..., (>= ek): the engine's histogram convention."""
    return [int(x) for x in np.bincount(np.searchsorted(edges, values, side="right"),
                                        minlength=len(edges) + 1)]


@pytest.mark.parametrize("bins", [10, 20])
def test_psi_matches_the_documented_formula(rng: np.random.Generator, bins: int) -> None:
    reference = rng.normal(40.0, 12.0, 5000)
    current = rng.normal(43.0, 12.0, 4000)
    edges = np.unique(np.quantile(reference, np.arange(1, bins) / bins))
    value = stats.psi(bin_counts(reference, edges), bin_counts(current, edges))
    assert value == pytest.approx(psi_reference(reference, current, bins), **EXACT)
    assert 0.02 < value < 0.2


def test_psi_of_identical_data_is_zero_and_an_empty_bin_stays_finite() -> None:
    assert stats.psi([10, 20, 30], [1, 2, 3]) == 0.0
    with_empty = stats.psi([10, 20, 30, 0], [10, 20, 30, 5])
    r = np.maximum(np.array([10, 20, 30, 0]) / 60, 1e-4)
    c = np.array([10, 20, 30, 5]) / 65
    assert with_empty == pytest.approx(float(np.sum((c - r) * np.log(c / r))), **EXACT)


def test_no_values_is_a_clear_error() -> None:
    with pytest.raises(stats.StatsError, match="no values to compare"):
        stats.psi([0, 0], [1, 2])


# --------------------------------------------------------------------------- JS distance
def test_js_distance_matches_scipy_jensenshannon(rng: np.random.Generator) -> None:
    reference = rng.integers(0, 100, 12)
    current = rng.integers(0, 100, 12)
    expected = jensenshannon(reference, current, base=2)
    assert stats.js_distance(list(reference), list(current)) == pytest.approx(expected, **EXACT)


def test_js_distance_with_a_category_only_in_current() -> None:
    reference, current = [50, 50, 0], [40, 40, 20]
    expected = jensenshannon(reference, current, base=2)
    assert stats.js_distance(reference, current) == pytest.approx(expected, **EXACT)
    assert stats.js_distance([1, 0], [0, 1]) == pytest.approx(1.0)


# --------------------------------------------------------------------------- KS
def test_ks_statistic_from_raw_values_matches_scipy(rng: np.random.Generator) -> None:
    reference = rng.normal(0.0, 1.0, 3000)
    current = rng.normal(0.1, 1.2, 2000)
    expected = ss.ks_2samp(reference, current)
    assert ks_reference.ks_exact_statistic(list(reference), list(current)) == pytest.approx(
        expected.statistic, **EXACT)


@pytest.mark.parametrize("shift", [0.0, 0.03, 0.3])
def test_binned_ks_is_within_its_documented_bound_of_scipy(rng: np.random.Generator,
                                                           shift: float) -> None:
    reference = rng.normal(0.0, 1.0, 30_000)
    current = rng.normal(shift, 1.0, 20_000)
    edges = np.unique(np.quantile(reference, np.arange(0, 1001) / 1000))  # >= 1000 bins
    r, c = bin_counts(reference, edges), bin_counts(current, edges)
    binned = ks_reference.ks_statistic(r, c)
    exact = ss.ks_2samp(reference, current).statistic
    bound = ks_reference.ks_binning_error(r, c)
    assert binned <= exact + 1e-12
    assert exact - binned <= bound
    assert bound < 0.005  # about 1/1000 of the reference per bin, a little more of a shifted current


def test_binned_ks_is_exact_when_every_value_has_its_own_bin(rng: np.random.Generator) -> None:
    reference = rng.integers(0, 20, 5000).astype(float)
    current = rng.integers(2, 22, 4000).astype(float)
    edges = np.unique(np.concatenate([reference, current]))
    binned = ks_reference.ks_statistic(bin_counts(reference, edges), bin_counts(current, edges))
    assert binned == pytest.approx(ss.ks_2samp(reference, current).statistic, **EXACT)


@pytest.mark.parametrize("shift", [0.0, 0.01, 0.02, 0.04])
def test_ks_p_matches_scipy_asymptotic_ks_2samp(rng: np.random.Generator, shift: float) -> None:
    reference = rng.normal(0.0, 1.0, 40_000)
    current = rng.normal(shift, 1.0, 25_000)  # > 10000 values: scipy's "auto" is asymptotic
    expected = ss.ks_2samp(reference, current)
    assert stats.ks_p(expected.statistic, 40_000, 25_000) == pytest.approx(
        expected.pvalue, rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("n", [10_001, 400_000, 5_000_000])
@pytest.mark.parametrize("z", [0.3, 0.8, 1.2, 1.8, 3.0])
def test_kolmogorov_tail_matches_scipy_kstwo(n: int, z: float) -> None:
    x = z / math.sqrt(n)
    assert stats.kolmogorov_n_sf(n, x) == pytest.approx(ss.kstwo.sf(x, n), rel=1e-6, abs=1e-7)


# --------------------------------------------------------------------------- chi-square
def test_chi2_homogeneity_matches_scipy_chi2_contingency(rng: np.random.Generator) -> None:
    reference = rng.integers(50, 500, 6)
    current = rng.integers(50, 500, 6)
    statistic, p, dof, _ = ss.chi2_contingency([reference, current], correction=False)
    ours = stats.chi2_homogeneity(list(reference), list(current))
    assert ours[0] == pytest.approx(statistic, **EXACT)
    assert ours[1] == dof
    assert ours[2] == pytest.approx(p, **EXACT)


def test_chi2_with_a_category_only_in_current_and_one_empty_everywhere() -> None:
    reference, current = [300, 200, 0, 0], [280, 190, 30, 0]
    statistic, p, dof, _ = ss.chi2_contingency([reference[:3], current[:3]], correction=False)
    ours = stats.chi2_homogeneity(reference, current)
    assert ours == (pytest.approx(statistic, **EXACT), dof, pytest.approx(p, **EXACT))
    assert ours[2] < 1e-6


def test_chi2_of_a_single_category_has_nothing_to_test() -> None:
    assert stats.chi2_homogeneity([10, 0], [5, 0]) == (0.0, 0, 1.0)


@pytest.mark.parametrize(("n", "error"), [(1, 1e-12), (2, 1e-12), (3, 1e-12), (5, 1e-12),
                                          (12, 1e-12), (40, 1e-12), (140, 1e-11), (141, 3e-6),
                                          (200, 1e-6), (1000, 1e-7)])
def test_kolmogorov_tail_of_a_few_values_matches_scipy_kstwo(n: int, error: float) -> None:
    """Below a few hundred values the Pelz-Good expansion strays (0.087 at n = 1, 0.005 at 5):
    up to 140 the tail is counted exactly, as scipy's kstwo does."""
    for x in np.linspace(0.001, 0.999, 150 if n < 100 else 15):
        assert abs(stats.kolmogorov_n_sf(n, float(x)) - ss.kstwo.sf(x, n)) <= error, (n, x)


def test_ks_p_of_a_one_row_reference_matches_scipy_asymptotic_ks_2samp() -> None:
    reference, current = [0.5], [float(v) for v in np.linspace(0.0, 0.9, 100)]
    expected = ss.ks_2samp(reference, current, method="asymp")
    assert stats.ks_p(expected.statistic, 1, 100) == pytest.approx(expected.pvalue, abs=1e-9)
