"""Frames a fixture returns: eager frames go to DuckDB, lazy frames stay in their own engine.

pandas, polars and pyarrow frames are registered as DuckDB views (DuckDB scans them over
Arrow; nothing is computed in pandas). A DuckDB relation is queried on its own connection. A
PySpark DataFrame is queried in Spark SQL (``spark``). Every other lazy frame narwhals knows
(polars LazyFrame, Dask, Ibis, sqlframe ...) is aggregated through narwhals, so the work runs
on the user's engine or cluster.
"""

from __future__ import annotations

import datetime as dt
import decimal
import itertools
import warnings
from typing import Any

import narwhals.stable.v2 as nw

from pytest_mlfunnel.engines.dialects import duckdb_dtype
from pytest_mlfunnel.engines.expr import (
    Expr,
    Ranking,
    ScoreRanks,
    narwhals_crosstab,
    narwhals_score_ranks,
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
from pytest_mlfunnel.engines.sql import (
    SqlEngine,
    duckdb_connection,
    duckdb_executor,
    duckdb_schema,
    shape,
)
from pytest_mlfunnel.funnel import first_line
from pytest_mlfunnel.outcome import CriterionError


def open_frame(frame: Any, display: str, shared: dict[Any, Any]) -> Engine:
    from pytest_mlfunnel.engines.spark import is_spark_frame

    if is_spark_frame(frame):  # Spark SQL in its own session, through the Spark dialect
        from pytest_mlfunnel.engines.spark import open_spark_frame

        return open_spark_frame(frame, display, shared)
    try:
        with warnings.catch_warnings():
            # narwhals announces that Dask support moves to a separate package; not the
            # user's concern while it works.
            warnings.simplefilter("ignore", FutureWarning)
            wrapped = nw.from_native(frame)
    except TypeError:
        raise CriterionError(f"{display} returned {type(frame).__name__}, not a data frame "
                             "(pandas, polars, pyarrow, DuckDB, Dask, PySpark ...)") from None
    implementation = wrapped.implementation
    if implementation is nw.Implementation.DUCKDB:
        return _duckdb_relation(frame, display)
    if isinstance(wrapped, nw.DataFrame):
        native = frame
        if implementation not in (nw.Implementation.PANDAS, nw.Implementation.POLARS,
                                  nw.Implementation.PYARROW):
            native = wrapped.to_arrow()
        connection = duckdb_connection(shared)
        counter = shared.setdefault(("tabular", "views"), itertools.count())
        view = f"mlfunnel_t{next(counter)}"
        try:
            connection.register(view, native)
        except Exception as exc:  # DuckDB's own error types, raised for a column's dtype
            raise CriterionError(_unreadable_frame(native, display, exc)) from None
        execute = duckdb_executor(connection, display)
        return SqlEngine(display, view, "duckdb", execute, duckdb_schema(execute, view, display),
                         connection_id=id(connection), bounded_sorts=True)
    return NarwhalsEngine(wrapped, display)


def _unreadable_frame(frame: Any, display: str, exc: BaseException) -> str:
    """Why DuckDB cannot scan an eager frame, naming the columns whose dtype its error names
    (a pandas Period, Interval or complex column)."""
    reason = first_line(str(exc)) or type(exc).__name__
    dtypes = getattr(frame, "dtypes", None)
    items = getattr(dtypes, "items", None)  # pandas: a Series of each column's dtype
    named = [f"{name} ({dtype})" for name, dtype in items()
             if f"'{dtype}'" in reason] if callable(items) else []
    library = type(frame).__module__.split(".")[0]
    what = (f"the column{'s' if len(named) > 1 else ''} {', '.join(named)} of this {library} "
            "frame" if named else f"this {library} frame")
    return (f"{display}: DuckDB cannot read {what} ({reason}); convert it in the fixture, to "
            "text, numbers or timestamps, or leave it out")


def _duckdb_relation(relation: Any, display: str) -> SqlEngine:
    import duckdb

    name = "mlfunnel_relation"

    def execute(sql: str, purpose: str) -> list[tuple[Any, ...]]:
        try:
            rows: list[tuple[Any, ...]] = relation.query(name, sql).fetchall()
            return rows
        except duckdb.Error as exc:
            raise CriterionError(f"{display}: {first_line(str(exc)) or exc}") from None

    def schema() -> dict[str, str]:
        return {str(c): duckdb_dtype(str(t)) for c, t in zip(relation.columns, relation.types,
                                                             strict=True)}

    return SqlEngine(display, name, "duckdb", execute, schema, connection_id=None)


def narwhals_dtype(dtype: Any) -> str:
    if dtype.is_integer():
        return "int"
    if dtype.is_float() or dtype.is_decimal():
        return "float"
    if dtype == nw.Boolean:
        return "bool"
    if dtype in (nw.String, nw.Categorical, nw.Enum):
        return "string"
    if dtype == nw.Datetime:
        return "datetime"
    if dtype == nw.Date:
        return "date"
    return "other"


def _py(value: Any) -> Any:
    """numpy / pandas scalars as Python values; a Decimal as a float, as databases give."""
    if value is None:
        return None
    if isinstance(value, decimal.Decimal):
        return float(value)
    if hasattr(value, "to_pydatetime"):
        return value.to_pydatetime()
    item = getattr(value, "item", None)
    if callable(item) and not isinstance(value, str | bytes | dt.date):
        try:
            return item()
        except (TypeError, ValueError):
            return value
    if isinstance(value, float) and value != value:  # NaN from an empty reduction
        return None
    return value


def _session(native_or_frame: Any) -> Any:
    """The connection or session a lazy frame runs on (a Spark or sqlframe session, an Ibis
    backend), None for in-process engines (polars, Dask) where any two frames join."""
    native = nw.to_native(native_or_frame) if isinstance(native_or_frame, nw.LazyFrame) else (
        native_or_frame)
    for attribute in ("sparkSession", "session"):
        found = getattr(native, attribute, None)
        if found is not None:
            return found
    finder = getattr(native, "get_backend", None) or getattr(native, "_find_backend", None)
    if callable(finder):
        try:
            return finder()
        except Exception:  # no single backend: never joined with another frame in one plan
            return native
    return None


def _eager_backend() -> Any:
    """An installed eager frame library to build small frames of keys in."""
    import importlib.util

    for name, implementation in (("polars", nw.Implementation.POLARS),
                                 ("pyarrow", nw.Implementation.PYARROW),
                                 ("pandas", nw.Implementation.PANDAS)):
        if importlib.util.find_spec(name) is not None:
            return implementation
    return None


class NarwhalsEngine(Engine):
    """Aggregates as one narwhals ``select`` on a lazy frame, collected once."""

    def __init__(self, frame: Any, display: str) -> None:
        self.frame = frame if isinstance(frame, nw.LazyFrame) else frame.lazy()
        self.display = display
        self._schema: dict[str, str] | None = None
        #: the float columns that can hold NaN (a decimal cannot, and polars refuses is_nan)
        self._nan_columns: set[str] = set()
        self.backend = str(self.frame.implementation).split(".")[-1].lower()

    def _collect(self, lazy: Any, purpose: str) -> list[tuple[Any, ...]]:
        log_query(purpose, self.display, f"{self.backend} plan")
        try:
            rows: list[tuple[Any, ...]] = lazy.collect().rows()
        except Exception as exc:  # each engine has its own error types
            raise CriterionError(f"{self.display}: {type(exc).__name__}: "
                                 f"{first_line(str(exc))}") from None
        return [tuple(_py(v) for v in row) for row in rows]

    def schema(self) -> dict[str, str]:
        if self._schema is None:
            found = self.frame.collect_schema()
            self._nan_columns = {str(name) for name, dtype in found.items() if dtype.is_float()}
            self._schema = {str(name): narwhals_dtype(dtype) for name, dtype in found.items()}
        return self._schema

    def _clean(self, column: str) -> Any:
        expr = nw.col(column)
        self.schema()
        if column in self._nan_columns:
            return nw.when(~expr.is_nan()).then(expr)
        return expr

    def _values(self, column: str, values: list[Any]) -> list[Any]:
        dtype = self.schema()[column]
        out: list[Any] = []
        for value in values:
            if value is None:
                continue
            try:
                out.append(as_column_value(value, dtype))
            except CriterionError as exc:
                raise CriterionError(f"{column}: {exc}, but {column} is {dtype}") from None
        return out

    def _expressions(self, agg: Agg) -> list[Any]:
        op, column = agg.op, agg.column
        if op == "rows":
            return [nw.len()]
        if op in ("duplicate_rows", "approx_duplicate_rows"):
            return [nw.len()]  # the rows; the distinct rows in a stage of their own
        assert column is not None
        x = self._clean(column)
        if op == "count":
            return [x.count()]
        if op == "nulls":
            return [nw.len() - x.count()]
        if op in ("min", "max", "sum", "mean"):
            return [getattr(x, op)()]
        if op == "var":
            return [x.var(ddof=1)]
        if op in ("distinct", "approx_distinct"):
            return [x.n_unique() - (x.null_count() > 0).cast(nw.Int64)]
        if op == "quantiles":
            if self.backend == "dask":
                return []  # Dask's quantiles are its own (approximate) computation
            return [x.quantile(q, interpolation="linear") for q in agg.numbers()]
        if op == "histogram":
            edges = agg.numbers()
            parts = [(x < edges[0]).cast(nw.Int64).sum()]
            parts += [((x >= lo) & (x < hi)).cast(nw.Int64).sum()
                      for lo, hi in itertools.pairwise(edges)]
            parts.append((x >= edges[-1]).cast(nw.Int64).sum())
            return parts
        if op in ("value_counts", "cells"):
            return []
        if op == "not_in":
            allowed = self._values(column, agg.allowed())
            return [(~x.is_null() & ~x.is_in(allowed)).cast(nw.Int64).sum()]
        raise CriterionError(f"unknown aggregate {op!r}")

    def _plans(self, aggs: list[Agg]) -> tuple[list[tuple[Agg, int]], list[Any]]:
        plans: list[tuple[Agg, int]] = []
        exprs: list[Any] = []
        for agg in aggs:
            parts = self._expressions(agg)
            plans.append((agg, len(parts)))
            exprs += [e.alias(f"a{len(exprs) + i}") for i, e in enumerate(parts)]
        return plans, exprs

    def compute(self, aggs: list[Agg]) -> list[Any]:
        plans, exprs = self._plans(aggs)
        row: tuple[Any, ...] = self._collect(self.frame.select(*exprs), "aggregate")[0] \
            if exprs else ()
        results: list[Any] = []
        position = 0
        for agg, width in plans:
            if width == 0 and agg.op == "quantiles":
                results.append(self._dask_quantiles(agg))
            elif width == 0 and agg.op == "cells":
                results.append(self._cells(agg))
            elif width == 0:
                results.append(self._value_counts(agg))
            elif agg.op in ("duplicate_rows", "approx_duplicate_rows"):
                results.append(int(row[position] or 0) - self._distinct_rows())
            else:
                results.append(shape(agg, list(row[position:position + width])))
            position += width
        return results

    def _distinct_rows(self) -> int:
        """Distinct whole rows by the engine's own ``unique()`` (its row hashing; nulls equal
        nulls, NaN equals NaN), exact also under ``approx``: no value is cast to text or
        joined into a string."""
        distinct = self._collect(self.frame.unique().select(nw.len()), "duplicate rows")[0][0]
        return int(distinct or 0)

    def _dask_quantiles(self, agg: Agg) -> list[float | None]:
        assert agg.column is not None
        qs = agg.numbers()
        log_query("quantiles", self.display, "dask quantile")
        series = self.frame.to_native()[agg.column].dropna()
        values = series.quantile(qs).compute()
        return [None if v != v else float(v) for v in values.tolist()]

    def _cells(self, agg: Agg) -> list[Cell]:
        """``CellGrid`` counts, as the SQL engines compute them (see ``CellGrid``)."""
        assert agg.column is not None
        grid: CellGrid = agg.grid()
        x = self._clean(agg.column).cast(nw.Float64)
        magnitude = (x.abs() + 1).log()
        j = (nw.when(x < 0).then(-magnitude).otherwise(magnitude) * grid.per_unit).floor()
        cell = j * CELL_SPAN
        for base, a, b, m in reversed(grid.refine):
            sub = ((x - a) * (m / (b - a))).floor()
            sub = nw.when(x < a).then(-1).when(x > b).then(m).when(sub < m - 1).then(
                sub).otherwise(m - 1)
            cell = nw.when(j == base).then(j * CELL_SPAN + 1 + sub).otherwise(cell)
        if grid.integers:
            cell = nw.when((x > -SMALL_INTEGER) & (x < SMALL_INTEGER)).then(x).otherwise(cell)
        if grid.low is not None:
            cell = nw.when(x < grid.low).then(-OUTSIDE).otherwise(cell)
        if grid.high is not None:
            cell = nw.when(x > grid.high).then(OUTSIDE).otherwise(cell)
        aggs = [nw.len().alias("n")]
        if grid.bounds:
            aggs += [nw.col("x").min().alias("lo"), nw.col("x").max().alias("hi")]
        frame = self.frame
        if grid.split_only:  # what a clamp sends beyond the range is counted with the rest
            kept = j.is_in([float(base) for base, _, _, _ in grid.refine])
            if grid.low is not None:
                kept = kept & (x >= grid.low)
            if grid.high is not None:
                kept = kept & (x <= grid.high)
            frame = frame.filter(kept)
        lazy = (frame.select(x.alias("x"), cell.alias("b")).drop_nulls()
                .group_by("b").agg(*aggs))
        out = []
        for row in self._collect(lazy, "cells"):
            if row[0] is None or row[0] != row[0]:
                continue
            low, high = (row[2], row[3]) if grid.bounds else (None, None)
            out.append((float(row[0]), int(row[1]), low, high))
        return grid.merge(out)

    def _value_counts(self, agg: Agg) -> dict[Any, int]:
        assert agg.column is not None
        cap = agg.cap(10_000)
        lazy = (self.frame.select(self._clean(agg.column).alias("v")).drop_nulls()
                .group_by("v").agg(nw.len().alias("n")).sort("n", descending=True).head(cap))
        return {v: int(n) for v, n in self._collect(lazy, "value_counts")}

    def offending(self, column: str, mode: str, arg: Any, dtype: str) -> list[Any]:
        x = self._clean(column)
        if mode == "null":
            lazy = self.frame.filter(x.is_null()).head(OFFENDING_LIMIT)
            return [list(r) for r in self._collect(lazy, "offending")]
        if mode == "duplicated":
            # a NaN is a null, as in the count of repeats: not one of the examples
            lazy = (self.frame.select(x.alias("v")).drop_nulls().group_by("v")
                    .agg(nw.len().alias("n")).filter(nw.col("n") > 1)
                    .sort("n", descending=True).head(OFFENDING_LIMIT))
            return [r[0] for r in self._collect(lazy, "offending")]
        if mode == "not_in":
            cond = ~x.is_in(self._values(column, list(arg)))
        elif mode == "below":
            cond = x < arg
        elif mode == "above":
            cond = x > arg
        else:
            raise CriterionError(f"unknown offending mode {mode!r}")
        lazy = (self.frame.filter(~x.is_null() & cond).select(x.alias("v")).unique()
                .sort("v", descending=(mode == "above")).head(OFFENDING_LIMIT))
        return [r[0] for r in self._collect(lazy, "offending")]

    def grouped(self, by: str, aggs: list[Agg]) -> dict[Any, list[Any]]:
        plans, exprs = self._plans(aggs)
        if any(width == 0 for _, width in plans):
            raise CriterionError(f"{self.display}: value_counts per group is not supported")
        rows = self._collect(self.frame.group_by(by).agg(*exprs), "grouped")
        out: dict[Any, list[Any]] = {}
        for row in rows:
            values, position = [], 1
            for agg, width in plans:
                values.append(shape(agg, list(row[position:position + width])))
                position += width
            out[row[0]] = values
        return out

    def sample(self, columns: list[str], limit: int, seed: int) -> dict[str, list[Any]]:
        plan = self.sample_plan(columns, limit, seed)
        names = list(plan.collect_schema().names())
        rows = self._collect(plan, "sample")
        return {c: [r[names.index(c)] for r in rows] for c in columns}

    def sample_plan(self, columns: list[str], limit: int, seed: int) -> Any:
        """At most ``limit`` rows of ``columns``, picked in the engine: rows numbered in the
        order of their values (rows that tie are alike, so the pick is the same on every
        run and backend), shuffled by a multiplicative hash of the number and ``seed``, the
        first ``limit`` kept. Only those rows come back (with their number and key: Dask
        cannot select after ``head``)."""
        numbered = self.frame.select(*columns).with_row_index("mlfunnel_rn", order_by=columns)
        shuffled = ((nw.col("mlfunnel_rn") + int(seed)) * 2654435761) % 2147483647
        return (numbered.with_columns(shuffled.alias("mlfunnel_key"))
                .sort("mlfunnel_key", "mlfunnel_rn").head(int(limit)))

    def _join_frames(self, on: list[str], other: Engine, other_on: list[str]
                     ) -> tuple[Any, Any, list[str], list[str]] | None:
        """(left keys, distinct right keys with a hit flag, left names, right names) when both
        frames live in the same backend, else None."""
        if not isinstance(other, NarwhalsEngine) or other.backend != self.backend or (
                _session(self.frame) is not _session(other.frame)):
            return None  # two connections: a table name may mean another table on each
        mine, theirs = self.schema(), other.schema()
        if any(not comparable(mine[a], theirs[b]) for a, b in zip(on, other_on, strict=True)):
            return None
        keys = [f"mlfunnel_k{i}" for i in range(len(on))]
        lefts, rights = [], []
        left_names = [f"mlfunnel_l{i}" for i in range(len(on))]
        for a, b, k, name in zip(on, other_on, keys, left_names, strict=True):
            # a NaN key is a null: it matches nothing, as when the keys cross engines
            left, right = self._clean(a), other._clean(b)
            if mine[a] != theirs[b]:  # int against float: compare as floats
                left, right = left.cast(nw.Float64), right.cast(nw.Float64)
            lefts.append(left.alias(name))
            rights.append(right.alias(k))
        right_keys = (other.frame.select(*rights).drop_nulls().unique()
                      .with_columns(nw.lit(1).alias("mlfunnel_hit")))
        return self.frame.select(*lefts), right_keys, left_names, keys

    def join_match_native(self, on: list[str], other: Engine, other_on: list[str]
                          ) -> tuple[int, int] | None:
        parts = self._join_frames(on, other, other_on)
        if parts is None:
            return None
        left, right, left_names, keys = parts
        joined = left.join(right, how="left", left_on=left_names, right_on=keys)
        row = self._collect(joined.select(nw.len(), nw.col("mlfunnel_hit").count()), "join")[0]
        return int(row[0]), int(row[1])

    def unmatched_native(self, on: list[str], other: Engine, other_on: list[str], limit: int
                         ) -> list[tuple[Any, ...]] | None:
        parts = self._join_frames(on, other, other_on)
        if parts is None:
            return None
        left, right, left_names, keys = parts
        missing = (left.drop_nulls().unique().join(right.drop("mlfunnel_hit"), how="anti",
                                                   left_on=left_names, right_on=keys)
                   .head(limit))
        return self._collect(missing, "offending")

    def key_counts(self, on: list[str]) -> list[tuple[Any, ...]]:
        # a NaN key is a null (and no database but this one could be sent it)
        lazy = (self.frame.select(*(self._clean(c).alias(c) for c in on)).drop_nulls()
                .group_by(*on).agg(nw.len().alias("mlfunnel_n")))
        return self._collect(lazy, "join keys")

    def _key_frame(self, on: list[str], rows: list[tuple[Any, ...]], as_text: bool,
                   counted: bool) -> tuple[Any, list[Any], list[str]] | None:
        """(the rows as a lazy frame of this backend with columns k0.. [and mlfunnel_n],
        this table's key expressions, their names) or None when the backend cannot take
        rows."""
        names = [f"mlfunnel_k{i}" for i in range(len(on))]
        width = len(on)
        data: dict[str, list[Any]] = {
            n: [str(r[i]) if as_text else key_for(r[i], self.schema()[c]) for r in rows]
            for i, (n, c) in enumerate(zip(names, on, strict=True))}
        if counted:
            data["mlfunnel_n"] = [int(r[width]) for r in rows]
        eager = _eager_backend()
        if eager is None:
            return None
        try:
            frame = nw.from_dict(data, backend=eager)
            built = (frame.lazy() if self.frame.implementation is eager
                     else frame.lazy(backend=self.frame.implementation))
            lazy = nw.from_native(nw.to_native(built))  # this module's narwhals namespace
        except Exception:  # a backend narwhals cannot build frames in (Spark, ...)
            return None
        # One type on both sides, cast in this backend: numbers as floats, dates and text as
        # text (a frame built from Python values may carry another width or time unit).
        mine = self.schema()
        exprs = []
        for i, (c, n) in enumerate(zip(on, names, strict=True)):
            target = nw.Float64 if mine[c] in ("int", "float") and not as_text else nw.String
            lazy = lazy.with_columns(nw.col(n).cast(target))
            exprs.append(nw.col(c).cast(target).alias(f"mlfunnel_l{i}"))
        return lazy, exprs, [f"mlfunnel_l{i}" for i in range(width)]

    def rows_with_keys(self, on: list[str], keys: list[tuple[Any, ...]], as_text: bool
                       ) -> int | None:
        built = self._key_frame(on, keys, as_text, counted=False)
        if built is None:
            return None
        right, exprs, left_names = built
        joined = self.frame.select(*exprs).join(
            right, how="inner", left_on=left_names,
            right_on=[f"mlfunnel_k{i}" for i in range(len(on))])
        return int(self._collect(joined.select(nw.len()), "join")[0][0] or 0)

    def keys_present(self, on: list[str], counted: list[tuple[Any, ...]], as_text: bool,
                     examples: int = 0) -> tuple[int, list[tuple[Any, ...]]] | None:
        built = self._key_frame(on, counted, as_text, counted=True)
        if built is None:
            return None
        right, exprs, left_names = built
        names = [f"mlfunnel_k{i}" for i in range(len(on))]
        mine = (self.frame.select(*exprs).drop_nulls().unique()
                .with_columns(nw.lit(1).alias("mlfunnel_hit")))
        joined = right.join(mine, how="left", left_on=names, right_on=left_names)
        hit = ~nw.col("mlfunnel_hit").is_null()
        row = self._collect(joined.select(
            nw.when(hit).then(nw.col("mlfunnel_n")).otherwise(0).sum()), "join")[0]
        missing: list[tuple[Any, ...]] = []
        if examples:
            missing = self._collect(joined.filter(~hit).select(*names).head(examples),
                                    "offending")
        return int(row[0] or 0), missing

    def group_sizes(self, by: list[str], stats: list[str]) -> dict[str, float]:
        n = nw.col("n").cast(nw.Float64)  # Dask's nullable Int64 counts break its mean
        lazy = self.frame.group_by(*by).agg(nw.len().alias("n")).select(
            n.median().alias("median"), n.mean().alias("mean"), n.min().alias("min"),
            n.max().alias("max"))
        row = self._collect(lazy, "group sizes")[0]
        found = dict(zip(("median", "mean", "min", "max"), row, strict=True))
        return {s: 0.0 if found[s] is None else float(found[s]) for s in stats}

    def crosstab(self, keys: list[Expr], values: list[tuple[str, Expr]]
                 ) -> list[tuple[tuple[Any, ...], int, list[Any]]]:
        return narwhals_crosstab(self, keys, values)

    def score_ranks(self, label: Expr, scores: list[Expr], rankings: list[Ranking],
                    where: Expr | None) -> list[dict[Any, ScoreRanks]]:
        return narwhals_score_ranks(self, label, scores, rankings, where)

    def placement_sums(self, labels: list[Expr], scores: list[tuple[Expr, Expr]],
                       by: Expr | None, where: Expr | None) -> Placements:
        from pytest_mlfunnel.engines.placements import narwhals_placement_sums

        return narwhals_placement_sums(self, labels, scores, by, where)

