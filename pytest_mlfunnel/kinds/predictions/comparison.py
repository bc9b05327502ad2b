"""The model against the baseline on the same rows: the paired method of each metric."""

from __future__ import annotations

import math
import random
from typing import Any

from pytest_mlfunnel.kinds.predictions.config import PredictionsConfig
from pytest_mlfunnel.kinds.predictions.evidence import (
    Evidence,
    Scope,
    label_order,
    same_label,
)
from pytest_mlfunnel.kinds.predictions.metrics import (
    auc_of,
    metric_value,
)
from pytest_mlfunnel.outcome import CriterionError
from pytest_mlfunnel.paired import (
    BOOTSTRAP_ROWS,
    BOOTSTRAP_SEED,
    CalibrationCell,
    PairedDifference,
    PairedError,
    RankedScores,
    SortedValues,
    calibration_bootstrap,
    delong,
    delong_ovr,
    mcnemar,
    mean_difference,
    multinomial_bootstrap,
    row_bootstrap,
)
from pytest_mlfunnel.stats import normal_ppf


def compare_paired(check: PredictionsConfig, evidence: Evidence, metric: str, scope: Scope
                   ) -> PairedDifference:
    """The model and the baseline on the same rows: both values, the difference, its 95%
    interval, by the paired method of the metric (see paired.py)."""
    try:
        return _compare(check, evidence, metric, scope)
    except PairedError as exc:
        raise CriterionError(f"cannot compare with the baseline: {exc}") from None


def _compare(check: PredictionsConfig, evidence: Evidence, metric: str, scope: Scope
             ) -> PairedDifference:
    value = metric_value(check, evidence, metric, scope)
    n = scope.rows
    if check.task == "regression":
        if metric == "median_ae":
            return _bootstrap_rows(check, evidence, metric, value, scope)
        return _compare_regression(metric, value, scope)
    if metric in ("log_loss", "brier"):
        total, total_sq = ((scope.sums.get("d_log", 0.0), scope.sums.get("d_log2", 0.0))
                           if metric == "log_loss" else
                           (scope.sums.get("d_brier", 0.0), scope.sums.get("d_brier2", 0.0)))
        return mean_difference(value, value - total / n, n, total, total_sq,
                               "paired mean of per-row losses")
    if metric == "ece":
        calibration = [CalibrationCell(m, b, *sums) for (m, b), sums in sorted(
            scope.calibration.items())]
        if not calibration:
            raise CriterionError("the baseline's scores were not binned")
        by_bin: dict[int, float] = {}
        for cell in calibration:
            by_bin[cell.baseline_bin] = by_bin.get(cell.baseline_bin, 0.0) + cell.q
        baseline = sum(abs(v) for v in by_bin.values()) / scope.rows
        return calibration_bootstrap(value, baseline, calibration)
    if metric == "roc_auc":
        ranks = scope.ranks
        if ranks is None or len(ranks.scores) != 2:
            raise CriterionError("the baseline's scores could not be ranked")
        first, second = ranks.scores
        baseline = auc_of(ranks, 1)
        return delong(value, baseline, ranks.positives, ranks.negatives,
                      (first.below, second.below), (first.below_sq, second.below_sq),
                      ranks.cross_below, (first.above_sq, second.above_sq), ranks.cross_above)
    if metric == "roc_auc_ovr":
        return _compare_ovr(scope)
    if metric == "average_precision":
        return _bootstrap_rows(check, evidence, metric, value, scope)
    baseline = metric_value(check, evidence, metric, scope, which=2)
    cells = sorted(scope.confusion, key=lambda cell: tuple(label_order(v) for v in cell))
    if metric == "accuracy":
        only_model = sum(c for k, c in scope.confusion.items()
                         if _right(check, evidence, k, 1) and not _right(check, evidence, k, 2))
        only_baseline = sum(c for k, c in scope.confusion.items()
                            if _right(check, evidence, k, 2) and not _right(check, evidence, k,
                                                                            1))
        return mcnemar(value, baseline, only_model, only_baseline, n)

    def difference(counts: list[int]) -> float:
        table = Scope(rows=sum(counts), confusion=dict(zip(cells, counts, strict=True)))
        return (metric_value(check, evidence, metric, table)
                - metric_value(check, evidence, metric, table, which=2))

    return multinomial_bootstrap(value, baseline, [scope.confusion[c] for c in cells],
                                 difference)


def _compare_ovr(scope: Scope) -> PairedDifference:
    """roc_auc_ovr: DeLong through per-row influence terms, from the placements summed per
    true class (see paired.delong_ovr)."""
    if not scope.placements:
        raise CriterionError("the baseline's scores could not be ranked")
    count = len(next(iter(scope.placements)))
    by_class = [scope.placements.get(tuple(int(i == c) for i in range(count)))
                for c in range(count)]
    if any(sums is None for sums in by_class):
        raise PairedError("needs rows of every class")
    return delong_ovr([s.rows for s in by_class if s], [s.placed for s in by_class if s],
                      [s.crossed for s in by_class if s])


def _bootstrap_rows(check: PredictionsConfig, evidence: Evidence, metric: str, value: float,
                    scope: Scope) -> PairedDifference:
    """average_precision, median_ae: the paired bootstrap of the rows (paired.row_bootstrap),
    on at most BOOTSTRAP_ROWS of the scope's sampled rows."""
    rows = sorted(scope.resample)  # one order on every engine: the same resamples
    if not rows:
        raise CriterionError("no rows were read for the bootstrap")
    if len(rows) > BOOTSTRAP_ROWS:
        rows = random.Random(BOOTSTRAP_SEED).sample(rows, BOOTSTRAP_ROWS)
    if metric == "median_ae":
        model, base = SortedValues([r[0] for r in rows]), SortedValues([r[1] for r in rows])
        baseline = scope.median.get("b_abs")
        if baseline is None:
            raise CriterionError("the baseline's median error was not computed")
        return row_bootstrap(value, baseline, scope.rows,
                             lambda counts: model.median(counts) - base.median(counts),
                             len(rows), "paired bootstrap of the rows")
    positive = [r[0] == 1.0 for r in rows]
    if sum(positive) < 2:
        raise PairedError(f"the bootstrap needs at least 2 positive rows "
                          f"({sum(positive)} of {len(rows)} read)")
    ranked = RankedScores([r[1] for r in rows], positive)
    ranked_base = RankedScores([r[2] for r in rows], positive)
    baseline = scope.sums.get("b_ap")
    if baseline is None:
        raise CriterionError("the baseline's scores could not be ranked")
    return row_bootstrap(value, baseline, scope.rows,
                         lambda counts: (ranked.average_precision(counts)
                                         - ranked_base.average_precision(counts)),
                         len(rows), "paired bootstrap of the rows")


def _right(check: PredictionsConfig, evidence: Evidence, cell: tuple[Any, Any, Any],
           which: int) -> bool:
    if check.task == "binary":
        return same_label(evidence.positive, cell[0]) == same_label(evidence.positive, cell[which])
    return bool(cell[0] == cell[which])


def _compare_regression(metric: str, value: float, scope: Scope) -> PairedDifference:
    n, sums = scope.rows, scope.sums
    if metric == "mape":
        return mean_difference(value, sums.get("b_pct", 0.0) / n, n, sums.get("d_pct", 0.0),
                               sums.get("d_pct2", 0.0),
                               "paired mean of absolute percentage errors")
    if metric == "mae":
        total = sums.get("abs", 0.0) - sums.get("b_abs", 0.0)
        total_sq = sums.get("sq", 0.0) + sums.get("b_sq", 0.0) - 2 * sums.get("ab", 0.0)
        return mean_difference(value, sums.get("b_abs", 0.0) / n, n, total, total_sq,
                               "paired mean of absolute errors")
    # squared errors: d_i = e_i^2 - b_i^2
    total = sums.get("sq", 0.0) - sums.get("b_sq", 0.0)
    total_sq = sums.get("sq2", 0.0) + sums.get("b_sq2", 0.0) - 2 * sums.get("sq_bsq", 0.0)
    squared = mean_difference(0.0, 0.0, n, total, total_sq)
    if metric == "r2":
        centred = sums.get("centred", 0.0)
        if centred <= 0:
            raise PairedError("r2 of a constant target")
        scale = -n / centred  # r2 = 1 - n * mse / centred
        baseline = 1 - sums.get("b_sq", 0.0) / centred
        low, high = sorted((scale * squared.low, scale * squared.high))
        return PairedDifference(value, baseline, "paired mean of squared errors", low, high,
                          se=abs(scale) * (squared.se or 0.0))
    # rmse: the delta method on sqrt(mse) of each model, with the covariance of the squares
    mse_a, mse_b = sums.get("sq", 0.0) / n, sums.get("b_sq", 0.0) / n
    if mse_a <= 0 or mse_b <= 0:
        raise PairedError("a model without errors")
    var_a = (sums.get("sq2", 0.0) - n * mse_a**2) / (n - 1)
    var_b = (sums.get("b_sq2", 0.0) - n * mse_b**2) / (n - 1)
    cov = (sums.get("sq_bsq", 0.0) - n * mse_a * mse_b) / (n - 1)
    ga, gb = 1 / (2 * math.sqrt(mse_a)), 1 / (2 * math.sqrt(mse_b))
    se = math.sqrt(max((ga * ga * var_a + gb * gb * var_b - 2 * ga * gb * cov) / n, 0.0))
    baseline = math.sqrt(mse_b)
    z = normal_ppf(0.975)
    d = value - baseline
    return PairedDifference(value, baseline, "delta method on paired squared errors", d - z * se,
                      d + z * se, se=se)
