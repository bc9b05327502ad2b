"""Tables as evidence: files (DuckDB), user frames (narwhals), databases (SQL in the database).

A check never touches rows. It asks a ``Table`` for aggregates, all of one pass at once:

    table = open_table(spec, ctx)                 # cached per session, per source
    rows, nulls = table.aggregate([Agg("rows"), Agg("nulls", "age")])
    per_group = table.grouped("period", [Agg("count", "minutes"), Agg("mean", "minutes"),
                                         Agg("var", "minutes")])

Aggregate vocabulary (``Agg.op``; ``column`` and ``arg`` as noted):

| op | column | arg | result |
|---|---|---|---|
| ``rows`` | - | - | int: number of rows |
| ``count`` | col | - | int: non-null values |
| ``nulls`` | col | - | int: null values (NaN counts as null for floats) |
| ``min`` / ``max`` | col | - | smallest / largest non-null value (number, str, datetime) |
| ``sum`` / ``mean`` | col | - | float |
| ``var`` | col | - | float: sample variance (ddof=1), None when n < 2 |
| ``distinct`` | col | - | int: exact number of distinct non-null values |
| ``duplicate_rows`` | - | - | int: rows that repeat an earlier row (all columns) |
| ``quantiles`` | col | [q, ...] in [0, 1] | list[float] (exact, or the engine's documented |
| | | | approximation: Dask's are approximate) |
| ``histogram`` | col | edges e0 < ... < ek | list[int] of k+2 counts: (< e0), [e0, e1), ..., |
| | | | [ek-1, ek), (>= ek); nulls not counted |
| ``cells`` | col | ``CellGrid`` | list of (cell id, count, min, max) per occupied cell, |
| | | | in order (min/max None unless the grid asks bounds); |
| | | | nulls and NaN not counted (see ``CellGrid``) |
| ``value_counts`` | col | int cap | dict[value, int], most frequent first, at most cap |
| ``not_in`` | col | allowed values | int: non-null values outside the list |
| ``offending`` | col | (mode, x) | list of up to 5 example values; modes: ``not_in`` |
| | | | (x = values), ``below`` / ``above`` (x = bound), |
| | | | ``duplicated`` (values seen twice or more), ``null`` |
| | | | (x = None; up to 5 rows, each a list of all columns) |

``Table.schema()`` maps column -> ``int | float | string | bool | datetime | date | other``.
``Table.sample(columns, limit, seed)`` returns ``dict[column, list]`` of at most ``limit`` rows
(all rows when there are fewer), chosen reproducibly from ``seed``; used only by tests that need
samples (Mann-Whitney, bootstrap) and for capped examples of offending rows.
``Table.join_match(on, other, other_on)`` returns (rows, rows whose key is found in other).
``Table.group_sizes(by, stats)`` returns dict of ``median``/``mean``/``min``/``max`` group size.
``SharedTable.join_unmatched(on, other, other_on)`` returns up to 5 distinct non-null keys (as
tuples) not found in other; asked only when a join check fails.

Planning: ``plan_aggregates(ctx.shared, spec, aggs)`` at collection registers what a check will
ask; the first ``aggregate`` call on that source then computes every registered aggregate in
one pass, and later calls are answered from that result. ``offending`` is never part of the
pass: it runs its own small query (stopping after 5 values), only when a check asks, which is
on failure. ``value_counts`` is in the pass on DuckDB (``histogram``); databases and lazy
frames answer it with one ``GROUP BY`` more. ``cells`` adds one query: a ``GROUP BY`` per
column, all of the pass's columns side by side in one ``UNION ALL`` (each column read once;
lazy frames run one group-by per column). ``quantiles`` on SQLite adds one window query.

Engines: files through DuckDB (views over ``read_parquet``/``read_csv``/``read_json``, nothing
read until a query runs); eager frames (pandas, polars, pyarrow) handed to DuckDB over Arrow;
DuckDB relations on their own connection; lazy frames (polars LazyFrame, Dask, PySpark, Ibis
...) through narwhals in their own engine; databases as SQL through ``database.run_query``.

Set ``MLFUNNEL_QUERY_LOG=/path/file`` to append one line per query issued (pid, purpose, source,
SQL or plan), e.g. to see that a table is read once.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pytest_mlfunnel.kinds.base import EvalContext
from pytest_mlfunnel.outcome import CriterionError
from pytest_mlfunnel.sources.spec import SourceSpec

DTYPES = ("int", "float", "string", "bool", "datetime", "date", "other")
NUMERIC = ("int", "float", "bool")
OFFENDING_LIMIT = 5
#: ops computed in the one aggregate pass (``offending`` runs only on demand)
PASS_OPS = ("rows", "count", "nulls", "min", "max", "sum", "mean", "var", "distinct",
            "duplicate_rows", "quantiles", "histogram", "cells",
            "value_counts", "not_in")
_COLUMN_OPS = frozenset(PASS_OPS) - {"rows", "duplicate_rows"} | {"offending"}
_NUMERIC_OPS = frozenset({"sum", "mean", "var", "quantiles", "histogram", "cells"})
#: ids per base cell of a ``CellGrid``: room for a refined cell's sub-cells
CELL_SPAN = 131072
#: the cell id of values below ``CellGrid.low`` (negated) or above ``CellGrid.high``
OUTSIDE = 1e300
#: integers closer to zero than this are grouped by value (each has a cell of its own)
SMALL_INTEGER = 1000


@dataclass(frozen=True)
class Agg:
    op: str
    column: str | None = None
    arg: Any = None

    def key(self) -> tuple[Any, ...]:
        return (self.op, self.column, _freeze(self.arg))


def _freeze(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    return value


@dataclass(frozen=True)
class CellGrid:
    """Cells to count a numeric column in, the same in every engine, without knowing the data.

    A value x falls in base cell ``j = floor(per_unit * sign(x) * ln(1 + |x|))``: cells of
    width 1/per_unit near zero, growing in proportion to |x| further out (0.1% of |x| at the
    default), so one grid resolves both small and heavy-tailed columns and every integer up
    to about 1000 has a cell of its own. Its id is ``j * CELL_SPAN``.

    ``refine`` splits chosen base cells ``(j, a, b, m)`` into m equal sub-cells over [a, b]
    (the data range seen in that cell); sub-cell s gets id ``j * CELL_SPAN + 1 + s``, with
    s = -1 below a and s = m above b. ``low`` / ``high`` send values below / above them to
    the cells ``-OUTSIDE`` / ``OUTSIDE``. Ids grow with x, so cells are intervals in order.
    ``bounds`` asks each cell's smallest and largest value as well. With ``integers`` the
    engines group integers between -SMALL_INTEGER and SMALL_INTEGER by value, without the
    logarithm, and ``merge`` turns those values into their cells' ids (they fall at least
    1e-4 away from any cell boundary, so every engine agrees).
    """

    per_unit: int = 1000
    low: float | None = None
    high: float | None = None
    refine: tuple[tuple[float, float, float, int], ...] = ()
    bounds: bool = False
    integers: bool = False

    def merge(self, rows: list[tuple[float, int, Any, Any]]
              ) -> list[tuple[float, int, Any, Any]]:
        """An engine's (key, count, min, max) rows as cells in order: small integers grouped
        by value become their cells' ids."""
        if self.integers:
            rows = [(self.cell(key), n, low, high) if abs(key) < SMALL_INTEGER else
                    (key, n, low, high) for key, n, low, high in rows]
        rows.sort(key=lambda r: r[0])
        return rows

    def cell(self, x: float) -> float:
        """The id of x's cell (what the engines compute, in Python)."""
        if self.high is not None and x > self.high:
            return OUTSIDE
        if self.low is not None and x < self.low:
            return -OUTSIDE
        j = float(math.floor(self.per_unit * math.copysign(math.log(1 + abs(x)), x)))
        for base, a, b, m in self.refine:
            if base == j:
                sub = -1 if x < a else m if x > b else min(math.floor((x - a) / (b - a) * m),
                                                           m - 1)
                return j * CELL_SPAN + 1 + sub
        return j * CELL_SPAN

    def start(self, cell: float) -> float:
        """The smallest x (up to rounding) in the cell with this id."""
        if cell >= OUTSIDE:
            return math.nextafter(self.high if self.high is not None else math.inf, math.inf)
        if cell <= -OUTSIDE:
            return -math.inf
        j = math.floor(cell / CELL_SPAN)
        sub = int(cell - j * CELL_SPAN) - 1
        for base, a, b, m in self.refine:
            if base == j and sub >= 0:
                return a + (b - a) * sub / m if sub < m else math.nextafter(b, math.inf)
        return math.copysign(math.expm1(abs(j) / self.per_unit), j)


class Table(Protocol):
    display: str

    def schema(self) -> dict[str, str]: ...

    def aggregate(self, aggs: list[Agg]) -> list[Any]: ...

    def grouped(self, by: str, aggs: list[Agg]) -> dict[Any, list[Any]]: ...

    def sample(self, columns: list[str], limit: int, seed: int = 0) -> dict[str, list[Any]]: ...

    def join_match(self, on: list[str], other: Table, other_on: list[str]) -> tuple[int, int]: ...

    def group_sizes(self, by: list[str], stats: list[str]) -> dict[str, float]: ...


class Engine:
    """What one engine answers. ``compute`` gets only aggregates valid for the schema and
    must answer them in one pass (``offending`` never reaches it)."""

    display: str

    def schema(self) -> dict[str, str]:
        raise NotImplementedError

    def compute(self, aggs: list[Agg]) -> list[Any]:
        raise NotImplementedError

    def offending(self, column: str, mode: str, arg: Any, dtype: str) -> list[Any]:
        raise NotImplementedError

    def grouped(self, by: str, aggs: list[Agg]) -> dict[Any, list[Any]]:
        raise NotImplementedError

    def sample(self, columns: list[str], limit: int, seed: int) -> dict[str, list[Any]]:
        raise NotImplementedError

    def join_match_native(self, on: list[str], other: Engine, other_on: list[str]
                          ) -> tuple[int, int] | None:
        """The join in one query when both tables live in the same engine, else None."""
        return None

    def key_counts(self, on: list[str]) -> list[tuple[Any, ...]]:
        """(key..., rows) per distinct non-null key: the aggregated side of a cross-engine join."""
        raise NotImplementedError

    def unmatched_native(self, on: list[str], other: Engine, other_on: list[str], limit: int
                         ) -> list[tuple[Any, ...]] | None:
        """Up to ``limit`` keys without a match, in one query when both tables live in the
        same engine, else None."""
        return None

    def group_sizes(self, by: list[str], stats: list[str]) -> dict[str, float]:
        raise NotImplementedError


# --------------------------------------------------------------------------- query log
def log_query(purpose: str, display: str, text: str) -> None:
    """One line per query when ``MLFUNNEL_QUERY_LOG`` names a file (all processes append)."""
    target = os.environ.get("MLFUNNEL_QUERY_LOG")
    if not target:
        return
    line = " ".join(text.split())
    with open(target, "a", encoding="utf-8") as handle:
        handle.write(f"{os.getpid()}\t{purpose}\t{display}\t{line}\n")


# --------------------------------------------------------------------------- planning
def _plan_key(spec: SourceSpec) -> tuple[Any, ...]:
    return ("tabular-plan", spec.cache_key())


def plan_aggregates(shared: dict[Any, Any], spec: SourceSpec, aggs: list[Agg]) -> None:
    """At collection: register what a check will ask of a source, for the one pass."""
    planned: dict[tuple[Any, ...], Agg] = shared.setdefault(_plan_key(spec), {})
    for agg in aggs:
        if agg.op != "offending":
            planned.setdefault(agg.key(), agg)


def column_problem(agg: Agg, schema: dict[str, str], display: str) -> str | None:
    """Why an aggregate cannot run on this table (missing column, wrong type), else None."""
    if agg.op not in PASS_OPS and agg.op != "offending":
        return f"unknown aggregate {agg.op!r}"
    if agg.op not in _COLUMN_OPS:
        return None
    if agg.column is None:
        return f"aggregate {agg.op!r} needs a column"
    if agg.column not in schema:
        return missing_column(agg.column, schema, display)
    dtype = schema[agg.column]
    if agg.op in _NUMERIC_OPS and dtype not in NUMERIC:
        return f"{agg.column}: {agg.op} needs a numeric column, {agg.column} is {dtype}"
    if agg.op in ("min", "max") and dtype == "other":
        return f"{agg.column}: {agg.op} needs an ordered column, {agg.column} is {dtype}"
    return None


def missing_column(column: str, schema: dict[str, str], display: str) -> str:
    names = ", ".join(schema) if len(schema) <= 30 else ", ".join(list(schema)[:30]) + ", ..."
    return f"{column}: no such column in {display} (columns: {names})"


class _Failed:
    """An aggregate that could not be computed; raised again for each criterion asking it."""

    def __init__(self, message: str) -> None:
        self.message = message


class SharedTable:
    """A table shared by every criterion on one source in this process: one pass, cached."""

    def __init__(self, engine: Engine, planned: dict[tuple[Any, ...], Agg]) -> None:
        self.engine = engine
        self.display = engine.display
        self._planned = planned
        self._results: dict[tuple[Any, ...], Any] = {}
        self._schema: dict[str, str] | None = None
        self._broken: str | None = None

    def _guard(self, action: Callable[[], Any], remember: bool = False) -> Any:
        if self._broken is not None:
            raise CriterionError(self._broken)
        try:
            return action()
        except CriterionError as exc:
            if remember:  # unreadable file, unreachable database: do not try again per item
                self._broken = str(exc)
            raise

    def schema(self) -> dict[str, str]:
        if self._schema is None:
            self._schema = dict(self._guard(self.engine.schema, remember=True))
        return self._schema

    def aggregate(self, aggs: list[Agg]) -> list[Any]:
        schema = self.schema()
        missing = [a for a in aggs if a.op != "offending" and a.key() not in self._results]
        if missing:
            batch: dict[tuple[Any, ...], Agg] = {}
            for agg in [*missing, *self._planned.values()]:
                if agg.key() not in self._results:
                    batch.setdefault(agg.key(), agg)
            valid = []
            for key, agg in batch.items():
                problem = column_problem(agg, schema, self.display)
                if problem is None:
                    valid.append(agg)
                else:
                    self._results[key] = _Failed(problem)
            if valid:
                values = self._guard(lambda: self.engine.compute(valid), remember=True)
                for agg, value in zip(valid, values, strict=True):
                    self._results[agg.key()] = value
        answers = []
        for agg in aggs:
            if agg.op == "offending":
                answers.append(self._offending(agg, schema))
                continue
            value = self._results[agg.key()]
            if isinstance(value, _Failed):
                raise CriterionError(value.message)
            answers.append(value)
        return answers

    def _offending(self, agg: Agg, schema: dict[str, str]) -> list[Any]:
        problem = column_problem(agg, schema, self.display)
        if problem is not None:
            raise CriterionError(problem)
        assert agg.column is not None
        mode, arg = agg.arg if isinstance(agg.arg, tuple | list) else (agg.arg, None)
        return list(self._guard(lambda: self.engine.offending(agg.column or "", str(mode), arg,
                                                              schema[agg.column or ""])))

    def _need_columns(self, columns: list[str]) -> None:
        schema = self.schema()
        for column in columns:
            if column not in schema:
                raise CriterionError(missing_column(column, schema, self.display))

    def grouped(self, by: str, aggs: list[Agg]) -> dict[Any, list[Any]]:
        self._need_columns([by])
        schema = self.schema()
        for agg in aggs:
            problem = column_problem(agg, schema, self.display)
            if problem is not None:
                raise CriterionError(problem)
        return dict(self._guard(lambda: self.engine.grouped(by, aggs)))

    def sample(self, columns: list[str], limit: int, seed: int = 0) -> dict[str, list[Any]]:
        self._need_columns(columns)
        return dict(self._guard(lambda: self.engine.sample(columns, limit, seed)))

    def join_match(self, on: list[str], other: Table, other_on: list[str]) -> tuple[int, int]:
        if len(on) != len(other_on) or not on:
            raise CriterionError(f"join: give as many key columns on each side ({on} vs "
                                 f"{other_on})")
        self._need_columns(on)
        if not isinstance(other, SharedTable):
            raise CriterionError(f"join: {other.display} is not a table this engine can join")
        other._need_columns(other_on)
        native = self._guard(lambda: self.engine.join_match_native(on, other.engine, other_on))
        if native is not None:
            return int(native[0]), int(native[1])
        # Different engines: each side answers with aggregated keys, matched here.
        mine = self._guard(lambda: self.engine.key_counts(on))
        theirs = other._guard(lambda: other.engine.key_counts(other_on))
        as_text = any(not comparable(self.schema()[a], other.schema()[b])
                      for a, b in zip(on, other_on, strict=True))
        found = {_join_key(row[:-1], as_text) for row in theirs}
        rows = self.aggregate([Agg("rows")])[0]
        matched = sum(int(row[-1]) for row in mine if _join_key(row[:-1], as_text) in found)
        return int(rows), matched

    def join_unmatched(self, on: list[str], other: Table, other_on: list[str]
                       ) -> list[tuple[Any, ...]]:
        """A few keys that found no match (for the message of a failed join)."""
        if not isinstance(other, SharedTable):
            return []
        native = self._guard(lambda: self.engine.unmatched_native(on, other.engine, other_on,
                                                                  OFFENDING_LIMIT))
        if native is not None:
            return [tuple(k) for k in native]
        as_text = any(not comparable(self.schema()[a], other.schema()[b])
                      for a, b in zip(on, other_on, strict=True))
        found = {_join_key(row[:-1], as_text) for row in other.engine.key_counts(other_on)}
        missing = [tuple(row[:-1]) for row in self.engine.key_counts(on)
                   if _join_key(row[:-1], as_text) not in found]
        return missing[:OFFENDING_LIMIT]

    def group_sizes(self, by: list[str], stats: list[str]) -> dict[str, float]:
        self._need_columns(by)
        unknown = [s for s in stats if s not in ("median", "mean", "min", "max")]
        if unknown:
            raise CriterionError(f"group sizes: unknown statistic {unknown[0]!r}")
        return dict(self._guard(lambda: self.engine.group_sizes(by, stats)))


def comparable(left: str, right: str) -> bool:
    """Join keys compare as they are when both are numbers or of one type, else as text."""
    return left == right or (left in NUMERIC and right in NUMERIC)


def _join_key(values: tuple[Any, ...], as_text: bool) -> tuple[Any, ...]:
    return tuple(str(v) for v in values) if as_text else tuple(values)


def open_table(spec: SourceSpec, ctx: EvalContext) -> Table:
    """The table behind a source, opened once per session (per xdist worker)."""
    planned: dict[tuple[Any, ...], Agg] = ctx.shared.setdefault(_plan_key(spec), {})
    if spec.fixture is not None:
        if spec.fixture not in ctx.fixtures:
            raise CriterionError(f"fixture {spec.fixture!r} is not available here")
        frame = ctx.fixtures[spec.fixture]
        # A fixture may return a new frame per test: key on the object, and keep it alive so
        # its id is not reused while cached.
        key = ("tabular", spec.cache_key(), id(frame))
        cached = ctx.shared.get(key)
        if cached is not None and cached[0] is frame:
            table: SharedTable = cached[1]
            return table
        from pytest_mlfunnel.sources.tabular_frames import open_frame

        table = SharedTable(open_frame(frame, spec.display(), ctx.shared), planned)
        ctx.shared[key] = (frame, table)
        return table

    def build() -> SharedTable:
        if spec.url is not None:
            from pytest_mlfunnel.sources.tabular_sql import open_database

            return SharedTable(open_database(spec, ctx.rootdir), planned)
        from pytest_mlfunnel.sources.tabular_sql import open_file

        return SharedTable(open_file(spec, ctx.rootdir, ctx.shared), planned)

    result: SharedTable = ctx.shared_value(("tabular", spec.cache_key()), build)
    return result
