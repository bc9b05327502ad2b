"""The ``predictions`` kind: one criterion per expected metric, judged per slice."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pytest_mlfunnel.expectations import Expectation, format_value
from pytest_mlfunnel.kinds.base import (
    CheckKind,
    Criterion,
    EvalContext,
    Evaluate,
    PlanContext,
)
from pytest_mlfunnel.kinds.predictions.comparison import compare_paired
from pytest_mlfunnel.kinds.predictions.config import (
    MetricName,
    PredictionsConfig,
)
from pytest_mlfunnel.kinds.predictions.evidence import (
    Collector,
    Evidence,
    Scope,
    label_order,
    open_predictions,
    same_label,
    shown,
)
from pytest_mlfunnel.kinds.predictions.metrics import metric_value
from pytest_mlfunnel.outcome import CriterionError, Outcome, Status
from pytest_mlfunnel.paired import PairedDifference

#: slices whose failures a message lists by name
LISTED_SLICES = 10


class PredictionsKind(CheckKind[PredictionsConfig]):
    key = "predictions"
    evidence = "measured"
    config_model = PredictionsConfig

    def plan(self, check: PredictionsConfig, ctx: PlanContext) -> list[Criterion]:
        joined = check.baseline_table
        fixtures = tuple(dict.fromkeys([*check.predictions.fixtures, *(
            joined.source.fixtures if joined and joined.source else ())]))
        key = ("predictions", ctx.key_path)
        names = check.metric_names()
        return [Criterion(text, _evaluator(check, key, names[text], expectation), fixtures,
                          expectation.text)
                for text, expectation in check.expect.items()]


def _evidence(check: PredictionsConfig, key: Any, ctx: EvalContext) -> Evidence:
    def build() -> Evidence | CriterionError:
        try:
            return Collector(check, open_predictions(check, ctx)).collect()
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
    judge = _judged(check, key, name, expectation)

    def evaluate(ctx: EvalContext) -> Outcome:
        outcome = judge(ctx)
        evidence = _evidence(check, key, ctx)
        missing = _missing_predictions(check, evidence)
        if missing is None or outcome.status == "error":
            return outcome
        return Outcome.failed(f"{outcome.message}; {missing}", outcome.observed,
                              expectation.text, **outcome.extra)
    return evaluate


def _missing_predictions(check: PredictionsConfig, evidence: Evidence) -> str | None:
    """Labelled rows the model gave no prediction or score (null or NaN): above
    ``max_missing_predictions`` of the labelled rows, every criterion of the check fails."""
    model = [c for c in (check.prediction, *evidence.score_columns) if c]
    missing = sum(evidence.dropped_counts.get(c, 0) for c in model)
    labelled = evidence.rows - evidence.dropped_counts.get(check.target, 0)
    if not missing or not labelled or missing / labelled <= check.max_missing_predictions:
        return None
    return (f"{missing} of {labelled} labelled rows have no prediction from the model (null or "
            f"NaN in {', '.join(c for c in model if evidence.dropped_counts.get(c))}), more "
            f"than max_missing_predictions = {format_value(check.max_missing_predictions)}")


def _judged(check: PredictionsConfig, key: Any, name: MetricName,
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
        if evidence.value_problem:  # no slice was counted
            return Outcome.error(f"{name.text}: {evidence.value_problem}{note}", expectation.text)
        values = evidence.slices[name.slice_column]
        if name.slice_value == "*":
            chosen = sorted(values, key=label_order)
            if not chosen:  # nothing to judge is not a pass
                return Outcome.error(f"{name.text}: no judged row has a value in "
                                     f"{name.slice_column}{note}", expectation.text)
        else:
            chosen = [v for v in values if same_label(name.slice_value, v)]
            if not chosen:
                present = ", ".join(shown(v) for v in sorted(values, key=label_order)[:12])
                return Outcome.failed(f"{name.text}: no rows with {name.slice_column} = "
                                      f"{name.slice_value} (values: {present or 'none'})",
                                      None, expectation.text)
        outcomes = {}
        shown_values: dict[str, str] = {}  # label -> the slice value as the report keys it
        for value in chosen:
            label = f"slices.{name.slice_column}.{value}.{name.metric}"
            shown_values[label] = f"{value}"
            scope = values[value]
            if scope.rows < check.min_slice_rows and name.metric != "rows":  # a count is exact
                outcomes[label] = Outcome.failed(
                    f"{label}: too few rows ({scope.rows} < min_slice_rows "
                    f"{check.min_slice_rows}), not judged", None, expectation.text,
                    warn=True, rows=scope.rows)
                continue
            outcomes[label] = _judge(check, evidence, label, name.metric, scope, expectation)
        return _combine(name.text, outcomes, shown_values, expectation, note)
    return evaluate


def _combine(text: str, outcomes: dict[str, Outcome], shown_values: dict[str, str],
             expectation: Expectation, note: str) -> Outcome:
    if len(outcomes) == 1:
        (outcome,) = outcomes.values()
        outcome.message += note
        return outcome
    observed = {shown_values[label]: o.observed for label, o in outcomes.items()}
    failed = {k: o for k, o in outcomes.items()
              if o.status != "passed" and not o.extra.get("warn")}
    small = {k: o for k, o in outcomes.items() if o.extra.get("warn")}
    if failed:
        status: Status = ("error" if all(o.status == "error" for o in failed.values())
                          else "failed")
        message = _listed(o.message for o in failed.values())
        return Outcome(status, observed, expectation.text,
                       f"{len(failed)} of {len(outcomes)} slices failed: {message}{note}",
                       extra={"slices": observed})
    if small:
        return Outcome("failed", observed, expectation.text,
                       _listed(o.message for o in small.values()) + note,
                       extra={"warn": True, "slices": observed})
    return Outcome.passed(observed, expectation.text,
                          f"{len(outcomes)} slices match {text}, all as expected{note}")


def _listed(messages: Iterable[str]) -> str:
    """The first LISTED_SLICES messages and how many more: a slice column of thousands of
    values keeps a message (and the terminal line) readable; every value is in ``observed``."""
    every = list(messages)
    more = len(every) - LISTED_SLICES
    return "; ".join(every[:LISTED_SLICES]) + (f"; … and {more} more" if more > 0 else "")


def _judge(check: PredictionsConfig, evidence: Evidence, label: str, metric: str,
           scope: Scope, expectation: Expectation) -> Outcome:
    try:
        value = metric_value(check, evidence, metric, scope)
    except CriterionError as exc:
        return Outcome.error(f"{label}: {exc}", expectation.text)
    if not expectation.uses_baseline:
        return Outcome.compare(label, value, expectation, rows=scope.rows)
    if evidence.baseline_problem is not None:
        status, problem = evidence.baseline_problem
        if status == "error":
            return Outcome.error(f"{label}: {problem}", expectation.text)
        return Outcome.failed(f"{label} {format_value(value)}: cannot compare with the "
                              f"baseline: {problem}", value, expectation.text, rows=scope.rows)
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
