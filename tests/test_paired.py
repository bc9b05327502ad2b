"""Paired comparisons with a baseline: against scipy and direct computations on the same numbers,
and the 95% intervals' coverage by simulation."""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.stats as ss

from pytest_mlfunnel.kinds.base import EvalContext
from pytest_mlfunnel.kinds.predictions import Collector, PredictionsConfig, compare_paired
from pytest_mlfunnel.paired import (
    CalibrationCell,
    PairedError,
    RankedScores,
    SortedValues,
    binomial,
    binomial_sf,
    calibration_bootstrap,
    delong,
    delong_ovr,
    mcnemar,
    mean_difference,
    multinomial,
    multinomial_bootstrap,
    row_bootstrap,
)
from pytest_mlfunnel.sources.tabular import open_table

SIMULATIONS = 2000


@pytest.mark.parametrize(("k", "n", "p"), [(0, 10, 0.5), (7, 20, 0.5), (40, 100, 0.3),
                                           (99, 100, 0.9), (500, 1000, 0.5)])
def test_binomial_tail_matches_scipy(k: int, n: int, p: float) -> None:
    assert binomial_sf(k, n, p) == pytest.approx(ss.binom.sf(k, n, p), rel=1e-9, abs=1e-300)


@pytest.mark.parametrize(("b", "c"), [(30, 12), (12, 30), (5, 0), (0, 0), (200, 170)])
def test_mcnemar_at_margin_zero_is_scipys_exact_binomial_test(b: int, c: int) -> None:
    comparison = mcnemar(0.8, 0.7, b, c, 1000)
    expected = ss.binomtest(b, b + c, 0.5, alternative="greater").pvalue if b + c else 1.0
    assert comparison.p_value(0.0) == pytest.approx(expected, rel=1e-9)
    assert comparison.difference == pytest.approx(0.1)


def test_a_margin_uses_the_z_test_on_the_paired_difference() -> None:
    comparison = mcnemar(0.82, 0.78, 90, 50, 1000)
    se = math.sqrt(90 + 50 - 40**2 / 1000) / 1000
    assert comparison.se == pytest.approx(se)
    assert comparison.p_value(0.01) == pytest.approx(ss.norm.sf((0.04 - 0.01) / se))
    assert (comparison.low, comparison.high) == pytest.approx(
        (0.04 - ss.norm.ppf(0.975) * se, 0.04 + ss.norm.ppf(0.975) * se))


def test_a_paired_mean_is_scipys_normal_interval_on_the_differences() -> None:
    rng = np.random.default_rng(1)
    d = rng.normal(0.02, 0.3, 500)
    comparison = mean_difference(0.5 + d.mean(), 0.5, len(d), float(d.sum()),
                                 float((d * d).sum()))
    se = d.std(ddof=1) / math.sqrt(len(d))
    low, high = ss.norm.interval(0.95, loc=d.mean(), scale=se)
    assert (comparison.low, comparison.high) == pytest.approx((low, high), rel=1e-9)
    assert comparison.p_value(0.0) == pytest.approx(ss.norm.sf(d.mean() / se), rel=1e-9)


def delong_direct(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """DeLong from the definition: every positive against every negative."""
    def placements(score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pos, neg = score[y == 1], score[y == 0]
        psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
        return psi.mean(axis=1), psi.mean(axis=0)
    v10a, v01a = placements(a)
    v10b, v01b = placements(b)
    s10 = np.cov(np.stack([v10a, v10b]))
    s01 = np.cov(np.stack([v01a, v01b]))
    var = ((s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / len(v10a)
           + (s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]) / len(v01a))
    return float(v10a.mean()), float(v10b.mean()), float(math.sqrt(var))


def delong_sums(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[Any, ...]:
    """The rank sums ``delong`` takes, from the definition (what the engines return)."""
    m, n = int(y.sum()), int((1 - y).sum())
    below, above = [], []
    for score in (a, b):
        pos, neg = score[y == 1], score[y == 0]
        psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
        below.append(psi.sum(axis=1))
        above.append(psi.sum(axis=0))
    auc_a, auc_b = below[0].sum() / (m * n), below[1].sum() / (m * n)
    return (auc_a, auc_b, m, n, (below[0].sum(), below[1].sum()),
            ((below[0] ** 2).sum(), (below[1] ** 2).sum()), (below[0] * below[1]).sum(),
            ((above[0] ** 2).sum(), (above[1] ** 2).sum()), (above[0] * above[1]).sum())


def test_delong_from_engine_rank_sums_equals_the_direct_computation(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    n = 700
    y = rng.integers(0, 2, n)
    a = np.round(rng.normal(0.9 * y, 1.0), 1)  # many ties
    b = np.round(rng.normal(0.6 * y, 1.0), 2)
    frame = pd.DataFrame({"y": y, "p": (a > 0.5).astype(int), "a": 1 / (1 + np.exp(-a)),
                          "b": 1 / (1 + np.exp(-b)), "bp": (b > 0.5).astype(int)})
    frame.to_parquet(tmp_path / "p.parquet")
    check = PredictionsConfig.model_validate(
        {"predictions": str(tmp_path / "p.parquet"), "task": "binary", "target": "y",
         "prediction": "p", "score": "a", "baseline": {"prediction": "bp", "score": "b"},
         "expect": {"roc_auc": ">= baseline"}}, context={"sources": {}, "key_path": "t"})
    ctx = EvalContext(rootdir=tmp_path, fixtures={}, shared={})
    evidence = Collector(check, open_table(check.predictions, ctx)).collect()
    comparison = compare_paired(check, evidence, "roc_auc", evidence.overall)
    auc_a, auc_b, se = delong_direct(y, frame.a.to_numpy(), frame.b.to_numpy())
    assert (comparison.value, comparison.baseline) == pytest.approx((auc_a, auc_b), abs=1e-12)
    assert comparison.se == pytest.approx(se, rel=1e-9)
    z = (auc_a - auc_b) / se
    assert comparison.p_value(0.0) == pytest.approx(ss.norm.sf(z), rel=1e-9)


@pytest.mark.parametrize(("n", "p"), [(12, 0.3), (1000, 0.3), (100_000, 0.02),
                                      (10_000_000, 0.45), (40, 0.97)])
def test_binomial_draws_follow_the_binomial_distribution(n: int, p: float) -> None:
    rng = random.Random(5)
    draws = np.array([binomial(n, p, rng) for _ in range(4000)])
    assert draws.min() >= 0 and draws.max() <= n
    mean, var = n * p, n * p * (1 - p)
    assert abs(draws.mean() - mean) < 4 * math.sqrt(var / len(draws))
    assert draws.var(ddof=1) == pytest.approx(var, rel=0.1)
    # the whole shape: the cumulative frequencies against scipy's binomial
    values = np.arange(draws.min(), draws.max() + 1)
    empirical = np.searchsorted(np.sort(draws), values, side="right") / len(draws)
    assert np.abs(empirical - ss.binom(n, p).cdf(values)).max() < 0.03


def test_a_multinomial_draw_keeps_the_total_and_the_shares() -> None:
    rng = random.Random(2)
    weights = [500, 300, 150, 50]
    draws = np.array([multinomial(1000, weights, rng) for _ in range(3000)])
    assert (draws.sum(axis=1) == 1000).all()
    assert draws.mean(axis=0) == pytest.approx([500, 300, 150, 50], rel=0.02)


def test_the_bootstrap_is_seeded_and_reproducible() -> None:
    def difference(cells: list[int]) -> float:
        return (cells[0] - cells[1]) / sum(cells)
    first = multinomial_bootstrap(0.8, 0.7, [40, 20, 300, 40], difference, draws=300)
    second = multinomial_bootstrap(0.8, 0.7, [40, 20, 300, 40], difference, draws=300)
    assert (first.low, first.high) == (second.low, second.high)
    assert first.low < 20 / 400 < first.high


# --------------------------------------------------------------------------- coverage
def within(coverage: float) -> bool:
    return 0.93 <= coverage <= 0.97


def test_accuracy_intervals_cover_the_true_difference_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(11)
    # cells: both right, only model right, only baseline right, both wrong
    shares = np.array([0.70, 0.12, 0.06, 0.12])
    truth = shares[1] - shares[2]
    n = 400
    covered = 0
    for counts in rng.multinomial(n, shares, SIMULATIONS):
        c = mcnemar(0.0, 0.0, int(counts[1]), int(counts[2]), n)
        covered += c.low <= truth <= c.high
    assert within(covered / SIMULATIONS), covered / SIMULATIONS


def test_delong_intervals_cover_the_true_difference_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(12)
    m = n = 120
    # binormal, correlated scores: AUC = Phi(mu / sqrt(2)) for N(mu, 1) against N(0, 1)
    mu_a, mu_b = 1.2, 0.9
    truth = ss.norm.cdf(mu_a / math.sqrt(2)) - ss.norm.cdf(mu_b / math.sqrt(2))
    y = np.r_[np.ones(m, int), np.zeros(n, int)]
    covered = 0
    for _ in range(SIMULATIONS):
        shared = rng.normal(size=m + n)
        a = 0.7 * shared + math.sqrt(1 - 0.49) * rng.normal(size=m + n) + mu_a * y
        b = 0.7 * shared + math.sqrt(1 - 0.49) * rng.normal(size=m + n) + mu_b * y
        c = delong(*delong_sums(y, a, b))
        covered += c.low <= truth <= c.high
    assert within(covered / SIMULATIONS), covered / SIMULATIONS


def test_paired_mean_intervals_cover_the_true_difference_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(13)
    covered = 0
    for _ in range(SIMULATIONS):
        d = rng.exponential(0.3, 300) - rng.exponential(0.25, 300)  # skewed losses
        c = mean_difference(0.0, 0.0, len(d), float(d.sum()), float((d * d).sum()))
        covered += c.low <= 0.05 <= c.high
    assert within(covered / SIMULATIONS), covered / SIMULATIONS


def test_bootstrap_intervals_of_f1_cover_the_true_difference_95_percent_of_the_time() -> None:
    # joint cells (truth, model, baseline) in {0, 1}^3, one population
    cells = [(t, a, b) for t in (0, 1) for a in (0, 1) for b in (0, 1)]
    shares = np.array([0.45, 0.04, 0.06, 0.03, 0.03, 0.07, 0.04, 0.28])

    def f1(counts: np.ndarray | list[int], which: int) -> float:
        tp = fp = fn = 0.0
        for cell, n in zip(cells, counts, strict=True):
            if cell[which]:
                tp, fp = (tp + n, fp) if cell[0] else (tp, fp + n)
            elif cell[0]:
                fn += n
        return 2 * tp / (2 * tp + fp + fn)

    truth = f1(shares, 1) - f1(shares, 2)
    rng = np.random.default_rng(14)
    simulations = 600
    covered = 0
    for i, counts in enumerate(rng.multinomial(1000, shares, simulations)):
        c = multinomial_bootstrap(0.0, 0.0, counts.tolist(),
                                  lambda k: f1(k, 1) - f1(k, 2), draws=200, seed=i)
        covered += c.low <= truth <= c.high
    assert 0.925 <= covered / simulations <= 0.975, covered / simulations


def test_delong_per_slice_pairs_the_rows_of_each_slice(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    n = 900
    y = rng.integers(0, 2, n)
    a = np.round(1 / (1 + np.exp(-rng.normal(1.0 * y, 1.0))), 2)
    b = np.round(1 / (1 + np.exp(-rng.normal(0.7 * y, 1.0))), 2)
    frame = pd.DataFrame({"y": y, "p": (a > 0.5).astype(int), "a": a, "b": b,
                          "bp": (b > 0.5).astype(int), "g": rng.choice(["u", "v", "w"], n)})
    frame.to_parquet(tmp_path / "p.parquet")
    check = PredictionsConfig.model_validate(
        {"predictions": str(tmp_path / "p.parquet"), "task": "binary", "target": "y",
         "prediction": "p", "score": "a", "slices": ["g"], "min_slice_rows": 1,
         "baseline": {"prediction": "bp", "score": "b"},
         "expect": {"slices.g.*.roc_auc": ">= baseline"}},
        context={"sources": {}, "key_path": "t"})
    ctx = EvalContext(rootdir=tmp_path, fixtures={}, shared={})
    evidence = Collector(check, open_table(check.predictions, ctx)).collect()
    for value in ("u", "v", "w"):
        rows = frame[frame.g == value]
        comparison = compare_paired(check, evidence, "roc_auc", evidence.slices["g"][value])
        auc_a, auc_b, se = delong_direct(rows.y.to_numpy(), rows.a.to_numpy(),
                                         rows.b.to_numpy())
        assert (comparison.value, comparison.baseline) == pytest.approx((auc_a, auc_b),
                                                                        abs=1e-12)
        assert comparison.se == pytest.approx(se, rel=1e-9)


def test_regression_and_multiclass_baselines_match_direct_paired_computations(
        tmp_path: Path) -> None:
    from sklearn import metrics

    rng = np.random.default_rng(21)
    n = 600
    t = rng.normal(100, 10, n)
    frame = pd.DataFrame({"t": t, "p": t + rng.normal(0, 3, n), "b": t + rng.normal(0, 4, n)})
    frame.to_parquet(tmp_path / "r.parquet")
    check = PredictionsConfig.model_validate(
        {"predictions": str(tmp_path / "r.parquet"), "task": "regression", "target": "t",
         "prediction": "p", "baseline": "b",
         "expect": {"mae": "<= baseline", "rmse": "<= baseline", "r2": ">= baseline",
                    "mape": "<= baseline"}},
        context={"sources": {}, "key_path": "t"})
    ctx = EvalContext(rootdir=tmp_path, fixtures={}, shared={})
    evidence = Collector(check, open_table(check.predictions, ctx)).collect()
    mae = compare_paired(check, evidence, "mae", evidence.overall)
    d = np.abs(frame.t - frame.p) - np.abs(frame.t - frame.b)
    assert (mae.value, mae.baseline) == pytest.approx(
        (metrics.mean_absolute_error(frame.t, frame.p),
         metrics.mean_absolute_error(frame.t, frame.b)), rel=1e-9)
    assert mae.se == pytest.approx(d.std(ddof=1) / math.sqrt(n), rel=1e-9)
    r2 = compare_paired(check, evidence, "r2", evidence.overall)
    assert (r2.value, r2.baseline) == pytest.approx(
        (metrics.r2_score(frame.t, frame.p), metrics.r2_score(frame.t, frame.b)), rel=1e-9)
    assert r2.low < r2.difference < r2.high
    rmse = compare_paired(check, evidence, "rmse", evidence.overall)
    assert rmse.baseline == pytest.approx(metrics.root_mean_squared_error(frame.t, frame.b),
                                          rel=1e-9)
    assert rmse.low < rmse.difference < rmse.high < 0
    mape = compare_paired(check, evidence, "mape", evidence.overall)
    d = (np.abs(frame.t - frame.p) - np.abs(frame.t - frame.b)) / np.abs(frame.t)
    assert (mape.value, mape.baseline) == pytest.approx(
        (metrics.mean_absolute_percentage_error(frame.t, frame.p),
         metrics.mean_absolute_percentage_error(frame.t, frame.b)), rel=1e-9)
    low, high = ss.norm.interval(0.95, loc=d.mean(), scale=d.std(ddof=1) / math.sqrt(n))
    assert (mape.low, mape.high) == pytest.approx((low, high), rel=1e-9)
    assert mape.method == "paired mean of absolute percentage errors"

    labels = rng.choice(list("abc"), n)
    model = np.where(rng.random(n) < 0.8, labels, rng.choice(list("abc"), n))
    base = np.where(rng.random(n) < 0.7, labels, rng.choice(list("abc"), n))
    pd.DataFrame({"y": labels, "m": model, "b": base}).to_parquet(tmp_path / "m.parquet")
    check = PredictionsConfig.model_validate(
        {"predictions": str(tmp_path / "m.parquet"), "task": "multiclass", "target": "y",
         "prediction": "m", "baseline": "b",
         "expect": {"accuracy": ">= baseline", "f1_macro": ">= baseline"}},
        context={"sources": {}, "key_path": "t"})
    evidence = Collector(check, open_table(check.predictions, ctx)).collect()
    accuracy = compare_paired(check, evidence, "accuracy", evidence.overall)
    only_model = int(((model == labels) & (base != labels)).sum())
    only_base = int(((model != labels) & (base == labels)).sum())
    assert accuracy.discordant == (only_model, only_base)
    f1 = compare_paired(check, evidence, "f1_macro", evidence.overall)
    assert (f1.value, f1.baseline) == pytest.approx(
        (metrics.f1_score(labels, model, average="macro"),
         metrics.f1_score(labels, base, average="macro")), abs=1e-12)
    assert f1.method == "multinomial bootstrap" and f1.low < f1.difference < f1.high


def ece_of(y: np.ndarray, score: np.ndarray, weights: np.ndarray | None = None) -> float:
    """ECE on 10 right-closed equal-width bins, rows weighted (a bootstrap resample)."""
    w = np.ones(len(y)) if weights is None else weights
    bins = np.searchsorted(np.linspace(0, 1, 11)[1:-1], score)
    return float(np.abs(np.bincount(bins, w * (y - score), minlength=10)).sum() / w.sum())


def calibration_cells(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> list[CalibrationCell]:
    edges = np.linspace(0, 1, 11)[1:-1]
    bins_a, bins_b = np.searchsorted(edges, a), np.searchsorted(edges, b)
    r, q = y - a, y - b
    cells = []
    for i, j in sorted(set(zip(bins_a.tolist(), bins_b.tolist(), strict=True))):
        rows = (bins_a == i) & (bins_b == j)
        cells.append(CalibrationCell(i, j, float(rows.sum()), r[rows].sum(), q[rows].sum(),
                                     (r[rows] ** 2).sum(), (q[rows] ** 2).sum(),
                                     (r[rows] * q[rows]).sum()))
    return cells


def test_ece_against_the_baseline_is_a_bootstrap_of_the_rows_from_calibration_cells(
        tmp_path: Path) -> None:
    rng = np.random.default_rng(17)
    n = 3000
    p = rng.uniform(0.05, 0.95, n)
    y = (rng.random(n) < p).astype(int)
    a = np.clip(p * 0.85 + rng.normal(0, 0.03, n), 0, 1)  # under-confident
    b = np.clip(p * 1.2 - 0.05 + rng.normal(0, 0.05, n), 0, 1)  # over-confident
    frame = pd.DataFrame({"y": y, "a": a, "b": b})
    frame.to_parquet(tmp_path / "p.parquet")
    check = PredictionsConfig.model_validate(
        {"predictions": str(tmp_path / "p.parquet"), "task": "binary", "target": "y",
         "score": "a", "baseline": {"score": "b"}, "expect": {"ece": "<= baseline"}},
        context={"sources": {}, "key_path": "t"})
    ctx = EvalContext(rootdir=tmp_path, fixtures={}, shared={})
    evidence = Collector(check, open_table(check.predictions, ctx)).collect()
    found = compare_paired(check, evidence, "ece", evidence.overall)
    assert (found.value, found.baseline) == pytest.approx((ece_of(y, a), ece_of(y, b)),
                                                          abs=1e-12)
    assert found.method == "poisson bootstrap of calibration cells"
    again = compare_paired(check, evidence, "ece", evidence.overall)
    assert (again.low, again.high) == (found.low, found.high)  # seeded
    # against resampling the rows themselves (Poisson weights), 4000 times
    draws = np.sort([ece_of(y, a, w) - ece_of(y, b, w)
                     for w in rng.poisson(1.0, (4000, n)).astype(float)])
    low, high = np.quantile(draws, [0.025, 0.975])
    width = high - low
    assert abs(found.low - low) < 0.1 * width and abs(found.high - high) < 0.1 * width


def test_ece_intervals_cover_the_true_difference_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(23)
    levels = np.array([0.12, 0.37, 0.52, 0.83])  # a few bins, each clearly miscalibrated

    def population(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        p = rng.choice(levels, size) + rng.uniform(-0.03, 0.03, size)
        y = (rng.random(size) < p).astype(float)
        return y, np.clip(p * 0.8, 0, 1), np.clip(p * 1.15, 0, 1)

    truth = ece_of(*population(2_000_000)[:2]) - ece_of(*population(2_000_000)[::2])
    simulations = 600
    covered = 0
    for i in range(simulations):
        y, a, b = population(1500)
        found = calibration_bootstrap(0.0, 0.0, calibration_cells(y, a, b), draws=200, seed=i)
        covered += found.low <= truth <= found.high
    assert 0.925 <= covered / simulations <= 0.975, covered / simulations


# --------------------------------------------------------------------------- roc_auc_ovr
def ovr_placements(y: np.ndarray, a: np.ndarray, b: np.ndarray
                   ) -> tuple[list[int], list[list[float]], list[dict[tuple[int, int], float]],
                              np.ndarray]:
    """What the engines sum for ``delong_ovr``, from midranks: per true class its rows, the
    sums of every placement and of the products of the paired differences; and each row's
    placements u[row, 2k + m]."""
    classes = np.unique(y)
    count = len(classes)
    u = np.zeros((len(y), 2 * count))
    for k, label in enumerate(classes):
        pos = y == label
        for m, scores in enumerate((a, b)):
            s = scores[:, k]
            # negatives (positives) below a positive (negative) row + half the tied ones
            u[pos, 2 * k + m] = ss.rankdata(s)[pos] - ss.rankdata(s[pos])
            u[~pos, 2 * k + m] = ss.rankdata(s)[~pos] - ss.rankdata(s[~pos])
    d = u[:, 0::2] - u[:, 1::2]
    rows, placed, crossed = [], [], []
    for label in classes:
        mine = y == label
        rows.append(int(mine.sum()))
        placed.append(u[mine].sum(axis=0).tolist())
        crossed.append({(k, m): float((d[mine, k] * d[mine, m]).sum())
                        for k in range(count) for m in range(k, count)})
    return rows, placed, crossed, u


def ovr_influence(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """The mean one-vs-rest AUCs of both models and the standard error of their difference,
    from each row's influence terms: var = (1/n^2) sum phi^2."""
    classes = np.unique(y)
    n = len(y)
    *_, u = ovr_placements(y, a, b)
    phi = np.zeros(n)
    aucs = np.zeros((len(classes), 2))
    for k, label in enumerate(classes):
        pos = y == label
        p, q = int(pos.sum()), n - int(pos.sum())
        for m in (0, 1):
            auc = u[pos, 2 * k + m].sum() / (p * q)
            aucs[k, m] = auc
            influence = np.where(pos, (u[:, 2 * k + m] / q - auc) / (p / n),
                                 (1 - u[:, 2 * k + m] / p - auc) / (q / n))
            phi += (1 if m == 0 else -1) * influence / len(classes)
    return float(aucs[:, 0].mean()), float(aucs[:, 1].mean()), math.sqrt((phi ** 2).sum()) / n


def softmax_scores(rng: np.random.Generator, y: np.ndarray, strength: np.ndarray,
                   shared: np.ndarray, decimals: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Two models' per-class probabilities (softmax of class signals plus noise, partly shared
    between the models, rounded so that they tie)."""
    classes = np.unique(y)
    onehot = (y[:, None] == classes[None, :]).astype(float)
    common = rng.normal(size=onehot.shape)
    out = []
    for m in (0, 1):
        noise = shared * common + math.sqrt(1 - shared ** 2) * rng.normal(size=onehot.shape)
        logits = onehot * strength[m] + noise
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        out.append(np.round(e / e.sum(axis=1, keepdims=True), decimals))
    return out[0], out[1]


def test_roc_auc_ovr_from_placement_sums_equals_the_per_row_influence_computation() -> None:
    rng = np.random.default_rng(31)
    y = rng.choice(np.array(["a", "b", "c", "d"]), 500, p=[0.4, 0.3, 0.2, 0.1])
    a, b = softmax_scores(rng, y, np.array([[2.0, 1.0, 1.5, 0.5], [1.0, 1.2, 0.8, 1.0]]), 0.5)
    rows, placed, crossed, _ = ovr_placements(y, a, b)
    found = delong_ovr(rows, placed, crossed)
    value, baseline, se = ovr_influence(y, a, b)
    assert (found.value, found.baseline) == pytest.approx((value, baseline), abs=1e-12)
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    assert found.value == pytest.approx(np.mean([sklearn_metrics.roc_auc_score(
        y == label, a[:, k]) for k, label in enumerate("abcd")]), abs=1e-12)
    assert found.se == pytest.approx(se, rel=1e-9)
    z = ss.norm.ppf(0.975)
    assert (found.low, found.high) == pytest.approx((value - baseline - z * se,
                                                     value - baseline + z * se), rel=1e-9)
    assert found.p_value(0.01) == pytest.approx(ss.norm.sf((value - baseline - 0.01) / se))
    assert found.method == "delong, one-vs-rest"


def test_for_two_classes_the_ovr_variance_is_delongs_with_p_and_n_for_p_minus_1_and_n_minus_1(
        ) -> None:
    rng = np.random.default_rng(32)
    n = 400
    y = rng.integers(0, 2, n)
    a1 = np.round(1 / (1 + np.exp(-rng.normal(1.1 * y, 1.0))), 2)
    b1 = np.round(1 / (1 + np.exp(-rng.normal(0.8 * y, 1.0))), 2)
    a, b = np.stack([1 - a1, a1], axis=1), np.stack([1 - b1, b1], axis=1)
    rows, placed, crossed, u = ovr_placements(y, a, b)
    found = delong_ovr(rows, placed, crossed)
    auc_a, auc_b, se = delong_direct(y, a1, b1)
    assert (found.value, found.baseline) == pytest.approx((auc_a, auc_b), abs=1e-12)
    # class 1's columns: V10 = u / N on positives, V01 = 1 - u / P on negatives
    m, q = int(y.sum()), n - int(y.sum())
    v10, v01 = (u[y == 1, 2] - u[y == 1, 3]) / q, (u[y == 0, 2] - u[y == 0, 3]) / m
    assert se ** 2 == pytest.approx(v10.var(ddof=1) / m + v01.var(ddof=1) / q, rel=1e-9)
    assert found.se ** 2 == pytest.approx(v10.var(ddof=0) / m + v01.var(ddof=0) / q, rel=1e-9)


def test_roc_auc_ovr_needs_two_rows_of_every_class() -> None:
    with pytest.raises(PairedError, match=r"^DeLong needs at least 2 rows of every class "
                                          r"\(1 of one\)$"):
        delong_ovr([5, 1], [[4.0] * 4, [1.0] * 4], [{(0, 0): 0.0, (0, 1): 0.0, (1, 1): 0.0}] * 2)


def test_roc_auc_ovr_intervals_cover_the_true_difference_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(33)
    labels = np.array(["a", "b", "c"])
    shares = [0.5, 0.3, 0.2]
    strength = np.array([[1.6, 0.6, 1.2], [1.0, 1.0, 0.9]])  # unequal per-class AUCs

    def population(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        y = rng.choice(labels, size, p=shares)
        return (y, *softmax_scores(rng, y, strength, 0.6, decimals=3))

    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    y, a, b = population(400_000)
    truth = np.mean([sklearn_metrics.roc_auc_score(y == c, a[:, k])
                     - sklearn_metrics.roc_auc_score(y == c, b[:, k])
                     for k, c in enumerate(labels)])
    covered = 0
    for _ in range(SIMULATIONS):
        found = delong_ovr(*ovr_placements(*population(300))[:3])
        covered += found.low <= truth <= found.high
    assert within(covered / SIMULATIONS), covered / SIMULATIONS


# --------------------------------------------------------------------------- row bootstrap
def test_average_precision_of_a_resample_is_sklearns_with_the_multiplicities_as_weights(
        ) -> None:
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(51)
    y = rng.integers(0, 2, 700)
    score = np.round(np.clip(0.3 * y + 0.7 * rng.random(700), 0, 1), 2)  # ties
    ranked = RankedScores(score.tolist(), (y == 1).tolist())
    assert ranked.average_precision([1] * 700) == pytest.approx(
        sklearn_metrics.average_precision_score(y, score), abs=1e-12)
    for _ in range(5):
        counts = rng.multinomial(700, np.full(700, 1 / 700))
        assert ranked.average_precision(counts.tolist()) == pytest.approx(
            sklearn_metrics.average_precision_score(y, score, sample_weight=counts), abs=1e-12)


def test_the_median_of_a_resample_is_numpys_median_of_the_repeated_rows() -> None:
    rng = np.random.default_rng(52)
    values = np.round(rng.exponential(3.0, 501), 1)
    ordered = SortedValues(values.tolist())
    assert ordered.median([1] * 501) == np.median(values)
    for size in (500, 501):  # an even and an odd resample
        counts = rng.multinomial(size, np.full(501, 1 / 501))
        assert ordered.median(counts.tolist()) == np.median(np.repeat(values, counts))


def ap_data(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = (rng.random(n) < 0.3).astype(int)
    shared = rng.normal(size=n)
    a = 1 / (1 + np.exp(-(1.3 * y + 0.6 * shared + 0.8 * rng.normal(size=n))))
    b = 1 / (1 + np.exp(-(0.9 * y + 0.6 * shared + 0.8 * rng.normal(size=n))))
    return y, a, b


def ap_bootstrap(y: np.ndarray, a: np.ndarray, b: np.ndarray, rows: int | None = None,
                 draws: int = 200, seed: int = 0) -> Any:
    positive = (y == 1).tolist()
    model, base = RankedScores(a.tolist(), positive), RankedScores(b.tolist(), positive)
    value, baseline = model.average_precision([1] * len(y)), base.average_precision([1] * len(y))
    return row_bootstrap(value, baseline, rows or len(y),
                         lambda c: model.average_precision(c) - base.average_precision(c),
                         len(y), "paired bootstrap of the rows", draws=draws, seed=seed)


def test_the_row_bootstrap_is_the_percentile_interval_of_sklearns_values_on_the_resamples(
        ) -> None:
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    y, a, b = ap_data(np.random.default_rng(53), 300)
    found = ap_bootstrap(y, a, b, draws=300, seed=7)
    # the same resamples: m rows drawn with replacement by random.Random(seed).choices
    rng = random.Random(7)
    draws = []
    for _ in range(300):
        counts = np.bincount(rng.choices(range(300), k=300), minlength=300)
        draws.append(sklearn_metrics.average_precision_score(y, a, sample_weight=counts)
                     - sklearn_metrics.average_precision_score(y, b, sample_weight=counts))
    assert (found.low, found.high) == pytest.approx(
        tuple(np.quantile(draws, [0.025, 0.975])), abs=1e-12)
    assert found.p_value(0.0) == pytest.approx(
        (1 + sum(d <= 0 for d in draws)) / 301, abs=1e-12)
    again = ap_bootstrap(y, a, b, draws=300, seed=7)
    assert (again.low, again.high) == (found.low, found.high)


def test_a_sample_of_m_of_n_rows_scales_the_spread_by_the_root_of_m_over_n() -> None:
    y, a, b = ap_data(np.random.default_rng(54), 400)
    on_all = ap_bootstrap(y, a, b, draws=300)
    as_sample = ap_bootstrap(y, a, b, rows=1600, draws=300)  # the same 400 rows, of 1600
    d = on_all.difference
    assert as_sample.difference == d
    assert (as_sample.low - d, as_sample.high - d) == pytest.approx(
        ((on_all.low - d) / 2, (on_all.high - d) / 2), abs=1e-12)


def test_row_bootstrap_intervals_of_average_precision_cover_the_true_difference(
        ) -> None:
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(55)
    y, a, b = ap_data(rng, 1_000_000)
    truth = (sklearn_metrics.average_precision_score(y, a)
             - sklearn_metrics.average_precision_score(y, b))
    simulations = 600
    covered = 0
    for i in range(simulations):
        found = ap_bootstrap(*ap_data(rng, 300), draws=200, seed=i)
        covered += found.low <= truth <= found.high
    assert 0.925 <= covered / simulations <= 0.975, covered / simulations


def test_subsampled_row_bootstrap_intervals_of_median_errors_cover_the_true_difference(
        ) -> None:
    # |e| of N(0, 1) and N(0, 1.25^2) errors, correlated: medians 0.6745 and 1.25 * 0.6745
    truth = ss.norm.ppf(0.75) * (1 - 1.25)
    rng = np.random.default_rng(56)
    simulations, n, m = 600, 3000, 400
    covered = 0
    for i in range(simulations):
        shared = rng.normal(size=n)
        ea = np.abs(0.8 * shared + 0.6 * rng.normal(size=n))
        eb = np.abs(1.25 * (0.8 * shared + 0.6 * rng.normal(size=n)))
        pick = rng.choice(n, m, replace=False)
        model, base = SortedValues(ea[pick].tolist()), SortedValues(eb[pick].tolist())
        found = row_bootstrap(float(np.median(ea)), float(np.median(eb)), n,
                              lambda c, a=model, b=base: a.median(c) - b.median(c), m,
                              "paired bootstrap of the rows", draws=200, seed=i)
        covered += found.low <= truth <= found.high
    assert 0.925 <= covered / simulations <= 0.975, covered / simulations
