"""``dataset``: table and column constraints on a tabular source, all from one pass.

Every constraint is one criterion (``rows``, ``age.nulls``, ``plan.values``, ``join``,
``group_size.median`` ...). ``plan`` registers the aggregates they need with the source, so
the first criterion to run computes all of them in one aggregate query and the others read
the shared result.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pytest_mlfunnel.engines.protocol import NUMERIC, Agg, Table, as_column_value
from pytest_mlfunnel.expectations import (
    Expectation,
    ExpectationError,
    format_duration,
    format_value,
    parse_share,
)
from pytest_mlfunnel.kinds.base import (
    CLOCK_SKEW_S,
    CheckConfig,
    CheckKind,
    Criterion,
    Duration,
    EvalContext,
    Evaluate,
    ExpectationField,
    PlanContext,
    Source,
    share_expectation,
)
from pytest_mlfunnel.outcome import CriterionError, Outcome
from pytest_mlfunnel.sources.spec import SourceSpec
from pytest_mlfunnel.sources.tabular import (
    SharedTable,
    missing_column,
    open_table,
)

Scalar = int | float | str | bool
#: value_counts kept for ``min_share``: more classes than this is not a class column
MAX_CLASSES = 1000
#: dates Python cannot hold, handed back as text (DuckDB: '20000-01-01', '0044-03-15 (BC)')
_PAST_9999 = re.compile(r"\d{5,}-")
_BEFORE_YEAR_1 = re.compile(r"\(BC\)")
MAX_SHOWN = 5


def _no_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError(f"expected a number or an ISO date, got {value!r}")
    return value


def _percent_in_range(value: Expectation | None, key: str) -> Expectation | None:
    """``"<= 5%"`` compares the share of rows, so it lies between 0 and 100%."""
    if value is not None and value.unit == "percent" and not 0 <= value.value <= 1:
        raise ValueError(f"{key}: a percentage compares the share of rows, between 0 and "
                         f"100%, got {value.text!r}")
    return value


class ColumnRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    nulls: ExpectationField | None = None
    unique: bool | None = None
    min: int | float | str | None = None
    max: int | float | str | None = None
    values: list[Scalar] | None = None
    min_share: float | None = None
    dtype: Literal["int", "float", "string", "bool", "datetime", "date"] | None = None
    max_age: Duration | None = None

    @field_validator("nulls")
    @classmethod
    def _nulls_share(cls, value: Expectation | None) -> Expectation | None:
        return _percent_in_range(value, "nulls")

    @field_validator("min", "max", mode="before")
    @classmethod
    def _bound(cls, value: Any) -> Any:
        value = _no_bool(value)
        if isinstance(value, dt.datetime | dt.date):
            return value.isoformat()
        if isinstance(value, str):
            try:
                dt.datetime.fromisoformat(value.strip())
            except ValueError:
                raise ValueError(f"expected a number or an ISO date such as 2026-01-01, got "
                                 f"{value!r}") from None
        return value

    @field_validator("min_share", mode="before")
    @classmethod
    def _share(cls, value: Any) -> float:
        try:
            share = parse_share(value)
        except ExpectationError as exc:
            raise ValueError(str(exc)) from None
        if not 0 < share <= 1:
            raise ValueError(f"a share between 0 and 100%, got {value!r}")
        return share

    @field_validator("values")
    @classmethod
    def _some_values(cls, value: list[Scalar] | None) -> list[Scalar] | None:
        if value is not None and not value:
            raise ValueError("give at least one allowed value")
        return value

    @model_validator(mode="after")
    def _something_to_check(self) -> ColumnRules:
        if all(getattr(self, name) is None for name in type(self).model_fields):
            raise ValueError("no constraint: give nulls, unique, min, max, values, min_share, "
                             "dtype or max_age")
        if (isinstance(self.min, int | float) and isinstance(self.max, int | float)
                and self.min > self.max):
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class JoinRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    dataset: Source
    on: str | list[str]
    match: ExpectationField

    @property
    def keys(self) -> list[str]:
        return [self.on] if isinstance(self.on, str) else list(self.on)

    @field_validator("match")
    @classmethod
    def _match_is_a_share(cls, value: Expectation) -> Expectation:
        return share_expectation(value, "match (the share of rows whose key is found)")

    @model_validator(mode="after")
    def _keys_given(self) -> JoinRule:
        if not self.keys or any(not k.strip() for k in self.keys):
            raise ValueError("on: name the key column(s), e.g. on = \"customer_id\"")
        return self


class GroupSizeRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    by: str | list[str]
    median: ExpectationField | None = None
    mean: ExpectationField | None = None
    min: ExpectationField | None = None
    max: ExpectationField | None = None

    @property
    def keys(self) -> list[str]:
        return [self.by] if isinstance(self.by, str) else list(self.by)

    def stats(self) -> dict[str, Expectation]:
        found = {"median": self.median, "mean": self.mean, "min": self.min, "max": self.max}
        return {name: exp for name, exp in found.items() if exp is not None}

    @model_validator(mode="after")
    def _a_statistic(self) -> GroupSizeRule:
        if not self.stats():
            raise ValueError("give median, mean, min or max, e.g. median = \">= 3\"")
        if not self.keys:
            raise ValueError("by: name the group column(s)")
        return self


class DatasetConfig(CheckConfig):
    dataset: Source
    rows: ExpectationField | None = None
    duplicates: ExpectationField | None = None
    columns: dict[str, ColumnRules] = Field(default_factory=dict)
    join: JoinRule | None = None
    group_size: GroupSizeRule | None = None
    #: estimate the distinct counts behind ``duplicates`` and ``unique`` (HyperLogLog)
    approx: bool = False

    @field_validator("duplicates")
    @classmethod
    def _duplicates_share(cls, value: Expectation | None) -> Expectation | None:
        return _percent_in_range(value, "duplicates")

    @model_validator(mode="after")
    def _something_to_check(self) -> DatasetConfig:
        if (self.rows is None and self.duplicates is None and not self.columns
                and self.join is None and self.group_size is None):
            raise ValueError("no constraint: give rows, duplicates, columns, join or "
                             "group_size")
        return self


class DatasetKind(CheckKind[DatasetConfig]):
    key = "dataset"
    evidence = "measured"
    config_model = DatasetConfig

    def plan(self, check: DatasetConfig, ctx: PlanContext) -> list[Criterion]:
        source = check.dataset
        fixtures = source.fixtures
        if check.join is not None:
            fixtures = tuple(dict.fromkeys(fixtures + check.join.dataset.fixtures))
        criteria: list[Criterion] = []

        def add(name: str, evaluate: Evaluate, expected: str, needs: list[Agg]) -> None:
            criteria.append(Criterion(name, evaluate, fixtures, expected,
                                      needs=((source, tuple(needs)),) if needs else ()))

        if check.rows is not None:
            add("rows", _rows(source, check.rows), check.rows.text, [Agg("rows")])
        if check.duplicates is not None:
            add("duplicates", _duplicates(source, check.duplicates, check.approx),
                check.duplicates.text, [Agg("rows"), Agg(_duplicates_op(check.approx))])
        for column, rules in check.columns.items():
            for name, evaluate, expected, needs in _column_criteria(source, column, rules,
                                                                   check.approx):
                add(f"{column}.{name}", evaluate, expected, needs)
        if check.join is not None:
            add("join", _join(source, check.join), check.join.match.text, [Agg("rows")])
        if check.group_size is not None:
            for stat, expectation in check.group_size.stats().items():
                add(f"group_size.{stat}", _group_size(source, check.group_size, stat,
                                                      expectation), expectation.text, [])
        return criteria


# --------------------------------------------------------------------------- table level
def _table(source: SourceSpec, ctx: EvalContext) -> Table:
    return open_table(source, ctx)


def _count_or_share(label: str, count: int, rows: int, expectation: Expectation,
                    what: str) -> Outcome:
    """A percentage compares the share of rows; a plain number compares the count."""
    share = count / rows if rows else 0.0
    of_rows = f"of {rows} row{'' if rows == 1 else 's'}"
    words = f"{count} {of_rows}"
    if expectation.unit == "percent":
        message = (f"{label}: {format_value(share, 'percent')} {what} ({words}), "
                   f"expected {expectation.text}")
        holds = expectation.holds(share)
        observed: float = share
    else:
        one = what.replace("rows", "row", 1) if "rows" in what else what.removesuffix("s")
        message = (f"{label}: {count} {one if count == 1 else what} "
                   f"({format_value(share, 'percent')} {of_rows}), expected {expectation.text}")
        holds = expectation.holds(count)
        observed = count
    if holds:
        return Outcome.passed(observed, expectation.text, message, count=count, rows=rows)
    return Outcome.failed(message, observed, expectation.text, count=count, rows=rows)


def _rows(source: SourceSpec, expectation: Expectation) -> Evaluate:
    def evaluate(ctx: EvalContext) -> Outcome:
        (rows,) = _table(source, ctx).aggregate([Agg("rows")])
        return Outcome.compare("rows", rows, expectation)
    return evaluate


def _duplicates_op(approx: bool) -> str:
    return "approx_duplicate_rows" if approx else "duplicate_rows"


def _distinct_op(approx: bool) -> str:
    return "approx_distinct" if approx else "distinct"


def _estimate_note(error: float, distinct: int) -> str:
    """How far an estimated distinct count may be off, for the criterion's message."""
    if not error:
        return "; counted exactly (this engine has no estimate)"
    return (f"; an estimate (HyperLogLog): relative standard error {error:.1%} of the "
            f"{distinct} distinct, about ±{round(error * distinct)}")


def _duplicates(source: SourceSpec, expectation: Expectation, approx: bool = False
                ) -> Evaluate:
    def evaluate(ctx: EvalContext) -> Outcome:
        table = _table(source, ctx)
        rows, duplicated = table.aggregate([Agg("rows"), Agg(_duplicates_op(approx))])
        if not approx:
            return _count_or_share("duplicates", duplicated, rows, expectation,
                                   "duplicated rows")
        duplicated = min(max(0, duplicated), rows)  # an estimate may stray past either end
        error = table.approx_error()
        outcome = _count_or_share("duplicates", duplicated, rows, expectation,
                                  "duplicated rows (estimated)" if error else "duplicated rows")
        outcome.message += _estimate_note(error, rows - duplicated)
        outcome.extra.update(estimate=bool(error), relative_error=error)
        return outcome
    return evaluate


# --------------------------------------------------------------------------- columns
ColumnPlan = tuple[str, Evaluate, str, list[Agg]]


def _column_criteria(source: SourceSpec, column: str, rules: ColumnRules,
                     approx: bool = False) -> list[ColumnPlan]:
    found: list[ColumnPlan] = []
    if rules.dtype is not None:
        found.append(("dtype", _dtype(source, column, rules.dtype), rules.dtype, []))
    if rules.nulls is not None:
        found.append(("nulls", _nulls(source, column, rules.nulls), rules.nulls.text,
                      [Agg("rows"), Agg("nulls", column)]))
    if rules.unique:
        found.append(("unique", _unique(source, column, approx), "unique",
                      [Agg("count", column), Agg(_distinct_op(approx), column)]))
    if rules.min is not None:
        found.append(("min", _bound(source, column, "min", rules.min), f">= {rules.min}",
                      [Agg("min", column)]))
    if rules.max is not None:
        found.append(("max", _bound(source, column, "max", rules.max), f"<= {rules.max}",
                      [Agg("max", column)]))
    if rules.values is not None:
        found.append(("values", _values(source, column, rules.values),
                      f"in {_show_list(rules.values)}",
                      [Agg("not_in", column, list(rules.values))]))
    if rules.min_share is not None:
        found.append(("min_share", _min_share(source, column, rules.min_share, rules.values),
                      f">= {format_value(rules.min_share, 'percent')} each",
                      [Agg("count", column), Agg("value_counts", column, MAX_CLASSES)]))
    if rules.max_age is not None:
        found.append(("max_age", _max_age(source, column, rules.max_age),
                      f"within {format_duration(rules.max_age)}", [Agg("max", column)]))
    return found


def _dtype_of(table: Table, column: str) -> str:
    schema = table.schema()
    if column not in schema:
        raise CriterionError(missing_column(column, schema, table.display))
    return schema[column]


#: the most characters of one value a message shows: a text of megabytes would otherwise be
#: printed whole, up to five times, in the terminal, the reports and the history
SHOWN_CHARS = 100


def _show(value: Any) -> str:
    if isinstance(value, str):
        if len(value) > SHOWN_CHARS:
            return f"{value[:SHOWN_CHARS]!r}... ({len(value)} characters)"
        return repr(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, float):
        return format_value(value)
    return _short(value)  # bytes, lists, structs ...


def _short(value: Any) -> str:
    """A value's text, cut at ``SHOWN_CHARS`` with its length (also a key of the report's
    shares)."""
    text = str(value)
    return text if len(text) <= SHOWN_CHARS else f"{text[:SHOWN_CHARS]}... ({len(text)} characters)"


def _show_list(values: list[Any]) -> str:
    shown = ", ".join(_show(v) for v in values[:12])
    return f"[{shown}{', ...' if len(values) > 12 else ''}]"


def _examples(values: list[Any]) -> str:
    return ", ".join(_show(v) for v in values[:MAX_SHOWN])


def _dtype(source: SourceSpec, column: str, expected: str) -> Evaluate:
    def evaluate(ctx: EvalContext) -> Outcome:
        actual = _dtype_of(_table(source, ctx), column)
        ok = actual == expected or (expected == "datetime" and actual == "date")
        message = f"{column}: dtype {actual}, expected {expected}"
        if ok:
            return Outcome.passed(actual, expected, message)
        return Outcome.failed(message, actual, expected)
    return evaluate


def _nulls(source: SourceSpec, column: str, expectation: Expectation) -> Evaluate:
    def evaluate(ctx: EvalContext) -> Outcome:
        table = _table(source, ctx)
        _dtype_of(table, column)
        rows, nulls = table.aggregate([Agg("rows"), Agg("nulls", column)])
        outcome = _count_or_share(column, nulls, rows, expectation, "nulls")
        if outcome.status == "failed" and nulls:
            columns = list(table.schema())
            (examples,) = table.aggregate([Agg("offending", column, ("null", None))])
            outcome.details = [f"row with {column} null: " + ", ".join(
                f"{c}={_show(v)}" for c, v in zip(columns, row, strict=False))
                for row in examples]
        return outcome
    return evaluate


def _unique(source: SourceSpec, column: str, approx: bool = False) -> Evaluate:
    def evaluate(ctx: EvalContext) -> Outcome:
        table = _table(source, ctx)
        _dtype_of(table, column)
        count, distinct = table.aggregate([Agg("count", column),
                                           Agg(_distinct_op(approx), column)])
        if approx and table.approx_error():
            return _unique_estimated(column, count, distinct, table.approx_error())
        repeated = count - distinct
        if repeated == 0:
            return Outcome.passed(0, "unique", f"{column}: {_counted(distinct, 'distinct')}, "
                                  "unique", distinct=distinct)
        (examples,) = table.aggregate([Agg("offending", column, ("duplicated", None))])
        return Outcome.failed(
            f"{column}: {_counted(repeated, 'repeated')} ({distinct} distinct among {count} "
            f"non-null), expected unique; e.g. {_examples(examples)}",
            repeated, "unique", distinct=distinct, count=count)
    return evaluate


def _counted(n: int, kind: str = "") -> str:
    """``1 repeated value``, ``3 values``."""
    return f"{n} {kind + ' ' if kind else ''}value{'' if n == 1 else 's'}"


def _unique_estimated(column: str, count: int, estimate: int, error: float) -> Outcome:
    """``unique`` from an estimated distinct count: passes while the repeats it implies are
    within two standard errors of none (fewer repeats than that cannot be told apart)."""
    distinct = min(max(0, estimate), count)
    repeated = count - distinct
    tolerance = round(2 * error * count)
    words = (f"an estimate (HyperLogLog), relative standard error {error:.1%}: repeats up to "
             f"about {tolerance} cannot be told from none")
    if repeated <= tolerance:
        return Outcome.passed(repeated, "unique", f"{column}: about "
                              f"{_counted(distinct, 'distinct')} among {count} non-null, "
                              f"consistent with unique; {words}",
                              distinct=distinct, estimate=True, relative_error=error)
    return Outcome.failed(f"{column}: about {_counted(repeated, 'repeated')} (about {distinct} "
                          f"distinct among {count} non-null), expected unique; {words}",
                          repeated, "unique", distinct=distinct, count=count, estimate=True,
                          relative_error=error)


def _parse_bound(column: str, bound: int | float | str, dtype: str, which: str) -> Any:
    if isinstance(bound, str):
        if dtype not in ("datetime", "date"):
            raise CriterionError(f"{column}: {which} {bound!r} is a date, but {column} is "
                                 f"{dtype}")
        parsed = dt.datetime.fromisoformat(bound)
        if dtype != "date":
            return parsed
        # a day is that day at 00:00: above a later time of that day only from the next day on
        later = which == "min" and parsed.time() != dt.time()
        return parsed.date() + dt.timedelta(days=1) if later else parsed.date()
    if dtype not in NUMERIC:
        raise CriterionError(f"{column}: {which} {bound} needs a numeric column, {column} is "
                             f"{dtype}")
    return bound


def _text_as_time(column: str, which: str, value: str, dtype: str) -> Any:
    """The smallest or largest value of a date column that came back as text: SQLite keeps
    any text in a DATETIME column, and a date past year 9999 has no Python form (DuckDB hands
    it back as text, which is returned as it is)."""
    if _PAST_9999.match(value.strip()) or _BEFORE_YEAR_1.search(value):
        return value
    try:
        moment = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        extreme = "smallest" if which == "min" else "largest"
        raise CriterionError(f"{column}: {which} needs dates, the {extreme} value is "
                             f"{_show(value)}") from None
    return moment.date() if dtype == "date" else moment


def _comparable_time(value: Any, bound: Any) -> tuple[Any, Any]:
    """Naive and aware datetimes compare in UTC."""
    if (isinstance(value, dt.datetime) and isinstance(bound, dt.datetime)
            and (value.tzinfo is None) != (bound.tzinfo is None)):
        value = value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
        bound = bound if bound.tzinfo else bound.replace(tzinfo=dt.timezone.utc)
    return value, bound


def _bound(source: SourceSpec, column: str, which: str, bound: int | float | str) -> Evaluate:
    op = ">=" if which == "min" else "<="

    def evaluate(ctx: EvalContext) -> Outcome:
        table = _table(source, ctx)
        dtype = _dtype_of(table, column)
        expected = f"{op} {bound}"
        try:
            limit = _parse_bound(column, bound, dtype, which)
        except CriterionError:
            # a CSV file with a header alone reads every column as text: no rows, no type
            if dtype == "string" and not table.aggregate([Agg("rows")])[0]:
                return Outcome.passed(None, expected, f"{column}: no values ({table.display} "
                                      "has no rows)")
            raise
        (value,) = table.aggregate([Agg(which, column)])
        if value is None:
            return Outcome.passed(None, expected, f"{column}: no values")
        if isinstance(value, str) and isinstance(limit, dt.date):
            value = _text_as_time(column, which, value, dtype)
        if isinstance(value, str):  # a year before 1 or past 9999: beyond every bound
            ok = (which == "min") == bool(_PAST_9999.match(value.strip()))
        else:
            value, limit = _comparable_time(value, limit)
            ok = value >= limit if which == "min" else value <= limit
        message = f"{column}: {which} {_show(value)}, expected {expected}"
        if ok:
            return Outcome.passed(value, expected, message)
        mode = "below" if which == "min" else "above"
        (examples,) = table.aggregate([Agg("offending", column, (mode, limit))])
        return Outcome.failed(f"{message}; e.g. {_examples(examples)}", value, expected)
    return evaluate


def _values(source: SourceSpec, column: str, allowed: list[Scalar]) -> Evaluate:
    expected = f"in {_show_list(allowed)}"

    def evaluate(ctx: EvalContext) -> Outcome:
        table = _table(source, ctx)
        _dtype_of(table, column)
        (outside,) = table.aggregate([Agg("not_in", column, list(allowed))])
        if outside == 0:
            return Outcome.passed(0, expected, f"{column}: every value {expected}")
        (examples,) = table.aggregate([Agg("offending", column, ("not_in", list(allowed)))])
        return Outcome.failed(f"{column}: {_counted(outside)} outside {_show_list(allowed)}, "
                              f"e.g. {_examples(examples)}", outside, expected)
    return evaluate


def _min_share(source: SourceSpec, column: str, share: float,
               allowed: list[Scalar] | None) -> Evaluate:
    expected = f">= {format_value(share, 'percent')} each"

    def evaluate(ctx: EvalContext) -> Outcome:
        table = _table(source, ctx)
        dtype = _dtype_of(table, column)
        listed = _as_column_values(column, allowed or [], dtype)
        count, counts = table.aggregate([Agg("count", column),
                                         Agg("value_counts", column, MAX_CLASSES)])
        if count == 0:
            return Outcome.failed(f"{column}: no values, expected {expected}",
                                  None, expected)
        if len(counts) >= MAX_CLASSES:
            return Outcome.failed(f"{column}: more than {MAX_CLASSES} distinct values; "
                                  "min_share is meant for class columns", None, expected)
        classes: dict[Any, int] = dict(counts)
        for value, typed in listed:
            if not any(typed == seen or _same(value, seen) for seen in classes):
                classes[value] = 0
        shares = sorted(((k, n / count) for k, n in classes.items()), key=lambda kv: kv[1])
        smallest_class, smallest = shares[0]
        observed = {_short(k): round(v, 6) for k, v in shares[:20]}  # the smallest, for reports
        low = [(k, v) for k, v in shares if v < share]
        if not low:
            return Outcome.passed(smallest, expected,
                                  f"{column}: smallest class {_show(smallest_class)} has "
                                  f"{format_value(smallest, 'percent')} of values, expected "
                                  f"{expected}", shares=observed)
        words = ", ".join(f"{_show(k)} {format_value(v, 'percent')}" for k, v in
                          low[:MAX_SHOWN])
        return Outcome.failed(f"{column}: {len(low)} class{'es' if len(low) > 1 else ''} "
                              f"below {format_value(share, 'percent')} of values ({words}), "
                              f"expected {expected}", smallest, expected,
                              shares=observed)
    return evaluate


def _as_column_values(column: str, values: list[Scalar], dtype: str) -> list[tuple[Any, Any]]:
    """Each listed value beside what it is in the column (as ``values`` reads it), or the same
    error as ``values``: a listed value that cannot be in the column is a mistake, not a class
    of 0%."""
    try:
        return [(value, as_column_value(value, dtype)) for value in values if value is not None]
    except CriterionError as exc:
        raise CriterionError(f"{column}: {exc}, but {column} is {dtype}") from None


def _same(config_value: Any, data_value: Any) -> bool:
    if isinstance(data_value, str) and not isinstance(config_value, str):
        return str(config_value).lower() == data_value.lower() if isinstance(
            config_value, bool) else str(config_value) == data_value
    return bool(config_value == data_value)


def _max_age(source: SourceSpec, column: str, max_age: float) -> Evaluate:
    expected = f"within {format_duration(max_age)}"

    def evaluate(ctx: EvalContext) -> Outcome:
        table = _table(source, ctx)
        dtype = _dtype_of(table, column)
        if dtype not in ("datetime", "date", "string"):
            raise CriterionError(f"{column}: max_age needs a timestamp column, {column} is "
                                 f"{dtype}")
        (newest,) = table.aggregate([Agg("max", column)])
        if newest is None:
            return Outcome.failed(f"{column}: no values, expected the newest {expected}", None,
                                  expected)
        stamp = _as_datetime(column, newest)
        now = ctx.now if stamp.tzinfo else ctx.now.astimezone(dt.timezone.utc).replace(
            tzinfo=None)
        age = (now - stamp).total_seconds()
        if age < -CLOCK_SKEW_S:  # not fresh data: a wrong clock or time zone wrote it
            return Outcome.failed(
                f"{column}: newest value {_show(stamp)} is {format_duration(-age)} ahead of "
                f"the clock ({_show(now.replace(microsecond=0))}), expected {expected}: a "
                "clock or time zone is off", age, expected, newest=stamp.isoformat())
        message = (f"{column}: newest value {_show(stamp)} is {format_duration(max(age, 0))} "
                   f"old, expected {expected}")
        if age <= max_age:
            return Outcome.passed(age, expected, message, newest=stamp.isoformat())
        return Outcome.failed(message, age, expected, newest=stamp.isoformat())
    return evaluate


def _as_datetime(column: str, value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    if isinstance(value, str):  # SQLite and CSV keep timestamps as text
        try:
            return dt.datetime.fromisoformat(value.strip())
        except ValueError:
            pass
    raise CriterionError(f"{column}: max_age needs timestamps, the newest value is "
                         f"{_show(value)}")


# --------------------------------------------------------------------------- join, groups
def _join(source: SourceSpec, rule: JoinRule) -> Evaluate:
    keys = rule.keys
    label = ", ".join(keys)
    other_name = rule.dataset.name or rule.dataset.display()

    def evaluate(ctx: EvalContext) -> Outcome:
        table = _table(source, ctx)
        other = open_table(rule.dataset, ctx)
        rows, matched = table.join_match(keys, other, keys)
        share = matched / rows if rows else 0.0
        message = (f"{label}: {format_value(share, 'percent')} of rows ({matched} of {rows}) "
                   f"found in {other_name}, expected {rule.match.text}")
        if rule.match.holds(share):
            return Outcome.passed(share, rule.match.text, message, rows=rows, matched=matched)
        if isinstance(table, SharedTable):
            examples = table.join_unmatched(keys, other, keys)
            if examples:
                shown = [k[0] if len(k) == 1 else k for k in examples]
                message += f"; e.g. not found: {_examples(shown)}"
        return Outcome.failed(message, share, rule.match.text, rows=rows, matched=matched)
    return evaluate


def _group_size(source: SourceSpec, rule: GroupSizeRule, stat: str,
                expectation: Expectation) -> Evaluate:
    keys = rule.keys
    stats = list(rule.stats())

    def evaluate(ctx: EvalContext) -> Outcome:
        table = _table(source, ctx)
        sizes: dict[str, float] = ctx.shared_value(
            ("group sizes", source.cache_key(), id(table), tuple(keys)),
            lambda: table.group_sizes(keys, stats))
        return Outcome.compare(f"{stat} size of groups by {', '.join(keys)}", sizes[stat],
                               expectation)
    return evaluate
