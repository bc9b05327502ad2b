"""How each SQL system spells what the one-pass engine asks: one small class per backend.

``SqlEngine`` (``engines.sql``) writes the aggregate pass once and asks its ``Dialect`` for
every piece that differs between systems: identifier quoting, the float and text types, the
NaN test, variance, quantiles, histograms, literals and the sampling order. A new warehouse is
one class here and its tests; nothing else branches on the system.
"""

from __future__ import annotations

import datetime as dt
import decimal
import itertools
from collections.abc import Callable, Collection, Container, Sequence
from typing import Any, ClassVar

from pytest_mlfunnel.outcome import CriterionError

Executor = Callable[[str, str], list[tuple[Any, ...]]]  # (sql, purpose) -> rows


def plain(value: Any) -> Any:
    """Database scalars as Python numbers: a Decimal becomes a float."""
    if isinstance(value, decimal.Decimal):
        return float(value)
    return value


_DUCK_INTS = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
              "UINTEGER", "UBIGINT", "UHUGEINT"}
_PG_INTS = {"smallint", "integer", "bigint"}
_PG_FLOATS = {"real", "double precision", "numeric"}
_PG_STRINGS = {"text", "character varying", "character", "name", "\"char\"", "citext", "uuid"}


def duckdb_dtype(type_name: str) -> str:
    t = type_name.upper()
    if t in _DUCK_INTS:
        return "int"
    if t in ("FLOAT", "DOUBLE", "REAL") or t.startswith("DECIMAL"):
        return "float"
    if t == "VARCHAR" or t.startswith("ENUM"):
        return "string"
    if t == "BOOLEAN":
        return "bool"
    if t.startswith("TIMESTAMP"):
        return "datetime"
    if t == "DATE":
        return "date"
    return "other"


def sqlite_declared_dtype(declared: str) -> str:
    """SQLite's affinity rules, plus the names people use for booleans and dates."""
    t = declared.upper()
    if "BOOL" in t:
        return "bool"
    if "DATETIME" in t or "TIMESTAMP" in t:
        return "datetime"
    if t == "DATE":
        return "date"
    if "INT" in t:
        return "int"
    if any(word in t for word in ("CHAR", "CLOB", "TEXT")):
        return "string"
    if any(word in t for word in ("REAL", "FLOA", "DOUB", "NUMERIC", "DECIMAL")):
        return "float"
    return "other"


def named_dtype(type_name: str, ints: Container[str], floats: Container[str],
                strings: Container[str]) -> str:
    """A database's type name (``numeric(10, 2)``, ``timestamp with time zone``) in the table
    protocol's vocabulary, given that database's names of integer, float and text types."""
    base = type_name.lower().split("(")[0].strip()
    if base in ints:
        return "int"
    if base in floats:
        return "float"
    if base in strings:
        return "string"
    if base == "boolean":
        return "bool"
    if base.startswith("timestamp"):
        return "datetime"
    if base == "date":
        return "date"
    return "other"


def postgres_dtype(type_name: str) -> str:
    return named_dtype(type_name, _PG_INTS, _PG_FLOATS, _PG_STRINGS)


def python_dtype(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float | decimal.Decimal):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dt.datetime):
        return "datetime"
    if isinstance(value, dt.date):
        return "date"
    return "other"


class Dialect:
    """The ANSI forms; subclasses override only what their system spells differently."""

    name: ClassVar[str] = "ansi"
    #: the sqlglot dialect name the rendered SQL is checked against in the tests
    sqlglot: ClassVar[str] = ""
    quote_char: ClassVar[str] = '"'
    float_type: ClassVar[str] = "DOUBLE PRECISION"
    text_type: ClassVar[str] = "VARCHAR"
    #: False where the database cannot store NaN (SQLite): no probe for it, no second pass
    stores_nan: ClassVar[bool] = True
    #: True where NaN sorts above every number in ``min``/``max`` (DuckDB, PostgreSQL, Spark):
    #: a float's nulls, min and max are then counted NaN-aware in the pass itself (NaN
    #: counted apart, ``min(x)`` and ``-min(-x)``), without a second read
    nan_sorts_last: ClassVar[bool] = False
    #: True when ``quantiles`` returns one expression holding every quantile (an array)
    quantiles_as_array: ClassVar[bool] = False

    def quote(self, name: str) -> str:
        q = self.quote_char
        return q + name.replace(q, q + q) + q

    def qualified(self, dotted: str) -> str:
        """``schema.table`` -> each part quoted."""
        return ".".join(self.quote(part) for part in dotted.split("."))

    # -------------------------------------------------------------- NaN and types
    def nan_test(self, x: str) -> str | None:
        """A condition true when ``x`` is NaN, or None when the system has no NaN."""
        return f"{x} = CAST('NaN' AS {self.float_type})"

    def count_where(self, condition: str) -> str:
        """The number of rows where ``condition`` holds."""
        return f"count(CASE WHEN {condition} THEN 1 END)"

    def clean(self, x: str) -> str:
        """``x`` with NaN turned into NULL (NaN counts as a null everywhere)."""
        nan = self.nan_test(x)
        return x if nan is None else f"CASE WHEN NOT ({nan}) THEN {x} END"

    def double(self, value: float) -> str:
        if value in (float("inf"), float("-inf")):
            return self.infinity(value < 0)
        return f"CAST({value!r} AS {self.float_type})"

    def infinity(self, negative: bool) -> str:
        return f"CAST('{'-' if negative else ''}Infinity' AS {self.float_type})"

    # -------------------------------------------------------------- literals
    def boolean(self, truth: bool) -> str:
        return "TRUE" if truth else "FALSE"

    def string(self, text: str) -> str:
        return "'" + text.replace("'", "''") + "'"

    def temporal(self, text: str, dtype: str) -> str:
        kind = "DATE" if dtype == "date" else "TIMESTAMP"
        return f"CAST('{text.replace(chr(39), chr(39) * 2)}' AS {kind})"

    def from_database(self, value: Any, dtype: str | None) -> Any:
        """A value as the column's declared type says (SQLite hands dates back as text)."""
        return value

    # -------------------------------------------------------------- schema
    def column_types(self, source: str, execute: Executor, table: str | None = None,
                     names: Sequence[str] = ()) -> dict[str, str]:
        """Each column's dtype (``int``, ``float``, ``string``, ``bool``, ``datetime``,
        ``date``, ``other``). ``source`` is the quoted table or the parenthesised query,
        ``table`` the table's name as the user gave it (None for a query), ``names`` the
        columns in order.

        Here, for systems whose catalog is not read: the first non-null value of each column
        says (one query, each column's first value a scalar subquery)."""
        firsts = ", ".join(f"(SELECT {self.quote(n)} FROM {source} AS s WHERE {self.quote(n)} "
                           "IS NOT NULL LIMIT 1)" for n in names)
        row = execute(f"SELECT {firsts}", "schema")[0] if names else ()
        return {n: python_dtype(v) if v is not None else "other"
                for n, v in zip(names, row, strict=True)}

    # -------------------------------------------------------------- aggregates
    #: relative standard error of ``approx_distinct`` (0.0: the dialect counts exactly)
    approx_error: ClassVar[float] = 0.0

    def approx_distinct(self, x: str) -> str:
        """An estimate of the distinct non-null values of ``x`` (HyperLogLog where the system
        has one; the exact count where it has none, with ``approx_error`` 0)."""
        return f"count(DISTINCT {x})"

    def row_hash(self, columns: list[str]) -> str | None:
        """A 64-bit hash of a whole row from its quoted columns, equal for equal rows (NULLs
        included), or None where the system has none: duplicate rows then take
        ``SELECT DISTINCT *``."""
        return None

    def floor(self, x: str) -> str:
        """The floor of the double ``x``, infinite when ``x`` is (a cell's key)."""
        return f"floor({x})"

    def comparable(self, x: str, dtype: str) -> str:
        """The quoted column ``x`` of protocol type ``dtype`` as a whole-row hash and a
        whole-row comparison take it: as it is, unless the system can neither hash nor
        compare some values of that type."""
        return x

    def repeats(self, values: str) -> str:
        """(values, values repeating an earlier one) of the column ``v`` of the query
        ``values``: a grouping here; a sort where that is cheaper."""
        return (f"SELECT coalesce(sum(n), 0), coalesce(sum(n - 1), 0) FROM (SELECT v, count(*) "
                f"AS n FROM ({values}) AS r GROUP BY v) AS g")

    def repeated(self, values: str) -> str:
        """The values of ``v`` in the query ``values`` that occur more than once."""
        return f"SELECT v FROM ({values}) AS r GROUP BY v HAVING count(*) > 1"

    def confirmed_repeats(self, hashes: str, exact: Callable[[str], str],
                          part: tuple[int, int] = (0, 1)) -> str | None:
        """One query for (hashes repeating an earlier one, exact repeats), or None: the
        engine then runs ``repeats`` and, when some hash repeats, ``repeated`` again.

        ``hashes`` gives 64-bit hashes in a column ``v``; ``exact(relation)`` counts the
        values or rows repeating an earlier one among those whose hash is in the query
        ``relation`` (a column ``v``). ``part`` = (i, k): only the hashes equal to i modulo
        k, so k queries cover every hash, each holding a k-th of them."""
        return None

    def carried_repeats(self, columns: list[str], source: str, hashes: str) -> str | None:
        """One query returning the aggregate expressions ``columns`` over ``source``, then
        what ``repeats`` returns for the hashes ``hashes`` of its rows, reading the rows
        once: the pass gathers the hashes as it aggregates. None where the system cannot
        gather them (the duplicate rows then take a stage of their own)."""
        return None

    def repeated_rows(self, rows: str) -> str:
        """How many of the rows the query ``rows`` returns repeat an earlier one (all
        columns compared)."""
        return (f"SELECT (SELECT count(*) FROM ({rows}) AS d) - (SELECT count(*) FROM (SELECT "
                f"DISTINCT * FROM ({rows}) AS d) AS e)")

    def variance(self, x: str, source: str) -> str:
        return f"var_samp({x})"

    def quantiles(self, x: str, qs: list[float]) -> list[str]:
        """Expressions for the quantiles in the pass; empty: a window query of their own."""
        return [f"percentile_cont({q!r}) WITHIN GROUP (ORDER BY {x})" for q in qs]

    def median(self, x: str) -> str | None:
        found = self.quantiles(x, [0.5])
        return found[0] if found and not self.quantiles_as_array else None

    def histogram(self, x: str, edges: list[float]) -> list[str]:
        parts = [f"count(CASE WHEN {x} < {edges[0]!r} THEN 1 END)"]
        parts += [f"count(CASE WHEN {x} >= {lo!r} AND {x} < {hi!r} THEN 1 END)"
                  for lo, hi in itertools.pairwise(edges)]
        parts.append(f"count(CASE WHEN {x} >= {edges[-1]!r} THEN 1 END)")
        return parts

    def histogram_counts(self, values: list[Any], edges: int) -> list[int]:
        return [int(v) for v in values]

    def not_a_number(self, x: str) -> str | None:
        """An aggregate giving one value of a numeric column that is not a number (None when
        there is none), for databases that keep whatever was written into a column whatever
        its declared type; None where the column's type holds (every other system)."""
        return None

    def value_counts(self, x: str) -> str | None:
        """An aggregate giving a {value: count} map in the pass, or None (the column is
        counted by a GROUP BY of its own; see ``SqlEngine._value_counts``)."""
        return None

    def outside(self, x: str, allowed: str, dtype: str) -> str:
        """True for non-null values not in the rendered list ``allowed``."""
        return f"{x} IS NOT NULL AND {x} NOT IN ({allowed})"

    def row_number(self, order: list[str]) -> str:
        """Numbers the rows from 0 in the order of the quoted columns ``order``, nulls first
        and NaN above every number, as a lazy frame's ``with_row_index(order_by=...)`` does
        (``mlfunnel_rn``): rows that tie are alike in those columns, so the numbering does
        not depend on the order the table is read in (Spark's partitions, a parallel scan)."""
        listed = ", ".join(f"{x} ASC NULLS FIRST" for x in order)
        return f"row_number() OVER (ORDER BY {listed}) - 1"

    def inline_rows(self, rows: list[list[str]], names: list[str]) -> str:
        """A relation (for FROM) of literal rows, with the columns ``names``: how keys sent
        by another engine enter this one."""
        listed = ", ".join(f"({', '.join(row)})" for row in rows)
        return f"(VALUES {listed}) AS k({', '.join(names)})"

    def sample_order(self, seed: int) -> str:
        """A reproducible shuffle of ``mlfunnel_rn`` (a multiplicative hash in 31 bits), the
        same on every system and in the lazy frames' engine, so one seed picks the same rows
        everywhere."""
        return f"((CAST(mlfunnel_rn AS BIGINT) + {int(seed)}) * 2654435761) % 2147483647"

    def settings_seeing_nan(self) -> tuple[str, str] | None:
        """Statements run before/after a query that must tell NaN apart, if any."""
        return None

    def memory_setting(self) -> str | None:
        """The setting that caps the memory of a query (spilling to disk beyond it), if the
        database has one a query may change for itself."""
        return None


class DuckDBDialect(Dialect):
    name = "duckdb"
    nan_sorts_last = True
    sqlglot = "duckdb"
    float_type = "DOUBLE"
    quantiles_as_array = True

    def nan_test(self, x: str) -> str | None:
        return f"isnan({x})"

    def clean(self, x: str) -> str:
        return f"CASE WHEN NOT isnan({x}) THEN {x} END"

    def count_where(self, condition: str) -> str:
        return f"count_if({condition})"  # a sixth less CPU than count(CASE ...) (DuckDB 2.0)

    def infinity(self, negative: bool) -> str:
        return f"CAST('{'-' if negative else ''}inf' AS DOUBLE)"

    #: relative standard error of ``approx_count_distinct`` (DuckDB 2.0, measured: 2.1-2.7%
    #: over 20 seeds at 10^3, 10^5 and 10^6 distinct values)
    approx_error = 0.027

    def approx_distinct(self, x: str) -> str:
        return f"approx_count_distinct({x})"

    def row_hash(self, columns: list[str]) -> str | None:
        # DuckDB hashes each value natively, -0.0 as 0.0 and NULL as a value of its own
        return f"hash({', '.join(columns)})"

    def repeats(self, values: str) -> str:
        # Sorted, a value repeats when it equals the one before it: at 50M random 64-bit
        # values half the CPU and memory of a hash table of them (count(DISTINCT)).
        return (f"SELECT count(*), count(CASE WHEN v = p THEN 1 END) FROM (SELECT v, lag(v) "
                f"OVER (ORDER BY v) AS p FROM ({values}) AS r) AS w")

    def repeated(self, values: str) -> str:
        return (f"SELECT DISTINCT v FROM (SELECT v, lag(v) OVER (ORDER BY v) AS p FROM "
                f"({values}) AS r) AS w WHERE v = p")

    def confirmed_repeats(self, hashes: str, exact: Callable[[str], str],
                          part: tuple[int, int] = (0, 1)) -> str | None:
        # The repeated hashes are kept (a materialized CTE) for the exact count, so the
        # hashes are sorted once, not a second time to find them again; when none repeats,
        # DuckDB skips the exact count's scan (its join has an empty side).
        index, of = part
        where = f" WHERE v % {of} = {index}" if of > 1 else ""
        return (f"WITH r AS MATERIALIZED (SELECT v FROM (SELECT v, lag(v) OVER (ORDER BY v) "
                f"AS p FROM (SELECT v FROM ({hashes}) AS h{where}) AS s) AS w WHERE v = p) "
                f"SELECT (SELECT count(*) FROM r), ({exact('SELECT DISTINCT v FROM r')})")

    def carried_repeats(self, columns: list[str], source: str, hashes: str) -> str | None:
        # The pass gathers the hashes in a list (8 bytes a row) beside its aggregates; the
        # list is then sorted as a stage's hashes are (``repeats``).
        names = [f"mlfunnel_c{k}" for k in range(len(columns))]
        select = ", ".join(f"{e} AS {n}" for e, n in zip(columns, names, strict=True))
        repeats = self.repeats("SELECT unnest(mlfunnel_h) AS v FROM mlfunnel_p")
        return (f"WITH mlfunnel_p AS MATERIALIZED (SELECT {select}, list({hashes}) AS "
                f"mlfunnel_h FROM {source}) SELECT {', '.join(f'p.{n}' for n in names)}, "
                f"q.* FROM mlfunnel_p AS p, ({repeats}) AS q")

    def repeated_rows(self, rows: str) -> str:
        return f"SELECT count(*) - count(DISTINCT d) FROM ({rows}) AS d"

    def variance(self, x: str, source: str) -> str:
        # DuckDB before 2.0 raises "out of range" on a NaN (NaN is null here anyway)
        return f"var_samp(nullif(CAST({x} AS DOUBLE), 'NaN'::DOUBLE))"

    def quantiles(self, x: str, qs: list[float]) -> list[str]:
        return [f"quantile_cont({x}, [{', '.join(repr(q) for q in qs)}])"]

    def median(self, x: str) -> str | None:
        return f"quantile_cont({x}, 0.5)"

    def histogram(self, x: str, edges: list[float]) -> list[str]:
        # DuckDB's own histogram bins are right-closed, (b_i-1, b_i]; on -x they are
        # exactly [e_i, e_i+1) of x, in one hash-free pass however many bins KS asks.
        negated = ", ".join(repr(-e) for e in reversed(edges))
        return [f"histogram(-CAST({x} AS DOUBLE), [{negated}]::DOUBLE[])"]

    def histogram_counts(self, values: list[Any], edges: int) -> list[int]:
        return from_negated_histogram(values[0], edges)

    def value_counts(self, x: str) -> str | None:
        return f"histogram({x})"

    def outside(self, x: str, allowed: str, dtype: str) -> str:
        if dtype == "string" and allowed != "NULL":
            # Casting to an ENUM of the allowed values runs on the dictionary of the column,
            # many times faster than comparing every string with a list.
            return f"{x} IS NOT NULL AND TRY_CAST({x} AS ENUM({allowed})) IS NULL"
        return super().outside(x, allowed, dtype)

    def column_types(self, source: str, execute: Executor, table: str | None = None,
                     names: Sequence[str] = ()) -> dict[str, str]:
        rows = execute(f"DESCRIBE SELECT * FROM {source}", "schema")
        return {str(r[0]): duckdb_dtype(str(r[1])) for r in rows}

    def settings_seeing_nan(self) -> tuple[str, str] | None:
        # Parquet statistics leave NaN out of a column's min/max, and DuckDB's statistics
        # propagation then folds ``isnan(x)`` to false for the whole file.
        return ("SET disabled_optimizers = 'statistics_propagation'",
                "RESET disabled_optimizers")

    def memory_setting(self) -> str | None:
        return "memory_limit"


class SQLiteDialect(Dialect):
    name = "sqlite"
    sqlglot = "sqlite"
    float_type = "REAL"
    text_type = "TEXT"
    stores_nan = False  # SQLite stores NaN as NULL

    def nan_test(self, x: str) -> str | None:
        return None

    def infinity(self, negative: bool) -> str:
        return f"CAST({'-' if negative else ''}9e999 AS REAL)"

    def not_a_number(self, x: str) -> str | None:
        # A column declared INTEGER or REAL keeps text or bytes that do not look like a
        # number: compared, they sort above every number, and sum/avg read them as 0.
        return f"max(CASE WHEN typeof({x}) IN ('text', 'blob') THEN {x} END)"

    def boolean(self, truth: bool) -> str:
        return "1" if truth else "0"

    def temporal(self, text: str, dtype: str) -> str:
        return "'" + text.replace("'", "''") + "'"

    def from_database(self, value: Any, dtype: str | None) -> Any:
        # A DATETIME/DATE column holds ISO text; read it back as what it declares.
        if isinstance(value, str) and dtype in ("datetime", "date"):
            try:
                moment = dt.datetime.fromisoformat(value.strip())
            except ValueError:
                return value
            return moment.date() if dtype == "date" and len(value.strip()) <= 10 else moment
        return value

    def variance(self, x: str, source: str) -> str:
        # No var_samp: sums of squares about the table's mean m, corrected by the group's own
        # offset from m, so a grouped query (Welch per group) gets each group's variance.
        mean = f"(SELECT avg({x}) FROM {source} AS m)"
        d = f"({x} - {mean})"
        return (f"CASE WHEN count({x}) > 1 THEN (sum({d} * {d}) - sum({d}) * sum({d}) "
                f"/ count({x})) / (count({x}) - 1) END")

    def quantiles(self, x: str, qs: list[float]) -> list[str]:
        return []  # exact quantiles with window functions, a query of their own

    def inline_rows(self, rows: list[list[str]], names: list[str]) -> str:
        # SQLite names a VALUES list's columns column1, column2 ... and takes no alias list
        listed = ", ".join(f"({', '.join(row)})" for row in rows)
        picked = ", ".join(f"column{i + 1} AS {n}" for i, n in enumerate(names))
        return f"(SELECT {picked} FROM (VALUES {listed})) AS k"

    def column_types(self, source: str, execute: Executor, table: str | None = None,
                     names: Sequence[str] = ()) -> dict[str, str]:
        # A table's declared types where they are understood; a query, and each column
        # declared without a type (or as BLOB), falls back to its first value.
        if not table:
            return super().column_types(source, execute, table, names)
        rows = execute(f"SELECT name, type FROM pragma_table_info("
                       f"'{table.replace(chr(39), chr(39) * 2)}')", "schema")
        declared = {str(r[0]): sqlite_declared_dtype(str(r[1] or "")) for r in rows}
        types = {n: declared.get(n, "other") for n in names}
        untyped = [n for n in names if types[n] == "other"]
        if untyped:
            types.update(super().column_types(source, execute, table, untyped))
        return types


class PostgreSQLDialect(Dialect):
    name = "postgresql"
    nan_sorts_last = True
    sqlglot = "postgres"
    text_type = "TEXT"
    quantiles_as_array = True

    def nan_test(self, x: str) -> str | None:
        return f"{x} = 'NaN'"

    def clean(self, x: str) -> str:
        return f"CASE WHEN {x} <> 'NaN' THEN {x} END"

    def quantiles(self, x: str, qs: list[float]) -> list[str]:
        listed = ", ".join(repr(q) for q in qs)
        return [f"percentile_cont(ARRAY[{listed}]::float8[]) WITHIN GROUP (ORDER BY {x})"]

    def median(self, x: str) -> str | None:
        return f"percentile_cont(0.5) WITHIN GROUP (ORDER BY {x})"

    def row_hash(self, columns: list[str]) -> str | None:
        # PostgreSQL 14+: each column hashed by its own type's hash function
        return f"hash_record_extended(ROW({', '.join(columns)}), 0)"

    def repeated_rows(self, rows: str) -> str:
        return f"SELECT count(*) - count(DISTINCT d) FROM ({rows}) AS d"

    def comparable(self, x: str, dtype: str) -> str:
        # json, xml, point, money ... have no hash function and json, xml and point no
        # equality either: a row holding one could not be hashed or compared. Their text
        # (and that of every other type outside the protocol's) stands for them.
        return f"CAST({x} AS TEXT)" if dtype == "other" else x

    def column_types(self, source: str, execute: Executor, table: str | None = None,
                     names: Sequence[str] = ()) -> dict[str, str]:
        # The declared type of each column, also of a query's (one row of pg_typeof)
        if not names:
            return {}
        types = ", ".join(f"pg_typeof(t.{self.quote(n)})::text" for n in names)
        rows = execute(f"SELECT {types} FROM (SELECT 1) AS one LEFT JOIN (SELECT * FROM "
                       f"{source} AS s LIMIT 1) AS t ON TRUE", "schema")
        return {n: postgres_dtype(str(v)) for n, v in zip(names, rows[0], strict=True)}


class SparkDialect(Dialect):
    """Spark SQL and Databricks: backticks, ``percentile`` (exact), ``hash``."""

    name = "spark"
    sqlglot = "spark"
    quote_char = "`"
    float_type = "DOUBLE"
    text_type = "STRING"
    quantiles_as_array = True

    def nan_test(self, x: str) -> str | None:
        return f"isnan({x})"

    def floor(self, x: str) -> str:
        # Spark's floor of a double is a BIGINT: of an infinity, an overflow under ANSI mode
        return (f"CASE WHEN abs({x}) = {self.infinity(False)} THEN {x} ELSE floor({x}) END")

    def quantiles(self, x: str, qs: list[float]) -> list[str]:
        # ``percentile`` is exact and interpolates linearly, as percentile_cont does
        return [f"percentile({x}, array({', '.join(repr(q) for q in qs)}))"]

    def median(self, x: str) -> str | None:
        return f"percentile({x}, 0.5)"

    def inline_rows(self, rows: list[list[str]], names: list[str]) -> str:
        listed = ", ".join(f"({', '.join(row)})" for row in rows)
        return f"(SELECT * FROM VALUES {listed} AS k({', '.join(names)})) AS k"

    def temporal(self, text: str, dtype: str) -> str:
        # A TIMESTAMP literal is read in the session's time zone, so a bound naive in the
        # config (UTC) moved by hours; a text with its zone is converted to the type of the
        # column it meets: the instant for TIMESTAMP, the wall-clock time for TIMESTAMP_NTZ
        try:
            moment = dt.datetime.fromisoformat(text.strip())
        except ValueError:
            return super().temporal(text, dtype)
        if dtype == "date":
            return super().temporal(text, dtype)
        if moment.tzinfo is not None:
            moment = moment.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return self.string(moment.isoformat() + "Z")

    def __init__(self, maps: Collection[str] = ()) -> None:
        #: the quoted columns holding a map (at any depth)
        self.maps = {self.quote(name) for name in maps}

    def comparable(self, x: str, dtype: str) -> str:
        # Spark can neither hash nor group a map (equal maps may hash apart): its JSON text,
        # the entries in their order, stands for it, as DuckDB compares maps entry by entry
        return f"to_json({x})" if x in self.maps else x

    approx_error = 0.01

    def approx_distinct(self, x: str) -> str:
        return f"approx_count_distinct({x}, {self.approx_error!r})"

    def row_hash(self, columns: list[str]) -> str | None:
        return f"xxhash64({', '.join(columns)})"

    def repeated_rows(self, rows: str) -> str:
        # DISTINCT on a struct of the row: map columns aside, any column type compares
        return f"SELECT count(*) - count(DISTINCT struct(d.*)) FROM ({rows}) AS d"


class SnowflakeDialect(Dialect):
    """The ANSI forms: ``percentile_cont(q) WITHIN GROUP``, one per quantile."""

    name = "snowflake"
    sqlglot = "snowflake"
    float_type = "DOUBLE"
    #: Snowflake documents an average relative error of about 1.6% for its HyperLogLog
    approx_error = 0.0162

    def approx_distinct(self, x: str) -> str:
        return f"APPROX_COUNT_DISTINCT({x})"

    def row_hash(self, columns: list[str]) -> str | None:
        return f"HASH({', '.join(columns)})"


class BigQueryDialect(Dialect):
    """Backticks; ``percentile_cont`` is only a window function there, so quantiles take the
    exact window query."""

    name = "bigquery"
    sqlglot = "bigquery"
    quote_char = "`"
    float_type = "FLOAT64"
    text_type = "STRING"

    def quote(self, name: str) -> str:
        return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"

    def nan_test(self, x: str) -> str | None:
        return f"IS_NAN({x})"

    def infinity(self, negative: bool) -> str:
        return f"CAST('{'-' if negative else ''}inf' AS FLOAT64)"

    def string(self, text: str) -> str:
        # BigQuery escapes with a backslash; a doubled quote ends the literal
        return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"

    def inline_rows(self, rows: list[list[str]], names: list[str]) -> str:
        structs = ", ".join("STRUCT(" + ", ".join(f"{v} AS {n}" for v, n in zip(
            row, names, strict=True)) + ")" for row in rows)
        return f"UNNEST([{structs}]) AS k"

    def quantiles(self, x: str, qs: list[float]) -> list[str]:
        return []

    #: HyperLogLog++ at BigQuery's default precision (15): 1.04 / sqrt(2**15)
    approx_error = 0.0057

    def approx_distinct(self, x: str) -> str:
        return f"APPROX_COUNT_DISTINCT({x})"

    def row_hash(self, columns: list[str]) -> str | None:
        # ARRAY and STRUCT columns included: the row as JSON, fingerprinted
        return f"FARM_FINGERPRINT(TO_JSON_STRING(STRUCT({', '.join(columns)})))"

    def repeated_rows(self, rows: str) -> str:
        # SELECT DISTINCT refuses ARRAY and STRUCT columns; their JSON text compares
        return f"SELECT count(*) - count(DISTINCT TO_JSON_STRING(d)) FROM ({rows}) AS d"


class TrinoDialect(Dialect):
    """Trino/Presto: no exact percentile aggregate, so quantiles take the window query."""

    name = "trino"
    sqlglot = "trino"
    float_type = "DOUBLE"

    def nan_test(self, x: str) -> str | None:
        return f"is_nan({x})"

    def infinity(self, negative: bool) -> str:
        return "-infinity()" if negative else "infinity()"

    def quantiles(self, x: str, qs: list[float]) -> list[str]:
        return []

    #: ``approx_distinct``'s default standard error
    approx_error = 0.023

    def approx_distinct(self, x: str) -> str:
        return f"approx_distinct({x})"

    def row_hash(self, columns: list[str]) -> str | None:
        return f"xxhash64(to_utf8(json_format(CAST(ROW({', '.join(columns)}) AS JSON))))"


DIALECTS: dict[str, type[Dialect]] = {
    cls.name: cls for cls in (Dialect, DuckDBDialect, SQLiteDialect, PostgreSQLDialect,
                              SparkDialect, SnowflakeDialect, BigQueryDialect, TrinoDialect)}

#: SQLAlchemy backend names (the URL scheme before ``+driver``) -> dialect
_BACKENDS = {"sqlite": "sqlite", "postgresql": "postgresql", "postgres": "postgresql",
             "cockroachdb": "postgresql", "redshift": "postgresql", "duckdb": "duckdb",
             "databricks": "spark", "spark": "spark", "hive": "spark", "sparksql": "spark",
             "snowflake": "snowflake", "bigquery": "bigquery", "trino": "trino",
             "presto": "trino"}


def dialect_named(name: str) -> Dialect:
    return DIALECTS[name]()


def dialect_for_url(scheme: str) -> Dialect:
    """The dialect of a database URL, from its SQLAlchemy backend name; ANSI otherwise."""
    backend = scheme.split("+", 1)[0].lower()
    return DIALECTS[_BACKENDS.get(backend, "ansi")]()


def from_negated_histogram(counts: dict[Any, Any] | None, edges: int) -> list[int]:
    """DuckDB's map over -x (keys -ek .. -e0, then +inf) -> counts (< e0), [e0, e1), .., (>= ek).

    DuckDB lists every boundary, empty bins included, so the shape is known.
    """
    ordered = sorted(((float(k), int(v)) for k, v in (counts or {}).items()),
                     key=lambda kv: kv[0])
    finite = [v for k, v in ordered if k != float("inf")]
    below_first = sum(v for k, v in ordered if k == float("inf"))
    if not ordered:
        return [0] * (edges + 1)
    if len(finite) != edges:
        raise CriterionError(f"histogram: expected {edges} bins from DuckDB, got {len(finite)}")
    return [below_first, *reversed(finite)]
