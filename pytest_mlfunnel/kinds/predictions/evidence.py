"""What one check reads from its table: counts and sums per group (``Table.crosstab``) and the
rank sums of the scores (``Table.score_ranks``), gathered per slice."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

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
from pytest_mlfunnel.engines.placements import PlacementSums
from pytest_mlfunnel.engines.protocol import Agg, Table
from pytest_mlfunnel.expectations import format_value
from pytest_mlfunnel.kinds.base import EvalContext
from pytest_mlfunnel.kinds.predictions.config import (
    ECE_EDGES,
    EPS,
    RANKED_METRICS,
    PredictionsConfig,
)
from pytest_mlfunnel.outcome import CriterionError, Status
from pytest_mlfunnel.paired import BOOTSTRAP_READ, BOOTSTRAP_SEED
from pytest_mlfunnel.sources.tabular import missing_column, open_table

#: beside each row of a baseline joined from another table: how many of its rows have the key
MATCHES = "mlfunnel_matches"


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
    #: (model's bin, baseline's bin) -> rows and the sums of r = y - s, q = y - s_baseline,
    #: r^2, q^2 and r * q: the paired comparison of ece
    calibration: dict[tuple[int, int], list[float]] = field(default_factory=dict)
    maximum: dict[str, float] = field(default_factory=dict)
    median: dict[str, float] = field(default_factory=dict)
    ranks: ScoreRanks | None = None
    class_ranks: dict[Any, ScoreRanks] = field(default_factory=dict)
    #: roc_auc_ovr against the baseline: per true class (its one-hot tuple of labels), the
    #: sums of the rows' placements (``Table.placement_sums``)
    placements: dict[tuple[int, ...], PlacementSums] = field(default_factory=dict)
    #: average_precision / median_ae against the baseline: the scope's rows in a seeded sample
    #: of the table, as (positive, score, baseline score) or (|error|, |baseline error|, 0)
    resample: list[tuple[float, float, float]] = field(default_factory=list)

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
    value_problem: str | None = None  # regression: an infinite target or prediction
    #: a baseline in another table that does not pair every row: (status, message)
    baseline_problem: tuple[Status, str] | None = None
    #: column -> rows left out for a null in it (the first null column of the row)
    dropped_counts: dict[str, int] = field(default_factory=dict)
    score_columns: list[str] = field(default_factory=list)  # the model's

    def scope(self, column: str | None, value: Any) -> Scope:
        return self.overall if column is None else self.slices[column][value]


def _label_kind(labels: list[Any]) -> str:
    """``numbers (0, 1, 2)``, ``text ('no', 'yes', ...)``: what a column's labels are."""
    words = "text" if isinstance(labels[0], str) else "numbers"
    listed = ", ".join(shown(v) for v in labels[:4])
    return f"{words} ({listed}{', ...' if len(labels) > 4 else ''})"


def same_label(config_value: Any, data_value: Any) -> bool:
    """A label as the configuration writes it (``positive = 1``, ``"class.2.recall"``) against
    one read from the data: text and numbers meet by value, so "2" is the class 2 of a column
    of floats (2.0) as well as of integers."""
    if isinstance(data_value, str) and not isinstance(config_value, str):
        return (str(config_value).lower() if isinstance(config_value, bool)
                else str(config_value)) == data_value
    if isinstance(config_value, str) and not isinstance(data_value, str):
        if isinstance(data_value, bool):  # "true", "True": as the label is shown
            return config_value.lower() == str(data_value).lower()
        if isinstance(data_value, int | float) and _number(config_value) is not None:
            return _number(config_value) == data_value
        return config_value == str(data_value)
    return bool(config_value == data_value)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def shown(value: Any) -> str:
    return repr(value) if isinstance(value, str) else format_value(value)


def open_predictions(check: PredictionsConfig, ctx: EvalContext) -> Table:
    """The predictions table, with the baseline's columns beside each row when the baseline
    lives in another table (looked up by key in the engine, see ``Table.joined``)."""
    table = open_table(check.predictions, ctx)
    joined = check.baseline_table
    if joined is None or joined.source is None:
        return table
    return table.joined(joined.keys, open_table(joined.source, ctx), joined.keys,
                        check.baseline_columns())


class Collector:
    """Builds the evidence of one check from its table: the queries, then the sums."""

    def __init__(self, check: PredictionsConfig, table: Table) -> None:
        self.check = check
        self.table = table
        self.baseline_column = check.baseline_prediction
        self.baseline_score = check.baseline_score
        self.baseline_scores = check.baseline_scores  # one per class for multiclass
        self.scores = check.score if isinstance(check.score, list) else (
            [check.score] if check.score else [])
        self.names = check.metric_names()

    def _columns(self) -> list[str]:
        """The columns used, in the order they are checked; a null in any but the slices
        leaves its row out (``mlfunnel_matches``, first: the row's key is not in the baseline
        table)."""
        used = [MATCHES] if self.check.baseline_table else []
        used += [self.check.target]
        used += [self.check.prediction] if self.check.prediction else []
        used += self.scores
        used += [self.baseline_column] if self.baseline_column else []
        used += self.baseline_scores
        return list(dict.fromkeys(used))

    def wants(self, metrics: Iterable[str], baseline: bool | None = None) -> bool:
        return any(n.base in metrics and (baseline is None or baseline == self.check.expect[
            n.text].uses_baseline) for n in self.names.values())

    def asks(self, metric: str, column: str | None, baseline: bool | None = None) -> bool:
        """Whether a criterion asks for ``metric`` over all rows (``column`` None) or per
        value of the slice ``column``; with ``baseline``, only criteria that do (or do not)
        compare with the baseline."""
        return any(n.base == metric and n.slice_column == column and (
            baseline is None or baseline == self.check.expect[n.text].uses_baseline)
            for n in self.names.values())

    def collect(self) -> Evidence:
        schema = self.table.schema()
        for column in [*self._columns(), *self.check.slices]:
            if column not in schema:
                self._not_empty()
                raise CriterionError(missing_column(column, schema, self.table.display))
        for column in self.scores + self.baseline_scores:
            if schema[column] not in ("float", "int"):
                self._not_empty()
                hint = "" if schema[column] != "bool" else (
                    ": give the predicted probability of the positive class, or compare the "
                    f"labels with prediction = \"{column}\"")
                raise CriterionError(f"{column}: scores must be numbers (probabilities), "
                                     f"{column} is {schema[column]}{hint}")
        if self.check.task == "regression":
            for column in self._columns():
                if schema[column] not in ("float", "int"):
                    self._not_empty()
                    raise CriterionError(f"{column}: regression needs numbers, {column} is "
                                         f"{schema[column]}")
            return self._regression()
        return self._classification()

    def _not_empty(self) -> None:
        """Before a missing column or a column of the wrong type is reported: a file with no
        rows (an empty CSV, or a header alone, read as text) says so instead."""
        if not self.table.aggregate([Agg("rows")])[0]:
            raise CriterionError(f"{self.table.display} has no rows: nothing to judge")

    def _why(self, dropped: dict[str, int]) -> list[str]:
        return [self._unmatched(dropped[c]) if c == MATCHES else f"{dropped[c]} with a null {c}"
                for c in self._columns() if dropped.get(c)]

    def _unmatched(self, rows: int) -> str:
        joined = self.check.baseline_table
        assert joined is not None and joined.source is not None
        return (f"{rows} whose {' + '.join(joined.keys)} is not found in "
                f"{joined.source.display()}")

    def _pairing(self, evidence: Evidence) -> None:
        """A baseline in another table must judge the same rows: a row whose key it lacks
        fails the comparisons, a key it holds twice makes them an error."""
        joined = self.check.baseline_table
        if joined is None or joined.source is None:
            return
        key = " + ".join(joined.keys)
        where = joined.source.display()
        repeated = sum(n for k, n, _ in self.table.crosstab([outside(col(MATCHES), 0, 1)], [])
                       if k[0] == 1)
        unmatched = evidence.dropped_counts.get(MATCHES, 0)
        if repeated:
            evidence.baseline_problem = (
                "error", f"{repeated} of {evidence.rows} rows whose {key} is found more than once "
                f"in {where}: give the baseline one row per {key}")
        elif unmatched:
            evidence.baseline_problem = (
                "failed", f"{unmatched} of {evidence.rows} rows whose {key} is not found in "
                f"{where}: both models must judge the same rows")

    def _null_flags(self) -> list[Expr]:
        return [is_null(col(c)) for c in self._columns()]

    def _null_column(self, key: tuple[Any, ...]) -> str | None:
        """The first used column a group's null flags (the first keys, ``_null_flags``) mark:
        the one its rows are counted as left out for; None for rows judged."""
        return next((c for c, flag in zip(self._columns(), key, strict=False) if flag), None)

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
        keys += [outside(col(s), 0.0, 1.0) for s in self.baseline_scores]
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
        # ece against the baseline: rows per (model's bin, baseline's bin) with their sums
        paired_ece = score is not None and self.baseline_score is not None and self.wants(
            ("ece",), baseline=True)
        if paired_ece and self.baseline_score and score is not None:
            other = col(self.baseline_score)
            keys.append(binned(other, ECE_EDGES))
            values += [("sum", other), ("sum", other * other), ("sum", col(score) * other)]
        groups = self.table.crosstab(keys, values)
        nflags = len(flags)
        width = nflags + 3 + len(check.slices)
        slices: dict[str, dict[Any, Scope]] = {c: {} for c in check.slices}
        overall = Scope()
        dropped: dict[str, int] = {}
        out_of_range = 0
        kept: list[tuple[tuple[Any, ...], int, list[Any]]] = []
        for key, n, sums in groups:
            null = self._null_column(key)
            if null is not None:
                dropped[null] = dropped.get(null, 0) + n
                continue
            ranges = key[width:width + len(self.scores) + len(self.baseline_scores)]
            if any(flag == 1 for flag in ranges):
                out_of_range += n
            kept.append((key[nflags:], n, sums))
        labels = sorted({k[0] for k, _, _ in kept} | (
            {k[1] for k, _, _ in kept} if check.prediction else set()) | (
            {k[2] for k, _, _ in kept} if self.baseline_column else set()), key=label_order)
        evidence = Evidence(rows=sum(n for _, n, _ in groups),
                            dropped=sum(dropped.values()),
                            dropped_why=self._why(dropped), dropped_counts=dropped,
                            score_columns=self.scores,
                            overall=overall, slices=slices, labels=labels)
        if binary:
            self._binary_labels(evidence)
        self._label_types(evidence, kept)
        if out_of_range:
            evidence.score_problem = (
                f"{out_of_range} {'row has' if out_of_range == 1 else 'rows have'} a score "
                f"outside [0, 1] in "
                f"{', '.join(self.scores + self.baseline_scores)}"
                "; scores must be probabilities")
        slice_end = 3 + len(check.slices)
        for key, n, sums in kept:
            scopes = [overall] + [slices[c].setdefault(v, Scope()) for c, v in
                                  zip(check.slices, key[3:slice_end], strict=True)
                                  if v is not None]
            truth = key[0]
            positive = binary and same_label(evidence.positive, truth)
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
                model_bin = int(key[-2] if paired_ece else key[-1])
                bin_cell = scope.bins.setdefault((model_bin, positive), [0.0, 0.0])
                bin_cell[0] += n
                bin_cell[1] += total_s or 0.0
                if paired_ece:
                    _add_calibration(scope, (model_bin, int(key[-1])), n, float(positive),
                                     total_s or 0.0, total_s2 or 0.0,
                                     *(v or 0.0 for v in sums[8:11]))
        self._ranks(evidence)
        self._pairing(evidence)
        self._resample_rows(evidence)
        return evidence

    def _binary_labels(self, evidence: Evidence) -> None:
        positive = self.check.positive
        labels = evidence.labels
        found = [v for v in labels if same_label(positive, v)]
        if len(labels) > 2:
            evidence.label_problem = (
                f"{len(labels)} labels in {self._label_columns()}: "
                f"{', '.join(shown(v) for v in labels[:8])}; a binary task has a positive and "
                "a negative label")
        elif labels and not found:
            near = [v for v in labels if str(v).lower() == str(positive).lower()]
            evidence.label_problem = (
                f"the positive label {shown(positive)} is not among the labels in "
                f"{self._label_columns()} ({', '.join(shown(v) for v in labels)}); set "
                f"positive = {_toml(near[0]) if near else '...'}")
        evidence.positive = found[0] if found else positive

    def _label_types(self, evidence: Evidence,
                     kept: list[tuple[tuple[Any, ...], int, list[Any]]]) -> None:
        """Labels written as text in one column and as numbers in another never meet: every
        prediction would count as wrong (accuracy 0) without a word of why."""
        columns = [(0, self.check.target), (1, self.check.prediction),
                   (2, self.baseline_column)]
        found = [(name, sorted({k[i] for k, _, _ in kept}, key=label_order))
                 for i, name in columns if name]
        if len(found) < 2:
            return
        target, values = found[0]
        text = {isinstance(v, str) for v in values}
        for name, others in found[1:]:
            if len(text) == 1 and {isinstance(v, str) for v in others} == {not next(iter(text))}:
                evidence.label_problem = (
                    f"{target} holds its labels as {_label_kind(values)} and {name} as "
                    f"{_label_kind(others)}: a label never equals one of another type, so every "
                    f"prediction would count as wrong; write both columns with one type (or "
                    f"read {name} through a query that casts it)")
                return

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
                                2 if self.baseline_score and self.asks(
                                    "roc_auc", column, baseline=True) else 1,
                                self.asks("average_precision", column),
                                tuple(evidence.slices[column]) if column else ())
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
            self._baseline_precision(evidence, groupings, where)
            return
        classes = sorted({k for (k, _, _) in evidence.overall.confusion}, key=label_order)
        if len(classes) != len(self.scores):
            evidence.score_problem = (
                f"{len(self.scores)} score columns for {len(classes)} classes in "
                f"{check.target} ({', '.join(shown(c) for c in classes)}); give one column "
                "per class, in the order of the sorted labels")
            return
        rankings = [Ranking(col(column) if column else None,
                            values=tuple(evidence.slices[column]) if column else ())
                    for column in groupings]
        for label_value, column_name in zip(classes, self.scores, strict=True):
            found = self.table.score_ranks(equals(check.target, label_value),
                                           [col(column_name)], rankings, where)
            for column, by_key in zip(groupings, found, strict=True):
                for key, ranks in by_key.items():
                    if column is None:
                        evidence.overall.class_ranks[label_value] = ranks
                    elif key in evidence.slices[column]:
                        evidence.slices[column][key].class_ranks[label_value] = ranks
        self._placements(evidence, classes, groupings, where)

    def _baseline_precision(self, evidence: Evidence, groupings: list[str | None],
                            where: Expr) -> None:
        """average_precision against the baseline: the baseline's scores ranked on their own,
        for its value on all rows (``sums["b_ap"]``)."""
        asked = [column for column in groupings
                 if self.asks("average_precision", column, baseline=True)]
        if not asked or not self.baseline_score:
            return
        found = self.table.score_ranks(
            equals(self.check.target, evidence.positive), [col(self.baseline_score)],
            [Ranking(col(c) if c else None, 1, True) for c in asked], where)
        for column, by_key in zip(asked, found, strict=True):
            for key, ranks in by_key.items():
                scope = evidence.overall if column is None else evidence.slices[column].get(key)
                if scope is not None and ranks.positives:
                    scope.sums["b_ap"] = (ranks.scores[0].precision_sum or 0.0) / ranks.positives

    def _placements(self, evidence: Evidence, classes: list[Any],
                    groupings: list[str | None], where: Expr) -> None:
        """roc_auc_ovr against the baseline: the placements of every row under every class's
        pair of score columns, summed per true class (``Table.placement_sums``)."""
        if not self.baseline_scores:
            return
        labels = [equals(self.check.target, c) for c in classes]
        pairs = [(col(a), col(b)) for a, b in zip(self.scores, self.baseline_scores,
                                                   strict=True)]
        for column in groupings:
            if not self.asks("roc_auc_ovr", column, baseline=True):
                continue
            found = self.table.placement_sums(labels, pairs, col(column) if column else None,
                                              where)
            for key, by_class in found.items():
                scope = (evidence.overall if column is None
                         else evidence.slices[column].get(key))
                if scope is not None:
                    scope.placements = by_class

    # ------------------------------------------------------------------ regression
    def _regression(self) -> Evidence:
        check = self.check
        assert check.prediction is not None
        t, p = col(check.target), col(check.prediction)
        error = absolute(t - p)
        flags = self._null_flags()
        scale = clip(absolute(t), EPS, None)
        values: list[tuple[str, Expr]] = [
            ("sum", error), ("sum", error * error), ("sum", t),
            ("sum", error / scale), ("max", error), ("median", error)]
        if self.baseline_column:
            other = absolute(t - col(self.baseline_column))
            # per-row differences of absolute percentage errors, for the paired mape
            pct_diff = error / scale - other / scale
            values += [("sum", other), ("sum", other * other), ("sum", error * other),
                       ("sum", error * error * other * other),
                       ("sum", error * error * error * error),
                       ("sum", other * other * other * other),
                       ("sum", other / scale), ("sum", pct_diff), ("sum", pct_diff * pct_diff),
                       ("median", other)]
        names = ("abs", "sq", "t", "pct", "max", "median",
                 "b_abs", "b_sq", "ab", "sq_bsq", "sq2", "b_sq2", "b_pct", "d_pct", "d_pct2",
                 "b_median")
        # rows with an infinite value in a used column: counted in the first query, so that
        # no sum is taken of them (and no infinite mean is written into the next query)
        used = self._columns()
        infinite = [("sum", outside(col(c), -sys.float_info.max, sys.float_info.max))
                    for c in used]
        overall = Scope()
        slices: dict[str, dict[Any, Scope]] = {c: {} for c in check.slices}
        dropped: dict[str, int] = {}
        total = 0
        mean = 0.0
        for column in [None, *check.slices]:
            keys = flags + ([col(column)] if column else [])
            if column is None:
                found = self.table.crosstab(keys, values + infinite)
                counts = [sum(int(g[2][len(values) + i] or 0) for g in found)
                          for i in range(len(used))]
                if any(counts):
                    return self._infinite(found, used, counts)
                groups = [(k, n, sums[:len(values)]) for k, n, sums in found]
                kept = [g for g in groups if self._null_column(g[0]) is None]
                judged = sum(g[1] for g in kept)
                mean = (sum(g[2][2] or 0.0 for g in kept) / judged) if judged else 0.0
            else:
                groups = self.table.crosstab(keys, values)
            # the target's spread around the overall mean, for r2 (a stable second sum)
            spreads = {k: v[0] for k, _, v in self.table.crosstab(
                keys, [("sum", (t - mean) * (t - mean))])}
            for key, n, sums in groups:
                null = self._null_column(key)
                if column is None:
                    total += n
                    if null is not None:
                        dropped[null] = dropped.get(null, 0) + n
                if null is not None or (column is not None and key[-1] is None):
                    continue
                scope = overall if column is None else slices[column].setdefault(key[-1],
                                                                                 Scope())
                scope.rows += n
                for name, value in zip(names, sums, strict=False):
                    if name == "max":
                        if value is not None:
                            scope.maximum["abs"] = max(scope.maximum.get("abs", 0.0), value)
                    elif name in ("median", "b_median"):
                        if value is not None:
                            scope.median["abs" if name == "median" else "b_abs"] = value
                    else:
                        scope.add(name, value)
                scope.add("spread", spreads.get(key))
        for scope in [overall, *(s for by in slices.values() for s in by.values())]:
            if scope.rows:
                shift = scope.sums.get("t", 0.0) / scope.rows - mean
                scope.sums["centred"] = scope.sums.get("spread", 0.0) - scope.rows * shift**2
        evidence = Evidence(rows=total, dropped=sum(dropped.values()),
                            dropped_why=self._why(dropped), dropped_counts=dropped,
                            score_columns=self.scores,
                            overall=overall, slices=slices, labels=[])
        self._pairing(evidence)
        self._resample_rows(evidence)
        return evidence

    def _infinite(self, found: list[tuple[tuple[Any, ...], int, list[Any]]], used: list[str],
                  counts: list[int]) -> Evidence:
        """Evidence that says which columns hold infinite values: no regression metric is
        computed from a sum of them."""
        dropped: dict[str, int] = {}
        for key, n, _ in found:
            null = self._null_column(key)
            if null is not None:
                dropped[null] = dropped.get(null, 0) + n
        listed = ", ".join(f"{n} in {c}" for c, n in zip(used, counts, strict=True) if n)
        return Evidence(rows=sum(n for _, n, _ in found), dropped=sum(dropped.values()),
                        dropped_why=self._why(dropped), dropped_counts=dropped,
                        score_columns=self.scores, overall=Scope(),
                        slices={c: {} for c in self.check.slices}, labels=[],
                        value_problem=f"infinite values ({listed}); regression metrics need "
                                      "finite numbers")

    def _resample_rows(self, evidence: Evidence) -> None:
        """average_precision and median_ae against the baseline depend on the order of the
        rows: their bootstrap reads the rows themselves, a seeded sample of at most
        ``BOOTSTRAP_READ`` rows of the table (all of them when fewer), kept per scope."""
        wanted = [n for n in self.names.values() if n.base in ("average_precision", "median_ae")
                  and self.check.expect[n.text].uses_baseline]
        if not wanted or evidence.label_problem or evidence.score_problem:
            return
        check = self.check
        used = self._columns()
        read = self.table.sample(list(dict.fromkeys([*used, *check.slices])), BOOTSTRAP_READ,
                                 BOOTSTRAP_SEED)
        columns = [read[c] for c in used]
        slices = [(c, read[c]) for c in check.slices
                  if any(n.slice_column == c for n in wanted)]
        overall = any(n.slice_column is None for n in wanted)
        if check.task == "regression":
            assert check.prediction and self.baseline_column
            t, p, b = (read[c] for c in (check.target, check.prediction, self.baseline_column))
        else:
            assert self.baseline_score
            t, p, b = (read[c] for c in (check.target, self.scores[0], self.baseline_score))
        for i in range(len(t)):
            if any(_missing(values[i]) for values in columns):
                continue
            if check.task == "regression":
                row = (abs(t[i] - p[i]), abs(t[i] - b[i]), 0.0)
            else:
                row = (float(same_label(evidence.positive, t[i])), float(p[i]), float(b[i]))
            if overall:
                evidence.overall.resample.append(row)
            for column, values in slices:
                scope = evidence.slices[column].get(values[i])
                if scope is not None:
                    scope.resample.append(row)


def _toml(value: Any) -> str:
    """A label as it is written in pyproject.toml."""
    if isinstance(value, bool):
        return str(value).lower()
    return json.dumps(value, ensure_ascii=False) if isinstance(value, str) else format_value(value)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _add_calibration(scope: Scope, cell: tuple[int, int], n: int, y: float, s: float,
                     s2: float, b: float, b2: float, sb: float) -> None:
    """Add a group's rows (one label y) to its calibration cell: sums of r = y - s and
    q = y - b from the sums of the scores s, b, their squares and product."""
    found = scope.calibration.setdefault(cell, [0.0] * 6)
    for i, value in enumerate((n, n * y - s, n * y - b, n * y - 2 * y * s + s2,
                               n * y - 2 * y * b + b2, n * y - y * (s + b) + sb)):
        found[i] += value


def _log_loss(y: Expr, score: Expr) -> Expr:
    clipped = clip(score, EPS, 1 - EPS)
    return Expr("lit", (0,)) - (y * ln(clipped) + (1.0 - y) * ln(1.0 - clipped))


def label_order(value: Any) -> tuple[str, Any]:
    return (type(value).__name__ if not isinstance(value, int | float) else "0", value)
