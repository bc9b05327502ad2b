"""``predictions``: model quality measured from prediction rows, per slice, against a baseline.

The rows never leave the engine. One grouped query (``Table.crosstab``) counts rows per
(target, prediction, baseline prediction, slice values, score bin, score range) and sums the
per-row losses; every confusion-matrix metric, log loss, Brier score and calibration error
is a sum over those groups. ROC AUC and average precision need the order of the scores:
``Table.score_ranks`` computes the Mann-Whitney rank sums (and the DeLong placements when a
baseline score is paired) in the engine, once for all rows and once per slice column.
Regression sums errors per slice column, with the median of absolute errors per group.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pytest_mlfunnel.engines.expr import (
    Expr,
    Ranking,
    ScoreRanks,
    absolute,
    all_of,
    binned,
    clip,
    col,
    equals,
    is_null,
    ln,
    outside,
)
from pytest_mlfunnel.engines.protocol import Table
from pytest_mlfunnel.expectations import Expectation, format_value
from pytest_mlfunnel.kinds.base import (
    CheckConfig,
    CheckKind,
    Criterion,
    EvalContext,
    MetricExpectations,
    PlanContext,
    Source,
)
from pytest_mlfunnel.outcome import CriterionError, Outcome, Status
from pytest_mlfunnel.paired import (
    PairedDifference,
    PairedError,
    delong,
    mcnemar,
    mean_difference,
    multinomial_bootstrap,
)
from pytest_mlfunnel.sources.tabular import missing_column, open_table
from pytest_mlfunnel.stats import normal_ppf

Task = Literal["binary", "multiclass", "regression"]
Label = bool | int | float | str

#: log loss clips probabilities to [EPS, 1 - EPS]: float64 machine epsilon, as sklearn does
EPS = 2.220446049250313e-16
#: calibration bins: 10 equal-width bins, right-closed ([0, 0.1], (0.1, 0.2], ...), with the
#: edges numpy's linspace(0, 1, 11) has (so they agree with sklearn's calibration_curve)
ECE_EDGES = [i * 0.1 for i in range(1, 10)]

BINARY_LABEL_METRICS = ("accuracy", "balanced_accuracy", "precision", "recall", "f1",
                        "positive_rate")
BINARY_SCORE_METRICS = ("roc_auc", "average_precision", "log_loss", "brier", "ece")
MULTICLASS_METRICS = ("accuracy", "balanced_accuracy", "precision_macro", "recall_macro",
                      "f1_macro", "precision_weighted", "recall_weighted", "f1_weighted",
                      "precision_micro", "recall_micro", "f1_micro", "roc_auc_ovr")
CLASS_METRICS = ("precision", "recall", "f1")
REGRESSION_METRICS = ("mae", "rmse", "r2", "mape", "median_ae", "max_error")
#: metrics where smaller is better (for the words of a baseline comparison)
RANKED_METRICS = ("roc_auc", "average_precision", "roc_auc_ovr")


def task_metrics(task: str) -> tuple[str, ...]:
    if task == "binary":
        return ("rows", *BINARY_LABEL_METRICS, *BINARY_SCORE_METRICS)
    if task == "multiclass":
        return ("rows", *MULTICLASS_METRICS)
    return ("rows", *REGRESSION_METRICS)


@dataclass(frozen=True)
class MetricName:
    """``slices.plan.pro.class.a.f1`` -> slice ("plan", "pro"), metric "class.a.f1"."""

    text: str
    metric: str
    slice_column: str | None = None
    slice_value: str | None = None  # "*": every value present

    @property
    def base(self) -> str:
        return self.metric.rsplit(".", 1)[-1] if self.metric.startswith("class.") else \
            self.metric


def parse_metric_name(text: str, task: str) -> MetricName:
    metric, column, value = text, None, None
    if text.startswith("slices."):
        column, _, rest = text[len("slices."):].partition(".")
        if ".class." in rest:
            value, _, tail = rest.partition(".class.")
            metric = "class." + tail
        else:
            value, _, metric = rest.rpartition(".")
        if not column or not value or not metric:
            raise ValueError(f"{text!r}: write slices.<column>.<value>.<metric> or "
                             "slices.<column>.*.<metric>")
    if metric.startswith("class."):
        label, _, which = metric[len("class."):].rpartition(".")
        if task != "multiclass" or not label or which not in CLASS_METRICS:
            raise ValueError(f"{text!r}: per-class metrics are class.<label>.precision, "
                             ".recall or .f1, for task = \"multiclass\"")
    elif metric not in task_metrics(task):
        raise ValueError(f"{text!r}: unknown metric for task = {task!r} (metrics: "
                         f"{', '.join(task_metrics(task))})")
    return MetricName(text, metric, column, value)


class BaselineColumns(BaseModel):
    """The production model's predictions: columns of the predictions table, or of another
    table joined on ``key``."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    source: Source | None = None
    key: str | list[str] | None = None
    prediction: str | None = None
    score: str | None = None

    @property
    def keys(self) -> list[str]:
        return [] if self.key is None else [self.key] if isinstance(self.key, str) else list(
            self.key)

    @model_validator(mode="after")
    def _columns_given(self) -> BaselineColumns:
        if self.prediction is None and self.score is None:
            raise ValueError("name the baseline's prediction and/or score column")
        if self.source is not None and not self.keys:
            raise ValueError("key: a baseline in another table is joined on a key column, "
                             "e.g. key = \"customer_id\"")
        if self.source is None and self.key is not None:
            raise ValueError("key: only a baseline in another table (source = ...) is joined")
        return self


#: metrics a baseline comparison has a paired method for (see paired.py)
PAIRED = {
    "binary": (*BINARY_LABEL_METRICS, "roc_auc", "log_loss", "brier"),
    "multiclass": ("accuracy", "balanced_accuracy", "precision_macro", "recall_macro",
                   "f1_macro", "precision_weighted", "recall_weighted", "f1_weighted",
                   "precision_micro", "recall_micro", "f1_micro", "precision", "recall", "f1"),
    "regression": ("mae", "rmse", "r2"),
}


class PredictionsConfig(CheckConfig):
    predictions: Source
    task: Task
    target: str
    prediction: str | None = None
    score: str | list[str] | None = None
    positive: Label = 1
    slices: list[str] = Field(default_factory=list)
    min_slice_rows: int = Field(default=30, ge=0)
    baseline: str | BaselineColumns | None = None
    significance: float | None = None
    expect: MetricExpectations

    @field_validator("significance")
    @classmethod
    def _level(cls, value: float | None) -> float | None:
        if value is not None and not 0 < value < 0.5:
            raise ValueError(f"a one-sided significance level between 0 and 0.5, got {value}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> PredictionsConfig:
        if not self.expect:
            raise ValueError("expect: give at least one metric, e.g. expect = { accuracy = "
                             "\">= 0.8\" }")
        names = {}
        for text in self.expect:
            try:
                names[text] = parse_metric_name(text, self.task)
            except ValueError as exc:
                raise ValueError(f"expect.{exc}") from None
        for text, name in names.items():
            if name.slice_column is not None and name.slice_column not in self.slices:
                raise ValueError(f"expect.{text}: {name.slice_column!r} is not one of slices "
                                 f"({', '.join(self.slices) or 'none given'})")
            needs_score = name.base in BINARY_SCORE_METRICS or name.base == "roc_auc_ovr"
            if needs_score and self.score is None:
                raise ValueError(f"expect.{text}: {name.base} needs score = the column of "
                                 "predicted probabilities")
            needs_labels = name.base not in ("rows", *BINARY_SCORE_METRICS, "roc_auc_ovr")
            if needs_labels and self.prediction is None:
                raise ValueError(f"expect.{text}: {name.base} needs prediction = the column "
                                 "of predicted labels")
            if self.expect[text].uses_baseline:
                self._baseline_usable(text, name)
        if self.task == "regression" and self.prediction is None:
            raise ValueError("prediction: regression needs the column of predicted values")
        if self.task == "binary" and isinstance(self.score, list):
            raise ValueError("score: binary takes one column, the positive class's probability")
        if self.task == "multiclass" and isinstance(self.score, str):
            raise ValueError("score: multiclass takes a list of per-class probability columns "
                             "(in the order of the sorted class labels)")
        if self.task == "regression" and self.score is not None:
            raise ValueError("score: regression has no scores; give prediction only")
        if isinstance(self.baseline, BaselineColumns) and self.baseline.source is not None:
            raise ValueError("baseline.source: a baseline in another table is not supported "
                             "yet; put the production predictions in columns of the "
                             "predictions table: baseline = { prediction = \"...\", score = "
                             "\"...\" }")
        return self

    def _baseline_usable(self, text: str, name: MetricName) -> None:
        where = f"expect.{text}: {self.expect[text].text!r} compares with the baseline"
        if self.baseline is None:
            raise ValueError(f"{where}, but no 'baseline' is given")
        if name.base not in PAIRED[self.task]:
            raise ValueError(f"{where}, and {name.base} has no paired method (paired: "
                             f"{', '.join(PAIRED[self.task])}); compare it with a number")
        if name.base in BINARY_SCORE_METRICS and self.baseline_score is None:
            raise ValueError(f"{where}: {name.base} needs the baseline's scores: baseline = "
                             "{ prediction = \"...\", score = \"...\" }")
        if name.base not in BINARY_SCORE_METRICS and self.baseline_prediction is None:
            raise ValueError(f"{where}: {name.base} needs the baseline's predictions: "
                             "baseline = \"<column>\" or { prediction = \"...\" }")

    @property
    def baseline_prediction(self) -> str | None:
        if isinstance(self.baseline, BaselineColumns):
            return self.baseline.prediction
        return self.baseline

    @property
    def baseline_score(self) -> str | None:
        return self.baseline.score if isinstance(self.baseline, BaselineColumns) else None

    def metric_names(self) -> dict[str, MetricName]:
        return {text: parse_metric_name(text, self.task) for text in self.expect}


# --------------------------------------------------------------------------- evidence
@dataclass
class Scope:
    """Counts and sums of one set of rows (all judged rows, or one slice)."""

    rows: int = 0
    #: (target, prediction, baseline prediction) -> rows
    confusion: dict[tuple[Any, Any, Any], int] = field(default_factory=dict)
    sums: dict[str, float] = field(default_factory=dict)
    #: (score bin, target is positive) -> (rows, sum of scores); the same for the baseline
    bins: dict[tuple[int, bool], list[float]] = field(default_factory=dict)
    baseline_bins: dict[tuple[int, bool], list[float]] = field(default_factory=dict)
    maximum: dict[str, float] = field(default_factory=dict)
    median: dict[str, float] = field(default_factory=dict)
    ranks: ScoreRanks | None = None
    class_ranks: dict[Any, ScoreRanks] = field(default_factory=dict)

    def add(self, name: str, value: float | None) -> None:
        if value is not None:
            self.sums[name] = self.sums.get(name, 0.0) + value


@dataclass
class Evidence:
    rows: int  # all rows of the table
    dropped: int  # rows left out: a null (or NaN) target, prediction or score
    dropped_why: list[str]
    overall: Scope
    slices: dict[str, dict[Any, Scope]]
    labels: list[Any]
    positive: Any = None
    score_problem: str | None = None  # scores outside [0, 1]
    label_problem: str | None = None

    def scope(self, column: str | None, value: Any) -> Scope:
        return self.overall if column is None else self.slices[column][value]


def _same(config_value: Any, data_value: Any) -> bool:
    if isinstance(data_value, str) and not isinstance(config_value, str):
        return (str(config_value).lower() if isinstance(config_value, bool)
                else str(config_value)) == data_value
    if isinstance(config_value, str) and not isinstance(data_value, str):
        return config_value == (str(data_value).lower() if isinstance(data_value, bool)
                                else str(data_value))
    return bool(config_value == data_value)


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else format_value(value)


class Collector:
    """Builds the evidence of one check from its table: the queries, then the sums."""

    def __init__(self, check: PredictionsConfig, table: Table) -> None:
        self.check = check
        self.table = table
        self.baseline_column = check.baseline_prediction
        self.baseline_score = check.baseline_score
        self.scores = check.score if isinstance(check.score, list) else (
            [check.score] if check.score else [])
        self.names = check.metric_names()

    def _columns(self) -> list[str]:
        """The columns used, in the order they are checked; a null in any but the slices
        leaves its row out."""
        used = [self.check.target]
        used += [c for c in (self.check.prediction, self.baseline_column) if c]
        used += self.scores + ([self.baseline_score] if self.baseline_score else [])
        return list(dict.fromkeys(used))

    def wants(self, metrics: Iterable[str], baseline: bool | None = None) -> bool:
        return any(n.base in metrics and (baseline is None or baseline == self.check.expect[
            n.text].uses_baseline) for n in self.names.values())

    def collect(self) -> Evidence:
        schema = self.table.schema()
        for column in [*self._columns(), *self.check.slices]:
            if column not in schema:
                raise CriterionError(missing_column(column, schema, self.table.display))
        for column in self.scores + ([self.baseline_score] if self.baseline_score else []):
            if schema[column] not in ("float", "int", "bool"):
                raise CriterionError(f"{column}: scores must be numbers (probabilities), "
                                     f"{column} is {schema[column]}")
        if self.check.task == "regression":
            for column in self._columns():
                if schema[column] not in ("float", "int"):
                    raise CriterionError(f"{column}: regression needs numbers, {column} is "
                                         f"{schema[column]}")
            return self._regression()
        return self._classification()

    def _why(self, dropped: dict[str, int]) -> list[str]:
        return [f"{dropped[c]} with a null {c}" for c in self._columns() if dropped.get(c)]

    def _null_flags(self) -> list[Expr]:
        return [is_null(col(c)) for c in self._columns()]

    # ------------------------------------------------------------------ classification
    def _classification(self) -> Evidence:
        check = self.check
        binary = check.task == "binary"
        flags = self._null_flags()
        zero = Expr("lit", (0,))
        keys: list[Expr] = [*flags, col(check.target),
                            col(check.prediction) if check.prediction else zero,
                            col(self.baseline_column) if self.baseline_column else zero]
        keys += [col(s) for s in check.slices]
        keys += [outside(col(s), 0.0, 1.0) for s in self.scores]
        if self.baseline_score:
            keys.append(outside(col(self.baseline_score), 0.0, 1.0))
        score = self.scores[0] if binary and self.scores else None
        values: list[tuple[str, Expr]] = []
        if score is not None:
            keys.append(binned(col(score), ECE_EDGES))
            s = col(score)
            clipped = clip(s, EPS, 1 - EPS)
            values += [("sum", s), ("sum", s * s), ("sum", ln(clipped)),
                       ("sum", ln(1.0 - clipped))]
            if self.baseline_score:
                y = equals(check.target, check.positive)
                log_diff = _log_loss(y, s) - _log_loss(y, col(self.baseline_score))
                brier_diff = ((y - s) * (y - s) - (y - col(self.baseline_score))
                              * (y - col(self.baseline_score)))
                values += [("sum", log_diff), ("sum", log_diff * log_diff),
                           ("sum", brier_diff), ("sum", brier_diff * brier_diff)]
        groups = self.table.crosstab(keys, values)
        nflags = len(flags)
        width = nflags + 3 + len(check.slices)
        slices: dict[str, dict[Any, Scope]] = {c: {} for c in check.slices}
        overall = Scope()
        dropped: dict[str, int] = {}
        out_of_range = 0
        kept: list[tuple[tuple[Any, ...], int, list[Any]]] = []
        for key, n, sums in groups:
            nulls = [c for c, flag in zip(self._columns(), key[:nflags], strict=True) if flag]
            if nulls:
                dropped[nulls[0]] = dropped.get(nulls[0], 0) + n
                continue
            ranges = key[width:width + len(self.scores) + bool(self.baseline_score)]
            if any(flag == 1 for flag in ranges):
                out_of_range += n
            kept.append((key[nflags:], n, sums))
        labels = sorted({k[0] for k, _, _ in kept} | (
            {k[1] for k, _, _ in kept} if check.prediction else set()) | (
            {k[2] for k, _, _ in kept} if self.baseline_column else set()), key=_sort_key)
        evidence = Evidence(rows=sum(n for _, n, _ in groups),
                            dropped=sum(dropped.values()),
                            dropped_why=self._why(dropped),
                            overall=overall, slices=slices, labels=labels)
        if binary:
            self._binary_labels(evidence)
        if out_of_range:
            evidence.score_problem = (
                f"{out_of_range} rows have a score outside [0, 1] in "
                f"{', '.join(self.scores + ([self.baseline_score] if self.baseline_score else []))}"
                "; scores must be probabilities")
        slice_end = 3 + len(check.slices)
        for key, n, sums in kept:
            scopes = [overall] + [slices[c].setdefault(v, Scope()) for c, v in
                                  zip(check.slices, key[3:slice_end], strict=True)
                                  if v is not None]
            truth = key[0]
            positive = binary and _same(evidence.positive, truth)
            for scope in scopes:
                scope.rows += n
                cell = (truth, key[1], key[2])
                scope.confusion[cell] = scope.confusion.get(cell, 0) + n
                if score is None:
                    continue
                total_s, total_s2, log_s, log_1s = sums[:4]
                scope.add("s", total_s)
                scope.add("s2", total_s2)
                if positive:
                    scope.add("pos", n)
                    scope.add("pos_s", total_s)
                scope.add("loss", -((log_s if positive else log_1s) or 0.0))
                for name, value in zip(("d_log", "d_log2", "d_brier", "d_brier2"), sums[4:],
                                       strict=False):
                    scope.add(name, value)
                bin_cell = scope.bins.setdefault((int(key[-1]), positive), [0.0, 0.0])
                bin_cell[0] += n
                bin_cell[1] += total_s or 0.0
        self._ranks(evidence)
        return evidence

    def _binary_labels(self, evidence: Evidence) -> None:
        positive = self.check.positive
        labels = evidence.labels
        found = [v for v in labels if _same(positive, v)]
        if len(labels) > 2:
            evidence.label_problem = (
                f"{len(labels)} labels in {self._label_columns()}: "
                f"{', '.join(_show(v) for v in labels[:8])}; a binary task has a positive and "
                "a negative label")
        elif labels and not found:
            evidence.label_problem = (
                f"the positive label {_show(positive)} is not among the labels in "
                f"{self._label_columns()} ({', '.join(_show(v) for v in labels)}); set "
                "positive = ...")
        evidence.positive = found[0] if found else positive

    def _label_columns(self) -> str:
        return ", ".join(c for c in (self.check.target, self.check.prediction,
                                     self.baseline_column) if c)

    def _valid(self) -> Expr:
        """1 for the rows judged: none of the used columns is null."""
        return all_of(*[Expr("-", (Expr("lit", (1,)), flag)) for flag in self._null_flags()])

    def _ranks(self, evidence: Evidence) -> None:
        check = self.check
        if not self.wants(RANKED_METRICS) or evidence.label_problem or evidence.score_problem:
            return
        where = self._valid()
        groupings: list[str | None] = [None]
        if any(n.slice_column and n.base in RANKED_METRICS for n in self.names.values()):
            groupings += list(check.slices)
        if check.task == "binary":
            # the baseline's scores are ranked (and paired) only where a criterion asks
            rankings = [Ranking(col(column) if column else None,
                                2 if self.baseline_score and any(
                                    n.base == "roc_auc" and check.expect[n.text].uses_baseline
                                    and n.slice_column == column
                                    for n in self.names.values()) else 1,
                                any(n.base == "average_precision" and n.slice_column == column
                                    for n in self.names.values()))
                        for column in groupings]
            scores = [col(self.scores[0])] + (
                [col(self.baseline_score)] if self.baseline_score else [])
            found = self.table.score_ranks(equals(check.target, evidence.positive),
                                           scores[:max(r.scores for r in rankings)], rankings,
                                           where)
            for column, by_key in zip(groupings, found, strict=True):
                for key, ranks in by_key.items():
                    if column is None:
                        evidence.overall.ranks = ranks
                    elif key in evidence.slices[column]:
                        evidence.slices[column][key].ranks = ranks
            return
        classes = sorted({k for (k, _, _) in evidence.overall.confusion}, key=_sort_key)
        if len(classes) != len(self.scores):
            evidence.score_problem = (
                f"roc_auc_ovr: {len(self.scores)} score columns for {len(classes)} classes in "
                f"{check.target} ({', '.join(_show(c) for c in classes)}); give one column "
                "per class, in the order of the sorted labels")
            return
        rankings = [Ranking(col(column) if column else None) for column in groupings]
        for label_value, column_name in zip(classes, self.scores, strict=True):
            found = self.table.score_ranks(equals(check.target, label_value),
                                           [col(column_name)], rankings, where)
            for column, by_key in zip(groupings, found, strict=True):
                for key, ranks in by_key.items():
                    if column is None:
                        evidence.overall.class_ranks[label_value] = ranks
                    elif key in evidence.slices[column]:
                        evidence.slices[column][key].class_ranks[label_value] = ranks

    # ------------------------------------------------------------------ regression
    def _regression(self) -> Evidence:
        check = self.check
        assert check.prediction is not None
        t, p = col(check.target), col(check.prediction)
        error = absolute(t - p)
        flags = self._null_flags()
        values: list[tuple[str, Expr]] = [
            ("sum", error), ("sum", error * error), ("sum", t),
            ("sum", error / clip(absolute(t), EPS, None)), ("max", error), ("median", error)]
        if self.baseline_column:
            other = absolute(t - col(self.baseline_column))
            values += [("sum", other), ("sum", other * other), ("sum", error * other),
                       ("sum", error * error * other * other),
                       ("sum", error * error * error * error),
                       ("sum", other * other * other * other)]
        names = ("abs", "sq", "t", "pct", "max", "median",
                 "b_abs", "b_sq", "ab", "sq_bsq", "sq2", "b_sq2")
        overall = Scope()
        slices: dict[str, dict[Any, Scope]] = {c: {} for c in check.slices}
        dropped: dict[str, int] = {}
        total = 0
        mean = 0.0
        nflags = len(flags)
        for column in [None, *check.slices]:
            keys = flags + ([col(column)] if column else [])
            groups = self.table.crosstab(keys, values)
            if column is None:
                kept = [g for g in groups if not any(g[0][:nflags])]
                judged = sum(g[1] for g in kept)
                mean = (sum(g[2][2] or 0.0 for g in kept) / judged) if judged else 0.0
            # the target's spread around the overall mean, for r2 (a stable second sum)
            spreads = {k: v[0] for k, _, v in self.table.crosstab(
                keys, [("sum", (t - mean) * (t - mean))])}
            for key, n, sums in groups:
                nulls = [c for c, flag in zip(self._columns(), key[:nflags], strict=True)
                         if flag]
                if column is None:
                    total += n
                    if nulls:
                        dropped[nulls[0]] = dropped.get(nulls[0], 0) + n
                if nulls or (column is not None and key[-1] is None):
                    continue
                scope = overall if column is None else slices[column].setdefault(key[-1],
                                                                                 Scope())
                scope.rows += n
                for name, value in zip(names, sums, strict=False):
                    if name == "max":
                        if value is not None:
                            scope.maximum["abs"] = max(scope.maximum.get("abs", 0.0), value)
                    elif name == "median":
                        if value is not None:
                            scope.median["abs"] = value
                    else:
                        scope.add(name, value)
                scope.add("spread", spreads.get(key))
        for scope in [overall, *(s for by in slices.values() for s in by.values())]:
            if scope.rows:
                shift = scope.sums.get("t", 0.0) / scope.rows - mean
                scope.sums["centred"] = scope.sums.get("spread", 0.0) - scope.rows * shift**2
        return Evidence(rows=total, dropped=sum(dropped.values()),
                        dropped_why=self._why(dropped),
                        overall=overall, slices=slices, labels=[])


def _log_loss(y: Expr, score: Expr) -> Expr:
    clipped = clip(score, EPS, 1 - EPS)
    return Expr("lit", (0,)) - (y * ln(clipped) + (1.0 - y) * ln(1.0 - clipped))


def _sort_key(value: Any) -> tuple[str, Any]:
    return (type(value).__name__ if not isinstance(value, int | float) else "0", value)


# --------------------------------------------------------------------------- metrics
def _ratio(top: float, bottom: float) -> float:
    return top / bottom if bottom else 0.0


def binary_counts(confusion: dict[tuple[Any, Any, Any], int], positive: Any, which: int = 1
                  ) -> tuple[int, int, int, int]:
    """(tp, fp, fn, tn) of the prediction (which=1) or the baseline prediction (which=2)."""
    tp = fp = fn = tn = 0
    for cell, n in confusion.items():
        truth, guess = _same(positive, cell[0]), _same(positive, cell[which])
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
    classes = sorted({c[0] for c in confusion} | {c[which] for c in confusion}, key=_sort_key)
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
        label = next((c for c in classes if _same(label_text, c)), None)
        if label is None:
            raise CriterionError(f"{name}: no class {label_text!r} (classes: "
                                 f"{', '.join(_show(c) for c in classes)})")
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
        raise CriterionError("roc_auc needs both classes among the judged rows "
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
        raise CriterionError(f"{name}: the scores could not be ranked")
    if name == "roc_auc":
        return auc_of(scope.ranks)
    if name == "average_precision":
        if not scope.ranks.positives:
            raise CriterionError("average_precision needs positive rows")
        precision_sum = scope.ranks.scores[0].precision_sum
        if precision_sum is None:
            raise CriterionError("average_precision: the scores were not ranked for it")
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
    if scope.rows == 0:
        raise CriterionError(f"{metric}: no rows to judge")
    if metric == "rows":
        return scope.rows
    if check.task == "regression":
        return regression_metric(metric, scope)
    if check.task == "binary":
        if evidence.label_problem:
            raise CriterionError(evidence.label_problem)
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
                                                     key=lambda kv: _sort_key(kv[0]))]
        if not aucs:
            raise CriterionError("roc_auc_ovr: the scores could not be ranked")
        return sum(aucs) / len(aucs)
    return multiclass_metric(metric, scope.confusion, which)


# --------------------------------------------------------------------------- the kind
Evaluate = Callable[[EvalContext], Outcome]


class PredictionsKind(CheckKind[PredictionsConfig]):
    key = "predictions"
    evidence = "measured"
    config_model = PredictionsConfig

    def plan(self, check: PredictionsConfig, ctx: PlanContext) -> list[Criterion]:
        fixtures = check.predictions.fixtures
        key = ("predictions", ctx.key_path)
        names = check.metric_names()
        return [Criterion(text, _evaluator(check, key, names[text], expectation), fixtures,
                          expectation.text)
                for text, expectation in check.expect.items()]


def _evidence(check: PredictionsConfig, key: Any, ctx: EvalContext) -> Evidence:
    def build() -> Evidence | CriterionError:
        try:
            return Collector(check, open_table(check.predictions, ctx)).collect()
        except CriterionError as exc:
            return exc

    found = ctx.shared_value((*key, id(ctx.fixtures.get(check.predictions.fixture or ""))),
                             build)
    if isinstance(found, CriterionError):
        raise CriterionError(str(found))
    result: Evidence = found
    return result


def _dropped_note(evidence: Evidence) -> str:
    if not evidence.dropped:
        return ""
    return (f" ({evidence.dropped} of {evidence.rows} rows left out: "
            f"{', '.join(evidence.dropped_why)})")


def _evaluator(check: PredictionsConfig, key: Any, name: MetricName,
               expectation: Expectation) -> Evaluate:
    def evaluate(ctx: EvalContext) -> Outcome:
        evidence = _evidence(check, key, ctx)
        note = _dropped_note(evidence)
        if name.slice_column is None:
            outcome = _judge(check, evidence, name.metric, name.metric, evidence.overall,
                             expectation)
            outcome.message += note
            if evidence.dropped:
                outcome.extra["dropped_rows"] = evidence.dropped
            return outcome
        values = evidence.slices[name.slice_column]
        if name.slice_value == "*":
            chosen = sorted(values, key=_sort_key)
        else:
            chosen = [v for v in values if _same(name.slice_value, v)]
            if not chosen:
                shown = ", ".join(_show(v) for v in sorted(values, key=_sort_key)[:12])
                return Outcome.failed(f"{name.text}: no rows with {name.slice_column} = "
                                      f"{name.slice_value} (values: {shown or 'none'})",
                                      None, expectation.text)
        outcomes = {}
        for value in chosen:
            label = f"slices.{name.slice_column}.{value}.{name.metric}"
            scope = values[value]
            if scope.rows < check.min_slice_rows:
                outcomes[label] = Outcome.failed(
                    f"{label}: too few rows ({scope.rows} < min_slice_rows "
                    f"{check.min_slice_rows}), not judged", None, expectation.text,
                    warn=True, rows=scope.rows)
                continue
            outcomes[label] = _judge(check, evidence, label, name.metric, scope, expectation)
        return _combine(name.text, outcomes, expectation, note)
    return evaluate


def _combine(text: str, outcomes: dict[str, Outcome], expectation: Expectation,
             note: str) -> Outcome:
    if len(outcomes) == 1:
        (outcome,) = outcomes.values()
        outcome.message += note
        return outcome
    observed = {label.split(".", 2)[2].rsplit(".", 1)[0]: o.observed
                for label, o in outcomes.items()}
    failed = {k: o for k, o in outcomes.items()
              if o.status != "passed" and not o.extra.get("warn")}
    small = {k: o for k, o in outcomes.items() if o.extra.get("warn")}
    if failed:
        status: Status = ("error" if all(o.status == "error" for o in failed.values())
                          else "failed")
        message = "; ".join(o.message for o in failed.values())
        return Outcome(status, observed, expectation.text,
                       f"{len(failed)} of {len(outcomes)} slices failed: {message}{note}",
                       extra={"slices": observed})
    if small:
        return Outcome("failed", observed, expectation.text,
                       "; ".join(o.message for o in small.values()) + note,
                       extra={"warn": True, "slices": observed})
    return Outcome.passed(observed, expectation.text,
                          f"{len(outcomes)} slices match {text}, all as expected{note}")


def _judge(check: PredictionsConfig, evidence: Evidence, label: str, metric: str,
           scope: Scope, expectation: Expectation) -> Outcome:
    try:
        value = metric_value(check, evidence, metric, scope)
    except CriterionError as exc:
        return Outcome.error(f"{label}: {exc}", expectation.text)
    if not expectation.uses_baseline:
        return Outcome.compare(label, value, expectation, rows=scope.rows)
    try:
        comparison = compare_paired(check, evidence, metric, scope)
    except CriterionError as exc:
        return Outcome.error(f"{label}: {exc}", expectation.text)
    return _baseline_outcome(label, value, comparison, expectation, check.significance,
                             scope.rows)


def _baseline_outcome(label: str, value: float, comparison: PairedDifference,
                      expectation: Expectation, significance: float | None,
                      rows: int) -> Outcome:
    words = comparison.describe(label)
    holds = expectation.holds(value, comparison.baseline)
    verdict = ""
    if significance is not None and expectation.op in (">=", ">", "<=", "<"):
        margin = expectation.threshold(comparison.baseline) - comparison.baseline
        p_value = comparison.p_value(margin, larger=expectation.op in (">=", ">"))
        significant = p_value < significance
        verdict = (f", significant at {format_value(significance)}" if significant
                   else f", not significant at {format_value(significance)} "
                        f"(p = {format_value(p_value)})")
        holds = holds and significant
        comparison.extra["p_value"] = p_value
    message = f"{words}{verdict}, expected {expectation.describe_threshold(comparison.baseline)}"
    extra = dict(comparison.extra, baseline=comparison.baseline,
                 difference=comparison.difference, ci_low=comparison.low,
                 ci_high=comparison.high, method=comparison.method, rows=rows)
    if holds:
        return Outcome.passed(value, expectation.text, message, **extra)
    return Outcome.failed(message, value, expectation.text, **extra)


# --------------------------------------------------------------------------- baseline
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
        return _compare_regression(metric, value, scope)
    if metric in ("log_loss", "brier"):
        total, total_sq = ((scope.sums.get("d_log", 0.0), scope.sums.get("d_log2", 0.0))
                           if metric == "log_loss" else
                           (scope.sums.get("d_brier", 0.0), scope.sums.get("d_brier2", 0.0)))
        return mean_difference(value, value - total / n, n, total, total_sq,
                               "paired mean of per-row losses")
    if metric == "roc_auc":
        ranks = scope.ranks
        if ranks is None or len(ranks.scores) != 2:
            raise CriterionError("roc_auc: the baseline's scores could not be ranked")
        first, second = ranks.scores
        baseline = auc_of(ranks, 1)
        return delong(value, baseline, ranks.positives, ranks.negatives,
                      (first.below, second.below), (first.below_sq, second.below_sq),
                      ranks.cross_below, (first.above_sq, second.above_sq), ranks.cross_above)
    baseline = metric_value(check, evidence, metric, scope, which=2)
    cells = sorted(scope.confusion, key=lambda cell: tuple(_sort_key(v) for v in cell))
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


def _right(check: PredictionsConfig, evidence: Evidence, cell: tuple[Any, Any, Any],
           which: int) -> bool:
    if check.task == "binary":
        return _same(evidence.positive, cell[0]) == _same(evidence.positive, cell[which])
    return bool(cell[0] == cell[which])


def _compare_regression(metric: str, value: float, scope: Scope) -> PairedDifference:
    n, sums = scope.rows, scope.sums
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
        raise PairedError("rmse: a model without errors")
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
