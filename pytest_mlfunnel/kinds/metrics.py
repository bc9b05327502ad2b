"""``metrics``: named numbers meet expectations, optionally against a baseline."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from pydantic import model_validator

from pytest_mlfunnel.expectations import Expectation
from pytest_mlfunnel.kinds.base import (
    CheckConfig,
    CheckKind,
    Criterion,
    EvalContext,
    Evaluate,
    MetricExpectations,
    PlanContext,
    Source,
)
from pytest_mlfunnel.outcome import CriterionError, Outcome
from pytest_mlfunnel.sources.metrics import MetricSet, load_metrics
from pytest_mlfunnel.sources.spec import SourceSpec
from pytest_mlfunnel.suggest import did_you_mean


class MetricsConfig(CheckConfig):
    metrics: Source
    expect: MetricExpectations
    baseline: Source | None = None

    @model_validator(mode="after")
    def _baseline_given_when_used(self) -> MetricsConfig:
        if not self.expect:
            raise ValueError("expect: give at least one metric, e.g. expect = { accuracy = "
                             "\">= 0.8\" }")
        if any(not name.strip() for name in self.expect):
            raise ValueError("expect: a metric name is empty (\"\" = ...); name the metric, "
                             "e.g. expect = { accuracy = \">= 0.8\" }")
        if self.baseline is None:
            used = [name for name, exp in self.expect.items() if exp.uses_baseline]
            if used:
                raise ValueError(f"expect.{used[0]}: {self.expect[used[0]].text!r} compares "
                                 "with the baseline, but no 'baseline' source is given")
        return self


def _number(name: str, value: Any, origin: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise CriterionError(f"{name} in {origin} is {_shown(value)}, not a number")
    return float(value)


#: How much of a value that is not a number the message quotes
SHOWN_CHARACTERS = 60


def _shown(value: Any) -> str:
    """``'n/a'``; a long text is cut (a whole base64 blob made a message of pages)."""
    text = repr(value)
    if len(text) <= SHOWN_CHARACTERS + 20:
        return text
    size = f"{len(value)} characters" if isinstance(value, str) else f"{len(text)} characters"
    return f"{text[:SHOWN_CHARACTERS]}… ({size})"


class MetricsKind(CheckKind[MetricsConfig]):
    key = "metrics"
    evidence = "measured"
    config_model = MetricsConfig

    def plan(self, check: MetricsConfig, ctx: PlanContext) -> list[Criterion]:
        fixtures = tuple(dict.fromkeys(
            check.metrics.fixtures + (check.baseline.fixtures if check.baseline else ())))
        criteria = []
        for pattern, expectation in check.expect.items():
            for name in self._expand(pattern, check.metrics, ctx):
                criteria.append(Criterion(
                    name=name,
                    evaluate=self._evaluator(check, name, expectation),
                    fixtures=fixtures,
                    expected=expectation.text,
                ))
        return criteria

    @staticmethod
    def _expand(pattern: str, source: SourceSpec, ctx: PlanContext) -> list[str]:
        """``slices.*.r2`` -> one criterion per slice, when the metrics file exists already."""
        if "*" not in pattern or source.path is None:
            return [pattern]
        try:
            metrics = load_metrics(source, Path(ctx.rootdir))
            matches = [name for name, _ in metrics.resolve(pattern)]
        except CriterionError:
            return [pattern]  # the criterion reports the problem when it runs
        return matches or [pattern]

    @staticmethod
    def _evaluator(check: MetricsConfig, name: str, expectation: Expectation) -> Evaluate:
        def evaluate(ctx: EvalContext) -> Outcome:
            metrics = load_metrics(check.metrics, ctx.rootdir, ctx)
            baseline = (load_metrics(check.baseline, ctx.rootdir, ctx)
                        if check.baseline is not None and expectation.uses_baseline else None)
            return with_evidence(judge(metrics, baseline), metrics, baseline)

        def judge(metrics: MetricSet, baseline: MetricSet | None) -> Outcome:
            matches = metrics.resolve(name)
            if not matches:
                return Outcome.failed(
                    f"{name}: no such metric in {metrics.origin} (metrics there: "
                    f"{metrics.describe_names()}){did_you_mean(name, metrics.names())}",
                    None, expectation.text)
            if len(matches) == 1:
                metric, value = matches[0]
                return compare_one(metric, value, expectation, metrics, baseline)
            outcomes = {metric: compare_one(metric, value, expectation, metrics, baseline)
                        for metric, value in matches}
            return Outcome.of_all(outcomes, expectation.text,
                                  f"{len(outcomes)} metrics match {name}, all as expected",
                                  "{bad} of {total} failed")
        return evaluate


def with_evidence(outcome: Outcome, metrics: MetricSet, baseline: MetricSet | None) -> Outcome:
    """Name the exact run a number came from (sources that know one, such as MLflow)."""
    for label, used in (("source", metrics), ("baseline", baseline)):
        if used is not None and used.evidence:
            outcome.extra["source" if label == "source" else "baseline_source"] = used.evidence
            outcome.details.append(f"{label}: {used.origin}")
    return outcome


def compare_one(name: str, value: Any, expectation: Expectation, metrics: MetricSet,
                baseline: MetricSet | None) -> Outcome:
    try:
        observed = _number(name, value, metrics.origin)
    except CriterionError as exc:
        return Outcome.error(str(exc), expectation.text)
    if math.isnan(observed):
        return Outcome.failed(f"{name} in {metrics.origin} is NaN, expected "
                              f"{expectation.text}", None, expectation.text)
    if math.isinf(observed):  # an evaluation that divided by zero, not a measurement
        return Outcome.failed(f"{name} in {metrics.origin} is {observed} (not a finite "
                              f"number), expected {expectation.text}", None, expectation.text)
    reference: float | None = None
    if baseline is not None:
        found = baseline.resolve(name)
        if not found:
            return Outcome.error(f"{name}: not in the baseline {baseline.origin} (metrics "
                                 f"there: {baseline.describe_names()})", expectation.text)
        try:
            reference = _number(name, found[0][1], baseline.origin)
        except CriterionError as exc:
            return Outcome.error(str(exc), expectation.text)
        if not math.isfinite(reference):
            return Outcome.error(f"{name} in the baseline {baseline.origin} is {reference}, "
                                 "not a finite number to compare with", expectation.text)
    return Outcome.compare(name, observed, expectation, reference)
