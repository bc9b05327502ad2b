"""``timing``: latency and throughput of a callable a fixture returns.

    [tool.mlfunnel.model.latency]
    timing = "predict_one"          # a fixture returning a zero-argument callable
    warmup = 10
    runs = 200
    expect = { p95_ms = "<= 50", per_second = ">= 100" }

The callable is called ``warmup`` times unmeasured, then ``runs`` times, each call timed on
its own with ``time.perf_counter``. All criteria of one check share one measurement per
process; numbers are reported with the run count they come from.
"""

from __future__ import annotations

import inspect
import math
import re
import sys
import time
from dataclasses import dataclass
from typing import Any

from pydantic import Field, field_validator, model_validator

from pytest_mlfunnel.expectations import Expectation, format_value
from pytest_mlfunnel.funnel import first_line
from pytest_mlfunnel.kinds.base import (
    CheckConfig,
    CheckKind,
    Criterion,
    EvalContext,
    Evaluate,
    ExpectationField,
    PlanContext,
)
from pytest_mlfunnel.kinds.http import LatencyExpect, percentile
from pytest_mlfunnel.outcome import CriterionError, Outcome

_IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_RUNS = 10_000_000


class TimingExpect(LatencyExpect):
    per_second: ExpectationField | None = None

    @model_validator(mode="after")
    def _throughput(self) -> TimingExpect:
        if self.per_second is not None and self.per_second.unit != "number":
            raise ValueError(f"per_second is calls per second: write e.g. '>= 100', not "
                             f"{self.per_second.text!r}")
        if not any(getattr(self, key) is not None for key in type(self).model_fields):
            raise ValueError("give at least one of p50_ms, p95_ms, p99_ms, per_second, e.g. "
                             "expect = { p95_ms = \"<= 50\" }")
        return self


class TimingConfig(CheckConfig):
    timing: str
    runs: int = Field(default=100, ge=1, le=MAX_RUNS)
    warmup: int = Field(default=5, ge=0, le=MAX_RUNS)
    expect: TimingExpect

    @field_validator("timing")
    @classmethod
    def _fixture_name(cls, value: str) -> str:
        if not _IDENTIFIER_RE.match(value.strip()):
            raise ValueError(f"expected the name of a fixture that returns a zero-argument "
                             f"callable, got {value!r}")
        return value.strip()


def active_tracer() -> str | None:
    """Who traces this thread (coverage, a debugger), which inflates every timed call."""
    trace = sys.gettrace()
    if trace is not None:
        owner = getattr(trace, "__self__", trace)  # a bound method: its object
        module = type(owner).__module__ or ""
        if module == "builtins":
            module = getattr(trace, "__module__", None) or ""
        if module.startswith("coverage"):
            return "coverage"
        if module.split(".")[0] in ("bdb", "pdb", "pydevd", "_pydevd_bundle", "debugpy"):
            return "a debugger"
        return module.split(".")[0] or "unknown"
    monitoring = getattr(sys, "monitoring", None)  # Python 3.12+: coverage may use it instead
    if monitoring is not None:
        for tool in range(6):
            name = monitoring.get_tool(tool)
            if name:
                return "coverage" if "coverage" in name.lower() else str(name)
    return None


@dataclass
class Measurement:
    durations_ms: list[float]
    total_s: float
    warmup: int
    tracer: str | None = None  # measured under coverage or a debugger: times are inflated

    @property
    def runs(self) -> int:
        return len(self.durations_ms)

    @property
    def per_second(self) -> float:
        return self.runs / self.total_s if self.total_s > 0 else math.inf

    def summary(self) -> dict[str, float]:
        return {"runs": self.runs, "warmup": self.warmup,
                "p50_ms": percentile(self.durations_ms, 50),
                "p95_ms": percentile(self.durations_ms, 95),
                "p99_ms": percentile(self.durations_ms, 99),
                "mean_ms": sum(self.durations_ms) / self.runs,
                "per_second": self.per_second}


def measure(function: Any, name: str, runs: int, warmup: int) -> Measurement:
    if not callable(function):
        raise CriterionError(f"fixture {name!r} returned {type(function).__name__}, expected "
                             "a zero-argument callable (e.g. lambda: model.predict(row))")
    clock = time.perf_counter
    call = 0
    try:
        for _ in range(warmup):
            call += 1
            result = function()
            if call == 1:
                ran_its_body(result, name)
        durations: list[float] = []
        for _ in range(runs):
            call += 1
            started = clock()
            result = function()
            durations.append(clock() - started)
            if call == 1:
                ran_its_body(result, name)
    except CriterionError:
        raise
    except (Exception, SystemExit) as exc:  # sys.exit() in the callable ends the call only
        phase = "warm-up call" if call <= warmup else "call"
        number = call if call <= warmup else call - warmup
        raise CriterionError(f"{name}: {phase} {number} raised {type(exc).__name__}: "
                             f"{first_line(str(exc))}".rstrip(": ")
                             ) from None
    return Measurement([d * 1000.0 for d in durations], sum(durations), warmup,
                       active_tracer())


def ran_its_body(result: Any, name: str) -> None:
    """A coroutine or generator function returns at once without running its body: timing
    it would report the cost of making a coroutine, far below any real latency."""
    if inspect.iscoroutine(result):
        result.close()  # never awaited on purpose: no RuntimeWarning about it
        raise CriterionError(f"{name}: a call returned a coroutine, which runs only when "
                             "awaited: return a plain callable (e.g. lambda: "
                             "asyncio.run(predict(row)))")
    if inspect.isgenerator(result) or inspect.isasyncgen(result):
        kind = "an async generator" if inspect.isasyncgen(result) else "a generator"
        raise CriterionError(f"{name}: a call returned {kind}, which runs only when "
                             "iterated: return a plain callable (e.g. lambda: "
                             "list(predict(rows)))")


class TimingKind(CheckKind[TimingConfig]):
    key = "timing"
    evidence = "measured"
    config_model = TimingConfig

    def plan(self, check: TimingConfig, ctx: PlanContext) -> list[Criterion]:
        criteria = []
        for key in ("p50_ms", "p95_ms", "p99_ms", "per_second"):
            expectation = getattr(check.expect, key)
            if expectation is not None:
                criteria.append(Criterion(key, self._evaluator(check, key,
                                                               expectation),
                                          fixtures=(check.timing,),
                                          expected=expectation.text))
        return criteria

    @staticmethod
    def _evaluator(check: TimingConfig, key: str,
                   expectation: Expectation) -> Evaluate:
        def evaluate(ctx: EvalContext) -> Outcome:
            function = ctx.fixtures.get(check.timing)
            measured = ctx.per_check(lambda: measure_once(
                function, check.timing, check.runs, check.warmup))
            if isinstance(measured, str):  # the first criterion's error, not measured again
                raise CriterionError(measured)
            summary = measured.summary()
            runs = (f"over {measured.runs} runs" + (f" after {measured.warmup} warm-up"
                                                    if measured.warmup else ""))
            if key == "per_second":
                observed = reported = measured.per_second
                shown = f"{format_value(round(observed, 1))}/s"
                label = "throughput"
            else:
                reported = summary[key]
                observed = reported / 1000.0 if expectation.unit == "duration" else reported
                shown = (format_value(observed, "duration") if expectation.unit == "duration"
                         else f"{format_value(round(reported, 4))} ms")
                label = key.removesuffix("_ms")
            words = f"{check.timing}: {label} {shown} {runs}, expected {expectation.text}"
            extra: dict[str, Any] = dict(summary)
            if measured.tracer is not None:
                words += f" -- measured under a tracer ({measured.tracer}); times are inflated"
                extra["tracer"] = measured.tracer
            if expectation.holds(observed):
                return Outcome.passed(round(reported, 6), expectation.text, words, **extra)
            return Outcome.failed(words, round(reported, 6), expectation.text, None, **extra)
        return evaluate


def measure_once(function: Any, name: str, runs: int, warmup: int) -> Measurement | str:
    """A measurement, or the error message (kept so other criteria do not call it again)."""
    try:
        return measure(function, name, runs, warmup)
    except CriterionError as exc:
        return str(exc)
