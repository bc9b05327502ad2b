"""Tables answered in SQL: files and eager frames in DuckDB, databases in their own SQL.

One ``SqlEngine`` writes the aggregate pass once and renders every system-specific piece
through its ``Dialect`` (``engines.dialects``: DuckDB, SQLite, PostgreSQL, Spark SQL, Snowflake,
BigQuery, Trino and generic ANSI). Everything runs where the data is; only aggregate rows come
back.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import decimal
import gc
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

from pytest_mlfunnel.engines.dialects import (
    Dialect,
    DuckDBDialect,
    Executor,
    dialect_named,
    plain,
)
from pytest_mlfunnel.engines.expr import (
    Expr,
    Ranking,
    ScoreRanks,
    sql_crosstab,
    sql_score_ranks,
)
from pytest_mlfunnel.engines.placements import Placements
from pytest_mlfunnel.engines.protocol import (
    CELL_SPAN,
    OFFENDING_LIMIT,
    OUTSIDE,
    SMALL_INTEGER,
    Agg,
    Cell,
    CellGrid,
    Engine,
    as_column_value,
    comparable,
    key_for,
    log_query,
)
from pytest_mlfunnel.funnel import first_line
from pytest_mlfunnel.outcome import CriterionError

#: keys of another engine sent per query (a literal list each)
KEYS_PER_QUERY = 2000

#: widest integer range counted distinct with a bitmap (2**28 bits = 32 MiB)
MAX_BITMAP = 2**28

#: (sql, purpose, page) -> the rows of one query in lists of at most ``page`` rows, read
#: from the database as they are asked for (see ``SqlEngine.run_in_pages``)
PagedExecutor = Callable[[str, str, int], Iterator[list[tuple[Any, ...]]]]


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cycle collector held off while a query's many small rows are made into
    tuples (none of them refers back to another): each of its passes walks every live
    object, and with a wide drift check's rows alive they took 2 to 3 times as long as
    making the rows (0.12 s against 0.05 s for 255,000 cells)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _is_nan(value: Any) -> bool:
    if isinstance(value, decimal.Decimal):
        return value.is_nan()
    return isinstance(value, float) and math.isnan(value)


class SqlEngine(Engine):
    """Aggregates over ``source`` (a table/view name or a parenthesised query) in one SELECT."""

    def __init__(self, display: str, source: str, dialect: Dialect | str, execute: Executor,
                 schema_loader: Callable[[], dict[str, str]], connection_id: Any = None,
                 cheap_bounds: bool = False, footers: str | None = None,
                 bounded_sorts: bool = False, paged: PagedExecutor | None = None) -> None:
        self.display = display
        #: the connection is this package's own: a sort of every row may cap its memory
        self.bounded_sorts = bounded_sorts
        self.cheap_bounds = cheap_bounds  # min/max come from file statistics (Parquet)
        #: the ``parquet_metadata`` argument (the files' pattern) when the source is Parquet
        #: files read as they are: their footers answer null counts
        self.footers = footers
        self.source = source
        self.dialect = dialect_named(dialect) if isinstance(dialect, str) else dialect
        self.q = self.dialect.quote
        self._execute = execute
        self._paged = paged
        self._schema_loader = schema_loader
        self._schema: dict[str, str] | None = None
        self.connection_id = connection_id  # engines on one connection join in one query

    # ------------------------------------------------------------------ basics
    def run(self, sql: str, purpose: str) -> list[tuple[Any, ...]]:
        log_query(purpose, self.display, sql)
        return self._execute(sql, purpose)

    def run_in_pages(self, sql: str, purpose: str, page: int
                     ) -> Iterator[list[tuple[Any, ...]]]:
        """``run`` for a query of many rows, read in lists of at most ``page`` rows: ONE query
        whose rows the database hands over as they are asked for, where the engine's
        executor can stream (``paged``: its guards, timeouts and error messages are
        ``execute``'s); elsewhere the same one query, its rows fetched whole (one list)."""
        log_query(purpose, self.display, sql)
        if self._paged is None:
            yield self._execute(sql, purpose)
            return
        yield from self._paged(sql, purpose, page)

    def run_seeing_nan(self, sql: str, purpose: str) -> list[tuple[Any, ...]]:
        """``run`` for a query that tells NaN apart. Parquet statistics leave NaN out of a
        column's min/max, and DuckDB's statistics propagation then folds ``isnan(x)`` to false
        for the whole file; the query runs with that optimizer off."""
        settings = self.dialect.settings_seeing_nan()
        if settings is None:
            return self.run(sql, purpose)
        before, after = settings
        self._execute(before, "settings")
        try:
            return self.run(sql, purpose)
        finally:
            self._execute(after, "settings")

    def run_in_bounded_memory(self, sql: str, purpose: str) -> list[tuple[Any, ...]]:
        """``run_seeing_nan`` for a query that sorts every row (the score ranking): on a
        connection of this package's own (``bounded_sorts``), under ``sort_memory_limit()``,
        beyond which the sort spills to disk instead of holding every row in memory. A
        connection a user passed in keeps its own settings."""
        setting = self.dialect.memory_setting()
        limit = sort_memory_limit() if self.bounded_sorts else None
        if setting is None or limit is None:
            return self.run_seeing_nan(sql, purpose)
        self._execute(f"SET {setting} = '{limit}'", "settings")
        try:
            return self.run_seeing_nan(sql, purpose)
        finally:
            self._execute(f"RESET {setting}", "settings")

    def schema(self) -> dict[str, str]:
        if self._schema is None:
            self._schema = self._schema_loader()
        return self._schema

    def _from(self) -> str:
        return f"{self.source} AS t"

    def _clean(self, column: str, nan_aware: bool = True) -> str:
        """The column with NaN turned into NULL (NaN counts as a null everywhere)."""
        name = self.q(column)
        if self.schema().get(column) != "float" or not nan_aware:
            return name
        return self.dialect.clean(name)

    def literal(self, value: Any, dtype: str) -> str:
        if value is None:
            return "NULL"
        typed = as_column_value(value, dtype)
        if dtype == "string":
            return self.dialect.string(typed)
        if dtype == "bool":
            return self.dialect.boolean(typed)
        if dtype in ("int", "float"):
            return repr(typed)
        if dtype in ("datetime", "date") and isinstance(value, str | dt.date):
            # the text as written (checked above): SQLite compares dates as text
            text = value.isoformat() if isinstance(value, dt.date) else value
            return self.dialect.temporal(text, dtype)
        raise CriterionError(f"{value!r} cannot be compared with a {dtype} column")

    def _in_list(self, column: str, values: list[Any]) -> str:
        dtype = self.schema()[column]
        try:
            items = [self.literal(v, dtype) for v in values if v is not None]
        except CriterionError as exc:
            raise CriterionError(f"{column}: {exc}, but {column} is {dtype}") from None
        return ", ".join(dict.fromkeys(items)) or "NULL"

    # ------------------------------------------------------------------ the pass
    def _expressions(self, agg: Agg, nan_aware: bool = True,
                     bounds: dict[str, tuple[int, int]] | None = None,
                     nan_counted: bool = False) -> list[str]:
        """SELECT expressions for one aggregate (histograms take several), and after them,
        for an aggregate that needs numbers, the dialect's probe for a value of the column
        that is not one (see ``Dialect.not_a_number``; ``_shape`` reads it)."""
        found = self._aggregate_expressions(agg, nan_aware, bounds, nan_counted)
        probe = self._number_probe(agg)
        return [*found, probe] if found and probe else found

    def _number_probe(self, agg: Agg) -> str | None:
        if agg.op not in _NUMBER_OPS or self.schema().get(agg.column or "") not in (
                "int", "float"):
            return None
        return self.dialect.not_a_number(self.q(agg.column or ""))

    def _aggregate_expressions(self, agg: Agg, nan_aware: bool = True,
                               bounds: dict[str, tuple[int, int]] | None = None,
                               nan_counted: bool = False) -> list[str]:
        """``nan_counted``: a float's nulls, count, min and max in the forms that tell NaN
        apart without cleaning the column first (see ``_nan_counted``)."""
        op, column = agg.op, agg.column
        if op == "rows":
            return ["count(*)"]
        if op == "duplicate_rows":
            return []  # a stage of its own (see _duplicate_rows)
        if op == "approx_duplicate_rows":
            row_hash = self.dialect.row_hash(self._row_columns())
            if row_hash is None or not self.dialect.approx_error:
                return []  # counted exactly, in the stage of duplicate_rows
            return [f"count(*) - {self.dialect.approx_distinct(row_hash)}"]
        assert column is not None
        if nan_counted and self._counts_nan(agg):
            return [self._nan_counted(op, self.q(column))]
        x = self._clean(column, nan_aware)
        if op in _ARITHMETIC_OPS and self.schema().get(column) == "bool":
            x = f"CAST({x} AS INTEGER)"  # a rate of 0 and 1: no avg(BOOLEAN) in DuckDB, PostgreSQL
        if op == "count":
            return [f"count({x})"]
        if op == "nulls":
            return [f"count(*) - count({x})"]
        if op in ("min", "max", "sum"):
            return [f"{op}({x})"]
        if op == "mean":
            return [f"avg({x})"]
        if op == "var":
            return [self.dialect.variance(x, self.source)]
        if op == "distinct":
            if bounds and column in bounds:
                # A bitmap over the key's range: exact, and far cheaper than hashing.
                low, high = bounds[column]
                return [f"coalesce(bit_count(bitstring_agg({x}, {low}, {high})), 0)"]
            if bounds is not None:
                return []  # in the pass: a stage of its own (see _distinct)
            return [f"count(DISTINCT {x})"]
        if op == "approx_distinct":
            return [self.dialect.approx_distinct(x)]
        if op == "quantiles":
            # empty: a window query of its own (SQLite, BigQuery, Trino)
            return self.dialect.quantiles(x, agg.numbers())
        if op == "histogram":
            return self.dialect.histogram(x, agg.numbers())
        if op == "value_counts":
            counts = self.dialect.value_counts(x)
            return [counts] if counts else []
        if op == "not_in":
            return [f"count(CASE WHEN {self._outside(column, x, agg.allowed())} THEN 1 END)"]
        raise CriterionError(f"unknown aggregate {op!r}")

    def _counts_nan(self, agg: Agg) -> bool:
        return agg.op in _NAN_COUNTED_OPS and self.schema().get(agg.column or "") == "float"

    def _nan_counted(self, op: str, name: str) -> str:
        """nulls, count, min or max of a float column, NaN-aware where NaN sorts above every
        number: NaN is counted apart and added to the nulls, ``min(x)`` passes NaN by, and
        the largest number is ``-min(-x)``. The column is read once, as it is: cleaning it
        (``CASE WHEN NOT isnan(x) THEN x END``) first costs more than these two aggregates.
        A NaN result (every value NaN) is read as no value (see ``_one_pass``)."""
        nan = self.dialect.count_where(str(self.dialect.nan_test(name)))
        if op == _NAN:
            return nan
        if op in ("nulls", "count"):
            return (f"count(*) - count({name}) + {nan}" if op == "nulls" else
                    f"count({name}) - {nan}")
        return f"min({name})" if op == "min" else f"-min(-{name})"

    def _outside(self, column: str, x: str, values: list[Any]) -> str:
        """A condition true for non-null values outside the list."""
        return self.dialect.outside(x, self._in_list(column, values), self.schema()[column])

    def unsupported(self, agg: Agg) -> str | None:
        """A rule whose SQL cannot even be written (``values = ["yes"]`` on a boolean column)
        is left out of the pass."""
        if agg.op == "cells":  # its own query, built from the grid alone
            return None
        try:
            self._expressions(agg)
        except CriterionError as exc:
            return str(exc)
        return None

    def compute(self, aggs: list[Agg], purpose: str = "aggregate") -> list[Any]:
        """One pass, after what the Parquet footers answer (``_from_footers``). A float's
        nulls, count, min and max count NaN in the pass itself where the dialect sorts NaN
        last; its other aggregates are read as they are, with a probe for NaN, and read
        again NaN-aware only for a column that holds NaN (see ``_one_pass``)."""
        asked = [(i, a) for i, a in enumerate(aggs) if a.op == "cells"]
        if asked:
            cells = dict(zip((i for i, _ in asked), self._cells([a for _, a in asked]),
                             strict=True))
            rest = [a for a in aggs if a.op != "cells"]
            answered = iter(self.compute(rest, purpose) if rest else [])
            return [cells[i] if i in cells else next(answered) for i in range(len(aggs))]
        known, pending = self._from_footers(aggs)
        if not known and not pending:
            return self._read(aggs, purpose)
        others = [(i, a) for i, a in enumerate(aggs) if i not in known and i not in pending]
        # the NaN of floats whose footers count their nulls: one count per column in the pass
        counts = [Agg(_NAN, c) for c in dict.fromkeys(c for c, _, _ in pending.values())]
        read = self._read([a for _, a in others] + counts, purpose) if others or counts else []
        found = dict(zip((i for i, _ in others), read, strict=False))
        nans = {a.column: int(n) for a, n in zip(counts, read[len(others):], strict=True)}
        for i, (column, nulls, rows) in pending.items():
            nulls += nans[column]
            found[i] = nulls if aggs[i].op == "nulls" else rows - nulls
        return [known[i] if i in known else found[i] for i in range(len(aggs))]

    def _from_footers(self, aggs: list[Agg]
                      ) -> tuple[dict[int, Any], dict[int, tuple[str, int, int]]]:
        """(answers, float nulls and counts awaiting a NaN count): ``nulls``, ``count``,
        ``min`` and ``max`` answered without decoding a data page. Null counts come from the
        Parquet footers (when every row group states one), min/max from a query of nothing
        but min/max, which DuckDB answers from the same footers.

        A float's footers count no NaN as null and leave NaN out of min/max, which is what
        the checks ask (NaN counts as a null); they are used where NaN sorts last (DuckDB),
        and for min/max only when every row group states both, or the query would decode the
        column. A NaN or a missing bound (a writer that let NaN into its statistics, a
        column of NaN) leaves the aggregate to the pass. Its nulls are the footers' plus its
        NaN: counted by the footers where every row group states ``nan_count``, else in the
        pass (``pending``: index -> column, footer nulls, rows)."""
        schema = self.schema()
        floats = self.dialect.nan_sorts_last
        asked = [(i, a) for i, a in enumerate(aggs) if a.op in ("nulls", "count", "min", "max")
                 and (schema.get(a.column or "") in _FOOTER_TYPES
                      or (floats and schema.get(a.column or "") == "float"))]
        if self.footers is None or not asked:
            return {}, {}
        counted: dict[str, int] = {}
        nan_counted: dict[str, int] = {}
        stated: set[str] = set()
        for name, nulls, complete, nans, nans_complete, bounds in self._footer_rows():
            if complete and nulls is not None:
                counted[str(name)] = int(nulls)
            if nans_complete and nans is not None:
                nan_counted[str(name)] = int(nans)
            if bounds:
                stated.add(str(name))
        is_float = {c: schema.get(c) == "float" for c in schema}
        bounded = list(dict.fromkeys(a.column or "" for _, a in asked if a.op in ("min", "max")
                                     and (not is_float[a.column or ""] or a.column in stated)))
        parts = ["count(*)"] + [f"{op}({self.q(c)})" for c in bounded for op in ("min", "max")]
        row = self.run(f"SELECT {', '.join(parts)} FROM {self._from()}", "footers")[0]
        rows = int(row[0])
        bounds = {c: (row[1 + 2 * k], row[2 + 2 * k]) for k, c in enumerate(bounded)}
        known: dict[int, Any] = {}
        pending: dict[int, tuple[str, int, int]] = {}
        for i, agg in asked:
            column = agg.column or ""
            if agg.op in ("min", "max"):
                if column not in bounds:
                    continue
                value = bounds[column][agg.op == "max"]
                if is_float[column]:
                    if value is None or _is_nan(value):
                        continue  # read in the pass, NaN-aware
                    value = 0.0 if value == 0 else value  # footers write -0.0 as a least zero
                known[i] = self._shape(agg, [value])
            elif column in counted:
                nulls = counted[column]
                if is_float[column] and column not in nan_counted:
                    pending[i] = (column, nulls, rows)
                    continue
                nulls += nan_counted.get(column, 0)
                known[i] = nulls if agg.op == "nulls" else rows - nulls
        if (known or pending) and any(a.op == "rows" for a in aggs):
            known.update({i: rows for i, a in enumerate(aggs) if a.op == "rows"})
        return known, pending

    def _footer_rows(self) -> list[tuple[Any, ...]]:
        """Per column of the Parquet footers: null count, whether every row group states it,
        NaN count, whether every row group states that, whether every row group states both
        bounds. DuckDB before 2.0 has no ``stats_nan_count``: there NaN is counted in the
        pass."""
        global _FOOTERS_COUNT_NAN
        nan = ("sum(stats_nan_count), count(*) = count(stats_nan_count)" if _FOOTERS_COUNT_NAN
               else "NULL, false")
        query = (f"SELECT path_in_schema, sum(stats_null_count), count(*) = count("
                 f"stats_null_count), {nan}, count(*) = count(stats_min_value) AND count(*) = "
                 f"count(stats_max_value) FROM parquet_metadata({self.footers}) "
                 "GROUP BY path_in_schema")
        try:
            return self.run(query, "footers")
        except Exception as exc:  # whichever way the engine words its Binder Error
            if not _FOOTERS_COUNT_NAN or "stats_nan_count" not in str(exc):
                raise
            _FOOTERS_COUNT_NAN = False
            return self._footer_rows()

    def _read(self, aggs: list[Agg], purpose: str) -> list[Any]:
        bounds = self._key_bounds(aggs)
        # Exact distinct counts and duplicate rows run in stages of their own: in the pass
        # they would hold a hash table of every value beside the other aggregates (and make
        # Spark copy each row once per distinct count).
        staged = [i for i, a in enumerate(aggs) if a.op in _STAGED_OPS
                  and not self._expressions(a, True, bounds)]
        if not staged:
            return self._one_pass(aggs, purpose, bounds)[0]
        others = [i for i in range(len(aggs)) if i not in staged]
        found: dict[int, Any] = {}
        duplicates = None
        if others:
            values, duplicates = self._one_pass([aggs[i] for i in others], purpose, bounds,
                                                self._carries_duplicates(aggs, staged))
            found = dict(zip(others, values, strict=True))
        for i in staged:
            found[i] = (duplicates if duplicates is not None and aggs[i].op == "duplicate_rows"
                        else self._staged(aggs[i]))
        return [found[i] for i in range(len(aggs))]

    def _carries_duplicates(self, aggs: list[Agg], staged: list[int]) -> bool:
        """Whether the pass also counts the duplicate rows (``Dialect.carried_repeats``):
        for a wide table, where the pass decodes most of the row already and a stage of its
        own would read the whole table a second time to hash it; not for a narrow one, where
        gathering the hashes costs more than reading the few columns again. Only when the
        row count is known without a scan (Parquet footers) and the hashes are few enough
        to hold at once (the footers are DuckDB's, whose dialect carries them)."""
        if (self.footers is None or len(self.schema()) < CARRY_MIN_COLUMNS
                or not any(aggs[i].op == "duplicate_rows" for i in staged)):
            return False
        rows = int(self.run(f"SELECT count(*) FROM {self._from()}", "footers")[0][0] or 0)
        return rows <= CARRY_MAX_ROWS

    def _one_pass(self, aggs: list[Agg], purpose: str, bounds: dict[str, tuple[int, int]],
                  carry_duplicates: bool = False) -> tuple[list[Any], int | None]:
        """(the aggregates, the duplicate rows when ``carry_duplicates`` and the pass found
        that no row hash repeats, else None).

        The pass reads a float column as it is. Its nulls, count, min and max count NaN
        in place where the dialect sorts NaN last (``_nan_counted``); any other aggregate
        of a float has a probe for NaN beside it, and is read again, NaN-aware, only for a
        column that holds NaN."""
        schema = self.schema()
        stores_nan = self.dialect.stores_nan
        nan_counted = stores_nan and self.dialect.nan_sorts_last
        counted = [i for i, a in enumerate(aggs) if nan_counted and self._counts_nan(a)]
        floats = sorted({a.column for i, a in enumerate(aggs) if a.column and schema.get(
            a.column) == "float" and a.op not in ("duplicate_rows", "rows") and i not in counted})
        values, probed = self._pass(aggs, purpose, nan_aware=not stores_nan, bounds=bounds,
                                    probes=floats if stores_nan else [],
                                    nan_counted=nan_counted, carry_duplicates=carry_duplicates)
        duplicates = None
        if carry_duplicates and len(probed) == len(floats if stores_nan else []) + 2:
            # (rows, rows whose hash repeats an earlier row's): none is no duplicate row;
            # some leave the exact count to the stage, which compares those rows
            duplicates = None if probed[-1] else 0
            probed = probed[:-2]
        for i in counted:
            if aggs[i].op in ("min", "max") and _is_nan(values[i]):
                values[i] = None  # every value NaN: no number to show
            elif aggs[i].op == "max" and isinstance(values[i], float) and values[i] == 0:
                values[i] = 0.0  # -min(-x) of 0.0 is -0.0
        with_nan = [c for c, top in zip(floats, probed, strict=False) if _is_nan(top)]
        if with_nan:
            again = [i for i, a in enumerate(aggs) if a.column in with_nan and i not in counted]
            redone, _ = self._pass([aggs[i] for i in again], f"{purpose} (NaN)", nan_aware=True,
                                   bounds=bounds, probes=[])
            for i, value in zip(again, redone, strict=True):
                values[i] = value
        return values, duplicates

    # ------------------------------------------------------------------ own stages
    def _staged(self, agg: Agg) -> int:
        if agg.op in ("duplicate_rows", "approx_duplicate_rows"):
            return self._duplicate_rows()
        assert agg.column is not None
        return self._distinct(agg.column)

    def _distinct(self, column: str) -> int:
        """Exact distinct non-null values, from the dialect's ``repeats``: (values, values
        repeating an earlier one). See ``distinct_sql``."""
        values, hashed = self._value_hashes(column)
        one = None if hashed is None else self.dialect.confirmed_repeats(
            self._hashes(column, hashed), lambda repeated: self.dialect.repeated_rows(
                f"{values} AND {hashed} IN ({repeated})"))
        if one is not None:
            n = self.run(f"SELECT count(*) FROM ({values}) AS c", "distinct (values)")[0][0]
            return int(n or 0) - int(self.run(one, "distinct")[0][1] or 0)
        first, confirm = self.distinct_sql(column)
        run = self.run_seeing_nan if self.schema().get(column) == "float" else self.run
        n, repeats = run(first, "distinct")[0]
        if repeats and confirm:
            _, repeats = run(confirm, "distinct (hash repeats)")[0]
        return int(n or 0) - int(repeats or 0)

    def _value_hashes(self, column: str) -> tuple[str, str | None]:
        """(the query of the column's non-null values as ``v``; for values wider than 8
        bytes (strings, nested) the expression of their 64-bit hash, else None). Values the
        system can neither hash nor compare (PostgreSQL's json) stand as their text."""
        x = self.dialect.comparable(self._clean(column), self.schema().get(column, "other"))
        values = f"SELECT {x} AS v FROM {self._from()} WHERE {x} IS NOT NULL"
        hashed = (self.dialect.row_hash([x]) if self.schema().get(column) not in _FIXED_WIDTH
                  else None)
        return values, hashed

    def _hashes(self, column: str, hashed: str) -> str:
        """The query of the hashes ``hashed`` of the column's non-null values, as ``v``."""
        x = self._clean(column)
        return f"SELECT {hashed} AS v FROM {self._from()} WHERE {x} IS NOT NULL"

    def distinct_sql(self, column: str) -> tuple[str, str | None]:
        """(values and repeats, the exact repeats when that first count compared hashes).

        Fixed-width values are compared as they are; wider ones (strings, nested) by a
        64-bit hash, then exactly among the few values whose hash repeats, so a hash
        collision never counts as a repeat."""
        values, hashed = self._value_hashes(column)
        if hashed is None:
            return self.dialect.repeats(values), None
        hashes = self._hashes(column, hashed)
        colliding = f"{values} AND {hashed} IN ({self.dialect.repeated(hashes)})"
        return self.dialect.repeats(hashes), self.dialect.repeats(colliding)

    def _duplicate_rows(self) -> int:
        """Rows repeating an earlier row (see ``duplicate_rows_sql``). Where the dialect
        counts hash repeats and exact repeats in one query (``confirmed_repeats``), a table
        of many rows is counted in parts of at most ``ROWS_PER_PART`` rows' hashes (at most
        ``MAX_PARTS``), one after the other, so the sort holds a part, not the table."""
        row_hash = self.dialect.row_hash(self._row_columns())
        if row_hash is not None:
            parts = self._parts()
            queries = [self.dialect.confirmed_repeats(
                self._row_hashes(row_hash), lambda repeated: self._rows_hashed_in(
                    row_hash, repeated), (index, parts)) for index in range(parts)]
            if all(queries):
                return sum(int(self.run(q, "duplicate rows")[0][1] or 0)
                           for q in queries if q)
        first, confirm = self.duplicate_rows_sql()
        if confirm is None:
            return int(self.run(first, "duplicate rows")[0][0] or 0)
        _, repeats = self.run(first, "duplicate rows")[0]
        if not repeats:
            return 0
        return int(self.run(confirm, "duplicate rows (hash repeats)")[0][0] or 0)

    def _row_hashes(self, row_hash: str) -> str:
        """The query of every row's hash as ``v``."""
        return f"SELECT {row_hash} AS v FROM {self._from()}"

    def _rows_hashed_in(self, row_hash: str, hashes: str) -> str:
        """How many rows repeat an earlier one, among those whose hash is in the query
        ``hashes`` (compared exactly, every column)."""
        columns = self._row_columns()
        listed = "*" if columns == [self.q(c) for c in self.schema()] else ", ".join(columns)
        return self.dialect.repeated_rows(
            f"SELECT {listed} FROM {self._from()} WHERE {row_hash} IN ({hashes})")

    def _row_columns(self) -> list[str]:
        """Every column, as the dialect hashes and compares it whole (PostgreSQL's JSON has
        neither a hash nor an equality: its text does)."""
        return [self.dialect.comparable(self.q(c), t) for c, t in self.schema().items()]

    def _parts(self) -> int:
        """How many parts the duplicate-rows count takes: one unless the row count is
        known without a scan (Parquet footers) and above ``ROWS_PER_PART``."""
        if self.footers is None:
            return 1
        rows = int(self.run(f"SELECT count(*) FROM {self._from()}", "footers")[0][0] or 0)
        return max(1, min(MAX_PARTS, -(-rows // ROWS_PER_PART)))

    def duplicate_rows_sql(self) -> tuple[str, str | None]:
        """(rows and rows whose hash repeats an earlier row's, the rows among those that
        repeat an earlier row exactly), from a native 64-bit row hash: the exact comparison
        runs only when some hash repeats, and only on the rows sharing one, so a collision is
        never a duplicate. Without a row hash: (the count by ``SELECT DISTINCT *``, None)."""
        row_hash = self.dialect.row_hash(self._row_columns())
        if row_hash is None:
            return self.dialect.repeated_rows(f"SELECT * FROM {self.source} AS s"), None
        hashes = self._row_hashes(row_hash)
        return (self.dialect.repeats(hashes),
                self._rows_hashed_in(row_hash, self.dialect.repeated(hashes)))

    def approx_error(self) -> float:
        return self.dialect.approx_error

    def _key_bounds(self, aggs: list[Agg]) -> dict[str, tuple[int, int]]:
        """min/max of integer columns asked for an exact distinct count, when they are cheap
        (Parquet statistics), so the count can use a bitmap."""
        if not self.cheap_bounds:
            return {}
        keys = sorted({a.column for a in aggs if a.op == "distinct" and a.column
                       and self.schema().get(a.column) == "int"})
        if not keys:
            return {}
        exprs = ", ".join(f"min({self.q(k)}), max({self.q(k)})" for k in keys)
        row = self.run(f"SELECT {exprs} FROM {self._from()}", "bounds")[0]
        found = {}
        for i, key in enumerate(keys):
            low, high = row[2 * i], row[2 * i + 1]
            if low is not None and high is not None and high - low < MAX_BITMAP:
                found[key] = (int(low), int(high))
        return found

    def _pass(self, aggs: list[Agg], purpose: str, nan_aware: bool,
              bounds: dict[str, tuple[int, int]], probes: list[str], nan_counted: bool = False,
              carry_duplicates: bool = False) -> tuple[list[Any], list[Any]]:
        """(the aggregates, what the pass returned after them: the probes, then the
        duplicate-row counts when it carried them)."""
        if aggs and not probes and all(a.op == "value_counts" for a in aggs):
            return self._value_counts(aggs), []  # asked alone: GROUP BYs, not map aggregates
        plans = [(agg, self._expressions(agg, nan_aware, bounds, nan_counted)) for agg in aggs]
        sql = self.pass_sql(aggs, nan_aware, bounds, probes, nan_counted, carry_duplicates)
        seeing_nan = nan_aware or (nan_counted and any(self._counts_nan(a) for a in aggs))
        row: tuple[Any, ...] = ()
        if sql:
            row = (self.run_seeing_nan(sql, purpose) if seeing_nan else self.run(sql, purpose))[0]
        results: list[Any] = []
        position = 0
        counted = [agg for agg, exprs in plans if agg.op == "value_counts" and not exprs]
        counts = iter(self._value_counts(counted) if counted else [])
        for agg, exprs in plans:
            values = row[position:position + len(exprs)]
            position += len(exprs)
            if agg.op == "value_counts" and not exprs:
                results.append(next(counts))
            elif not exprs:
                results.append(self._separately(agg))
            else:
                results.append(self._shape(agg, list(values)))
        return results, list(row[position:])

    def pass_sql(self, aggs: list[Agg], nan_aware: bool = True,
                 bounds: dict[str, tuple[int, int]] | None = None,
                 probes: tuple[str, ...] | list[str] = (), nan_counted: bool = False,
                 carry_duplicates: bool = False) -> str:
        """The one SELECT of the pass ("" when every aggregate needs a query of its own);
        with ``carry_duplicates``, followed by the duplicate-row counts of
        ``Dialect.carried_repeats`` where the dialect can carry them."""
        bounds = {} if bounds is None else bounds
        columns = [e for agg in aggs
                   for e in self._expressions(agg, nan_aware, bounds, nan_counted)]
        columns += [f"max({self.q(c)})" for c in probes]
        if not columns:
            return ""
        row_hash = self.dialect.row_hash(self._row_columns()) if carry_duplicates else None
        if row_hash is not None:
            carried = self.dialect.carried_repeats(columns, self._from(), row_hash)
            if carried is not None:
                return carried
        return f"SELECT {', '.join(columns)} FROM {self._from()}"

    def _shape(self, agg: Agg, values: list[Any]) -> Any:
        """What the database returned, in the dialect's own form, as ``shape`` reads it."""
        op = agg.op
        if self._number_probe(agg) is not None and len(values) > 1:
            *values, stray = values
            if stray is not None:
                raise self._not_numbers(str(agg.column), stray, op)
        if op == "histogram":
            return shape(agg, self.dialect.histogram_counts(values, len(agg.numbers())))
        value = values[0]
        if op == "quantiles":
            found = value if self.dialect.quantiles_as_array else values
            return shape(agg, list(found or [None] * len(agg.numbers())))
        if op == "value_counts":
            counts = sorted(((plain(k), int(v)) for k, v in (value or {}).items()
                             if k is not None), key=lambda kv: -kv[1])
            return dict(counts[:agg.cap(len(counts) or 1)])
        if op in COUNT_OPS or op in FLOAT_OPS:
            return shape(agg, values)
        return self.dialect.from_database(plain(value), self.schema().get(agg.column or ""))

    def _not_numbers(self, column: str, stray: Any, needs: str) -> CriterionError:
        return CriterionError(
            f"{column}: holds values that are not numbers (e.g. {stray!r}) in {self.display}, "
            f"where {needs} needs numbers; the database keeps what was written whatever the "
            "column's declared type: clean the column, or read it through a query that casts "
            "it")

    def _double(self, value: float) -> str:
        return self.dialect.double(value)

    @property
    def _float_type(self) -> str:
        return self.dialect.float_type

    def _cells(self, aggs: list[Agg]) -> list[list[Cell]]:
        """Counts per occupied cell of each ``CellGrid``: one GROUP BY per column, all in one
        query (UNION ALL), so the engine runs the columns side by side.

        NaN needs no cleaning: it lands in a cell of its own (NaN), dropped here."""
        with gc_paused():  # some 125,000 rows, each a tuple, then a cell
            return self._counted_cells(aggs)

    def _counted_cells(self, aggs: list[Agg]) -> list[list[Cell]]:
        found: list[list[tuple[float, int, Any, Any]]] = [[] for _ in aggs]
        clamped = any(a.grid().low is not None or a.grid().high is not None for a in aggs)
        run = self.run_seeing_nan if clamped else self.run
        # a database that keeps text in a numeric column (SQLite) shows it as a cell's bound
        keeps_text = self.dialect.not_a_number("x") is not None
        for k, key, n, low, high in run(self.cells_sql(aggs), "cells"):
            if keeps_text and (isinstance(low, str | bytes) or isinstance(high, str | bytes)):
                raise self._not_numbers(str(aggs[k].column), high if isinstance(
                    high, str | bytes) else low, "drift")
            if key is not None and key == key:  # NaN's cell is dropped
                found[k].append((float(key), n, low, high))
        if any(isinstance(r[2], decimal.Decimal) for rows in found for r in rows[:1]):
            found = [[(key, n, plain(low), plain(high)) for key, n, low, high in rows]
                     for rows in found]
        return [agg.grid().merge(rows) for agg, rows in zip(aggs, found, strict=True)]

    def cells_sql(self, aggs: list[Agg]) -> str:
        return " UNION ALL ".join(f"SELECT {k} AS k, s{k}.* FROM ({self._cells_sql(agg)}) AS s{k}"
                                  for k, agg in enumerate(aggs))

    def _cells_sql(self, agg: Agg) -> str:
        assert agg.column is not None
        grid: CellGrid = agg.grid()
        num = self._double
        name = self.q(agg.column)
        x = f"CAST({name} AS {self._float_type})" if grid.integers else name
        j = self.dialect.floor(f"{grid.per_unit} * sign({x}) * ln(1 + abs({x}))")
        cases = []
        nan = self.dialect.nan_test(name)
        if nan and self.schema().get(agg.column) == "float":
            # NaN sorts above every number, and Spark's floor(NaN) is 0: its cell is NULL
            cases.append(f"WHEN {nan} THEN NULL")
        if grid.high is not None:
            cases.append(f"WHEN {name} > {num(grid.high)} THEN {num(OUTSIDE)}")
        if grid.low is not None:
            cases.append(f"WHEN {name} < {num(grid.low)} THEN {num(-OUTSIDE)}")
        if grid.integers:  # no logarithm for small integers: their value is their key
            cases.append(f"WHEN {name} > -{SMALL_INTEGER} AND {name} < {SMALL_INTEGER} "
                         f"THEN {name}")
        source = f"{self._from()} WHERE {name} IS NOT NULL"
        bounds = (f"min({name}) AS lo, max({name}) AS hi" if grid.bounds
                  else "NULL AS lo, NULL AS hi")
        if not grid.refine:
            cell = (f"CASE {' '.join(cases)} ELSE {j} * {CELL_SPAN} END" if cases
                    else f"{j} * {CELL_SPAN}")
            return f"SELECT {cell} AS b, count(*) AS n, {bounds} FROM {source} GROUP BY 1"
        # The crowded cells' splits are a small table joined on the base cell: one hash probe
        # per value, where a CASE with a branch per crowded cell cost three times more on 64
        # of them (every branch is set up again for every batch of values). Only the values
        # between the first and the last split cell (with a cell to spare on each side) are
        # looked up; the rest are counted in their base cells without a join. The range is
        # written on ``x + 0`` so that DuckDB filters after its Parquet scan: pushed into the
        # scan, the filter held 13 columns' decoded values at once (350 MiB, not 200).
        bases = [base for base, _, _, _ in grid.refine]
        low = num(grid.start((min(bases) - 1) * CELL_SPAN))
        high = num(grid.start((max(bases) + 2) * CELL_SPAN))
        sub = f"floor(({name} - r.mlfunnel_a) * r.mlfunnel_scale)"
        split = (f"c.mlfunnel_j * {CELL_SPAN} + 1 + CASE WHEN {name} < r.mlfunnel_a THEN -1 "
                 f"WHEN {name} > r.mlfunnel_b THEN r.mlfunnel_m WHEN {sub} < r.mlfunnel_m - 1 "
                 f"THEN {sub} ELSE r.mlfunnel_m - 1 END")
        join = "JOIN"
        split_cases = list(cases)
        if not grid.split_only:
            join = "LEFT JOIN"
            split_cases.append(f"WHEN r.mlfunnel_base IS NULL THEN c.mlfunnel_j * {CELL_SPAN}")
        if split_cases:
            split = f"CASE {' '.join(split_cases)} ELSE {split} END"
        span = f"{name} + 0 >= {low} AND {name} + 0 <= {high}"
        if grid.split_only:  # what a clamp sends beyond the range is counted with the rest
            span += "".join(f" AND {name} {op} {num(edge)}" for op, edge in (
                ("<=", grid.high), (">=", grid.low)) if edge is not None)
        inside = (f"SELECT {split} AS b, {name} AS v FROM (SELECT {name}, {j} AS mlfunnel_j FROM "
                  f"{source} AND {span}) AS c {join} "
                  f"({self._refine_table(grid.refine)}) AS r ON c.mlfunnel_j = r.mlfunnel_base")
        if not grid.split_only:  # the values of the other cells, as without splits
            cell = (f"CASE {' '.join(cases)} ELSE {j} * {CELL_SPAN} END" if cases
                    else f"{j} * {CELL_SPAN}")
            inside += (f" UNION ALL SELECT {cell} AS b, {name} AS v FROM {source} AND "
                       f"({name} + 0 < {low} OR {name} + 0 > {high})")
        bounds = "min(v) AS lo, max(v) AS hi" if grid.bounds else "NULL AS lo, NULL AS hi"
        return f"SELECT b, count(*) AS n, {bounds} FROM ({inside}) AS u GROUP BY 1"

    def _refine_table(self, refine: tuple[tuple[float, float, float, int], ...]) -> str:
        """``CellGrid.refine`` as rows: a crowded base cell, its range [a, b], its number of
        sub-cells m and m / (b - a)."""
        num = self._double
        return " UNION ALL ".join(
            f"SELECT {num(base)} AS mlfunnel_base, {num(a)} AS mlfunnel_a, {num(b)} AS "
            f"mlfunnel_b, {m} AS mlfunnel_m, {num(m / (b - a))} AS mlfunnel_scale"
            for base, a, b, m in refine)

    def _separately(self, agg: Agg) -> Any:
        """The few aggregates a dialect cannot put in the pass: one more query each."""
        if agg.op in _STAGED_OPS:
            return self._staged(agg)
        assert agg.column is not None
        x = self._clean(agg.column)
        if agg.op == "quantiles":
            return self._window_quantiles(x, agg.numbers(), self._from())
        raise CriterionError(f"unknown aggregate {agg.op!r}")

    def _value_counts(self, aggs: list[Agg]) -> list[dict[Any, int]]:
        """Each column's values and counts, most frequent first, up to its cap: one GROUP BY
        per column, all in one query (UNION ALL; one query per column type, so each keeps
        its values' type), run side by side. Used where the dialect has no map aggregate for
        the pass, and on DuckDB when value counts are all a pass would read (a drift check's
        categorical columns): its ``histogram`` map aggregate cost 2.3 times the CPU (0.51 s
        against 0.22 s for 10 string columns of 3M rows, one of 50,000 values; 0.42 s against
        0.14 s of wall time), and a query per column read the columns one after the other."""
        schema = self.schema()
        by_type: dict[str, list[int]] = {}
        for i, agg in enumerate(aggs):
            dtype = schema.get(agg.column or "", "other")
            by_type.setdefault(dtype if dtype != "other" else f"other {i}", []).append(i)
        found: list[dict[Any, int]] = [{} for _ in aggs]
        for indices in by_type.values():
            parts = []
            for i in indices:
                x = self._clean(str(aggs[i].column))
                parts.append(f"SELECT * FROM (SELECT {i} AS mlfunnel_k, {x} AS mlfunnel_v, "
                             f"count(*) AS mlfunnel_n FROM {self._from()} WHERE {x} IS NOT NULL "
                             f"GROUP BY {x} ORDER BY mlfunnel_n DESC, mlfunnel_v LIMIT "
                             f"{aggs[i].cap(10_000)}) AS c{i}")
            with gc_paused():  # up to the cap per column: rows of small tuples
                for k, v, n in self.run(f"{' UNION ALL '.join(parts)} ORDER BY mlfunnel_k, "
                                        "mlfunnel_n DESC, mlfunnel_v", "value_counts"):
                    found[int(k)][plain(v)] = int(n)
        return found

    def _window_quantiles(self, x: str, qs: list[float], source: str) -> list[float | None]:
        """Exact linear-interpolated quantiles with window functions (SQLite)."""
        rows = self.run(self.window_quantiles_sql(x, qs, source), "quantiles")
        if not rows:
            return [None] * len(qs)
        n = int(rows[0][1])
        by_rank = {int(r): float(v) for r, _, v in rows}
        out: list[float | None] = []
        for q in qs:
            pos = q * (n - 1)
            lo = int(pos)
            hi = min(lo + 1, n - 1)
            out.append(by_rank[lo] + (by_rank[hi] - by_rank[lo]) * (pos - lo))
        return out

    def window_quantiles_sql(self, x: str, qs: list[float], source: str) -> str:
        picks = " OR ".join(f"r = CAST({q!r} * (n - 1) AS INTEGER) OR "
                            f"r = CAST({q!r} * (n - 1) AS INTEGER) + 1" for q in qs)
        return (f"SELECT r, n, v FROM (SELECT {x} AS v, row_number() OVER (ORDER BY {x})"
                f" - 1 AS r, count(*) OVER () AS n FROM {source} WHERE {x} IS NOT NULL)"
                f" AS w WHERE {picks}")

    # ------------------------------------------------------------------ on demand
    def offending(self, column: str, mode: str, arg: Any, dtype: str) -> list[Any]:
        # NaN-aware: a NaN is one of the nulls shown (see run_seeing_nan)
        x = self._clean(column)
        name = self.q(column)
        if mode == "null":
            # rows whose column is null: show the other columns of a few such rows
            rows = self.run_seeing_nan(f"SELECT * FROM {self._from()} WHERE {x} IS NULL "
                                       f"LIMIT {OFFENDING_LIMIT}", "offending")
            return [list(map(plain, r)) for r in rows]
        if mode == "duplicated":
            # ordered by an alias: Spark rejects count(*) in ORDER BY of a grouped query;
            # grouped as the distinct count compares the values (PostgreSQL's json as text);
            # a NaN is a null there, so not a repeated value
            name = x if x != name else self.dialect.comparable(name, dtype)
            rows = self.run_seeing_nan(f"SELECT {name}, count(*) AS mlfunnel_n FROM "
                                       f"{self._from()} WHERE {name} IS NOT NULL GROUP BY {name} "
                                       f"HAVING count(*) > 1 ORDER BY mlfunnel_n DESC LIMIT "
                                       f"{OFFENDING_LIMIT}", "offending")
            return [plain(r[0]) for r in rows]
        if mode == "not_in":
            cond = self._outside(column, x, list(arg))
        elif mode in ("below", "above"):
            op = "<" if mode == "below" else ">"
            cond = f"{x} {op} {self.literal(arg, dtype)}"
        else:
            raise CriterionError(f"unknown offending mode {mode!r}")
        order = "ASC" if mode == "below" else "DESC"
        if mode == "not_in":
            sql = (f"SELECT {x} AS v, count(*) AS mlfunnel_n FROM {self._from()} WHERE {x} IS "
                   f"NOT NULL AND {cond} GROUP BY {x} ORDER BY mlfunnel_n DESC LIMIT "
                   f"{OFFENDING_LIMIT}")
        else:
            sql = (f"SELECT DISTINCT {x} AS v FROM {self._from()} WHERE {x} IS NOT NULL AND "
                   f"{cond} ORDER BY v {order} LIMIT {OFFENDING_LIMIT}")
        # as the column declares (SQLite hands its DATETIME values back as text)
        return [self.dialect.from_database(plain(r[0]), dtype)
                for r in self.run_seeing_nan(sql, "offending")]

    def grouped(self, by: str, aggs: list[Agg]) -> dict[Any, list[Any]]:
        plans = [(agg, self._expressions(agg)) for agg in aggs]
        if any(not exprs for _, exprs in plans):
            raise CriterionError(f"{self.display}: this database cannot compute "
                                 f"{next(a.op for a, e in plans if not e)} per group")
        # a float's NaN is a null per group too, which DuckDB folds away on a Parquet file
        floats = any(self.schema().get(a.column or "") == "float" for a in aggs)
        run = self.run_seeing_nan if floats else self.run
        rows = run(self.grouped_sql(by, aggs), "grouped")
        out: dict[Any, list[Any]] = {}
        for row in rows:
            values, position = [], 1
            for agg, exprs in plans:
                values.append(self._shape(agg, list(row[position:position + len(exprs)])))
                position += len(exprs)
            out[plain(row[0])] = values
        return out

    def grouped_sql(self, by: str, aggs: list[Agg]) -> str:
        columns = [e for agg in aggs for e in self._expressions(agg)]
        key = self.q(by)
        return f"SELECT {key}, {', '.join(columns)} FROM {self._from()} GROUP BY {key}"

    def sample(self, columns: list[str], limit: int, seed: int) -> dict[str, list[Any]]:
        quoted = [self.q(c) for c in columns]
        cols = ", ".join(quoted)
        numbered = (f"(SELECT {cols}, {self.dialect.row_number(quoted)} AS mlfunnel_rn FROM "
                    f"{self._from()}) AS s")
        order = self.dialect.sample_order(seed)
        rows = self.run(f"SELECT {cols} FROM {numbered} ORDER BY {order} LIMIT {int(limit)}",
                        "sample")
        return {c: [plain(r[i]) for r in rows] for i, c in enumerate(columns)}

    def _join_parts(self, on: list[str], other: Engine, other_on: list[str]
                    ) -> tuple[SqlEngine, list[str], list[str]] | None:
        """(other, its key expressions aliased k0.., conditions t.key = o.k0 ..) when both
        tables answer on one connection, else None."""
        if not isinstance(other, SqlEngine) or self.connection_id is None or (
                other.connection_id != self.connection_id):
            return None
        mine, theirs = self.schema(), other.schema()
        text = self.dialect.text_type
        keys, conds = [], []
        for i, (a, b) in enumerate(zip(on, other_on, strict=True)):
            left, right = f"t.{self.q(a)}", self.q(b)
            # a NaN key is a null: it matches nothing, as when the keys cross engines
            left = self.dialect.clean(left) if mine[a] == "float" else left
            right = self.dialect.clean(right) if theirs[b] == "float" else right
            if not comparable(mine[a], theirs[b]):
                left, right = f"CAST({left} AS {text})", f"CAST({right} AS {text})"
            keys.append(f"{right} AS k{i}")
            conds.append(f"{left} = o.k{i}")
        return other, keys, conds

    def join_match_native(self, on: list[str], other: Engine, other_on: list[str]
                          ) -> tuple[int, int] | None:
        parts = self._join_parts(on, other, other_on)
        if parts is None:
            return None
        other_sql, keys, conds = parts
        sql = (f"SELECT count(*), count(o.mlfunnel_hit) FROM {self._from()} LEFT JOIN "
               f"(SELECT DISTINCT {', '.join(keys)}, 1 AS mlfunnel_hit FROM "
               f"{other_sql.source} AS u) AS o ON {' AND '.join(conds)}")
        row = self.run_seeing_nan(sql, "join")[0]
        return int(row[0]), int(row[1])

    def unmatched_native(self, on: list[str], other: Engine, other_on: list[str], limit: int
                         ) -> list[tuple[Any, ...]] | None:
        parts = self._join_parts(on, other, other_on)
        if parts is None:
            return None
        other_sql, keys, conds = parts
        keyed = [f"t.{self.q(c)}" for c in on]
        present = " AND ".join(  # a NaN key is a null, not a key without a match
            f"{self.dialect.clean(k) if self.schema()[c] == 'float' else k} IS NOT NULL"
            for k, c in zip(keyed, on, strict=True))
        columns = ", ".join(f"t.{self.q(c)}" for c in on)
        sql = (f"SELECT DISTINCT {columns} FROM {self._from()} WHERE {present} AND NOT EXISTS "
               f"(SELECT 1 FROM (SELECT {', '.join(keys)} FROM {other_sql.source} AS u) AS o "
               f"WHERE {' AND '.join(conds)}) LIMIT {int(limit)}")
        return [tuple(plain(v) for v in row) for row in self.run_seeing_nan(sql, "offending")]

    def joined_native(self, on: list[str], other: Engine, other_on: list[str],
                      columns: dict[str, str]) -> Engine | None:
        parts = self._join_parts(on, other, other_on)
        if parts is None:
            return None
        other_sql, keys, conds = parts
        names = [f"k{i}" for i in range(len(keys))]
        present = " AND ".join(f"{other_sql.q(c)} IS NOT NULL" for c in other_on)
        picked = [f"{other_sql.q(c)} AS b{i}" for i, c in enumerate(columns.values())]
        values = [f"min(b{i}) AS {self.q(name)}" for i, name in enumerate(columns)]
        lookup = (f"SELECT {', '.join(names)}, {', '.join(values)}, count(*) AS mlfunnel_matches "
                  f"FROM (SELECT {', '.join([*keys, *picked])} FROM {other_sql.source} AS u "
                  f"WHERE {present}) AS v GROUP BY {', '.join(names)}")
        shown = ", ".join(f"o.{self.q(name)}" for name in columns)
        source = (f"(SELECT t.*, {shown}, o.mlfunnel_matches FROM {self._from()} LEFT JOIN "
                  f"({lookup}) AS o ON {' AND '.join(conds)})")
        theirs = other_sql.schema()
        schema = {**self.schema(), **{name: theirs[c] for name, c in columns.items()},
                  "mlfunnel_matches": "int"}
        return SqlEngine(f"{self.display} with {other_sql.display}", source, self.dialect,
                         self._execute, lambda: schema, self.connection_id,
                         bounded_sorts=self.bounded_sorts)

    def key_counts(self, on: list[str]) -> list[tuple[Any, ...]]:
        keys = ", ".join(self.q(c) for c in on)
        # a NaN key is a null (and no database but this one could be sent it)
        present = " AND ".join(f"{self._clean(c)} IS NOT NULL" for c in on)
        return [tuple(plain(v) for v in row) for row in self.run_seeing_nan(
            f"SELECT {keys}, count(*) FROM {self._from()} WHERE {present} GROUP BY {keys}",
            "join keys")]

    # ------------------------------------------------------------------ keys of another engine
    def _key_rows(self, on: list[str], rows: list[tuple[Any, ...]], as_text: bool,
                  counted: bool) -> tuple[str, str]:
        """(the rows as an inline relation ``k`` with columns k0.. [and mlfunnel_n], the join
        condition of ``t`` with it)."""
        schema = self.schema()
        text = self.dialect.text_type
        rendered = []
        for row in rows:
            keys = row[:-1] if counted else row
            try:
                values = [self.literal(str(v) if as_text else key_for(v, schema[c]),
                                       "string" if as_text else schema[c])
                          for v, c in zip(keys, on, strict=True)]
            except CriterionError as exc:
                raise CriterionError(f"join: {exc}") from None
            rendered.append(values + ([str(int(row[-1]))] if counted else []))
        names = [f"k{i}" for i in range(len(on))] + (["mlfunnel_n"] if counted else [])
        conds = [(f"CAST(t.{self.q(c)} AS {text})" if as_text else f"t.{self.q(c)}")
                 + f" = k.k{i}" for i, c in enumerate(on)]
        return self.dialect.inline_rows(rendered, names), " AND ".join(conds)

    def rows_with_keys(self, on: list[str], keys: list[tuple[Any, ...]], as_text: bool
                       ) -> int | None:
        matched = 0
        for start in range(0, len(keys), KEYS_PER_QUERY):  # the keys are distinct: chunks add
            inline, cond = self._key_rows(on, keys[start:start + KEYS_PER_QUERY], as_text,
                                          counted=False)
            row = self.run(f"SELECT count(*) FROM {self._from()} JOIN {inline} ON {cond}",
                           "join")[0]
            matched += int(row[0] or 0)
        return matched

    def keys_present(self, on: list[str], counted: list[tuple[Any, ...]], as_text: bool,
                     examples: int = 0) -> tuple[int, list[tuple[Any, ...]]] | None:
        matched = 0
        missing: list[tuple[Any, ...]] = []
        for start in range(0, len(counted), KEYS_PER_QUERY):
            inline, cond = self._key_rows(on, counted[start:start + KEYS_PER_QUERY], as_text,
                                          counted=True)
            found = f"EXISTS (SELECT 1 FROM {self._from()} WHERE {cond})"
            row = self.run(f"SELECT sum(CASE WHEN {found} THEN k.mlfunnel_n END) FROM {inline}",
                           "join")[0]
            matched += int(row[0] or 0)
            if len(missing) < examples:
                names = ", ".join(f"k.k{i}" for i in range(len(on)))
                missing += [tuple(plain(v) for v in r) for r in self.run(
                    f"SELECT {names} FROM {inline} WHERE NOT {found} LIMIT "
                    f"{examples - len(missing)}", "offending")]
        return matched, missing

    def group_sizes(self, by: list[str], stats: list[str]) -> dict[str, float]:
        keys = ", ".join(self.q(c) for c in by)
        groups = f"(SELECT count(*) AS n FROM {self._from()} GROUP BY {keys})"
        sizes = SqlEngine(self.display, groups, self.dialect, self._execute,
                          lambda: {"n": "int"}, self.connection_id)
        wanted = [Agg("mean", "n"), Agg("min", "n"), Agg("max", "n"),
                  Agg("quantiles", "n", [0.5])]
        (mean, low, high, quantiles), _ = sizes._pass(wanted, "group sizes", nan_aware=False,
                                                      bounds={}, probes=[])
        found = {"mean": mean, "min": low, "max": high, "median": quantiles[0]}
        return {s: (0.0 if found[s] is None else float(found[s])) for s in stats}

    def crosstab(self, keys: list[Expr], values: list[tuple[str, Expr]]
                 ) -> list[tuple[tuple[Any, ...], int, list[Any]]]:
        return sql_crosstab(self, keys, values)

    def score_ranks(self, label: Expr, scores: list[Expr], rankings: list[Ranking],
                    where: Expr | None) -> list[dict[Any, ScoreRanks]]:
        return sql_score_ranks(self, label, scores, rankings, where)

    def placement_sums(self, labels: list[Expr], scores: list[tuple[Expr, Expr]],
                       by: Expr | None, where: Expr | None) -> Placements:
        from pytest_mlfunnel.engines.placements import sql_placement_sums

        return sql_placement_sums(self, labels, scores, by, where)


# --------------------------------------------------------------------------- DuckDB
#: how much DuckDB may write to disk when a query does not fit in memory (a DuckDB size)
SPILL_LIMIT_ENV = "MLFUNNEL_DUCKDB_MAX_TEMP_SIZE"
DEFAULT_SPILL_LIMIT = "10GiB"
#: how much memory a query that sorts every row (the score ranking) may hold before it spills
#: whether this DuckDB's ``parquet_metadata`` has ``stats_nan_count`` (2.0 and later); found
#: by the first footer query that asks
_FOOTERS_COUNT_NAN = True

SORT_MEMORY_ENV = "MLFUNNEL_DUCKDB_SORT_MEMORY"
DEFAULT_SORT_MEMORY = "512MiB"
_SIZE = re.compile(r"\d+(\.\d+)?\s*([KMGT]i?)?B", re.IGNORECASE)


def spill_limit() -> str:
    """The cap on DuckDB's temporary files: ``MLFUNNEL_DUCKDB_MAX_TEMP_SIZE`` or 10GiB."""
    limit = os.environ.get(SPILL_LIMIT_ENV, "").strip() or DEFAULT_SPILL_LIMIT
    if not _SIZE.fullmatch(limit):
        raise CriterionError(f"{SPILL_LIMIT_ENV}={limit!r} is not a size: give one such as "
                             "10GiB or 500MB")
    return limit


SPILL_PREFIX = "mlfunnel-duckdb-"
_LOCK = ".in-use"
#: descriptors of the lock files of this process's spill folders: held until it ends
_held: list[int] = []


def _try_lock(descriptor: int) -> bool:
    """An exclusive lock on an open file, without waiting (False: someone holds it)."""
    try:
        import fcntl
    except ImportError:  # Windows: folders of killed runs are not swept there
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def sweep_spill_folders(parent: str) -> list[str]:
    """Remove the spill folders of processes that ended without removing their own (a run
    killed with SIGKILL runs no exit handler): a live process holds a lock on the folder's
    lock file for its whole life, so a folder whose lock can be taken has no owner. Folders
    without a lock file (being created, or made by an older version) are left alone."""
    removed = []
    for name in sorted(os.listdir(parent)):
        if not name.startswith(SPILL_PREFIX):
            continue
        folder = os.path.join(parent, name)
        try:
            with open(os.path.join(folder, _LOCK), "rb") as handle:
                if not _try_lock(handle.fileno()):
                    continue
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
        except OSError:
            continue
    return removed


def spill_folder() -> str:
    """A new folder for DuckDB's spill under the system's temporary directory, locked for
    this process's life and removed at its exit; the folders of killed runs are swept first."""
    parent = tempfile.gettempdir()
    sweep_spill_folders(parent)
    folder = tempfile.mkdtemp(prefix=SPILL_PREFIX)
    # the lock is taken before the lock file gets its name, so no sweep sees it unlocked
    descriptor, name = tempfile.mkstemp(dir=folder, prefix=".lock-")
    if _try_lock(descriptor):
        os.replace(name, os.path.join(folder, _LOCK))
        _held.append(descriptor)
    else:
        os.close(descriptor)
    atexit.register(shutil.rmtree, folder, True)
    return folder


def sort_memory_limit() -> str | None:
    """The memory a query that sorts every row may hold before it spills (a DuckDB size):
    ``MLFUNNEL_DUCKDB_SORT_MEMORY``, or DEFAULT_SORT_MEMORY; "none" leaves the database's own
    limit."""
    limit = os.environ.get(SORT_MEMORY_ENV, "").strip() or DEFAULT_SORT_MEMORY
    if limit.lower() == "none":
        return None
    if not _SIZE.fullmatch(limit):
        raise CriterionError(f"{SORT_MEMORY_ENV}={limit!r} is not a size: give one such as "
                             "1GiB or 500MB, or none")
    return limit


def duckdb_connection(shared: dict[Any, Any]) -> Any:
    """One in-memory DuckDB per process: every file and eager frame is a view on it.

    What does not fit in memory spills into a folder of its own under the system's temporary
    directory (DuckDB would write ``.tmp`` into the working directory), removed when the
    process ends, and at most ``spill_limit()`` of it (DuckDB would fill 90% of the disk)."""
    def connect() -> Any:
        import duckdb

        limit = spill_limit()
        # no progress bar: it would print into the test output on long scans
        connection = duckdb.connect(":memory:")
        connection.execute("SET enable_progress_bar = false")
        folder = spill_folder()
        quoted = str(folder).replace("'", "''")  # DuckDB before 1.2 takes no parameter here
        connection.execute(f"SET temp_directory = '{quoted}'")
        connection.execute(f"SET max_temp_directory_size = '{limit}'")
        return connection

    key = ("tabular", "duckdb")
    if key not in shared:
        shared[key] = connect()
    return shared[key]


COUNT_OPS = ("rows", "count", "nulls", "distinct", "duplicate_rows", "not_in",
             "approx_distinct", "approx_duplicate_rows")
#: the duplicate-rows count sorts the hashes of at most this many rows at once (about 27
#: bytes a row in DuckDB: 650 MiB), in at most MAX_PARTS parts (see SqlEngine._duplicate_rows)
ROWS_PER_PART = 25_000_000
MAX_PARTS = 4
#: the pass also counts duplicate rows (SqlEngine._carries_duplicates) of a table of at
#: least this many columns and at most this many rows (8 bytes of hash a row, held at once)
CARRY_MIN_COLUMNS = 16
CARRY_MAX_ROWS = 10_000_000
#: aggregates that may run in a stage of their own (see SqlEngine.compute)
_STAGED_OPS = ("distinct", "duplicate_rows", "approx_duplicate_rows")
#: aggregates that need the column's values to be numbers (probed where a database keeps
#: text in a numeric column: Dialect.not_a_number)
_NUMBER_OPS = ("min", "max", "sum", "mean", "var")
#: a column's NaN, counted in the pass for the footers' null count (see SqlEngine.compute)
_NAN = "nan"
#: a float's aggregates counted NaN-aware in the pass itself (see SqlEngine._nan_counted)
_NAN_COUNTED_OPS = ("nulls", "count", "min", "max", _NAN)
#: types whose nulls, min and max Parquet footers state as the pass would count them
_FOOTER_TYPES = ("int", "string", "bool", "date", "datetime")
#: compared as they are when counted distinct; other types by a hash first
_FIXED_WIDTH = ("int", "float", "bool", "date", "datetime")
FLOAT_OPS = ("sum", "mean", "var")
#: aggregates that do arithmetic on the values: a boolean column is read as 0 and 1
_ARITHMETIC_OPS = ("sum", "mean", "var", "quantiles", "histogram")


def shape(agg: Agg, values: list[Any]) -> Any:
    """An aggregate's raw cells as the kinds read them: counts as int, moments as float."""
    op = agg.op
    if op == "histogram":
        return [int(v or 0) for v in values]
    if op == "quantiles":
        return [None if v is None else float(v) for v in values]
    value = values[0]
    if op in COUNT_OPS:
        return int(value or 0)
    if op in FLOAT_OPS:
        return None if value is None else float(value)
    return value


def duckdb_executor(connection: Any, display: str, prefix: str = "") -> Executor:
    import duckdb

    def execute(sql: str, purpose: str) -> list[tuple[Any, ...]]:
        try:
            rows: list[tuple[Any, ...]] = connection.execute(sql).fetchall()
            return rows
        except duckdb.Error as exc:
            hint = ""
            if "max_temp_directory_size" in str(exc):
                hint = (f" (DuckDB may spill at most {spill_limit()} to disk: set "
                        f"{SPILL_LIMIT_ENV} to allow more)")
            raise CriterionError(f"{display}: {prefix}{_first_line(exc)}{hint}") from None
    return execute


def _first_line(exc: BaseException) -> str:
    return duckdb_reason(exc)


def duckdb_reason(exc: BaseException) -> str:
    """DuckDB's error in one line: its first line, and for a CSV error (whose first line only
    says where: ``CSV Error on Line: 2``) the line that says why, without the row's content,
    with the option that reads another encoding where that is the reason."""
    text = str(exc)
    head = first_line(text) or type(exc).__name__
    if "CSV Error on Line" not in head:
        return head
    lines = [line.strip() for line in text.splitlines()[1:] if line.strip()]
    why = next((line for line in lines if not line.startswith(("Original Line", "Possible "))),
               "")
    if "not utf-8 encoded" in why:
        why += ' (options = { encoding = "latin-1" } on the source reads another encoding)'
    return f"{head}: {why}" if why else head


def duckdb_schema(execute: Executor, source: str, display: str) -> Callable[[], dict[str, str]]:
    def load() -> dict[str, str]:
        log_query("schema", display, f"DESCRIBE SELECT * FROM {source}")
        return DuckDBDialect().column_types(source, execute)
    return load
