"""Statistics for the ``effect`` and ``drift`` kinds, in pure Python (no numpy, no scipy).

Every function here is checked against scipy on the same numbers in ``tests/test_stats.py``.
They work on what a data engine can return cheaply: per-group n/mean/variance (Welch),
bin counts (PSI, Jensen-Shannon, binned KS, chi-square) and, where a rank or resampling test
needs them, a capped list of values (Mann-Whitney U, bootstrap).

Special functions: the regularized incomplete beta function by its continued fraction
(modified Lentz, Numerical Recipes 6.4) gives Student's t; the regularized incomplete gamma
function (series / continued fraction, Numerical Recipes 6.2) gives chi-square; the normal
distribution comes from ``math.erfc`` and ``statistics.NormalDist``; the Kolmogorov
distribution uses the Pelz-Good expansion, as scipy does for large samples.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

Alternative = Literal["two-sided", "greater", "less"]

#: Proportions below this are raised to it in PSI, so an empty bin does not give ln(0).
PSI_EPSILON = 1e-4

_EPS = 1e-15
_TINY = 1e-300
_MAX_ITERATIONS = 100_000


class StatsError(ValueError):
    """The numbers cannot support the statistic (e.g. fewer than 2 values in a group)."""


# --------------------------------------------------------------------------- special functions
def betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta function I_x(a, b)."""
    if a <= 0 or b <= 0:
        raise ValueError("betainc needs a > 0 and b > 0")
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    # The continued fraction converges fast for x < (a + 1) / (a + b + 2); use the symmetry
    # I_x(a, b) = 1 - I_{1-x}(b, a) on the other side.
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def _betacf(a: float, b: float, x: float) -> float:
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    d = _TINY if abs(d) < _TINY else d
    d = 1.0 / d
    h = d
    for m in range(1, _MAX_ITERATIONS):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = _TINY if abs(d) < _TINY else d
        c = 1.0 + aa / c
        c = _TINY if abs(c) < _TINY else c
        d = 1.0 / d
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = _TINY if abs(d) < _TINY else d
        c = 1.0 + aa / c
        c = _TINY if abs(c) < _TINY else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            return h
    raise ArithmeticError(f"incomplete beta did not converge (a={a}, b={b}, x={x})")


def gammaincc(a: float, x: float) -> float:
    """Regularized upper incomplete gamma function Q(a, x) = 1 - P(a, x)."""
    if a <= 0:
        raise ValueError("gammaincc needs a > 0")
    if x <= 0.0:
        return 1.0
    log_front = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1.0:
        # Series for P(a, x); Q = 1 - P loses nothing here because P is not close to 1.
        term = total = 1.0 / a
        ap = a
        for _ in range(_MAX_ITERATIONS):
            ap += 1.0
            term *= x / ap
            total += term
            if abs(term) < abs(total) * _EPS:
                return 1.0 - total * math.exp(log_front)
        raise ArithmeticError(f"incomplete gamma did not converge (a={a}, x={x})")
    # Continued fraction for Q(a, x) (modified Lentz).
    b = x + 1.0 - a
    c = 1.0 / _TINY
    d = 1.0 / b
    h = d
    for i in range(1, _MAX_ITERATIONS):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = _TINY if abs(d) < _TINY else d
        c = b + an / c
        c = _TINY if abs(c) < _TINY else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            return math.exp(log_front) * h
    raise ArithmeticError(f"incomplete gamma did not converge (a={a}, x={x})")


def normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z, accurate far into the tail."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def normal_ppf(p: float) -> float:
    return NormalDist().inv_cdf(p)


def t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with ``df`` degrees of freedom (df may be fractional)."""
    if math.isnan(t):
        return math.nan
    if math.isinf(t):
        return 0.0 if t > 0 else 1.0
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return tail if t > 0 else 1.0 - tail


def t_ppf(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t: bisection on ``t_sf``, to machine precision."""
    if not 0.0 < p < 1.0:
        raise ValueError("t_ppf needs 0 < p < 1")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_ppf(1.0 - p, df)
    target = 1.0 - p  # P(T > t) = 1 - p
    low, high = 0.0, 1.0
    while t_sf(high, df) > target:
        low, high = high, high * 2.0
    for _ in range(200):
        mid = (low + high) / 2.0
        if t_sf(mid, df) > target:
            low = mid
        else:
            high = mid
        if high - low <= 1e-15 * max(1.0, high):
            break
    return (low + high) / 2.0


def chi2_sf(x: float, df: float) -> float:
    """P(X > x) for chi-square with ``df`` degrees of freedom."""
    return gammaincc(df / 2.0, x / 2.0)


_PI2 = math.pi ** 2
_PI4 = math.pi ** 4
_PI6 = math.pi ** 6
_SQRT2PI = math.sqrt(2.0 * math.pi)


#: up to this n the tail is counted exactly (as scipy's kstwo does); above it the Pelz-Good
#: expansion is within 3e-6 of it (4e-7 at 200)
KOLMOGOROV_EXACT_N = 140


@functools.cache
def _binomials(r: int) -> tuple[float, ...]:
    """C(r, 0) .. C(r, r) as floats: made when a small sample first asks, not at import."""
    return tuple(float(math.comb(r, k)) for k in range(r + 1))


def kolmogorov_n_sf(n: float, x: float) -> float:
    """P(D_n > x) for the two-sided one-sample KS statistic: counted exactly up to
    ``KOLMOGOROV_EXACT_N``, else by the Pelz-Good expansion.

    Pelz & Good (1976): K0(z) + K1(z)/sqrt(n) + K2(z)/n + K3(z)/n^1.5 with z = x sqrt(n);
    the error is O(n^-2): 0.087 at n = 1, 0.005 at n = 5, 3e-6 above 140.
    """
    if x <= 0.0:
        return 1.0
    if x >= 1.0:
        return 0.0
    if n <= KOLMOGOROV_EXACT_N and float(n).is_integer():
        return _kolmogorov_exact_sf(int(n), x)
    z = math.sqrt(n) * x
    if z * z >= 370.0:
        return 0.0
    z2, z3, z4, z6 = z * z, z ** 3, z ** 4, z ** 6
    qlog = -_PI2 / 8.0 / z2
    if qlog < -708.0:
        return 1.0
    q = math.exp(qlog)
    k1a, k1b = -z2, _PI2 / 4.0
    k2a = 6.0 * z6 + 2.0 * z4
    k2b = (2.0 * z4 - 5.0 * z2) * _PI2 / 4.0
    k2c = _PI4 * (1.0 - 2.0 * z2) / 16.0
    k3d = _PI6 * (5.0 - 30.0 * z2) / 64.0
    k3c = _PI4 * (-60.0 * z2 + 212.0 * z4) / 16.0
    k3b = _PI2 * (135.0 * z4 - 96.0 * z6) / 4.0
    k3a = -30.0 * z6 - 90.0 * z ** 8
    terms = [0.0, 0.0, 0.0, 0.0]
    max_k = max(1, math.ceil(16.0 * z / math.pi))
    for k in range(max_k, 0, -1):  # Horner over odd m = 2k - 1 in powers of q^(8k)
        m = 2 * k - 1
        m2, m4, m6 = m * m, m ** 4, m ** 6
        q_power = q ** (8 * k)
        coefficients = (1.0, k1a + k1b * m2, k2a + k2b * m2 + k2c * m4,
                        k3a + k3b * m2 + k3c * m4 + k3d * m6)
        terms = [t * q_power + c for t, c in zip(terms, coefficients, strict=True)]
    scale = (z, 6.0 * z4, 72.0 * z ** 7, 6480.0 * z ** 10)
    terms = [t * q * _SQRT2PI / s for t, s in zip(terms, scale, strict=True)]
    q2 = math.exp(-_PI2 / 2.0 / z2)
    sqrt3z = math.sqrt(3.0) * z
    k2_extra = 0.0
    k3_extra = 0.0
    for k in range(max_k, 0, -1):
        power = q2 ** (k * k)
        k2_extra += k * k * power
        k3_extra += (sqrt3z + math.pi * k) * (sqrt3z - math.pi * k) * k * k * power
    terms[2] += k2_extra * _PI2 * _SQRT2PI / (-36.0 * z3)
    terms[3] += k3_extra * _PI2 * _SQRT2PI / (216.0 * z6)
    cdf = math.fsum(t / float(n) ** (i / 2.0) for i, t in enumerate(terms))
    return min(1.0, max(0.0, 1.0 - cdf))


# --------------------------------------------------------------------------- effect tests
@dataclass(frozen=True)
class GroupSummary:
    """n, mean and sample variance (ddof=1) of one group: all Welch's test needs."""

    n: int
    mean: float
    var: float

    @classmethod
    def of(cls, values: Sequence[float]) -> GroupSummary:
        n = len(values)
        if n == 0:
            return cls(0, math.nan, math.nan)
        mean = math.fsum(values) / n
        var = math.fsum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else math.nan
        return cls(n, mean, var)


@dataclass(frozen=True)
class TwoSampleResult:
    """A two-sample comparison of ``after`` vs ``before`` (treatment vs control).

    ``difference`` is mean(after) - mean(before); ``ci`` is the confidence interval of that
    difference that matches the alternative (one-sided intervals have one open end: None).
    """

    statistic: float
    p_value: float
    difference: float
    ci: tuple[float | None, float | None]
    df: float | None = None


def _check_sizes(n_after: int, n_before: int) -> None:
    if n_after < 2 or n_before < 2:
        raise StatsError(f"need at least 2 values per group, got {n_before} and {n_after}")


def welch(after: GroupSummary, before: GroupSummary, alternative: Alternative = "two-sided",
          confidence: float = 0.95) -> TwoSampleResult:
    """Welch's unequal-variances t-test of mean(after) - mean(before).

    Same numbers as ``scipy.stats.ttest_ind(after, before, equal_var=False,
    alternative=...)`` and its ``confidence_interval(confidence)``.
    """
    _check_sizes(after.n, before.n)
    difference = after.mean - before.mean
    se_after, se_before = after.var / after.n, before.var / before.n
    se2 = se_after + se_before
    if se2 == 0.0:
        # Both groups constant: the difference is known exactly.
        if difference == 0.0:
            statistic, p_greater, p_less = math.nan, 1.0, 1.0
        else:
            statistic = math.copysign(math.inf, difference)
            p_greater, p_less = (0.0, 1.0) if difference > 0 else (1.0, 0.0)
        p = p_greater if alternative == "greater" else p_less if alternative == "less" else (
            min(p_greater, p_less) if difference != 0.0 else 1.0)
        return TwoSampleResult(statistic, p, difference, (difference, difference), None)
    df = se2 * se2 / (se_after * se_after / (after.n - 1) + se_before * se_before / (before.n - 1))
    se = math.sqrt(se2)
    statistic = difference / se
    if alternative == "greater":
        p = t_sf(statistic, df)
    elif alternative == "less":
        p = t_sf(-statistic, df)
    else:
        p = min(1.0, 2.0 * t_sf(abs(statistic), df))
    ci: tuple[float | None, float | None]
    if alternative == "two-sided":
        half = t_ppf(0.5 + confidence / 2.0, df) * se
        ci = (difference - half, difference + half)
    elif alternative == "greater":
        ci = (difference - t_ppf(confidence, df) * se, None)
    else:
        ci = (None, difference + t_ppf(confidence, df) * se)
    return TwoSampleResult(statistic, p, difference, ci, df)


def _average_ranks(values: Sequence[float]) -> tuple[list[float], list[int]]:
    """Average ranks (1-based) of ``values`` and the sizes of tied groups."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    ties: list[int] = []
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        rank = (i + j) / 2.0 + 1.0
        for k in range(i, j + 1):
            ranks[order[k]] = rank
        ties.append(j - i + 1)
        i = j + 1
    return ranks, ties


def _mwu_exact_sf(u: int, n1: int, n2: int) -> float:
    """P(U >= u) under the null, exactly: coefficients of the Gaussian binomial [n1+n2, m]_q."""
    m, n = min(n1, n2), max(n1, n2)
    size = m * n + 1
    counts = [0] * size
    counts[0] = 1
    # prod_{i=1..m} (1 - q^(n+i)) / (1 - q^i): multiply, then divide (a running sum).
    for i in range(1, m + 1):
        shift = n + i
        for k in range(size - 1, shift - 1, -1):
            counts[k] -= counts[k - shift]
        for k in range(i, size):
            counts[k] += counts[k - i]
    total = math.comb(n1 + n2, m)
    return min(1.0, sum(counts[max(u, 0):]) / total)


def mann_whitney(after: Sequence[float], before: Sequence[float],
                 alternative: Alternative = "two-sided", method: str = "auto") -> TwoSampleResult:
    """Mann-Whitney U test, as ``scipy.stats.mannwhitneyu(after, before, alternative=...)``.

    ``method="auto"`` picks like scipy: exact when one sample has at most 8 values and there
    are no ties, else the normal approximation with tie correction and continuity correction.
    ``statistic`` is U of ``after``; ``difference`` and ``ci`` are left to the caller (NaN).
    """
    n1, n2 = len(after), len(before)
    _check_sizes(n1, n2)
    ranks, ties = _average_ranks(list(after) + list(before))
    u1 = math.fsum(ranks[:n1]) - n1 * (n1 + 1) / 2.0
    u2 = n1 * n2 - u1
    if alternative == "greater":
        u, factor = u1, 1.0
    elif alternative == "less":
        u, factor = u2, 1.0
    else:
        u, factor = max(u1, u2), 2.0
    has_ties = any(t > 1 for t in ties)
    if method == "auto":
        method = "asymptotic" if (n1 > 8 and n2 > 8) or has_ties else "exact"
    if method == "exact":
        p = _mwu_exact_sf(round(u), n1, n2)
    else:
        n = n1 + n2
        tie_term = math.fsum(float(t) ** 3 - t for t in ties)
        sigma = math.sqrt(n1 * n2 / 12.0 * ((n + 1) - tie_term / (n * (n - 1))))
        z = (u - n1 * n2 / 2.0 - 0.5) / sigma if sigma > 0 else math.inf
        p = normal_sf(z) if sigma > 0 else 1.0
    return TwoSampleResult(u1, min(1.0, max(0.0, p * factor)), math.nan, (None, None))


def _mean_var(values: list[float]) -> tuple[float, float]:
    n = len(values)
    total = sum(values)
    mean = total / n
    squares = sum(v * v for v in values)
    return mean, max(squares - total * mean, 0.0) / (n - 1)


def _studentized(difference: float, se2: float) -> float:
    if se2 <= 0.0:
        return 0.0 if difference == 0.0 else math.copysign(math.inf, difference)
    return difference / math.sqrt(se2)


def bootstrap(after: Sequence[float], before: Sequence[float],
              alternative: Alternative = "two-sided", confidence: float = 0.95,
              resamples: int = 2000, seed: int = 0) -> TwoSampleResult:
    """Seeded bootstrap test of mean(after) - mean(before).

    p-value: the studentized bootstrap test of equal means (Efron & Tibshirani 1993, algorithm
    16.2) -- both groups are shifted to the pooled mean so the null holds, resampled with
    replacement ``resamples`` times, and p = (1 + #{t* at least as extreme}) / (1 + resamples).
    Interval: percentile bootstrap of the unshifted difference, one-sided to match the
    alternative. Same ``seed`` and data, same numbers.
    """
    n1, n2 = len(after), len(before)
    _check_sizes(n1, n2)
    rng = random.Random(seed)
    a, b = GroupSummary.of(after), GroupSummary.of(before)
    difference = a.mean - b.mean
    observed_t = _studentized(difference, a.var / n1 + b.var / n2)
    # Resampling the centred values gives both distributions at once: the difference d* of
    # the resampled means (for the interval) and, shifted by the observed difference, the
    # difference under the null of equal means (for the p-value); centring also keeps the
    # variance from sum and sum of squares exact enough.
    after_centred = [v - a.mean for v in after]
    before_centred = [v - b.mean for v in before]
    beyond = 0
    differences: list[float] = []
    for _ in range(resamples):
        mean_a, var_a = _mean_var(rng.choices(after_centred, k=n1))
        mean_b, var_b = _mean_var(rng.choices(before_centred, k=n2))
        null_difference = mean_a - mean_b
        differences.append(difference + null_difference)
        t_null = _studentized(null_difference, var_a / n1 + var_b / n2)
        if alternative == "greater":
            beyond += t_null >= observed_t
        elif alternative == "less":
            beyond += t_null <= observed_t
        else:
            beyond += abs(t_null) >= abs(observed_t)
    p = (1 + beyond) / (1 + resamples)
    differences.sort()

    def percentile(q: float) -> float:
        position = q * (len(differences) - 1)
        low = math.floor(position)
        high = min(low + 1, len(differences) - 1)
        return differences[low] + (differences[high] - differences[low]) * (position - low)

    ci: tuple[float | None, float | None]
    if alternative == "greater":
        ci = (percentile(1.0 - confidence), None)
    elif alternative == "less":
        ci = (None, percentile(confidence))
    else:
        ci = (percentile((1.0 - confidence) / 2.0), percentile((1.0 + confidence) / 2.0))
    return TwoSampleResult(observed_t, p, difference, ci, None)


# --------------------------------------------------------------------------- drift statistics
def _proportions(counts: Sequence[float]) -> list[float]:
    total = math.fsum(counts)
    if total <= 0:
        raise StatsError("no values to compare")
    return [c / total for c in counts]


def psi(reference_counts: Sequence[float], current_counts: Sequence[float],
        epsilon: float = PSI_EPSILON) -> float:
    """Population stability index: sum over bins of (c - r) * ln(c / r).

    r and c are the shares of the reference and current values in each bin; a share below
    ``epsilon`` is raised to ``epsilon`` (no renormalisation) so an empty bin counts as a
    large but finite shift.
    """
    if len(reference_counts) != len(current_counts):
        raise ValueError("psi needs the same bins on both sides")
    ref = _proportions(reference_counts)
    cur = _proportions(current_counts)
    total = 0.0
    for r, c in zip(ref, cur, strict=True):
        r, c = max(r, epsilon), max(c, epsilon)
        total += (c - r) * math.log(c / r)
    return total


def js_distance(reference_counts: Sequence[float], current_counts: Sequence[float]) -> float:
    """Jensen-Shannon distance, base 2 (0 = same distribution, 1 = disjoint).

    Same as ``scipy.spatial.distance.jensenshannon(r, c, base=2)``: the square root of
    (KL(r || m) + KL(c || m)) / 2 with m = (r + c) / 2.
    """
    if len(reference_counts) != len(current_counts):
        raise ValueError("js_distance needs the same bins on both sides")
    ref = _proportions(reference_counts)
    cur = _proportions(current_counts)
    divergence = 0.0
    for r, c in zip(ref, cur, strict=True):
        m = (r + c) / 2.0
        if r > 0:
            divergence += r * math.log2(r / m)
        if c > 0:
            divergence += c * math.log2(c / m)
    return math.sqrt(max(divergence / 2.0, 0.0))


def _kolmogorov_exact_sf(n: int, d: float) -> float:
    """P(D_n > d), exactly: 1 - the chance that n uniform order statistics keep to the band
    i/n - d <= U_(i) <= (i-1)/n + d. The band's corners cut [0, 1] into cells; the count of
    points up to each corner is carried as a distribution (each cell takes a binomial share of
    the points still to come), and a count outside the band at a corner is dropped."""
    if d <= 0.5 / n:
        return 1.0
    corners: dict[float, list[int]] = {}  # corner -> [fewest, most] points up to it
    for i in range(1, n + 1):
        upper, lower = (i - 1) / n + d, i / n - d
        if upper < 1.0:
            bound = corners.setdefault(upper, [0, n])
            bound[0] = max(bound[0], i)
        if lower > 0.0:
            bound = corners.setdefault(lower, [0, n])
            bound[1] = min(bound[1], i - 1)
    chances = [1.0] + [0.0] * n  # chances[j]: j points up to the last corner, band kept
    before = 0.0
    for corner in sorted(corners):
        p = (corner - before) / (1.0 - before)
        q = 1.0 - p
        p_to = [p ** k for k in range(n + 1)]
        q_to = [q ** k for k in range(n + 1)]
        following = [0.0] * (n + 1)
        for j, chance in enumerate(chances):
            if chance == 0.0:
                continue
            rest = n - j
            binomials = _binomials(rest)
            for k in range(rest + 1):
                following[j + k] += chance * binomials[k] * p_to[k] * q_to[rest - k]
        fewest, most = corners[corner]
        chances = [c if fewest <= j <= most else 0.0 for j, c in enumerate(following)]
        before = corner
    return min(max(1.0 - math.fsum(chances), 0.0), 1.0)


def ks_p(statistic: float, n_reference: int, n_current: int) -> float:
    """Two-sided p-value of the two-sample KS statistic, as scipy's ``ks_2samp`` with
    ``method="asymp"``: the one-sample KS distribution at n = round(n1 n2 / (n1 + n2))."""
    if n_reference < 1 or n_current < 1:
        raise StatsError("ks_p needs values on both sides")
    m, n = float(max(n_reference, n_current)), float(min(n_reference, n_current))
    effective = round(m * n / (m + n))
    return kolmogorov_n_sf(max(effective, 1), statistic)


def chi2_homogeneity(reference_counts: Sequence[float], current_counts: Sequence[float]
                     ) -> tuple[float, int, float]:
    """Pearson's chi-square test that two samples come from the same categorical distribution.

    The 2 x k contingency table (reference, current) x categories, without Yates' correction:
    ``scipy.stats.chi2_contingency([r, c], correction=False)``. Categories empty on both sides
    are dropped; a category seen only in the current data counts fully. Returns
    (statistic, degrees of freedom, p-value).
    """
    pairs = [(r, c) for r, c in zip(reference_counts, current_counts, strict=True) if r + c > 0]
    n_ref = math.fsum(r for r, _ in pairs)
    n_cur = math.fsum(c for _, c in pairs)
    if n_ref <= 0 or n_cur <= 0:
        raise StatsError("chi-square needs values on both sides")
    total = n_ref + n_cur
    statistic = 0.0
    for r, c in pairs:
        column = r + c
        for observed, row in ((r, n_ref), (c, n_cur)):
            expected = row * column / total
            statistic += (observed - expected) ** 2 / expected
    dof = len(pairs) - 1
    if dof == 0:
        return 0.0, 0, 1.0
    return statistic, dof, chi2_sf(statistic, dof)
