"""Tables as evidence: files (DuckDB), user frames (narwhals), databases (SQL in the database).

A check never touches rows. It asks a ``Table`` for aggregates, all of one pass at once:

    table = open_table(spec, ctx)                 # cached per session, per source
    rows, nulls = table.aggregate([Agg("rows"), Agg("nulls", "age")])
    per_group = table.grouped("period", [Agg("count", "minutes"), Agg("mean", "minutes"),
                                         Agg("var", "minutes")])

The aggregate vocabulary and the ``Table`` methods are in ``engines.protocol``.

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
DuckDB relations on their own connection; Spark tables and PySpark data frames as Spark SQL in
their session (``spark``); other lazy frames (polars LazyFrame, Dask, Ibis, sqlframe ...)
through narwhals in their own engine; databases as SQL through ``database.run_query``.

Set ``MLFUNNEL_QUERY_LOG=/path/file`` to append one line per query issued (pid, purpose, source,
SQL or plan), e.g. to see that a table is read once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pytest_mlfunnel.context import EvalContext
from pytest_mlfunnel.engines.expr import VALUE_OPS, Expr, Ranking, ScoreRanks
from pytest_mlfunnel.engines.placements import Placements
from pytest_mlfunnel.engines.protocol import (
    NUMERIC,
    OFFENDING_LIMIT,
    PASS_OPS,
    Agg,
    Engine,
    Table,
    comparable,
)
from pytest_mlfunnel.outcome import CriterionError, SourceUnavailable
from pytest_mlfunnel.sources.failures import (
    open_once,
    remember_failure,
    remembered_failure,
)
from pytest_mlfunnel.sources.spec import SPARK_SESSION_FIXTURE, SourceSpec
from pytest_mlfunnel.suggest import did_you_mean

_COLUMN_OPS = frozenset(PASS_OPS) - {"rows", "duplicate_rows", "approx_duplicate_rows"} | {
    "offending"}
_NUMERIC_OPS = frozenset({"sum", "mean", "var", "quantiles", "histogram", "cells"})
#: aggregates that compare or count values one by one -> the rule that asks for them
_PLAIN_VALUE_OPS = {"not_in": "values", "value_counts": "min_share"}


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
    if agg.op in _PLAIN_VALUE_OPS and dtype == "other":
        return (f"{agg.column}: {_PLAIN_VALUE_OPS[agg.op]} needs a column of numbers, strings, "
                f"booleans or dates; {agg.column} is {dtype} (nested or untyped)")
    return None


def missing_column(column: str, schema: dict[str, str], display: str) -> str:
    names = ", ".join(schema) if len(schema) <= 30 else ", ".join(list(schema)[:30]) + ", ..."
    numbered = [n for n in schema if re.fullmatch(re.escape(column) + r"_\d+", n)]
    first = next((n for n in schema if n.lower() == column.lower()), None)
    if numbered and first is not None:
        # DuckDB (files, eager frames) binds names regardless of case: of 'Amount' and
        # 'amount', the second is read as 'amount_1'
        return (f"{column}: read as {numbered[0]!r} from {display}, which also has "
                f"{first!r}: DuckDB takes names that differ only in case for one name and "
                f"numbers the later ones; name the column {numbered[0]!r} here (columns: "
                f"{names})")
    hint = did_you_mean(column, schema)
    if "*" in display:  # a glob: DuckDB binds the columns of the first file it reads
        hint += ("; the columns of a glob are those of its first file, unless the source "
                 "reads them by name with options = { union_by_name = true }")
    return f"{column}: no such column in {display} (columns: {names}){hint}"


class _Failed:
    """An aggregate that could not be computed; raised again for each criterion asking it."""

    def __init__(self, message: str) -> None:
        self.message = message


class SharedTable:
    """A table shared by every criterion on one source in this process: one pass, cached.

    A source that cannot be read (missing file, unreachable database, a file DuckDB cannot
    scan) fails once: the failure is remembered in ``shared`` and raised again without trying
    (``sources/failures.py``). An aggregate that cannot run (a rule that does not fit its
    column) fails only the criteria that ask for it.
    """

    def __init__(self, engine: Engine, planned: dict[tuple[Any, ...], Agg],
                 shared: dict[Any, Any] | None = None, identity: Any = None) -> None:
        self.engine = engine
        self.display = engine.display
        self._identity = identity  # what the source reads: its failure is remembered by it
        self._planned = planned
        self._shared: dict[Any, Any] = {} if shared is None else shared
        self._results: dict[tuple[Any, ...], Any] = {}
        self._schema: dict[str, str] | None = None

    def _guard(self, action: Callable[[], Any], source_level: bool = False) -> Any:
        failure = remembered_failure(self._shared, "table", self.display, self._identity)
        if failure is not None:
            raise failure
        try:
            return action()
        except CriterionError as exc:
            if source_level:  # unreadable file, unreachable database: do not try again per item
                raise remember_failure(self._shared, "table", self.display, exc,
                                       self._identity) from None
            raise

    def schema(self) -> dict[str, str]:
        if self._schema is None:
            self._schema = dict(self._guard(self.engine.schema, source_level=True))
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
                problem = column_problem(agg, schema, self.display) or self.engine.unsupported(
                    agg)
                if problem is None:
                    valid.append(agg)
                else:
                    self._results[key] = _Failed(problem)
            if valid:
                self._pass(valid)
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

    def approx_error(self) -> float:
        return self.engine.approx_error()

    def _pass(self, aggs: list[Agg]) -> None:
        """Every aggregate in one pass. When the pass fails, and the table itself answers
        (``count(*)``), the pass is split in halves until each failing aggregate stands alone:
        one rule that cannot apply errors only its own criteria."""
        try:
            values = self._guard(lambda: self._compute(aggs))
        except SourceUnavailable:
            raise
        except CriterionError as exc:
            if not self._table_answers(aggs):
                raise remember_failure(self._shared, "table", self.display, exc,
                                       self._identity) from None
            self._split([a for a in aggs if a.key() not in self._results], exc)
            return
        for agg, value in zip(aggs, values, strict=True):
            self._results[agg.key()] = value

    def _compute(self, aggs: list[Agg]) -> list[Any]:
        try:
            return self.engine.compute(aggs)
        except CriterionError:
            raise
        except Exception as exc:  # an engine's surprise on one column must not sink the pass
            raise CriterionError(f"{self.display}: {type(exc).__name__}: {exc}") from None

    def _table_answers(self, failed: list[Agg]) -> bool:
        rows = Agg("rows")
        if [a.key() for a in failed] == [rows.key()]:
            return False  # the failed pass was count(*) itself
        try:
            (count,) = self._compute([rows])
        except CriterionError:
            return False
        self._results[rows.key()] = count
        return True

    def _split(self, aggs: list[Agg], error: CriterionError) -> None:
        if not aggs:
            return
        if len(aggs) == 1:
            self._results[aggs[0].key()] = _Failed(str(error))
            return
        half = len(aggs) // 2
        for part in (aggs[:half], aggs[half:]):
            try:
                values = self._compute(part)
            except CriterionError as exc:
                self._split(part, exc)
                continue
            for agg, value in zip(part, values, strict=True):
                self._results[agg.key()] = value

    def _offending(self, agg: Agg, schema: dict[str, str]) -> list[Any]:
        problem = column_problem(agg, schema, self.display)
        if problem is not None:
            raise CriterionError(problem)
        assert agg.column is not None
        mode, arg = agg.offending()
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

    def _join_side(self, on: list[str], other: Table, other_on: list[str],
                   needed: list[str]) -> SharedTable:
        """``other`` as a table of this planner, once both sides' key columns (and the
        ``needed`` columns of ``other``) are known to be there."""
        if len(on) != len(other_on) or not on:
            raise CriterionError(f"join: give as many key columns on each side ({on} vs "
                                 f"{other_on})")
        self._need_columns(on)
        if not isinstance(other, SharedTable):
            raise CriterionError(f"join: {other.display} is not a table this engine can join")
        other._need_columns(needed)
        return other

    def join_match(self, on: list[str], other: Table, other_on: list[str]) -> tuple[int, int]:
        other = self._join_side(on, other, other_on, other_on)
        native = self._guard(lambda: self.engine.join_match_native(on, other.engine, other_on))
        if native is not None:
            return int(native[0]), int(native[1])
        rows = int(self.aggregate([Agg("rows")])[0])
        as_text = self._as_text(on, other, other_on)
        # Two connections: the smaller side's keys go into the other engine, matched there.
        if int(other.aggregate([Agg("rows")])[0]) <= rows:
            keys = [row[:-1] for row in other._guard(lambda: other.engine.key_counts(other_on))]
            matched = self._guard(lambda: self.engine.rows_with_keys(on, keys, as_text))
            if matched is not None:
                return rows, int(matched)
        found = self._keys_found_in(on, other, other_on, as_text, examples=0)
        return rows, found[0]

    def _as_text(self, on: list[str], other: SharedTable, other_on: list[str]) -> bool:
        return any(not comparable(self.schema()[a], other.schema()[b])
                   for a, b in zip(on, other_on, strict=True))

    def _keys_found_in(self, on: list[str], other: SharedTable, other_on: list[str],
                       as_text: bool, examples: int) -> tuple[int, list[tuple[Any, ...]]]:
        """This table's keys with their row counts, sent into the other engine: (rows whose
        key it has, a few keys it lacks). The other way round when it cannot take rows."""
        counted = self._guard(lambda: self.engine.key_counts(on))
        found = other._guard(lambda: other.engine.keys_present(other_on, counted, as_text,
                                                               examples))
        if found is not None:
            return int(found[0]), [tuple(k) for k in found[1]]
        if not examples:
            keys = [row[:-1] for row in other._guard(lambda: other.engine.key_counts(other_on))]
            matched = self._guard(lambda: self.engine.rows_with_keys(on, keys, as_text))
            if matched is not None:
                return int(matched), []
        raise CriterionError(f"join: {self.display} and {other.display} are read by two "
                             "engines and neither can take the other's keys; give both "
                             "tables on one connection or session")

    def join_unmatched(self, on: list[str], other: Table, other_on: list[str]
                       ) -> list[tuple[Any, ...]]:
        """A few keys that found no match (for the message of a failed join)."""
        if not isinstance(other, SharedTable):
            return []
        native = self._guard(lambda: self.engine.unmatched_native(on, other.engine, other_on,
                                                                  OFFENDING_LIMIT))
        if native is not None:
            return [tuple(k) for k in native]
        try:
            return self._keys_found_in(on, other, other_on, self._as_text(on, other, other_on),
                                       examples=OFFENDING_LIMIT)[1]
        except CriterionError:
            return []  # the examples only add to a failure already reported

    def joined(self, on: list[str], other: Table, other_on: list[str],
               columns: dict[str, str]) -> Table:
        """This table with ``other``'s columns beside each row, looked up by key in the engine
        (see ``Engine.joined_native``); tables of two engines join in DuckDB, the side not
        there copied into it (``engines.copies``, bounded)."""
        other = self._join_side(on, other, other_on, [*other_on, *columns.values()])
        engine = self._guard(lambda: self.engine.joined_native(on, other.engine, other_on,
                                                                columns))
        # two fixtures know no session: a DuckDB of the join's own then
        shared = (self._shared if self._shared is not None else other._shared
                  if other._shared is not None else {})
        if engine is None:
            # two engines: the side not on the shared DuckDB is copied into it (bounded)
            from pytest_mlfunnel.engines.copies import joined_across

            engine = self._guard(lambda: joined_across(self.engine, on, other.engine, other_on,
                                                       columns, shared))
        return SharedTable(engine, {}, shared)

    def group_sizes(self, by: list[str], stats: list[str]) -> dict[str, float]:
        self._need_columns(by)
        unknown = [s for s in stats if s not in ("median", "mean", "min", "max")]
        if unknown:
            raise CriterionError(f"group sizes: unknown statistic {unknown[0]!r}")
        return dict(self._guard(lambda: self.engine.group_sizes(by, stats)))

    def _need_expressions(self, exprs: list[Expr]) -> None:
        self._need_columns(list(dict.fromkeys(c for e in exprs for c in e.columns())))

    def crosstab(self, keys: list[Expr], values: list[tuple[str, Expr]]
                 ) -> list[tuple[tuple[Any, ...], int, list[Any]]]:
        """Rows and values per distinct combination of the key expressions (see engines.expr)."""
        unknown = [op for op, _ in values if op not in VALUE_OPS]
        if unknown:
            raise CriterionError(f"crosstab: unknown value op {unknown[0]!r}")
        self._need_expressions([*keys, *(e for _, e in values)])
        return list(self._guard(lambda: self.engine.crosstab(keys, values)))

    def score_ranks(self, label: Expr, scores: list[Expr], rankings: list[Ranking],
                    where: Expr | None = None) -> list[dict[Any, ScoreRanks]]:
        """Rank sums of one or two scores per group, for every ranking in one query (see
        engines.expr.ScoreRanks)."""
        if not 1 <= len(scores) <= 2 or any(not 1 <= r.scores <= len(scores) for r in rankings):
            raise CriterionError("score ranks: give one score, or two to pair")
        groups = [r.by for r in rankings if r.by is not None]
        self._need_expressions([label, *scores, *groups, *([where] if where else [])])
        return list(self._guard(lambda: self.engine.score_ranks(label, scores, rankings,
                                                                where)))

    def placement_sums(self, labels: list[Expr], scores: list[tuple[Expr, Expr]],
                       by: Expr | None = None, where: Expr | None = None) -> Placements:
        """The DeLong placements of paired scores under several labels, summed per group and
        combination of labels (see engines.placements)."""
        if len(labels) != len(scores) or not labels:
            raise CriterionError("placements: give one pair of scores per label")
        self._need_expressions([*labels, *(s for pair in scores for s in pair),
                                *([by] if by else []), *([where] if where else [])])
        return dict(self._guard(lambda: self.engine.placement_sums(labels, scores, by,
                                                                   where)))


def table_rows_and_max(table: Table, column: str) -> tuple[int, str]:
    """Rows and the largest value of ``column``, in a query of their own (not the planned
    pass): what a table tells of its version."""
    if not isinstance(table, SharedTable):
        raise CriterionError(f"{table.display}: cannot read its version")
    table._need_columns([column])
    rows, largest = table._guard(lambda: table.engine.compute([Agg("rows"),
                                                                Agg("max", column)]))
    return int(rows), str(largest)


def open_table(spec: SourceSpec, ctx: EvalContext) -> Table:
    """The table behind a source, opened once per session (per xdist worker)."""
    if spec.mlflow is not None:
        raise CriterionError(f"{spec.display()}: an MLflow source holds a run's metrics, params "
                             "and tags, not a table: read it with a metrics check")
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
        from pytest_mlfunnel.engines.frames import open_frame

        table = SharedTable(open_frame(frame, spec.display(), ctx.shared), planned)
        ctx.shared[key] = (frame, table)
        return table

    def build() -> SharedTable:
        if spec.spark is not None:
            from pytest_mlfunnel.sources.spark import open_spark_table

            session = ctx.fixtures.get(SPARK_SESSION_FIXTURE)
            return SharedTable(open_spark_table(spec, session), planned, ctx.shared, identity)
        if spec.url is not None:
            from pytest_mlfunnel.sources.tables import open_database

            return SharedTable(open_database(spec, ctx.rootdir), planned, ctx.shared, identity)
        from pytest_mlfunnel.sources.tables import open_file

        return SharedTable(open_file(spec, ctx.rootdir, ctx.shared), planned, ctx.shared,
                           identity)

    identity = spec.cache_key()
    result: SharedTable = ctx.shared_value(("tabular", identity), lambda: open_once(
        ctx.shared, "table", spec.display(), build, identity))
    return result
