"""The table protocol: what a check may ask of a table, and what an engine answers.

Kinds and the engines (``engines.sql``, ``engines.frames``) import this module;
``sources.tabular`` opens tables and shares one pass per source.

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
| ``approx_distinct`` | col | - | int: an estimate of ``distinct`` (HyperLogLog where the |
| | | | engine has one; ``Table.approx_error()`` gives its relative |
| | | | standard error, 0.0 when the engine counted exactly) |
| ``approx_duplicate_rows`` | - | - | int: an estimate of ``duplicate_rows`` (rows minus |
| | | | the estimated distinct rows: may be below 0) |
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
``Table.joined(on, other, other_on, columns)`` returns this table with other's columns beside
each row, looked up by key in the engine (``Engine.joined_native``).
``Table.group_sizes(by, stats)`` returns dict of ``median``/``mean``/``min``/``max`` group size.
``SharedTable.join_unmatched(on, other, other_on)`` returns up to 5 distinct non-null keys (as
tuples) not found in other; asked only when a join check fails.
``Table.crosstab(keys, values)`` and ``Table.score_ranks(label, scores, rankings, where)``
group rows by expressions of several columns (a confusion matrix, sums of losses, the score
ordering an AUC needs): see ``engines.expr``. ``Table.placement_sums(labels, scores, by,
where)`` sums the DeLong placements of paired scores under several labels at once (the
variance of a mean of one-vs-rest AUCs): see ``engines.placements``.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import operator
import os
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, Protocol, TypeAlias

from pytest_mlfunnel.engines.expr import Expr, Ranking, ScoreRanks
from pytest_mlfunnel.engines.placements import Placements
from pytest_mlfunnel.outcome import CriterionError

NUMERIC = ("int", "float", "bool")
OFFENDING_LIMIT = 5
#: ops computed in the one aggregate pass (``offending`` runs only on demand)
PASS_OPS = ("rows", "count", "nulls", "min", "max", "sum", "mean", "var", "distinct",
            "duplicate_rows", "quantiles", "histogram", "cells",
            "value_counts", "not_in", "approx_distinct", "approx_duplicate_rows")
#: ids per base cell of a ``CellGrid``: room for a refined cell's sub-cells
CELL_SPAN = 131072
#: the cell id of values below ``CellGrid.low`` (negated) or above ``CellGrid.high``
OUTSIDE = 1e300
#: integers closer to zero than this are grouped by value (each has a cell of its own)
SMALL_INTEGER = 1000


#: A value a column holds, as an aggregate asks for it or an engine answers it.
Scalar: TypeAlias = str | int | float | bool | dt.date | dt.datetime
#: What ``offending`` looks for (see the vocabulary above).
OffendingMode = Literal["not_in", "below", "above", "duplicated", "null"]
#: ``offending``'s argument: the mode and its bound, allowed values, or None.
Offending: TypeAlias = tuple[OffendingMode, Scalar | Sequence[Scalar] | None]
_MODES: tuple[OffendingMode, ...] = ("not_in", "below", "above", "duplicated", "null")
_NUMBERS_OPS = ("quantiles", "histogram")


@dataclass(frozen=True)
class Agg:
    """One aggregate a check asks of a table: ``Agg("quantiles", "age", [0.5, 0.9])``.

    The argument is checked against the op when the ``Agg`` is made (a ``TypeError`` naming
    the op); engines read it through the typed accessors below."""

    op: str
    column: str | None = None
    arg: AggArg = None

    def __post_init__(self) -> None:
        problem = _arg_problem(self.op, self.arg)
        if problem is not None:
            raise TypeError(f"Agg({self.op!r}, {self.column!r}, {self.arg!r}): {problem}")

    def key(self) -> tuple[Hashable, ...]:
        return (self.op, self.column, _freeze(self.arg))

    def numbers(self) -> list[float]:
        """``quantiles``' q values, ``histogram``'s edges."""
        arg = self.arg
        assert isinstance(arg, Sequence) and self.op in _NUMBERS_OPS, self
        return [float(v) for v in arg if isinstance(v, int | float)]

    def grid(self) -> CellGrid:
        """``cells``' grid."""
        assert isinstance(self.arg, CellGrid), self
        return self.arg

    def cap(self, default: int) -> int:
        """``value_counts``' cap (``default`` when none is given)."""
        return self.arg if isinstance(self.arg, int) and self.arg > 0 else default

    def allowed(self) -> list[Scalar]:
        """``not_in``'s allowed values."""
        arg = self.arg
        assert isinstance(arg, Sequence) and self.op == "not_in", self
        return [v for v in arg if isinstance(v, Scalar)]

    def offending(self) -> Offending:
        """``offending``'s mode and its bound, allowed values or None."""
        assert isinstance(self.arg, tuple) and self.op == "offending", self
        mode, found = self.arg
        assert isinstance(mode, str) and mode in _MODES, self
        return mode, found


def _arg_problem(op: str, arg: object) -> str | None:
    """Why ``arg`` is not what ``op`` takes, or None."""
    def listed(value: object) -> list[object] | None:
        if isinstance(value, Sequence) and not isinstance(value, str):
            return list(value)
        return None

    values = listed(arg)
    if op in _NUMBERS_OPS:
        if values is None or not all(isinstance(v, int | float) and not isinstance(v, bool)
                                     for v in values):
            return f"{op} takes a list of numbers"
    elif op == "cells":
        if not isinstance(arg, CellGrid):
            return "cells takes a CellGrid"
    elif op == "value_counts":
        if arg is not None and (not isinstance(arg, int) or isinstance(arg, bool)):
            return "value_counts takes a whole number (the cap) or None"
    elif op == "not_in":
        if values is None or not all(isinstance(v, Scalar) for v in values):
            return "not_in takes a list of allowed values"
    elif op == "offending":
        if not (isinstance(arg, tuple) and len(arg) == 2 and arg[0] in _MODES):
            return f"offending takes (mode, x) with a mode in {', '.join(_MODES)}"
    elif arg is not None:
        return f"{op} takes no argument"
    return None


def _freeze(value: object) -> Hashable:
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    assert isinstance(value, Hashable), value
    return value


class Cell(NamedTuple):
    """One occupied cell of a ``CellGrid``: its id, how many values, their min and max
    (None unless the grid asks bounds)."""

    id: float
    n: int
    low: Any
    high: Any


#: a (id, n, low, high) tuple as a Cell, without a call per row in Python (a wide drift
#: check makes some 250,000 of them)
_as_cell = functools.partial(tuple.__new__, Cell)


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
    ``split_only`` counts only the values in the split cells (for data whose other cells are
    counted already), leaving out what ``low`` / ``high`` send beyond them. ``bounds`` asks
    each cell's smallest and largest value as well. With ``integers`` the engines group
    integers between -SMALL_INTEGER and SMALL_INTEGER by value, without the logarithm, and
    ``merge`` turns those values into their cells' ids (they fall at least 1e-4 away from
    any cell boundary, so every engine agrees).
    """

    per_unit: int = 1000
    low: float | None = None
    high: float | None = None
    refine: tuple[tuple[float, float, float, int], ...] = ()
    bounds: bool = False
    integers: bool = False
    split_only: bool = False

    def merge(self, rows: list[tuple[float, int, Any, Any]]) -> list[Cell]:
        """An engine's (key, count, min, max) rows as cells in order: small integers grouped
        by value become their cells' ids."""
        if self.integers:
            rows = [(self.cell(key), n, low, high) if abs(key) < SMALL_INTEGER else
                    (key, n, low, high) for key, n, low, high in rows]
        rows.sort(key=operator.itemgetter(0))
        return list(map(_as_cell, rows))

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


#: ``Agg.arg`` by op: the q values of ``quantiles`` and the edges of ``histogram`` (numbers),
#: the grid of ``cells``, the cap of ``value_counts``, the allowed values of ``not_in``, the
#: mode and bound of ``offending``; None for every other op.
AggArg: TypeAlias = Sequence[float] | Sequence[Scalar] | CellGrid | int | Offending | None


class Table(Protocol):
    display: str

    def schema(self) -> dict[str, str]: ...

    def aggregate(self, aggs: list[Agg]) -> list[Any]: ...

    def approx_error(self) -> float: ...

    def grouped(self, by: str, aggs: list[Agg]) -> dict[Any, list[Any]]: ...

    def sample(self, columns: list[str], limit: int, seed: int = 0) -> dict[str, list[Any]]: ...

    def joined(self, on: list[str], other: Table, other_on: list[str],
               columns: dict[str, str]) -> Table: ...

    def join_match(self, on: list[str], other: Table, other_on: list[str]) -> tuple[int, int]: ...

    def group_sizes(self, by: list[str], stats: list[str]) -> dict[str, float]: ...

    def crosstab(self, keys: list[Expr], values: list[tuple[str, Expr]]
                 ) -> list[tuple[tuple[Any, ...], int, list[Any]]]: ...

    def score_ranks(self, label: Expr, scores: list[Expr], rankings: list[Ranking],
                    where: Expr | None = None) -> list[dict[Any, ScoreRanks]]: ...

    def placement_sums(self, labels: list[Expr], scores: list[tuple[Expr, Expr]],
                       by: Expr | None = None, where: Expr | None = None) -> Placements: ...


class Engine:
    """What one engine answers. ``compute`` gets only aggregates valid for the schema and
    must answer them in one pass (``offending`` never reaches it)."""

    display: str

    def schema(self) -> dict[str, str]:
        raise NotImplementedError

    def compute(self, aggs: list[Agg]) -> list[Any]:
        raise NotImplementedError

    def approx_error(self) -> float:
        """The relative standard error of ``approx_distinct`` (0.0: counted exactly)."""
        return 0.0

    def unsupported(self, agg: Agg) -> str | None:
        """Why this engine cannot compute the aggregate on this table (known without a
        query, e.g. a value of the wrong type for the column), else None."""
        return None

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

    def rows_with_keys(self, on: list[str], keys: list[tuple[Any, ...]], as_text: bool
                       ) -> int | None:
        """How many rows of this table have one of ``keys`` (distinct key tuples another
        engine sent), matched in this engine; None when it cannot take rows. ``as_text``:
        compare the keys as text."""
        return None

    def keys_present(self, on: list[str], counted: list[tuple[Any, ...]], as_text: bool,
                     examples: int = 0) -> tuple[int, list[tuple[Any, ...]]] | None:
        """``counted`` holds (key..., rows) of another table: the sum of rows whose key this
        table has, and up to ``examples`` keys it lacks, matched in this engine; None when
        it cannot take rows."""
        return None

    def joined_native(self, on: list[str], other: Engine, other_on: list[str],
                      columns: dict[str, str]) -> Engine | None:
        """This table with columns of ``other`` beside each row, looked up by key in one
        engine (``columns``: new name -> other's column), else None. ``other`` is grouped by
        its key first, so rows never multiply: a key found several times takes the smallest
        values, and the column ``mlfunnel_matches`` holds how many rows of ``other`` have the
        row's key (null when none)."""
        return None

    def unmatched_native(self, on: list[str], other: Engine, other_on: list[str], limit: int
                         ) -> list[tuple[Any, ...]] | None:
        """Up to ``limit`` keys without a match, in one query when both tables live in the
        same engine, else None."""
        return None

    def group_sizes(self, by: list[str], stats: list[str]) -> dict[str, float]:
        raise NotImplementedError

    def crosstab(self, keys: list[Expr], values: list[tuple[str, Expr]]
                 ) -> list[tuple[tuple[Any, ...], int, list[Any]]]:
        raise CriterionError(f"{self.display}: this engine cannot group by expressions")

    def score_ranks(self, label: Expr, scores: list[Expr], rankings: list[Ranking],
                    where: Expr | None) -> list[dict[Any, ScoreRanks]]:
        raise CriterionError(f"{self.display}: this engine cannot rank scores")

    def placement_sums(self, labels: list[Expr], scores: list[tuple[Expr, Expr]],
                       by: Expr | None, where: Expr | None) -> Placements:
        raise CriterionError(f"{self.display}: this engine cannot rank scores")


# --------------------------------------------------------------------------- query log
def log_query(purpose: str, display: str, text: str) -> None:
    """One line per query when ``MLFUNNEL_QUERY_LOG`` names a file (all processes append)."""
    target = os.environ.get("MLFUNNEL_QUERY_LOG")
    if not target:
        return
    line = " ".join(text.split())
    with open(target, "a", encoding="utf-8") as handle:
        handle.write(f"{os.getpid()}\t{purpose}\t{display}\t{line}\n")


def as_column_value(value: Any, dtype: str) -> Any:
    """A value of the config (``values``, ``min_share``) as a column of ``dtype`` holds it,
    the same on every engine: a boolean as text on a string column, 0/1 on a boolean one, a
    date as ISO text on a date column. CriterionError when it cannot be one ("yes" on a
    boolean column, "1" on an integer one, "2020-01-32" on a date one)."""
    if dtype == "string":
        return str(value).lower() if isinstance(value, bool) else str(value)
    if dtype == "bool":
        if isinstance(value, bool) or (isinstance(value, int | float) and value in (0, 1)):
            return bool(value)
        raise CriterionError(f"{value!r} is not a boolean")
    if dtype in ("int", "float"):
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int | float) and math.isfinite(value):
            return value
        raise CriterionError(f"{value!r} is not a number")
    if dtype in ("datetime", "date") and isinstance(value, str):
        try:
            moment = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise CriterionError(f"{value!r} is not a date") from None
        return moment.date() if dtype == "date" else moment
    return value


def comparable(left: str, right: str) -> bool:
    """Join keys compare as they are when both are numbers, both dates or times (a day is
    that day at 00:00), or of one type; else as text."""
    return (left == right or (left in NUMERIC and right in NUMERIC)
            or {left, right} == {"date", "datetime"})


def key_for(value: Any, dtype: str) -> Any:
    """A key value of another engine as a key of a ``dtype`` column: a day is that day at
    00:00 in a time column, and a time at 00:00 that day in a date column; a time of day
    (or with a time zone) is no day's key (None, which matches nothing)."""
    if dtype == "datetime" and type(value) is dt.date:
        return dt.datetime(value.year, value.month, value.day)
    if dtype == "date" and isinstance(value, dt.datetime):
        return value.date() if value.tzinfo is None and value.time() == dt.time() else None
    return value
