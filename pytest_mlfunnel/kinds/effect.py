"""``effect``: a KPI moved the expected way, by enough, significantly.

One criterion per check, named after the metric: it passes only when all three hold --
the mean moved in the expected direction, by at least ``min_effect``, and a one-sided test
at ``confidence`` says the move is not chance. The message names whichever failed.

Welch's test needs only n, mean and variance per group: one grouped aggregate query. The
rank and resampling tests need values: they read the ``by`` and ``metric`` columns of up to
``max_rows`` rows (all rows when the table is smaller, else a sample seeded by ``seed``) and
say so in the message.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from pytest_mlfunnel.engines.protocol import NUMERIC, Agg, Table
from pytest_mlfunnel.expectations import ExpectationError, format_value, parse_number
from pytest_mlfunnel.kinds.base import (
    CheckConfig,
    CheckKind,
    Criterion,
    EvalContext,
    PlanContext,
    Source,
)
from pytest_mlfunnel.outcome import CriterionError, Outcome
from pytest_mlfunnel.sources.tabular import missing_column, open_table
from pytest_mlfunnel.stats import (
    GroupSummary,
    StatsError,
    TwoSampleResult,
    bootstrap,
    mann_whitney,
    welch,
)

Label = str | int | bool
Test = Literal["welch", "mannwhitney", "bootstrap"]
#: Rows read by the sample-based tests when ``max_rows`` is not given.
DEFAULT_MAX_ROWS: dict[str, int] = {"mannwhitney": 1_000_000, "bootstrap": 10_000}
BOOTSTRAP_RESAMPLES = 2000
#: the most rows a sample-based test may read into memory
MAX_ROWS = 1_000_000_000
#: seeds go into SQL arithmetic and numpy: 31 bits keep every engine exact
MAX_SEED = 2**31 - 1


@dataclass(frozen=True)
class MinEffect:
    """``"5%"``: relative change of the mean; ``0.3``: absolute change in the metric's unit."""

    value: float
    relative: bool
    text: str

    def describe(self) -> str:
        return self.text


class EffectConfig(CheckConfig):
    effect: Source
    metric: str
    by: str
    before: Label | None = None
    after: Label | None = None
    control: Label | None = None
    treatment: Label | None = None
    expect: Literal["increase", "decrease"]
    min_effect: MinEffect | None = None
    confidence: float = 0.95
    test: Test = "welch"
    max_rows: int | None = Field(default=None, gt=1, le=MAX_ROWS)
    seed: int = Field(default=0, ge=0, le=MAX_SEED)

    @field_validator("min_effect", mode="before")
    @classmethod
    def _parse_min_effect(cls, value: Any) -> Any:
        if value is None or isinstance(value, MinEffect):
            return value
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError(f"expected a relative change such as '5%' or an absolute one "
                             f"such as 0.3, got {value!r}")
        text = str(value).strip()
        try:
            if text.endswith("%"):
                number, relative = parse_number(text[:-1].strip()) / 100.0, True
            else:
                number, relative = parse_number(text), False
        except (ValueError, ExpectationError):
            raise ValueError(f"not a size of change: {value!r} (write '5%' for a relative "
                             "change of the mean, or a plain number for an absolute one)"
                             ) from None
        if number < 0 or math.isnan(number):
            raise ValueError(f"min_effect is a size, not a direction: {value!r} (the "
                             "direction is given by expect)")
        return MinEffect(number, relative, text if relative else format_value(number))

    @field_validator("confidence")
    @classmethod
    def _confidence_range(cls, value: float) -> float:
        if not 0.5 <= value < 1.0:
            raise ValueError(f"confidence is a level such as 0.95, between 0.5 and 1, "
                             f"got {value!r}")
        return value

    @field_validator("metric", "by")
    @classmethod
    def _column_name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("give a column name")
        return value

    @model_validator(mode="after")
    def _one_pair_of_labels(self) -> EffectConfig:
        timed = self.before is not None or self.after is not None
        trial = self.control is not None or self.treatment is not None
        if timed and trial:
            raise ValueError("give before/after or control/treatment, not both")
        # before/after default to the labels "before" and "after"; an experiment's
        # control and treatment have no natural default, so both are named.
        given = [getattr(self, k) is not None for k in ("control", "treatment")]
        if any(given) and not all(given):
            missing = "control" if not given[0] else "treatment"
            raise ValueError(f"{missing}: missing (give both control and treatment)")
        if self.max_rows is not None and self.test == "welch":
            raise ValueError("max_rows: welch reads only aggregates, not rows (max_rows is "
                             "for test = 'mannwhitney' or 'bootstrap')")
        return self

    @property
    def labels(self) -> tuple[tuple[str, Label], tuple[str, Label]]:
        """((word, label) of the baseline group, (word, label) of the changed group)."""
        if self.control is not None and self.treatment is not None:
            return ("control", self.control), ("treatment", self.treatment)
        return (("before", self.before if self.before is not None else "before"),
                ("after", self.after if self.after is not None else "after"))

    @property
    def alpha(self) -> float:
        return 1.0 - self.confidence


class EffectKind(CheckKind[EffectConfig]):
    key = "effect"
    evidence = "measured"
    config_model = EffectConfig

    def plan(self, check: EffectConfig, ctx: PlanContext) -> list[Criterion]:
        size = f" by >= {check.min_effect.describe()}" if check.min_effect else ""
        expected = f"{check.expect}{size}, p <= {format_value(check.alpha)} (one-sided)"

        def evaluate(ev: EvalContext) -> Outcome:
            return evaluate_effect(check, ev, expected)

        return [Criterion(check.metric, evaluate, fixtures=check.effect.fixtures,
                          expected=expected)]


def _label_matches(value: Any, label: Label) -> bool:
    if isinstance(label, bool) or isinstance(value, bool):
        truth = _truth(value)
        return truth is not None and truth == _truth(label)
    return value == label or str(value) == str(label)


def _truth(value: Any) -> bool | None:
    """A boolean label or group key as True/False: SQLite keeps a BOOLEAN as 0 and 1, a CSV
    as the text 'true' and 'false'."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def _group(groups: dict[Any, list[Any]], label: Label, check: EffectConfig, word: str,
           display: str) -> GroupSummary:
    found = [values for key, values in groups.items() if _label_matches(key, label)]
    if not found:
        seen = ", ".join(sorted(str(k) for k in groups)) or "no rows"
        raise CriterionError(f"{display}: no rows with {check.by} = {label!r} (the {word} "
                             f"group); {check.by} has: {seen}")
    count, mean, var = found[0]
    n = int(count or 0)
    if n < 2:
        raise CriterionError(f"{check.metric}: {n} value(s) with {check.by} = {label!r} (the "
                             f"{word} group); the test needs at least 2 per group")
    summary = GroupSummary(n, float(mean), float(var if var is not None else math.nan))
    if not math.isfinite(summary.mean) or (var is not None and not math.isfinite(summary.var)):
        raise CriterionError(f"{check.metric}: holds infinite values with {check.by} = {label!r} "
                             f"(the {word} group: its mean is {format_value(summary.mean)}); "
                             "the effect needs finite numbers")
    return summary


def _numeric(value: Any) -> float | None:
    if value is None or isinstance(value, str):
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _sampled_values(table: Table, check: EffectConfig, total_rows: int
                    ) -> tuple[list[float], list[float], str]:
    limit = check.max_rows or DEFAULT_MAX_ROWS[check.test]
    rows = table.sample([check.by, check.metric], limit, check.seed)
    (_, before_label), (_, after_label) = check.labels
    before: list[float] = []
    after: list[float] = []
    for key, raw in zip(rows[check.by], rows[check.metric], strict=True):
        value = _numeric(raw)
        if value is None:
            continue
        if _label_matches(key, after_label):
            after.append(value)
        elif _label_matches(key, before_label):
            before.append(value)
    read = len(rows[check.by])
    if read < total_rows:
        note = (f"{check.test} on a sample of {read:,} of {total_rows:,} rows "
                f"(max_rows {limit:,}, seed {check.seed})")
    else:
        note = f"{check.test} on all {total_rows:,} rows"
    # Each engine hands rows back in its own order, and the bootstrap's resamples follow
    # the order: sorted, the same rows give the same numbers on every engine.
    before.sort()
    after.sort()
    for word, values in (("before", before), ("after", after)):
        if len(values) < 2:
            raise CriterionError(f"{check.metric}: {len(values)} value(s) in the {word} group "
                                 f"of the sample ({note}); the test needs at least 2 per group")
    return after, before, note


def _percent(value: float) -> str:
    return f"{abs(value) * 100:.1f}%"


def evaluate_effect(check: EffectConfig, ctx: EvalContext, expected: str) -> Outcome:
    table = open_table(check.effect, ctx)
    schema = table.schema()
    for column in (check.metric, check.by):
        if column not in schema:
            raise CriterionError(missing_column(column, schema, table.display))
    if schema[check.metric] not in NUMERIC:
        raise CriterionError(f"{check.metric}: the metric must be numeric, {check.metric} in "
                             f"{table.display} is {schema[check.metric]}")
    groups = table.grouped(check.by, [Agg("count", check.metric), Agg("mean", check.metric),
                                      Agg("var", check.metric)])
    (before_word, before_label), (after_word, after_label) = check.labels
    before = _group(groups, before_label, check, before_word, table.display)
    after = _group(groups, after_label, check, after_word, table.display)
    alternative: Literal["greater", "less"] = "greater" if check.expect == "increase" else "less"
    note = ""
    try:
        result: TwoSampleResult = welch(after, before, alternative, check.confidence)
        if check.test != "welch":
            total_rows = int(table.aggregate([Agg("rows")])[0])
            after_values, before_values, note = _sampled_values(table, check, total_rows)
            if check.test == "mannwhitney":
                ranks = mann_whitney(after_values, before_values, alternative)
                # The size criterion is about means, so the interval stays Welch's.
                result = TwoSampleResult(ranks.statistic, ranks.p_value, result.difference,
                                    result.ci, None)
            else:
                resampled = bootstrap(after_values, before_values, alternative,
                                      check.confidence, BOOTSTRAP_RESAMPLES, check.seed)
                result = TwoSampleResult(resampled.statistic, resampled.p_value, result.difference,
                                    resampled.ci, None)
    except StatsError as exc:
        raise CriterionError(f"{check.metric}: {exc}") from None
    return judge(check, before, after, result, note, expected)


def judge(check: EffectConfig, before: GroupSummary, after: GroupSummary, result: TwoSampleResult,
          note: str, expected: str) -> Outcome:
    """Direction, size and significance, in words."""
    difference = after.mean - before.mean
    relative = difference / abs(before.mean) if before.mean != 0 else None
    (before_word, _), (_after_word, _) = check.labels
    arrow = (f"{format_value(before.mean)} -> {format_value(after.mean)}"
             if before_word == "before" else
             f"control {format_value(before.mean)} vs treatment {format_value(after.mean)}")
    verb = "rose" if difference > 0 else "fell" if difference < 0 else "did not change"
    if difference == 0:
        change = f"{check.metric} did not change ({arrow})"
    elif relative is not None:
        change = f"{check.metric} {verb} {_percent(relative)} ({arrow})"
    else:
        change = f"{check.metric} {verb} by {format_value(abs(difference))} ({arrow})"
    wanted = "an increase" if check.expect == "increase" else "a decrease"
    p_text = f"p = {_p(result.p_value)}"
    test_text = f"{check.test}, one-sided, n = {before.n:,}/{after.n:,}"
    if note:
        test_text += f"; {note}"
    extra: dict[str, Any] = {
        "test": check.test, "n_before": before.n, "n_after": after.n,
        "mean_before": before.mean, "mean_after": after.mean, "difference": difference,
        "relative_change": relative, "p_value": result.p_value,
        "ci": [result.ci[0], result.ci[1]], "confidence": check.confidence,
        "statistic": None if math.isnan(result.statistic) or math.isinf(result.statistic)
        else result.statistic,
        "labels": [str(check.labels[0][1]), str(check.labels[1][1])],
    }
    if note:
        extra["sample"] = note
    observed: float | None
    size = check.min_effect
    observed = difference if size is not None and not size.relative else relative
    direction_ok = difference > 0 if check.expect == "increase" else difference < 0
    if not direction_ok:
        return Outcome.failed(f"{change}, expected {wanted}", observed, expected, **extra)
    if size is not None:
        if size.relative and relative is None:
            raise CriterionError(f"{check.metric}: the {before_word} mean is 0, so a relative "
                                 f"min_effect ({size.text}) is undefined; give an absolute one")
        moved = abs(relative) if size.relative and relative is not None else abs(difference)
        if moved < size.value:
            return Outcome.failed(f"{change}, expected {wanted} of at least {size.text}",
                                  observed, expected, **extra)
    if not result.p_value <= check.alpha:
        return Outcome.failed(
            f"{change}, as expected but not significant: {p_text}, needs <= "
            f"{format_value(check.alpha)} ({test_text})", observed, expected, **extra)
    return Outcome.passed(observed, expected,
                          f"{change}, {wanted} as expected; {p_text} ({test_text})", **extra)


def _p(value: float) -> str:
    if value == 0:
        return "0"
    if value < 1e-4:
        return f"{value:.1e}"
    return format_value(round(value, 4))
