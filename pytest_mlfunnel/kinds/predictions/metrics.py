"""Every metric of a scope (all judged rows, or one slice) from its counts and sums."""

from __future__ import annotations

import math
from typing import Any

from pytest_mlfunnel.engines.expr import ScoreRanks
from pytest_mlfunnel.kinds.predictions.config import (
    BINARY_LABEL_METRICS,
    ECE_EDGES,
    PredictionsConfig,
)
from pytest_mlfunnel.kinds.predictions.evidence import (
    Evidence,
    Scope,
    label_order,
    same_label,
    shown,
)
from pytest_mlfunnel.outcome import CriterionError


def _ratio(top: float, bottom: float) -> float:
    return top / bottom if bottom else 0.0


def binary_counts(confusion: dict[tuple[Any, Any, Any], int], positive: Any, which: int = 1
                  ) -> tuple[int, int, int, int]:
    """(tp, fp, fn, tn) of the prediction (which=1) or the baseline prediction (which=2)."""
    tp = fp = fn = tn = 0
    for cell, n in confusion.items():
        truth, guess = same_label(positive, cell[0]), same_label(positive, cell[which])
        if truth and guess:
            tp += n
        elif guess:
            fp += n
        elif truth:
            fn += n
        else:
            tn += n
    return tp, fp, fn, tn


def binary_label_metric(name: str, tp: float, fp: float, fn: float, tn: float) -> float:
    n = tp + fp + fn + tn
    if name == "accuracy":
        return _ratio(tp + tn, n)
    if name == "precision":
        return _ratio(tp, tp + fp)
    if name == "recall":
        return _ratio(tp, tp + fn)
    if name == "f1":
        return _ratio(2 * tp, 2 * tp + fp + fn)
    if name == "positive_rate":
        return _ratio(tp + fp, n)
    if name == "balanced_accuracy":  # the mean recall of the classes present in the target
        recalls = [r for r, present in ((_ratio(tp, tp + fn), tp + fn > 0),
                                        (_ratio(tn, tn + fp), tn + fp > 0)) if present]
        return sum(recalls) / len(recalls) if recalls else 0.0
    raise CriterionError(f"unknown metric {name!r}")


def multiclass_metric(name: str, confusion: dict[tuple[Any, Any, Any], int], which: int = 1
                      ) -> float:
    classes = sorted({c[0] for c in confusion} | {c[which] for c in confusion}, key=label_order)
    true = dict.fromkeys(classes, 0)
    guessed = dict.fromkeys(classes, 0)
    right = dict.fromkeys(classes, 0)
    for cell, n in confusion.items():
        true[cell[0]] += n
        guessed[cell[which]] += n
        if cell[0] == cell[which]:
            right[cell[0]] += n
    total = sum(true.values())
    if name == "accuracy" or name in ("precision_micro", "recall_micro", "f1_micro"):
        return _ratio(sum(right.values()), total)
    if name == "balanced_accuracy":
        present = [c for c in classes if true[c]]
        return sum(right[c] / true[c] for c in present) / len(present) if present else 0.0
    if name.startswith("class."):
        label_text, _, which_metric = name[len("class."):].rpartition(".")
        label = next((c for c in classes if same_label(label_text, c)), None)
        if label is None:
            raise CriterionError(f"no class {label_text!r} (classes: "
                                 f"{', '.join(shown(c) for c in classes)})")
        return _per_class(which_metric, right[label], guessed[label], true[label])
    metric, _, average = name.rpartition("_")
    per = [_per_class(metric, right[c], guessed[c], true[c]) for c in classes]
    if average == "macro":
        return sum(per) / len(per) if per else 0.0
    if average == "weighted":
        return _ratio(sum(v * true[c] for v, c in zip(per, classes, strict=True)), total)
    raise CriterionError(f"unknown metric {name!r}")


def _per_class(metric: str, right: int, guessed: int, true: int) -> float:
    if metric == "precision":
        return _ratio(right, guessed)
    if metric == "recall":
        return _ratio(right, true)
    return _ratio(2 * right, guessed + true)


def auc_of(ranks: ScoreRanks, index: int = 0) -> float:
    if not ranks.positives or not ranks.negatives:
        raise CriterionError("needs both classes among the judged rows "
                             f"({ranks.positives} positive, {ranks.negatives} negative)")
    return ranks.scores[index].below / (ranks.positives * ranks.negatives)


def score_metric(name: str, scope: Scope) -> float:
    n = scope.rows
    if name == "log_loss":
        return scope.sums.get("loss", 0.0) / n
    if name == "brier":
        positives = scope.sums.get("pos", 0.0)
        squared = (positives - 2 * scope.sums.get("pos_s", 0.0) + scope.sums.get("s2", 0.0))
        return squared / n
    if name == "ece":
        total = 0.0
        for b in range(len(ECE_EDGES) + 1):
            pos = scope.bins.get((b, True), [0.0, 0.0])
            neg = scope.bins.get((b, False), [0.0, 0.0])
            total += abs(pos[0] - (pos[1] + neg[1]))
        return total / n
    if scope.ranks is None:
        raise CriterionError("the scores could not be ranked")
    if name == "roc_auc":
        return auc_of(scope.ranks)
    if name == "average_precision":
        if not scope.ranks.positives:
            raise CriterionError("average_precision needs positive rows")
        precision_sum = scope.ranks.scores[0].precision_sum
        if precision_sum is None:
            raise CriterionError("the scores were not ranked for it")
        return precision_sum / scope.ranks.positives
    raise CriterionError(f"unknown metric {name!r}")


def regression_metric(name: str, scope: Scope) -> float:
    n = scope.rows
    sums = scope.sums
    if name == "mae":
        return sums.get("abs", 0.0) / n
    if name == "rmse":
        return math.sqrt(sums.get("sq", 0.0) / n)
    if name == "mape":
        return sums.get("pct", 0.0) / n
    if name == "max_error":
        return scope.maximum.get("abs", 0.0)
    if name == "median_ae":
        return scope.median.get("abs", 0.0)
    if name == "r2":
        centred = sums.get("centred", 0.0)
        if centred <= 0:  # a constant target: sklearn's convention
            return 1.0 if sums.get("sq", 0.0) == 0 else 0.0
        return 1 - sums.get("sq", 0.0) / centred
    raise CriterionError(f"unknown metric {name!r}")


def metric_value(check: PredictionsConfig, evidence: Evidence, metric: str, scope: Scope,
                 which: int = 1) -> float:
    """One metric of one scope; which=2 judges the baseline prediction."""
    if evidence.value_problem:
        raise CriterionError(evidence.value_problem)
    if scope.rows == 0:
        raise CriterionError("no rows to judge")
    if metric == "rows":
        return scope.rows
    if check.task == "regression":
        return regression_metric(metric, scope)
    if evidence.label_problem:
        raise CriterionError(evidence.label_problem)
    if check.task == "binary":
        if metric in BINARY_LABEL_METRICS:
            return binary_label_metric(metric, *binary_counts(scope.confusion, evidence.positive,
                                                              which))
        if evidence.score_problem:
            raise CriterionError(evidence.score_problem)
        return score_metric(metric, scope)
    if metric == "roc_auc_ovr":
        if evidence.score_problem:
            raise CriterionError(evidence.score_problem)
        aucs = [auc_of(ranks) for _, ranks in sorted(scope.class_ranks.items(),
                                                     key=lambda kv: label_order(kv[0]))]
        if not aucs:
            raise CriterionError("the scores could not be ranked")
        return sum(aucs) / len(aucs)
    return multiclass_metric(metric, scope.confusion, which)
