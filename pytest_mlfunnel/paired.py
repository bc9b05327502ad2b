"""Paired comparisons of a model with a baseline judged on the same rows, in pure Python.

Each method works on what a data engine returns cheaply, never on rows:

- ``mcnemar``: accuracy from the two discordant counts (rows only one model got right).
- ``delong``: ROC AUC from the DeLong placement sums (``engines.expr.ScoreRanks``).
- ``delong_ovr``: the mean of one-vs-rest ROC AUCs, from per-row DeLong influence terms
  summed per true class (``engines.placements``).
- ``mean_difference``: a mean per-row loss (log loss, Brier, absolute error) from the sum and
  sum of squares of the per-row differences.
- ``multinomial_bootstrap``: any confusion-matrix metric from the joint table of (target,
  prediction, baseline prediction) counts, resampled as a multinomial over its cells -- the
  same distribution as resampling rows, at no cost per row.
- ``row_bootstrap``: average precision and the median absolute error, whose values depend on
  the order of the rows: a seeded paired bootstrap of the rows themselves (at most
  ``BOOTSTRAP_ROWS``, a seeded sample above that, the spread scaled by sqrt(m / n)).
- ``calibration_bootstrap``: ECE from per-(model bin, baseline bin) counts and sums of the
  residuals, their squares and products: a Poisson bootstrap of rows, each cell's resampled
  totals drawn from the normal with their exact moments.

Every method answers a ``PairedDifference``: the two values, their difference, its 95% interval
and a one-sided p-value for "difference <= margin" (or ">= margin" when smaller is better).
Formulas are on docs/gates/model.md; tests check them against scipy and by simulation.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate, chain, repeat
from operator import itemgetter, mul, sub, truediv
from typing import Any

from pytest_mlfunnel.stats import normal_ppf, normal_sf

CONFIDENCE = 0.95
BOOTSTRAP_DRAWS = 2000
BOOTSTRAP_SEED = 20261129
#: the row bootstrap (average_precision, median_ae) resamples at most this many rows of a
#: comparison; above it, a seeded sample of them, and the spread is scaled by sqrt(m / n)
BOOTSTRAP_ROWS = 2000
#: the rows read for it: a seeded sample of at most this many rows of the table
BOOTSTRAP_READ = 20000


class PairedError(ValueError):
    """The counts cannot support the comparison (e.g. no discordant rows and no spread)."""


@dataclass
class PairedDifference:
    """A model's value against a baseline's on the same rows: the difference
    (``value - baseline``) with its 95% interval, and what the method needs for a p-value."""

    value: float
    baseline: float
    method: str
    low: float = 0.0  # the 95% interval of the difference
    high: float = 0.0
    se: float | None = None  # normal-theory methods
    draws: list[float] | None = None  # bootstrap differences
    discordant: tuple[int, int] | None = None  # McNemar: (only the model right, only baseline)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def difference(self) -> float:
        return self.value - self.baseline

    def p_value(self, margin: float, larger: bool = True) -> float:
        """One-sided p-value of H0 "difference <= margin" (``larger``), else ">= margin"."""
        d = self.difference
        if self.discordant is not None and margin == 0:
            better, worse = self.discordant if larger else self.discordant[::-1]
            return binomial_sf(better - 1, better + worse, 0.5) if better + worse else 1.0
        if self.draws is not None:
            beyond = sum(1 for x in self.draws if (x <= margin if larger else x >= margin))
            return (1 + beyond) / (len(self.draws) + 1)
        if not self.se:
            holds = d > margin if larger else d < margin
            return 0.0 if holds else 1.0
        z = (d - margin) / self.se
        return normal_sf(z if larger else -z)

    def describe(self, label: str) -> str:
        return (f"{label} {self.value:.4f} vs baseline {self.baseline:.4f}: "
                f"{self.difference:+.4f} (95% CI {self.low:+.4f}..{self.high:+.4f})")


def _z() -> float:
    return normal_ppf(1 - (1 - CONFIDENCE) / 2)


def binomial_sf(k: int, n: int, p: float) -> float:
    """P(X > k) for X ~ Binomial(n, p), summed in log space."""
    if k < 0:
        return 1.0
    if k >= n:
        return 0.0
    log_p, log_q = math.log(p), math.log1p(-p)
    terms = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p
             + (n - i) * log_q for i in range(k + 1, n + 1)]
    top = max(terms)
    return min(1.0, math.exp(top) * sum(math.exp(t - top) for t in terms))


def mcnemar(value: float, baseline: float, only_model: int, only_baseline: int,
            rows: int) -> PairedDifference:
    """Accuracy: d = (b - c) / n with b, c the discordant counts; the Wald interval
    d +- z * sqrt(b + c - (b - c)^2 / n) / n; at margin 0 the exact McNemar test
    P(X >= b), X ~ Binomial(b + c, 1/2); at another margin the z-test (d - m) / se."""
    b, c, n = only_model, only_baseline, rows
    if n <= 0:
        raise PairedError("no rows to compare")
    d = (b - c) / n
    se = math.sqrt(max(b + c - (b - c) ** 2 / n, 0.0)) / n
    z = _z()
    return PairedDifference(value, baseline, "mcnemar", d - z * se, d + z * se, se=se,
                      discordant=(b, c), extra={"only_model_right": b,
                                                "only_baseline_right": c})


def delong(value: float, baseline: float, positives: int, negatives: int,
           below: tuple[float, float], below_sq: tuple[float, float], cross_below: float,
           above_sq: tuple[float, float], cross_above: float) -> PairedDifference:
    """ROC AUC: DeLong, DeLong & Clarke-Pearson (1988). With m positives, n negatives and
    placements V10(i) = below(i) / n, V01(j) = above(j) / m of each model, S10 and S01 are the
    2x2 sample covariances of the placements; var(A - B) = (S10_AA + S10_BB - 2 S10_AB) / m
    + (S01_AA + S01_BB - 2 S01_AB) / n; the interval is d +- z * se."""
    m, n = positives, negatives
    if m < 2 or n < 2:
        raise PairedError(f"DeLong needs at least 2 positive and 2 negative rows ({m} and {n})")
    a, b = value, baseline
    del below
    s10_aa = (below_sq[0] / n**2 - m * a * a) / (m - 1)
    s10_bb = (below_sq[1] / n**2 - m * b * b) / (m - 1)
    s10_ab = (cross_below / n**2 - m * a * b) / (m - 1)
    s01_aa = (above_sq[0] / m**2 - n * a * a) / (n - 1)
    s01_bb = (above_sq[1] / m**2 - n * b * b) / (n - 1)
    s01_ab = (cross_above / m**2 - n * a * b) / (n - 1)
    variance = (s10_aa + s10_bb - 2 * s10_ab) / m + (s01_aa + s01_bb - 2 * s01_ab) / n
    se = math.sqrt(max(variance, 0.0))
    z = _z()
    d = a - b
    return PairedDifference(value, baseline, "delong", d - z * se, d + z * se, se=se)


def delong_ovr(rows: Sequence[int], placed: Sequence[Sequence[float]],
               crossed: Sequence[dict[tuple[int, int], float]]) -> PairedDifference:
    """The mean of one-vs-rest ROC AUCs over K classes: DeLong's method through per-row
    influence terms. ``rows[c]`` is P_c, the rows of class c; ``placed[c][2k + m]`` sums over
    them the placement u of score column k of model m (the model, m = 0, or the baseline,
    m = 1): negatives of k scored lower plus half the tied ones for a row of class k,
    positives of k scored lower plus half the tied ones for any other row;
    ``crossed[c][(k, l)]`` sums d_k d_l with d_k = u_(k,0) - u_(k,1).

    With n rows, N_k = n - P_k and pi_k = P_k / n, AUC_km = (sum of u_km over class k) /
    (P_k N_k), and each AUC moves with the rows as AUC + (1/n) sum_r IF(r), where
    IF(r) = (V10(r) - AUC) / pi_k for a row of class k (V10 = u / N_k) and
    (V01(r) - AUC) / (1 - pi_k) for any other row (V01 = 1 - u / P_k). The difference of the
    means D = (1/K) sum_k (AUC_k0 - AUC_k1) then has var(D) = (1/n^2) sum_r phi(r)^2 with
    phi(r) = (1/K) sum_k (IF_k0(r) - IF_k1(r)) = (n/K) (sum_k g_ck d_k(r) + h_c) for a row of
    class c, where g_ck = +-1 / (P_k N_k) (+ for k = c) and
    h_c = -delta_c / P_c - sum_(k != c) delta_k / N_k, delta_k = AUC_k0 - AUC_k1: a quadratic
    form in the sums above, per class. For K = 2 and complementary columns this is DeLong's
    variance, with P and N in place of P - 1 and N - 1. The interval is D +- z se and the test
    z = (D - m) / se."""
    count = len(rows)
    if count < 2 or len(placed) != count or len(crossed) != count:
        raise PairedError("roc_auc_ovr needs the placements of at least 2 classes")
    if min(rows) < 2:
        raise PairedError(f"DeLong needs at least 2 rows of every class ({min(rows)} of one)")
    n = sum(rows)
    others = [n - p for p in rows]
    auc = [[placed[k][2 * k + m] / (rows[k] * others[k]) for m in (0, 1)]
           for k in range(count)]
    delta = [a - b for a, b in auc]
    total = 0.0
    for c in range(count):
        g = [(1.0 if k == c else -1.0) / (rows[k] * others[k]) for k in range(count)]
        h = -delta[c] / rows[c] - sum(delta[k] / others[k] for k in range(count) if k != c)
        firsts = [placed[c][2 * k] - placed[c][2 * k + 1] for k in range(count)]
        square = sum(g[k] * g[m] * crossed[c][(min(k, m), max(k, m))]
                     for k in range(count) for m in range(count))
        total += square + 2 * h * sum(gk * d for gk, d in zip(g, firsts, strict=True)) + (
            rows[c] * h * h)
    se = math.sqrt(max(total, 0.0)) / count
    value = sum(a for a, _ in auc) / count
    baseline = sum(b for _, b in auc) / count
    d = value - baseline
    z = _z()
    return PairedDifference(value, baseline, "delong, one-vs-rest", d - z * se, d + z * se,
                            se=se)


def mean_difference(value: float, baseline: float, rows: int, total: float,
                    total_sq: float, method: str = "paired mean") -> PairedDifference:
    """A mean per-row loss: with d_i = loss_model(i) - loss_baseline(i), the mean d-bar, the
    sample variance s^2 = (sum d^2 - n d-bar^2) / (n - 1), the interval d-bar +- z s / sqrt(n)
    and the test z = (d-bar - m) / (s / sqrt(n))."""
    n = rows
    if n < 2:
        raise PairedError(f"a paired mean needs at least 2 rows ({n})")
    mean = total / n
    variance = max((total_sq - n * mean * mean) / (n - 1), 0.0)
    se = math.sqrt(variance / n)
    z = _z()
    return PairedDifference(value, baseline, method, mean - z * se, mean + z * se, se=se)


def binomial(n: int, p: float, rng: random.Random) -> int:
    """One Binomial(n, p) draw: inversion for small n*p, else Hormann's BTRS (1993)."""
    if n <= 0 or p <= 0:
        return 0
    if p >= 1:
        return n
    if p > 0.5:
        return n - binomial(n, 1 - p, rng)
    if n * p < 10:
        # inversion: walk the cumulative distribution from 0
        q = 1 - p
        s = p / q
        a = (n + 1) * s
        r = q ** n
        u = rng.random()
        x = 0
        while u > r:
            u -= r
            x += 1
            if x > n:
                return n
            r *= a / x - s
        return x
    q = 1 - p
    spq = math.sqrt(n * p * q)
    b = 1.15 + 2.53 * spq
    a = -0.0873 + 0.0248 * b + 0.01 * p
    c = n * p + 0.5
    v_r = 0.92 - 4.2 / b
    alpha = (2.83 + 5.1 / b) * spq
    lpq = math.log(p / q)
    mode = math.floor((n + 1) * p)
    h = math.lgamma(mode + 1) + math.lgamma(n - mode + 1)
    while True:
        u = rng.random() - 0.5
        v = rng.random()
        us = 0.5 - abs(u)
        k = math.floor((2 * a / us + b) * u + c)
        if k < 0 or k > n:
            continue
        if us >= 0.07 and v <= v_r:
            return k
        v = math.log(v * alpha / (a / (us * us) + b))
        if v <= h - math.lgamma(k + 1) - math.lgamma(n - k + 1) + (k - mode) * lpq:
            return k


def multinomial(n: int, weights: Sequence[float], rng: random.Random) -> list[int]:
    """One Multinomial(n, weights) draw, as a chain of conditional binomials."""
    total = float(sum(weights))
    out = []
    left = n
    for w in weights[:-1]:
        draw = binomial(left, min(1.0, w / total), rng) if total > 0 and left else 0
        out.append(draw)
        left -= draw
        total -= w
    out.append(left)
    return out


def multinomial_bootstrap(value: float, baseline: float, cells: Sequence[int],
                          difference: Callable[[list[int]], float],
                          draws: int = BOOTSTRAP_DRAWS, seed: int = BOOTSTRAP_SEED
                          ) -> PairedDifference:
    """A confusion-matrix metric: resample the joint (target, prediction, baseline) table as a
    Multinomial(n, observed shares) ``draws`` times (seeded), recompute the difference on each
    table; the percentile interval and p = (1 + #{d* <= m}) / (draws + 1)."""
    n = int(sum(cells))
    if n <= 0:
        raise PairedError("no rows to compare")
    rng = random.Random(seed)
    found = sorted(difference(multinomial(n, cells, rng)) for _ in range(draws))
    tail = (1 - CONFIDENCE) / 2
    return PairedDifference(value, baseline, "multinomial bootstrap",
                      _percentile(found, tail), _percentile(found, 1 - tail), draws=found,
                      extra={"draws": draws, "seed": seed})


def _percentile(ordered: list[float], q: float) -> float:
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class CalibrationCell:
    """The rows of one (model bin, baseline bin) pair with their residuals r = y - score and
    q = y - baseline score: the count and the sums of r, q, r^2, q^2 and r * q."""

    model_bin: int
    baseline_bin: int
    rows: float
    r: float
    q: float
    rr: float
    qq: float
    rq: float


def _cholesky3(a: list[list[float]]) -> list[list[float]]:
    """Lower triangular L with L L^T = a for a covariance matrix, singular ones included
    (a zero pivot gives a zero column)."""
    low = [[0.0] * 3 for _ in range(3)]
    for i in range(3):
        for j in range(i + 1):
            rest = a[i][j] - sum(low[i][k] * low[j][k] for k in range(j))
            if i == j:
                low[i][i] = math.sqrt(max(rest, 0.0))
            else:
                low[i][j] = rest / low[j][j] if low[j][j] > 1e-12 * max(1.0, a[j][j]) else 0.0
    return low


def calibration_bootstrap(value: float, baseline: float, cells: Sequence[CalibrationCell],
                          draws: int = BOOTSTRAP_DRAWS, seed: int = BOOTSTRAP_SEED
                          ) -> PairedDifference:
    """ECE: a seeded Poisson bootstrap of the rows, drawn per (model bin, baseline bin) cell.
    Each row is taken w ~ Poisson(1) times; a cell's resampled totals (rows, sum w r, sum w q)
    have mean (n, R, Q) and covariance [[n, R, Q], [R, RR, RQ], [Q, RQ, QQ]] exactly, and are
    drawn from the normal with those moments. Then ece* = sum over bins |sum w r| / sum w for
    each model, d* = ece*_model - ece*_baseline; the percentile interval and
    p = (1 + #{d* <= m}) / (draws + 1), as for the multinomial bootstrap."""
    if not cells or sum(c.rows for c in cells) <= 0:
        raise PairedError("no rows to compare")
    rng = random.Random(seed)
    prepared = [(c.model_bin, c.baseline_bin, (c.rows, c.r, c.q),
                 _cholesky3([[c.rows, c.r, c.q], [c.r, c.rr, c.rq], [c.q, c.rq, c.qq]]))
                for c in cells]
    found: list[float] = []
    for _ in range(draws):
        rows = 0.0
        model: dict[int, float] = {}
        base: dict[int, float] = {}
        for model_bin, baseline_bin, mean, low in prepared:
            z = (rng.gauss(0.0, 1.0), rng.gauss(0.0, 1.0), rng.gauss(0.0, 1.0))
            x = [mean[i] + sum(low[i][k] * z[k] for k in range(i + 1)) for i in range(3)]
            rows += x[0]
            model[model_bin] = model.get(model_bin, 0.0) + x[1]
            base[baseline_bin] = base.get(baseline_bin, 0.0) + x[2]
        total = max(rows, 1.0)
        found.append((sum(abs(v) for v in model.values())
                      - sum(abs(v) for v in base.values())) / total)
    found.sort()
    tail = (1 - CONFIDENCE) / 2
    return PairedDifference(value, baseline, "poisson bootstrap of calibration cells",
                            _percentile(found, tail), _percentile(found, 1 - tail), draws=found,
                            extra={"draws": draws, "seed": seed})


def _pick(values: Sequence[Any], positions: Sequence[int]) -> tuple[Any, ...]:
    """values[p] for each position, at C speed (``itemgetter``), always as a tuple."""
    if len(positions) == 1:
        return (values[positions[0]],)
    return tuple(itemgetter(*positions)(values))


class RankedScores:
    """One model's scores over the sampled rows, sorted once: average precision of any
    resample (given as a multiplicity per row) in O(rows), with no sort.

    ``positive[i]`` says whether row i is positive. Over distinct scores t from the highest,
    AP = (1 / P) sum_t (positives at t) x (positives >= t) / (rows >= t), sklearn's step-wise
    definition, each row counted as often as the resample draws it."""

    def __init__(self, scores: Sequence[float], positive: Sequence[bool]) -> None:
        self.order = sorted(range(len(scores)), key=lambda i: -scores[i])
        ordered = [scores[i] for i in self.order]
        self.ends = [j for j in range(len(ordered))
                     if j + 1 == len(ordered) or ordered[j + 1] != ordered[j]]
        self.positive = [bool(positive[i]) for i in self.order]

    def average_precision(self, counts: Sequence[int]) -> float:
        drawn = _pick(counts, self.order)
        rows = list(accumulate(drawn))
        hits = list(accumulate(map(mul, drawn, self.positive)))
        if not hits[-1]:
            return 0.0
        rows_at, hits_at = _pick(rows, self.ends), _pick(hits, self.ends)
        gained = map(sub, hits_at, chain((0,), hits_at))
        precision = map(truediv, hits_at, map(max, rows_at, repeat(1)))
        return float(sum(map(mul, gained, precision)) / hits[-1])


class SortedValues:
    """One model's absolute errors over the sampled rows, sorted once: the median of any
    resample (the mean of the two middle values when the resample has an even size, as
    numpy and the engines take it) in O(rows)."""

    def __init__(self, values: Sequence[float]) -> None:
        self.order = sorted(range(len(values)), key=lambda i: values[i])
        self.values = [values[i] for i in self.order]

    def median(self, counts: Sequence[int]) -> float:
        running = list(accumulate(_pick(counts, self.order)))
        total = running[-1]
        low = self.values[bisect_left(running, (total + 1) // 2)]
        high = self.values[bisect_left(running, total // 2 + 1)]
        return float(low + high) / 2


def row_bootstrap(value: float, baseline: float, rows: int,
                  difference: Callable[[Sequence[int]], float], sampled: int,
                  method: str, draws: int = BOOTSTRAP_DRAWS, seed: int = BOOTSTRAP_SEED
                  ) -> PairedDifference:
    """A metric that depends on the order of the rows: the paired bootstrap of the rows.
    ``difference(counts)`` is model - baseline on a resample given as each sampled row's
    multiplicity; ``sampled`` rows (m) stand for the ``rows`` judged (n): all of them up to
    ``BOOTSTRAP_ROWS``, else a seeded sample. Each of ``draws`` resamples takes m rows with
    replacement (seeded); with d = value - baseline on all rows and d_m on the sample, the
    draws d* become d + sqrt(m / n) (d* - d_m) -- the subsampling estimate of the spread at n
    rows, which is the plain percentile bootstrap when m = n. The interval is their 2.5% and
    97.5% percentiles, p = (1 + #{d* <= margin}) / (draws + 1)."""
    m = sampled
    if m < 2:
        raise PairedError(f"a bootstrap needs at least 2 rows ({m})")
    rng = random.Random(seed)
    centre = difference([1] * m)
    scale = math.sqrt(m / rows) if rows > m else 1.0
    d = value - baseline
    picks = range(m)
    found = []
    for _ in range(draws):
        counts = [0] * m
        for i in rng.choices(picks, k=m):
            counts[i] += 1
        found.append(d + scale * (difference(counts) - centre))
    found.sort()
    tail = (1 - CONFIDENCE) / 2
    return PairedDifference(value, baseline, method, _percentile(found, tail),
                            _percentile(found, 1 - tail), draws=found,
                            extra={"draws": draws, "seed": seed, "bootstrap_rows": m})
